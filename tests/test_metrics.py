"""bertedu.metrics against the reference tools: scikit-learn, scipy, seqeval, SQuAD v1.1's script.

The entity-level test scores real predictions on CoNLL-2003 (a memorizing baseline) and the
SQuAD test scores all 10,570 real dev questions; both need BERTEDU_DATA. The whole file
runs in about 10 seconds.
"""
import doctest
import gzip
import json
import math
import re
import string
import warnings
from collections import Counter, defaultdict

import numpy as np
import pytest
import scipy.stats
import seqeval.metrics
import sklearn.metrics
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from seqeval.metrics.sequence_labeling import get_entities as seqeval_get_entities

import bertedu.metrics
from bertedu.data import load_conll2003, load_squad
from bertedu.metrics import (
    accuracy,
    confusion_matrix,
    entity_scores,
    squad_exact_match,
    squad_f1,
    format_entity_report,
    get_entities,
    matthews_corrcoef,
    normalize_answer,
    pearson,
    precision_recall_f1,
    spearman,
    squad_evaluate,
)

TOL = 1e-12


def test_docstring_examples_run():
    result = doctest.testmod(bertedu.metrics)
    assert result.attempted >= 5
    assert result.failed == 0


# ---------------------------------------------------------------------------
# Classification, against scikit-learn (note its argument order: y_true, y_pred)
# ---------------------------------------------------------------------------


def assert_binary_matches_sklearn(preds, labels):
    ours = precision_recall_f1(preds, labels, positive=1)
    p, r, f1, _ = sklearn.metrics.precision_recall_fscore_support(
        labels, preds, average="binary", pos_label=1, zero_division=0
    )
    assert ours == pytest.approx({"precision": p, "recall": r, "f1": f1}, abs=TOL)
    assert accuracy(preds, labels) == pytest.approx(sklearn.metrics.accuracy_score(labels, preds), abs=TOL)
    assert matthews_corrcoef(preds, labels) == pytest.approx(sklearn.metrics.matthews_corrcoef(labels, preds), abs=TOL)
    expected_matrix = sklearn.metrics.confusion_matrix(labels, preds, labels=[0, 1]).tolist()
    assert confusion_matrix(preds, labels, num_classes=2) == expected_matrix


@pytest.mark.parametrize("seed, n, rate", [(0, 1000, 0.5), (1, 37, 0.2), (2, 500, 0.9), (3, 5, 0.5)])
def test_binary_metrics_match_sklearn_on_random_arrays(seed, n, rate):
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < rate).astype(int)
    # A noisy copy of the labels: correlated, so MCC is far from 0, but not perfect.
    flip = rng.random(n) < 0.3
    preds = np.where(flip, 1 - labels, labels)
    assert_binary_matches_sklearn(preds, labels)


@pytest.mark.parametrize(
    "preds, labels, expected",
    [
        # All one class, none positive: every ratio divides by 0 -> 0.0 (not 1.0); MCC 0.0.
        ([0, 0, 0, 0], [0, 0, 0, 0], {"accuracy": 1.0, "p": 0.0, "r": 0.0, "f1": 0.0, "mcc": 0.0}),
        # All predicted positive, all labels positive: MCC still 0.0 (no variation).
        ([1, 1, 1], [1, 1, 1], {"accuracy": 1.0, "p": 1.0, "r": 1.0, "f1": 1.0, "mcc": 0.0}),
        # Positives predicted, none exist: precision 0/3, recall 0/0 -> 0.0.
        ([1, 1, 1], [0, 0, 0], {"accuracy": 0.0, "p": 0.0, "r": 0.0, "f1": 0.0, "mcc": 0.0}),
        # Positives exist, none predicted.
        ([0, 0, 0, 0], [1, 0, 1, 0], {"accuracy": 0.5, "p": 0.0, "r": 0.0, "f1": 0.0, "mcc": 0.0}),
        ([1, 0, 1, 0], [1, 0, 1, 0], {"accuracy": 1.0, "p": 1.0, "r": 1.0, "f1": 1.0, "mcc": 1.0}),
        ([0, 1, 0, 1], [1, 0, 1, 0], {"accuracy": 0.0, "p": 0.0, "r": 0.0, "f1": 0.0, "mcc": -1.0}),
        # TP=1, FP=2, FN=0, TN=1: P = 1/3, R = 1, F1 = 2 * (1/3) / (4/3) = 1/2,
        # MCC = (1*1 - 2*0) / sqrt((1+2) * (1+0) * (1+2) * (1+0)) = 1/3.
        ([1, 1, 1, 0], [1, 0, 0, 0], {"accuracy": 0.5, "p": 1 / 3, "r": 1.0, "f1": 0.5, "mcc": 1 / 3}),
        ([1], [1], {"accuracy": 1.0, "p": 1.0, "r": 1.0, "f1": 1.0, "mcc": 0.0}),
    ],
)
@pytest.mark.filterwarnings("ignore:A single label was found")  # sklearn's MCC on one-class input
def test_binary_edge_cases_exact_and_equal_to_sklearn(preds, labels, expected):
    scores = precision_recall_f1(preds, labels)
    assert accuracy(preds, labels) == pytest.approx(expected["accuracy"], abs=TOL)
    assert scores["precision"] == pytest.approx(expected["p"], abs=TOL)
    assert scores["recall"] == pytest.approx(expected["r"], abs=TOL)
    assert scores["f1"] == pytest.approx(expected["f1"], abs=TOL)
    assert matthews_corrcoef(preds, labels) == pytest.approx(expected["mcc"], abs=TOL)
    assert_binary_matches_sklearn(preds, labels)


