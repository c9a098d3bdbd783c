"""Token-classification glue for named-entity recognition: a tag per word in, a tag per word out.

BERT reads WordPieces while CoNLL-2003 tags words; as in the BERT paper (section 5.3), a
word is classified at its first piece (chapter 10):

    words      EU       rejects             German    call
    pieces     [CLS] eu   rejects   ger ##man   call   [SEP]
    word_ids   None  0    1         2   2       3      None
    labels     -100  B-ORG O        B-MISC -100 O      -100

Fine-tuning: `encode_words`, `align_labels`, `word_tags`, `NerDataset`, `predict_tags`.
Feature-based (frozen encoder, the paper's table 7): `extract_word_features`,
`combine_layers`, `ScalarMix`, `FeatureTagger`. Words without a piece get no loss and "O".
"""
from __future__ import annotations

import numbers
from typing import Sequence

import torch
from torch import nn

from .checks import check_words
from .data import CONLL_NER_LABELS
from .batching import eval_mode, model_device, pad_collate, pad_sequences, predict, sorted_batches, to_device
from .heads import IGNORE_INDEX, HeadOutput


# ---------------------------------------------------------------------------------------
# Words -> pieces
# ---------------------------------------------------------------------------------------
def encode_words(words: Sequence[str], tokenizer, max_length: int | None = None,
                 cache: dict | None = None) -> dict:
    """Tokenize a sentence given as words, each on its own: `[CLS] pieces of word 0 ... [SEP]`,
    with `word_ids`, the word of each piece ("U.S." -> `u . s .`, four pieces of one word).

    Args:
        words: the sentence's `W` words; tokenizer: a `BertTokenizer`.
        max_length: longest encoding, `[CLS]` and `[SEP]` included (None: the tokenizer's);
            pieces past it are cut and their words get no piece.
        cache: an optional dict word -> piece ids shared across calls (each word tokenized once).

    Returns:
        `{"input_ids", "token_type_ids" (all 0), "word_ids"}`, lists `[T]`; `word_ids[t]` is
        the index in `words` of piece t's word, None for `[CLS]` and `[SEP]`.
    """
    words = check_words(words)
    max_length = tokenizer.model_max_length if max_length is None else max_length
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 3:
        raise ValueError(f"max_length must be an int >= 3 ([CLS], one piece, [SEP]), got {max_length!r}")
    cache = {} if cache is None else cache
    input_ids, word_ids = [tokenizer.cls_token_id], [None]
    for w, word in enumerate(words):
        if word not in cache:
            cache[word] = tokenizer(word, add_special_tokens=False)["input_ids"]
        input_ids += cache[word]
        word_ids += [w] * len(cache[word])
    input_ids, word_ids = input_ids[:max_length - 1], word_ids[:max_length - 1]  # room for [SEP]
    input_ids.append(tokenizer.sep_token_id)
    word_ids.append(None)
    return {"input_ids": input_ids, "token_type_ids": [0] * len(input_ids), "word_ids": word_ids}


def align_labels(word_ids: Sequence[int | None], word_labels: Sequence[int],
                 num_labels: int | None = None) -> list[int]:
    """Word labels -> piece labels: the first piece of a word gets its label, the rest -100.

    Args:
        word_ids: `[T]`, the word of each piece, None for special tokens (`encode_words`).
        word_labels: `[W]` label ids, one per word; num_labels: if given, labels must be below it.

    Returns:
        `[T]` label ids, -100 (`IGNORE_INDEX`) where the loss must not look.
    """
    for i, label in enumerate(word_labels):
        if isinstance(label, bool) or not isinstance(label, numbers.Integral):
            raise TypeError(f"word_labels[{i}] = {label!r} is not an int label id")
        if num_labels is not None and not 0 <= label < num_labels:
            raise ValueError(f"word_labels[{i}] = {label} is out of range [0, {num_labels})")
    labels, previous = [], None
    for t, w in enumerate(word_ids):
        if w is not None and not 0 <= w < len(word_labels):
            raise ValueError(f"word_ids[{t}] = {w}, but there are only {len(word_labels)} word labels: "
                             "give one label per word")
        first_piece = w is not None and w != previous
        labels.append(word_labels[w] if first_piece else IGNORE_INDEX)
        previous = w
    return labels


