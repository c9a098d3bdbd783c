"""BERT's WordPiece tokenizer, built from scratch.

BERT (Devlin et al. 2019, https://arxiv.org/abs/1810.04805) reads text in two passes:

1. `BasicTokenizer`: clean the text, put spaces around every CJK character, lower-case and
   strip accents (uncased models), then split on whitespace and punctuation.
2. `WordpieceTokenizer`: cut every word into the longest vocabulary pieces, left to right;
   pieces after the first start with `##` ("unaffable" -> `["un", "##aff", "##able"]`).

`BertTokenizer` adds the vocabulary file, the special tokens `[CLS] [SEP] [PAD] [MASK]
[UNK]`, batching, padding, truncation and character offsets. `bertedu.wordpiece_trainer`
learns a vocabulary from a corpus. Tokens, ids and offsets match Hugging Face's
`BertTokenizer` (its Rust pipeline; tests/test_tokenization.py checks them).
"""
import functools
import json
import numbers
import re
import unicodedata
from pathlib import Path
from typing import Iterable, Sequence

import torch

from .checks import check_text

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


# ---------------------------------------------------------------------------------------
# Character classes, as in Google's tokenization.py. The tests used once per character are
# cached (lru_cache): real text repeats the same few hundred characters.


@functools.lru_cache(maxsize=1 << 16)
def _is_whitespace(char: str) -> bool:
    """Spaces, tabs, newlines and Unicode space separators (Zs), line/paragraph separators."""
    # \t \n \r are control characters to Unicode, but BERT treats them as whitespace.
    # Zl/Zp (U+2028, U+2029) are whitespace to the Rust tokenizer; Google's code gets the
    # same result because Python's str.split() splits on them.
    return char in " \t\n\r" or unicodedata.category(char) in ("Zs", "Zl", "Zp")


def _is_control(char: str) -> bool:
    """Control, format, surrogate and private-use characters, which are dropped."""
    if char in "\t\n\r":
        return False
    # Cc control, Cf format (zero-width space U+200B, joiner U+200D, BOM...), Cs surrogate,
    # Co private use. Unassigned code points (Cn) are kept, as in the Rust tokenizer, and
    # end up as [UNK]; Google's code drops them too, and with them any character newer
    # than Python's Unicode tables (an emoji from next year's standard, say).
    return unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co")


@functools.lru_cache(maxsize=1 << 16)
def _is_punctuation(char: str) -> bool:
    """Unicode punctuation (P*) and every ASCII symbol such as `$ + < = > ^ ` | ~`."""
    cp = ord(char)
    # Google's code counts all non-alphanumeric ASCII as punctuation, although Unicode
    # calls `$` or `^` symbols (S*), so "$5" splits into "$", "5".
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_chinese_char(char: str) -> bool:
    """True for a CJK Unified Ideograph (the Unicode blocks Google's code lists).

    Japanese kana and Korean hangul are not in these blocks: they are tokenized like any
    other letters. (The Rust tokenizer starts Extension E at 0x2B920 instead of 0x2B820, a
    typo; for those 256 rare characters we follow Google.)
    """
    cp = ord(char)
    return (
        0x4E00 <= cp <= 0x9FFF  # CJK Unified Ideographs
        or 0x3400 <= cp <= 0x4DBF  # Extension A
        or 0x20000 <= cp <= 0x2A6DF  # Extension B
        or 0x2A700 <= cp <= 0x2B73F  # Extension C
        or 0x2B740 <= cp <= 0x2B81F  # Extension D
        or 0x2B820 <= cp <= 0x2CEAF  # Extension E
        or 0xF900 <= cp <= 0xFAFF  # Compatibility Ideographs
        or 0x2F800 <= cp <= 0x2FA1F  # Compatibility Ideographs Supplement
    )


# The settings a tokenizer takes from its arguments or from tokenizer_config.json: the types
# each may have, and how to say it in an error. A config file is checked, not guessed at:
# the string "false" is true to Python, so `"do_lower_case": "false"` would lower-case.
_SETTING_TYPES = {
    "do_lower_case": ((bool,), "true or false (a boolean, not a string)"),
    "tokenize_chinese_chars": ((bool,), "true or false (a boolean, not a string)"),
    "do_basic_tokenize": ((bool,), "true or false (a boolean, not a string)"),
    "strip_accents": ((bool, type(None)), "true, false or null/None (not a string)"),
    "model_max_length": ((int,), "a positive integer"),
    "unk_token": ((str,), "a non-empty string"),
    "sep_token": ((str,), "a non-empty string"),
    "pad_token": ((str,), "a non-empty string"),
    "cls_token": ((str,), "a non-empty string"),
    "mask_token": ((str,), "a non-empty string"),
}


