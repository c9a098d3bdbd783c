"""One small training loop for every chapter: pretraining and fine-tuning alike.

`train` is an explicit `for` over optimizer steps with BERT's recipe (Devlin et al. 2019,
appendix A.2; google-research/bert `optimization.py`): AdamW with `eps = 1e-6` and no decay
on biases and LayerNorm weights; linear warmup, then linear decay to 0 (`lr_at`); gradient
norm clipped to `max_grad_norm`. Also: gradient accumulation, bf16 autocast where the
hardware has it, evaluation every `eval_every` steps, a `History`, atomic checksummed
checkpoints with exact resumption, and DDP under `torchrun` (gloo on CPUs, nccl on GPUs):

    python my_script.py                                   # one process: CPU, or GPU 0
    torchrun --standalone --nproc_per_node=2 my_script.py # two processes, one per GPU

Every random choice comes from the seed (epoch e's order from `(seed, e)`, dropout from
`(seed, rank)`), so the same seed on the same machine gives identical losses. `batch_size`
is the global batch, summed over processes and accumulation steps; a step's loss is the
mean of its micro-batch losses, so 2 processes x 1 micro-batch and 1 process x 2
micro-batches compute the same update.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import random
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.distributed as dist
from torch import nn

from .batching import (LengthGroupedBatches, batch_indices, derive_seed, eval_mode,  # noqa: F401
                       steps_per_epoch, to_device)
from .checkpoints import atomic_write, remove_stale_temporaries
from .precision import cpu_has_fast_bf16, use_mixed_precision  # noqa: F401 (chapter 6 imports them from here)

CHECKPOINT_NAME = "checkpoint.pt"
PREVIOUS_CHECKPOINT_NAME = "checkpoint.previous.pt"  # the save before, kept as a fallback
CHECKPOINT_FORMAT = "bertedu-training-checkpoint"
CHECKPOINT_VERSION = 1
# The first line of a checkpoint file: this prefix, the sha256 (64 hex digits) of every byte
# after the line, and a newline. The rest is an ordinary `torch.save` file.
CHECKSUM_PREFIX = b"bertedu-training-checkpoint sha256="
CHECKSUM_LINE_LENGTH = len(CHECKSUM_PREFIX) + 64 + 1

# Settings that shape the trajectory of a run: resuming with different ones would not
# continue the same run, so `train` refuses (start a new run from the saved model instead).
RESUME_MUST_MATCH = ("max_steps", "batch_size", "gradient_accumulation_steps", "learning_rate",
                     "warmup_steps", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon",
                     "max_grad_norm", "seed")


@dataclass
class TrainingConfig:
    max_steps: int = 1000  # optimizer updates in the whole run
    batch_size: int = 32  # global batch: examples per update, over all processes and micro-batches
    gradient_accumulation_steps: int = 1  # micro-batches per update in each process
    learning_rate: float = 1e-4  # peak learning rate, reached at the end of the warmup
    warmup_steps: int = 0  # linear warmup from 0; BERT used 10,000 of 1,000,000 steps
    weight_decay: float = 0.01  # AdamW decay of the weight matrices (not biases, not LayerNorm)
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-6  # BERT's value; PyTorch's default is 1e-8
    max_grad_norm: float | None = 1.0  # clip the global gradient norm; None: no clipping
    eval_every: int | None = None  # call eval_fn every this many steps, and after the last
    save_every: int | None = None  # write output_dir/checkpoint.pt this often, and at the end
    output_dir: str | None = None  # where checkpoints go; None: no checkpoints
    seed: int = 0  # data order, dynamic masks and dropout all derive from it
    mixed_precision: bool | None = None  # bf16 autocast; None: on where the hardware has bf16 (GPU, or CPU AMX/AVX512-BF16)
    device: str | None = None  # None: "cuda" if available (cuda:LOCAL_RANK under torchrun), else "cpu"
    progress_bar: bool = True  # a tqdm bar on the first process
    stop_after: int | None = None  # end after this many updates; the schedule still spans max_steps

    def __post_init__(self):
        for name in ("max_steps", "batch_size", "gradient_accumulation_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("warmup_steps", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        for name in ("eval_every", "save_every"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
        for name in ("learning_rate", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if self.warmup_steps > self.max_steps:
            raise ValueError(f"warmup_steps={self.warmup_steps} exceeds max_steps={self.max_steps}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        for name in ("adam_beta1", "adam_beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        if not self.adam_epsilon > 0:
            raise ValueError(f"adam_epsilon must be > 0, got {self.adam_epsilon!r}")
        if self.max_grad_norm is not None and (
                isinstance(self.max_grad_norm, bool) or not isinstance(self.max_grad_norm, (int, float))
                or not self.max_grad_norm > 0):
            raise ValueError(f"max_grad_norm must be a number > 0, or None; got {self.max_grad_norm!r}")
        if self.stop_after is not None and (isinstance(self.stop_after, bool) or not isinstance(self.stop_after, int)
                                            or not 1 <= self.stop_after <= self.max_steps):
            raise ValueError(f"stop_after must be an integer from 1 to max_steps={self.max_steps}, or None; "
                             f"got {self.stop_after!r}")
        if self.save_every is not None and self.output_dir is None:
            raise ValueError("save_every needs output_dir: the folder where checkpoint.pt is written")


@dataclass
class History:
    """What a run records, ready to plot or to turn into a DataFrame.

    Attributes:
        train: one dict per step: `step` (1 = after the first update), `loss` (mean over the
            step's micro-batches and processes), `lr`, `grad_norm` (before clipping), `tokens`
            (non-padding input tokens), `seconds` (wall time since the run started).
        eval: one dict per evaluation: `step` and whatever `eval_fn` returned.

    Example:
        >>> plt.plot(history.steps, history.losses)
        >>> steps, accuracy = history.metric("mlm_accuracy")
    """

    train: list[dict] = field(default_factory=list)
    eval: list[dict] = field(default_factory=list)

    @property
    def steps(self) -> list[int]:
        return [record["step"] for record in self.train]

    @property
    def losses(self) -> list[float]:
        return [record["loss"] for record in self.train]

    def metric(self, name: str) -> tuple[list[int], list[float]]:
        """The steps and values of one evaluation metric."""
        records = [r for r in self.eval if name in r]
        if not records and self.eval:
            raise KeyError(f"no metric {name!r}; eval_fn returned {sorted(set(self.eval[0]) - {'step'})}")
        return [r["step"] for r in records], [r[name] for r in records]


# ---------------------------------------------------------------------------------------
# The pieces: seeds, schedule, optimizer, batches
# ---------------------------------------------------------------------------------------
def set_seed(seed: int) -> None:
    """Seed Python's and torch's generators (CPU and every GPU); call it before building a model."""
    random.seed(seed)
    torch.manual_seed(seed)  # seeds the CUDA generators too


def lr_at(step: int, learning_rate: float, warmup_steps: int, max_steps: int) -> float:
    """The learning rate of update number `step` (0 = the first update): a linear rise reaching
    `learning_rate` at the last warmup step, then a linear fall to 0 at `max_steps`. (Unlike
    Hugging Face's schedule, the first update uses learning_rate / warmup_steps, not 0.)"""
    if step < warmup_steps:  # 1) warmup
        return learning_rate * (step + 1) / warmup_steps
    remaining = (max_steps - step) / max(1, max_steps - warmup_steps)  # 2) decay: 1 -> 0
    return learning_rate * max(0.0, remaining)


def make_optimizer(model: nn.Module, config: TrainingConfig,
                   parameter_groups: Sequence[dict] | None = None) -> torch.optim.AdamW:
    """AdamW with two groups: weight matrices (2 or more dimensions) decay, biases and LayerNorm
    weights do not (the same set Google's BERT excludes by name).

    Args:
        model: the model whose trainable parameters (`requires_grad`) are optimized.
        config: gives the peak rate, weight decay and Adam's settings.
        parameter_groups: None (`config.learning_rate` for every parameter), or a list of
            `{"params": [...], "lr": peak_rate}` (e.g. `layerwise_lr_groups`); every trainable
            parameter in exactly one group. Each group keeps its rate as `peak_lr`, which
            `train`'s warmup and decay scale.
    """
    if parameter_groups is None:
        parameter_groups = [{"params": list(model.parameters()), "lr": config.learning_rate}]
    else:
        _check_parameter_groups(model, parameter_groups)
    groups = []
    for group in parameter_groups:
        trainable = [p for p in group["params"] if p.requires_grad]
        decay = [p for p in trainable if p.dim() >= 2]
        no_decay = [p for p in trainable if p.dim() < 2]
        for params, weight_decay in ((decay, config.weight_decay), (no_decay, 0.0)):
            if params or len(parameter_groups) == 1:  # the default keeps its two groups, even empty
                groups.append({"params": params, "weight_decay": weight_decay,
                               "lr": group["lr"], "peak_lr": group["lr"]})
    # fused=True: one kernel updates every tensor of a group (CPU and GPU alike), about 10%
    # off a small model's training step; the arithmetic is AdamW's, unchanged
    return torch.optim.AdamW(groups, lr=config.learning_rate, betas=(config.adam_beta1, config.adam_beta2),
                             eps=config.adam_epsilon, fused=True)


def _check_parameter_groups(model: nn.Module, parameter_groups: Sequence[dict]) -> None:
    """Refuse groups that would silently leave a parameter untrained or train it twice."""
    if isinstance(parameter_groups, dict) or len(parameter_groups) == 0:
        raise ValueError("parameter_groups must be a non-empty list of dicts {'params': [...], 'lr': rate}")
    names = {id(p): name for name, p in model.named_parameters()}
    seen = set()
    for i, group in enumerate(parameter_groups):
        if not isinstance(group, dict) or "params" not in group or "lr" not in group:
            raise ValueError(f"parameter_groups[{i}] must be a dict with 'params' and 'lr' (its peak rate), "
                             f"got {group!r:.80}")
        rate = group["lr"]
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
            raise ValueError(f"parameter_groups[{i}]['lr'] must be a peak rate > 0, got {rate!r}")
        for p in group["params"]:
            if id(p) not in names:
                raise ValueError(f"parameter_groups[{i}] holds a tensor of shape {tuple(p.shape)} that is "
                                 "not a parameter of the model")
            if id(p) in seen:
                raise ValueError(f"{names[id(p)]} is in two parameter groups: put each parameter in one")
            seen.add(id(p))
    missing = [name for name, p in model.named_parameters() if p.requires_grad and id(p) not in seen]
    if missing:
        raise ValueError(f"{len(missing)} trainable parameters are in no group (first: {missing[0]}); "
                         "give every trainable parameter a group, or set requires_grad=False to freeze it")


_LAYER = re.compile(r"(?:^|\.)encoder\.layer\.(\d+)\.")


def layer_depth(name: str, num_layers: int) -> int:
    """Depth of a parameter, by name: 0 = embeddings, i + 1 = block i, L + 1 = anything above
    the blocks (pooler, task head)."""
    match = _LAYER.search(name)
    if match:
        index = int(match.group(1))
        if not 0 <= index < num_layers:
            raise ValueError(f"{name} names block {index}, but the model has {num_layers} blocks")
        return index + 1
    if name.startswith("embeddings.") or ".embeddings." in name or name.startswith("bert.embeddings."):
        return 0
    return num_layers + 1


def layerwise_lr_groups(model: nn.Module, learning_rate: float, decay: float,
                        num_layers: int | None = None) -> list[dict]:
    """Parameter groups for layer-wise learning-rate decay (LLRD; Howard & Ruder 2018).

    The task head and the pooler get `learning_rate`; block L (the top one) gets
    `learning_rate * decay`, block L-1 `learning_rate * decay**2`, ..., the embeddings
    `learning_rate * decay**(L + 1)`. `decay = 1` is a single rate.

    Args:
        model: a model whose parameter names contain `embeddings.` and `encoder.layer.<i>.`.
        learning_rate: the peak rate of the head.
        decay: in (0, 1].
        num_layers: L; default `model.config.num_hidden_layers` (or `model.bert.config...`).

    Returns:
        A list of `{"params": [...], "lr": rate, "depth": d}` (one per depth that has
        parameters), for `train(parameter_groups=...)`.
    """
    if isinstance(decay, bool) or not 0.0 < decay <= 1.0:
        raise ValueError(f"decay must be in (0, 1] (1 = one rate for every layer), got {decay!r}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
    if num_layers is None:
        config = getattr(model, "config", None) or getattr(getattr(model, "bert", None), "config", None)
        if config is None:
            raise ValueError("pass num_layers: the model has no .config or .bert.config to read it from")
        num_layers = config.num_hidden_layers
    by_depth: dict[int, list] = {}
    for name, parameter in model.named_parameters():
        by_depth.setdefault(layer_depth(name, num_layers), []).append(parameter)
    top = num_layers + 1
    return [{"params": params, "lr": learning_rate * decay ** (top - depth), "depth": depth}
            for depth, params in sorted(by_depth.items())]


def default_loss(model: nn.Module, batch: dict) -> torch.Tensor:
    """The loss every bertedu head computes when given labels: `model(**batch).loss`."""
    loss = model(**batch).loss
    if loss is None:
        raise ValueError(f"the model returned no loss: the batch has keys {sorted(batch)}, "
                         "and a head needs its labels (labels, next_sentence_label, start_positions...)")
    return loss


def count_tokens(batch: dict) -> int:
    """Non-padding input tokens of a batch (all of input_ids when there is no attention_mask)."""
    if "attention_mask" in batch:
        return int(batch["attention_mask"].sum())
    return batch["input_ids"].numel() if "input_ids" in batch else 0


# ---------------------------------------------------------------------------------------
# Processes and devices
# ---------------------------------------------------------------------------------------
def distributed_setup() -> tuple[int, int, int]:
    """Return `(rank, local_rank, world_size)`, joining the process group under torchrun; a
    plain `python` run is rank 0 of 1 and starts no group."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return rank, local_rank, world_size


def pick_device(requested: str | None, local_rank: int) -> torch.device:
    if requested is not None:
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={requested!r} but no CUDA GPU is available: use 'cpu'")
        return device
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)  # one GPU per process
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def rng_state() -> dict:
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------
def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    step: int, history: History, config: TrainingConfig,
                    rng_states: list[dict] | None = None) -> Path:
    """Write everything needed to continue a run (model and optimizer state, step, every
    process's random-number generator states, history, config), atomically, with a checksum.

    The first line holds the sha256 of the rest, checked by `read_checkpoint`; the file is
    written to a temporary file and renamed over `path`; the checkpoint it replaces is kept as
    `checkpoint.previous.pt` (`previous_checkpoint`), the fallback when the newest is damaged.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)  # left by a save that was killed
    state = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": rng_states if rng_states is not None else [rng_state()],
        "history": {"train": history.train, "eval": history.eval},
        "config": dataclasses.asdict(config),
    }

    def write_with_checksum(temporary: str) -> None:
        with open(temporary, "wb") as file:
            file.write(checksum_line("0" * 64))  # a placeholder of the same length
            hashing = HashingWriter(file)
            torch.save(state, hashing)  # streams to disk: no second copy in memory
            file.seek(0)
            file.write(checksum_line(hashing.sha256.hexdigest()))

    atomic_write(path, write_with_checksum, keep_previous=previous_checkpoint(path))
    return path


def checksum_line(hex_digest: str) -> bytes:
    return CHECKSUM_PREFIX + hex_digest.encode("ascii") + b"\n"


class HashingWriter:
    """Writes to `file` and feeds every byte to a sha256 on the way (`torch.save` needs only
    `write` and `flush`)."""

    def __init__(self, file):
        self.file = file
        self.sha256 = hashlib.sha256()

    def write(self, data) -> int:
        self.sha256.update(data)
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()


def previous_checkpoint(path: str | Path) -> Path:
    """Where the checkpoint before `path` is kept: `run/checkpoint.pt` -> `run/checkpoint.previous.pt`."""
    path = Path(path)
    return path.with_name(f"{path.stem}.previous{path.suffix}")


def read_checkpoint(path: str | Path) -> dict:
    """Read and check a training checkpoint; refuse damaged, truncated or foreign files.

    `path` is a checkpoint file, or a run folder: then `checkpoint.pt` is read, or, if it is
    missing or damaged, the sound `checkpoint.previous.pt`, with a warning. A damaged file given
    by name is an error. Nothing is loaded into a model, so a refused file changes nothing.
    """
    path = Path(path)
    newest = path / CHECKPOINT_NAME if path.is_dir() else path
    previous = previous_checkpoint(newest)
    try:
        return read_checkpoint_file(newest)
    except (FileNotFoundError, ValueError) as error:
        if not previous.is_file():
            raise
        if not path.is_dir():
            raise type(error)(f"{error}\nA previous checkpoint exists at {previous}: resume from it, "
                              f"or give the folder {path.parent} to fall back to it") from error
        warnings.warn(f"{error}\nFalling back to the previous checkpoint, {previous}", stacklevel=2)
        return read_checkpoint_file(previous)


def read_checkpoint_file(path: Path) -> dict:
    """Read one checkpoint file: verify its checksum, then load it with `weights_only=True`
    (plain tensors and containers only, so a file cannot run code)."""
    if not path.is_file():
        raise FileNotFoundError(f"no training checkpoint at {path}")
    damaged = (f"{path} is damaged: the sha256 of its contents does not match the one it was "
               "saved with (the file was truncated or altered on disk). Nothing was loaded")
    with open(path, "rb") as file:
        first_line = file.read(CHECKSUM_LINE_LENGTH)
        has_checksum = first_line.startswith(CHECKSUM_PREFIX)
        if has_checksum:
            saved_digest = first_line[len(CHECKSUM_PREFIX):-1]
            if hashlib.file_digest(file, "sha256").hexdigest().encode("ascii") != saved_digest:
                raise ValueError(damaged)
        file.seek(CHECKSUM_LINE_LENGTH if has_checksum else 0)
        try:
            state = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as error:
            raise ValueError(f"{path} cannot be read as a training checkpoint ({type(error).__name__}: "
                             f"{error}); it is truncated or not a torch file. Nothing was loaded: "
                             "resume from an earlier checkpoint or start afresh") from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a bertedu training checkpoint (no format marker "
                         f"{CHECKPOINT_FORMAT!r}); a Hugging Face model folder loads with "
                         "from_pretrained, not as a checkpoint to resume")
    if state.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path} is a version {state.get('version')!r} checkpoint; this "
                         f"bertedu reads version {CHECKPOINT_VERSION}")
    missing = [k for k in ("step", "model", "optimizer", "rng", "history", "config") if k not in state]
    if missing:
        raise ValueError(f"{path} lacks {missing}: it is incomplete")
    if not has_checksum:
        warnings.warn(f"{path} has no checksum (it was saved by an older bertedu), so damage to it "
                      "cannot be detected; the next save adds one", stacklevel=3)
    return state