@pytest.mark.parametrize("seed, n, num_classes", [(10, 800, 3), (11, 60, 5), (12, 300, 4)])
def test_multiclass_metrics_match_sklearn(seed, n, num_classes):
    rng = np.random.default_rng(seed)
    # Never use the last class in the labels, so one class occurs only in predictions.
    labels = rng.integers(0, num_classes - 1, size=n)
    preds = np.where(rng.random(n) < 0.4, rng.integers(0, num_classes, size=n), labels)
    macro = precision_recall_f1(preds, labels, average="macro")
    p, r, f1, _ = sklearn.metrics.precision_recall_fscore_support(labels, preds, average="macro", zero_division=0)
    assert macro == pytest.approx({"precision": p, "recall": r, "f1": f1}, abs=TOL)
    assert accuracy(preds, labels) == pytest.approx(sklearn.metrics.accuracy_score(labels, preds), abs=TOL)
    assert matthews_corrcoef(preds, labels) == pytest.approx(sklearn.metrics.matthews_corrcoef(labels, preds), abs=TOL)
    expected = sklearn.metrics.confusion_matrix(labels, preds, labels=list(range(num_classes + 1))).tolist()
    assert confusion_matrix(preds, labels, num_classes=num_classes + 1) == expected  # an extra, unused class


def test_confusion_matrix_rows_are_true_classes():
    # Two class-0 examples predicted as 2, one class-2 example predicted as 1.
    matrix = confusion_matrix([2, 2, 1, 0, 1], [0, 0, 2, 0, 1], num_classes=3)
    assert matrix == [[1, 0, 2], [0, 1, 0], [0, 1, 0]]


