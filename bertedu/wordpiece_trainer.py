"""Learning a WordPiece vocabulary from a corpus: `train_wordpiece`.

`bertedu.tokenization` reads text with a vocabulary; this module makes one (chapters 2, 6).
"""
import heapq
from collections import Counter, defaultdict
from typing import Iterable, Sequence

from .checks import check_text
from .tokenization import SPECIAL_TOKENS, BasicTokenizer, _check_vocab


def train_wordpiece(
    texts: Iterable[str],
    vocab_size: int,
    min_frequency: int = 2,
    special_tokens: Sequence[str] = SPECIAL_TOKENS,
    lowercase: bool = True,
    strip_accents: bool | None = None,
    tokenize_chinese_chars: bool = True,
    scoring: str = "likelihood",
) -> list[str]:
    """Learn a WordPiece vocabulary from `texts` (Schuster & Nakajima 2012).

    1. Split the texts into words with `BasicTokenizer` and count each distinct word.
    2. Spell every word in characters, the rest with `##`: "hug" -> `h ##u ##g`.
    3. Repeatedly merge the adjacent pair `(a, b)` with the best score (ties: the more
       frequent pair, then the alphabetically first): `h` + `##u` -> `hu`.
    4. Stop at `vocab_size` tokens, or when no pair occurs `min_frequency` times.

    Args:
        texts: an iterable of strings (sentences, lines, documents).
        vocab_size: the largest vocabulary to return, special tokens included.
        min_frequency: a pair must occur at least this often (counting repeated words) to be merged.
        special_tokens: put first, in this order (so `[PAD]` gets id 0 by default).
        lowercase, strip_accents, tokenize_chinese_chars: passed to `BasicTokenizer`; use
            the same settings for the `BertTokenizer` that uses the vocabulary.
        scoring: "likelihood", `count(ab) / (count(a) * count(b))`, or "frequency", `count(ab)`
            (BPE's rule: common words become whole tokens sooner; chapter 6, section 6.6).

    Returns:
        The vocabulary as a list (id = position): special tokens, then the characters
        (sorted), then the merged pieces in the order they were learned.

    Example:
        >>> vocab = train_wordpiece(["hug pug pun bun hugs"], vocab_size=18, min_frequency=1)
        >>> vocab[5:]  # after the special tokens: the characters, then the merges
        ['##g', '##n', '##s', '##u', 'b', 'h', 'p', '##gs', '##ug', '##un', '##ugs', 'bun', 'hugs']
        >>> BertTokenizer(vocab=vocab).tokenize("hugs bun gun")  # no word starts with "g"
        ['hugs', 'bun', '[UNK]']
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError("texts must be a list (or iterable) of strings, not one string: wrap it as [text]")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
        raise ValueError(f"vocab_size must be a positive int, got {vocab_size!r}")
    if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
        raise ValueError(f"min_frequency must be an int >= 1, got {min_frequency!r}")
    if scoring not in ("likelihood", "frequency"):
        raise ValueError(f'scoring must be "likelihood" or "frequency", got {scoring!r}')
    special_tokens = list(special_tokens)
    _check_vocab(special_tokens, source="special_tokens")

    # 1. Distinct words and their counts.
    basic = BasicTokenizer(lowercase, tokenize_chinese_chars, strip_accents)
    word_counts = Counter()
    for i, text in enumerate(texts):
        word_counts.update(basic.tokenize(check_text(text, f"texts[{i}]")))

    # 2. Spell each word in characters; the alphabet starts the vocabulary.
    splits = [[word[0]] + ["##" + c for c in word[1:]] for word in word_counts]
    counts = list(word_counts.values())  # counts[w]: occurrences of word w
    alphabet = sorted({piece for pieces in splits for piece in pieces} - set(special_tokens))
    vocab = special_tokens + alphabet
    if len(vocab) > vocab_size:
        raise ValueError(
            f"vocab_size={vocab_size} is too small: the {len(special_tokens)} special tokens and the "
            f"{len(alphabet)} characters of the corpus already make {len(vocab)}; use at least that"
        )
    known = set(vocab)

    # Piece counts, pair counts, and which words contain each pair (so that a merge only
    # revisits those words). pair_words may keep words that lost the pair: harmless.
    piece_counts, pair_counts, pair_words = Counter(), Counter(), defaultdict(set)

    def add_word(w: int, sign: int) -> None:
        """Add (sign=1) or remove (sign=-1) word w's pieces and pairs from the counts."""
        pieces, n = splits[w], counts[w] * sign
        for piece in pieces:
            piece_counts[piece] += n
        for pair in zip(pieces, pieces[1:]):
            pair_counts[pair] += n
            if sign > 0:
                pair_words[pair].add(w)

    for w in range(len(splits)):
        add_word(w, +1)
    frequent = {pair for pair, n in pair_counts.items() if n >= min_frequency}  # may be merged
    # With scoring="frequency" a heap of (-count, pair) finds the best pair without scanning
    # them all. An entry is pushed whenever a count changes; entries whose count is out of
    # date are skipped when they come to the top. (A likelihood score changes for every pair
    # that shares a piece with the merge, so that rule scans.)
    heap = [(-pair_counts[p], p) for p in frequent]
    heapq.heapify(heap)

    # 3. Merge the best-scoring pair until the vocabulary is full.
    while len(vocab) < vocab_size and frequent:  # 4. or until no pair is frequent enough
        # The minimum of (-score, -count, pair) is the best score; ties go to the more frequent
        # pair, then to the alphabetically first, whatever order the pairs were counted in.
        if scoring == "likelihood":
            _, _, (a, b) = min(
                (-pair_counts[p] / (piece_counts[p[0]] * piece_counts[p[1]]), -pair_counts[p], p) for p in frequent
            )
        else:  # frequency: the score is the count itself
            while heap[0][1] not in frequent or -heap[0][0] != pair_counts[heap[0][1]]:
                heapq.heappop(heap)  # out of date
            a, b = heap[0][1]
        merged = a + b[2:] if b.startswith("##") else a + b  # "##u" + "##g" -> "##ug"
        if merged not in known:  # two different pairs can spell the same piece
            vocab.append(merged)
            known.add(merged)
        changed = set()  # pairs whose counts changed
        for w in pair_words.pop((a, b)):
            changed.update(zip(splits[w], splits[w][1:]))
            add_word(w, -1)
            splits[w] = _merge_pair(splits[w], a, b, merged)
            add_word(w, +1)
            changed.update(zip(splits[w], splits[w][1:]))
        for pair in changed:
            if pair_counts[pair] >= min_frequency:
                frequent.add(pair)
                if scoring == "frequency":
                    heapq.heappush(heap, (-pair_counts[pair], pair))
            else:
                frequent.discard(pair)
            if pair_counts[pair] == 0:  # gone: forget it
                del pair_counts[pair]
                pair_words.pop(pair, None)
    return vocab


def _merge_pair(pieces: list[str], a: str, b: str, merged: str) -> list[str]:
    """Replace every adjacent `a, b` in `pieces` by `merged`, left to right."""
    out, i = [], 0
    while i < len(pieces):
        if i + 1 < len(pieces) and pieces[i] == a and pieces[i + 1] == b:
            out.append(merged)
            i += 2
        else:
            out.append(pieces[i])
            i += 1
    return out