def load_checkpoint(path: str | Path, model: nn.Module,
                    optimizer: torch.optim.Optimizer | None = None) -> dict:
    """Load a checkpoint's model (and optimizer) state; return the whole checkpoint dict.
    `path` is a file or a run folder, as for `read_checkpoint`; every check runs before
    anything is copied, so a refused checkpoint leaves the model as it was."""
    state = read_checkpoint(path)
    copy_checkpoint_into(state, model, optimizer, source=path)
    return state


def copy_checkpoint_into(state: dict, model: nn.Module, optimizer: torch.optim.Optimizer | None,
                         source: str | Path) -> None:
    """Copy the model (and optimizer) state of a `read_checkpoint` dict, after checking that
    it fits the model; `source` names the checkpoint in errors."""
    expected = model.state_dict()
    saved = state["model"]
    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    wrong_shape = [k for k in expected if k in saved and saved[k].shape != expected[k].shape]
    if missing or unexpected or wrong_shape:
        raise ValueError(f"{source} was saved from a different model: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}, wrong shape {wrong_shape[:3]}; build "
                         "the model with the config of the run you resume")
    model.load_state_dict(saved)
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])


# ---------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------
def train(model: nn.Module, dataset: Sequence, config: TrainingConfig, *,
          collate_fn: Callable[[list], dict] | None = None,
          eval_fn: Callable[[nn.Module, int], dict] | None = None,
          loss_fn: Callable[[nn.Module, dict], torch.Tensor] = default_loss,
          batch_fn: Callable[[int, int, int, int], tuple[list[int], int]] | None = None,
          resume_from: str | Path | None = None,
          parameter_groups: Sequence[dict] | None = None) -> History:
    """Train `model` on `dataset` for `config.max_steps` optimizer updates.

        >>> history = train(model, train_set, TrainingConfig(max_steps=500, learning_rate=1e-4))

    Args:
        model: any `nn.Module`; with the default `loss_fn`, `model(**batch).loss` is minimised.
        dataset: a sequence of examples (`len` and `dataset[i]`), usually following the
            protocol of `bertedu.batching` (`lengths`, `collate`). If it has `set_epoch(e)`,
            it is called when epoch e starts (dynamic masking uses it).
        config: a `TrainingConfig`.
        collate_fn: turns a list of examples into a dict of tensors, e.g. `{"input_ids":
            [B, T], "attention_mask": [B, T], "labels": ...}`; default `dataset.collate`.
        eval_fn: `eval_fn(model, step) -> {"name": value}`, called in eval mode without
            gradients every `config.eval_every` steps and after the last (first process only),
            without disturbing the training's random numbers.
        loss_fn: `loss_fn(model, batch) -> scalar loss`; default `model(**batch).loss`.
        batch_fn: `batch_fn(step, num_examples, batch_size, seed) -> (indices, epoch)`, a pure
            function of the step (so resuming draws the same batches). Default:
            `LengthGroupedBatches(dataset.lengths)` when the dataset has `lengths`, else
            `batch_indices` (random batches).
        resume_from: a checkpoint file, or a run folder holding `checkpoint.pt`, to continue
            exactly; its settings (`RESUME_MUST_MATCH`) must be the same (see `read_checkpoint`).
        parameter_groups: None (every parameter at `config.learning_rate`), or a list of
            `{"params": [...], "lr": peak_rate}` (see `make_optimizer`); the history's `lr` is
            `config.learning_rate`'s.

    Returns:
        The `History` (complete on the first process). The model is left on the device, in
        eval mode.
    """
    if len(dataset) == 0:
        raise ValueError("the dataset is empty")
    collate_fn, batch_fn = default_batching(dataset, collate_fn, batch_fn)
    rank, local_rank, world_size = distributed_setup()
    device = pick_device(config.device, local_rank)
    accumulation = config.gradient_accumulation_steps
    if config.batch_size % (world_size * accumulation):
        raise ValueError(f"batch_size={config.batch_size} must divide evenly into world_size="
                         f"{world_size} x gradient_accumulation_steps={accumulation}")
    steps_per_epoch(len(dataset), config.batch_size)  # fail now if the data is too small
    amp = use_mixed_precision(config.mixed_precision, device)
    first = rank == 0

    model.to(device)
    optimizer = make_optimizer(model, config, parameter_groups)
    set_seed(derive_seed(config.seed, rank))  # dropout differs between processes, as it should
    history, first_step = History(), 0
    if resume_from is not None:
        history, first_step = resume(resume_from, model, optimizer, config, rank, world_size)
    # The forward pass, loss included, as one module: DDP must see the whole forward to
    # average the gradients of all processes during backward(). DDP also copies process 0's
    # parameters to the others at construction, so every process starts equal.
    forward = ModelWithLoss(model, loss_fn)
    if world_size > 1:
        forward = nn.parallel.DistributedDataParallel(forward)

    last_step = config.max_steps if config.stop_after is None else config.stop_after
    start_seconds = time.perf_counter() - (history.train[-1]["seconds"] if history.train else 0.0)
    epoch_seen = None
    bar = progress_bar(first_step, last_step) if config.progress_bar and first else None

    model.train()
    for step in range(first_step, last_step):  # step = updates done so far
        # 1. This step's examples: the global batch, then this process's share of it.
        indices, epoch = batch_fn(step, len(dataset), config.batch_size, config.seed)
        if epoch != epoch_seen and hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        epoch_seen = epoch
        share = indices[rank::world_size]

        # 2. The learning rate of this step.
        lr = lr_at(step, config.learning_rate, config.warmup_steps, config.max_steps)
        for group in optimizer.param_groups:  # each group's own peak rate, same schedule
            group["lr"] = lr_at(step, group.get("peak_lr", config.learning_rate),
                                config.warmup_steps, config.max_steps)

        # 3. Forward and backward over the micro-batches; the gradients add up.
        loss_sum, tokens = 0.0, 0
        for m in range(accumulation):
            batch = to_device(collate_fn([dataset[i] for i in share[m::accumulation]]), device)
            tokens += count_tokens(batch)
            # DDP would average gradients after every backward; only the last one needs it
            last = m == accumulation - 1
            with contextlib.nullcontext() if last or world_size == 1 else forward.no_sync():
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    loss = forward(batch)
                (loss / accumulation).backward()
            loss_sum += loss.item()
        loss_value, tokens = mean_over_processes(loss_sum / accumulation, tokens, device, world_size)
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"the loss is {loss_value} at step {step + 1}: lower the learning "
                                     "rate, or check the labels (a batch with no labelled position has no loss)")

        # 4. Clip the gradient norm (no limit: only measure it), update, clear the gradients.
        max_norm = config.max_grad_norm if config.max_grad_norm is not None else float("inf")
        grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm).item()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

        # 5. Record, evaluate, save, counting this update: `done` updates are complete.
        done = step + 1
        history.train.append({"step": done, "loss": loss_value, "lr": lr, "grad_norm": grad_norm,
                              "tokens": tokens, "seconds": time.perf_counter() - start_seconds})
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}")
        if eval_fn is not None and first and is_due(done, config.eval_every, last_step):
            history.eval.append({"step": done, **evaluate(model, eval_fn, device, done)})
            if bar is not None:
                bar.write(f"step {done}: " + ", ".join(f"{k}={v:.4g}" for k, v in history.eval[-1].items()
                                                      if k != "step" and isinstance(v, (int, float))))
        if config.output_dir is not None and is_due(done, config.save_every, last_step):
            save_run(model, optimizer, done, history, config, first, world_size)
    if bar is not None:
        bar.close()
    model.eval()
    return history