def _check_setting(name: str, value, where: str = "") -> None:
    """Raise a TypeError (or ValueError) naming `where` and `name` unless `value` fits setting `name`.

    `where` is the file the value came from ("path/tokenizer_config.json: "), or "".
    """
    types, wanted = _SETTING_TYPES[name]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):  # True is an int too
        raise TypeError(f"{where}{name} must be {wanted}, got {value!r}")
    if (name == "model_max_length" and value < 1) or (types == (str,) and value == ""):
        raise ValueError(f"{where}{name} must be {wanted}, got {value!r}")


# ---------------------------------------------------------------------------------------
# Pass 1: text -> words


class BasicTokenizer:
    """Clean and normalize text, then split it into words and punctuation marks.

    The steps, in the order BERT runs them:

    1. drop NUL, U+FFFD and control, format and private-use characters (zero-width spaces
       too); turn every whitespace character (tab, newline, no-break space...) into a space;
    2. put spaces around every CJK ideograph, so each becomes its own word;
    3. strip accents: Unicode NFD splits "é" into "e" + a combining accent (category Mn),
       which is dropped;
    4. lower-case;
    5. split on whitespace, and make every punctuation character its own word.

    Examples:
        >>> BasicTokenizer().tokenize(" \\tHeLLo!how  \\n Are yoU?  ")
        ['hello', '!', 'how', 'are', 'you', '?']
        >>> BasicTokenizer().tokenize("Crème brûlée, 北京")
        ['creme', 'brulee', ',', '北', '京']
        >>> BasicTokenizer(do_lower_case=False).tokenize("Crème")
        ['Crème']

    Args:
        do_lower_case: lower-case the text (uncased models).
        tokenize_chinese_chars: make every CJK ideograph its own word.
        strip_accents: remove accents. `None` (the default) follows `do_lower_case`, as
            uncased BERT does.
    """

    def __init__(
        self, do_lower_case: bool = True, tokenize_chinese_chars: bool = True, strip_accents: bool | None = None
    ):
        _check_setting("do_lower_case", do_lower_case)
        _check_setting("tokenize_chinese_chars", tokenize_chinese_chars)
        _check_setting("strip_accents", strip_accents)
        self.do_lower_case = do_lower_case
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.strip_accents = do_lower_case if strip_accents is None else strip_accents

    def tokenize(self, text: str) -> list[str]:
        """Split `text` into normalized words and punctuation marks."""
        return [word for word, _ in self.tokenize_with_positions(text)]

    def tokenize_with_positions(self, text: str) -> list[tuple[str, list[int]]]:
        """Like `tokenize`, but each word comes with the index in `text` of each of its characters.

        Normalization can change the number of characters (accents go; a cased model's
        "İ" lower-cases to "i" + a combining dot), so every normalized character remembers
        the original character it came from. This gives `BertTokenizer` its offsets.

        Example:
            >>> BasicTokenizer().tokenize_with_positions("Café!")
            [('cafe', [0, 1, 2, 3]), ('!', [4])]
        """
        check_text(text)
        chars = self._normalize(text)
        words, word = [], []  # word: the (char, position) pairs of the word being read
        for char, position in chars:
            is_space, is_punct = _is_whitespace(char), _is_punctuation(char)
            if (is_space or is_punct) and word:  # the current word ends here
                words.append(word)
                word = []
            if is_punct:  # a punctuation mark is a word of its own
                words.append([(char, position)])
            elif not is_space:
                word.append((char, position))
        if word:
            words.append(word)
        return [("".join(c for c, _ in w), [p for _, p in w]) for w in words]

    def _normalize(self, text: str) -> list[tuple[str, int]]:
        """Steps 1-4: the normalized text as (character, index of its source in `text`) pairs."""
        settings = (self.do_lower_case, self.strip_accents, self.tokenize_chinese_chars)
        return [
            (piece, position)
            for position, char in enumerate(text)
            for piece in _normalize_char(char, *settings)
        ]


# Every step works on one character at a time, so the result per character can be cached.
@functools.lru_cache(maxsize=1 << 16)
def _normalize_char(char: str, lower_case: bool, strip_accents: bool, space_chinese: bool) -> str:
    """Steps 1-4 of `BasicTokenizer` for one character: what it becomes ("" if dropped)."""
    if char == "\x00" or char == "\ufffd" or _is_control(char):  # 1. clean
        return ""
    if _is_whitespace(char):
        return " "
    out = char
    if strip_accents:  # 3. NFD splits "é" into "e" + U+0301 (category Mn), which goes
        out = "".join(c for c in unicodedata.normalize("NFD", out) if unicodedata.category(c) != "Mn")
    if lower_case:  # 4. one character at a time, like the Rust tokenizer: a word-final "Σ"
        out = "".join(c.lower() for c in out)  # becomes "σ" (Google's text.lower() gives "ς")
    if space_chinese and _is_chinese_char(char):  # 2. every CJK ideograph becomes a word
        out = " " + out + " "
    return out


