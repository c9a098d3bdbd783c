"""One way to batch: the protocol every dataset follows, its padding, and its batch orders.

The protocol: a dataset that `training.train` and `predict` read has
- `len(dataset)` and `dataset[i]`: a dict of 1-D tensors `[T_i]` and 0-dim tensors;
- `dataset.lengths`: the `N` token counts `T_i` (for `LengthGroupedBatches`, `sorted_batches`);
- `dataset.collate(items)`: a dict of batched tensors, usually `pad_collate(items, pad_token_id)`.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from .heads import IGNORE_INDEX
from .precision import inference_autocast

# Keys a model needs only to compute a loss: `predict` leaves them out of the batch.
TARGET_KEYS = ("labels", "next_sentence_label", "start_positions", "end_positions")


# ---------------------------------------------------------------------------------------
# Padding
# ---------------------------------------------------------------------------------------
def pad_sequences(sequences: Sequence[Sequence[int] | torch.Tensor], padding_value: int) -> torch.Tensor:
    """Stack `B` 1-D int sequences (lists or tensors) into a LongTensor `[B, T]`, `T` the longest,
    right-padded with `padding_value`."""
    if len(sequences) == 0:
        raise ValueError("cannot pad an empty list of sequences: a batch needs at least one example")
    B, T = len(sequences), max(len(s) for s in sequences)
    out = torch.full((B, T), padding_value, dtype=torch.long)
    for b, sequence in enumerate(sequences):
        if len(sequence) == 0:
            continue  # all padding
        try:
            ids = torch.as_tensor(sequence)
        except (TypeError, ValueError, RuntimeError):
            ids = None
        if ids is None or ids.dim() != 1 or ids.is_floating_point() or ids.is_complex():
            raise TypeError(f"sequences[{b}] must be a flat list (or 1-D tensor) of integer token ids, "
                            f"got {sequence!r:.80}")
        out[b, : len(ids)] = ids
    return out


def padding_value(key: str, pad_token_id: int) -> int:
    """What `pad_collate` pads a 1-D key with: `[PAD]` for `input_ids*`, -100 for `labels`, else 0."""
    if key.startswith("input_ids"):
        return pad_token_id
    return IGNORE_INDEX if key == "labels" else 0


def pad_collate(items: Sequence[dict], pad_token_id: int) -> dict:
    """Batch a list of examples, padding each 1-D key to the longest (dynamic padding).

    Args:
        items: `B` dicts with the same keys: 1-D integer tensors `[T_i]` or 0-dim tensors.
        pad_token_id: the `[PAD]` id.

    Returns:
        1-D keys as LongTensors `[B, max T_i]` padded with `padding_value(key)`, plus an
        `attention_mask{suffix}` (1 = token) for each `input_ids{suffix}`; 0-dim keys as `[B]`.

    Raises:
        ValueError: no items, or a key on some items only.
    """
    if len(items) == 0:
        raise ValueError("cannot collate an empty list of examples")
    keys = list(items[0]) + sorted({k for item in items for k in item} - set(items[0]))
    for key in keys:
        have = sum(key in item for item in items)
        if have != len(items):
            raise ValueError(f"{have} of the {len(items)} items have {key}: a batch needs all or none")
    batch = {}
    for key in keys:
        values = [item[key] for item in items]
        if not all(isinstance(v, torch.Tensor) and v.dim() == values[0].dim() for v in values):
            raise TypeError(f"{key} must be a tensor of the same number of dimensions on every item")
        if values[0].dim() != 1:
            batch[key] = torch.stack(values)  # (B,) for 0-dim values
            continue
        batch[key] = pad_sequences(values, padding_value(key, pad_token_id))  # (B, T)
        mask = "attention_mask" + key[len("input_ids"):]
        if key.startswith("input_ids") and mask not in items[0]:
            batch[mask] = pad_sequences([torch.ones(len(v), dtype=torch.long) for v in values], 0)  # (B, T)
    return batch


# ---------------------------------------------------------------------------------------
# Batch orders
# ---------------------------------------------------------------------------------------
def derive_seed(*numbers: int) -> int:
    """Combine integers into one seed, the same in every process (no `hash`): `derive_seed(seed, epoch)`."""
    seed = 0
    for n in numbers:
        seed = (seed * 1_000_003 + int(n)) % (2**63)
    return seed


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Full global batches in one pass over the data (a last, smaller batch is dropped)."""
    if num_examples < batch_size:
        raise ValueError(f"the dataset has {num_examples} examples, fewer than batch_size={batch_size}")
    return num_examples // batch_size


def batch_indices(step: int, num_examples: int, batch_size: int, seed: int) -> tuple[list[int], int]:
    """The example indices of global batch `step` and its epoch (a permutation seeded by `(seed, epoch)`):
    the step alone decides, so a resumed run draws the same batches."""
    per_epoch = steps_per_epoch(num_examples, batch_size)
    epoch, k = divmod(step, per_epoch)
    order = torch.randperm(num_examples, generator=torch.Generator().manual_seed(derive_seed(seed, epoch)))
    return order[k * batch_size:(k + 1) * batch_size].tolist(), epoch


