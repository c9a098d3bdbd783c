"""Held-out figures of the book's BERT (`bertedu.run_pretraining.book_model()`) against its goals.

Everything is measured on WikiText-2's *test* split, which the model never saw, with the
model's own vocabulary and pair length:

- MLM accuracy at the `[MASK]` positions against always guessing the most frequent training
  token (goal: >= 0.20 and >= 2 times that unigram baseline);
- MLM accuracy over all chosen positions against the context-free baseline (copy the token
  shown, the unigram guess at `[MASK]`);
- NSP accuracy on held-out pairs (goal: >= 0.70) against the majority label;
- the cloze probes of `bertedu/book_bert/cloze.tsv`, written before training: the share whose
  answer is in the top 5 (goal: >= 0.40), against always guessing the 5 most frequent tokens.

A script that prints figures; `tests/test_book_bert.py` asserts the goals on the same numbers.

    BERTEDU_DATA=../shared/data .venv/bin/python benchmarks/book_bert.py [--folder DIR]
"""
import argparse
import json
import time
from pathlib import Path

from bertedu import BertForPreTraining
from bertedu.run_pretraining import BOOK_BERT, book_model
from bertedu.pretraining import book_bert_report
from bertedu.tokenization import BertTokenizer


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default=None, help="a run folder of python -m bertedu.run_pretraining (default: the shipped model)")
    args = parser.parse_args()
    folder = Path(args.folder) if args.folder else book_model()
    start = time.perf_counter()
    model = BertForPreTraining.from_pretrained(folder)
    tokenizer = BertTokenizer.from_pretrained(folder)
    run = json.loads((folder / "run.json").read_text()) if (folder / "run.json").is_file() else {}
    print(f"model: {folder}\ncommand: {run.get('command', '?')}\ncommit: {run.get('commit', '?')}")
    report = book_bert_report(model, tokenizer, BOOK_BERT / "cloze.tsv")
    b = report["baselines"]
    m = report["metrics"]
    print(f"held-out pairs: {report['n_eval_pairs']:,} from WikiText-2 test; [MASK] positions: {report['n_mask_positions']:,}")
    print(f"MLM accuracy at [MASK]    {m['mlm_masked_accuracy']:.3f}   unigram baseline {b['mlm_masked_unigram_accuracy']:.3f}"
          f"   ratio {m['mlm_masked_accuracy'] / b['mlm_masked_unigram_accuracy']:.2f}   goal >= 0.20 and >= 2x")
    print(f"MLM accuracy, all chosen  {m['mlm_accuracy']:.3f}   context-free baseline {b['mlm_context_free_accuracy']:.3f}")
    print(f"MLM loss (nats)           {m['mlm_loss']:.3f}")
    print(f"NSP accuracy              {m['nsp_accuracy']:.3f}   majority baseline {b['nsp_majority_accuracy']:.3f}   goal >= 0.70")
    hits = report["cloze"]
    print(f"cloze top 5               {report['cloze_top5']:.3f} ({sum(h['hit'] for h in hits)} of {len(hits)})"
          f"   frequency baseline {report['cloze_top5_frequency_baseline']:.3f}   goal >= 0.40")
    for h in hits:
        print(f"  {'+' if h['hit'] else '-'} rank {h['rank']:5d}  {h['sentence']}  [{h['answer']}]  top 5: {' '.join(h['top'])}")
    print(f"evaluated in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
