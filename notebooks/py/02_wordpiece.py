# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2. WordPiece tokenization
#
# A neural network reads numbers, not text. Before BERT sees a sentence, a tokenizer cuts it
# into pieces and replaces each piece by its row in a fixed vocabulary. The BERT paper
# {cite:p}`devlin2019bert` describes its tokenizer in one sentence:
#
# > We use WordPiece embeddings (Wu et al., 2016) with a 30,000 token vocabulary.
#
# This chapter unpacks that sentence. It covers why BERT reads pieces of words rather than
# words or characters, how raw text becomes those pieces, how the vocabulary is learned from a
# corpus {cite:p}`schuster2012japanese,wu2016google`, and how we prove that our tokenizer cuts
# text exactly as the reference one does.
#
# ## What you will be able to do
#
# - Explain, with counts on WikiText-2, why a vocabulary of whole words always misses words,
#   and why reading characters would make every input several times longer.
# - Apply BERT's *basic tokenizer* by hand: clean-up, whitespace, lower-casing and accent
#   stripping with Unicode NFD, punctuation splitting, and one token per Chinese character.
# - Cut a word into WordPieces with greedy longest-match-first, trace every attempt, and write
#   the algorithm in a few lines that give the same pieces as
#   `bertedu.tokenization.WordpieceTokenizer`.
# - Name the special tokens `[CLS] [SEP] [MASK] [PAD] [UNK]` and find their ids in a real
#   vocabulary.
# - Train a WordPiece vocabulary on WikiText-2 with `bertedu.wordpiece_trainer.train_wordpiece`,
#   measure what a larger vocabulary buys, and explain why its score learns the most frequent
#   word, "the", near the very end.
# - Show that `bertedu`'s tokenizer gives the same ids as Hugging Face `transformers` on real
#   text, and turn a sentence pair into model inputs with padding, truncation and character
#   offsets.
#
# ## Setup
#
# Imports, fixed seeds, and the book's one switch. Nothing here uses a GPU. By default the
# vocabulary is trained on WikiText-2's validation split (about 200,000 words), which is
# quick (section 2.5 prints how long it takes). `FULL` (set the environment variable `BERTEDU_FULL=1`) trains on the
# train split instead (about 2 million words; `bertedu.data` downloads it on first use), which
# takes a few minutes. The test split is only used for evaluation, in both modes.

# %%
import math
import os
import random
import time
import unicodedata
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import StrMethodFormatter
import torch
from myst_nb import glue

import bertedu
from bertedu import data
from bertedu.pretraining import clean_wikitext
from bertedu.tokenization import SPECIAL_TOKENS, BasicTokenizer, BertTokenizer, WordpieceTokenizer
from bertedu.wordpiece_trainer import train_wordpiece

# %config InlineBackend.figure_format = 'png'
plt.rcParams.update({"font.size": 12})

random.seed(0)
np.random.seed(0)
torch.manual_seed(0)

# The one knob of the book. Here FULL trains the vocabulary on WikiText-2's train split
# (downloaded on first use) instead of its validation split.
FULL = os.environ.get("BERTEDU_FULL", "0") == "1"
TRAIN_SPLIT = "train" if FULL else "valid"

# %% [markdown]
# ## 2.1 Why not words, and why not characters?
#
# The simplest vocabulary is a list of words. d2l's BERT chapters use one, and so do word2vec
# and GloVe: every word seen often enough in the training text gets a row, and everything else
# becomes one shared unknown token. The trouble is that language is an *open* vocabulary.
# Names, numbers, rare words, new words and typos keep arriving, however much text you have
# already read.
#
# We measure this on WikiText-2 {cite:p}`merity2017pointer`, a corpus of Wikipedia articles
# that comes as train, validation and test splits. This course ships the validation split
# (60 articles) and the test split (60 other articles). `bertedu.data` reads them as articles
# made of paragraphs:

# %%
# NBVAL_CHECK_OUTPUT
valid_articles = data.load_wikitext2("valid")
test_articles = data.load_wikitext2("test")
print(len(valid_articles), "validation articles,", len(test_articles), "test articles")
print("first article:", valid_articles[0]["title"])
print(valid_articles[0]["paragraphs"][0][:330], "...")

# %% [markdown]
# The text is already tokenized: punctuation stands apart, and a hyphen or a separator inside
# a word or number is written ` @-@ `, ` @,@ ` or ` @.@ `. The corpus also hides its own
# rarest words. Its makers kept only the words seen at least three times in the train split and
# replaced every other word with `<unk>`:

# %%
raw_test_tokens = [w for line in data.read_wikitext2_lines("test") for w in line.split()]
n_unk_raw = raw_test_tokens.count("<unk>")
unk_share_raw = n_unk_raw / len(raw_test_tokens)
print(f"{n_unk_raw:,} of the test split's {len(raw_test_tokens):,} tokens are <unk> "
      f"({unk_share_raw:.1%})")
glue("ch2_raw_unk_share", unk_share_raw, display=False)


# %% [markdown]
# So a word-level vocabulary built on WikiText-2's train split already fails on
# {glue:text}`ch2_raw_unk_share:.1%` of the test text. This is the very problem this chapter
# solves, and WikiText shows it only through those `<unk>` marks. Below we undo the `@`
# marks, drop the `<unk>` placeholders (their words are lost), and split the text into
# lower-cased words and punctuation marks. For this split we use the rules that BERT's basic
# tokenizer applies; section 2.2 takes those rules apart.

# %%
def undo_wikitext_marks(paragraph):
    # "well @-@ known" -> "well-known", "1 @,@ 000" -> "1,000", "0 @.@ 7" -> "0.7".
    # <unk> is a placeholder, not text: drop it.
    paragraph = paragraph.replace(" @-@ ", "-").replace(" @,@ ", ",").replace(" @.@ ", ".")
    return paragraph.replace("<unk>", " ")


# The library's clean_wikitext does the same. By default it turns <unk> into "[UNK]", which
# Chapter 5 keeps whole; here we drop the placeholder, so we ask for a space instead.
assert all(undo_wikitext_marks(p) == clean_wikitext(p, unk_token=" ")
           for article in valid_articles + test_articles for p in article["paragraphs"])


def paragraphs_of(articles):
    return [clean_wikitext(p, unk_token=" ") for article in articles for p in article["paragraphs"]]


valid_texts, test_texts = paragraphs_of(valid_articles), paragraphs_of(test_articles)

basic = BasicTokenizer()  # lower-case, strip accents, split off punctuation


def words_of(texts):
    return [word for text in texts for word in basic.tokenize(text)]


valid_words, test_words = words_of(valid_texts), words_of(test_texts)
valid_counts, test_counts = Counter(valid_words), Counter(test_words)

# %% [markdown]
# Now the counts. Treat the validation split as the text we learn a word list from, and the
# test split as new text:

# %%
# NBVAL_CHECK_OUTPUT
n_hapax = sum(1 for n in valid_counts.values() if n == 1)
n_missing = sum(1 for w in test_words if w not in valid_counts)
n_new_types = sum(1 for w in test_counts if w not in valid_counts)
print(f"validation split: {len(valid_words):,} words, {len(valid_counts):,} distinct")
print(f"  distinct words seen exactly once: {n_hapax:,}")
print(f"test split:       {len(test_words):,} words, {len(test_counts):,} distinct")
print(f"  distinct words never seen in the validation split: {n_new_types:,}")
print(f"  test words missing from the validation word list: {n_missing:,}")

glue("ch2_valid_words", len(valid_words), display=False)
glue("ch2_valid_types", len(valid_counts), display=False)
glue("ch2_hapax", n_hapax, display=False)
glue("ch2_hapax_share", n_hapax / len(valid_counts), display=False)
glue("ch2_test_words", len(test_words), display=False)
glue("ch2_test_types", len(test_counts), display=False)
glue("ch2_new_types", n_new_types, display=False)
glue("ch2_new_types_share", n_new_types / len(test_counts), display=False)
glue("ch2_missing", n_missing, display=False)
glue("ch2_missing_share", n_missing / len(test_words), display=False)