# ---------------------------------------------------------------------------------------
# Pass 2: word -> WordPiece pieces


class WordpieceTokenizer:
    """Cut words into vocabulary pieces, greedy longest-match-first.

    From the start of the word, take the longest prefix that is in the vocabulary, then the
    longest `##`-prefixed continuation, and so on. If some position has no piece at all,
    the whole word becomes `unk_token` (not just the part that failed).

    Example:
        >>> vocab = {"[UNK]", "un", "##aff", "##able", "runn", "##ing"}
        >>> WordpieceTokenizer(vocab).tokenize("unaffable running unaffablex")
        ['un', '##aff', '##able', 'runn', '##ing', '[UNK]']

    Args:
        vocab: the vocabulary (any container of token strings: a dict, set or list).
        unk_token: what a word without a full segmentation becomes.
        max_input_chars_per_word: longer words become `unk_token` without trying (Google: 200).
    """

    def __init__(self, vocab, unk_token: str = "[UNK]", max_input_chars_per_word: int = 100):
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word

    def tokenize(self, text: str) -> list[str]:
        """Split `text` on whitespace and cut each word into pieces (the text should already
        have passed through `BasicTokenizer`)."""
        return [piece for word in check_text(text).split() for piece in self.tokenize_word(word)]

    def tokenize_word(self, word: str) -> list[str]:
        """Cut one word into pieces: "unaffable" -> `["un", "##aff", "##able"]`."""
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        pieces = []
        start = 0
        while start < len(word):
            # Try the longest candidate first and shorten it one character at a time.
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    break
            else:  # no piece starts here: the word cannot be segmented
                return [self.unk_token]
            pieces.append(piece)
            start = end
        return pieces


# ---------------------------------------------------------------------------------------
# Vocabulary files


