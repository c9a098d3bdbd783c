"""A tiny pretraining run shared by tests/test_training.py and its torchrun launch.

`build_run()` gives the model, dataset and config; the test trains them in one process,
and `python -m torch.distributed.run --standalone --nproc_per_node=2 tests/ddp_worker.py OUT`
trains the same in two processes (gloo on CPU) and saves the result in OUT/result.pt.
"""
import random
import sys

import torch
import torch.distributed as dist

from bertedu import BertConfig, BertForPreTraining
from bertedu.pretraining import PretrainingDataset, create_nsp_examples, pretraining_loss
from bertedu.tokenization import BertTokenizer
from bertedu.training import TrainingConfig, set_seed, train


def build_run(gradient_accumulation_steps: int = 1, output_dir: str | None = None):
    tokenizer = BertTokenizer(vocab=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(60)])
    rng = random.Random(0)
    documents = [[[rng.randrange(5, tokenizer.vocab_size) for _ in range(rng.randint(2, 9))]
                  for _ in range(rng.randint(2, 8))] for _ in range(20)]
    dataset = PretrainingDataset(create_nsp_examples(documents, 24, seed=0), tokenizer, "dynamic", seed=0)
    set_seed(0)
    # no dropout: each process draws its own dropout masks, one process cannot match them
    model = BertForPreTraining(BertConfig.tiny(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=24, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    config = TrainingConfig(max_steps=4, batch_size=8, gradient_accumulation_steps=gradient_accumulation_steps,
                            learning_rate=1e-3, warmup_steps=1, progress_bar=False, output_dir=output_dir,
                            save_every=2 if output_dir else None)
    return model, dataset, config


if __name__ == "__main__":
    out = sys.argv[1]
    model, dataset, config = build_run(gradient_accumulation_steps=1, output_dir=f"{out}/run")
    history = train(model, dataset, config, collate_fn=dataset.collate, loss_fn=pretraining_loss)
    if dist.get_rank() == 0:
        torch.save({"state": model.state_dict(), "losses": history.losses,
                    "world_size": dist.get_world_size()}, f"{out}/result.pt")
    dist.destroy_process_group()
