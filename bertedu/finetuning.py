"""Fine-tuning glue for whole-sequence tasks: one text (or a pair) in, one class or one number out.

Chapters 7-9 fine-tune `BertForSequenceClassification` on SST-2, SMS Spam, MRPC, RTE and
STS-B. What sits between the dataset records and `bertedu.training.train`:

- `SequenceClassificationDataset` tokenizes every text once: `[CLS] A [SEP]` for one
  sentence, `[CLS] A [SEP] B [SEP]` for a pair (Devlin et al. 2019, figure 4). Each item has
  a class id (`num_labels >= 2`, cross-entropy) or a real-valued target (`num_labels == 1`,
  regression with mean squared error, as STS-B), the convention of `BertConfig.num_labels`.
- Dynamic padding: `collate_classification` pads a batch only to its own longest example,
  not to a fixed `max_length`. Most SST-2 sentences are short, so a batch padded to 128
  would be mostly `[PAD]`, which the encoder still computes.
- Length-grouped batches: `LengthGroupedBatches` is a drop-in for
  `bertedu.training.batch_indices` that puts examples of similar length into the same
  batch, so that little padding is left at all. Its batches are still random (a shuffled
  pool is sorted, cut into batches, and the batches shuffled again), and, like
  `batch_indices`, a pure function of the step, so a resumed run draws the same batches.
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

from .training import derive_seed, steps_per_epoch, to_device


# ---------------------------------------------------------------------------------------
# Padding
# ---------------------------------------------------------------------------------------
def pad_sequences(sequences: Sequence[Sequence[int] | torch.Tensor], padding_value: int) -> torch.Tensor:
    """Stack 1-D sequences of different lengths into one LongTensor, padded on the right.

    Example:
        >>> pad_sequences([[5, 6, 7], [8]], padding_value=0)
        tensor([[5, 6, 7],
                [8, 0, 0]])

    Args:
        sequences: `B` lists (or 1-D tensors) of ints.
        padding_value: what fills the positions after each sequence's end.

    Returns:
        LongTensor of shape `[B, T]`, `T` the longest length.
    """
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


def pad_inputs(items: list[dict], pad_token_id: int) -> dict:
    """Pad the encoder inputs of a batch to its longest example (dynamic padding).

    Returns:
        `input_ids` (padded with `pad_token_id`), `token_type_ids` and `attention_mask`
        (1 = token, 0 = padding): LongTensors `[B, max T_i]`.
    """
    if len(items) == 0:
        raise ValueError("cannot collate an empty list of examples")
    return {
        "input_ids": pad_sequences([item["input_ids"] for item in items], pad_token_id),
        "token_type_ids": pad_sequences([item["token_type_ids"] for item in items], 0),
        "attention_mask": pad_sequences([[1] * len(item["input_ids"]) for item in items], 0),
    }


def collate_classification(items: Sequence[dict], pad_token_id: int) -> dict:
    """Pad a list of `SequenceClassificationDataset` items to the longest one (dynamic padding).

    Padding gets `pad_token_id`, token type 0 and attention 0, so the encoder ignores it.

    Args:
        items: dicts with 1-D LongTensors `input_ids` and `token_type_ids` (length `T_i`)
            and, for labelled data, a 0-dim `labels` (long for classes, float for regression).
        pad_token_id: the `[PAD]` id (`tokenizer.pad_token_id`, 0 in BERT's vocabularies).

    Returns:
        `input_ids`, `token_type_ids`, `attention_mask`: LongTensors `[B, T]` with
        `T = max T_i`; `labels`: `[B]` if the items have labels.
    """
    batch = pad_inputs(items, pad_token_id)
    labels = stack_labels(items)
    if labels is not None:
        batch["labels"] = labels
    return batch


def stack_labels(items: Sequence[dict]) -> torch.Tensor | None:
    """The items' 0-dim `labels` stacked into `[B]`, or None if no item has one; a batch
    where only some items have labels is refused."""
    with_labels = sum("labels" in item for item in items)
    if with_labels not in (0, len(items)):
        raise ValueError(f"{with_labels} of the {len(items)} items have labels: a batch needs all or none")
    return torch.stack([item["labels"] for item in items]) if with_labels else None


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
# Batches of similar length
# ---------------------------------------------------------------------------------------
class LengthGroupedBatches:
    """Training batches of examples of similar length: a drop-in for `training.batch_indices`.

    `batches(step, num_examples, batch_size, seed) -> (indices, epoch)` has the signature
    and the contract of `bertedu.training.batch_indices`: epoch e holds `num_examples //
    batch_size` batches drawn without replacement, and batch k of epoch e depends only on
    `(k, e, seed)`. Only which examples meet in a batch changes. For epoch e:

    1. shuffle all examples with the permutation `batch_indices` uses, and drop its last
       `num_examples % batch_size` (the same examples `batch_indices` drops);
    2. cut the rest into pools of `pool_batches * batch_size` examples and sort each pool
       by length (a stable sort: equal lengths stay in random order);
    3. cut every pool into batches, then shuffle the order of all the epoch's batches, so
       that training does not meet the short batches first and the long ones last.

    A larger pool gives batches of more uniform length but less variety in which
    examples meet; Hugging Face's `group_by_length` sorts pools of up to 50 batches too.

    Example:
        >>> train(model, train_set, config, collate_fn=train_set.collate,
        ...       batch_fn=LengthGroupedBatches(train_set.lengths))
        >>> batches = LengthGroupedBatches(train_set.lengths)
        >>> indices, epoch = batches(step=0, num_examples=len(train_set), batch_size=32, seed=0)
        >>> [train_set.lengths[i] for i in indices]  # e.g. [21, 21, ..., 22, 22]: one or two lengths

    Args:
        lengths: the token count of every example of the dataset, `[N]`.
        pool_batches: how many batches are sorted together.
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
    """Indices `0..N-1` sorted by length and cut into batches, for evaluation (no randomness).

    Example:
        >>> sorted_batches([5, 2, 9, 2], batch_size=2)
        [[1, 3], [0, 2]]
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def padding_fraction(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Share of the positions of padded batches that are `[PAD]`.

    Each batch is padded to its longest member (`collate_classification`), so it holds
    `len(batch) * max length` positions, of which `sum of lengths` are real tokens.

    Example:
        >>> padding_fraction([5, 2, 9, 2], [[0, 1], [2, 3]])  # 1 - (5+2+9+2) / (2*5 + 2*9)
        0.3571428571428571
    """
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


@torch.no_grad()
def predict_logits(model: nn.Module, dataset: SequenceClassificationDataset, batch_size: int = 64) -> torch.Tensor:
    """The model's `logits` for every example, in dataset order.

    Examples are fed in length-sorted batches (`sorted_batches`), so little padding is
    computed; the rows are put back in dataset order. The model is put in eval mode (no
    dropout) and given back in the mode it came in. Labels are not passed to the model.

    Args:
        model: e.g. a `BertForSequenceClassification`.
        dataset: a `SequenceClassificationDataset` (anything with `lengths`, `collate`
            and items of `input_ids`).
        batch_size: examples per forward pass.

    Returns:
        FloatTensor `[N, num_labels]` on the CPU; `logits.argmax(-1)` are the predicted
        classes, or `logits[:, 0]` the predicted scores of a regression head.
    """
    device, was_training = model_device(model), model.training
    model.eval()
    rows = [None] * len(dataset)
    try:
        for indices in sorted_batches(dataset.lengths, batch_size):
            batch = dataset.collate([dataset[i] for i in indices])
            batch.pop("labels", None)
            logits = model(**to_device(batch, device)).logits.float().cpu()  # (B, num_labels)
            for i, row in zip(indices, logits):
                rows[i] = row
    finally:
        model.train(was_training)
    return torch.stack(rows)


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
