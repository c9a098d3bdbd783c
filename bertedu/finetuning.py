"""Fine-tuning glue for whole-sequence tasks: one text (or a pair) in, one class or one number out.

`SequenceClassificationDataset` tokenizes once (`[CLS] A [SEP] B [SEP]` for a pair) and pads
each batch to its own longest (chapters 7-9); `predict_logits`, `majority_class` and
`confident_mistakes` evaluate.
"""
from __future__ import annotations

import math
import numbers
from collections import Counter
from typing import Sequence

import torch
from torch import nn

# The batching names chapters 7-14 import from here; they live in bertedu.batching.
from .batching import (LengthGroupedBatches, model_device, pad_collate, pad_sequences,  # noqa: F401
                       padding_fraction, predict, sorted_batches)
from .checks import check_strings


def collate_classification(items: Sequence[dict], pad_token_id: int) -> dict:
    """Pad `SequenceClassificationDataset` items to the longest with `pad_token_id` (`pad_collate`):
    `input_ids`, `attention_mask`, `token_type_ids` LongTensors `[B, max T_i]`, `labels` `[B]` if any."""
    return pad_collate(items, pad_token_id)


# ---------------------------------------------------------------------------------------
# The dataset
# ---------------------------------------------------------------------------------------
def _check_label(label, i: int, num_labels: int) -> None:
    """Raise unless `label` (example `i`) is a class id in [0, num_labels), or a finite number if 1."""
    if label is None:
        raise ValueError(f"labels[{i}] is None (GLUE test splits have no labels): pass labels=None "
                         "for unlabelled data, or drop the example")
    if isinstance(label, bool):
        raise TypeError(f"labels[{i}] is the bool {label!r}: use 0/1 class ids")
    if num_labels == 1:  # regression
        if not isinstance(label, numbers.Real) or not math.isfinite(label):
            raise ValueError(f"labels[{i}] = {label!r}: a regression target (num_labels=1) must be a finite number")
        return
    if not isinstance(label, numbers.Integral):
        raise TypeError(f"labels[{i}] = {label!r} is a {type(label).__name__}: class labels are int ids in "
                        f"[0, {num_labels}) (for a real-valued target use num_labels=1)")
    if not 0 <= label < num_labels:
        raise ValueError(f"labels[{i}] = {label} is out of range: class ids must lie in [0, {num_labels}) "
                         f"for num_labels={num_labels}")


class SequenceClassificationDataset:
    """Texts or text pairs, tokenized once, each with a class id or a regression target.

    Items: `input_ids`, `token_type_ids` `[T_i]` and a 0-dim `labels`; `lengths[i] = T_i`.

    Args:
        tokenizer: a `bertedu.tokenization.BertTokenizer`.
        texts, text_pairs: `N` strings (sentence A), and `N` (sentence B) for pair tasks or None.
        labels: `N` class ids in `[0, num_labels)`, or numbers when `num_labels == 1`; or None.
        num_labels: number of classes; 1 means regression (float targets, MSE loss).
        max_length: longest encoding; longer inputs are cut, the longer sentence first.
    """

    def __init__(self, tokenizer, texts: Sequence[str], labels: Sequence | None = None,
                 text_pairs: Sequence[str] | None = None, num_labels: int = 2, max_length: int = 128):
        texts = check_strings(texts, "texts")
        if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 1:
            raise ValueError(f"num_labels must be a positive int (1 = regression), got {num_labels!r}")
        for name, values in (("labels", labels), ("text_pairs", text_pairs)):
            if values is not None and len(values) != len(texts):
                raise ValueError(f"{name} has {len(values)} items but texts has {len(texts)}: give one per text")
        if labels is not None:
            for i, label in enumerate(labels):
                _check_label(label, i, num_labels)
        self.num_labels = num_labels
        self.max_length = max_length
        self.pad_token_id = tokenizer.pad_token_id
        encoded = tokenizer(list(texts), None if text_pairs is None else list(text_pairs),
                            truncation=True, max_length=max_length)
        self.items = []
        for i in range(len(texts)):
            item = {"input_ids": torch.tensor(encoded["input_ids"][i]),
                    "token_type_ids": torch.tensor(encoded["token_type_ids"][i])}
            if labels is not None:
                dtype = torch.float32 if num_labels == 1 else torch.long
                item["labels"] = torch.tensor(labels[i], dtype=dtype)
            self.items.append(item)
        self.lengths = [len(item["input_ids"]) for item in self.items]

    @classmethod
    def from_records(cls, records: Sequence[dict], tokenizer, text_key: str = "sentence",
                     pair_key: str | None = None, label_key: str | None = "label",
                     **kwargs) -> "SequenceClassificationDataset":
        """Build from the records of a `bertedu.data` loader, e.g.
        `from_records(load_mrpc("dev"), tok, "sentence1", "sentence2")`.

        Args:
            records: dicts, e.g. `{"sentence": ..., "label": ...}`.
            text_key, pair_key, label_key: the keys of sentence A, sentence B (or None), label (or None).
            **kwargs: `num_labels`, `max_length` (see the class).
        """
        if len(records) == 0:
            raise ValueError("records is empty: a dataset needs at least one example")
        for key in (text_key, pair_key, label_key):
            if key is not None and key not in records[0]:
                raise ValueError(f"the records have no key {key!r}; they have {sorted(records[0])}")

        def column(key):
            return None if key is None else [record[key] for record in records]

        return cls(tokenizer, column(text_key), column(label_key), column(pair_key), **kwargs)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return dict(self.items[i])

    def collate(self, items: Sequence[dict]) -> dict:
        """`collate_classification` with this tokenizer's `[PAD]` id."""
        return collate_classification(items, self.pad_token_id)


