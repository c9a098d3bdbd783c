"""Pretrain a BERT from the command line: `python -m bertedu.run_pretraining --help`.

    # the book's CPU recipe on WikiText-2 (chapter 6), about 4 minutes on 2 cores
    python -m bertedu.run_pretraining --output-dir runs/wikitext2
    # interrupted? the same command with --resume continues exactly where it stopped
    python -m bertedu.run_pretraining --output-dir runs/wikitext2 --resume
    # your own corpus: one sentence per line, a blank line between documents
    python -m bertedu.run_pretraining --corpus my_text.txt --eval-corpus my_eval.txt --output-dir runs/mine
    # several processes (GPUs, or CPU processes with gloo): the same command under torchrun
    torchrun --standalone --nproc_per_node=2 -m bertedu.run_pretraining --output-dir runs/ddp

The output folder receives, in the Hugging Face layout, `config.json`, `model.safetensors`,
`vocab.txt` and `tokenizer_config.json` (so `transformers.BertForPreTraining.from_pretrained`
and `bertedu.BertForPreTraining.from_pretrained` both load it), plus `checkpoint.pt` (to
resume), `history.json` (losses and held-out metrics, to plot) and `run.json` (the command,
seed, library commit and machine).

`book_model()` returns the book's BERT: a long run of this command, shipped with the package
(`bertedu/book_bert/`; `run.json` there gives its command).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from .config import BertConfig
from .heads import BertForPreTraining
from .pretraining import (PretrainingRecipe, build_pretraining_model, evaluate_pretraining, pretraining_loss,
                          prepare_pretraining_data, train_tokenizer, wikitext_documents,
                          wikitext_splits)
from .tokenization import BertTokenizer
from .training import CHECKPOINT_NAME, PREVIOUS_CHECKPOINT_NAME, set_seed, train

MODEL_SIZES = ("recipe", "tiny", "mini", "base", "large")


def read_documents(path: str | Path) -> list[list[str]]:
    """A text file in Google's pretraining format: one sentence per line, documents
    separated by blank lines."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"corpus file {path} does not exist")
    documents, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            current.append(line.strip())
        elif current:
            documents.append(current)
            current = []
    if current:
        documents.append(current)
    if len(documents) < 2:
        raise ValueError(f"{path} holds {len(documents)} document(s); NSP needs at least 2 "
                         "(separate documents with a blank line)")
    return documents


