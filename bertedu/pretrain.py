"""Pretrain a BERT from the command line: `python -m bertedu.pretrain --help`.

    # the book's CPU recipe on WikiText-2 (chapter 6), about 4 minutes on 2 cores
    python -m bertedu.pretrain --output-dir runs/wikitext2
    # interrupted? the same command with --resume continues exactly where it stopped
    python -m bertedu.pretrain --output-dir runs/wikitext2 --resume
    # your own corpus: one sentence per line, a blank line between documents
    python -m bertedu.pretrain --corpus my_text.txt --eval-corpus my_eval.txt --output-dir runs/mine
    # several processes (GPUs, or CPU processes with gloo): the same command under torchrun
    torchrun --standalone --nproc_per_node=2 -m bertedu.pretrain --output-dir runs/ddp

The output folder receives, in the Hugging Face layout, `config.json`, `model.safetensors`,
`vocab.txt` and `tokenizer_config.json` (so `transformers.BertForPreTraining.from_pretrained`
and `bertedu.BertForPreTraining.from_pretrained` both load it), plus `checkpoint.pt` (to
resume) and `history.json` (losses and held-out metrics, to plot).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
from pathlib import Path

import torch.distributed as dist

from .config import BertConfig
from .data import cache_folder
from .heads import BertForPreTraining
from .pretraining import (PretrainingRecipe, evaluate_pretraining, pretraining_loss,
                          prepare_pretraining_data, train_tokenizer, wikitext_documents,
                          wikitext_splits)
from .tokenization import BertTokenizer
from .training import CHECKPOINT_NAME, set_seed, train

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
        prog="python -m bertedu.pretrain",
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
    parser.add_argument("--vocab-size", type=int, default=defaults.vocab_size)
    parser.add_argument("--max-seq-length", type=int, default=defaults.max_seq_length)
    parser.add_argument("--masking", choices=("dynamic", "static"), default=defaults.masking)
    parser.add_argument("--steps", type=int, default=defaults.max_steps, help="optimizer updates")
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
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Run the command line; return `{"history": History, "metrics": dict}` (for tests)."""
    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    checkpoint = output_dir / CHECKPOINT_NAME
    if args.resume and not checkpoint.is_file():
        raise SystemExit(f"--resume: there is no {checkpoint} to continue")
    if not args.resume and checkpoint.is_file():
        raise SystemExit(f"{checkpoint} exists: add --resume to continue that run, or choose another --output-dir")
    recipe = dataclasses.replace(
        PretrainingRecipe(), vocab_size=args.vocab_size, max_seq_length=args.max_seq_length,
        masking=args.masking, max_steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr,
        weight_decay=args.weight_decay,
        eval_examples=args.eval_examples, seed=args.seed)

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
    model = BertForPreTraining(model_config(args.model_size, tokenizer.vocab_size, recipe))
    config = recipe.training_config(
        gradient_accumulation_steps=args.grad_accum,
        warmup_steps=recipe.warmup_steps if args.warmup_steps is None else args.warmup_steps,
        eval_every=args.eval_every,
        save_every=args.save_every, output_dir=str(output_dir), device=args.device,
        progress_bar=not args.no_progress)
    output_dir.mkdir(parents=True, exist_ok=True)
    if is_first and not args.resume:
        tokenizer.save_pretrained(output_dir)
    history = train(model, data["train_dataset"], config, collate_fn=data["train_dataset"].collate,
                    loss_fn=pretraining_loss,
                    eval_fn=lambda m: evaluate_pretraining(m, data["eval_dataset"]),
                    resume_from=checkpoint if args.resume else None)

    # 4. The result, in the Hugging Face layout.
    if is_first:
        model.save_pretrained(output_dir)
        tokenizer.save_pretrained(output_dir)
        (output_dir / "history.json").write_text(json.dumps({"train": history.train, "eval": history.eval}, indent=1))
        print(f"saved to {output_dir}: " + ", ".join(f"{k}={v:.4f}" for k, v in history.eval[-1].items() if k != "step"))
    if dist.is_initialized():
        dist.destroy_process_group()
    return {"history": history, "metrics": history.eval[-1] if history.eval else {}}


def book_model_folder() -> Path:
    """Where `book_model` keeps the book's small BERT: a folder of the download cache whose
    name carries a digest of the recipe's settings, so a changed recipe trains a new model."""
    settings = json.dumps(dataclasses.asdict(PretrainingRecipe()), sort_keys=True) + "/".join(wikitext_splits())
    return cache_folder() / "models" / f"book-bert-{hashlib.sha256(settings.encode()).hexdigest()[:12]}"


def book_model(output_dir: str | Path | None = None, extra_args: list[str] | tuple[str, ...] = ()) -> Path:
    """The folder of the book's small pretrained BERT (chapter 6's recipe on WikiText-2).

    The first call pretrains it with this command line's defaults (about 4 minutes on 2 cores)
    into `output_dir` (default: `book_model_folder()`); later calls find `model.safetensors`
    there and return at once. A run that was interrupted resumes from its checkpoint. Load it
    with `BertForPreTraining.from_pretrained(folder)` and `BertTokenizer.from_pretrained(folder)`.
    `extra_args` are passed on to the command line (tests use them to make a tiny run).
    """
    folder = Path(output_dir) if output_dir is not None else book_model_folder()
    if not (folder / "model.safetensors").is_file():
        resume = ["--resume"] if (folder / CHECKPOINT_NAME).is_file() else []
        main(["--output-dir", str(folder), "--no-progress", *extra_args, *resume])
    return folder


if __name__ == "__main__":
    main()
