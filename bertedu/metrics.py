"""Evaluation metrics for the fine-tuning chapters, in plain Python.

Classification: `accuracy`, `precision_recall_f1`, `confusion_matrix`, `matthews_corrcoef`
(as scikit-learn; zero divisions give 0.0). Regression: `pearson`, `spearman` (as
`scipy.stats`). Entities: `get_entities`, `entity_scores`, `format_entity_report` (as
`conlleval`, `seqeval`). SQuAD v1.1: `normalize_answer`, `squad_exact_match`, `squad_f1`,
`squad_evaluate` (as the official `evaluate-v1.1.py`, Rajpurkar et al. 2016). Predictions
come first, then the truth (the reverse of scikit-learn). Inputs: lists, tuples, 1-D arrays
or tensors; outputs: Python numbers, lists and dicts.
"""
import math
import re
import string
from collections import Counter
from typing import Any, Mapping, Sequence

# ---------------------------------------------------------------------------
# Input checks shared by the classification and regression metrics
# ---------------------------------------------------------------------------


def _as_list(values: Any, name: str) -> list:
    """Return `values` (list, tuple, 1-D numpy array or 1-D tensor) as a Python list."""
    # A str has a length too, but a string of labels is almost surely a mistake.
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(
            f"{name} must be a 1-D list, tuple, numpy array or tensor, got {type(values).__name__}"
        )
    ndim = getattr(values, "ndim", 1)  # numpy arrays and tensors know their rank
    if ndim != 1:
        raise ValueError(
            f"{name} must be 1-D, got {ndim} dimensions (shape {tuple(values.shape)}); "
            "flatten it, or take argmax over the class dimension first"
        )
    # .tolist() turns numpy/torch scalars into Python ints and floats.
    return values.tolist() if hasattr(values, "tolist") else list(values)


def _paired(first: Any, second: Any, names: tuple[str, str]) -> tuple[list, list]:
    """Both inputs as lists of the same, non-zero length."""
    a, b = _as_list(first, names[0]), _as_list(second, names[1])
    if len(a) != len(b):
        raise ValueError(f"{names[0]} and {names[1]} differ in length: {len(a)} vs {len(b)}")
    if not a:
        raise ValueError(f"{names[0]} and {names[1]} are empty: a metric needs at least one example")
    return a, b


def _classes(predictions: Any, labels: Any) -> tuple[list, list]:
    """Both inputs as lists of class values: all ints (bools count) or all strs."""
    preds, golds = _paired(predictions, labels, ("predictions", "labels"))
    kinds = set()
    for name, values in (("predictions", preds), ("labels", golds)):
        for i, value in enumerate(values):
            if isinstance(value, float):
                # Probabilities or float-typed labels: comparing them as classes would
                # silently count 0.9 != 1 as an error.
                raise TypeError(
                    f"{name}[{i}] is the float {value!r}: classification metrics compare class ids; "
                    "take the argmax of logits (or threshold probabilities) and convert with "
                    ".long() or .astype(int)"
                )
            if not isinstance(value, (int, str)):
                raise TypeError(f"{name}[{i}] is {type(value).__name__} {value!r}: expected an int or str class")
            kinds.add(str if isinstance(value, str) else int)
    if len(kinds) > 1:
        raise TypeError("predictions and labels mix int and str classes: use one kind for both")
    return preds, golds


def _precision_recall_f1(correct: int, predicted: int, actual: int) -> tuple[float, float, float]:
    """P, R and F1 from `correct` (TP), `predicted` (TP + FP) and `actual` (TP + FN); each is
    0.0 where its denominator is 0."""
    precision = correct / predicted if predicted else 0.0
    recall = correct / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


# ---------------------------------------------------------------------------
# Classification
# ---------------------------------------------------------------------------


def accuracy(predictions: Sequence, labels: Sequence) -> float:
    """Fraction of `predictions` (classes, ints or strs, `[N]`) equal to `labels` (`[N]`): a float."""
    preds, golds = _classes(predictions, labels)
    return sum(p == g for p, g in zip(preds, golds)) / len(golds)