def model_config(size: str, vocab_size: int, recipe: PretrainingRecipe) -> BertConfig:
    if size == "recipe":
        return recipe.model_config(vocab_size)
    config = getattr(BertConfig, size)(vocab_size=vocab_size)
    if config.max_position_embeddings < recipe.max_seq_length:
        raise ValueError(f"--max-seq-length {recipe.max_seq_length} exceeds the {size} model's "
                         f"max_position_embeddings={config.max_position_embeddings}")
    return config


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = PretrainingRecipe()
    parser = argparse.ArgumentParser(
        prog="python -m bertedu.run_pretraining",
        description="Pretrain a BERT (masked LM + next-sentence prediction) and save it in the "
                    "Hugging Face layout. Defaults are the book's CPU recipe on WikiText-2.")
    parser.add_argument("--output-dir", required=True, help="folder for the model, vocabulary, checkpoint and history")
    parser.add_argument("--model-size", choices=MODEL_SIZES, default="recipe",
                        help="recipe: L=%d H=%d A=%d; tiny: L=2 H=128; mini: L=6 H=384; base; large"
                        % (defaults.num_hidden_layers, defaults.hidden_size, defaults.num_attention_heads))
    parser.add_argument("--corpus", default="wikitext2",
                        help="'wikitext2' (train split if on this machine, else valid), or a text file "
                             "with one sentence per line and blank lines between documents")
    parser.add_argument("--eval-corpus", default=None,
                        help="held-out text file in the same format (default for wikitext2: its test split)")
    parser.add_argument("--vocab", default=None,
                        help="a vocab.txt or a folder with one; default: train WordPiece on the corpus")
    parser.add_argument("--num-layers", type=int, default=None,
                        help="--model-size recipe only: encoder layers L (default %d)" % defaults.num_hidden_layers)
    parser.add_argument("--hidden-size", type=int, default=None,
                        help="--model-size recipe only: width H (default %d)" % defaults.hidden_size)
    parser.add_argument("--num-heads", type=int, default=None,
                        help="--model-size recipe only: attention heads A (default %d)" % defaults.num_attention_heads)
    parser.add_argument("--intermediate-size", type=int, default=None,
                        help="--model-size recipe only: feed-forward width (default 4 H)")
    parser.add_argument("--initializer-range", type=float, default=None,
                        help="--model-size recipe only: std of the weights' normal init (default %g)" % defaults.initializer_range)
    parser.add_argument("--position-init", choices=("normal", "sinusoidal"), default=defaults.position_init,
                        help="start the position embeddings as BERT does (normal) or as the Transformer's "
                             "sinusoids (pretraining.sinusoidal_positions)")
    parser.add_argument("--position-std", type=float, default=None,
                        help="--position-init sinusoidal: the std of its entries (default: --initializer-range)")
    parser.add_argument("--vocab-size", type=int, default=defaults.vocab_size)
    parser.add_argument("--dupe-factor", type=int, default=defaults.dupe_factor,
                        help="passes over the corpus, each cut into different pairs")
    parser.add_argument("--mlm-probability", type=float, default=defaults.mlm_probability,
                        help="share of WordPieces chosen for MLM (BERT: 0.15)")
    parser.add_argument("--max-seq-length", type=int, default=defaults.max_seq_length)
    parser.add_argument("--masking", choices=("dynamic", "static"), default=defaults.masking)
    parser.add_argument("--steps", type=int, default=defaults.max_steps, help="optimizer updates")
    parser.add_argument("--stop-after", type=int, default=None,
                        help="end after this many updates, with the learning-rate schedule of --steps "
                             "(to re-run the start of a long run; --resume continues it later)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size,
                        help="global batch: examples per update over all processes")
    parser.add_argument("--grad-accum", type=int, default=1, help="micro-batches per update")
    parser.add_argument("--lr", type=float, default=defaults.learning_rate)
    parser.add_argument("--warmup-steps", type=int, default=None,
                        help=f"default: {round(100 * defaults.warmup_fraction)}%% of --steps")
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--eval-examples", type=int, default=defaults.eval_examples)
    parser.add_argument("--save-every", type=int, default=100)
    parser.add_argument("--resume", action="store_true",
                        help=f"continue the run saved in OUTPUT_DIR/{CHECKPOINT_NAME}")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for PyTorch (default: PyTorch's, one per core); give 1 when "
                             "another busy process shares the CPU: threads that wait for each other "
                             "run many times slower")
    parser.add_argument("--mixed-precision", choices=("auto", "on", "off"), default="auto",
                        help="bf16 autocast: auto = where the hardware has bf16 (training.use_mixed_precision)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Run the command line; return `{"history": History, "metrics": dict}` (for tests)."""
    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    checkpoint = output_dir / CHECKPOINT_NAME
    previous = output_dir / PREVIOUS_CHECKPOINT_NAME  # kept by each save as a fallback
    if args.resume and not (checkpoint.is_file() or previous.is_file()):
        raise SystemExit(f"--resume: there is no {checkpoint} to continue")
    if not args.resume and (checkpoint.is_file() or previous.is_file()):
        raise SystemExit(f"{checkpoint} exists: add --resume to continue that run, or choose another --output-dir")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    architecture = {name: value for name, value in (
        ("num_hidden_layers", args.num_layers), ("hidden_size", args.hidden_size),
        ("num_attention_heads", args.num_heads), ("intermediate_size", args.intermediate_size),
        ("initializer_range", args.initializer_range)) if value is not None}
    if architecture and args.model_size != "recipe":
        raise SystemExit(f"--num-layers/--hidden-size/--num-heads/--intermediate-size/--initializer-range set the recipe's "
                         f"model; --model-size {args.model_size} has its own sizes")
    if args.hidden_size is not None and args.intermediate_size is None:
        architecture["intermediate_size"] = 4 * args.hidden_size
    recipe = dataclasses.replace(
        PretrainingRecipe(), vocab_size=args.vocab_size, max_seq_length=args.max_seq_length,
        dupe_factor=args.dupe_factor, masking=args.masking, mlm_probability=args.mlm_probability,
        position_init=args.position_init, position_std=args.position_std,
        max_steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr,
        weight_decay=args.weight_decay, eval_examples=args.eval_examples, seed=args.seed, **architecture)

    # 1. The corpus, as documents of sentences.
    if args.corpus == "wikitext2":
        from .data import load_wikitext2

        train_split, eval_split = wikitext_splits()
        train_documents = wikitext_documents(load_wikitext2(train_split))
        eval_documents = wikitext_documents(load_wikitext2(eval_split))
    else:
        train_documents = read_documents(args.corpus)
        if args.eval_corpus is None:
            raise SystemExit("--corpus FILE needs --eval-corpus FILE, the held-out text")
    if args.eval_corpus is not None:
        eval_documents = read_documents(args.eval_corpus)

    # 2. The vocabulary: given, saved by the run we resume, or learned from the corpus.
    if args.vocab is not None:
        vocab = Path(args.vocab)
        tokenizer = BertTokenizer.from_pretrained(vocab) if vocab.is_dir() else BertTokenizer(vocab)
    elif args.resume:
        tokenizer = BertTokenizer.from_pretrained(output_dir)
    else:
        tokenizer = train_tokenizer(train_documents, args.vocab_size)
    is_first = int(os.environ.get("RANK", "0")) == 0  # under torchrun, only process 0 writes
    data = prepare_pretraining_data(train_documents, eval_documents, tokenizer, recipe)

    # 3. The model and the loop.
    set_seed(args.seed)
    if args.model_size == "recipe":
        model = build_pretraining_model(recipe, tokenizer.vocab_size)
    else:
        model = BertForPreTraining(model_config(args.model_size, tokenizer.vocab_size, recipe))
    config = recipe.training_config(
        gradient_accumulation_steps=args.grad_accum,
        warmup_steps=recipe.warmup_steps if args.warmup_steps is None else args.warmup_steps,
        eval_every=args.eval_every,
        save_every=args.save_every, output_dir=str(output_dir), device=args.device, stop_after=args.stop_after,
        mixed_precision={"auto": None, "on": True, "off": False}[args.mixed_precision],
        progress_bar=not args.no_progress)
    output_dir.mkdir(parents=True, exist_ok=True)
    if is_first and not args.resume:
        tokenizer.save_pretrained(output_dir)
        argv_given = list(argv) if argv is not None else sys.argv[1:]
        (output_dir / "run.json").write_text(json.dumps(run_record(argv_given, args), indent=1))
    history = train(model, data["train_dataset"], config, collate_fn=data["train_dataset"].collate,
                    loss_fn=pretraining_loss,
                    eval_fn=lambda m, step: evaluate_pretraining(m, data["eval_dataset"]),
                    resume_from=output_dir if args.resume else None)  # a folder: falls back to the previous

    # 4. The result, in the Hugging Face layout.
    if is_first:
        model.save_pretrained(output_dir)
        tokenizer.save_pretrained(output_dir)
        (output_dir / "history.json").write_text(json.dumps({"train": history.train, "eval": history.eval}, indent=1))
        print(f"saved to {output_dir}: " + ", ".join(f"{k}={v:.4f}" for k, v in history.eval[-1].items() if k != "step"))
    if dist.is_initialized():
        dist.destroy_process_group()
    return {"history": history, "metrics": history.eval[-1] if history.eval else {}}


BOOK_BERT = Path(__file__).resolve().parent / "book_bert"
BOOK_BERT_FILES = ("config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json",
                   "history.json", "run.json")


def book_model() -> Path:
    """The folder of the book's BERT, pretrained once and shipped inside the package.

    It holds, in the Hugging Face layout, `config.json`, `model.safetensors` (fp16: it loads
    into fp32 models) and `vocab.txt`, so `BertForPreTraining.from_pretrained(folder)`,
    `transformers.BertForPreTraining.from_pretrained(folder)` and both tokenizers load it as
    it is; plus `history.json` (the run's losses and held-out metrics) and `run.json` (the
    exact command, seed, library commit and machine of the run). `cloze.tsv` holds the cloze
    probes that were written before it was trained. Nothing is downloaded or trained here.
    CONTRIBUTING.md says how the model is rebuilt.
    """
    missing = [name for name in BOOK_BERT_FILES if not (BOOK_BERT / name).is_file()]
    if missing:
        raise FileNotFoundError(f"the book's BERT is incomplete in {BOOK_BERT}: {missing} missing; "
                                "reinstall bertedu, or rebuild the model as CONTRIBUTING.md describes")
    return BOOK_BERT


def run_record(argv: list[str], args: argparse.Namespace) -> dict:
    """What `run.json` records about a run: the command, seed, library commit and machine."""
    import platform
    import subprocess
    import time

    def git(*command):
        try:
            return subprocess.run(["git", *command], cwd=Path(__file__).parent, capture_output=True,
                                  text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    launcher = "python" if processes == 1 else f"torchrun --standalone --nproc_per_node={processes}"
    return {"command": f"{launcher} -m bertedu.run_pretraining " + " ".join(argv), "processes": processes, "seed": args.seed,
            "commit": git("rev-parse", "HEAD"), "uncommitted_changes": bool(git("status", "--porcelain", "bertedu")),
            "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "machine": f"{platform.machine()} {platform.processor() or platform.platform()}, {os.cpu_count()} CPUs"}


if __name__ == "__main__":
    main()