def test_string_classes_and_positive_choice():
    preds = ["spam", "ham", "spam", "ham", "ham"]
    labels = ["spam", "spam", "ham", "ham", "ham"]
    assert precision_recall_f1(preds, labels, positive="spam") == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5}, abs=TOL
    )
    # ham: TP=2, predicted 3, actual 3.
    assert precision_recall_f1(preds, labels, positive="ham") == pytest.approx(
        {"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3}, abs=TOL
    )
    assert matthews_corrcoef(preds, labels) == pytest.approx(
        sklearn.metrics.matthews_corrcoef(labels, preds), abs=TOL
    )


def test_argument_order_is_predictions_then_labels():
    preds, labels = [1, 1, 1, 0], [1, 0, 0, 0]
    assert precision_recall_f1(preds, labels)["precision"] == pytest.approx(1 / 3, abs=TOL)
    assert precision_recall_f1(labels, preds)["precision"] == pytest.approx(1.0, abs=TOL)


def test_lists_numpy_and_tensors_give_the_same_numbers():
    preds, labels = [1, 0, 1, 1, 0, 2], [1, 0, 0, 1, 2, 2]
    reference = (
        accuracy(preds, labels),
        precision_recall_f1(preds, labels, average="macro"),
        matthews_corrcoef(preds, labels),
        confusion_matrix(preds, labels, 3),
    )
    for convert in (tuple, np.array, torch.tensor):
        p, g = convert(preds), convert(labels)
        assert (
            accuracy(p, g),
            precision_recall_f1(p, g, average="macro"),
            matthews_corrcoef(p, g),
            confusion_matrix(p, g, 3),
        ) == reference
    assert accuracy(torch.tensor([True, False]), torch.tensor([1, 0])) == 1.0


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: accuracy([1, 0], [1, 0, 1]), ValueError, "differ in length: 2 vs 3"),
        (lambda: accuracy([], []), ValueError, "empty"),
        (lambda: accuracy(torch.zeros(2, 3), torch.zeros(2, 3)), ValueError, "must be 1-D, got 2 dimensions"),
        (lambda: accuracy(torch.tensor([0.75, 0.25]), [1, 0]), TypeError, "predictions[0] is the float 0.75"),
        (lambda: accuracy([1, 0], np.array([1.0, 0.0])), TypeError, "labels[0] is the float 1.0"),
        (lambda: accuracy("10", "10"), TypeError, "1-D list"),
        (lambda: accuracy(1, 1), TypeError, "got int"),
        (lambda: accuracy([1, "a"], [1, "a"]), TypeError, "mix int and str"),
        (lambda: accuracy([None], [1]), TypeError, "predictions[0] is NoneType"),
        (lambda: precision_recall_f1([0, 1, 2], [0, 1, 2]), ValueError, "at most two classes, found 3"),
        (lambda: precision_recall_f1(["a", "b"], ["a", "b"], positive="c"), ValueError, "positive='c' is not one"),
        (lambda: precision_recall_f1(["ham"], ["ham"]), TypeError, "positive=1 is not the same kind"),
        (lambda: precision_recall_f1([1], [1], average="micro"), ValueError, "'binary' or 'macro'"),
        (lambda: confusion_matrix([0, 3], [0, 1], 3), ValueError, "predictions[1] = 3 is not a class id in [0, 3)"),
        (lambda: confusion_matrix([0, 1], [-1, 1], 3), ValueError, "labels[0] = -1"),
        (lambda: confusion_matrix(["a"], ["a"], 3), ValueError, "predictions[0] = 'a'"),
        (lambda: confusion_matrix([0], [0], 0), ValueError, "num_classes must be a positive int"),
    ],
)
def test_classification_bad_input_raises_clear_errors(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)


# ---------------------------------------------------------------------------
# Correlations, against scipy.stats
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pearson_and_spearman_match_scipy(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=300) * 3 + 2
    y = 0.6 * x + rng.normal(size=300)
    assert pearson(x, y) == pytest.approx(scipy.stats.pearsonr(x, y)[0], abs=1e-9)
    assert spearman(x, y) == pytest.approx(scipy.stats.spearmanr(x, y)[0], abs=1e-9)


@pytest.mark.parametrize("seed", [3, 4])
def test_spearman_with_many_ties_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    # STS-B-like gold scores: a few distinct values (0, 0.2, ..., 5) repeat a lot.
    gold = rng.integers(0, 26, size=400) / 5
    pred = np.round(gold + rng.normal(size=400), 1)
    assert spearman(pred, gold) == pytest.approx(scipy.stats.spearmanr(pred, gold)[0], abs=1e-9)
    assert pearson(pred, gold) == pytest.approx(scipy.stats.pearsonr(pred, gold)[0], abs=1e-9)


def test_spearman_averages_tied_ranks():
    # Ranks of x are [1, 2.5, 2.5, 4]; against y = [1, 2, 3, 4] rho = 4.5 / sqrt(4.5 * 5).
    x, y = [1, 2, 2, 3], [1, 2, 3, 4]
    assert spearman(x, y) == pytest.approx(4.5 / math.sqrt(4.5 * 5), abs=TOL)
    assert spearman(x, y) == pytest.approx(scipy.stats.spearmanr(x, y)[0], abs=1e-9)
    # A monotonic but non-linear relation: rho is exactly 1, r is not.
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    y = [v**3 for v in x]
    assert spearman(x, y) == pytest.approx(1.0, abs=TOL)
    assert pearson(x, y) == pytest.approx(scipy.stats.pearsonr(x, y)[0], abs=1e-9)
    assert pearson(x, y) < 0.95
    assert pearson(x, [-v for v in x]) == pytest.approx(-1.0, abs=TOL)