class LengthGroupedBatches:
    """Training batches of examples of similar length: a drop-in for `batch_indices`.

    For epoch e: shuffle as `batch_indices` does (dropping the same remainder), sort each pool of
    `pool_batches * batch_size` examples by length, cut into batches, shuffle the batches.

    Args:
        lengths, pool_batches: the `[N]` token counts of the dataset; batches sorted together.
    """

    def __init__(self, lengths: Sequence[int], pool_batches: int = 50):
        if len(lengths) == 0:
            raise ValueError("lengths is empty: pass dataset.lengths of a non-empty dataset")
        if isinstance(pool_batches, bool) or not isinstance(pool_batches, int) or pool_batches < 1:
            raise ValueError(f"pool_batches must be a positive int, got {pool_batches!r}")
        self.lengths = [int(n) for n in lengths]
        self.pool_batches = pool_batches
        self._cache_key, self._cache = None, None  # the batches of the last epoch computed

    def __call__(self, step: int, num_examples: int, batch_size: int, seed: int) -> tuple[list[int], int]:
        if num_examples != len(self.lengths):
            raise ValueError(f"these batches were built for {len(self.lengths)} lengths, but the dataset has "
                             f"{num_examples} examples: build LengthGroupedBatches(dataset.lengths) for it")
        epoch, k = divmod(step, steps_per_epoch(num_examples, batch_size))
        return list(self.epoch_batches(epoch, batch_size, seed)[k]), epoch

    def epoch_batches(self, epoch: int, batch_size: int, seed: int) -> list[list[int]]:
        """All batches of epoch `epoch`, in the order training takes them."""
        key = (epoch, batch_size, seed)
        if key != self._cache_key:  # computed once per epoch, not once per step
            N = len(self.lengths)
            kept = steps_per_epoch(N, batch_size) * batch_size
            # 1. The permutation of batch_indices, without the remainder it drops.
            order = torch.randperm(N, generator=torch.Generator().manual_seed(derive_seed(seed, epoch)))
            order = order[:kept].tolist()
            # 2. Sort each pool by length. 3. Cut into batches.
            pool = self.pool_batches * batch_size
            batches = []
            for start in range(0, kept, pool):
                by_length = sorted(order[start:start + pool], key=lambda i: self.lengths[i])
                batches += [by_length[j:j + batch_size] for j in range(0, len(by_length), batch_size)]
            # 3. Shuffle the batches (a seed of its own, distinct from step 1's).
            shuffle = torch.randperm(len(batches), generator=torch.Generator().manual_seed(derive_seed(seed, epoch, 1)))
            self._cache_key, self._cache = key, [batches[b] for b in shuffle.tolist()]
        return self._cache


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices `0..N-1` sorted by length and cut into batches, for evaluation (no randomness):
    `sorted_batches([5, 2, 9, 2], batch_size=2)` is `[[1, 3], [0, 2]]`."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def padding_fraction(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Share of the positions of padded batches (each padded to its longest) that are `[PAD]`."""
    if len(batches) == 0:
        raise ValueError("batches is empty")
    real = sum(lengths[i] for batch in batches for i in batch)
    total = sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)
    return 1 - real / total


# ---------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------
def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter."""
    return next(model.parameters()).device


def to_device(batch: dict, device: torch.device) -> dict:
    """The batch's tensors moved to `device` (other values as they are)."""
    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v)
            for k, v in batch.items()}


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """`with eval_mode(model):` dropout off, no gradients; then (even after an error) the mode it had."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def predict(model: nn.Module, dataset, output_fn: Callable[[nn.Module, dict], torch.Tensor],
            batch_size: int = 64, mixed_precision: bool | None = None) -> list[torch.Tensor]:
    """Run `model` over `dataset` in length-sorted batches under `eval_mode`, targets left out.

    Args:
        model: any `nn.Module`; the batches go to the device of its first parameter.
        dataset: follows this module's protocol.
        output_fn: `output_fn(model, batch) -> tensor [B, ...]`.
        batch_size: examples per forward pass.
        mixed_precision: bf16 autocast; None: where the hardware has bf16
            (`precision.use_mixed_precision`), except for models with int8 layers.

    Returns:
        `N` CPU tensors (bf16 results as fp32), row i for example i; a per-token row keeps
        the padded length `T`.
    """
    device = model_device(model)
    rows = [None] * len(dataset)
    with eval_mode(model), inference_autocast(model, device, mixed_precision):
        for indices in sorted_batches(dataset.lengths, batch_size):
            batch = dataset.collate([dataset[i] for i in indices])
            batch = {k: v for k, v in batch.items() if k not in TARGET_KEYS}
            output = output_fn(model, to_device(batch, device)).cpu()  # (B, ...)
            if output.dtype == torch.bfloat16:
                output = output.float()
            for i, row in zip(indices, output):
                rows[i] = row
    return rows
