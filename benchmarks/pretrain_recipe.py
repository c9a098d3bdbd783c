"""Run the book's CPU pretraining recipe on WikiText-2 and print its figures.

The recipe is `bertedu.pretraining.PretrainingRecipe()` (every setting is listed there and
printed below): a WordPiece vocabulary trained on the corpus, a small BERT, MLM + NSP with
dynamic masking, AdamW with warmup and linear decay. It trains on WikiText-2's train split
when that file is on this machine, else on its validation split, and is evaluated on pairs
from the test split, which it never sees.

Printed: held-out MLM accuracy against the unigram baseline (always predict the most
frequent token), NSP accuracy against the majority class, the curve of held-out metrics,
wall time (data preparation and training) and tokens per second of the training steps.
This is a benchmark that prints figures, not a test: nothing here can fail on a slow machine.

    BERTEDU_DATA=../shared/data .venv/bin/python benchmarks/pretrain_recipe.py [--steps N] [--out runs/recipe]
"""
import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from bertedu import BertForPreTraining
from bertedu.data import load_wikitext2
from bertedu.pretraining import (PretrainingRecipe, baselines, evaluate_pretraining, pretraining_loss,
                                 prepare_pretraining_data, train_tokenizer, wikitext_documents,
                                 wikitext_splits)
from bertedu.training import set_seed, train


def main():
    defaults = PretrainingRecipe()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=defaults.max_steps)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--out", default=None, help="save the model (Hugging Face layout) and history.json here")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="change recipe settings, e.g. --set hidden_size=128 batch_size=32")
    args = parser.parse_args()
    changes = {"max_steps": args.steps}
    for item in args.set:
        name, _, value = item.partition("=")
        if name not in {f.name for f in dataclasses.fields(PretrainingRecipe)}:
            parser.error(f"--set {item}: PretrainingRecipe has no field {name!r}")
        changes[name] = type(getattr(defaults, name))(value)
    recipe = dataclasses.replace(defaults, **changes)
    print("recipe:", dataclasses.asdict(recipe))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    start = time.perf_counter()
    train_split, eval_split = wikitext_splits()
    train_documents = wikitext_documents(load_wikitext2(train_split))
    eval_documents = wikitext_documents(load_wikitext2(eval_split))
    tokenizer = train_tokenizer(train_documents, recipe.vocab_size)
    data = prepare_pretraining_data(train_documents, eval_documents, tokenizer, recipe)
    prep_seconds = time.perf_counter() - start
    print(f"data: WikiText-2 {train_split} ({len(train_documents)} documents) -> "
          f"{len(data['train_dataset'])} training pairs; {len(data['eval_dataset'])} held-out pairs "
          f"from {eval_split}; vocabulary {tokenizer.vocab_size}; prepared in {prep_seconds:.1f} s")

    set_seed(recipe.seed)
    model = BertForPreTraining(recipe.model_config(tokenizer.vocab_size))
    print(f"model: {sum(p.numel() for p in model.parameters()):,} parameters")
    eval_seconds = []

    def timed_eval(m):
        t = time.perf_counter()
        metrics = evaluate_pretraining(m, data["eval_dataset"])
        eval_seconds.append(time.perf_counter() - t)
        return metrics

    history = train(model, data["train_dataset"], recipe.training_config(eval_every=args.eval_every,
                                                                         progress_bar=not args.no_progress),
                    collate_fn=data["train_dataset"].collate, loss_fn=pretraining_loss,
                    eval_fn=timed_eval)
    total_seconds = time.perf_counter() - start
    train_seconds = history.train[-1]["seconds"]
    tokens = sum(r["tokens"] for r in history.train)
    step_seconds = train_seconds - sum(eval_seconds)

    base = baselines(data["train_examples"], data["eval_dataset"], tokenizer)
    final = history.eval[-1]
    print("\nheld-out curve (test split):")
    print("  step  train_loss  mlm_loss  mlm_acc  mlm_acc@[MASK]  nsp_acc")
    for record in history.eval:
        train_loss = history.train[record["step"] - 1]["loss"]
        print(f"  {record['step']:4d}  {train_loss:10.3f}  {record['mlm_loss']:8.3f}  "
              f"{record['mlm_accuracy']:7.3f}  {record['mlm_masked_accuracy']:14.3f}  {record['nsp_accuracy']:7.3f}")
    top = tokenizer.convert_ids_to_tokens(base['mlm_unigram_token'])
    print(f"\nheld-out MLM accuracy {final['mlm_accuracy']:.3f} vs unigram baseline "
          f"{base['mlm_unigram_accuracy']:.3f} (always {top!r})")
    print(f"held-out MLM accuracy at [MASK] positions {final['mlm_masked_accuracy']:.3f} vs unigram baseline "
          f"{base['mlm_masked_unigram_accuracy']:.3f}")
    print(f"held-out NSP accuracy {final['nsp_accuracy']:.3f} vs majority baseline {base['nsp_majority_accuracy']:.3f}")
    print(f"wall time {total_seconds:.0f} s: data {prep_seconds:.0f} s, training steps {step_seconds:.0f} s, "
          f"{len(eval_seconds)} evaluations {sum(eval_seconds):.0f} s")
    print(f"training: {tokens:,} non-padding tokens in {len(history.train)} steps, "
          f"{tokens / step_seconds:,.0f} tokens/s ({step_seconds / len(history.train) * 1000:.0f} ms per step)")
    if args.out:
        out = Path(args.out)
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        (out / "history.json").write_text(json.dumps({"train": history.train, "eval": history.eval}, indent=1))
        print(f"saved to {out}")


if __name__ == "__main__":
    main()
