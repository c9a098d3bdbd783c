"""Getting more out of BERT downstream (chapter 12): the pieces the tricks need.

- **Further pretraining** on unlabeled in-task text, MLM only (Howard & Ruder 2018;
  Sun et al. 2019; Gururangan et al. 2020): `MaskedLMDataset` (single sentences, static,
  dynamic or selective masks; `token_importance` and `label_association` score tokens for
  selective masking, Gu et al. 2020), `mlm_loss` (the loss on the chosen positions only) and
  `masked_lm_accuracy` (how well an encoder still fills in blanks, to see forgetting).
- **Layer-wise learning-rate decay** (Howard & Ruder's discriminative fine-tuning; Sun et al.
  2019): `layerwise_lr_groups` gives the top block the peak rate and every block below it
  `decay` times the rate of the block above; `bertedu.training.train(parameter_groups=...)`
  uses them.
- **Which vector feeds the classifier**: `pool` ([CLS] of the last layer, the mean of the
  last layer's tokens, or the [CLS] of every layer concatenated) and `PooledClassifier`, whose
  `pooling="pooler"` is exactly `BertForSequenceClassification`.
- **External features** concatenated to the pooled vector: `PooledClassifier(num_features=F)`,
  `lexicon_features` (counts from a word list), and `ColumnsDataset` to carry per-example
  tensors (features, or a teacher's logits for self-distillation) through the batches.
- **An auxiliary MLM loss** while fine-tuning: `MultiTaskClassifier`.

Self-distillation uses `bertedu.distillation.distillation_loss`; EDA lives in `bertedu.augment`.

Shapes: B batch, T tokens, H hidden size, L blocks, F external features, V vocabulary.
"""
from __future__ import annotations

import math
import re
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .finetuning import pad_sequences
from .heads import HeadOutput
from .model import BertModel
from .pretraining import IGNORE_INDEX, chosen_mlm_logits, collate_pretraining, mask_tokens, special_ids
from .training import derive_seed

POOLINGS = ("pooler", "cls", "mean", "cls_layers")


# ---------------------------------------------------------------------------------------
# Further pretraining: MLM on single sentences
# ---------------------------------------------------------------------------------------
class MaskedLMDataset:
    """Unlabeled sentences as `[CLS] sentence [SEP]`, with BERT's 80/10/10 MLM masks.

    No NSP: further pretraining on single sentences (SST-2 has no "next sentence") trains the
    masked LM alone. Masks are drawn with `bertedu.pretraining.mask_tokens`:

    - `masking="static"`: each sentence is masked once, here, and keeps that mask (BERT);
    - `masking="dynamic"`: sentence i gets a fresh mask in every epoch, drawn from a generator
      seeded by `(seed, epoch, i)` (RoBERTa); the training loop calls `set_epoch`.
    - `masking="selective"`: each sentence is masked once, at its most important tokens
      (Gu et al. 2020): `importance[i]` gives one score per WordPiece of the encoding (e.g.
      from `token_importance`), and the k chosen positions are those of highest score.

    `dataset[i]` is a dict of 1-D LongTensors `input_ids`, `token_type_ids`, `labels`
    (-100 where nothing is predicted); `collate` pads them and adds `attention_mask`.

    Args:
        tokenizer: a `BertTokenizer`.
        texts: N sentences (at least one eligible token each after tokenization).
        masking: "static" or "dynamic".
        probability: share of tokens chosen for the MLM (0.15 in BERT).
        max_length: longest encoding, `[CLS]` and `[SEP]` included.
        seed: seeds the masks.
        importance: for `masking="selective"` only: N FloatTensors, one score per WordPiece of
            each encoding (`[CLS]` and `[SEP]` included, as `token_importance` returns them).
    """

    def __init__(self, tokenizer, texts: Sequence[str], masking: str = "dynamic",
                 probability: float = 0.15, max_length: int = 64, seed: int = 0,
                 importance: Sequence[torch.Tensor] | None = None):
        if masking not in ("static", "dynamic", "selective"):
            raise ValueError(f"masking must be 'static', 'dynamic' or 'selective', got {masking!r}")
        if (importance is not None) != (masking == "selective"):
            raise ValueError("pass importance (one score per WordPiece) exactly when masking='selective'")
        if isinstance(texts, str) or len(texts) == 0:
            raise ValueError("texts must be a non-empty list of sentences")
        if isinstance(probability, bool) or not 0.0 < probability <= 1.0:
            raise ValueError(f"probability must be in (0, 1], got {probability!r}")
        special_ids(tokenizer)
        self.tokenizer, self.masking, self.probability, self.seed = tokenizer, masking, probability, seed
        self.pad_token_id = tokenizer.pad_token_id
        self.epoch = 0
        encoded = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
        self.input_ids = [torch.tensor(ids) for ids in encoded]
        self.lengths = [len(ids) for ids in encoded]
        self.importance = None
        if importance is not None:
            if len(importance) != len(self.input_ids):
                raise ValueError(f"importance has {len(importance)} entries for {len(self.input_ids)} texts")
            for i, (scores, ids) in enumerate(zip(importance, self.input_ids)):
                if not isinstance(scores, torch.Tensor) or scores.shape != ids.shape:
                    got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
                    raise ValueError(f"importance[{i}] must have one score per WordPiece, shape {tuple(ids.shape)}, "
                                     f"got {got} (use token_importance with the same tokenizer and max_length)")
            self.importance = list(importance)
        fixed = masking in ("static", "selective")
        self.static = [self._mask(i, 0) for i in range(len(texts))] if fixed else None

    def _mask(self, i: int, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(derive_seed(self.seed, epoch, i))
        priority = self.importance[i][None] if self.importance is not None else None
        inputs, labels = mask_tokens(self.input_ids[i][None], self.tokenizer, self.probability, generator, priority)
        return inputs[0], labels[0]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, i: int) -> dict:
        inputs, labels = self.static[i] if self.static is not None else self._mask(i, self.epoch)
        return {"input_ids": inputs, "token_type_ids": torch.zeros_like(inputs), "labels": labels}

    def collate(self, items: Sequence[dict]) -> dict:
        """Pad to the longest item: `input_ids`, `token_type_ids`, `attention_mask`, `labels`, all `[B, T]`."""
        return collate_pretraining(list(items), self.pad_token_id)