def test_constant_input_gives_nan_like_scipy():
    assert math.isnan(pearson([1.0, 2.0, 3.0], [0.1, 0.1, 0.1]))
    assert math.isnan(spearman([2, 2, 2], [1, 2, 3]))
    with pytest.warns(scipy.stats.ConstantInputWarning):
        assert math.isnan(scipy.stats.pearsonr([1.0, 2.0, 3.0], [0.1, 0.1, 0.1])[0])


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: pearson([1.0], [2.0]), ValueError, "at least 2 pairs, got 1"),
        (lambda: pearson([1.0, 2.0], [1.0, 2.0, 3.0]), ValueError, "x and y differ in length: 2 vs 3"),
        (lambda: spearman([], []), ValueError, "empty"),
        (lambda: pearson([1.0, float("nan")], [1.0, 2.0]), ValueError, "x[1] is nan"),
        (lambda: spearman([1.0, 2.0], [1.0, float("inf")]), ValueError, "y[1] is inf"),
        (lambda: pearson(["1", "2"], [1, 2]), TypeError, "x[0] is str"),
        (lambda: pearson(np.ones((2, 2)), np.ones((2, 2))), ValueError, "must be 1-D"),
    ],
)
def test_correlation_bad_input_raises_clear_errors(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)


# ---------------------------------------------------------------------------
# Entities, against seqeval's default mode
# ---------------------------------------------------------------------------


def assert_matches_seqeval(true_seqs, pred_seqs):
    ours = entity_scores(true_seqs, pred_seqs)
    ref = seqeval.metrics.classification_report(true_seqs, pred_seqs, output_dict=True, zero_division=0)
    types = sorted(key for key in ref if not key.endswith(" avg"))
    assert [key for key in ours if key != "overall"] == types
    for entity_type in types:
        mine, theirs = ours[entity_type], ref[entity_type]
        assert mine["precision"] == pytest.approx(theirs["precision"], abs=TOL), entity_type
        assert mine["recall"] == pytest.approx(theirs["recall"], abs=TOL), entity_type
        assert mine["f1"] == pytest.approx(theirs["f1-score"], abs=TOL), entity_type
        assert mine["support"] == theirs["support"], entity_type
    overall = ours["overall"]
    assert overall["precision"] == pytest.approx(seqeval.metrics.precision_score(true_seqs, pred_seqs), abs=TOL)
    assert overall["recall"] == pytest.approx(seqeval.metrics.recall_score(true_seqs, pred_seqs), abs=TOL)
    assert overall["f1"] == pytest.approx(seqeval.metrics.f1_score(true_seqs, pred_seqs), abs=TOL)
    assert overall["support"] == ref["micro avg"]["support"]
    return ours


@pytest.mark.parametrize(
    "tags, expected",
    [
        (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 1), ("LOC", 3, 3)]),
        # I- without B-: after O, at the start, after another type -> starts an entity.
        (["O", "I-PER", "I-PER", "O"], [("PER", 1, 2)]),
        (["I-ORG", "O"], [("ORG", 0, 0)]),
        (["B-PER", "I-LOC", "I-LOC"], [("PER", 0, 0), ("LOC", 1, 2)]),
        (["I-PER", "I-LOC"], [("PER", 0, 0), ("LOC", 1, 1)]),
        # Adjacent entities of the same type are split only by B-.
        (["B-PER", "B-PER", "I-PER"], [("PER", 0, 0), ("PER", 1, 2)]),
        (["I-PER", "B-PER"], [("PER", 0, 0), ("PER", 1, 1)]),
        # Entities running to the end of the sentence.
        (["O", "O", "B-MISC"], [("MISC", 2, 2)]),
        (["O", "B-MISC", "I-MISC"], [("MISC", 1, 2)]),
        # Types may contain hyphens; everything after "B-" is the type.
        (["B-GPE-X", "I-GPE-X"], [("GPE-X", 0, 1)]),
        (["O", "O"], []),
        ([], []),
    ],
)
def test_get_entities_hand_cases_match_seqeval(tags, expected):
    assert get_entities(tags) == expected
    assert get_entities(tags) == seqeval_get_entities(tags)