# ---------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------
def predict_logits(model: nn.Module, dataset: SequenceClassificationDataset, batch_size: int = 64,
                   mixed_precision: bool | None = None) -> torch.Tensor:
    """The model's `logits` `[N, num_labels]` (CPU) for every example of `dataset`, in dataset order,
    from length-sorted batches of `batch_size` in eval mode (`batching.predict`, bf16 autocast
    where the hardware has it unless `mixed_precision=False`)."""
    rows = predict(model, dataset, lambda model, batch: model(**batch).logits.float(), batch_size, mixed_precision)
    return torch.stack(rows)  # (N, num_labels)


# ---------------------------------------------------------------------------------------
# Error analysis and baselines
# ---------------------------------------------------------------------------------------
def majority_class(labels: Sequence[int]) -> int:
    """The most frequent class id of `labels` (the smallest on a tie): the majority baseline."""
    labels = [int(y) for y in (labels.tolist() if hasattr(labels, "tolist") else labels)]
    if not labels:
        raise ValueError("labels is empty: the majority class of no examples is undefined")
    counts = Counter(labels)
    return min(counts, key=lambda y: (-counts[y], y))


def confident_mistakes(logits: torch.Tensor, labels: Sequence[int], k: int = 5) -> list[dict]:
    """The `k` wrong predictions the model was surest of, as dicts `{"index", "label", "predicted",
    "confidence"}` (softmax probability), surest first (ties by index).

    Args:
        logits: FloatTensor `[N, C]`, e.g. from `predict_logits`.
        labels: the `N` true class ids.
        k: how many mistakes at most.
    """
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise ValueError(f"logits must be a 2-D tensor [N, num_classes], got "
                         f"{tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__}")
    labels = torch.as_tensor(labels.tolist() if hasattr(labels, "tolist") else list(labels), dtype=torch.long)
    N, C = logits.shape
    if labels.shape != (N,):
        raise ValueError(f"labels has {labels.numel()} items but logits has {N} rows: give one label per row")
    if N and (labels.min() < 0 or labels.max() >= C):
        raise ValueError(f"labels must be class ids in [0, {C}) for logits with {C} columns; "
                         f"found {labels.min().item()}..{labels.max().item()}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"k must be an int >= 0, got {k!r}")
    probs = logits.float().softmax(dim=-1)  # (N, C)
    confidence, predicted = probs.max(dim=-1)  # (N,), (N,)
    wrong = (predicted != labels).nonzero().flatten().tolist()
    wrong.sort(key=lambda i: (-confidence[i].item(), i))
    return [{"index": i, "label": labels[i].item(), "predicted": predicted[i].item(),
             "confidence": confidence[i].item()} for i in wrong[:k]]