# %% [markdown]
# Of the {glue:text}`ch2_valid_types:,d` distinct words in the validation split,
# {glue:text}`ch2_hapax:,d` ({glue:text}`ch2_hapax_share:.0%`) occur exactly once. The test
# split brings {glue:text}`ch2_new_types:,d` distinct words that the validation split never
# showed ({glue:text}`ch2_new_types_share:.0%` of its distinct words). A word list learned on
# the validation split misses {glue:text}`ch2_missing:,d` test words, or
# {glue:text}`ch2_missing_share:.1%` of the running text. And those are only the words that
# survived WikiText's own `<unk>` filter.
#
# The left plot shows why more text does not fix this. We read the two splits one after the
# other and count the distinct words seen so far. The curve keeps climbing, and it climbs
# faster when the test split starts, because new articles bring new names and new topics. The
# right plot shows word frequency against frequency rank on log-log axes, the pattern of
# *Zipf's law*. A few words are very frequent, and a long tail of words occurs once or twice.

# %% mystnb={"image": {"alt": "Left: the number of distinct words seen keeps rising as WikiText-2 is read, with no plateau, and rises faster where the test split starts. Right: word frequency against rank on log-log axes, a nearly straight line ending in a long tail of words seen once."}}
stream = valid_words + test_words
seen, distinct = set(), []
for word in stream:
    seen.add(word)
    distinct.append(len(seen))
frequencies = np.array(sorted(valid_counts.values(), reverse=True))

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.3))
ax1.plot(np.arange(1, len(stream) + 1), distinct, color="C0")
ax1.axvline(len(valid_words), color="grey", linestyle="--")
ax1.text(len(valid_words) * 1.02, distinct[-1] * 0.1, "test split\nstarts", fontsize=11)
ax1.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
ax1.set_xlabel("words read")
ax1.set_ylabel("distinct words seen so far")
ax1.set_title("New words never stop arriving")
ax2.loglog(np.arange(1, len(frequencies) + 1), frequencies, color="C1")
ax2.axhline(1, color="grey", linestyle=":")
ax2.set_xlabel("frequency rank of the word")
ax2.set_ylabel("occurrences (validation split)")
ax2.set_title("Zipf: a few frequent words, a long tail")
fig.tight_layout()
plt.show()

# %% [markdown]
# The opposite extreme is to read characters: a few hundred symbols, and no word is ever
# unknown. The price is length. Attention (Chapter 4) compares every position with every
# other, so its cost grows with the *square* of the sequence length, and BERT accepts at most
# 512 positions. Let us compare the test split's length in characters with its length in the
# WordPieces of a real BERT vocabulary, the one of all-MiniLM-L6-v2, which this book uses
# throughout:

# %%
minilm = BertTokenizer.from_pretrained(bertedu.minilm_path())

n_chars = n_pieces = long_in_chars = long_in_pieces = 0
for text in test_texts:
    chars = len(" ".join(text.split()))  # a character model reads the spaces too
    pieces = len(minilm.tokenize(text))
    n_chars += chars
    n_pieces += pieces
    long_in_chars += chars > 510  # 512 positions minus [CLS] and [SEP]
    long_in_pieces += pieces > 510

char_ratio = n_chars / n_pieces
print(f"characters: {n_chars:,}   WordPieces: {n_pieces:,}   ratio {char_ratio:.2f}")
print(f"paragraphs longer than 510 positions: {long_in_chars:,} as characters, "
      f"{long_in_pieces:,} as WordPieces (of {len(test_texts):,})")
assert 4 < char_ratio < 7, char_ratio
assert long_in_pieces < long_in_chars / 10
glue("ch2_char_ratio", char_ratio, display=False)
glue("ch2_attention_ratio", char_ratio**2, display=False)
glue("ch2_long_chars", long_in_chars, display=False)
glue("ch2_long_pieces", long_in_pieces, display=False)
glue("ch2_test_paragraphs", len(test_texts), display=False)
glue("ch2_minilm_pieces_per_word", n_pieces / len(test_words), display=False)
glue("ch2_minilm_vocab_size", minilm.vocab_size, display=False)

# %% [markdown]
# Read as characters, the test split is {glue:text}`ch2_char_ratio:.1f` times longer than as
# WordPieces, so attention over a paragraph would cost about
# {glue:text}`ch2_attention_ratio:.0f` times more. {glue:text}`ch2_long_chars:,d` of the
# {glue:text}`ch2_test_paragraphs:,d` paragraphs would not fit into BERT's 512 positions as
# characters, against {glue:text}`ch2_long_pieces:,d` as WordPieces. A character also carries
# little meaning on its own, so the network would have to spend its first layers putting words
# back together.
#
# **Subwords** sit between the two. Frequent words are single tokens, and rare words are cut
# into a few frequent pieces. Every character is in the vocabulary as well, so almost nothing is
# unknown. With MiniLM's {glue:text}`ch2_minilm_vocab_size:,d` tokens, a test-split word is
# {glue:text}`ch2_minilm_pieces_per_word:.2f` WordPieces on average. A piece that continues a
# word is written with `##` in front:

# %%
# NBVAL_CHECK_OUTPUT
for word in ["the", "university", "tokenization", "unaffable", "hieroglyphs",
             "Władysław", "COVID-19"]:
    print(f"{word:>13} -> {minilm.tokenize(word)}")


# %% [markdown]
# ## 2.2 The basic tokenizer, step by step
#
# BERT cuts text in two passes. The *basic tokenizer* turns raw text into a list of words and
# punctuation marks. Then the *WordPiece tokenizer* (section 2.3) cuts each word into
# vocabulary pieces. Google's README for BERT describes the first pass as text normalization
# (whitespace, lower-casing, accents) and punctuation splitting, where
#
# > Punctuation characters are defined as (a) Anything with a `P*` Unicode class, (b) any
# > non-letter/number/space ASCII character (e.g., characters like `$` which are technically
# > not punctuation).
#
# Here are the rules, one small function per step. They test characters by their *Unicode
# category*, a two-letter class that every character has: `Lu` is an upper-case letter, `Mn` a
# combining mark such as an accent, `Po` punctuation, `Zs` a space, `Cc` a control character,
# `Cf` an invisible format character.

# %%
def is_whitespace(char):
    # \t \n \r are control characters to Unicode, but BERT treats them as spaces.
    return char in " \t\n\r" or unicodedata.category(char) in ("Zs", "Zl", "Zp")


def is_control(char):
    # Cc control, Cf format (e.g. the zero-width space), Cs surrogate, Co private use.
    return char not in "\t\n\r" and unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co")


def is_punctuation(char):
    ascii_symbol = char.isascii() and char.isprintable() and not char.isalnum() and char != " "
    return ascii_symbol or unicodedata.category(char).startswith("P")


# The Unicode blocks of CJK ideographs (Chinese characters, also used in Japanese and Korean).
CJK_BLOCKS = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
              (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]


def is_cjk(char):
    return any(low <= ord(char) <= high for low, high in CJK_BLOCKS)


# %% [markdown]
# The five steps, in Google's order:
#
# 1. **Clean**: drop control and invisible format characters (and U+FFFD, the replacement
#    character of broken decoding), and turn every kind of whitespace into a plain space.
# 2. **Space out CJK**: put spaces around every Chinese character. Chinese is written without
#    spaces between words, so each character becomes a word of its own.
# 3. **Split on whitespace.**
# 4. **Lower-case and strip accents** (uncased models only). Unicode's NFD normalization splits
#    an accented letter into the base letter and a combining accent (category `Mn`), and the
#    accent is dropped.
# 5. **Split off punctuation**: every punctuation character becomes a word of its own.