def test_get_entities_matches_seqeval_on_random_tag_soup():
    rng = np.random.default_rng(0)
    vocabulary = ["O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG"]
    for _ in range(500):
        tags = [vocabulary[k] for k in rng.integers(0, len(vocabulary), size=rng.integers(1, 12))]
        assert get_entities(tags) == seqeval_get_entities(tags), tags


def test_entity_scores_hand_cases():
    true_seqs = [
        ["B-PER", "I-PER", "O", "B-LOC", "B-LOC"],  # PER 0-1, LOC 3, LOC 4
        ["O", "B-ORG", "I-ORG", "I-ORG"],  # ORG 1-3, at the end
        ["B-MISC", "O"],
    ]
    pred_seqs = [
        ["B-PER", "O", "O", "B-LOC", "I-LOC"],  # PER 0 (wrong end), LOC 3-4 (merged): nothing correct
        ["O", "I-ORG", "I-ORG", "I-ORG"],  # ORG 1-3 without B-: correct
        ["B-MISC", "B-PER"],  # MISC correct, PER spurious
    ]
    ours = assert_matches_seqeval(true_seqs, pred_seqs)
    assert ours["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert ours["ORG"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert ours["PER"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    # 2 correct out of 5 predicted and 5 true.
    assert ours["overall"] == pytest.approx({"precision": 0.4, "recall": 0.4, "f1": 0.4, "support": 5}, abs=TOL)


def test_entity_scores_type_only_predicted_and_no_entities():
    ours = assert_matches_seqeval([["B-PER", "O"]], [["B-PER", "B-LOC"]])
    assert ours["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert ours["overall"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1}, abs=TOL)
    # No entity anywhere: only the "overall" row, with zero divisions -> 0.0.
    assert entity_scores([["O", "O"]], [["O", "O"]]) == {
        "overall": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    }


def test_format_entity_report_layout():
    scores = entity_scores([["B-PER", "O", "B-PER", "B-LOC"], ["B-MISC"]], [["B-PER", "O", "O", "B-LOC"], ["O"]])
    expected = "\n".join(
        [
            "        precision    recall        f1   support",
            "",
            "    LOC    1.0000    1.0000    1.0000         1",
            "   MISC    0.0000    0.0000    0.0000         1",
            "    PER    1.0000    0.5000    0.6667         2",
            "",
            "overall    1.0000    0.5000    0.6667         4",
        ]
    )
    assert format_entity_report(scores, digits=4) == expected
    with pytest.raises(ValueError, match="no 'overall' entry"):
        format_entity_report({"PER": scores["PER"]})


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: get_entities(["B-PER", "E-PER"]), ValueError, "tag 'E-PER' at position 1 is not IOB2"),
        (lambda: get_entities(["PER"]), ValueError, "tag 'PER' at position 0 is not IOB2"),
        (lambda: get_entities(["O", "B-"]), ValueError, "tag 'B-' at position 1"),
        (lambda: get_entities(["O", None]), TypeError, "tag at position 1 is NoneType"),
        (lambda: get_entities("B-PER I-PER"), TypeError, "list of tag strings"),
        (lambda: entity_scores([], []), ValueError, "true_tag_seqs is empty"),
        (lambda: entity_scores(["B-PER", "O"], ["B-PER", "O"]), TypeError, "flat list of tags"),
        (lambda: entity_scores([["O"], ["O"]], [["O"]]), ValueError, "2 sentences but pred_tag_seqs has 1"),
        (lambda: entity_scores([["O"], ["O", "O"]], [["O"], ["O"]]), ValueError, "sentence 1 has 2 true tags but 1"),
        (lambda: entity_scores([["O"], ["O"]], [["O"], ["S-PER"]]), ValueError, "pred_tag_seqs[1]: tag 'S-PER'"),
        (lambda: entity_scores([["B-overall"]], [["O"]]), ValueError, "clashes"),
    ],
)
def test_entity_bad_input_raises_clear_errors(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)


def read_iob1_ner_tags(path):
    """The raw NER column of a CoNLL-2003 file (IOB1), one list per sentence."""
    sentences, tags = [], []
    for line in path.read_text(encoding="ascii").splitlines() + [""]:  # "" ends the last one
        if line.startswith("-DOCSTART-") or not line.strip():
            if tags:
                sentences.append(tags)
                tags = []
            continue
        tags.append(line.split(" ")[-1])
    return sentences


