"""EDA: easy data augmentation for text classification (Wei & Zou, 2019).

Four cheap edits that (mostly) keep the label: synonym replacement (SR), random insertion
(RI), random swap (RS), random deletion (RD). Synonyms come from `SYNONYMS`, a small table of
movie-review words, not WordNet (pass `synonyms=` for another domain). Words are split on
whitespace. Every function takes a `random.Random`: the same seed gives the same sentences.

Example:
    >>> eda("a charming and funny film", random.Random(0), num_aug=4)  # RD, SR, RI, RS
    ['a charming and funny film', 'a lovely and funny film', 'a charming and funny movie film',
     'a and charming funny film']
"""
from __future__ import annotations

import random
from typing import Mapping, Sequence

from .checks import check_count, check_rng, check_words

# Groups of words that can stand for each other in a movie review. Sentiment words stay
# within their polarity: a synonym must not flip the label.
SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("film", "movie", "picture"),
    ("story", "plot", "tale"),
    ("actor", "performer"),
    ("actors", "cast", "performers"),
    ("director", "filmmaker"),
    ("scene", "sequence"),
    ("funny", "amusing", "hilarious", "comic"),
    ("good", "fine", "decent"),
    ("great", "excellent", "terrific", "superb"),
    ("beautiful", "lovely", "gorgeous"),
    ("charming", "delightful", "lovely"),
    ("smart", "clever", "intelligent"),
    ("moving", "touching", "affecting"),
    ("entertaining", "enjoyable", "fun"),
    ("bad", "poor", "awful"),
    ("terrible", "dreadful", "horrible", "awful"),
    ("boring", "dull", "tedious", "tiresome"),
    ("stupid", "dumb", "silly"),
    ("mess", "muddle", "shambles"),
    ("predictable", "formulaic", "obvious"),
    ("big", "large", "huge"),
    ("small", "little", "minor"),
    ("fast", "quick", "rapid"),
    ("slow", "sluggish", "plodding"),
    ("new", "fresh", "novel"),
    ("old", "dated", "stale"),
    ("strange", "odd", "weird", "bizarre"),
    ("very", "really", "truly", "extremely"),
    ("often", "frequently"),
    ("makes", "creates", "produces"),
    ("shows", "reveals", "displays"),
    ("tries", "attempts"),
    ("feels", "seems"),
    ("characters", "figures", "roles"),
    ("audience", "viewers", "moviegoers"),
    ("work", "effort"),
    ("end", "finale", "ending"),
    ("humor", "wit", "comedy"),
)