def load_vocab(path: str | Path) -> list[str]:
    """Read a `vocab.txt` (one token per line; the line number is the id) into a list."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no vocabulary file at {path}: pass the path of a vocab.txt")
    with open(path, encoding="utf-8") as f:
        tokens = [line.rstrip("\n") for line in f]
    _check_vocab(tokens, source=str(path))
    return tokens


def write_vocab(tokens: Sequence[str], path: str | Path) -> Path:
    """Write `tokens` to a `vocab.txt`, one per line, so that token `i` is on line `i`."""
    tokens = list(tokens)
    _check_vocab(tokens, source="tokens")
    path = Path(path)
    path.write_text("".join(token + "\n" for token in tokens), encoding="utf-8")
    return path


def _check_vocab(tokens: list, source: str) -> None:
    """Raise if `tokens` is not a list of distinct, non-empty, one-line strings."""
    seen = {}
    for i, token in enumerate(tokens):
        if not isinstance(token, str):
            raise TypeError(f"{source}: token {i} is a {type(token).__name__}, not a str")
        if token == "" or "\n" in token or "\r" in token:
            raise ValueError(f"{source}: token {i} ({token!r}) is empty or contains a line break")
        if token in seen:
            raise ValueError(f"{source}: token {token!r} appears twice (ids {seen[token]} and {i}); keep one")
        seen[token] = i


def read_tokenizer_config(path: str | Path) -> dict:
    """The settings `BertTokenizer` takes from a Hugging Face `tokenizer_config.json`, checked:
    those of `do_lower_case`, `tokenize_chinese_chars`, `strip_accents`, `model_max_length` and
    the five special tokens that the file sets. A value of the wrong JSON type (`"true"` for
    `true`) raises an error naming the file and the field."""
    path = Path(path)
    where = f"{path}: "
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{where}not valid JSON ({error}): fix the file or delete it") from None
    if not isinstance(config, dict):
        raise ValueError(f"{where}must hold a JSON object {{...}}, got a {type(config).__name__}")
    do_basic_tokenize = config.get("do_basic_tokenize", True)
    _check_setting("do_basic_tokenize", do_basic_tokenize, where)
    if not do_basic_tokenize:
        raise ValueError(f"{where}sets do_basic_tokenize=false, which BertTokenizer does not support")
    settings = {}
    for key in _SETTING_TYPES:
        if key in config and key != "do_basic_tokenize":
            value = config[key]
            if key.endswith("_token") and isinstance(value, dict):  # {"content": "[CLS]", ...}
                value = value.get("content")
            _check_setting(key, value, where)
            settings[key] = value
    return settings


# ---------------------------------------------------------------------------------------
# The full tokenizer


class BatchEncoding(dict):
    """The dict `BertTokenizer.__call__` returns, with `.to(device)` for tensors."""

    def to(self, device) -> "BatchEncoding":
        """Move every tensor to `device` (returns a new BatchEncoding)."""
        return BatchEncoding({key: value.to(device) if isinstance(value, torch.Tensor) else value
                              for key, value in self.items()})  # fmt: skip


# The accepted values of `padding` and `truncation`, and what each means.
_PADDING = {False: False, "do_not_pad": False, True: "longest", "longest": "longest", "max_length": "max_length"}
_TRUNCATION = {
    False: False,
    "do_not_truncate": False,
    True: "longest_first",
    "longest_first": "longest_first",
    "only_first": "only_first",
    "only_second": "only_second",
}

# Decoding clean-up of the Rust WordPiece decoder: it is applied to each token with its
# leading space, so in practice it glues `.` `,` `?` `!` to the previous word.
# transformers' BertTokenizerLegacy also rejoins "don ' t" -> "don't"; the current
# transformers.BertTokenizer does not, and neither do we.
_DECODE_CLEANUP = (
    (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
    (" 'm", "'m"), (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
)  # fmt: skip


class BertTokenizer:
    """BERT's tokenizer: `BasicTokenizer` + `WordpieceTokenizer` + special tokens and batching.

    Example:
        >>> tok = BertTokenizer.from_pretrained(minilm_path())
        >>> tok.tokenize("Crème brûlée, unaffable tokenizer!")
        ['cr', '##eme', 'br', '##ule', '##e', ',', 'una', '##ffa', '##ble', 'token', '##izer', '!']
        >>> tok("hello world", "hi")["input_ids"]  # [CLS] hello world [SEP] hi [SEP]
        [101, 7592, 2088, 102, 7632, 102]

    Special tokens typed in the text (e.g. "Paris is the [MASK] of France.") are kept
    whole, as transformers does; lower-case "[mask]" is ordinary text.

    Args:
        vocab_file: path of a `vocab.txt` (one token per line). Give this or `vocab`.
        do_lower_case, tokenize_chinese_chars, strip_accents: see `BasicTokenizer`.
        model_max_length: the longest sequence the model takes (512 for BERT); used when
            `truncation=True` or `padding="max_length"` come without `max_length`.
        unk_token, sep_token, pad_token, cls_token, mask_token: the special tokens; all must
            be in the vocabulary.
        vocab: the vocabulary as a list of tokens (id = position), e.g. from `train_wordpiece`.
        max_input_chars_per_word: see `WordpieceTokenizer`.
    """

    def __init__(
        self,
        vocab_file: str | Path | None = None,
        do_lower_case: bool = True,
        tokenize_chinese_chars: bool = True,
        strip_accents: bool | None = None,
        model_max_length: int = 512,
        unk_token: str = "[UNK]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        cls_token: str = "[CLS]",
        mask_token: str = "[MASK]",
        vocab: Sequence[str] | None = None,
        max_input_chars_per_word: int = 100,
    ):
        if (vocab_file is None) == (vocab is None):
            raise ValueError("give exactly one of vocab_file (a vocab.txt path) and vocab (a token list)")
        specials = {"unk_token": unk_token, "sep_token": sep_token, "pad_token": pad_token,
                    "cls_token": cls_token, "mask_token": mask_token}  # fmt: skip
        for name, value in {"model_max_length": model_max_length, **specials}.items():
            _check_setting(name, value)
        if vocab_file is not None:
            tokens = load_vocab(vocab_file)
        else:
            if isinstance(vocab, (str, bytes, dict)):
                raise TypeError(f"vocab must be a list of tokens (id = position), not a {type(vocab).__name__}")
            tokens = list(vocab)
            _check_vocab(tokens, source="vocab")
        self.ids_to_tokens = tokens
        self.vocab = {token: i for i, token in enumerate(tokens)}  # token -> id
        self.do_lower_case = do_lower_case
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.strip_accents = strip_accents
        self.model_max_length = model_max_length
        self.unk_token, self.sep_token, self.pad_token = unk_token, sep_token, pad_token
        self.cls_token, self.mask_token = cls_token, mask_token
        self.all_special_tokens = [unk_token, sep_token, pad_token, cls_token, mask_token]
        missing = [t for t in self.all_special_tokens if t not in self.vocab]
        if missing:
            source = "vocab" if vocab_file is None else str(vocab_file)
            raise ValueError(
                f"{source}: special tokens {missing} are not in the vocabulary: add them "
                "(train_wordpiece puts them first), or name the tokens it uses (unk_token=..., cls_token=...)"
            )
        # Longest first, so that one special token that starts another cannot cut it short.
        by_length = sorted(self.all_special_tokens, key=len, reverse=True)
        self._special_pattern = re.compile("|".join(re.escape(t) for t in by_length))
        self.basic_tokenizer = BasicTokenizer(do_lower_case, tokenize_chinese_chars, strip_accents)
        self.wordpiece_tokenizer = WordpieceTokenizer(self.vocab, unk_token, max_input_chars_per_word)

    @classmethod
    def from_pretrained(cls, folder: str | Path, **overrides) -> "BertTokenizer":
        """Load a Hugging Face tokenizer folder: `vocab.txt` and, if present, `tokenizer_config.json`.

        `overrides` (e.g. `model_max_length=128`) win over the config file. A config value
        of the wrong type, such as `"do_lower_case": "false"` (a string, not the boolean
        `false`), raises an error that names the file and the field.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is not a folder: pass the folder that holds vocab.txt")
        config_file = folder / "tokenizer_config.json"
        settings = read_tokenizer_config(config_file) if config_file.is_file() else {}
        settings.update(overrides)
        return cls(folder / "vocab.txt", **settings)

    def save_vocabulary(self, folder: str | Path) -> tuple[str]:
        """Write `vocab.txt` into `folder`; return its path in a tuple (as transformers does)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        return (str(write_vocab(self.ids_to_tokens, folder / "vocab.txt")),)

    def save_pretrained(self, folder: str | Path) -> tuple[str, str]:
        """Write `vocab.txt` and `tokenizer_config.json`, which both we and transformers load."""
        (vocab_path,) = self.save_vocabulary(folder)
        config = {
            "tokenizer_class": "BertTokenizer",
            "do_lower_case": self.do_lower_case,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            "strip_accents": self.strip_accents,
            "model_max_length": self.model_max_length,
            "unk_token": self.unk_token,
            "sep_token": self.sep_token,
            "pad_token": self.pad_token,
            "cls_token": self.cls_token,
            "mask_token": self.mask_token,
        }
        config_path = Path(folder) / "tokenizer_config.json"
        config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        return vocab_path, str(config_path)

    # --- vocabulary --------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return len(self.ids_to_tokens)

    def __len__(self) -> int:
        return len(self.ids_to_tokens)

    def __repr__(self) -> str:
        return (
            f"BertTokenizer(vocab_size={self.vocab_size}, do_lower_case={self.do_lower_case}, "
            f"model_max_length={self.model_max_length})"
        )

    @property
    def unk_token_id(self) -> int:
        return self.vocab[self.unk_token]

    @property
    def sep_token_id(self) -> int:
        return self.vocab[self.sep_token]

    @property
    def pad_token_id(self) -> int:
        return self.vocab[self.pad_token]

    @property
    def cls_token_id(self) -> int:
        return self.vocab[self.cls_token]

    @property
    def mask_token_id(self) -> int:
        return self.vocab[self.mask_token]

    @property
    def all_special_ids(self) -> list[int]:
        return [self.vocab[t] for t in self.all_special_tokens]

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Token(s) -> id(s); a token not in the vocabulary gets `unk_token_id`."""
        if isinstance(tokens, str):
            return self.vocab.get(tokens, self.unk_token_id)
        return [self.vocab.get(check_text(t, "each token"), self.unk_token_id) for t in tokens]

    def convert_ids_to_tokens(self, ids: int | Sequence[int]) -> str | list[str]:
        """Id(s) -> token(s). Accepts ints, lists of ints or a 1-D tensor."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        if isinstance(ids, numbers.Integral):
            return self._id_to_token(ids)
        return [self._id_to_token(i) for i in ids]

    def _id_to_token(self, i: int) -> str:
        if isinstance(i, bool) or not isinstance(i, numbers.Integral):  # numpy ints are fine
            raise TypeError(f"token ids must be ints, got {type(i).__name__}")
        if not 0 <= i < self.vocab_size:
            raise ValueError(f"token id {i} is outside the vocabulary (0..{self.vocab_size - 1})")
        return self.ids_to_tokens[i]

    # --- text -> tokens ----------------------------------------------------------------

    def tokenize(self, text: str) -> list[str]:
        """Text -> WordPiece tokens, without [CLS]/[SEP]. With the all-MiniLM-L6-v2
        vocabulary, "unaffable" -> `["una", "##ffa", "##ble"]`."""
        return [token for token, _, _ in self._tokenize_with_offsets(text)]

    def _tokenize_with_offsets(self, text: str) -> list[tuple[str, int, int]]:
        """Tokens with the (start, end) character span in `text` that each one came from."""
        check_text(text)
        tokens = []
        for start, segment, is_special in self._split_on_special_tokens(text):
            if is_special:
                tokens.append((segment, start, start + len(segment)))
                continue
            for word, positions in self.basic_tokenizer.tokenize_with_positions(segment):
                pieces = self.wordpiece_tokenizer.tokenize_word(word)
                if pieces == [self.unk_token]:  # an unknown word spans the whole word
                    tokens.append((self.unk_token, start + positions[0], start + positions[-1] + 1))
                    continue
                i = 0  # index in `word` of the piece's first character
                for piece in pieces:
                    length = len(piece) - 2 if i > 0 else len(piece)  # without the "##"
                    tokens.append((piece, start + positions[i], start + positions[i + length - 1] + 1))
                    i += length
        return tokens

    def _split_on_special_tokens(self, text: str) -> list[tuple[int, str, bool]]:
        """Cut `text` around the special tokens typed in it: (start, piece, is_special) triples.

        "a [MASK] b" -> `[(0, "a ", False), (2, "[MASK]", True), (8, " b", False)]`.
        """
        segments, start = [], 0
        for match in self._special_pattern.finditer(text):
            if match.start() > start:
                segments.append((start, text[start : match.start()], False))
            segments.append((match.start(), match.group(), True))
            start = match.end()
        if start < len(text):
            segments.append((start, text[start:], False))
        return segments

    # --- model inputs ------------------------------------------------------------------

    def __call__(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        padding: bool | str = False,
        truncation: bool | str = False,
        max_length: int | None = None,
        return_tensors: str | None = None,
        return_offsets_mapping: bool = False,
        return_special_tokens_mask: bool = False,
        add_special_tokens: bool = True,
    ) -> BatchEncoding:
        """Turn text (or text pairs) into model inputs.

        One sequence is `[CLS] A [SEP]`; a pair is `[CLS] A [SEP] B [SEP]` with
        `token_type_ids` 0 for `[CLS] A [SEP]` and 1 for `B [SEP]`.

        Args:
            text: one string, or a list of strings (a batch).
            text_pair: the second sequences, matching `text` (a string or a list).
            padding: `False` (none), `True`/"longest" (to the longest in the batch) or
                "max_length" (to `max_length`). Padding goes on the right.
            truncation: `False`, `True`/"longest_first" (for pairs, cut the longer one first,
                as transformers does: see `_truncate_pair`), "only_first" or "only_second"
                (these raise a ValueError rather than cut their sequence to nothing).
            max_length: total length, special tokens included; defaults to `model_max_length`.
                With truncation it must leave room for [CLS] and [SEP] (2, or 3 for pairs).
            return_tensors: `None` for Python lists, "pt" for LongTensors `[batch_size, seq_len]`
                (a single string gets batch size 1).
            return_offsets_mapping: also return `offset_mapping`: for every token, the
                (start, end) character span in the original text; (0, 0) for [CLS], [SEP] and
                padding.
            return_special_tokens_mask: also return `special_tokens_mask`: 1 at the added
                [CLS]/[SEP] and at padding, 0 at the text's tokens (what MLM masking must
                not pick).
            add_special_tokens: add [CLS] and [SEP] (default True).

        Returns:
            A BatchEncoding (a dict) with `input_ids`, `token_type_ids`, `attention_mask`
            (1 = token, 0 = padding) and the optional keys above. Each value is a list of
            ints for one string, a list of lists for a batch, or a tensor.
        """
        batched = isinstance(text, (list, tuple))
        if batched:
            texts = [check_text(t, f"text[{i}]") for i, t in enumerate(text)]
            if text_pair is None:
                pairs = None
            elif not isinstance(text_pair, (list, tuple)):
                raise TypeError(f"text is a list, so text_pair must be a list too, got {type(text_pair).__name__}")
            elif len(text_pair) != len(texts):
                raise ValueError(f"text has {len(texts)} items but text_pair has {len(text_pair)}: make them match")
            else:
                pairs = [check_text(t, f"text_pair[{i}]") for i, t in enumerate(text_pair)]
        else:
            texts = [check_text(text)]
            pairs = None if text_pair is None else [check_text(text_pair, "text_pair")]

        if padding not in _PADDING:
            raise ValueError(f"padding={padding!r} is not one of False, True, 'longest', 'max_length'")
        if truncation not in _TRUNCATION:
            raise ValueError(
                f"truncation={truncation!r} is not one of False, True, 'longest_first', 'only_first', 'only_second'"
            )
        if return_tensors not in (None, "pt"):
            raise ValueError(f"return_tensors={return_tensors!r}: use None (lists) or 'pt' (PyTorch tensors)")
        padding, truncation = _PADDING[padding], _TRUNCATION[truncation]
        if max_length is not None:
            if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
                raise ValueError(f"max_length must be a positive int, got {max_length!r}")
            if not truncation and padding != "max_length":
                raise ValueError(
                    f"max_length={max_length} has no effect without truncation=True or padding='max_length': "
                    "add one"
                )
        elif truncation or padding == "max_length":
            max_length = self.model_max_length
        if truncation == "only_second" and pairs is None:
            raise ValueError("truncation='only_second' needs text_pair")

        rows = []
        for i, first in enumerate(texts):
            a = self._tokenize_with_offsets(first)
            b = None if pairs is None else self._tokenize_with_offsets(pairs[i])
            if truncation:
                try:
                    a, b = self._truncate(a, b, max_length, truncation, add_special_tokens)
                except ValueError as error:
                    if not batched:
                        raise
                    raise ValueError(f"text[{i}]: {error}") from None  # say which item of the batch
            rows.append(self._build_row(a, b, add_special_tokens))

        if padding:
            target = max(len(row["input_ids"]) for row in rows) if padding == "longest" else max_length
            for row in rows:
                self._pad_row(row, target)

        keys = ["input_ids", "token_type_ids", "attention_mask"]
        keys += ["special_tokens_mask"] if return_special_tokens_mask else []
        keys += ["offset_mapping"] if return_offsets_mapping else []
        output = BatchEncoding()
        for key in keys:
            column = [row[key] for row in rows]
            if return_tensors == "pt":
                lengths = {len(values) for values in column}
                if len(lengths) > 1:
                    raise ValueError(
                        f"the sequences have different lengths {sorted(lengths)}, so they cannot form one "
                        "tensor: pass padding=True (and truncation=True if some are too long)"
                    )
                output[key] = torch.tensor(column, dtype=torch.long)
            else:
                output[key] = column if batched else column[0]
        return output

    def encode(self, text: str, text_pair: str | None = None, **kwargs) -> list[int]:
        """Just the `input_ids` of `self(text, text_pair, **kwargs)` for one string."""
        return self(check_text(text), text_pair, **kwargs)["input_ids"]

    def _truncate(self, a, b, max_length: int, strategy: str, add_special_tokens: bool):
        """Cut the token lists `a` (and `b`) so that, with special tokens, they fit `max_length`.

        "only_first" ("only_second") cuts only `a` (`b`) and raises a ValueError rather than cut it
        to nothing; "longest_first" may empty the shorter one (`_truncate_pair`). No room after the
        special tokens gives just `[CLS] [SEP]` (`[CLS] [SEP] [SEP]`); less than them raises.
        """
        n_special = (2 if b is None else 3) if add_special_tokens else 0
        if max_length < n_special:
            raise ValueError(
                f"max_length={max_length} is smaller than the {n_special} special tokens "
                f"([CLS] and [SEP]{'s' if b is not None else ''}) every sequence needs: use a larger max_length"
            )
        budget = max_length - n_special  # tokens left for the text
        n_a, n_b = len(a), 0 if b is None else len(b)
        if n_a + n_b <= budget:
            return a, b
        if b is None:
            return a[:budget], None
        if strategy == "longest_first" or budget == 0:  # with no room, both become empty
            keep_a, keep_b = self._truncate_pair(n_a, n_b, budget)
            return a[:keep_a], b[:keep_b]
        cut_first = strategy == "only_first"  # the other sequence is never cut
        n_cut, n_kept = (n_a, n_b) if cut_first else (n_b, n_a)
        keep = budget - n_kept
        if keep <= 0:
            cut, kept = ("first", "second") if cut_first else ("second", "first")
            raise ValueError(
                f"truncation={strategy!r} would cut all {n_cut} tokens of the {cut} sequence: the {kept} "
                f"sequence ({n_kept} tokens, which {strategy!r} never cuts) and {n_special} special tokens "
                f"already take {n_kept + n_special} of max_length={max_length}. Use max_length >= "
                f"{n_kept + n_special + 1}, or truncation='longest_first'"
            )
        return (a[:keep], b) if cut_first else (a, b[:keep])

    @staticmethod
    def _truncate_pair(n_a: int, n_b: int, budget: int) -> tuple[int, int]:
        """How many tokens of each sequence "longest_first" keeps, as in the Rust tokenizer.

        If the shorter sequence fits in half the budget, it is kept whole and the longer one gets
        the rest; otherwise both get half, the odd token to the longer one (to the second on a
        tie): 6 + 3 into 5 keeps 3 + 2, 6 + 1 into 1 keeps 1 + 0.
        """
        swap = n_a > n_b  # work with (shorter, longer)
        short, long = (n_b, n_a) if swap else (n_a, n_b)
        if short <= budget - short:
            short, long = short, budget - short
        else:
            short, long = budget // 2, budget - budget // 2
        return (long, short) if swap else (short, long)

    def _build_row(self, a, b, add_special_tokens: bool) -> dict:
        """Assemble `[CLS] a [SEP] (b [SEP])` from (token, start, end) triples."""
        cls = [(self.cls_token, 0, 0)] if add_special_tokens else []
        sep = [(self.sep_token, 0, 0)] if add_special_tokens else []
        tokens = cls + a + sep
        types = [0] * len(tokens)
        added = [1] * len(cls) + [0] * len(a) + [1] * len(sep)
        if b is not None:
            tokens += b + sep
            types += [1] * (len(b) + len(sep))
            added += [0] * len(b) + [1] * len(sep)
        return {
            "input_ids": [self.vocab[t] for t, _, _ in tokens],
            "token_type_ids": types,
            "attention_mask": [1] * len(tokens),
            # Only the [CLS]/[SEP] added here, as in transformers: a [MASK] typed in the
            # text is part of the text.
            "special_tokens_mask": added,
            "offset_mapping": [(start, end) for _, start, end in tokens],
        }

    def _pad_row(self, row: dict, length: int) -> None:
        """Pad a row on the right to `length` (rows already that long or longer are left alone)."""
        n = length - len(row["input_ids"])
        if n <= 0:
            return
        row["input_ids"] += [self.pad_token_id] * n
        row["token_type_ids"] += [0] * n
        row["attention_mask"] += [0] * n
        row["special_tokens_mask"] += [1] * n
        row["offset_mapping"] += [(0, 0)] * n

    def get_special_tokens_mask(
        self,
        token_ids_0: Sequence[int],
        token_ids_1: Sequence[int] | None = None,
        already_has_special_tokens: bool = False,
    ) -> list[int]:
        """1 where a special token is (or will be), 0 at real tokens.

        With `already_has_special_tokens=True`, `token_ids_0` is a finished sequence (e.g.
        `input_ids`) and every special id, padding included, is marked. Otherwise the mask
        is for `[CLS] token_ids_0 [SEP] (token_ids_1 [SEP])`, as transformers does.
        """
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError("give only token_ids_0 when it already has special tokens")
            special = set(self.all_special_ids)
            return [int(i in special) for i in token_ids_0]
        mask = [1] + [0] * len(token_ids_0) + [1]
        if token_ids_1 is not None:
            mask += [0] * len(token_ids_1) + [1]
        return mask

    # --- ids -> text -------------------------------------------------------------------

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """Ids -> text: `##` pieces are glued to the previous token, other tokens get a space.

        The result is the normalized text (lower-cased, without accents for uncased
        models), not the original: "Crème brûlée!" decodes as "creme brulee!".

        Args:
            ids: a list of ints or a 1-D tensor.
            skip_special_tokens: leave out [CLS], [SEP], [PAD], [MASK] and [UNK].
        """
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1:
                raise ValueError(f"decode takes one sequence, got a tensor of shape {tuple(ids.shape)}: use batch_decode")
            ids = ids.tolist()
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
            raise TypeError(f"ids must be a list of ints or a 1-D tensor, got {type(ids).__name__}")
        tokens = self.convert_ids_to_tokens(list(ids))
        if skip_special_tokens:
            special = set(self.all_special_tokens)
            tokens = [t for t in tokens if t not in special]
        pieces = []
        for i, token in enumerate(tokens):
            if i > 0:
                token = token[2:] if token.startswith("##") else " " + token
            for dirty, clean in _DECODE_CLEANUP:
                token = token.replace(dirty, clean)
            pieces.append(token)
        return "".join(pieces)

    def batch_decode(self, sequences, skip_special_tokens: bool = False) -> list[str]:
        """`decode` for each sequence of a list of lists or a 2-D tensor."""
        return [self.decode(ids, skip_special_tokens) for ids in sequences]