@pytest.fixture(scope="module")
def conll_baseline(data_dir):
    """Gold IOB2 tags of eng.testb, its raw IOB1 tags, and a memorizing baseline's predictions.

    The baseline tags each word with its most frequent IOB2 tag in eng.train, "O" if unseen.
    """
    counts = defaultdict(Counter)  # word -> Counter of its tags in train
    for sentence in load_conll2003("train"):
        for word, tag in zip(sentence["tokens"], sentence["ner_tags"]):
            counts[word][tag] += 1
    memorized = {word: tag_counts.most_common(1)[0][0] for word, tag_counts in counts.items()}
    test = load_conll2003("test")
    gold = [sentence["ner_tags"] for sentence in test]
    preds = [[memorized.get(word, "O") for word in sentence["tokens"]] for sentence in test]
    iob1 = read_iob1_ner_tags(data_dir / "conll2003" / "eng.testb")
    return gold, preds, iob1


def test_entity_scores_match_seqeval_on_conll2003_baseline(conll_baseline):
    gold, preds, _ = conll_baseline
    assert len(gold) == 3453
    # The converted gold entities are the official test counts (shared/data/README.md).
    gold_counts = Counter(entity_type for tags in gold for entity_type, _, _ in get_entities(tags))
    assert gold_counts == {"PER": 1617, "LOC": 1668, "ORG": 1661, "MISC": 702}
    # Word-by-word tags produce many I- without B-: the non-strict rule is exercised.
    dangling = sum(
        tag.startswith("I-") and (i == 0 or tags[i - 1][2:] != tag[2:]) for tags in preds for i, tag in enumerate(tags)
    )
    assert dangling > 100

    ours = assert_matches_seqeval(gold, preds)
    # A sanity range for a memorizing baseline, so a broken data path cannot pass silently.
    assert 0.3 < ours["overall"]["f1"] < 0.8
    assert ours["overall"]["support"] == 1617 + 1668 + 1661 + 702


def test_iob1_tags_give_the_same_entities_as_iob2(conll_baseline):
    gold, _, iob1 = conll_baseline
    assert sum(a != b for tags1, tags2 in zip(iob1, gold) for a, b in zip(tags1, tags2)) > 1000
    assert [get_entities(tags) for tags in iob1] == [get_entities(tags) for tags in gold]


# ---------------------------------------------------------------------------
# SQuAD v1.1, against a transcription of the official evaluate-v1.1.py
# ---------------------------------------------------------------------------


def reference_normalize_answer(s):
    """The official rules: lower, remove punctuation, remove articles, fix whitespace."""

    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def reference_f1(prediction, ground_truth):
    prediction_tokens = reference_normalize_answer(prediction).split()
    ground_truth_tokens = reference_normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def reference_em(prediction, ground_truth):
    return reference_normalize_answer(prediction) == reference_normalize_answer(ground_truth)


def reference_evaluate(dataset, predictions):
    """The official loop over the raw JSON's articles -> paragraphs -> questions."""
    f1 = exact = total = 0
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                ground_truths = [answer["text"] for answer in qa["answers"]]
                prediction = predictions[qa["id"]]
                exact += max(reference_em(prediction, gt) for gt in ground_truths)
                f1 += max(reference_f1(prediction, gt) for gt in ground_truths)
    return {"exact_match": 100.0 * exact / total, "f1": 100.0 * f1 / total}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("the Eiffel Tower!", "eiffel tower"),
        ("  The   Eiffel\tTower  ", "eiffel tower"),
        ("A man, a plan, a canal: Panama", "man plan canal panama"),
        ("U.S. Army", "us army"),
        ("an anthem", "anthem"),
        ("theatre and Athens", "theatre and athens"),  # articles only as whole words
        ("the-end", "theend"),  # punctuation goes first, so no word boundary is left
        ("The (1st) answer's", "1st answers"),
        ("1,000–2,000", "1000–2000"),  # the en dash is not ASCII punctuation: it stays
        ("The", ""),
        ("", ""),
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected
    assert normalize_answer(text) == reference_normalize_answer(text)


