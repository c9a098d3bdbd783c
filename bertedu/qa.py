"""Extractive question answering glue (SQuAD v1.1): passage windows, answer positions, span decoding.

The input is `[CLS] question [SEP] passage [SEP]`, and `BertForQuestionAnswering` scores every
token as the answer's start and end (Devlin et al. 2019, section 4.2; chapter 11):
1. a long passage is cut into windows that start `doc_stride` tokens apart (overlapping);
2. the answer's characters become token positions, or `(0, 0)` (`[CLS]`) in a window without it;
3. the best span over all windows (`best_spans`) is the answer, cut from the original passage.
"""
from __future__ import annotations

import numbers
from typing import Callable, Sequence

import torch
from torch import nn

from .batching import pad_collate, predict
from .checks import check_text


# ---------------------------------------------------------------------------------------
# Characters <-> tokens
# ---------------------------------------------------------------------------------------
def check_answer(context: str, text: str, answer_start: int, name: str = "answer") -> tuple[int, int]:
    """`(start_char, end_char)` of `text` in `context` at character `answer_start`, end exclusive.

    Raises:
        ValueError: the context says something else there (or the answer lies outside it).
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{name}: the answer text must be a non-empty string, got {text!r}")
    if isinstance(answer_start, bool) or not isinstance(answer_start, numbers.Integral):
        raise TypeError(f"{name}: answer_start must be an int character offset, got {answer_start!r}")
    end = answer_start + len(text)
    if answer_start < 0 or end > len(context):
        raise ValueError(f"{name}: the answer {text!r} at answer_start={answer_start} runs to character {end}, "
                         f"outside the context of {len(context)} characters")
    if context[answer_start:end] != text:
        raise ValueError(f"{name}: the answer is {text!r} but context[{answer_start}:{end}] is "
                         f"{context[answer_start:end]!r}: answer_start must be the character offset of "
                         "the answer in the context")
    return int(answer_start), end


def char_span_to_token_span(offsets: Sequence[tuple[int, int] | None], start_char: int,
                            end_char: int) -> tuple[int, int]:
    """`(first, last)` (inclusive): the tokens that overlap the characters `[start_char, end_char)`;
    tokens with offsets None are skipped, and a boundary inside a token takes the whole token.

    Example:
        >>> offsets = [(0, 3), (4, 7), (7, 10), (11, 18), (19, 22)]  # the den ##ver broncos won
        >>> char_span_to_token_span(offsets, 4, 18)  # "denver broncos"
        (1, 3)

    Args:
        offsets: `[T]` (start, end) character spans, end exclusive, or None.
    """
    overlapping = [t for t, span in enumerate(offsets)
                   if span is not None and span[0] < end_char and span[1] > start_char]
    if not overlapping:
        raise ValueError(f"no token overlaps characters [{start_char}, {end_char}): the answer is outside these "
                         "offsets, or made only of characters the tokenizer drops")
    return overlapping[0], overlapping[-1]


# ---------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------
class QADataset:
    """SQuAD-style questions as BERT features, one per passage window.

    `dataset.features[f]` holds `example_index`, `input_ids` and `token_type_ids` `[T_f]`,
    `offsets` `[T_f]` (context characters of passage tokens, else None), `window` `(a, b)`
    (context tokens `a..b-1`), `passage_start`, and `start_positions`/`end_positions` ((0, 0) if
    the window lacks the answer). `dataset[f]`, `collate` and `lengths` follow `batching`.

    Args:
        examples: dicts `{"id", "context", "question", "answers": {"text", "answer_start"}}`
            as `bertedu.data.load_squad` returns; training uses the first answer.
        tokenizer: a `bertedu.tokenization.BertTokenizer`.
        max_length: length of a feature, special tokens included (384 in BERT's SQuAD runs).
        doc_stride: passage tokens between window starts (128 in BERT; Hugging Face's `stride`
            is the overlap instead), at most a window's length.
        max_query_length: questions are cut to this many tokens (64 in BERT).
        with_answers: compute `start_positions`/`end_positions`; False for new questions.
    """

    def __init__(self, examples: Sequence[dict], tokenizer, max_length: int = 384, doc_stride: int = 128,
                 max_query_length: int = 64, with_answers: bool = True):
        if len(examples) == 0:
            raise ValueError("examples is empty: a dataset needs at least one question")
        for name, value in (("max_length", max_length), ("doc_stride", doc_stride),
                            ("max_query_length", max_query_length)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.examples = list(examples)
        self.max_length, self.doc_stride, self.max_query_length = max_length, doc_stride, max_query_length
        self.with_answers = with_answers
        self.pad_token_id = tokenizer.pad_token_id
        for index, example in enumerate(self.examples):
            if not isinstance(example, dict):
                raise TypeError(f"examples[{index}] is a {type(example).__name__}, not a dict like load_squad's")
        self.ids = [str(example.get("id", index)) for index, example in enumerate(self.examples)]
        if len(set(self.ids)) != len(self.ids):
            raise ValueError("two examples share an id: give every question its own id (answers are keyed by it)")
        self.features = []
        self.context_offsets = []  # per example: the offsets of all its context tokens
        contexts = {}  # context -> (ids, offsets): SQuAD asks ~5 questions per passage
        for e, example in enumerate(self.examples):
            name = f"example {self.ids[e]!r}"
            for key in ("context", "question"):
                if key not in example:
                    raise ValueError(f"{name} has no {key!r}: it has {sorted(example)}")
            context = check_text(example["context"], f"{name}: context", allow_empty=False)
            question = check_text(example["question"], f"{name}: question", allow_empty=False)
            if context not in contexts:
                encoded = tokenizer(context, add_special_tokens=False, return_offsets_mapping=True)
                contexts[context] = (encoded["input_ids"], [tuple(span) for span in encoded["offset_mapping"]])
            context_ids, offsets = contexts[context]
            if not context_ids:
                raise ValueError(f"{name}: the context has no tokens")
            question_ids = tokenizer(question, add_special_tokens=False)["input_ids"][:max_query_length]
            self.context_offsets.append(offsets)

            answer_span = None  # the first answer's (first, last) context tokens
            if with_answers:
                answer_span = self._first_answer_tokens(example, context, offsets, name)

            # 1. Windows: [a, b) of the context tokens, starting doc_stride apart.
            capacity = max_length - len(question_ids) - 3  # [CLS] question [SEP] ... [SEP]
            if capacity < 1:
                raise ValueError(f"{name}: max_length={max_length} leaves no room for the passage after a "
                                 f"{len(question_ids)}-token question: raise max_length or lower max_query_length")
            if doc_stride > capacity:
                raise ValueError(f"doc_stride={doc_stride} exceeds the {capacity} passage tokens of a window "
                                 f"({name}): windows would skip tokens; use doc_stride <= {capacity}")
            a = 0
            while True:
                b = min(a + capacity, len(context_ids))
                self.features.append(self._feature(e, question_ids, context_ids, offsets, a, b, answer_span,
                                                   tokenizer))
                if b == len(context_ids):
                    break
                a += doc_stride
        self.lengths = [len(f["input_ids"]) for f in self.features]

    @staticmethod
    def _first_answer_tokens(example: dict, context: str, offsets, name: str) -> tuple[int, int]:
        answers = example.get("answers")
        if not isinstance(answers, dict) or "text" not in answers or "answer_start" not in answers:
            raise ValueError(f"{name} has no answers {{'text': [...], 'answer_start': [...]}}: pass "
                             "with_answers=False to answer questions without them")
        texts, starts = answers["text"], answers["answer_start"]
        if len(texts) == 0 or len(texts) != len(starts):
            raise ValueError(f"{name}: answers has {len(texts)} texts and {len(starts)} answer_starts; "
                             "give at least one answer, with one start each")
        spans = [check_answer(context, t, s, f"{name}, answer {k}") for k, (t, s) in enumerate(zip(texts, starts))]
        return char_span_to_token_span(offsets, *spans[0])

    @staticmethod
    def _feature(e, question_ids, context_ids, offsets, a, b, answer_span, tokenizer) -> dict:
        cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
        passage_start = len(question_ids) + 2
        feature = {
            "example_index": e,
            "input_ids": [cls] + question_ids + [sep] + context_ids[a:b] + [sep],
            "token_type_ids": [0] * passage_start + [1] * (b - a + 1),
            "offsets": [None] * passage_start + offsets[a:b] + [None],
            "window": (a, b),
            "passage_start": passage_start,
        }
        if answer_span is not None:
            first, last = answer_span
            inside = a <= first and last < b  # 2. the whole answer is in this window
            feature["start_positions"] = first - a + passage_start if inside else 0
            feature["end_positions"] = last - a + passage_start if inside else 0
        return feature

    def answer_positions(self, feature_index: int, start_char: int, end_char: int) -> tuple[int, int]:
        """`(start, end)` token indices in `features[feature_index]` of the answer at characters
        `[start_char, end_char)`, or `(0, 0)` if that window does not hold it all."""
        feature = self.features[feature_index]
        first, last = char_span_to_token_span(self.context_offsets[feature["example_index"]], start_char, end_char)
        a, b = feature["window"]
        if a <= first and last < b:
            return first - a + feature["passage_start"], last - a + feature["passage_start"]
        return 0, 0

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, f: int) -> dict:
        feature = self.features[f]
        item = {"input_ids": torch.tensor(feature["input_ids"]),
                "token_type_ids": torch.tensor(feature["token_type_ids"])}
        if "start_positions" in feature:
            item["start_positions"] = torch.tensor(feature["start_positions"])
            item["end_positions"] = torch.tensor(feature["end_positions"])
        return item

    def collate(self, items: Sequence[dict]) -> dict:
        """`collate_qa` with this tokenizer's `[PAD]` id."""
        return collate_qa(items, self.pad_token_id)


def collate_qa(items: Sequence[dict], pad_token_id: int) -> dict:
    """Pad `QADataset` items to the longest (`pad_collate`): `input_ids`, `attention_mask`,
    `token_type_ids` `[B, T]`, and `start_positions`, `end_positions` `[B]` if present."""
    return pad_collate(items, pad_token_id)


# ---------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------
def best_spans(start_logits: Sequence[torch.Tensor], end_logits: Sequence[torch.Tensor],
               offsets: Sequence[Sequence[tuple[int, int] | None]], context: str, n_best: int = 20,
               max_answer_length: int = 30) -> list[dict]:
    """The `n_best` highest-scoring answer spans of one question, over all its windows.

    A span (i, j) of one window scores `start_logits[i] + end_logits[j]`, allowed if i <= j,
    at most `max_answer_length` tokens, both passage tokens; the same characters found in two
    windows count once.

    Args:
        start_logits, end_logits: one 1-D tensor `[T_w]` per window of the question.
        offsets: per window, `[T_w]` character spans in `context` or None.
        context: the passage the offsets point into.

    Returns:
        Up to `n_best` dicts, best first: `text`, `score`, `start_char`, `end_char`, `window`,
        `start`, `end` (token indices in that window).
    """
    if not (len(start_logits) == len(end_logits) == len(offsets)) or len(offsets) == 0:
        raise ValueError(f"give one start, end and offsets entry per window: got {len(start_logits)}, "
                         f"{len(end_logits)} and {len(offsets)}")
    for name, value in (("n_best", n_best), ("max_answer_length", max_answer_length)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    candidates = []
    for w, (start, end, spans) in enumerate(zip(start_logits, end_logits, offsets)):
        start, end = torch.as_tensor(start).float(), torch.as_tensor(end).float()
        if start.dim() != 1 or start.shape != end.shape or len(start) != len(spans):
            raise ValueError(f"window {w}: start_logits {tuple(start.shape)}, end_logits {tuple(end.shape)} and "
                             f"{len(spans)} offsets must all be [T] of one length (cut off the padding)")
        T = len(spans)
        passage = torch.tensor([span is not None for span in spans])  # (T,)
        i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]  # start index, end index
        allowed = (j >= i) & (j - i < max_answer_length) & passage[:, None] & passage[None, :]  # (T, T)
        scores = (start[:, None] + end[None, :]).masked_fill(~allowed, float("-inf"))  # (T, T)
        k = min(n_best, int(allowed.sum()))
        # Each window's k best suffice: a span among the n_best overall is among its window's.
        top = scores.flatten().topk(k)
        for score, flat in zip(top.values.tolist(), top.indices.tolist()):
            s, e = divmod(flat, T)
            candidates.append((score, w, s, e, spans[s][0], spans[e][1]))
    candidates.sort(key=lambda c: (-c[0], c[1], c[2], c[3]))  # best first; ties: earlier window, span
    results, seen = [], set()
    for score, w, s, e, start_char, end_char in candidates:
        if (start_char, end_char) in seen:
            continue
        seen.add((start_char, end_char))
        results.append({"text": context[start_char:end_char], "score": score, "start_char": start_char,
                        "end_char": end_char, "window": w, "start": s, "end": e})
        if len(results) == n_best:
            break
    return results


def decode_answers(dataset: QADataset, start_logits: Sequence[torch.Tensor], end_logits: Sequence[torch.Tensor],
                   max_answer_length: int = 30) -> dict[str, str]:
    """question id -> best answer text, for `metrics.squad_evaluate`, from every feature's logits.

    Args:
        dataset: the `QADataset` the logits were computed on.
        start_logits, end_logits: one 1-D tensor `[T_f]` per feature, in feature order (`qa_logits`).
        max_answer_length: see `best_spans`.
    """
    if len(start_logits) != len(dataset.features) or len(end_logits) != len(dataset.features):
        raise ValueError(f"the dataset has {len(dataset.features)} features but there are {len(start_logits)} "
                         f"start and {len(end_logits)} end logit rows: give one per feature")
    by_example = {}  # example index -> its feature indices, in window order
    for f, feature in enumerate(dataset.features):
        by_example.setdefault(feature["example_index"], []).append(f)
    answers = {}
    for e, features in by_example.items():
        best = best_spans([start_logits[f] for f in features], [end_logits[f] for f in features],
                          [dataset.features[f]["offsets"] for f in features], dataset.examples[e]["context"],
                          n_best=1, max_answer_length=max_answer_length)
        answers[dataset.ids[e]] = best[0]["text"]
    return answers


def qa_logits(model: nn.Module, dataset: QADataset, batch_size: int = 32,
              forward: Callable[[dict], tuple[torch.Tensor, torch.Tensor]] | None = None,
              mixed_precision: bool | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Start and end logits of every feature, without padding, in feature order, in eval mode.

    Args:
        model, dataset, batch_size: a `BertForQuestionAnswering`, its `QADataset`, features per pass.
        forward: `forward(batch) -> (start_logits, end_logits)`, each `[B, T]`; default:
            `model(**batch)`'s (chapter 14 passes `long_attention.sliding_window_qa_logits`).
        mixed_precision: bf16 autocast, as in `batching.predict` (None: where the hardware has it).

    Returns:
        `(start_logits, end_logits)`: two lists of FloatTensors `[T_f]` on the CPU.
    """
    if forward is None:
        def forward(batch):
            out = model(**batch)
            return out.start_logits, out.end_logits
    rows = predict(model, dataset, lambda model, batch: torch.stack(forward(batch), dim=-1).float(),
                   batch_size, mixed_precision)  # N rows (T_batch, 2): start and end logits
    return ([row[:T, 0].clone() for row, T in zip(rows, dataset.lengths)],
            [row[:T, 1].clone() for row, T in zip(rows, dataset.lengths)])


def predict_answers(model: nn.Module, dataset: QADataset, batch_size: int = 32,
                    max_answer_length: int = 30, mixed_precision: bool | None = None) -> dict[str, str]:
    """question id -> predicted answer text: `decode_answers(dataset, *qa_logits(model, dataset))`."""
    start_logits, end_logits = qa_logits(model, dataset, batch_size, mixed_precision=mixed_precision)
    return decode_answers(dataset, start_logits, end_logits, max_answer_length)
