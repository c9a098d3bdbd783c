"""Token-classification glue for named-entity recognition: a tag per word in, a tag per word out.

CoNLL-2003 gives each sentence as words with one IOB2 tag per word; BERT reads WordPieces.
Chapter 10 bridges the two the way the BERT paper does (section 5.3): "we use the
representation of the first sub-token as the input to the token-level classifier".

    words      EU       rejects             German    call
    pieces     [CLS] eu   rejects   ger ##man   call   [SEP]
    word_ids   None  0    1         2   2       3      None
    labels     -100  B-ORG O        B-MISC -100 O      -100

- `encode_words` tokenizes a sentence word by word and records `word_ids`, the word each
  piece came from (None for `[CLS]`/`[SEP]`). It equals Hugging Face's
  `BertTokenizerFast(words, is_split_into_words=True).word_ids()`: there too, every word is
  normalized and split on its own (tests/test_ner.py checks all CoNLL-2003 dev sentences).
- `align_labels` gives the first piece of each word the word's label and -100 (ignored
  by the loss, `heads.IGNORE_INDEX`) to the other pieces and to the special tokens.
- `word_tags` goes back: the tag predicted at each word's first piece is the word's tag.
  Entity-level scores then come from `bertedu.metrics.entity_scores` on words, never on
  pieces, so the score does not depend on the tokenizer.
- `NerDataset` and `collate_token_classification` feed `bertedu.training.train`;
  `predict_tags` runs a model over a dataset and returns one tag list per sentence.

A word the tokenizer turns into nothing (a lone control or zero-width character) and the
words cut off by `max_length` have no piece: they get no loss in training and the tag "O"
in `word_tags`.
"""
from __future__ import annotations

import numbers
from typing import Sequence

import torch
from torch import nn

from .data import CONLL_NER_LABELS
from .finetuning import model_device, pad_inputs, pad_sequences, sorted_batches
from .heads import IGNORE_INDEX
from .training import to_device


# ---------------------------------------------------------------------------------------
# Words -> pieces
# ---------------------------------------------------------------------------------------
def _check_words(words, name: str = "words") -> list[str]:
    if isinstance(words, str) or not isinstance(words, Sequence):
        raise TypeError(f"{name} must be a list of word strings, got {type(words).__name__}: "
                        "split the sentence first, e.g. sentence.split()")
    if len(words) == 0:
        raise ValueError(f"{name} is empty: a sentence needs at least one word")
    for i, word in enumerate(words):
        if not isinstance(word, str):
            raise TypeError(f"{name}[{i}] is a {type(word).__name__} ({word!r}), not a str")
    return list(words)


