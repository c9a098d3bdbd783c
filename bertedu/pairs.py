"""Sentence pairs without a pair input: the bi-encoder side of chapter 9 (Sentence-BERT, 2019).

Example:
    >>> model = BertModel.from_pretrained(minilm_path())
    >>> tokenizer = BertTokenizer.from_pretrained(minilm_path())
    >>> cosine_scores(model, tokenizer, ["A man is playing a guitar."], ["A man plays the guitar."])
    tensor([0.93...])
"""
from __future__ import annotations

import math
import numbers
from typing import Sequence

import torch
from torch import nn

from .batching import eval_mode, model_device, pad_collate
from .checks import check_strings
from .finetuning import majority_class
from .heads import HeadOutput
from .metrics import accuracy
from .pooling import mean_pool

__all__ = ["embed_sentences", "cosine_scores", "majority_baseline_scores", "SentencePairDataset",
           "BiEncoderForSimilarity"]


def embed_sentences(model: nn.Module, tokenizer, sentences: Sequence[str], batch_size: int = 64,
                    max_length: int = 128) -> torch.Tensor:
    """One mean-pooled vector per sentence, FloatTensor `[N, H]` on the CPU, each read alone.

    Args:
        model, tokenizer: a `bertedu.BertModel` (run in eval mode) and its `BertTokenizer`.
        sentences: `N` strings; each distinct one is encoded once, in length-sorted batches.
        batch_size, max_length: sentences per forward pass; longest encoding (longer ones are cut).
    """
    sentences = check_strings(sentences, "sentences")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    distinct = sorted(set(sentences), key=lambda s: (len(s), s))  # similar lengths meet in a batch
    device = model_device(model)
    vectors = {}
    with eval_mode(model):
        for start in range(0, len(distinct), batch_size):
            chunk = distinct[start:start + batch_size]
            batch = tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            batch = {k: v.to(device) for k, v in batch.items()}
            hidden = model(**batch).last_hidden_state  # (B, T, H)
            pooled = mean_pool(hidden, batch["attention_mask"]).float().cpu()  # (B, H)
            vectors.update(zip(chunk, pooled))
    return torch.stack([vectors[s] for s in sentences])  # (N, H)


def cosine_scores(model: nn.Module, tokenizer, sentences_a: Sequence[str], sentences_b: Sequence[str],
                  **kwargs) -> torch.Tensor:
    """cos(mean vector of A_i, mean vector of B_i) for each pair: FloatTensor `[N]` in [-1, 1].

    Args:
        sentences_a, sentences_b: `N` strings each; pair i is `(sentences_a[i], sentences_b[i])`.
        **kwargs: passed to `embed_sentences`.
    """
    sentences_a = check_strings(sentences_a, "sentences_a")
    sentences_b = check_strings(sentences_b, "sentences_b")
    if len(sentences_a) != len(sentences_b):
        raise ValueError(f"sentences_a has {len(sentences_a)} sentences but sentences_b has {len(sentences_b)}: "
                         "give one B per A")
    vectors = embed_sentences(model, tokenizer, sentences_a + sentences_b, **kwargs)  # (2N, H), one pass
    a, b = vectors[:len(sentences_a)], vectors[len(sentences_a):]
    return nn.functional.cosine_similarity(a, b, dim=-1)  # (N,)


def majority_baseline_scores(train_labels: Sequence[int], eval_labels: Sequence[int]) -> dict:
    """Predict the most frequent training class (ties: the smallest id) for every eval example.

    Returns:
        `{"label": that class, "accuracy": on eval_labels, "predictions": [label] * len(eval_labels)}`.
    """
    if len(train_labels) == 0 or len(eval_labels) == 0:
        raise ValueError("majority_baseline_scores needs at least one training and one evaluation label")
    if any(label is None for label in train_labels):
        raise ValueError("train_labels contains None (an unlabelled test split?): pass labelled data")
    label = majority_class(train_labels)
    predictions = [label] * len(eval_labels)
    return {"label": label, "accuracy": accuracy(predictions, eval_labels), "predictions": predictions}