def mlm_loss(model: nn.Module, batch: dict) -> torch.Tensor:
    """Masked-LM cross-entropy, mean over the chosen positions, of a model with `.bert` and
    `.cls.predictions` (`BertForPreTraining`, `BertForMaskedLM`).

    Equal to `BertForMaskedLM(**batch).loss`, but the vocabulary projection runs only at the
    chosen positions (`[N, H] -> [N, V]` instead of `[B, T, V]`), as in
    `bertedu.pretraining.pretraining_logits`. No NSP term: use it as `train(loss_fn=mlm_loss)`.
    """
    if "labels" not in batch:
        raise ValueError(f"an MLM batch needs labels (-100 = not predicted), got keys {sorted(batch)}")
    if not (batch["labels"] != IGNORE_INDEX).any():
        raise ValueError("no position of the batch is chosen for the MLM (every label is -100)")
    out = model.bert(batch["input_ids"], batch.get("token_type_ids"), batch.get("attention_mask"))
    logits, labels = chosen_mlm_logits(model, out.last_hidden_state, batch["labels"])  # (N, V), (N,)
    return F.cross_entropy(logits, labels)


@torch.no_grad()
def masked_lm_accuracy(model: nn.Module, dataset: MaskedLMDataset, batch_size: int = 256) -> float:
    """Share of the `[MASK]` positions whose original token the model ranks first.

    Only positions that show `[MASK]` count (at the 10% left unchanged the answer is in the
    input). `model` has `.bert` and `.cls.predictions`; use a static `dataset`, so every model
    is asked the same blanks.
    """
    if dataset.masking == "dynamic":
        raise ValueError("use a MaskedLMDataset with masking='static', so every model sees the same blanks")
    device, was_training = next(model.parameters()).device, model.training
    model.eval()
    correct = total = 0
    try:
        for start in range(0, len(dataset), batch_size):
            batch = dataset.collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
            batch = {k: v.to(device) for k, v in batch.items()}
            shown = (batch["labels"] != IGNORE_INDEX) & (batch["input_ids"] == dataset.tokenizer.mask_token_id)
            out = model.bert(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
            predicted = model.cls.predictions(out.last_hidden_state[shown]).argmax(-1)  # (N,)
            correct += (predicted == batch["labels"][shown]).sum().item()
            total += int(shown.sum())
    finally:
        model.train(was_training)
    if total == 0:
        raise ValueError("the dataset has no [MASK] position to score")
    return correct / total


@torch.no_grad()
def token_importance(classifier: nn.Module, tokenizer, texts: Sequence[str], max_length: int = 64,
                     batch_size: int = 256) -> list[torch.Tensor]:
    """How much each WordPiece supports a fine-tuned classifier's decision (for selective masking).

    For a text with encoding `x` and predicted class `y = argmax P(. | x)`, the importance of
    WordPiece `i` is `P(y | x) - P(y | x without WordPiece i)`: large when deleting the piece
    makes the classifier less sure (Gu et al. 2020 measure importance by the change in the
    classifier's confidence; they also train a second model to predict it on large corpora,
    which a few thousand sentences do not need). `[CLS]` and `[SEP]` get 0.

    Args:
        classifier: a fine-tuned model whose output has `.logits` `[B, num_labels]`.
        tokenizer: its `BertTokenizer`; texts: N sentences.
        max_length, batch_size: the encoding's length cap (as in `MaskedLMDataset`), rows per pass.

    Returns:
        N FloatTensors, `importance[i]` with one score per WordPiece of text i's encoding.
    """
    if isinstance(texts, str) or len(texts) == 0:
        raise ValueError("texts must be a non-empty list of sentences")
    device, was_training = next(classifier.parameters()).device, classifier.training
    classifier.eval()
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    rows, owners = [], []  # every text, then the text without each of its inner WordPieces
    for t, ids in enumerate(encoded):
        rows.append(ids)
        owners.append((t, -1))
        for i in range(1, len(ids) - 1):
            rows.append(ids[:i] + ids[i + 1:])
            owners.append((t, i))
    probabilities = []
    try:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            ids = pad_sequences(chunk, tokenizer.pad_token_id)                        # (b, T)
            mask = pad_sequences([[1] * len(row) for row in chunk], 0)                 # (b, T)
            probabilities.append(classifier(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float().softmax(-1).cpu())
    finally:
        classifier.train(was_training)
    probabilities = torch.cat(probabilities)  # (rows, num_labels)
    importance = [torch.zeros(len(ids)) for ids in encoded]
    full = {}
    for row, (t, i) in enumerate(owners):
        if i == -1:
            label = int(probabilities[row].argmax())
            full[t] = (label, probabilities[row, label].item())
        else:
            label, confidence = full[t]
            importance[t][i] = confidence - probabilities[row, label].item()
    return importance


def label_association(tokenizer, texts: Sequence[str], labels: Sequence[int], smoothing: float = 1.0) -> torch.Tensor:
    """How strongly each WordPiece is tied to one class of a labelled set: `[V]` scores.

    For two classes, the absolute log-count ratio `|log(p_w / q_w)|`, with `p_w` and `q_w` the
    smoothed frequencies of WordPiece w in the texts of class 1 and of class 0 (the weights of
    Wang & Manning's NB features). A cheap stand-in for `token_importance` on a large corpus:
    `importance = scores[input_ids]` gives every WordPiece of an unlabeled sentence the score of
    its type. Special tokens score 0.

    Args:
        tokenizer: a `BertTokenizer`; texts, labels: the labelled set (labels 0 or 1).
        smoothing: added to every count (Laplace), so unseen WordPieces score 0.
    """
    if isinstance(texts, str) or len(texts) == 0 or len(texts) != len(labels):
        raise ValueError(f"give as many labels as texts, at least one ({len(texts)} texts, {len(labels)} labels)")
    if any(label not in (0, 1) for label in labels):
        raise ValueError("labels must be 0 or 1: label_association scores two classes")
    if not smoothing > 0:
        raise ValueError(f"smoothing must be > 0, got {smoothing!r}")
    counts = torch.full((2, tokenizer.vocab_size), float(smoothing))
    for text, label in zip(texts, labels):
        for token_id in tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text)):
            counts[label, token_id] += 1
    frequencies = counts / counts.sum(dim=1, keepdim=True)
    scores = (frequencies[1].log() - frequencies[0].log()).abs()
    scores[special_ids(tokenizer)] = 0.0
    return scores