# %%
def step1_clean(text):
    return "".join(" " if is_whitespace(c) else c
                   for c in text if c != "\ufffd" and not is_control(c))


def step2_space_cjk(text):
    return "".join(f" {c} " if is_cjk(c) else c for c in text)


def step3_split_whitespace(text):
    return text.split()


def step4_lower_strip_accents(word):
    # One character at a time, as the reference tokenizer does: Python's str.lower() on a
    # whole word would turn a final capital sigma into the final form.
    word = "".join(c.lower() for c in word)
    return "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")


def step5_split_punctuation(word):
    pieces = [""]
    for char in word:
        if is_punctuation(char):
            pieces += [char, ""]  # the mark alone, then a fresh piece
        else:
            pieces[-1] += char
    return [piece for piece in pieces if piece]


def basic_tokenize(text, lower_case=True):
    words = step3_split_whitespace(step2_space_cjk(step1_clean(text)))
    if lower_case:
        words = [step4_lower_strip_accents(w) for w in words]
    return [piece for word in words for piece in step5_split_punctuation(word)]


# %% [markdown]
# What NFD does to the "é" of "café": one character becomes two, and the second is the accent.

# %%
# NBVAL_CHECK_OUTPUT
for char in unicodedata.normalize("NFD", "é"):
    print(f"U+{ord(char):04X}  {unicodedata.category(char)}  {unicodedata.name(char)}")


# %% [markdown]
# Now every step on real examples: accents, punctuation without spaces, Chinese, and a string
# with a tab and an invisible zero-width space (U+200B) in it.

# %%
# NBVAL_CHECK_OUTPUT
def show_steps(text):
    print(repr(text))
    text = step1_clean(text)
    print(f"  1 clean               {text!r}")
    text = step2_space_cjk(text)
    print(f"  2 space out CJK       {text!r}")
    words = step3_split_whitespace(text)
    print(f"  3 split on whitespace {words}")
    words = [step4_lower_strip_accents(w) for w in words]
    print(f"  4 lower, no accents   {words}")
    words = [p for w in words for p in step5_split_punctuation(w)]
    print(f"  5 split punctuation   {words}")


for example in ["Crème brûlée", "naïve café", "Hello,world!", "北京大学的学生",
                "a\ttab and a zero\u200bwidth space", "$5.99 (U.S.)"]:
    show_steps(example)

# %% [markdown]
# Some things to notice:
#
# - Accents disappear: "Crème brûlée" becomes `creme brulee`, so an uncased model cannot tell
#   "résumé" from "resume".
# - "Hello,world!" has no spaces, yet it becomes four words, because every punctuation mark
#   stands alone. `$` is a symbol to Unicode (category `Sc`), but it is ASCII and neither a
#   letter nor a digit, so BERT splits it off too. The price is that "U.S." and "5.99" are
#   broken into pieces.
# - The tab becomes a space. The zero-width space is a format character, so it is *dropped*,
#   not turned into a space: "zero\u200bwidth" becomes one word, `zerowidth`, even though a
#   reader sees two.
# - Each of the seven Chinese characters is a token of its own. The vocabulary then needs only
#   the characters, not every Chinese word.
#
# A *cased* model (for example `bert-base-cased`) skips step 4 and keeps "Crème" as it is.
# Step 4 also has a surprise for Korean. NFD splits a Hangul syllable into its letters (jamo),
# which are not accents and stay, so "안녕" (two syllables) turns into its letters:

# %%
# NBVAL_CHECK_OUTPUT
print(basic_tokenize("Crème brûlée", lower_case=False))
print(basic_tokenize("안녕"), "=", list(basic_tokenize("안녕")[0]))
print([unicodedata.name(c) for c in basic_tokenize("안녕")[0]])

# %% [markdown]
# Our five steps are the teaching version of `bertedu.tokenization.BasicTokenizer`. The library
# does the same work one character at a time and remembers where every character came from,
# which gives the character offsets of section 2.8. Both must give the same words on real text.
# We check every sentence of SST-2's dev split, every line of the WikiText-2 test file as it
# comes (with its `@-@` and `<unk>` marks), and the examples above:

# %%
tricky = ["Crème brûlée", "naïve café", "Hello,world!", "北京大学的学生", "안녕하세요",
          "a\ttab and a zero\u200bwidth space", "$5.99 (U.S.)", "ΣΊΣΥΦΟΣ", "İstanbul",
          "こんにちは世界", "emoji 😀 and ½ and ﬁ", "", "   \n\t "]
texts_to_check = ([r["sentence"] for r in data.load_sst2("dev")]
                  + data.read_wikitext2_lines("test") + tricky)
for text in texts_to_check:
    assert basic_tokenize(text) == basic.tokenize(text), text
    assert basic_tokenize(text, lower_case=False) == BasicTokenizer(do_lower_case=False).tokenize(text), text
print(f"the plain steps equal bertedu's BasicTokenizer on {len(texts_to_check):,} texts")
glue("ch2_basic_texts_checked", len(texts_to_check), display=False)


# %% [markdown]
# ## 2.3 Greedy longest-match-first
#
# The second pass cuts each word into vocabulary pieces. Google's `tokenization.py` says how in
# its docstring: "This uses a greedy longest-match-first algorithm to perform tokenization using
# the given vocabulary." Start at the beginning of the word and take the *longest* prefix that
# is in the vocabulary. Then continue from where that piece ended, looking this time for pieces
# written with `##`, which mark "continues a word". If at some position no piece fits, even a
# single character, the *whole word* becomes `[UNK]`.
#
# A trace shows every candidate the algorithm tries, longest first, with ✗ for "not in the
# vocabulary" and ✓ for the piece it takes:

# %%
def trace_wordpiece(word, vocab):
    print(f"{word!r}")
    start, pieces = 0, []
    while start < len(word):
        tried = []
        for end in range(len(word), start, -1):  # the longest candidate first
            candidate = ("##" if start > 0 else "") + word[start:end]
            found = candidate in vocab
            tried.append(candidate + (" ✓" if found else " ✗"))
            if found:
                break
        print(f"  from character {start}: " + "  ".join(tried))
        if not found:
            print("  nothing fits here, so the whole word becomes ['[UNK]']")
            return
        pieces.append(candidate)
        start = end
    print(f"  -> {pieces}")


# %%
# NBVAL_CHECK_OUTPUT
for word in ["unaffable", "tokenization", "fun😀"]:
    trace_wordpiece(word, minilm.vocab)


# %% [markdown]
# The first trace is the example in Google's docstring. It reads `un ##aff ##able` there, with
# a toy vocabulary, and `una ##ffa ##ble` with MiniLM's real one, whose pieces differ. In
# "fun😀", the prefix "fun" is found, but no piece `##😀` exists, so the word is lost entirely,
# including the part that matched. The reference tokenizers add one more rule: a word longer
# than 100 characters becomes `[UNK]` without any attempt (Google's original code allows 200).
#
# Here is the algorithm itself. It keeps what is left of the word and cuts pieces off its front:

# %%
def wordpiece(word, vocab, unk_token="[UNK]", max_chars=100):
    if len(word) > max_chars:
        return [unk_token]
    pieces, rest = [], word
    while rest:
        prefix = "##" if pieces else ""  # pieces after the first continue the word
        for end in range(len(rest), 0, -1):  # the longest candidate first
            if prefix + rest[:end] in vocab:
                break
        else:  # not even one character fits
            return [unk_token]
        pieces.append(prefix + rest[:end])
        rest = rest[end:]
    return pieces


# %% [markdown]
# It must give the same pieces as `bertedu.tokenization.WordpieceTokenizer` for every distinct
# word of WikiText-2 (both splits) and SST-2's dev split, and for an overlong word:

# %%
library_wordpiece = WordpieceTokenizer(minilm.vocab)
sst2_words = words_of(r["sentence"] for r in data.load_sst2("dev"))
distinct_words = sorted(set(valid_words) | set(test_words) | set(sst2_words))
for word in distinct_words + ["a" * 100, "a" * 101]:
    assert wordpiece(word, minilm.vocab) == library_wordpiece.tokenize_word(word), word
assert wordpiece("a" * 101, minilm.vocab) == ["[UNK]"]
print(f"same pieces as bertedu's WordpieceTokenizer for {len(distinct_words):,} distinct words")
glue("ch2_greedy_words_checked", len(distinct_words), display=False)


# %% [markdown]
# *Greedy* means the algorithm never reconsiders a piece. That is not always the cut with the
# fewest pieces. A short dynamic program finds the fewest-pieces cut for comparison: for every
# prefix of the word it keeps the smallest number of pieces that spell it.

# %%
def fewest_pieces(word, vocab):
    best = [0] + [None] * len(word)  # best[i]: fewest pieces that spell word[:i]
    cut = [None] * (len(word) + 1)  # cut[i]: where the last of those pieces starts
    for end in range(1, len(word) + 1):
        for start in range(end):
            piece = ("##" if start > 0 else "") + word[start:end]
            if best[start] is not None and piece in vocab:
                if best[end] is None or best[start] + 1 < best[end]:
                    best[end], cut[end] = best[start] + 1, start
    if best[-1] is None:
        return ["[UNK]"]
    pieces, end = [], len(word)
    while end > 0:
        start = cut[end]
        pieces.insert(0, ("##" if start > 0 else "") + word[start:end])
        end = start
    return pieces


test_types = sorted(test_counts)
worse = [w for w in test_types
         if len(wordpiece(w, minilm.vocab)) > len(fewest_pieces(w, minilm.vocab))]
glue("ch2_greedy_worse", len(worse), display=False)
glue("ch2_test_types_checked", len(test_types), display=False)
assert 0 < len(worse) < 0.01 * len(test_types), len(worse)

# %%
# NBVAL_CHECK_OUTPUT
print(f"greedy uses more pieces than necessary for {len(worse)} of {len(test_types):,} test words:")
for word in worse:
    print(f"  {word:>16}  greedy {wordpiece(word, minilm.vocab)}   fewest {fewest_pieces(word, minilm.vocab)}")

# %% [markdown]
# Greedy finds the fewest pieces almost always: only {glue:text}`ch2_greedy_worse:d` of the
# {glue:text}`ch2_test_types_checked:,d` distinct test words could be spelled with fewer pieces.
# Its results are also predictable: a word's first piece is always its longest known prefix.
# Every BERT checkpoint was pretrained with greedy cuts, so a tokenizer must use the same rule to
# give the model the input it expects, whether or not another cut would look better.
#
# From now on we use the library.

# %% [markdown]
# ## 2.4 The vocabulary and its special tokens
#
# A vocabulary file, `vocab.txt`, holds one token per line, and the line number (from 0) is
# the token's id. MiniLM uses the vocabulary of the original uncased BERT. Here is how its
# {glue:text}`ch2_minilm_vocab_size:,d` lines are laid out:

# %%
# NBVAL_CHECK_OUTPUT
tokens = minilm.ids_to_tokens
print("vocabulary size:", minilm.vocab_size)
for token in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]:
    print(f"  {token:<7} id {minilm.vocab[token]}")
print("ids 1-4:      ", tokens[1:5], "...")
print("ids 999-1008: ", tokens[999:1009], "...")
print("ids 1996-2005:", tokens[1996:2006])
print("last ids:     ", tokens[-5:])
n_unused = sum(t.startswith("[unused") for t in tokens)
n_continuations = sum(t.startswith("##") for t in tokens)
print(f"[unused] slots: {n_unused},  ## pieces: {n_continuations:,},  "
      f"single CJK characters: {sum(len(t) == 1 and is_cjk(t) for t in tokens):,}")

# %%
assert [minilm.pad_token_id, minilm.unk_token_id, minilm.cls_token_id,
        minilm.sep_token_id, minilm.mask_token_id] == [
    minilm.vocab[t] for t in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]]
glue("ch2_pad_id", minilm.pad_token_id, display=False)
glue("ch2_unk_id", minilm.unk_token_id, display=False)
glue("ch2_cls_id", minilm.cls_token_id, display=False)
glue("ch2_sep_id", minilm.sep_token_id, display=False)
glue("ch2_mask_id", minilm.mask_token_id, display=False)
glue("ch2_unused", n_unused, display=False)
glue("ch2_continuations", n_continuations, display=False)

# %% [markdown]
# The five special tokens are not words of the text. The tokenizer or the training code puts
# them in:
#
# - `[CLS]` (id {glue:text}`ch2_cls_id:d`) opens every input. Its final vector summarizes the
#   whole input for classification (Chapters 5 and 7).
# - `[SEP]` (id {glue:text}`ch2_sep_id:d`) closes each segment: `[CLS] A [SEP]` or
#   `[CLS] A [SEP] B [SEP]` (Chapter 3).
# - `[PAD]` (id {glue:text}`ch2_pad_id:d`) fills short inputs up to the length of the batch.
#   The attention mask hides it from the model (Chapter 3).
# - `[MASK]` (id {glue:text}`ch2_mask_id:d`) replaces the words the model must guess during
#   pretraining (Chapter 5).
# - `[UNK]` (id {glue:text}`ch2_unk_id:d`) stands for a word that no sequence of pieces can
#   spell.
#
# The {glue:text}`ch2_unused:,d` `[unused…]` lines are free slots. A user can give one of them
# a new meaning (a domain term, a new marker) without changing the size of the embedding table.
# After them come the single characters, from `!` at id 999. Then, from id 1996, come the whole
# words and the {glue:text}`ch2_continuations:,d` `##` pieces, in what looks like frequency
# order ("the", "of", "and", "in" ...). The order of the file tells nothing about how the
# tokens were learned.
#
# A special token typed into the text is kept whole, which is how the fill-in-the-blank demos of
# Chapter 6 write their input. Lower-case `[mask]`, on the other hand, is ordinary text:

# %%
# NBVAL_CHECK_OUTPUT
print(minilm.tokenize("Paris is the [MASK] of France."))
print(minilm.tokenize("Paris is the [mask] of France."))


# %% [markdown]
# ## 2.5 Training a WordPiece vocabulary on WikiText-2
#
# Where does a vocabulary come from? WordPiece {cite:p}`schuster2012japanese,wu2016google`
# learns it bottom-up. It starts from single characters and repeatedly adds the merge of two
# existing units that most increases the likelihood of the training text. Google never
# published the trainer behind BERT's vocabulary. Its README says "the code used in the paper
# was implemented in C++ with dependencies on Google's internal libraries". So we use the
# common open version, which Hugging Face's course teaches and
# `bertedu.wordpiece_trainer.train_wordpiece` implements:
#
# 1. Split the corpus into words (section 2.2) and count each distinct word.
# 2. Spell every word in characters, the first plain and the others with `##`: "hug" is
#    `h ##u ##g`. The vocabulary starts as the special tokens plus these characters.
# 3. Repeatedly merge the adjacent pair $(a, b)$ with the highest *score* (below), and add the
#    merged token to the vocabulary: `h` + `##u` gives `hu`, and `##u` + `##g` gives `##ug`.
#    Ties go to the more frequent pair, then to the alphabetically first.
# 4. Stop when the vocabulary reaches the requested size, or when no pair occurs at least
#    `min_frequency` times (2 by default).
#
# The score of a pair compares how often it occurs with how often its two parts occur, counted
# over the whole corpus as currently spelled:
#
# $$
# \operatorname{score}(a, b) = \frac{\operatorname{count}(ab)}{\operatorname{count}(a)\,\operatorname{count}(b)}.
# $$
#
# First the plain version. It recounts everything after every merge, which is slow but easy to
# check:

# %%
def count_pieces_and_pairs(spellings, word_counts):
    piece_count, pair_count = Counter(), Counter()
    for word, n in word_counts.items():
        pieces = spellings[word]
        for piece in pieces:
            piece_count[piece] += n
        for pair in zip(pieces, pieces[1:]):
            pair_count[pair] += n
    return piece_count, pair_count


def merge_pair(pieces, a, b):
    i, out = 0, []
    while i < len(pieces):
        if i + 1 < len(pieces) and (pieces[i], pieces[i + 1]) == (a, b):
            out.append(a + b.removeprefix("##"))  # "##u" + "##g" -> "##ug"
            i += 2
        else:
            out.append(pieces[i])
            i += 1
    return out


def train_plain(texts, vocab_size, min_frequency=2, by="score"):
    # by="score": the WordPiece score above; by="frequency": the most frequent pair (as BPE).
    word_counts = Counter(w for text in texts for w in basic.tokenize(text))  # 1.
    spellings = {w: [w[0]] + ["##" + c for c in w[1:]] for w in word_counts}  # 2.
    vocab = list(SPECIAL_TOKENS) + sorted({p for s in spellings.values() for p in s})
    merges = []  # (a, b, count(ab), count(a), count(b)) of every merge, in order
    while len(vocab) < vocab_size:
        piece_count, pair_count = count_pieces_and_pairs(spellings, word_counts)  # 3.
        candidates = [pair for pair, n in pair_count.items() if n >= min_frequency]
        if not candidates:  # 4.
            break

        def rank(pair):  # smallest = best: highest score, then most frequent, then a-z
            a, b = pair
            score = pair_count[pair] / (piece_count[a] * piece_count[b])
            return (-(score if by == "score" else pair_count[pair]), -pair_count[pair], pair)

        a, b = min(candidates, key=rank)
        merges.append((a, b, pair_count[a, b], piece_count[a], piece_count[b]))
        new_token = a + b.removeprefix("##")
        if new_token not in vocab:  # two different pairs can spell the same token
            vocab.append(new_token)
        spellings = {w: merge_pair(pieces, a, b) for w, pieces in spellings.items()}
    return vocab, merges


# %% [markdown]
# Before we trust the fast library version on the whole corpus, the two must learn the same
# vocabulary, token for token, on a slice of it:

# %%
train_texts = valid_texts if TRAIN_SPLIT == "valid" else paragraphs_of(data.load_wikitext2(TRAIN_SPLIT))
slice_texts, slice_size = train_texts[:100], 500
plain_vocab, plain_merges = train_plain(slice_texts, slice_size)
assert plain_vocab == train_wordpiece(slice_texts, slice_size)
print(f"plain trainer == bertedu.wordpiece_trainer.train_wordpiece on {len(slice_texts)} paragraphs, "
      f"{slice_size} tokens")

# %% [markdown]
# The first merges on the slice, with the counts that decided them:

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'merge':>24}  {'count(ab)':>9} {'count(a)':>8} {'count(b)':>8}   score")
for a, b, n_ab, n_a, n_b in plain_merges[:12]:
    print(f"{a + ' + ' + b:>24}  {n_ab:>9} {n_a:>8} {n_b:>8}   {n_ab / (n_a * n_b):.2e}")
digit_merges = sum((a + b.removeprefix("##")).isdigit() for a, b, *_ in plain_merges[:12])
assert digit_merges >= 8, plain_merges[:12]

# %% [markdown]
# Most of the first merges join digits into years and numbers. Common letters such as
# `t` + `##h` do not come first. We come back to this in section 2.6.
#
# Now the library on the whole training text. We pass a `vocab_size` larger than it can reach,
# so it trains until no pair occurs twice any more. Training is
# deterministic, and the vocabulary lists the tokens in the order they were learned. So the
# first $k$ tokens of this one long run are exactly the vocabulary that `vocab_size=k` would
# give, and one run gives us every size. We check that on $k = 1000$:

# %%
start = time.perf_counter()
trained_vocab = train_wordpiece(train_texts, vocab_size=200_000)  # more than it can reach
print(f"trained {len(trained_vocab):,} tokens in {time.perf_counter() - start:.0f} s")
assert train_wordpiece(train_texts, vocab_size=1000) == trained_vocab[:1000]

# %%
# NBVAL_CHECK_OUTPUT
train_counts = Counter(words_of(train_texts))
alphabet = sorted({p for w in train_counts for p in [w[0]] + ["##" + c for c in w[1:]]})
n_alphabet, n_start = len(alphabet), len(SPECIAL_TOKENS) + len(alphabet)
assert trained_vocab[:n_start] == list(SPECIAL_TOKENS) + alphabet
print(f"training text: {sum(train_counts.values()):,} words, {len(train_counts):,} distinct")
print(f"vocabulary: {len(SPECIAL_TOKENS)} special tokens + {n_alphabet} characters "
      f"(with and without ##) + {len(trained_vocab) - n_start:,} learned tokens = {len(trained_vocab):,}")
print("first learned tokens:", trained_vocab[n_start:n_start + 16])
for position in [1000, 4000, 8000, 16000]:
    if position < len(trained_vocab):
        print(f"tokens {position}-{position + 7}:", trained_vocab[position:position + 8])

# %%
# Every word that occurs at least twice ends up as one token: as long as it is in several
# pieces, it contributes a pair that occurs at least twice, so training goes on.
trained_set = set(trained_vocab)
assert all(word in trained_set for word, n in train_counts.items() if n >= 2)
glue("ch2_train_words", sum(train_counts.values()), display=False)
glue("ch2_train_types", len(train_counts), display=False)
glue("ch2_n_alphabet", n_alphabet, display=False)
glue("ch2_trained_size", len(trained_vocab), display=False)

# %% [markdown]
# The vocabulary starts with {glue:text}`ch2_n_alphabet:d` characters (with and without `##`,
# as they occur in the text) and grows by one token per merge. A learned token is often a step
# on the way to a longer one, as the lists above show. Training stopped at
# {glue:text}`ch2_trained_size:,d` tokens, when no pair occurred twice any more. At that point
# every word seen at least twice is a token of its own.
#
# Here is one word at several vocabulary sizes. Remember that each cut is made greedily, with
# only the first $k$ tokens of the vocabulary:

# %%
# NBVAL_CHECK_OUTPUT
sizes = [size for size in [1000, 2000, 4000, 8000, 16000] if size < len(trained_vocab)]
sizes.append(len(trained_vocab))
cutters = {size: WordpieceTokenizer(set(trained_vocab[:size])) for size in sizes}
for word in ["the", "university", "satellite", "tokenization", "władysław"]:
    print(word)
    for size in sizes:
        print(f"  {size:>6,} tokens: {' '.join(cutters[size].tokenize_word(word))}")

# %% [markdown]
# How much does a larger vocabulary buy? We measure two things on the *test* split, which the
# trainer never saw: the average number of tokens per word (shorter inputs are cheaper), and
# the share of words that become `[UNK]`. For comparison we also build a *word* vocabulary of
# the same size, the $k$ most frequent training words, and count the test words it misses. The
# left plot also shows a second trainer that merges the most *frequent* pair at each step, as
# BPE does. Hugging Face's `tokenizers` library has a fast one, its `WordPieceTrainer`, which
# despite its name merges by frequency. We use it here only for comparison.

# %%
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

