"""Small argument checkers shared by the modules: each returns the value or raises an error
that names the argument and says what to pass. Internal to the library."""
import numbers
import random
from typing import Sequence

import torch


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


def check_strings(items, name: str, what: str = "sentence") -> list[str]:
    """A non-empty list of strings (one per sentence, word...: `what`), as a new list."""
    if isinstance(items, str) or not isinstance(items, Sequence):
        hint = ""
        if isinstance(items, str):
            hint = (": split the sentence first into a list of words, e.g. sentence.split()" if what == "word"
                    else f": wrap a single {what} in a list, [{name}]")
        raise TypeError(f"{name} must be a list of strings (one per {what}), got {type(items).__name__}{hint}")
    if len(items) == 0:
        raise ValueError(f"{name} is empty: give at least one {what}")
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"{name}[{i}] is a {type(item).__name__} ({item!r}), not a str")
    return list(items)


def check_words(words, name: str = "words") -> list[str]:
    """A sentence split into words: a non-empty list of word strings, as a new list."""
    return check_strings(words, name, what="word")


def check_token_ids(input_ids, name: str = "input_ids"):
    """A batch of token ids: an integer tensor `[batch_size, seq_len]`."""
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
        got = tuple(input_ids.shape) if isinstance(input_ids, torch.Tensor) else type(input_ids).__name__
        raise ValueError(f"{name} must be a LongTensor of shape [batch_size, seq_len], got {got}: use "
                         f"return_tensors='pt' in the tokenizer, and {name}[None] for a single sequence")
    if input_ids.dtype not in (torch.long, torch.int):
        raise TypeError(f"{name} must hold integer ids, got dtype {input_ids.dtype}")
    return input_ids


def check_rng(rng) -> random.Random:
    """A `random.Random`, the seeded generator that makes a random edit repeatable."""
    if not isinstance(rng, random.Random):
        raise TypeError(f"rng must be a random.Random (e.g. random.Random(0)), got {type(rng).__name__}")
    return rng
