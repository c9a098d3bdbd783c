"""Turning token vectors into one vector per sequence, and a classifier on that vector.

`mean_pool`, `pool`, `PooledClassifier` (chapters 9 and 12), and external features for it:
`lexicon_features`, `ColumnsDataset`. Shapes: B batch, T tokens, H hidden, L blocks, F features.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .checks import check_strings
from .heads import HeadOutput
from .model import BertModel

POOLINGS = ("pooler", "cls", "mean", "cls_layers")


def mean_pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean of each sequence's token vectors, padding left out (`[CLS]` and `[SEP]` count).

    Args:
        last_hidden_state: FloatTensor `[B, T, H]`, the encoder's last layer.
        attention_mask: `[B, T]`, 1 = token, 0 = padding.

    Returns:
        FloatTensor `[B, H]`: `sum_t mask[b, t] h[b, t] / sum_t mask[b, t]`.
    """
    if last_hidden_state.dim() != 3:
        raise ValueError(f"last_hidden_state must be [B, T, H], got shape {tuple(last_hidden_state.shape)}")
    if attention_mask.shape != last_hidden_state.shape[:2]:
        raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}, but last_hidden_state is "
                         f"{tuple(last_hidden_state.shape)}: the mask must be [B, T] of the same B and T")
    mask = (attention_mask != 0).to(last_hidden_state.dtype).unsqueeze(-1)  # (B, T, 1): any nonzero is a token
    counts = mask.sum(dim=1)  # (B, 1)
    if (counts == 0).any():
        rows = (counts[:, 0] == 0).nonzero().flatten().tolist()
        raise ValueError(f"rows {rows} of attention_mask are all 0: a sequence needs at least one token "
                         "(a tokenized sentence always has [CLS] and [SEP])")
    return (last_hidden_state * mask).sum(dim=1) / counts  # (B, H)


def pool(hidden_states: Sequence[torch.Tensor], attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """One vector per sequence from the encoder's layers.

    Args:
        hidden_states: the L + 1 layer outputs `[B, T, H]` (embeddings first), as
            `BertModel(..., output_hidden_states=True).hidden_states`.
        attention_mask: `[B, T]`, 1 = token, 0 = padding.
        pooling: "cls" (the last layer's `[CLS]`, `[B, H]`), "mean" (`mean_pool` of the last
            layer, `[B, H]`) or "cls_layers" (the `[CLS]` of blocks 1..L concatenated,
            `[B, L*H]`; Devlin et al. 2019, section 5.3).
    """
    last = hidden_states[-1]  # (B, T, H)
    if pooling == "cls":
        return last[:, 0]
    if pooling == "mean":
        return mean_pool(last, attention_mask)
    if pooling == "cls_layers":
        return torch.cat([h[:, 0] for h in hidden_states[1:]], dim=-1)  # (B, L*H)
    raise ValueError(f"pooling must be one of {POOLINGS[1:]} here, got {pooling!r}")


def pooled_size(hidden_size: int, num_layers: int, pooling: str) -> int:
    """Width of the pooled vector: H, or L * H for "cls_layers"."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    return num_layers * hidden_size if pooling == "cls_layers" else hidden_size


class PooledClassifier(nn.Module):
    """An encoder, a choice of pooled vector, optional external features, dropout, linear.

    logits = W [pool(encoder(x)) ; features] + b, `[B, num_labels]`. `pooling="pooler"` (BERT's
    tanh pooler on `[CLS]`) is exactly `BertForSequenceClassification`; the others are `pool`'s.

    Args:
        bert: a `BertModel` (e.g. `BertForPreTraining.from_pretrained(folder).bert`); it needs
            its pooler for `pooling="pooler"`.
        num_labels: classes (>= 2).
        pooling: one of `POOLINGS`.
        num_features: F, the external features concatenated to the pooled vector (0: none).
        dropout: on the pooled vector (features are not dropped).
        initializer_range: std of the head's normal init (BERT's 0.02).
    """

    def __init__(self, bert: BertModel, num_labels: int = 2, pooling: str = "pooler",
                 num_features: int = 0, dropout: float = 0.1, initializer_range: float = 0.02):
        super().__init__()
        if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 2:
            raise ValueError(f"num_labels must be an int >= 2, got {num_labels!r}")
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 0:
            raise ValueError(f"num_features must be an int >= 0, got {num_features!r}")
        config = bert.config
        width = pooled_size(config.hidden_size, config.num_hidden_layers, pooling)
        if pooling == "pooler" and bert.pooler is None:
            raise ValueError("pooling='pooler' needs a BertModel with its pooler (add_pooling_layer=True)")
        self.config, self.bert, self.pooling = config, bert, pooling
        self.num_labels, self.num_features = num_labels, num_features
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(width + num_features, num_labels)
        nn.init.normal_(self.classifier.weight, std=initializer_range)
        nn.init.zeros_(self.classifier.bias)

    def pooled(self, input_ids, token_type_ids=None, attention_mask=None) -> torch.Tensor:
        """The pooled vector, `[B, H]` (or `[B, L*H]`), before dropout and features."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        layers = self.pooling == "cls_layers"
        out = self.bert(input_ids, token_type_ids, attention_mask, output_hidden_states=layers)
        if self.pooling == "pooler":
            return out.pooler_output
        return pool(out.hidden_states if layers else (out.last_hidden_state,), attention_mask, self.pooling)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None,
                features=None) -> HeadOutput:
        """`features`: FloatTensor `[B, F]` when `num_features = F > 0`; `labels`: LongTensor `[B]`."""
        if (features is None) != (self.num_features == 0):
            raise ValueError(f"the model takes {self.num_features} external features per example, got "
                             f"{'none' if features is None else tuple(features.shape)}: pass features=[B, F] "
                             "exactly when num_features > 0")
        x = self.dropout(self.pooled(input_ids, token_type_ids, attention_mask))  # (B, H)
        if features is not None:
            if features.dim() != 2 or features.shape != (x.size(0), self.num_features):
                raise ValueError(f"features must have shape [B, F] = [{x.size(0)}, {self.num_features}], "
                                 f"got {tuple(features.shape)}")
            x = torch.cat([x, features.to(x.dtype)], dim=-1)  # (B, H + F)
        logits = self.classifier(x)  # (B, num_labels)
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return HeadOutput(loss=loss, logits=logits)