# The same word splitting as ours (BERT's normalizer and pre-tokenizer), frequency merges.
reference = Tokenizer(models.WordPiece(unk_token="[UNK]"))
reference.normalizer = normalizers.BertNormalizer(lowercase=True)
reference.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
trainer = trainers.WordPieceTrainer(vocab_size=200_000, min_frequency=2,
                                    special_tokens=list(SPECIAL_TOKENS), show_progress=False)
reference.train_from_iterator(train_texts, trainer)
frequency_ids = reference.get_vocab()
frequency_vocab = sorted(frequency_ids, key=frequency_ids.get)  # ids follow the merge order


# %%
def tokens_per_word_and_unk(vocab_tokens, words=test_counts):
    cutter = WordpieceTokenizer(set(vocab_tokens))
    n_tokens = n_unk = 0
    for word, n in words.items():
        pieces = cutter.tokenize_word(word)
        n_tokens += n * len(pieces)
        n_unk += n * (pieces == ["[UNK]"])
    n_words = sum(words.values())
    return n_tokens / n_words, n_unk / n_words


grid = [n_start, 500, 1000, 2000, 4000, 8000, 12000, 16000, 20000, 25000, 30000]
score_sizes = [k for k in grid if k < len(trained_vocab)] + [len(trained_vocab)]
frequency_sizes = [k for k in grid[1:] if k < len(frequency_vocab)] + [len(frequency_vocab)]
score_curve = [tokens_per_word_and_unk(trained_vocab[:k]) for k in score_sizes]
frequency_curve = [tokens_per_word_and_unk(frequency_vocab[:k]) for k in frequency_sizes]
ranked_words = [w for w, _ in train_counts.most_common()]
word_oov = []  # share of test words outside the k most frequent training words
for k in score_sizes:
    known = set(ranked_words[:k])
    word_oov.append(sum(n for w, n in test_counts.items() if w not in known) / len(test_words))
chars_per_word = sum(len(w) for w in test_words) / len(test_words)

# %% mystnb={"image": {"alt": "Left: tokens per test word fall from the characters-per-word level as the vocabulary grows; the frequency trainer's curve lies well below the WordPiece-score curve, which approaches MiniLM's level only at full size. Right: a word vocabulary loses a large, slowly falling share of test words, while WordPiece loses almost none at every size."}}
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
ax1.plot(score_sizes, [t for t, _ in score_curve], "o-", label="WordPiece score (bertedu)")
ax1.plot(frequency_sizes, [t for t, _ in frequency_curve], "s-", label="most frequent pair")
ax1.axhline(n_pieces / len(test_words), color="grey", linestyle="--",
            label=f"MiniLM's {minilm.vocab_size:,} tokens")
ax1.axhline(chars_per_word, color="grey", linestyle=":", label="characters")
ax1.set_xscale("log")
ax1.set_xlabel("vocabulary size (tokens)")
ax1.set_ylabel("tokens per test word")
ax1.set_title("Longer vocabulary, shorter inputs")
ax1.legend(fontsize=11)
ax2.plot(score_sizes, [100 * o for o in word_oov], "o-", color="C3", label="word vocabulary: unknown")
ax2.plot(score_sizes, [100 * u for _, u in score_curve], "o-", color="C0", label="WordPiece: [UNK]")
ax2.set_xscale("log")
ax2.set_xlabel("vocabulary size (tokens or words)")
ax2.set_ylabel("% of test words lost")
ax2.set_title("Words are lost; WordPieces almost never")
ax2.legend(fontsize=11)
fig.tight_layout()
plt.show()


# %%
def at(sizes, curve, k):
    return curve[sizes.index(k)]


score_8k, unk_8k = at(score_sizes, score_curve, 8000)
frequency_8k, _ = at(frequency_sizes, frequency_curve, 8000)
score_full, unk_full = score_curve[-1]
oov_8k = at(score_sizes, word_oov, 8000)
d2l_words = {w for w, n in train_counts.items() if n >= 5}
d2l_oov = sum(n for w, n in test_counts.items() if w not in d2l_words) / len(test_words)

assert frequency_8k < score_8k < chars_per_word, (frequency_8k, score_8k)
assert unk_8k < 0.01 < oov_8k, (unk_8k, oov_8k)
assert score_full < score_8k
glue("ch2_chars_per_word", chars_per_word, display=False)
glue("ch2_score_8k", score_8k, display=False)
glue("ch2_frequency_8k", frequency_8k, display=False)
glue("ch2_score_full", score_full, display=False)
glue("ch2_unk_8k", unk_8k, display=False)
glue("ch2_oov_8k", oov_8k, display=False)
glue("ch2_frequency_size", len(frequency_vocab), display=False)
glue("ch2_d2l_size", len(d2l_words), display=False)
glue("ch2_d2l_oov", d2l_oov, display=False)

# %% [markdown]
# Which test words does the full vocabulary turn into `[UNK]`?

# %%
# NBVAL_CHECK_OUTPUT
unk_words = sorted(w for w in test_counts if cutters[len(trained_vocab)].tokenize_word(w) == ["[UNK]"])
print(unk_words)
print("never seen in the training text:", sorted({c for w in unk_words for c in w} - set("".join(train_counts))))

# %% [markdown]
# The right plot is the argument for subwords in one picture. A word vocabulary of 8,000 words
# loses {glue:text}`ch2_oov_8k:.1%` of the test words. (The red curve flattens at the right
# because the training text has only {glue:text}`ch2_train_types:,d` distinct words to list.) A
# WordPiece vocabulary of 8,000 tokens turns only {glue:text}`ch2_unk_8k:.2%` of them into
# `[UNK]`, and that share does not depend on the size. The words it loses are the ones listed
# above: each contains a character that the training text never had.
#
# The left plot shows the price: length. With only characters a test word costs
# {glue:text}`ch2_chars_per_word:.2f` tokens. At 8,000 tokens, our trainer's vocabulary still
# needs {glue:text}`ch2_score_8k:.2f` tokens per word, and the full
# {glue:text}`ch2_trained_size:,d` tokens need {glue:text}`ch2_score_full:.2f`. The frequency
# trainer reaches {glue:text}`ch2_frequency_8k:.2f` with 8,000 tokens, and it stops at
# {glue:text}`ch2_frequency_size:,d` tokens because its merges build whole words sooner.
# BERT's vocabulary, which MiniLM uses, was learned on far more text than WikiText-2 and needs
# {glue:text}`ch2_minilm_pieces_per_word:.2f` tokens per test word. Why does the WordPiece score
# need so many more tokens for the same length? The culprit is the most frequent word of all.
#
# ```{admonition} Coming from d2l?
# :class: note
# d2l's BERT chapters {cite:p}`zhang2023dive` pretrain on WikiText-2 with a *word* vocabulary:
# the words seen at least five times, plus `<unk>` and the reserved tokens `<pad>`, `<mask>`,
# `<cls>` and `<sep>`. On our training text such a vocabulary has
# {glue:text}`ch2_d2l_size:,d` words and misses {glue:text}`ch2_d2l_oov:.1%` of the test words.
# Real BERT checkpoints use WordPiece and the bracketed names `[PAD] [MASK] [CLS] [SEP] [UNK]`,
# so this book does too. A word then may take several positions, and Chapters 5 and 10 deal with
# that (masking pieces, labelling a word's first piece).
# ```

# %% [markdown]
# ## 2.6 Why "the" arrives late
#
# "the" is by far the most frequent word of the training text. Yet at 1,000, 4,000 or 8,000
# tokens, our vocabulary still spells it `th ##e`, and the table above shows it becoming a
# token only at the end. When exactly?

# %%
# NBVAL_CHECK_OUTPUT
for word in ["the", "of", "and", "in", "was", "with", "that"]:
    print(f"{word!r:>7}: {train_counts[word]:>6,} occurrences, learned as token "
          f"{trained_vocab.index(word):>6,} of {len(trained_vocab):,}")