def word_tags(piece_predictions: Sequence[int] | torch.Tensor, word_ids: Sequence[int | None],
              label_names: Sequence[str], num_words: int) -> list[str]:
    """Per-piece predicted label ids -> `num_words` tags, each read at the word's first piece;
    a word without a piece gets "O". Tags are returned as predicted (no IOB2 repair).

    Args:
        piece_predictions: `[T]` label ids of one sentence, without its padding.
        word_ids: `[T]`, from `encode_words`.
        label_names: id -> tag, e.g. `bertedu.data.CONLL_NER_LABELS`.
        num_words: `W`, the number of words of the sentence.
    """
    if isinstance(piece_predictions, torch.Tensor):
        if piece_predictions.dim() != 1:
            raise ValueError(f"piece_predictions must be 1-D (one sentence), got shape "
                             f"{tuple(piece_predictions.shape)}: take argmax(-1) and one row")
        piece_predictions = piece_predictions.tolist()
    if len(piece_predictions) != len(word_ids):
        raise ValueError(f"{len(piece_predictions)} piece predictions for {len(word_ids)} word_ids: "
                         "cut the batch's padding off first, e.g. predictions[b, :len(word_ids)]")
    tags = ["O"] * num_words
    seen = set()
    for prediction, w in zip(piece_predictions, word_ids):
        if w is None or w in seen:
            continue
        if not 0 <= w < num_words:
            raise ValueError(f"word id {w} is out of range for num_words={num_words}")
        if not 0 <= prediction < len(label_names):
            raise ValueError(f"predicted label id {prediction} is out of range for {len(label_names)} label names")
        tags[w] = label_names[prediction]
        seen.add(w)
    return tags


# ---------------------------------------------------------------------------------------
# Dataset and batches
# ---------------------------------------------------------------------------------------
def collate_token_classification(items: Sequence[dict], pad_token_id: int) -> dict:
    """Pad `NerDataset` items to the longest (`pad_collate`): `input_ids`, `attention_mask`,
    `token_type_ids` and, if the items have them, `labels` (-100 on padding), all `[B, T]`."""
    return pad_collate(items, pad_token_id)


