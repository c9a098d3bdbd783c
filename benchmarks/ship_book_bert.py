"""Ship a finished `python -m bertedu.run_pretraining` run as the book's BERT (`bertedu/book_bert/`).

Copies the run's `config.json`, `vocab.txt`, `tokenizer_config.json`, `history.json` and
`run.json`, and writes its weights as fp16 safetensors (half the size; every loader casts them
back to the model's fp32). The cloze probes (`cloze.tsv`) stay as they are. Refuses a run that
is unfinished (no `model.safetensors`, or a history shorter than its `--steps`) or that was
made from uncommitted library code. See CONTRIBUTING.md, "The book's BERT".

    .venv/bin/python benchmarks/ship_book_bert.py runs/book-bert
"""
import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file

from bertedu.run_pretraining import BOOK_BERT, BOOK_BERT_FILES

COPIED = ("config.json", "vocab.txt", "tokenizer_config.json", "history.json", "run.json")
MAX_BYTES = 20 * 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="the --output-dir of a finished run")
    run_dir = Path(parser.parse_args().run_dir)
    missing = [name for name in ("model.safetensors", *COPIED) if not (run_dir / name).is_file()]
    if missing:
        sys.exit(f"{run_dir} lacks {missing}: is the run finished?")
    run = json.loads((run_dir / "run.json").read_text())
    history = json.loads((run_dir / "history.json").read_text())
    argv = shlex.split(run["command"])
    steps = int(argv[argv.index("--steps") + 1])
    if len(history["train"]) != steps:
        sys.exit(f"{run_dir}: the history has {len(history['train'])} steps, the command asks for {steps}")
    if run.get("uncommitted_changes"):
        sys.exit(f"{run_dir} was made from uncommitted library code: its commit does not describe it")

    state = {name: tensor.half() for name, tensor in load_file(run_dir / "model.safetensors").items()}
    BOOK_BERT.mkdir(exist_ok=True)
    save_file(state, BOOK_BERT / "model.safetensors", metadata={"format": "pt"})
    for name in COPIED:
        shutil.copyfile(run_dir / name, BOOK_BERT / name)
    size = (BOOK_BERT / "model.safetensors").stat().st_size
    if size > MAX_BYTES:
        sys.exit(f"model.safetensors is {size:,} bytes, more than the {MAX_BYTES:,} the package allows")
    assert all((BOOK_BERT / name).is_file() for name in BOOK_BERT_FILES)
    print(f"shipped {run_dir} to {BOOK_BERT}: {len(state)} tensors, {size / 2**20:.1f} MB, "
          f"{steps} steps, commit {run['commit'][:10]}")


if __name__ == "__main__":
    main()