# %%
the_id = trained_vocab.index("the")
assert train_counts.most_common(1)[0][0] == "the"
assert the_id > len(trained_vocab) / 2, the_id
for size in [1000, 4000, 5000, 8000]:
    assert WordpieceTokenizer(set(trained_vocab[:size])).tokenize_word("the") == ["th", "##e"]
glue("ch2_the_id", the_id, display=False)
glue("ch2_the_count", train_counts["the"], display=False)

# %% [markdown]
# "the" occurs {glue:text}`ch2_the_count:,d` times, and it is learned as token
# {glue:text}`ch2_the_id:,d` of {glue:text}`ch2_trained_size:,d`. To see why, look at the
# candidates of the very first merge. The table below ranks every pair of the training text,
# spelled in characters, by the WordPiece score and by plain frequency:

# %%
spellings = {w: [w[0]] + ["##" + c for c in w[1:]] for w in train_counts}  # before any merge
piece_count, pair_count = count_pieces_and_pairs(spellings, train_counts)
candidates = [pair for pair, n in pair_count.items() if n >= 2]


def score(pair):
    return pair_count[pair] / (piece_count[pair[0]] * piece_count[pair[1]])


by_score = sorted(candidates, key=lambda p: (-score(p), -pair_count[p], p))
by_frequency = sorted(candidates, key=lambda p: (-pair_count[p], p))


# %%
# NBVAL_CHECK_OUTPUT
def show_pairs(title, pairs):
    print(title)
    print(f"  {'pair':>12}  {'count(ab)':>9} {'count(a)':>8} {'count(b)':>8}     score")
    for a, b in pairs:
        print(f"  {a + ' ' + b:>12}  {pair_count[a, b]:>9,} {piece_count[a]:>8,} "
              f"{piece_count[b]:>8,}  {score((a, b)):.2e}")


show_pairs("Best WordPiece scores:", by_score[:5])
show_pairs("Most frequent pairs:", by_frequency[:5])
print(f"'t ##h' ranks {by_score.index(('t', '##h')) + 1} of {len(candidates):,} by score")

# %%
th_rank = by_score.index(("t", "##h")) + 1
assert by_frequency[0] == ("t", "##h") and th_rank > 50, th_rank
glue("ch2_th_rank", th_rank, display=False)
glue("ch2_n_candidates", len(candidates), display=False)


# %% [markdown]
# `t ##h` is the most frequent pair, but by score it ranks only
# {glue:text}`ch2_th_rank:d` of {glue:text}`ch2_n_candidates:,d`. The score divides by
# the counts of both parts, and `t` and `##h` are very common letters. In probabilities, with
# $N$ pieces in the corpus,
#
# $$
# \operatorname{score}(a, b) = \frac{1}{N} \cdot \frac{P(ab)}{P(a)\,P(b)},
# $$
#
# so it measures how much more often $a$ and $b$ appear together than they would by chance
# (the ratio inside *pointwise mutual information*). It does not measure how often they appear
# together. Digits win the first merges because digits are rare pieces that occur almost only
# next to other digits. The same happens one level up. Once `th` exists, the score of
# `th` + `##e` is divided by the count of `##e`, one of the most common pieces of all. It rises
# only as other merges absorb the other occurrences of its parts (`##e` into `##er`, `##ed` ...,
# `th` into `this`, `that` ...). So the most frequent word, built from the most frequent
# letters, waits until most other words are built.
#
# Schuster and Nakajima's criterion is different: add the unit that most increases the
# likelihood of the training text. For a model that draws pieces independently with
# probabilities $c(x)/N$, the log-likelihood is $\sum_x c(x) \log \big(c(x)/N\big)$, and the
# increase from merging $a$ and $b$ can be computed exactly from the counts. Roughly, it is
# $c(ab)\,\log \frac{c(ab)\,N}{c(a)\,c(b)}$, the log of the score (plus a constant) *weighted by
# how often the pair occurs*. The score above drops that weight. Here is the exact gain for the
# same candidates:

# %%
def x_log_x(x):
    return x * math.log(x) if x > 0 else 0.0


def likelihood_gain(pair):
    # Change in sum_x c(x) log(c(x)/N) = sum_x x_log_x(c(x)) - x_log_x(N) when a, b merge.
    a, b = pair
    n_ab, n = pair_count[pair], sum(piece_count.values())
    if a == b:  # e.g. "##o" + "##o": each merge uses two of the same piece
        before, after = x_log_x(piece_count[a]), x_log_x(n_ab) + x_log_x(piece_count[a] - 2 * n_ab)
    else:
        before = x_log_x(piece_count[a]) + x_log_x(piece_count[b])
        after = x_log_x(n_ab) + x_log_x(piece_count[a] - n_ab) + x_log_x(piece_count[b] - n_ab)
    return (after - before) - (x_log_x(n - n_ab) - x_log_x(n))


by_gain = sorted(candidates, key=lambda p: (-likelihood_gain(p), p))
print("largest likelihood gains:", [" ".join(p) for p in by_gain[:8]])
assert by_gain[0] == ("t", "##h")

# %% [markdown]
# By likelihood gain, `t ##h` comes first. Any trainer that weights by frequency learns "the"
# almost at once. Our plain trainer shows it on the slice from section 2.5, merging by frequency
# instead of by score:

# %%
# NBVAL_CHECK_OUTPUT
frequency_slice_vocab, frequency_merges = train_plain(slice_texts, slice_size, by="frequency")
print("first merges by frequency:", [f"{a} {b}" for a, b, *_ in frequency_merges[:6]])
for name, vocab in [("score", plain_vocab), ("frequency", frequency_slice_vocab)]:
    where = f"token {vocab.index('the')} of" if "the" in vocab else "not among"
    print(f"by {name:<9}: 'the' is {where} the {len(vocab)} tokens")

# %% [markdown]
# The same holds on the whole training text. The plot compares, for the 40 most frequent words
# (punctuation left out), when each became a token of its own in our vocabulary and in the
# frequency trainer's:

# %% mystnb={"image": {"alt": "For the 40 most frequent words, their position in each vocabulary: the frequency trainer learns them all within its first few hundred tokens, the WordPiece score scatters them up to the end, with 'the' near the very top."}}
top_words = [w for w, _ in train_counts.most_common() if w.isalpha()][:40]  # words, not punctuation
fig, ax = plt.subplots(figsize=(8, 4.5))
ax.scatter(range(1, 41), [trained_vocab.index(w) for w in top_words], label="WordPiece score (bertedu)")
ax.scatter(range(1, 41), [frequency_ids[w] for w in top_words], marker="s", label="most frequent pair")
ax.annotate('"the"', (1, the_id), xytext=(4, the_id * 0.6), arrowprops={"arrowstyle": "->"})
ax.set_yscale("log")
ax.set_xlabel("frequency rank among the words of the training text")
ax.set_ylabel("position in the vocabulary")
ax.set_title("When do frequent words become tokens?")
ax.legend(fontsize=11)
fig.tight_layout()
plt.show()
assert frequency_ids["the"] < 500 < the_id, (frequency_ids["the"], the_id)
glue("ch2_frequency_the_id", frequency_ids["the"], display=False)

# %% [markdown]
# In the frequency trainer's vocabulary, "the" is token {glue:text}`ch2_frequency_the_id:d`,
# one of the first merges. In ours it is token {glue:text}`ch2_the_id:,d`. The one-letter words
# ("a", and the "s" that the basic tokenizer splits off "'s") sit low in both because they are
# in the starting alphabet.
#
# What to take from this:
#
# - The score is a design choice, not a law. Hugging Face's course and `train_wordpiece` use the
#   ratio, which favours merges that are *surprising*. BPE (byte-pair encoding, Sennrich et al., 2016) uses the
#   count, which favours merges that are *common*. Schuster and Nakajima's likelihood gain
#   weighs both.
# - With a small vocabulary, the ratio gives long inputs (section 2.5). It uses many of its
#   tokens for rare, tightly bound strings (years, names) and spells the commonest words in
#   pieces. If you train your own small vocabulary, compare tokens per word before you pretrain
#   on it.
# - The vocabulary of a real checkpoint is fixed. MiniLM's vocabulary has "the" as one token,
#   whatever trainer Google used, and greedy longest-match-first (section 2.3) only reads the
#   vocabulary. It never replays the merges.