@pytest.mark.parametrize(
    "prediction, golds, em, f1",
    [
        ("the Eiffel Tower!", ["Eiffel tower"], 1.0, 1.0),
        ("Eiffel Tower in Paris", ["Eiffel tower"], 0.0, 2 * (2 / 4) * 1 / (2 / 4 + 1)),
        # Max over gold answers: each metric takes its own best gold.
        ("Denver Broncos", ["Broncos", "the Denver Broncos", "Carolina"], 1.0, 1.0),
        ("Denver Broncos team", ["Broncos", "Carolina Panthers"], 0.0, 2 * (1 / 3) * 1 / (1 / 3 + 1)),
        # Repeated tokens count with multiplicity: overlap of "a b b" and "b b b" is 2.
        ("x y y", ["y y y"], 0.0, 2 / 3),
        # Empty prediction: EM only with an answer that normalizes to nothing; F1 always 0.
        ("", ["Denver"], 0.0, 0.0),
        ("", ["The"], 1.0, 0.0),
        ("the", ["a"], 1.0, 0.0),
    ],
)
def test_exact_match_and_f1_hand_cases(prediction, golds, em, f1):
    assert squad_exact_match(prediction, golds) == em
    assert squad_f1(prediction, golds) == pytest.approx(f1, abs=TOL)
    assert em == float(max(reference_em(prediction, g) for g in golds))
    assert squad_f1(prediction, golds) == pytest.approx(max(reference_f1(prediction, g) for g in golds), abs=TOL)


def test_squad_evaluate_hand_case():
    examples = [
        {"id": "q1", "answers": {"text": ["Eiffel tower", "the tower"], "answer_start": [0, 4]}},
        {"id": "q2", "answers": {"text": ["in 1889"]}},
    ]
    # q1: EM 1, F1 1; q2: "1889 Paris" vs "in 1889": P 1/2, R 1/2, F1 1/2.
    predictions = {"q1": "The Eiffel Tower.", "q2": "1889 Paris", "unused": "ignored"}
    assert squad_evaluate(predictions, examples) == pytest.approx({"exact_match": 50.0, "f1": 75.0}, abs=TOL)


def test_squad_evaluate_matches_official_rules_on_dev(data_dir):
    examples = load_squad("dev")  # the records squad_evaluate is meant for
    assert len(examples) == 10570
    rng = np.random.default_rng(0)
    predictions = {}
    for number, example in enumerate(examples):
        context, words = example["context"], example["context"].split()
        start, text = example["answers"]["answer_start"][0], example["answers"]["text"][0]
        # Five kinds of prediction, for exact hits, near misses, overlaps and blanks.
        kind = number % 5
        if kind == 0:
            prediction = text
        elif kind == 1:
            prediction = "The " + text.upper() + "."
        elif kind == 2:
            prediction = context[max(0, start - 15) : start + len(text) + 10]
        elif kind == 3:
            k = int(rng.integers(0, max(1, len(words) - 4)))
            prediction = " ".join(words[k : k + 4])
        else:
            prediction = ""
        predictions[example["id"]] = prediction
    ours = squad_evaluate(predictions, examples)
    # The reference reads the official JSON itself, not bertedu.data's records.
    with gzip.open(data_dir / "squad" / "dev-v1.1.json.gz", "rt", encoding="utf-8") as f:
        reference = reference_evaluate(json.load(f)["data"], predictions)
    assert ours == pytest.approx(reference, abs=1e-9)
    assert 30 < ours["exact_match"] < 60 and ours["exact_match"] < ours["f1"] < 70


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: squad_exact_match("Paris", "Paris"), TypeError, "wrap a single answer"),
        (lambda: squad_f1("Paris", []), ValueError, "gold_answers is empty"),
        (lambda: squad_f1(None, ["Paris"]), TypeError, "prediction must be a string"),
        (lambda: squad_exact_match(3, ["3"]), TypeError, "answers are strings"),
        (lambda: squad_evaluate({}, []), ValueError, "examples is empty"),
        (lambda: squad_evaluate([("q1", "x")], [{"id": "q1", "answers": {"text": ["x"]}}]), TypeError, "dict id"),
        (
            lambda: squad_evaluate({"q1": "x"}, [{"id": "q1", "answers": [{"text": "x", "answer_start": 0}]}]),
            TypeError,
            "examples[0]['answers'] must be a dict with a 'text' list",
        ),
        (lambda: squad_evaluate({"q1": "x"}, [{"id": "q1"}]), TypeError, "examples[0] must be a dict with 'id'"),
        (
            lambda: squad_evaluate({"q1": "x"}, [{"id": q, "answers": {"text": ["x"]}} for q in ("q1", "q2")]),
            ValueError,
            "1 of 2 examples have no prediction (first ids: ['q2'])",
        ),
    ],
)
def test_squad_bad_input_raises_clear_errors(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1.0])
def test_pearson_survives_very_large_and_very_small_values(scale):
    from scipy import stats
    x = [1 * scale, 2 * scale, 4 * scale, 3 * scale]
    y = [1.0, 2.0, 3.5, 3.0]
    assert pearson(x, y) == pytest.approx(stats.pearsonr([1, 2, 4, 3], y)[0], rel=1e-12)