def encode_words(words: Sequence[str], tokenizer, max_length: int | None = None,
                 cache: dict | None = None) -> dict:
    """Tokenize a sentence given as words: `[CLS] pieces of word 0 ... [SEP]`, with `word_ids`.

    Every word is tokenized on its own, so a word never merges with its neighbour and a
    piece always knows its word. A word may still give several pieces, and punctuation
    inside a word splits it further ("U.S." -> `u . s .`, all four of word id of "U.S.").

    Example:
        >>> enc = encode_words(["EU", "rejects", "German"], tokenizer)
        >>> tokenizer.convert_ids_to_tokens(enc["input_ids"])
        ['[CLS]', 'eu', 'rejects', 'german', '[SEP]']
        >>> enc["word_ids"]
        [None, 0, 1, 2, None]

    Args:
        words: the sentence's `W` words.
        tokenizer: a `bertedu.tokenization.BertTokenizer`.
        max_length: longest encoding, `[CLS]` and `[SEP]` included; pieces past it are cut
            (their words get no piece). None: `tokenizer.model_max_length` (512 for BERT).
        cache: an optional dict word -> piece ids, shared across calls to tokenize each
            distinct word once (CoNLL-2003's 200k words are 24k distinct ones).

    Returns:
        `{"input_ids": [T], "token_type_ids": [T] (all 0), "word_ids": [T]}`, lists, with
        `word_ids[t]` the index in `words` of piece t's word, None for `[CLS]` and `[SEP]`.
    """
    words = _check_words(words)
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

    Example:
        >>> align_labels([None, 0, 1, 2, 2, 3, None], [3, 0, 7, 0])
        [-100, 3, 0, 7, -100, 0, -100]

    Args:
        word_ids: `[T]`, the word of each piece, None for special tokens (`encode_words`).
        word_labels: `[W]` label ids, one per word.
        num_labels: if given, every label must lie in `[0, num_labels)`.

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
    """Per-piece predicted label ids -> one tag per word, read at each word's first piece.

    Words without a piece (cut off by `max_length`, or empty after normalization) get "O".
    Tags are returned as predicted: an `I-X` after `O` is left for the metric, which (like
    seqeval and conlleval) reads it as the start of an entity.

    Example:
        >>> word_tags([0, 3, 0, 7, 8, 0, 0], [None, 0, 1, 2, 2, 3, None], CONLL_NER_LABELS, 4)
        ['B-ORG', 'O', 'B-MISC', 'O']

    Args:
        piece_predictions: `[T]` label ids (e.g. `logits.argmax(-1)` of one sentence,
            without its padding).
        word_ids: `[T]`, from `encode_words`.
        label_names: id -> tag, e.g. `bertedu.data.CONLL_NER_LABELS`.
        num_words: `W`, the number of words of the sentence.

    Returns:
        `W` tag strings.
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
    """Pad `NerDataset` items to the longest one; padded labels are -100.

    Returns:
        `input_ids`, `token_type_ids`, `attention_mask` and (if the items have them)
        `labels`, all LongTensors `[B, T]`.
    """
    batch = pad_inputs(items, pad_token_id)
    with_labels = sum("labels" in item for item in items)
    if with_labels not in (0, len(items)):
        raise ValueError(f"{with_labels} of the {len(items)} items have labels: a batch needs all or none")
    if with_labels:
        batch["labels"] = pad_sequences([item["labels"] for item in items], IGNORE_INDEX)
    return batch


class NerDataset:
    """CoNLL-style sentences (`{"tokens": [...], "ner_tags": [...]}`) as BERT inputs and labels.

    `dataset[i]` is `{"input_ids", "token_type_ids", "labels"}`, 1-D LongTensors of the
    sentence's length in pieces `T_i`, labels aligned by `align_labels`;
    `dataset.word_ids[i]` maps the pieces back to words and `dataset.collate` pads a batch.

    Example:
        >>> ds = NerDataset(load_conll2003("dev"), tokenizer)
        >>> ds.tags[0], ds.word_ids[0][:4]
        (['O', 'O', 'B-ORG', 'O', ...], [None, 0, 1, 2])

    Args:
        records: dicts with `tokens` (the words) and `ner_tags` (one tag per word: names
            such as "B-PER", or ids into `label_names`). Without `ner_tags` the items have
            no labels (to tag new text).
        tokenizer: a `bertedu.tokenization.BertTokenizer`.
        label_names: the tag set; id i is `label_names[i]` (`CONLL_NER_LABELS`, in the
            Hugging Face `conll2003` order, by default).
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
            words = _check_words(record["tokens"], f"records[{r}]['tokens']")
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


@torch.no_grad()
def predict_tags(model: nn.Module, dataset: NerDataset, batch_size: int = 64) -> list[list[str]]:
    """Tag every sentence of `dataset`: one IOB2 tag per word, in dataset order.

    The model (e.g. `BertForTokenClassification`) runs in eval mode on length-sorted
    batches; each sentence's `logits[b, :T_b].argmax(-1)` goes through `word_tags`.

    Returns:
        A list of `N` tag lists, sentence i with `dataset.num_words[i]` tags; ready for
        `bertedu.metrics.entity_scores(dataset.tags, predictions)`.
    """
    device, was_training = model_device(model), model.training
    model.eval()
    tags = [None] * len(dataset)
    try:
        for indices in sorted_batches(dataset.lengths, batch_size):
            batch = dataset.collate([dataset[i] for i in indices])
            batch.pop("labels", None)
            predictions = model(**to_device(batch, device)).logits.argmax(-1).cpu()  # (B, T)
            for b, i in enumerate(indices):
                T = dataset.lengths[i]
                tags[i] = word_tags(predictions[b, :T], dataset.word_ids[i], dataset.label_names,
                                    dataset.num_words[i])
    finally:
        model.train(was_training)
    return tags