# %% [markdown]
# ## 2.7 Proof of fidelity: the same ids as `transformers`
#
# A pretrained checkpoint only works if its input is cut exactly as in pretraining. One
# different id, and the model reads a different word. So the test of our tokenizer is to give
# the same ids as the reference implementation, Hugging Face's `transformers`, on the same
# vocabulary. We start with text chosen to be hard: accents, Chinese, Japanese and Korean, an
# emoji, a tab, a zero-width space, and a typed `[MASK]`.

# %%
from transformers import BertTokenizer as ReferenceTokenizer  # only to compare against

reference_tokenizer = ReferenceTokenizer.from_pretrained(bertedu.minilm_path())
samples = [
    "Crème brûlée and a naïve café in Zürich.",
    "北京大学的学生 study in Beijing.",
    "東京タワー and 서울 are landmarks.",
    "Hello,world! Tabs\tand zero\u200bwidth spaces.",
    "The unaffable tokenizer costs $5.99 😀",
    "Paris is the [MASK] of France.",
]

# %%
# NBVAL_CHECK_OUTPUT
for text in samples:
    ours, theirs = minilm(text)["input_ids"], reference_tokenizer(text)["input_ids"]
    print(f"{'same' if ours == theirs else 'DIFFERENT'}  {text!r}")
    print("     ", minilm.convert_ids_to_tokens(ours))

# %% [markdown]
# Now every sentence of SST-2's dev split (the sentiment task of Chapter 8) and every paragraph
# of the WikiText-2 test split:

# %%
# NBVAL_CHECK_OUTPUT
sst2_dev = [r["sentence"] for r in data.load_sst2("dev")]
for name, texts in [("SST-2 dev sentences", sst2_dev), ("WikiText-2 test paragraphs", test_texts)]:
    ours = [minilm(t)["input_ids"] for t in texts]
    theirs = reference_tokenizer(texts)["input_ids"]
    same = sum(a == b for a, b in zip(ours, theirs))
    print(f"{name}: identical ids for {same:,} / {len(texts):,}")
    assert same == len(texts)

# %% [markdown]
# ## 2.8 From text to model inputs
#
# `BertTokenizer.__call__` does everything the model needs at once. It adds `[CLS]` and
# `[SEP]`, sets the segment ids, truncates to `max_length`, pads, and on request returns each
# token's character span in the original text. Chapter 3 explains what the model does with
# each of these. Here is a pair, cut to 14 positions:

# %%
# NBVAL_CHECK_OUTPUT
text_a, text_b = "Crème brûlée is an unaffable dessert.", "Is it?"
encoded = minilm(text_a, text_b, truncation=True, max_length=14, return_offsets_mapping=True)
assert len(encoded["input_ids"]) == 14
print(f"{'token':<8} {'id':>5}  segment  mask  offsets  text")
for i, token in enumerate(minilm.convert_ids_to_tokens(encoded["input_ids"])):
    start, end = encoded["offset_mapping"][i]
    source = text_a if encoded["token_type_ids"][i] == 0 else text_b
    print(f"{token:<8} {encoded['input_ids'][i]:>5}  {encoded['token_type_ids'][i]:>7}  "
          f"{encoded['attention_mask'][i]:>4}  {str((start, end)):>8}  {source[start:end]!r}")

# %% [markdown]
# Truncation takes tokens from the longer segment first, so "Is it?" survives whole. It counts
# tokens, not words: "unaffable" kept only its first piece, `una`. The offsets point into the
# *original* text, accents included: `cr` is `Cr`, and `##ule` is `ûlé`. `[CLS]`, `[SEP]` and
# padding have the empty span `(0, 0)`. Chapters 10 and 11 use these offsets to map word labels
# and answer spans onto tokens.
#
# On a batch, `padding=True` pads every row to the longest one with `[PAD]`, and the attention
# mask marks the padding with 0. With `return_tensors="pt"` the values are tensors. Every value
# matches `transformers`, offsets included:

# %%
# NBVAL_CHECK_OUTPUT
batch_a = [text_a, "A short one.", "北京大学"]
batch_b = [text_b, "Very short.", "Zürich"]
ours = minilm(batch_a, batch_b, padding=True, truncation=True, max_length=12,
              return_tensors="pt", return_offsets_mapping=True)
theirs = reference_tokenizer(batch_a, batch_b, padding=True, truncation=True, max_length=12,
                             return_tensors="pt", return_offsets_mapping=True)
for key in ["input_ids", "token_type_ids", "attention_mask", "offset_mapping"]:
    assert torch.equal(ours[key], theirs[key]), key
    print(f"{key:<15} {tuple(ours[key].shape)}  same as transformers")
print(ours["attention_mask"])

# %% [markdown]
# ## Summary
#
# - **Why subwords.** A word vocabulary always misses words. In WikiText-2,
#   {glue:text}`ch2_hapax_share:.0%` of the distinct validation words occur once, and a word list
#   learned on the validation split misses {glue:text}`ch2_missing_share:.1%` of the test words.
#   Characters miss nothing but make inputs {glue:text}`ch2_char_ratio:.1f` times longer than
#   WordPieces. WordPieces keep frequent words whole and spell rare ones in pieces (`##` marks a
#   piece that continues a word).
# - **The basic tokenizer** cleans the text (control and zero-width characters go, whitespace
#   becomes spaces), spaces out every CJK character, splits on whitespace, lower-cases and strips
#   accents through NFD (uncased models), and splits off every punctuation mark, ASCII symbols
#   included. Our five plain steps equal `bertedu.tokenization.BasicTokenizer` on
#   {glue:text}`ch2_basic_texts_checked:,d` texts.
# - **Greedy longest-match-first** takes the longest known prefix, then the longest `##`
#   continuation, and so on. A word with no complete spelling becomes `[UNK]` as a whole. Our
#   few-line version equals `WordpieceTokenizer` on {glue:text}`ch2_greedy_words_checked:,d`
#   distinct words.
# - **Special tokens** in BERT's vocabulary: `[PAD]` {glue:text}`ch2_pad_id:d`, `[UNK]`
#   {glue:text}`ch2_unk_id:d`, `[CLS]` {glue:text}`ch2_cls_id:d`, `[SEP]`
#   {glue:text}`ch2_sep_id:d`, `[MASK]` {glue:text}`ch2_mask_id:d`.
# - **Training** starts from characters and merges the pair with the best score
#   $c(ab)/(c(a)\,c(b))$. On WikiText-2 a WordPiece vocabulary turns only
#   {glue:text}`ch2_unk_8k:.2%` of test words into `[UNK]`. The score prefers surprising pairs to
#   common ones, so "the" becomes a token only at position {glue:text}`ch2_the_id:,d`, and small
#   vocabularies spell common words in pieces.
# - **Fidelity.** `bertedu.tokenization.BertTokenizer` gives the same ids as `transformers` on
#   every SST-2 dev sentence and WikiText-2 test paragraph, and the same segment ids, attention
#   masks and offsets on padded, truncated pairs.
#
# ## Exercises
#
# The exercises for this chapter are the nbgrader assignment `exercises/source/02_wordpiece/02_wordpiece.ipynb`, with reference solutions. `make exercises` writes the student version, without them, to `exercises/release/02_wordpiece/`; instructors, see the guide "Teaching with this book".