class NerDataset:
    """CoNLL-style sentences (`{"tokens": [...], "ner_tags": [...]}`) as BERT inputs and labels:
    `dataset[i]` is `{"input_ids", "token_type_ids", "labels"}`, 1-D LongTensors `[T_i]`, labels
    from `align_labels`; `dataset.word_ids[i]` maps pieces to words; `dataset.collate` pads.

    Args:
        records: dicts with `tokens` (words) and, to train, `ner_tags` (tag names or ids).
        tokenizer: a `bertedu.tokenization.BertTokenizer`.
        label_names: the tag set, `CONLL_NER_LABELS` (Hugging Face's `conll2003` order) by default.
        max_length: see `encode_words`; `num_truncated` counts the sentences it cut.
    """

    def __init__(self, records: Sequence[dict], tokenizer, label_names: Sequence[str] = CONLL_NER_LABELS,
                 max_length: int | None = None):
        if len(records) == 0:
            raise ValueError("records is empty: a dataset needs at least one sentence")
        self.label_names = list(label_names)
        label_id = {name: i for i, name in enumerate(self.label_names)}
        self.pad_token_id = tokenizer.pad_token_id
        self.items, self.word_ids, self.tags = [], [], []
        self.num_truncated = 0
        cache = {}  # word -> piece ids
        labelled = "ner_tags" in records[0]
        for r, record in enumerate(records):
            if "tokens" not in record:
                raise ValueError(f"records[{r}] has no 'tokens' (the words): it has {sorted(record)}")
            if ("ner_tags" in record) != labelled:
                raise ValueError(f"records[{r}] {'lacks' if labelled else 'has'} 'ner_tags', unlike records[0]: "
                                 "give tags for every sentence or for none")
            words = check_words(record["tokens"], f"records[{r}]['tokens']")
            encoded = encode_words(words, tokenizer, max_length, cache)
            item = {"input_ids": torch.tensor(encoded["input_ids"]),
                    "token_type_ids": torch.tensor(encoded["token_type_ids"])}
            if labelled:
                tags = record["ner_tags"]
                if len(tags) != len(words):
                    raise ValueError(f"records[{r}] has {len(words)} tokens but {len(tags)} ner_tags: "
                                     "give exactly one tag per word")
                ids = []
                for i, tag in enumerate(tags):
                    if isinstance(tag, str):
                        if tag not in label_id:
                            raise ValueError(f"records[{r}]['ner_tags'][{i}] = {tag!r} is not one of "
                                             f"label_names {self.label_names}")
                        ids.append(label_id[tag])
                    elif isinstance(tag, numbers.Integral) and not isinstance(tag, bool):
                        if not 0 <= tag < len(self.label_names):
                            raise ValueError(f"records[{r}]['ner_tags'][{i}] = {tag} is out of range "
                                             f"[0, {len(self.label_names)}) for label_names {self.label_names}")
                        ids.append(int(tag))
                    else:
                        raise TypeError(f"records[{r}]['ner_tags'][{i}] = {tag!r}: tags are names "
                                        "('B-PER') or int ids")
                item["labels"] = torch.tensor(align_labels(encoded["word_ids"], ids))
                self.tags.append([self.label_names[i] for i in ids])
            self.num_truncated += 2 + sum(len(cache[word]) for word in words) > len(encoded["input_ids"])
            self.items.append(item)
            self.word_ids.append(encoded["word_ids"])
        self.num_words = [len(record["tokens"]) for record in records]
        self.lengths = [len(item["input_ids"]) for item in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return dict(self.items[i])

    def collate(self, items: Sequence[dict]) -> dict:
        """`collate_token_classification` with this tokenizer's `[PAD]` id."""
        return collate_token_classification(items, self.pad_token_id)


def predict_tags(model: nn.Module, dataset: NerDataset, batch_size: int = 64,
                 mixed_precision: bool | None = None) -> list[list[str]]:
    """Tag every sentence of `dataset` with a token-classification model (eval mode; bf16 as in
    `batching.predict`): a list of `N` tag lists, sentence i with `dataset.num_words[i]` tags,
    ready for `bertedu.metrics.entity_scores(dataset.tags, predictions)`."""
    predictions = predict(model, dataset, lambda model, batch: model(**batch).logits.argmax(-1), batch_size,
                          mixed_precision)
    return [word_tags(predicted[:T], word_ids, dataset.label_names, num_words)  # predicted: (T_batch,)
            for predicted, T, word_ids, num_words in zip(predictions, dataset.lengths, dataset.word_ids,
                                                         dataset.num_words)]


# ---------------------------------------------------------------------------------------
# The feature-based approach: a frozen encoder feeding a small tagger (BERT paper, 5.3)
# ---------------------------------------------------------------------------------------
LAYER_COMBINATIONS = ("embeddings", "last", "second_to_last", "sum_last_four", "concat_last_four",
                      "weighted_sum")
"""The six ways of reading a frozen encoder in table 7 of Devlin et al. (2019), in its order."""

WORD_SHAPES = ("lower", "Capitalised", "UPPER", "other")
"""What `word_shape` tells a tagger: the casing that an uncased checkpoint never sees."""


def word_shape(word: str) -> int:
    """The casing of a word, as an id into `WORD_SHAPES`.

        >>> [WORD_SHAPES[word_shape(w)] for w in ["rejects", "German", "EU", "1996", "U.S."]]
        ['lower', 'Capitalised', 'UPPER', 'other', 'UPPER']
    """
    if not isinstance(word, str):
        raise TypeError(f"word must be a str, got {type(word).__name__} {word!r}")
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return 3
    if all(c.islower() for c in letters):
        return 0
    if all(c.isupper() for c in letters):
        return 2 if len(letters) > 1 else 1  # "A", "I": one capital letter is Capitalised
    return 1 if letters[0].isupper() else 3


def extract_word_features(encoder: nn.Module, dataset: NerDataset, batch_size: int = 64,
                          dtype: torch.dtype = torch.float16) -> list[torch.Tensor]:
    """Run a frozen encoder once and keep every layer's vector at each word's first piece.

    Args:
        encoder: a `BertModel` (or a head with a `.bert` encoder); put in eval mode.
        dataset: a `NerDataset`; batch_size: sentences per pass; dtype: how features are stored.

    Returns:
        `N` tensors, sentence i `[L + 1, W_i, H]` (layer 0 = embeddings, l = block l,
        `W_i = dataset.num_words[i]`); a word without a piece gets zeros.
    """
    encoder = getattr(encoder, "bert", encoder)
    device = model_device(encoder)
    features = [None] * len(dataset)
    with eval_mode(encoder):  # not `predict`: keeping every batch's [B, L+1, T, H] would not fit
        for indices in sorted_batches(dataset.lengths, batch_size):
            batch = dataset.collate([dataset[i] for i in indices])
            batch.pop("labels", None)
            out = encoder(**to_device(batch, device), output_hidden_states=True)
            hidden = torch.stack(out.hidden_states, dim=1).to("cpu", dtype)  # (B, L+1, T, H)
            for b, i in enumerate(indices):
                W = dataset.num_words[i]
                words = torch.zeros(hidden.shape[1], W, hidden.shape[-1], dtype=dtype)  # (L+1, W, H)
                seen = set()
                for t, w in enumerate(dataset.word_ids[i]):
                    if w is not None and w not in seen:  # the word's first piece
                        words[:, w] = hidden[b, :, t]
                        seen.add(w)
                features[i] = words
    return features


class ScalarMix(nn.Module):
    """ELMo's scalar mix (Peters et al. 2018, eq. 1): `gamma * sum_j softmax(s)_j h_j` over
    `num_layers` layers, starting as their plain mean."""

    def __init__(self, num_layers: int):
        super().__init__()
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive int, got {num_layers!r}")
        self.scalars = nn.Parameter(torch.zeros(num_layers))
        self.gamma = nn.Parameter(torch.ones(()))

    @property
    def weights(self) -> torch.Tensor:
        """`[num_layers]`: softmax(s), the share of each layer."""
        return self.scalars.softmax(-1)

    def forward(self, layers: torch.Tensor) -> torch.Tensor:
        """layers `[..., num_layers, W, H]` -> `[..., W, H]`."""
        if layers.dim() < 3 or layers.shape[-3] != len(self.scalars):
            raise ValueError(f"layers must be [..., {len(self.scalars)}, W, H], got {tuple(layers.shape)}")
        return self.gamma * (self.weights[:, None, None] * layers).sum(-3)


def combine_layers(layers: torch.Tensor, how: str, mix: ScalarMix | None = None) -> torch.Tensor:
    """One vector per word from the stacked layers, the ways of the BERT paper's table 7.

    Args:
        layers: `[..., L + 1, W, H]`, e.g. one sentence of `extract_word_features` or a batch.
        how: one of `LAYER_COMBINATIONS`: `embeddings` (layer 0), `last` (L), `second_to_last`,
            `sum_last_four`, `concat_last_four` (order L-3..L) or `weighted_sum` (by `mix`).
        mix: the `ScalarMix` for `weighted_sum`.

    Returns:
        `[..., W, H]`, or `[..., W, 4H]` for `concat_last_four`.
    """
    if how not in LAYER_COMBINATIONS:
        raise ValueError(f"how={how!r}: choose one of {LAYER_COMBINATIONS}")
    if layers.dim() < 3:
        raise ValueError(f"layers must be [..., L + 1, W, H], got shape {tuple(layers.shape)}")
    n = layers.shape[-3]
    if how in ("sum_last_four", "concat_last_four") and n < 5:
        raise ValueError(f"{how} needs 4 blocks besides the embedding layer, the features have {n - 1}")
    if how == "second_to_last" and n < 3:
        raise ValueError(f"second_to_last needs 2 blocks besides the embedding layer, the features have {n - 1}")
    if how == "embeddings":
        return layers[..., 0, :, :]
    if how == "last":
        return layers[..., -1, :, :]
    if how == "second_to_last":
        return layers[..., -2, :, :]
    if how == "sum_last_four":
        return layers[..., -4:, :, :].sum(-3)
    if how == "concat_last_four":
        return torch.cat([layers[..., j, :, :] for j in range(-4, 0)], dim=-1)
    if mix is None:
        raise ValueError("weighted_sum needs mix, a ScalarMix(num_layers)")
    return mix(layers)


class WordFeatureDataset:
    """Cached frozen features of sentences, with their tags, for a feature-based tagger:
    `dataset[i]` is `{"features": [L + 1, W_i, H], "labels": [W_i]}`, plus `"shapes": [W_i]` if
    `words` are given; `dataset.lengths` (word counts) feeds `LengthGroupedBatches`.

    Args:
        features: `N` tensors `[L + 1, W_i, H]` (`extract_word_features`).
        tags: `N` lists of `W_i` IOB2 tags, or None to tag new text.
        label_names: the tag set, `CONLL_NER_LABELS` by default.
        words: `N` lists of `W_i` words, to add each word's casing (`word_shape`).
    """

    def __init__(self, features: Sequence[torch.Tensor], tags: Sequence[Sequence[str]] | None = None,
                 label_names: Sequence[str] = CONLL_NER_LABELS, words: Sequence[Sequence[str]] | None = None):
        if len(features) == 0:
            raise ValueError("features is empty: a dataset needs at least one sentence")
        for name, values in (("tags", tags), ("words", words)):
            if values is not None and len(values) != len(features):
                raise ValueError(f"{name} has {len(values)} sentences but features has {len(features)}")
        self.label_names = list(label_names)
        label_id = {name: i for i, name in enumerate(self.label_names)}
        shape = tuple(features[0].shape[::2])  # (L + 1, H)
        self.items, self.lengths = [], []
        for i, f in enumerate(features):
            if f.dim() != 3 or tuple(f.shape[::2]) != shape:
                raise ValueError(f"features[{i}] has shape {tuple(f.shape)}; every sentence must be "
                                 f"[{shape[0]}, W, {shape[1]}] like features[0]")
            W = f.shape[1]
            item = {"features": f}
            if tags is not None:
                if len(tags[i]) != W:
                    raise ValueError(f"sentence {i} has {W} feature vectors but {len(tags[i])} tags: "
                                     "give one tag per word")
                unknown = [t for t in tags[i] if t not in label_id]
                if unknown:
                    raise ValueError(f"sentence {i}: tag {unknown[0]!r} is not one of label_names {self.label_names}")
                item["labels"] = torch.tensor([label_id[t] for t in tags[i]])
            if words is not None:
                if len(words[i]) != W:
                    raise ValueError(f"sentence {i} has {W} feature vectors but {len(words[i])} words")
                item["shapes"] = torch.tensor([word_shape(w) for w in words[i]])
            self.items.append(item)
            self.lengths.append(W)
        self.tags = [list(t) for t in tags] if tags is not None else []

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return dict(self.items[i])

    def collate(self, items: Sequence[dict]) -> dict:
        """Pad to the longest sentence: `features` float32 `[B, L + 1, W, H]`, `word_mask`
        `[B, W]` (1 = word), `labels` `[B, W]` (-100 on padding), `shapes` `[B, W]`."""
        if len(items) == 0:
            raise ValueError("cannot collate an empty list of sentences")
        B, W = len(items), max(item["features"].shape[1] for item in items)
        n_layers, H = items[0]["features"].shape[::2]
        features = torch.zeros(B, n_layers, W, H)
        for b, item in enumerate(items):
            features[b, :, : item["features"].shape[1]] = item["features"]
        batch = {"features": features,
                 "word_mask": pad_sequences([[1] * item["features"].shape[1] for item in items], 0)}
        if "labels" in items[0]:
            batch["labels"] = pad_sequences([item["labels"] for item in items], IGNORE_INDEX)
        if "shapes" in items[0]:
            batch["shapes"] = pad_sequences([item["shapes"] for item in items], 0)
        return batch


class FeatureTagger(nn.Module):
    """A BiLSTM tagger on frozen BERT features (the BERT paper's feature-based NER, far smaller):
    features `[B, L + 1, W, H]` -> `combine_layers(how)` -> dropout -> (+ casing embedding) ->
    linear to `projection_size` -> BiLSTM -> linear to `num_labels`, one prediction per word.

    Args:
        num_layers, hidden_size, num_labels: `L + 1`, `H` and the tag set's size.
        how: one of `LAYER_COMBINATIONS`.
        lstm_size, lstm_layers: hidden units per direction, stacked layers.
        projection_size: the width the combined features are projected to.
        num_shapes: if > 0, an embedding of `word_shape` (batch key `shapes`) joins the features.
        dropout: on the features and on the BiLSTM's output.
    """

    def __init__(self, num_layers: int, hidden_size: int, num_labels: int, how: str, lstm_size: int = 64,
                 lstm_layers: int = 1, projection_size: int = 128, num_shapes: int = 0, dropout: float = 0.1):
        super().__init__()
        if how not in LAYER_COMBINATIONS:
            raise ValueError(f"how={how!r}: choose one of {LAYER_COMBINATIONS}")
        self.how, self.num_labels = how, num_labels
        self.mix = ScalarMix(num_layers) if how == "weighted_sum" else None
        width = 4 * hidden_size if how == "concat_last_four" else hidden_size
        self.shape_embeddings = nn.Embedding(num_shapes, 16) if num_shapes else None
        self.dropout = nn.Dropout(dropout)
        self.projection = nn.Linear(width + (16 if num_shapes else 0), projection_size)
        self.lstm = nn.LSTM(projection_size, lstm_size, num_layers=lstm_layers, batch_first=True,
                            bidirectional=True)
        self.classifier = nn.Linear(2 * lstm_size, num_labels)

    def forward(self, features: torch.Tensor, word_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, shapes: torch.Tensor | None = None) -> HeadOutput:
        """features `[B, L + 1, W, H]`, word_mask `[B, W]`, labels `[B, W]` (-100 = ignore),
        shapes `[B, W]` -> `HeadOutput(loss, logits [B, W, num_labels])`."""
        B, _, W, _ = features.shape
        if word_mask is None:
            word_mask = torch.ones(B, W, dtype=torch.long, device=features.device)
        x = self.dropout(combine_layers(features, self.how, self.mix))  # (B, W, H) or (B, W, 4H)
        if self.shape_embeddings is not None:
            if shapes is None:
                raise ValueError("this tagger reads the words' casing: give `shapes` (WordFeatureDataset(words=...))")
            x = torch.cat([x, self.shape_embeddings(shapes)], dim=-1)
        x = self.projection(x)  # (B, W, projection_size)
        lengths = word_mask.sum(-1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=W)  # (B, W, 2 lstm_size)
        logits = self.classifier(self.dropout(out))  # (B, W, num_labels)
        loss = None
        if labels is not None:
            if labels.shape != (B, W):
                raise ValueError(f"labels must be [B, W] = {(B, W)}, got {tuple(labels.shape)}")
            loss = nn.functional.cross_entropy(logits.reshape(-1, self.num_labels), labels.reshape(-1),
                                               ignore_index=IGNORE_INDEX)
        return HeadOutput(loss=loss, logits=logits)


def predict_feature_tags(tagger: nn.Module, dataset: WordFeatureDataset, batch_size: int = 128) -> list[list[str]]:
    """Tag every sentence of a `WordFeatureDataset` with a `FeatureTagger`: N tag lists."""
    predictions = predict(tagger, dataset, lambda tagger, batch: tagger(**batch).logits.argmax(-1), batch_size,
                          mixed_precision=False)  # a small BiLSTM: nothing to gain
    return [[dataset.label_names[p] for p in predicted[:W].tolist()]  # predicted: (W_batch,)
            for predicted, W in zip(predictions, dataset.lengths)]
