"""bertedu.augment: EDA's four edits, seeded, with clear errors for bad input."""
import random
from collections import Counter

import pytest

from bertedu.augment import (STOP_WORDS, SYNONYMS, augment_dataset, build_synonyms, eda, random_deletion,
                             random_insertion, random_swap, synonym_replacement)

TABLE = build_synonyms([("good", "fine"), ("film", "movie", "picture")])
WORDS = "a good film with a good cast".split()


def test_synonym_table_is_symmetric_without_self():
    assert TABLE == {"good": ("fine",), "fine": ("good",), "film": ("movie", "picture"),
                     "movie": ("film", "picture"), "picture": ("film", "movie")}
    for word, others in SYNONYMS.items():
        assert word not in others
        for other in others:
            assert word in SYNONYMS[other], (word, other)


def test_synonym_replacement_changes_every_occurrence_of_the_chosen_word():
    out = synonym_replacement(WORDS, 1, random.Random(0), TABLE)
    changed = [(a, b) for a, b in zip(WORDS, out) if a != b]
    assert len(out) == len(WORDS) and changed
    assert len({a for a, _ in changed}) == 1  # one word chosen
    word = changed[0][0]
    assert all(out[i] in TABLE[word] for i, w in enumerate(WORDS) if w == word)
    assert len(changed) == WORDS.count(word)


def test_synonym_replacement_with_n_larger_than_candidates_changes_all_of_them():
    out = synonym_replacement(WORDS, 10, random.Random(1), TABLE)
    assert [w for w, o in zip(WORDS, out) if w != o] == ["good", "film", "good"]
    assert synonym_replacement(["the", "plot"], 3, random.Random(0), TABLE) == ["the", "plot"]


def test_random_insertion_adds_synonyms_of_words_present():
    out = random_insertion(WORDS, 2, random.Random(0), TABLE)
    assert len(out) == len(WORDS) + 2
    added = Counter(out) - Counter(WORDS)
    assert sum(added.values()) == 2
    assert all(w in TABLE["good"] + TABLE["film"] for w in added)
    assert random_insertion(["xyz", "abc"], 3, random.Random(0), TABLE) == ["xyz", "abc"]


def test_random_swap_keeps_the_words():
    out = random_swap(WORDS, 2, random.Random(0))
    assert sorted(out) == sorted(WORDS)
    distinct = ["w1", "w2", "w3", "w4", "w5"]
    once = random_swap(distinct, 1, random.Random(0))
    assert sorted(once) == distinct and sum(a != b for a, b in zip(once, distinct)) == 2  # one swap
    assert random_swap(["one"], 3, random.Random(0)) == ["one"]


def test_random_deletion_extremes():
    assert random_deletion(WORDS, 0.0, random.Random(0)) == WORDS
    kept = random_deletion(WORDS, 1.0, random.Random(0))
    assert len(kept) == 1 and kept[0] in WORDS
    out = random_deletion(WORDS * 50, 0.5, random.Random(0))
    assert 0.35 < len(out) / (len(WORDS) * 50) < 0.65


def test_edits_do_not_modify_their_input():
    words = list(WORDS)
    for edit in (lambda w: synonym_replacement(w, 2, random.Random(0), TABLE),
                 lambda w: random_insertion(w, 2, random.Random(0), TABLE),
                 lambda w: random_swap(w, 2, random.Random(0)),
                 lambda w: random_deletion(w, 0.5, random.Random(0))):
        edit(words)
        assert words == WORDS


def test_eda_is_seeded_and_cycles_through_the_edits():
    sentence = "a charming and funny film about a boring town"
    first = eda(sentence, random.Random(3), num_aug=8)
    assert first == eda(sentence, random.Random(3), num_aug=8)
    assert first != eda(sentence, random.Random(4), num_aug=8)
    assert len(first) == 8
    n = len(sentence.split())
    # RI is the only edit that adds words (max(1, int(0.1 * 9)) = 1): once in every 4 turns
    assert [len(s.split()) == n + 1 for s in first].count(True) == 2
    assert all(len(s.split()) <= n + 1 for s in first)
    # the turns start at a random edit, so with num_aug=1 every edit is used over many sentences
    singles = [eda(sentence, random.Random(seed), num_aug=1)[0] for seed in range(40)]
    assert any(len(s.split()) == n + 1 for s in singles)                 # RI
    assert any(len(s.split()) < n for s in singles)                      # RD
    assert any(s != sentence and sorted(s.split()) == sorted(sentence.split()) for s in singles)  # RS
    only_swap = eda(sentence, random.Random(0), alpha_sr=0, alpha_ri=0, p_rd=0, num_aug=3)
    assert all(sorted(s.split()) == sorted(sentence.split()) for s in only_swap)
    assert eda(sentence, random.Random(0), num_aug=0) == []


def test_sentiment_synonyms_keep_their_polarity():
    positive = {"good", "great", "charming", "funny", "beautiful", "moving", "smart", "entertaining"}
    negative = {"bad", "terrible", "boring", "stupid", "mess", "predictable"}
    for word in positive:
        assert not set(SYNONYMS[word]) & negative, word
    for word in negative:
        assert not set(SYNONYMS[word]) & positive, word
    assert not set(SYNONYMS) & STOP_WORDS


def test_augment_dataset_keeps_originals_first_and_copies_labels():
    texts, labels = augment_dataset(["a good film", "a bad film"], [1, 0], num_aug=3, seed=0)
    assert texts[:2] == ["a good film", "a bad film"] and len(texts) == 8
    assert labels == [1, 0, 1, 1, 1, 0, 0, 0]
    assert (texts, labels) == augment_dataset(["a good film", "a bad film"], [1, 0], num_aug=3, seed=0)


@pytest.mark.parametrize("call, error, message", [
    (lambda: eda("", random.Random(0)), ValueError, "words is empty: give at least one word"),
    (lambda: eda("a film", random.Random(0), alpha_sr=1.5), ValueError, "alpha_sr must be a probability"),
    (lambda: eda("a film", random.Random(0), p_rd=-0.1), ValueError, "p_rd must be a probability"),
    (lambda: eda("a film", random.Random(0), num_aug=-1), ValueError, ">= 0"),
    (lambda: eda("a film", random.Random(0), alpha_sr=0, alpha_ri=0, alpha_rs=0, p_rd=0), ValueError, "no edit"),
    (lambda: eda("a film", 0), TypeError, "random.Random"),
    (lambda: eda(["a", "film"], random.Random(0)), TypeError, "must be a string"),
    (lambda: random_deletion(["a"], 2, random.Random(0)), ValueError, "p must be a probability"),
    (lambda: random_swap("a film", 1, random.Random(0)), TypeError, "list of words"),
    (lambda: random_swap([], 1, random.Random(0)), ValueError, "words is empty: give at least one word"),
    (lambda: synonym_replacement(["a"], 1.5, random.Random(0)), ValueError, "whole number >= 0"),
    (lambda: augment_dataset(["a film"], [1, 0]), ValueError, "one label per text"),
    (lambda: augment_dataset([], []), ValueError, "empty"),
    (lambda: build_synonyms([("alone",)]), ValueError, "at least two words"),
])
def test_bad_input_is_refused_with_a_clear_message(call, error, message):
    with pytest.raises(error, match=message):
        call()