def precision_recall_f1(
    predictions: Sequence, labels: Sequence, positive: int | str = 1, average: str = "binary"
) -> dict[str, float]:
    """Precision TP / (TP + FP), recall TP / (TP + FN) and F1 = 2PR / (P + R); a ratio whose
    denominator is 0 is 0.0 (scikit-learn's `zero_division=0`).

    Args:
        predictions, labels: predicted and true classes (ints or strs), shape `[N]`.
        positive: the class that counts as positive when `average="binary"`.
        average: `"binary"` (the `positive` class; at most two classes) or `"macro"` (the
            unweighted mean of each of P, R and F1 over every class that occurs).

    Returns:
        `{"precision": float, "recall": float, "f1": float}`.
    """
    if average not in ("binary", "macro"):
        raise ValueError(f"average must be 'binary' or 'macro', got {average!r}")
    preds, golds = _classes(predictions, labels)
    classes = sorted(set(preds) | set(golds))

    def scores_for(cls) -> dict[str, float]:
        correct = sum(p == cls and g == cls for p, g in zip(preds, golds))
        p, r, f1 = _precision_recall_f1(correct, preds.count(cls), golds.count(cls))
        return {"precision": p, "recall": r, "f1": f1}

    if average == "macro":
        per_class = [scores_for(cls) for cls in classes]
        return {key: sum(s[key] for s in per_class) / len(per_class) for key in ("precision", "recall", "f1")}

    if isinstance(positive, str) != isinstance(classes[0], str):
        raise TypeError(f"positive={positive!r} is not the same kind (int or str) as the classes {classes}")
    if len(classes) > 2:
        raise ValueError(
            f"average='binary' needs at most two classes, found {len(classes)}: {classes[:10]}; "
            "use average='macro' for several classes"
        )
    if len(classes) == 2 and positive not in classes:
        raise ValueError(f"positive={positive!r} is not one of the classes {classes}: pass positive=...")
    return scores_for(positive)