def default_batching(dataset: Sequence, collate_fn: Callable | None, batch_fn: Callable | None) -> tuple:
    """`(collate_fn, batch_fn)`, the defaults of `train` filled in: `dataset.collate`, and
    `LengthGroupedBatches(dataset.lengths)` if the dataset has lengths, else `batch_indices`."""
    if collate_fn is None and not hasattr(dataset, "collate"):
        raise TypeError(f"a {type(dataset).__name__} has no collate method: pass collate_fn")
    if batch_fn is None:
        lengths = getattr(dataset, "lengths", None)
        batch_fn = batch_indices if lengths is None else LengthGroupedBatches(lengths)
    return (dataset.collate if collate_fn is None else collate_fn), batch_fn


def progress_bar(first_step: int, last_step: int):
    from tqdm.auto import tqdm
    return tqdm(total=last_step, initial=first_step, desc="training", dynamic_ncols=True)


def is_due(done: int, every: int | None, last_step: int) -> bool:
    """Evaluate or save now: after every `every` updates, and after the last one."""
    return done == last_step or bool(every and done % every == 0)


def resume(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer, config: TrainingConfig,
           rank: int, world_size: int) -> tuple[History, int]:
    """Load a run's checkpoint into `model` and `optimizer` and this process's random-number
    generators; return its history and the updates it had done."""
    state = read_checkpoint(path)  # checksum verified; may fall back to the previous one
    saved = state["config"]  # the settings first: a refusal copies nothing
    changed = {k: (saved.get(k), getattr(config, k)) for k in RESUME_MUST_MATCH
               if saved.get(k) != getattr(config, k)}
    if changed:
        raise ValueError(f"cannot resume {path}: settings differ from the saved run "
                         f"(saved, now): {changed}; resume with the same settings, or start a "
                         "new run from the saved model")
    copy_checkpoint_into(state, model, optimizer, source=path)
    if len(state["rng"]) == world_size:
        set_rng_state(state["rng"][rank])
    else:
        warnings.warn(f"the checkpoint was written by {len(state['rng'])} processes, this run has "
                      f"{world_size}: dropout will draw different numbers than the original run")
    history = History(train=list(state["history"]["train"]), eval=list(state["history"]["eval"]))
    return history, state["step"]


