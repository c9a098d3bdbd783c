"""Does bf16 autocast cost accuracy? Fine-tune MiniLM on SST-2 both ways and compare.

all-MiniLM-L6-v2 with a new classification head is fine-tuned on the first `--examples`
(2,000) SST-2 training sentences, once in fp32 and once with the library's default
(`mixed_precision=None`: bf16 autocast where the CPU has bf16 hardware), for each of
`--seeds` seeds (the head's initialisation and the data order); each model predicts as it
trained. Printed: the dev accuracy (872 sentences) of every run, then each setting's mean and
the standard deviation over the seeds. Then prediction alone: the fp32-trained model predicts
the dev set again under the default (bf16 autocast, as `batching.predict` does by default),
with the predictions that change and both accuracies. A benchmark that prints figures, not a test.

    BERTEDU_DATA=../shared/data .venv/bin/python benchmarks/bf16_accuracy.py [--seeds 3]
"""
import argparse
import os
import statistics
import time
import warnings

import torch

import bertedu
from bertedu import BertForSequenceClassification
from bertedu.data import load_sst2
from bertedu.finetuning import LengthGroupedBatches, SequenceClassificationDataset, predict_logits
from bertedu.tokenization import BertTokenizer
from bertedu.training import TrainingConfig, set_seed, train, use_mixed_precision


def fine_tune(folder, train_set, dev_set, dev_labels, seed, mixed_precision, steps):
    set_seed(seed)
    model = BertForSequenceClassification.from_pretrained(folder, num_labels=2)
    config = TrainingConfig(max_steps=steps, batch_size=32, learning_rate=5e-5, warmup_steps=steps // 10,
                            seed=seed, mixed_precision=mixed_precision, progress_bar=False)
    start = time.perf_counter()
    train(model, train_set, config, collate_fn=train_set.collate, batch_fn=LengthGroupedBatches(train_set.lengths))
    seconds = time.perf_counter() - start
    logits = predict_logits(model, dev_set, mixed_precision=mixed_precision)
    return (logits.argmax(-1) == torch.tensor(dev_labels)).float().mean().item(), seconds, logits, model


def main():
    warnings.filterwarnings("ignore", message=".*newly initialised.*")  # the new head, expected
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    folder = bertedu.minilm_path()
    tokenizer = BertTokenizer.from_pretrained(folder)
    records = load_sst2("train")[: args.examples]
    dev = load_sst2("dev")
    train_set = SequenceClassificationDataset(tokenizer, [r["sentence"] for r in records], [r["label"] for r in records])
    dev_set = SequenceClassificationDataset(tokenizer, [r["sentence"] for r in dev])
    dev_labels = [r["label"] for r in dev]
    steps = args.epochs * len(train_set) // 32
    default_amp = use_mixed_precision(None, torch.device("cpu"))
    print(f"{torch.get_num_threads()} threads; default autocast on this CPU: {default_amp}; "
          f"{len(train_set)} training sentences, {steps} steps of 32; load average %.2f" % os.getloadavg()[0])
    results = {"fp32": [], "default": []}
    for seed in range(args.seeds):
        logits = {}
        for name, mixed_precision in (("fp32", False), ("default", None)):  # interleaved
            accuracy, seconds, logits[name], model = fine_tune(folder, train_set, dev_set, dev_labels, seed,
                                                               mixed_precision, steps)
            if name == "fp32":  # the same fp32 weights, predicting under the default
                start = time.perf_counter()
                bf16_logits = predict_logits(model, dev_set)
                bf16_seconds = time.perf_counter() - start
                start = time.perf_counter()
                fp32_logits = predict_logits(model, dev_set, mixed_precision=False)
                fp32_seconds = time.perf_counter() - start
                gold = torch.tensor(dev_labels)
                print(f"seed {seed}  fp32 model predicting: fp32 accuracy "
                      f"{(fp32_logits.argmax(-1) == gold).float().mean():.4f} ({fp32_seconds:.1f} s), default "
                      f"{(bf16_logits.argmax(-1) == gold).float().mean():.4f} ({bf16_seconds:.1f} s), "
                      f"{int((fp32_logits.argmax(-1) != bf16_logits.argmax(-1)).sum())} of {len(dev_set)} "
                      "predictions differ")
            results[name].append(accuracy)
            print(f"seed {seed}  {name:<8} dev accuracy {accuracy:.4f}  ({seconds:.0f} s of training)")
        changed = int((logits["fp32"].argmax(-1) != logits["default"].argmax(-1)).sum())
        gap = (logits["fp32"] - logits["default"]).abs().mean().item()
        print(f"seed {seed}  the two models: mean |logit difference| {gap:.4f}, {changed} of {len(dev_set)} "
              "dev predictions differ")
    for name, accuracies in results.items():
        spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
        print(f"{name:<8} mean {statistics.mean(accuracies):.4f}  sd over seeds {spread:.4f}")
    difference = statistics.mean(results["default"]) - statistics.mean(results["fp32"])
    print(f"difference (default - fp32) {difference:+.4f}")


if __name__ == "__main__":
    main()