def confusion_matrix(predictions: Sequence, labels: Sequence, num_classes: int) -> list[list[int]]:
    """`matrix[i][j]` = the number of examples of true class `i` predicted as `j` (scikit-learn's
    layout), a `C x C` list of lists of ints.

    Args:
        predictions, labels: class ids in `[0, num_classes)`, shape `[N]`.
        num_classes: `C` (classes that never occur get zero rows).
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    preds, golds = _classes(predictions, labels)
    for name, values in (("predictions", preds), ("labels", golds)):
        for i, value in enumerate(values):
            if not isinstance(value, int) or not 0 <= value < num_classes:
                raise ValueError(f"{name}[{i}] = {value!r} is not a class id in [0, {num_classes})")
    matrix = [[0] * num_classes for _ in range(num_classes)]
    for p, g in zip(preds, golds):
        matrix[g][p] += 1
    return matrix


def matthews_corrcoef(predictions: Sequence, labels: Sequence) -> float:
    """Matthews correlation coefficient (CoLA's metric), a float in [-1, 1]: 1 perfect, 0 chance.

    Two classes: `(TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN))`; more: Gorodkin's
    generalization, as scikit-learn. 0.0 when every prediction or every label is one class.
    `predictions`, `labels`: classes (ints or strs), shape `[N]`.
    """
    preds, golds = _classes(predictions, labels)
    n = len(golds)
    true_counts, pred_counts = Counter(golds), Counter(preds)  # t_k and p_k per class k
    classes = true_counts.keys() | pred_counts.keys()
    correct = sum(p == g for p, g in zip(preds, golds))
    # Integers until the final division, so the only rounding is the last step.
    covariance = correct * n - sum(true_counts[k] * pred_counts[k] for k in classes)
    pred_spread = n * n - sum(pred_counts[k] ** 2 for k in classes)
    true_spread = n * n - sum(true_counts[k] ** 2 for k in classes)
    if pred_spread == 0 or true_spread == 0:
        return 0.0
    return covariance / (math.sqrt(pred_spread) * math.sqrt(true_spread))


# ---------------------------------------------------------------------------
# Regression: correlations
# ---------------------------------------------------------------------------


def _numbers(x: Any, y: Any) -> tuple[list[float], list[float]]:
    """Both inputs as lists of finite numbers, of the same length >= 2."""
    xs, ys = _paired(x, y, ("x", "y"))
    if len(xs) < 2:
        raise ValueError(f"a correlation needs at least 2 pairs, got {len(xs)}")
    for name, values in (("x", xs), ("y", ys)):
        for i, value in enumerate(values):
            if isinstance(value, str) or not isinstance(value, (int, float)):
                raise TypeError(f"{name}[{i}] is {type(value).__name__} {value!r}: expected a number")
            if not math.isfinite(value):
                raise ValueError(f"{name}[{i}] is {value}: correlations need finite numbers")
    return [float(v) for v in xs], [float(v) for v in ys]


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's r of numbers `x` and `y`, shape `[N]`, N >= 2, as `scipy.stats.pearsonr`: a float
    in [-1, 1], or `nan` when `x` or `y` is constant (a one-value regressor never gets a number)."""
    xs, ys = _numbers(x, y)
    if min(xs) == max(xs) or min(ys) == max(ys):
        return math.nan
    n = len(xs)
    # centre, then scale each side to at most 1 in size: r does not change, and the sums
    # below neither overflow (values near 1e200) nor underflow to 0 (values near 1e-200)
    mean_x, mean_y = math.fsum(v / n for v in xs), math.fsum(v / n for v in ys)
    dx = [v - mean_x for v in xs]
    dy = [v - mean_y for v in ys]
    scale_x, scale_y = max(abs(a) for a in dx), max(abs(b) for b in dy)  # > 0: neither side is constant
    dx = [a / scale_x for a in dx]
    dy = [b / scale_y for b in dy]
    covariance = math.fsum(a * b for a, b in zip(dx, dy))
    r = covariance / (math.sqrt(math.fsum(a * a for a in dx)) * math.sqrt(math.fsum(b * b for b in dy)))
    return max(-1.0, min(1.0, r))  # rounding may step just outside [-1, 1]


def _average_ranks(values: list[float]) -> list[float]:
    """1-based ranks, ties sharing their mean rank: [10, 20, 20, 5] -> [2.0, 3.5, 3.5, 1.0]."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start  # order[start..end] is one run of equal values
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        mean_rank = (start + end) / 2 + 1  # mean of the 1-based ranks start+1 .. end+1
        for k in range(start, end + 1):
            ranks[order[k]] = mean_rank
        start = end + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho, as `scipy.stats.spearmanr`: Pearson's r of the ranks (ties get their mean
    rank) of `x` and `y`, shape `[N]`, N >= 2; `nan` when `x` or `y` is constant."""
    xs, ys = _numbers(x, y)
    return pearson(_average_ranks(xs), _average_ranks(ys))


# ---------------------------------------------------------------------------
# Named entities (IOB2 tags)
# ---------------------------------------------------------------------------


def _split_tag(tag: Any, position: int) -> tuple[str, str]:
    """'B-PER' -> ('B', 'PER'); 'O' -> ('O', '')."""
    if not isinstance(tag, str):
        raise TypeError(f"tag at position {position} is {type(tag).__name__} {tag!r}: tags are strings like 'B-PER'")
    if tag == "O":
        return "O", ""
    if tag[:2] in ("B-", "I-") and len(tag) > 2:
        return tag[0], tag[2:]
    raise ValueError(
        f"tag {tag!r} at position {position} is not IOB2: expected 'O', 'B-<type>' or 'I-<type>' "
        "(IOBES tags such as E-/S- are not supported)"
    )


def get_entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The entity spans of one sentence's IOB2 tags, e.g. `["B-PER", "I-PER", "O"]`.

    An `I-X` that does not continue an X entity starts a new one (as `conlleval` and
    `seqeval`'s default mode), so IOB1 tags give the same spans.

        >>> get_entities(["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"])
        [('PER', 0, 1), ('LOC', 3, 3), ('LOC', 4, 4), ('ORG', 5, 5)]

    Returns:
        `(type, start, end)` tuples in order, `end` INCLUSIVE (as in `seqeval`).
    """
    if isinstance(tags, str) or not hasattr(tags, "__len__"):
        raise TypeError(f"tags must be a list of tag strings for one sentence, got {type(tags).__name__}")
    entities = []
    open_type, open_start = None, 0  # the entity being read, if any
    for i, tag in enumerate(tags):
        prefix, entity_type = _split_tag(tag, i)
        continues = prefix == "I" and entity_type == open_type
        if open_type is not None and not continues:
            entities.append((open_type, open_start, i - 1))
            open_type = None
        if prefix != "O" and not continues:
            open_type, open_start = entity_type, i
    if open_type is not None:  # an entity that runs to the end of the sentence
        entities.append((open_type, open_start, len(tags) - 1))
    return entities


def _sentences(tag_seqs: Any, name: str) -> list:
    """Check that `tag_seqs` is a non-empty list of per-sentence tag lists."""
    if isinstance(tag_seqs, str) or not hasattr(tag_seqs, "__len__"):
        raise TypeError(f"{name} must be a list with one list of tags per sentence, got {type(tag_seqs).__name__}")
    if not tag_seqs:
        raise ValueError(f"{name} is empty: pass at least one sentence")
    if isinstance(tag_seqs[0], str):
        raise TypeError(f"{name} is a flat list of tags: pass one list per sentence, e.g. [tags] for one sentence")
    return list(tag_seqs)


def entity_scores(true_tag_seqs: Sequence[Sequence[str]], pred_tag_seqs: Sequence[Sequence[str]]) -> dict:
    """Entity-level precision, recall and F1 per type and overall (micro), as `seqeval` and
    `conlleval`: a predicted entity counts only if a true one has the same sentence, type and span.

    Args:
        true_tag_seqs, pred_tag_seqs: gold and predicted IOB2 tags per sentence, same lengths.

    Returns:
        `{type: {"precision", "recall", "f1", "support"}, ..., "overall": {...}}`, types sorted,
        `support` the number of true entities.
    """
    golds = _sentences(true_tag_seqs, "true_tag_seqs")
    preds = _sentences(pred_tag_seqs, "pred_tag_seqs")
    if len(golds) != len(preds):
        raise ValueError(f"true_tag_seqs has {len(golds)} sentences but pred_tag_seqs has {len(preds)}")
    true_entities, pred_entities = set(), set()  # (sentence, type, start, end)
    for s, (gold, pred) in enumerate(zip(golds, preds)):
        for name, tags, found in (("true_tag_seqs", gold, true_entities), ("pred_tag_seqs", pred, pred_entities)):
            try:
                found.update((s, *entity) for entity in get_entities(tags))
            except (TypeError, ValueError) as error:
                raise type(error)(f"{name}[{s}]: {error}") from None
        if len(gold) != len(pred):
            raise ValueError(f"sentence {s} has {len(gold)} true tags but {len(pred)} predicted tags")

    types = sorted({entity[1] for entity in true_entities | pred_entities})
    if "overall" in types:
        raise ValueError("an entity type is named 'overall', which clashes with the micro-average key")
    scores = {}
    for entity_type in types:
        gold_of_type = {e for e in true_entities if e[1] == entity_type}
        pred_of_type = {e for e in pred_entities if e[1] == entity_type}
        p, r, f1 = _precision_recall_f1(len(gold_of_type & pred_of_type), len(pred_of_type), len(gold_of_type))
        scores[entity_type] = {"precision": p, "recall": r, "f1": f1, "support": len(gold_of_type)}
    p, r, f1 = _precision_recall_f1(len(true_entities & pred_entities), len(pred_entities), len(true_entities))
    scores["overall"] = {"precision": p, "recall": r, "f1": f1, "support": len(true_entities)}
    return scores


def format_entity_report(scores: Mapping[str, Mapping[str, float]], digits: int = 2) -> str:
    """`entity_scores`'s result as one string, a table like seqeval's `classification_report`.

        >>> print(format_entity_report(entity_scores([["B-PER", "O", "B-PER", "B-LOC"]],
        ...                                          [["B-PER", "O", "O", "B-LOC"]])))
                precision    recall        f1   support
        <BLANKLINE>
            LOC      1.00      1.00      1.00         1
            PER      1.00      0.50      0.67         2
        <BLANKLINE>
        overall      1.00      0.67      0.80         3
    """
    if "overall" not in scores:
        raise ValueError("scores has no 'overall' entry: pass the dict returned by entity_scores")
    names = [name for name in scores if name != "overall"]
    width = max(len(name) for name in [*names, "overall"])

    def row(name: str) -> str:
        s = scores[name]
        numbers = "".join(f"{s[key]:>10.{digits}f}" for key in ("precision", "recall", "f1"))
        return f"{name:>{width}}{numbers}{s['support']:>10d}"

    header = " " * width + "".join(f"{title:>10}" for title in ("precision", "recall", "f1", "support"))
    return "\n".join([header, "", *[row(name) for name in names], "", row("overall")])


# ---------------------------------------------------------------------------
# Question answering: SQuAD v1.1 official rules
# ---------------------------------------------------------------------------

_PUNCTUATION = set(string.punctuation)  # ASCII only, as in the official script


def normalize_answer(text: str) -> str:
    """Normalize an answer as SQuAD v1.1's official evaluation does: lower-case, delete ASCII
    punctuation, replace the words "a", "an", "the" by a space, collapse whitespace.

        >>> normalize_answer("  The Eiffel-Tower!  ")
        'eiffeltower'
    """
    if not isinstance(text, str):
        raise TypeError(f"answers are strings, got {type(text).__name__} {text!r}")
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _gold_list(gold_answers: Any) -> list[str]:
    # A bare string would be iterated character by character: a silent wrong answer.
    if isinstance(gold_answers, str) or not hasattr(gold_answers, "__len__"):
        raise TypeError(
            f"gold_answers must be a list of strings, got {type(gold_answers).__name__}; "
            "wrap a single answer: [answer]"
        )
    if len(gold_answers) == 0:
        raise ValueError("gold_answers is empty: a question needs at least one gold answer")
    return list(gold_answers)


def squad_exact_match(prediction: str, gold_answers: Sequence[str]) -> float:
    """1.0 if the normalized prediction equals any normalized gold answer, else 0.0.

        >>> squad_exact_match("the Eiffel Tower!", ["Eiffel tower"])
        1.0
    """
    golds = _gold_list(gold_answers)
    predicted = normalize_answer(prediction)
    return float(any(predicted == normalize_answer(gold) for gold in golds))


def _token_f1(prediction: str, gold: str) -> float:
    """Bag-of-tokens F1 between one prediction and one gold answer."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    # Counter & Counter keeps each token min(count in prediction, count in gold) times.
    overlap = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    # No shared token gives 0.0, also when both sides normalize to nothing
    # (e.g. "" vs "the"): the v1.1 rule, where exact_match would say 1.0.
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_f1(prediction: str, gold_answers: Sequence[str]) -> float:
    """SQuAD token F1: the best bag-of-words F1 (over normalized tokens) of the prediction
    against any gold answer; not the classification F1 of `precision_recall_f1`.

        >>> squad_f1("the Eiffel Tower in Paris", ["Eiffel tower"])  # P = 2/4, R = 2/2
        0.6666666666666666
    """
    golds = _gold_list(gold_answers)
    if not isinstance(prediction, str):
        raise TypeError(f"prediction must be a string, got {type(prediction).__name__} {prediction!r}")
    return max(_token_f1(prediction, gold) for gold in golds)


def squad_evaluate(predictions: Mapping[str, str], examples: Sequence[Mapping]) -> dict[str, float]:
    """Official SQuAD v1.1 scores, in percent: each example's best exact match and F1 over its
    gold answers, averaged. Ids not in `examples` are ignored; a missing prediction raises
    ValueError (the official script would score it 0).

    Args:
        predictions: question id -> predicted answer text.
        examples: records like `{"id": str, "answers": {"text": [str, ...]}}` (`load_squad`).

    Returns:
        `{"exact_match": float, "f1": float}`, each in [0, 100].
    """
    if not isinstance(predictions, Mapping):
        raise TypeError(f"predictions must be a dict id -> answer text, got {type(predictions).__name__}")
    examples = list(examples)
    if not examples:
        raise ValueError("examples is empty: pass at least one SQuAD example")
    golds = []  # (id, gold answer texts) per example
    for i, example in enumerate(examples):
        if not isinstance(example, Mapping) or "id" not in example or "answers" not in example:
            raise TypeError(f"examples[{i}] must be a dict with 'id' and 'answers', got {example!r:.200}")
        answers = example["answers"]
        if not isinstance(answers, Mapping) or "text" not in answers:
            raise TypeError(
                f"examples[{i}]['answers'] must be a dict with a 'text' list (the format of "
                f"bertedu.data.load_squad), got {answers!r:.200}"
            )
        golds.append((example["id"], answers["text"]))

    missing = [qid for qid, _ in golds if qid not in predictions]
    if missing:
        raise ValueError(
            f"{len(missing)} of {len(golds)} examples have no prediction (first ids: {missing[:3]}); "
            "predict every example, or pass only the examples you predicted"
        )
    total_em = sum(squad_exact_match(predictions[qid], texts) for qid, texts in golds)
    total_f1 = sum(squad_f1(predictions[qid], texts) for qid, texts in golds)
    return {"exact_match": 100.0 * total_em / len(golds), "f1": 100.0 * total_f1 / len(golds)}