# ---------------------------------------------------------------------------------------
# External features for PooledClassifier, and extra columns in the batches
# ---------------------------------------------------------------------------------------
NEGATIONS = frozenset({"not", "no", "never", "n't", "nothing", "neither", "nor", "without"})


def lexicon_features(texts: Sequence[str], positive: Sequence[str], negative: Sequence[str]) -> torch.Tensor:
    """Four features per sentence, FloatTensor `[N, 4]`: positive-lexicon hits, negative-lexicon
    hits, negations (`NEGATIONS`), log(1 + words). Standardize them before a classifier."""
    texts = check_strings(texts, "texts")
    positive, negative = set(positive), set(negative)
    if not positive or not negative:
        raise ValueError("give at least one positive and one negative word")
    if positive & negative:
        raise ValueError(f"words in both lexicons: {sorted(positive & negative)[:5]}")
    rows = []
    for text in texts:
        words = text.lower().split()
        rows.append([sum(w in positive for w in words), sum(w in negative for w in words),
                     sum(w in NEGATIONS for w in words), math.log1p(len(words))])
    return torch.tensor(rows, dtype=torch.float32)


class ColumnsDataset:
    """A dataset with extra per-example tensors: `ColumnsDataset(train_set, features=X)` adds
    `features = X[i]` to item i and `[B, ...]` to each batch; `lengths` passes through."""

    def __init__(self, dataset, **columns: torch.Tensor):
        if not columns:
            raise ValueError("give at least one column, e.g. features=tensor_of_shape_[N, F]")
        for name, column in columns.items():
            if not isinstance(column, torch.Tensor) or column.dim() == 0:
                raise ValueError(f"column {name!r} must be a tensor with one row per example")
            if len(column) != len(dataset):
                raise ValueError(f"column {name!r} has {len(column)} rows but the dataset has {len(dataset)} "
                                 "examples: give one row per example, in dataset order")
        self.dataset, self.columns = dataset, columns
        self.lengths = getattr(dataset, "lengths", None)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        return {**self.dataset[i], **{name: column[i] for name, column in self.columns.items()}}

    def collate(self, items: Sequence[dict]) -> dict:
        batch = self.dataset.collate([{k: v for k, v in item.items() if k not in self.columns} for item in items])
        for name in self.columns:
            batch[name] = torch.stack([item[name] for item in items])
        return batch