def mean_over_processes(loss: float, tokens: int, device: torch.device, world_size: int) -> tuple[float, int]:
    """The loss of the whole global batch (the mean over processes) and its token count (the sum)."""
    if world_size == 1:
        return loss, tokens
    totals = torch.tensor([loss, tokens], dtype=torch.float64, device=device)
    dist.all_reduce(totals)
    return totals[0].item() / world_size, int(totals[1].item())


def save_run(model: nn.Module, optimizer: torch.optim.Optimizer, done: int, history: History,
             config: TrainingConfig, first: bool, world_size: int) -> None:
    """Write `output_dir/checkpoint.pt` (from the first process) with every process's generators,
    so that each resumes its own dropout."""
    states = [rng_state()]
    if world_size > 1:
        states = [None] * world_size
        dist.all_gather_object(states, rng_state())
    if first:
        save_checkpoint(Path(config.output_dir) / CHECKPOINT_NAME, model, optimizer, done, history, config, states)


class ModelWithLoss(nn.Module):
    """`forward(batch)` = `loss_fn(model, batch)`: the unit that DistributedDataParallel wraps,
    so that a loss calling parts of the model still runs inside DDP's forward (or the
    gradients would silently not be averaged)."""

    def __init__(self, model: nn.Module, loss_fn: Callable[[nn.Module, dict], torch.Tensor]):
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: dict) -> torch.Tensor:
        return self.loss_fn(self.model, batch)


def evaluate(model: nn.Module, eval_fn: Callable[[nn.Module, int], dict], device: torch.device,
             step: int) -> dict:
    """Run `eval_fn(model, step)` in eval mode without gradients, leaving the random state as
    it was, so that evaluating (or not) never changes the training run."""
    devices = [device] if device.type == "cuda" else []
    with eval_mode(model), torch.random.fork_rng(devices=devices):
        python_state = random.getstate()
        metrics = eval_fn(model, step)
        random.setstate(python_state)
    if not isinstance(metrics, dict):
        raise TypeError(f"eval_fn must return a dict of metrics, got {type(metrics).__name__}")
    return {k: (v.item() if isinstance(v, torch.Tensor) else v) for k, v in metrics.items()}
