"""Fine-tuning glue for whole-sequence tasks: one text (or a pair) in, one class or one number out.

Chapters 7-9 fine-tune `BertForSequenceClassification` on SST-2, SMS Spam, MRPC, RTE and
STS-B. What sits between the dataset records and `bertedu.training.train`:

- `SequenceClassificationDataset` tokenizes every text once: `[CLS] A [SEP]` for one
  sentence, `[CLS] A [SEP] B [SEP]` for a pair (Devlin et al. 2019, figure 4). Each item has
  a class id (`num_labels >= 2`, cross-entropy) or a real-valued target (`num_labels == 1`,
  regression with mean squared error, as STS-B), the convention of `BertConfig.num_labels`.
- Dynamic padding: `collate_classification` (`bertedu.batching.pad_collate`) pads a batch
  only to its own longest example, not to a fixed `max_length`. Most SST-2 sentences are
  short, so a batch padded to 128 would be mostly `[PAD]`, which the encoder still computes.
- Length-grouped batches: the dataset has `lengths`, so `train` draws its batches with
  `bertedu.batching.LengthGroupedBatches`, which puts examples of similar length into the
  same batch, so that little padding is left at all (re-exported here with `pad_sequences`,
  `sorted_batches`, `padding_fraction`).
- `predict_logits` runs a model over a dataset for evaluation, in length-sorted batches.
- `majority_class` (the baseline every score is read against) and `confident_mistakes`
  (the wrong predictions the model was surest of, where error analysis starts).

Example:
    >>> train_set = SequenceClassificationDataset.from_records(load_sst2("train"), tokenizer)
    >>> batch = train_set.collate([train_set[0], train_set[1]])
    >>> batch["input_ids"].shape  # [2, length of the longer of the two]
    torch.Size([2, 11])
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


def collate_classification(items: Sequence[dict], pad_token_id: int) -> dict:
    """Pad a list of `SequenceClassificationDataset` items to the longest one (dynamic padding):
    `bertedu.batching.pad_collate`.

    Padding gets `pad_token_id`, token type 0 and attention 0, so the encoder ignores it.

    Args:
        items: dicts with 1-D LongTensors `input_ids` and `token_type_ids` (length `T_i`)
            and, for labelled data, a 0-dim `labels` (long for classes, float for regression).
        pad_token_id: the `[PAD]` id (`tokenizer.pad_token_id`, 0 in BERT's vocabularies).

    Returns:
        `input_ids`, `attention_mask`, `token_type_ids`: LongTensors `[B, T]` with
        `T = max T_i`; `labels`: `[B]` if the items have labels.
    """
    return pad_collate(items, pad_token_id)


# ---------------------------------------------------------------------------------------
# The dataset
# ---------------------------------------------------------------------------------------
def _check_label(label, i: int, num_labels: int) -> None:
    """Raise if `label` (of example `i`) is not a class id in [0, num_labels) or, for
    num_labels == 1, a finite number."""
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

    `dataset[i]` is `{"input_ids": LongTensor [T_i], "token_type_ids": LongTensor [T_i],
    "labels": 0-dim tensor}` (no `labels` for unlabelled data); `T_i` differs per example,
    and `dataset.collate(items)` pads a batch to its longest (`collate_classification`).
    `dataset.lengths[i] = T_i` feeds `LengthGroupedBatches`.

    Example:
        >>> ds = SequenceClassificationDataset(tokenizer, ["a fine film", "dull"], labels=[1, 0])
        >>> ds[1]
        {'input_ids': tensor([  101, 10634,   102]), 'token_type_ids': tensor([0, 0, 0]), 'labels': tensor(0)}

    Args:
        tokenizer: a `bertedu.tokenization.BertTokenizer`.
        texts: `N` strings (sentence A).
        labels: `N` class ids in `[0, num_labels)`, or `N` numbers when `num_labels == 1`;
            None for unlabelled data.
        text_pairs: `N` strings (sentence B) for pair tasks (MRPC, RTE, STS-B), or None.
        num_labels: number of classes; 1 means regression (float targets, MSE loss), the
            convention of `BertConfig.num_labels` and `BertForSequenceClassification`.
        max_length: longest encoding, special tokens included; longer inputs are cut,
            the longer sentence of a pair first (`truncation="longest_first"`).
    """

    def __init__(self, tokenizer, texts: Sequence[str], labels: Sequence | None = None,
                 text_pairs: Sequence[str] | None = None, num_labels: int = 2, max_length: int = 128):
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise TypeError(f"texts must be a list of strings, got {type(texts).__name__}")
        if len(texts) == 0:
            raise ValueError("texts is empty: a dataset needs at least one example")
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
        """Build from the records of a `bertedu.data` loader.

        Examples:
            >>> from_records(load_sst2("train"), tok)                                  # SST-2
            >>> from_records(load_smsspam(), tok, text_key="text")                     # SMS Spam
            >>> from_records(load_mrpc("dev"), tok, "sentence1", "sentence2")          # MRPC, RTE
            >>> from_records(load_stsb("dev"), tok, "sentence1", "sentence2", "score",
            ...              num_labels=1)                                             # STS-B

        Args:
            records: dicts, e.g. `{"sentence": ..., "label": ...}`.
            text_key, pair_key: the keys of sentence A and (for pairs) sentence B.
            label_key: the key of the label; None for unlabelled data.
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
def predict_logits(model: nn.Module, dataset: SequenceClassificationDataset, batch_size: int = 64) -> torch.Tensor:
    """The model's `logits` for every example, in dataset order.

    Examples are fed in length-sorted batches (`bertedu.batching.predict`), so little
    padding is computed; the rows are put back in dataset order. The model is put in eval
    mode (no dropout) and given back in the mode it came in. Labels are not passed to the model.

    Args:
        model: e.g. a `BertForSequenceClassification`.
        dataset: a `SequenceClassificationDataset` (anything with `lengths`, `collate`
            and items of `input_ids`).
        batch_size: examples per forward pass.

    Returns:
        FloatTensor `[N, num_labels]` on the CPU; `logits.argmax(-1)` are the predicted
        classes, or `logits[:, 0]` the predicted scores of a regression head.
    """
    rows = predict(model, dataset, lambda model, batch: model(**batch).logits.float(), batch_size)
    return torch.stack(rows)  # (N, num_labels)


# ---------------------------------------------------------------------------------------
# Error analysis and baselines
# ---------------------------------------------------------------------------------------
def majority_class(labels: Sequence[int]) -> int:
    """The most frequent class id of `labels` (the smallest id on a tie).

    The majority-class baseline predicts it for every example: choose it on the training
    labels, score it on the test labels, and print it next to every metric of a model.

    Example:
        >>> majority_class([0, 1, 1, 2, 1])
        1
    """
    labels = [int(y) for y in (labels.tolist() if hasattr(labels, "tolist") else labels)]
    if not labels:
        raise ValueError("labels is empty: the majority class of no examples is undefined")
    counts = Counter(labels)
    return min(counts, key=lambda y: (-counts[y], y))


def confident_mistakes(logits: torch.Tensor, labels: Sequence[int], k: int = 5) -> list[dict]:
    """The `k` wrong predictions the model was surest of, surest first.

    The confidence of a prediction is the softmax probability of the predicted class. The
    most confident mistakes are where to look first in error analysis: wrong labels, irony,
    a negation the model missed.

    Example:
        >>> confident_mistakes(torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 0.0]]), [1, 0, 0], k=5)
        [{'index': 1, 'label': 0, 'predicted': 1, 'confidence': 0.952...},
         {'index': 0, 'label': 1, 'predicted': 0, 'confidence': 0.880...}]

    Args:
        logits: FloatTensor `[N, C]`, e.g. from `predict_logits`.
        labels: the `N` true class ids.
        k: how many mistakes at most (fewer if the model made fewer).

    Returns:
        Up to `k` dicts `{"index", "label", "predicted", "confidence"}`, `index` into the
        dataset, sorted by decreasing confidence (ties by index).
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