# ---------------------------------------------------------------------------------------
# Fine-tuning the bi-encoder: Sentence-BERT's regression objective
# ---------------------------------------------------------------------------------------
class SentencePairDataset:
    """Sentence pairs for a bi-encoder: A and B tokenized **separately**, each `[CLS] s [SEP]`
    (cut at `max_length`); `labels`: `N` finite numbers (e.g. the STS-B score / 5) or None.

    Items: `input_ids_a` `[Ta_i]`, `input_ids_b` `[Tb_i]`, float `labels`; `lengths[i] = Ta_i + Tb_i`.
    """

    def __init__(self, tokenizer, sentences_a: Sequence[str], sentences_b: Sequence[str],
                 labels: Sequence[float] | None = None, max_length: int = 128):
        sentences_a = check_strings(sentences_a, "sentences_a")
        sentences_b = check_strings(sentences_b, "sentences_b")
        if len(sentences_a) != len(sentences_b):
            raise ValueError(f"sentences_a has {len(sentences_a)} sentences but sentences_b has "
                             f"{len(sentences_b)}: give one B per A")
        if labels is not None:
            if len(labels) != len(sentences_a):
                raise ValueError(f"labels has {len(labels)} items but there are {len(sentences_a)} pairs: "
                                 "give one label per pair")
            for i, label in enumerate(labels):
                if isinstance(label, bool) or not isinstance(label, numbers.Real) or not math.isfinite(label):
                    raise ValueError(f"labels[{i}] = {label!r}: a similarity target must be a finite number")
        self.pad_token_id = tokenizer.pad_token_id
        encoded_a = tokenizer(sentences_a, truncation=True, max_length=max_length)["input_ids"]
        encoded_b = tokenizer(sentences_b, truncation=True, max_length=max_length)["input_ids"]
        self.items = []
        for i, (ids_a, ids_b) in enumerate(zip(encoded_a, encoded_b)):
            item = {"input_ids_a": torch.tensor(ids_a), "input_ids_b": torch.tensor(ids_b)}
            if labels is not None:
                item["labels"] = torch.tensor(float(labels[i]), dtype=torch.float32)
            self.items.append(item)
        self.lengths = [len(a) + len(b) for a, b in zip(encoded_a, encoded_b)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return dict(self.items[i])

    def collate(self, items: Sequence[dict]) -> dict:
        """Pad each side: `input_ids_a`, `attention_mask_a` `[B, Ta]`, `..._b` `[B, Tb]`, `labels` `[B]`."""
        return pad_collate(items, self.pad_token_id)


class BiEncoderForSimilarity(nn.Module):
    """A bi-encoder trained as regression: the cosine of two mean-pooled vectors, MSE loss
    (Reimers & Gurevych 2019, section 3). No new weights: it starts as `cosine_scores`.

    Args:
        bert: a `bertedu.BertModel`, e.g. `BertModel.from_pretrained(minilm_path())`.
    """

    def __init__(self, bert: nn.Module):
        super().__init__()
        self.bert = bert

    @classmethod
    def from_pretrained(cls, folder, **kwargs) -> "BiEncoderForSimilarity":
        """The bi-encoder on the `BertModel` stored in a Hugging Face folder."""
        from .model import BertModel
        return cls(BertModel.from_pretrained(folder, **kwargs))

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Mean-pooled sentence vectors: `[B, T]` ids and mask -> FloatTensor `[B, H]`."""
        hidden = self.bert(input_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, H)
        return mean_pool(hidden, attention_mask)

    def forward(self, input_ids_a: torch.Tensor, attention_mask_a: torch.Tensor,
                input_ids_b: torch.Tensor, attention_mask_b: torch.Tensor,
                labels: torch.Tensor | None = None) -> HeadOutput:
        """`HeadOutput(loss=mean((cos - labels)^2) or None, logits=cos [B, 1])`.

        Args:
            input_ids_a, attention_mask_a, input_ids_b, attention_mask_b: `[B, Ta]`, `[B, Tb]`.
            labels: FloatTensor `[B]`, the target cosine (e.g. the STS-B score / 5).
        """
        u = self.encode(input_ids_a, attention_mask_a)  # (B, H)
        v = self.encode(input_ids_b, attention_mask_b)  # (B, H)
        cos = nn.functional.cosine_similarity(u, v, dim=-1)  # (B,)
        loss = None
        if labels is not None:
            if labels.shape != cos.shape:
                raise ValueError(f"labels has shape {tuple(labels.shape)}, expected {tuple(cos.shape)}: "
                                 "one target per pair")
            loss = nn.functional.mse_loss(cos, labels.to(cos.dtype))
        return HeadOutput(loss=loss, logits=cos.unsqueeze(-1))