def build_synonyms(groups: Sequence[Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """word -> the other words of every group it is in (a symmetric table, sorted, no self)."""
    table: dict[str, set[str]] = {}
    for group in groups:
        if isinstance(group, str) or len(group) < 2:
            raise ValueError(f"a synonym group needs at least two words, got {group!r}")
        for word in group:
            table.setdefault(word, set()).update(w for w in group if w != word)
    return {word: tuple(sorted(others)) for word, others in table.items()}


SYNONYMS: dict[str, tuple[str, ...]] = build_synonyms(SYNONYM_GROUPS)

# Never replaced (the paper skips stop words too); they rarely have a synonym worth using.
STOP_WORDS = frozenset("a an the and or but of to in on at for with by from is are was were be been "
                       "it its 's this that these those i you he she we they as".split())


def _check_probability(name: str, p: float) -> None:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")


def synonym_replacement(words: Sequence[str], n: int, rng: random.Random,
                        synonyms: Mapping[str, Sequence[str]] = SYNONYMS) -> list[str]:
    """Replace up to `n` distinct words (not stop words) that have synonyms with a random synonym.

    Every occurrence of a chosen word is replaced by the same synonym (as in the paper's code).
    Fewer than `n` words change when fewer have synonyms.
    """
    words = check_words(words)
    check_rng(rng)
    check_count("the number of edits", n, minimum=0)
    candidates = sorted({w for w in words if w in synonyms and w not in STOP_WORDS})
    rng.shuffle(candidates)
    for word in candidates[:n]:
        choice = rng.choice(list(synonyms[word]))
        words = [choice if w == word else w for w in words]
    return words


def random_insertion(words: Sequence[str], n: int, rng: random.Random,
                     synonyms: Mapping[str, Sequence[str]] = SYNONYMS) -> list[str]:
    """`n` times: pick a random word that has synonyms, insert one of them at a random place.

    A sentence with no word in the table comes back unchanged.
    """
    words = check_words(words)
    check_rng(rng)
    check_count("the number of edits", n, minimum=0)
    for _ in range(n):
        candidates = [w for w in words if w in synonyms and w not in STOP_WORDS]
        if not candidates:
            break
        synonym = rng.choice(list(synonyms[rng.choice(candidates)]))
        words.insert(rng.randint(0, len(words)), synonym)
    return words


def random_swap(words: Sequence[str], n: int, rng: random.Random) -> list[str]:
    """`n` times: swap two words at random positions (a one-word sentence stays as it is)."""
    words = check_words(words)
    check_rng(rng)
    check_count("the number of edits", n, minimum=0)
    if len(words) < 2:
        return words
    for _ in range(n):
        i, j = rng.sample(range(len(words)), 2)
        words[i], words[j] = words[j], words[i]
    return words


def random_deletion(words: Sequence[str], p: float, rng: random.Random) -> list[str]:
    """Delete each word with probability `p`; if every word would go, keep one at random."""
    words = check_words(words)
    check_rng(rng)
    _check_probability("p", p)
    kept = [w for w in words if rng.random() >= p]
    return kept if kept else [rng.choice(words)]


def eda(sentence: str, rng: random.Random, alpha_sr: float = 0.1, alpha_ri: float = 0.1,
        alpha_rs: float = 0.1, p_rd: float = 0.1, num_aug: int = 4,
        synonyms: Mapping[str, Sequence[str]] = SYNONYMS) -> list[str]:
    """`num_aug` augmented versions of `sentence`, each made by one of the four edits.

    The edits take turns (SR, RI, RS, RD, SR, ...) from a random start, so each is used
    equally often over a dataset; SR, RI and RS change `max(1, int(alpha * words))` words; an
    edit whose alpha (or p) is 0 is skipped. Results may repeat or equal the input.

    Args:
        sentence: one whitespace-tokenized sentence.
        rng: a `random.Random`; the same seed gives the same sentences.
        alpha_sr, alpha_ri, alpha_rs: share of the words edited by SR, RI, RS, in [0, 1].
        p_rd: deletion probability of RD, in [0, 1].
        num_aug: how many sentences to return (>= 0).
        synonyms: word -> synonyms (default `SYNONYMS`).

    Returns:
        A list of `num_aug` strings.
    """
    if not isinstance(sentence, str):
        raise TypeError(f"sentence must be a string, got {type(sentence).__name__}")
    words = check_words(sentence.split())
    check_rng(rng)
    settings = (("alpha_sr", alpha_sr), ("alpha_ri", alpha_ri), ("alpha_rs", alpha_rs), ("p_rd", p_rd))
    for name, value in settings:
        _check_probability(name, value)
    check_count("num_aug", num_aug, minimum=0)
    edits = []
    if alpha_sr > 0:
        edits.append(lambda w: synonym_replacement(w, max(1, int(alpha_sr * len(w))), rng, synonyms))
    if alpha_ri > 0:
        edits.append(lambda w: random_insertion(w, max(1, int(alpha_ri * len(w))), rng, synonyms))
    if alpha_rs > 0:
        edits.append(lambda w: random_swap(w, max(1, int(alpha_rs * len(w))), rng))
    if p_rd > 0:
        edits.append(lambda w: random_deletion(w, p_rd, rng))
    if num_aug and not edits:
        raise ValueError("every alpha and p_rd is 0: no edit is left to make new sentences")
    start = rng.randrange(len(edits)) if num_aug else 0
    return [" ".join(edits[(start + k) % len(edits)](words)) for k in range(num_aug)]


def augment_dataset(texts: Sequence[str], labels: Sequence[int], num_aug: int = 4, seed: int = 0,
                    **eda_options) -> tuple[list[str], list[int]]:
    """The original examples followed by `num_aug` EDA versions of each, with the same labels.

    Args:
        texts: N sentences.
        labels: N labels (any values; copied to the augmented sentences).
        num_aug: augmented sentences per original.
        seed: seeds one `random.Random` for the whole dataset.
        **eda_options: `alpha_sr`, `alpha_ri`, `alpha_rs`, `p_rd`, `synonyms` (see `eda`).

    Returns:
        `(texts, labels)` with `N * (1 + num_aug)` entries: the N originals first.
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a list of sentences, not one string")
    if len(texts) != len(labels):
        raise ValueError(f"texts has {len(texts)} items but labels has {len(labels)}: give one label per text")
    if len(texts) == 0:
        raise ValueError("texts is empty: there is nothing to augment")
    rng = random.Random(seed)
    new_texts, new_labels = list(texts), list(labels)
    for text, label in zip(texts, labels):
        for augmented in eda(text, rng, num_aug=num_aug, **eda_options):
            new_texts.append(augmented)
            new_labels.append(label)
    return new_texts, new_labels
