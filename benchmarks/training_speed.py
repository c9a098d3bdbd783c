"""Time one training step: plain fp32 against the library's default step.

- fp32: the step as the library took it before, fp32 arithmetic and PyTorch's default
  (unfused, "foreach") AdamW;
- default: what `bertedu.training.train` does now, bf16 autocast where the CPU has bf16
  hardware (`use_mixed_precision`) and fused AdamW (`make_optimizer`).

Both copies of the model start from the same weights (all-MiniLM-L6-v2 with a classification
head) and take the same batches of real text (SST-2, 32 sentences of 64 WordPieces). The two
alternate, one block of steps each, for `--rounds` rounds, so that whatever else the machine
does hits both alike; the median step time of each is reported, with the load average before
and after (a busy machine slows both, and a 2-thread process far more than a 1-thread one).
Then the chapter 6 pretraining recipe's tokens per second, both ways. The last line is
`speedup X.XX`, fp32 step time over default step time. A benchmark prints figures; it is not a
test and nothing here fails on a slow machine.

    BERTEDU_DATA=../shared/data .venv/bin/python benchmarks/training_speed.py [--threads 1]
"""
import argparse
import copy
import os
import statistics
import time
import warnings

import torch

import bertedu
from bertedu import BertForPreTraining, BertForSequenceClassification
from bertedu.data import load_sst2
from bertedu.pretraining import (PretrainingRecipe, prepare_pretraining_data, pretraining_loss,
                                 train_tokenizer, wikitext_documents, wikitext_splits)
from bertedu.data import load_wikitext2
from bertedu.tokenization import BertTokenizer
from bertedu.training import (TrainingConfig, count_tokens, cpu_has_fast_bf16, make_optimizer,
                              use_mixed_precision)


def make_step(model, optimizer, loss_fn, amp: bool):
    """One optimizer update on a batch, as `train` takes it: forward (under autocast when
    `amp`), backward, clip the gradient norm to 1, step, clear the gradients."""
    def step(batch):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            loss = loss_fn(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step


def interleaved_times(steps: dict, batches: list, rounds: int) -> dict:
    """Seconds per step of each named step function: one warm-up pass over the batches, then
    `rounds` rounds in which each function takes every batch once, in turn."""
    times = {name: [] for name in steps}
    for name, step in steps.items():
        for batch in batches[:2]:
            step(batch)  # warm-up: allocations, kernel choices
    for _ in range(rounds):
        for name, step in steps.items():
            for batch in batches:
                start = time.perf_counter()
                step(batch)
                times[name].append(time.perf_counter() - start)
    return times


def two_ways(model, loss_fn, batches, rounds):
    """{"fp32": seconds per step, "default": seconds per step} for copies of `model`."""
    config = TrainingConfig(learning_rate=1e-5)
    fp32_model, default_model = copy.deepcopy(model).train(), copy.deepcopy(model).train()
    fp32_optimizer = torch.optim.AdamW(fp32_model.parameters(), lr=1e-5, eps=1e-6)  # unfused
    steps = {"fp32": make_step(fp32_model, fp32_optimizer, loss_fn, amp=False),
             "default": make_step(default_model, make_optimizer(default_model, config), loss_fn,
                                  amp=use_mixed_precision(None, torch.device("cpu")))}
    return {name: statistics.median(t) for name, t in interleaved_times(steps, batches, rounds).items()}


def classification_loss(model, batch):
    return model(**batch).loss


def main():
    warnings.filterwarnings("ignore", message=".*newly initialised.*")  # the new head, expected
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: PyTorch's)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=64)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU bf16 hardware: "
          f"{cpu_has_fast_bf16()}, autocast by default: {use_mixed_precision(None, torch.device('cpu'))}")
    print("load average before: %.2f %.2f %.2f" % os.getloadavg())

    # 1. MiniLM, fine-tuning step on SST-2 sentences
    torch.manual_seed(0)
    folder = bertedu.minilm_path()
    tokenizer = BertTokenizer.from_pretrained(folder)
    model = BertForSequenceClassification.from_pretrained(folder, num_labels=2)
    records = load_sst2("train")[: args.batch * 4]
    batches = []
    for start in range(0, len(records), args.batch):
        chunk = records[start:start + args.batch]
        batch = dict(tokenizer([r["sentence"] for r in chunk], padding="max_length", truncation=True,
                               max_length=args.seq, return_tensors="pt"))
        batch["labels"] = torch.tensor([r["label"] for r in chunk])
        batches.append(batch)
    minilm = two_ways(model, classification_loss, batches, args.rounds)
    print(f"MiniLM step, batch {args.batch} x {args.seq}: fp32 {1000 * minilm['fp32']:.0f} ms, "
          f"default {1000 * minilm['default']:.0f} ms  (step time vs fp32: {minilm['default'] / minilm['fp32']:.2f})")

    # 2. The chapter 6 recipe: tokens per second
    recipe = PretrainingRecipe()
    train_split, eval_split = wikitext_splits()
    documents = wikitext_documents(load_wikitext2(train_split))[:100]  # enough text for a vocabulary and batches
    recipe_tokenizer = train_tokenizer(documents, recipe.vocab_size)
    data = prepare_pretraining_data(documents, wikitext_documents(load_wikitext2(eval_split))[:5],
                                    recipe_tokenizer, recipe)
    dataset = data["train_dataset"]
    g = torch.Generator().manual_seed(0)
    recipe_batches = [dataset.collate([dataset[int(i)] for i in torch.randint(len(dataset), (recipe.batch_size,), generator=g)])
                      for _ in range(8)]
    torch.manual_seed(0)
    recipe_model = BertForPreTraining(recipe.model_config(recipe_tokenizer.vocab_size))
    recipe_times = two_ways(recipe_model, pretraining_loss, recipe_batches, args.rounds)
    tokens = statistics.mean(count_tokens(b) for b in recipe_batches)
    print(f"recipe step (L={recipe.num_hidden_layers}, H={recipe.hidden_size}, batch {recipe.batch_size} x "
          f"{recipe.max_seq_length}): fp32 {tokens / recipe_times['fp32']:,.0f} tokens/s, default "
          f"{tokens / recipe_times['default']:,.0f} tokens/s  (speedup {recipe_times['fp32'] / recipe_times['default']:.2f})")
    print("load average after: %.2f %.2f %.2f" % os.getloadavg())
    print(f"speedup {minilm['fp32'] / minilm['default']:.2f}")


if __name__ == "__main__":
    main()
