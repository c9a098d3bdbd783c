"""Small argument checkers shared by the modules: each returns the value or raises an error
that names the argument and says what to pass. Internal to the library."""
import numbers
import random
from typing import Sequence


def check_text(text, name: str = "text", allow_empty: bool = True) -> str:
    """Return `text` if it is a str (non-blank unless `allow_empty`); otherwise raise."""
    if isinstance(text, (bytes, bytearray)):
        raise TypeError(
            f"{name} must be a str, got {type(text).__name__}: decode it first, e.g. {name}.decode('utf-8')"
        )
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}")
    if not allow_empty and not text.strip():
        raise ValueError(f"{name} is empty")
    return text


def check_count(name: str, value, minimum: int = 1) -> None:
    """Refuse anything but a whole number >= `minimum` (a bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")


def check_words(words, name: str = "words") -> list[str]:
    """A non-empty list of word strings (a sentence split into words), as a new list."""
    if isinstance(words, str) or not isinstance(words, Sequence):
        raise TypeError(f"{name} must be a list of word strings, got {type(words).__name__}: "
                        "split the sentence first into a list of words, e.g. sentence.split()")
    if len(words) == 0:
        raise ValueError(f"{name} is empty: the sentence has no words")
    for i, word in enumerate(words):
        if not isinstance(word, str):
            raise TypeError(f"{name}[{i}] is a {type(word).__name__} ({word!r}), not a str")
    return list(words)


def check_rng(rng) -> random.Random:
    """A `random.Random`, the seeded generator that makes a random edit repeatable."""
    if not isinstance(rng, random.Random):
        raise TypeError(f"rng must be a random.Random (e.g. random.Random(0)), got {type(rng).__name__}")
    return rng