# ---------------------------------------------------------------------------
# Differential fuzzing (hypothesis): random inputs, the reference gives the answer.
# derandomize=True makes the examples the same on every run, so CI cannot flake.
# ---------------------------------------------------------------------------
FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

finite_floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def paired_samples(draw):
    """Two equal-length lists, at one common scale from 1e-200 to 1e200, ties allowed."""
    n = draw(st.integers(min_value=2, max_value=40))
    values = st.one_of(finite_floats, st.integers(-5, 5).map(float))  # small integers make ties
    x = draw(st.lists(values, min_size=n, max_size=n))
    y = draw(st.lists(values, min_size=n, max_size=n))
    scale = 10.0 ** draw(st.sampled_from([-200, -20, 0, 20, 200]))
    return [v * scale for v in x], [v * scale for v in y]


def _same_correlation(ours, theirs):
    if math.isnan(theirs):
        return math.isnan(ours)
    return ours == pytest.approx(theirs, abs=1e-7)


@FUZZ
@given(paired_samples())
def test_fuzz_correlations_match_scipy(sample):
    x, y = sample
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on constant or nearly constant input
        expected_r = scipy.stats.pearsonr(x, y)[0]
        expected_rho = scipy.stats.spearmanr(x, y)[0]
    assert _same_correlation(pearson(x, y), float(expected_r)), (pearson(x, y), expected_r)
    assert _same_correlation(spearman(x, y), float(expected_rho)), (spearman(x, y), expected_rho)


TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-MISC", "I-MISC"]


@st.composite
def tagged_corpora(draw):
    """Gold and predicted IOB2 tag sequences of the same lengths, dangling I- tags included."""
    lengths = draw(st.lists(st.integers(min_value=0, max_value=10), min_size=1, max_size=6))
    gold = [draw(st.lists(st.sampled_from(TAGS), min_size=n, max_size=n)) for n in lengths]
    pred = [draw(st.lists(st.sampled_from(TAGS), min_size=n, max_size=n)) for n in lengths]
    return gold, pred


@FUZZ
@given(tagged_corpora())
def test_fuzz_entity_scores_match_seqeval(corpora):
    gold, pred = corpora
    assert get_entities(sum(gold, [])) == seqeval_get_entities(sum(gold, []))
    if not any(seqeval_get_entities(tags) for tags in gold + pred):
        # seqeval's report has no rows then; ours has only "overall", all zeros
        assert entity_scores(gold, pred)["overall"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns when a type has no true entities
        assert_matches_seqeval(gold, pred)


answer_pieces = st.sampled_from(list("abc xyz") + ["the ", "a ", "An ", "THE", ".", ",", "'", "-", "(", "\t",
                                                  "\u00a0", "\u2013", "é", "1", "0"])
answer_text = st.lists(answer_pieces, max_size=15).map("".join)  # words, articles, punctuation, odd spaces


@FUZZ
@given(answer_text, st.lists(answer_text, min_size=1, max_size=3))
def test_fuzz_squad_scores_match_the_official_rules(prediction, golds):
    assert normalize_answer(prediction) == reference_normalize_answer(prediction)
    assert squad_exact_match(prediction, golds) == max(float(reference_em(prediction, g)) for g in golds)
    assert squad_f1(prediction, golds) == pytest.approx(max(reference_f1(prediction, g) for g in golds), abs=1e-12)
