"""Fused or plain attention on the CPU: milliseconds per forward (eval) and per training step.

`BertSelfAttention` uses PyTorch's fused `F.scaled_dot_product_attention` except when it trains
on a CPU with at most 128 tokens; this script measures why. For the book's BERT and MiniLM, batches of about 1,000
(book) or 500 (MiniLM) tokens, a quarter of them padding in half the rows, bf16 autocast on and
off. The two kernels alternate within each repeat (best of `--repeats`), and the load average
is printed, since another busy process on the same cores slows everything.

    python benchmarks/attention_speed.py [--threads 1] [--repeats 3]
"""
import argparse
import os
import time

import torch
import torch.nn.functional as F

from bertedu import model as model_module
from bertedu.checkpoints import minilm_path
from bertedu.heads import BertForSequenceClassification
from bertedu.run_pretraining import book_model


def milliseconds(model, batch, train: bool, bf16: bool) -> float:
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16), torch.set_grad_enabled(train):
        logits = model(**batch).logits
    if train:
        logits.float().sum().backward()
    return (time.perf_counter() - start) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"threads {args.threads}, load average before {os.getloadavg()[0]:.2f}")
    print(f"{'model':<7}{'B x T':>9}  {'mode':<11}{'fused ms':>9}{'plain ms':>9}{'plain/fused':>12}")
    for name, folder, tokens, lengths in [("book", book_model(), 1024, (16, 48, 128)),
                                          ("MiniLM", minilm_path(), 512, (16, 48, 128, 384))]:
        model = BertForSequenceClassification.from_pretrained(folder, num_labels=2)
        for T in lengths:
            B = max(1, tokens // T)
            input_ids = torch.randint(1000, 5000, (B, T))
            attention_mask = torch.ones(B, T, dtype=torch.long)
            attention_mask[: B // 2, T * 3 // 4:] = 0
            batch = {"input_ids": input_ids, "attention_mask": attention_mask}
            for train in (True, False):
                model.train(train)
                for bf16 in (True, False):
                    best = {True: float("inf"), False: float("inf")}
                    for _ in range(args.repeats):
                        for fused in (True, False):  # interleaved
                            best[fused] = min(best[fused], timed(model, batch, train, bf16, fused))
                    mode = ("train" if train else "eval") + (" bf16" if bf16 else " fp32")
                    print(f"{name:<7}{f'{B}x{T}':>9}  {mode:<11}{best[True]:9.0f}{best[False]:9.0f}"
                          f"{best[False] / best[True]:12.2f}")
    print(f"load average after {os.getloadavg()[0]:.2f}")


def timed(model, batch, train, bf16, fused):
    """One pass through the plain attention path, with the fused kernel put in its place when
    fused=True (the library would not pick it for CPU training, which this script times)."""
    model.set_attention_implementation(False)
    if not fused:
        return milliseconds(model, batch, train, bf16)
    original = model_module.scaled_dot_product_attention

    def fused_attention(q, k, v, additive_mask=None, dropout=None):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=additive_mask), None

    model_module.scaled_dot_product_attention = fused_attention
    try:
        return milliseconds(model, batch, train, bf16)
    finally:
        model_module.scaled_dot_product_attention = original


if __name__ == "__main__":
    main()