# ---------------------------------------------------------------------------------------
# Layer-wise learning-rate decay
# ---------------------------------------------------------------------------------------
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
    """Parameter groups for layer-wise learning-rate decay (LLRD).

    The task head and the pooler get `learning_rate`; block L (the top one) gets
    `learning_rate * decay`, block L-1 `learning_rate * decay**2`, ..., the embeddings
    `learning_rate * decay**(L + 1)`. Lower layers hold more general features and move less
    (Howard & Ruder 2018; Sun et al. 2019 use decay 0.95 on BERT-base). `decay = 1` is a
    single rate.

    Args:
        model: a model whose parameter names contain `embeddings.` and `encoder.layer.<i>.`
            (every bertedu and Hugging Face BERT).
        learning_rate: the peak rate of the head.
        decay: in (0, 1].
        num_layers: L; default `model.config.num_hidden_layers` (or `model.bert.config...`).

    Returns:
        A list of `{"params": [...], "lr": rate, "depth": d}` (one per depth that has
        parameters), for `bertedu.training.train(parameter_groups=...)`.
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


# ---------------------------------------------------------------------------------------
# Pooling and the classifier
# ---------------------------------------------------------------------------------------
def pool(hidden_states: Sequence[torch.Tensor], attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """One vector per sequence from the encoder's layers.

    Args:
        hidden_states: the L + 1 layer outputs `[B, T, H]` (embeddings first), as
            `BertModel(..., output_hidden_states=True).hidden_states`.
        attention_mask: `[B, T]`, 1 = token, 0 = padding.
        pooling: "cls" (the last layer's `[CLS]`, `[B, H]`), "mean" (the mean of the last
            layer's non-padding tokens, `[B, H]`), or "cls_layers" (the `[CLS]` of blocks
            1..L concatenated, `[B, L*H]`; the embedding layer's `[CLS]` is the same for every
            input, so it is left out).
    """
    last = hidden_states[-1]  # (B, T, H)
    if pooling == "cls":
        return last[:, 0]
    if pooling == "mean":
        mask = (attention_mask != 0)[:, :, None].to(last.dtype)  # (B, T, 1): any nonzero is a token
        return (last * mask).sum(1) / mask.sum(1).clamp(min=1.0)
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

    logits = W [pool(encoder(x)) ; features] + b, `[B, num_labels]`.

    `pooling="pooler"` reads `[CLS]` through BERT's tanh pooler: with the same weights it is
    exactly `BertForSequenceClassification`. "cls", "mean" and "cls_layers" are `pool`'s.

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


class MultiTaskClassifier(nn.Module):
    """A classifier trained with an auxiliary masked-LM loss on the same batch.

    In training mode with labels, the loss is
    `cross_entropy(classifier(x), y) + mlm_weight * mlm_loss(masked copy of x)`: the batch is
    masked again (BERT's 80/10/10 rule, torch's global generator, which `train` seeds) and the
    MLM head predicts the chosen tokens. In eval mode it is the classifier alone. The MLM head's
    decoder is tied to the classifier's word embeddings.

    Args:
        classifier: a `PooledClassifier` (anything with `.bert` and the classifier's forward).
        mlm_head: a `BertLMPredictionHead`, e.g. `copy.deepcopy(pretrained.cls.predictions)`.
        tokenizer: for the special and `[MASK]` ids.
        mlm_weight: weight of the auxiliary loss (> 0).
        probability: share of tokens masked.
    """

    def __init__(self, classifier: nn.Module, mlm_head: nn.Module, tokenizer, mlm_weight: float = 0.5,
                 probability: float = 0.15):
        super().__init__()
        if not mlm_weight > 0:
            raise ValueError(f"mlm_weight must be > 0 (0 is plain fine-tuning), got {mlm_weight!r}")
        special_ids(tokenizer)
        self.classifier, self.mlm_head, self.tokenizer = classifier, mlm_head, tokenizer
        self.mlm_weight, self.probability = mlm_weight, probability
        self.mlm_head.decoder.weight = classifier.bert.embeddings.word_embeddings.weight  # tied

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None, **kwargs) -> HeadOutput:
        out = self.classifier(input_ids, token_type_ids, attention_mask, labels=labels, **kwargs)
        if not self.training or labels is None:
            return out
        masked, mlm_labels = mask_tokens(input_ids, self.tokenizer, self.probability)  # (B, T) each
        chosen = mlm_labels != IGNORE_INDEX
        hidden = self.classifier.bert(masked, token_type_ids, attention_mask).last_hidden_state
        auxiliary = F.cross_entropy(self.mlm_head(hidden[chosen]), mlm_labels[chosen])  # over N chosen
        return HeadOutput(loss=out.loss + self.mlm_weight * auxiliary, logits=out.logits)


# ---------------------------------------------------------------------------------------
# External features and extra columns
# ---------------------------------------------------------------------------------------
NEGATIONS = frozenset({"not", "no", "never", "n't", "nothing", "neither", "nor", "without"})


def lexicon_features(texts: Sequence[str], positive: Sequence[str], negative: Sequence[str]) -> torch.Tensor:
    """Four hand-made features per sentence from whitespace-split words.

    Columns: positive-lexicon hits, negative-lexicon hits, negations (`NEGATIONS`), and
    log(1 + number of words). Returns FloatTensor `[N, 4]`. Standardize them (mean 0, std 1
    on the training set) before feeding a classifier.
    """
    if isinstance(texts, str) or len(texts) == 0:
        raise ValueError("texts must be a non-empty list of sentences")
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
    """A dataset with extra per-example tensors, carried into every batch.

    `ColumnsDataset(train_set, features=X, teacher_logits=Z)`: item i gains `features = X[i]`,
    `teacher_logits = Z[i]`; `collate` calls the wrapped dataset's `collate` and stacks each
    column to `[B, ...]`. `lengths` passes through (for `LengthGroupedBatches`).
    """

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
