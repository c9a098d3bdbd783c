"""bertedu.tokenization against the reference tokenizers, and on its own.

The reference is `transformers.BertTokenizer`, which in transformers 5 is the Rust
`tokenizers` pipeline (BertNormalizer + BertPreTokenizer + WordPiece, the same object as
`BertTokenizerFast`). Where available we also check against transformers' pure-Python
`BertTokenizerLegacy`, a port of Google's original tokenization.py.
"""
import itertools
import json
import random
import re
import unicodedata
from collections import Counter
from fractions import Fraction

import pytest
import torch
from transformers import BertTokenizer as HFBertTokenizer

from bertedu.data import load_conll2003, load_squad, load_sst2, read_wikitext2_lines
from bertedu.tokenization import (
    BasicTokenizer,
    BertTokenizer,
    WordpieceTokenizer,
    load_vocab,
    read_tokenizer_config,
    write_vocab,
)
from bertedu.wordpiece_trainer import train_wordpiece

try:
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy
except ImportError:  # a future transformers may drop it
    BertTokenizerLegacy = None


@pytest.fixture(scope="module")
def ours(minilm_dir):
    return BertTokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def hf(minilm_dir):
    return HFBertTokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def legacy(minilm_dir):
    """transformers' port of Google's Python tokenizer, or None if this transformers lacks it."""
    return None if BertTokenizerLegacy is None else BertTokenizerLegacy.from_pretrained(minilm_dir)


def as_lists(value):
    """Nested lists all the way down (transformers mixes lists and tuples in offsets)."""
    return [as_lists(v) for v in value] if isinstance(value, (list, tuple)) else value


def assert_same_encoding(ours_out, hf_out, keys=("input_ids", "token_type_ids", "attention_mask")):
    for key in keys:
        assert key in ours_out, key
        if key == "offset_mapping" and not isinstance(ours_out[key], torch.Tensor):
            assert as_lists(ours_out[key]) == as_lists(hf_out[key]), key
        elif isinstance(ours_out[key], torch.Tensor):
            assert ours_out[key].dtype == torch.long
            assert torch.equal(ours_out[key], hf_out[key]), key
        else:
            assert ours_out[key] == hf_out[key], key


# ---------------------------------------------------------------------------------------
# Google-style tests: a tiny inline vocabulary, exact expected pieces


SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
GOOGLE_VOCAB = SPECIALS + ["want", "##want", "##ed", "wa", "un", "runn", "##ing", ","]


def test_basic_tokenizer_exact_examples():
    basic = BasicTokenizer()
    assert basic.tokenize(" \tHeLLo!how  \n Are yoU?  ") == ["hello", "!", "how", "are", "you", "?"]
    assert basic.tokenize("H\u00e9llo") == ["hello"]
    assert basic.tokenize("ah\u535a\u63a8zz") == ["ah", "\u535a", "\u63a8", "zz"]
    assert basic.tokenize("$5+3=8 ^_^") == ["$", "5", "+", "3", "=", "8", "^", "_", "^"]  # ASCII symbols split
    assert basic.tokenize("a\x00b\ufffdc\u200bd\x07e") == ["abcde"]  # junk and zero-width chars dropped
    assert basic.tokenize("") == [] and basic.tokenize(" \t\n\u3000") == []
    cased = BasicTokenizer(do_lower_case=False)
    assert cased.tokenize(" \tHeLLo!how  \n Are yoU?  ") == ["HeLLo", "!", "how", "Are", "yoU", "?"]
    assert cased.tokenize("Crème") == ["Crème"]  # cased models keep accents by default
    assert BasicTokenizer(do_lower_case=False, strip_accents=True).tokenize("Crème") == ["Creme"]
    assert BasicTokenizer(strip_accents=False).tokenize("Crème") == ["crème"]
    assert BasicTokenizer(tokenize_chinese_chars=False).tokenize("ah\u535a\u63a8zz") == ["ah\u535a\u63a8zz"]
    # Every character of a word remembers where it came from in the original text.
    assert basic.tokenize_with_positions("  Café!") == [("cafe", [2, 3, 4, 5]), ("!", [6])]


def test_wordpiece_exact_examples():
    wordpiece = WordpieceTokenizer(set(GOOGLE_VOCAB))
    assert wordpiece.tokenize("") == []
    assert wordpiece.tokenize("unwanted running") == ["un", "##want", "##ed", "runn", "##ing"]
    assert wordpiece.tokenize("unwantedX running") == ["[UNK]", "runn", "##ing"]  # one bad char: whole word
    assert wordpiece.tokenize_word("wanted") == ["want", "##ed"]  # longest first: not "wa", ...
    assert WordpieceTokenizer({"un", "##aff", "##able"}).tokenize_word("unaffable") == ["un", "##aff", "##able"]
    # Words longer than max_input_chars_per_word become [UNK] without being tried.
    assert WordpieceTokenizer(set(GOOGLE_VOCAB), max_input_chars_per_word=6).tokenize("wanted unwanted") == [
        "want", "##ed", "[UNK]"
    ]
    assert WordpieceTokenizer(set(GOOGLE_VOCAB), unk_token="<unk>").tokenize("xyz") == ["<unk>"]


def test_bert_tokenizer_inline_vocab_exact():
    tok = BertTokenizer(vocab=GOOGLE_VOCAB)
    text = "UNwant\u00e9d,running"
    assert tok.tokenize(text) == ["un", "##want", "##ed", ",", "runn", "##ing"]
    assert tok.convert_tokens_to_ids(tok.tokenize(text)) == [9, 6, 7, 12, 10, 11]
    assert tok.convert_tokens_to_ids("nope") == tok.unk_token_id == 1
    assert tok.convert_ids_to_tokens([2, 9, 3]) == ["[CLS]", "un", "[SEP]"]
    ids = (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id, tok.mask_token_id)
    assert ids == (0, 1, 2, 3, 4)
    assert sorted(tok.all_special_ids) == [0, 1, 2, 3, 4] and tok.vocab_size == len(tok) == 13

    out = tok(text, "want", padding="max_length", max_length=12,
              return_offsets_mapping=True, return_special_tokens_mask=True)  # fmt: skip
    assert out["input_ids"] == [2, 9, 6, 7, 12, 10, 11, 3, 5, 3, 0, 0]
    assert out["token_type_ids"] == [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0]
    assert out["attention_mask"] == [1] * 10 + [0, 0]
    assert out["special_tokens_mask"] == [1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1]
    # "UNwantéd,running": un = [0, 2), ##want = [2, 6), ##ed = [6, 8) (é counts as one char) ...
    assert out["offset_mapping"] == [(0, 0), (0, 2), (2, 6), (6, 8), (8, 9), (9, 13), (13, 16), (0, 0),
                                     (0, 4), (0, 0), (0, 0), (0, 0)]  # fmt: skip
    assert tok.decode(out["input_ids"]) == "[CLS] unwanted, running [SEP] want [SEP] [PAD] [PAD]"
    assert tok.decode(out["input_ids"], skip_special_tokens=True) == "unwanted, running want"


# ---------------------------------------------------------------------------------------
# Parity with transformers on real text


def _dataset_texts(name):
    if name == "sst2-dev":
        return [record["sentence"] for record in load_sst2("dev")]  # 872
    if name == "conll2003-dev":
        return [" ".join(record["tokens"]) for record in load_conll2003("dev")]  # 3,250
    squad = load_squad("dev")
    if name == "squad-dev-questions":
        return [record["question"] for record in squad[:500]]
    contexts = list(dict.fromkeys(record["context"] for record in squad))  # 2,067 distinct paragraphs
    return contexts[:500]


@pytest.mark.parametrize("name", ["sst2-dev", "conll2003-dev", "squad-dev-questions", "squad-dev-contexts"])
def test_same_tokens_ids_and_offsets_as_transformers_on_datasets(name, data_dir, ours, hf, legacy):
    texts = _dataset_texts(name)
    assert len(texts) in (500, 872, 3250)
    ours_tokens = [ours.tokenize(t) for t in texts]
    assert ours_tokens == [hf.tokenize(t) for t in texts]
    if legacy is not None:  # Google's algorithm agrees on real text
        assert ours_tokens == [legacy.tokenize(t) for t in texts]
    assert sum(len(t) for t in ours_tokens) > 10 * len(texts)  # a real comparison, not of empty lists
    keys = ("input_ids", "token_type_ids", "attention_mask", "offset_mapping")
    assert_same_encoding(ours(texts, return_offsets_mapping=True), hf(texts, return_offsets_mapping=True), keys)


TRICKY_TEXTS = [
    "Crème brûlée",
    "naïve café, façade, Ångström, São Paulo",
    "北京大学",
    "東京は日本の首都です。서울은 한국의 수도입니다.",  # kanji split, kana and hangul not
    "emoji 😀👍🏽 🇫🇷 and 👨‍👩‍👧 family",
    "tabs\tand\nnew\r\nlines\x0bvertical\x0cform",
    "zero\u200bwidth\u200djoiner\ufeffbom\u00adsoft hyphen",
    "control\x00chars\x01\x07\x1b\x7f\x85 and \ufffd replacement",
    "a" * 101 + " fits " + "b" * 100,  # over max_input_chars_per_word -> [UNK]; exactly 100 is tried
    "",
    "   ",
    "\t\n \u3000\xa0\u2028\u2029",
    "İstanbul ß ﬁ ǅ Ǆ ǈ",  # lower-casing that changes the number of characters
    "ΟΔΟΣ Σ",  # per-character lower-casing: final sigma becomes σ (Google's text.lower() gives ς)
    "Hello [MASK] world[SEP]x [mask] [CLS][CLS] [UNK]",  # special tokens typed in the text stay whole
    "$5 + 3 = ~8 ^_^ `quote` |pipe| <tag> {x} 50% #1 @home",
    "e\u0301 \u0301alone a\u0308\u0323 combining",
    "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",
    "𠀀𪜀 CJK ext B and C, 豈 compatibility",
    "Привет, мир! Ελληνικά καλημέρα مرحبا بالعالم नमस्ते दुनिया",
    "don't stop-believing... ok?! (really) [sic]",
    "123,456.78 e-mail: foo@bar.com http://x.y/z?a=1&b=2",
    "x\u0378y unassigned \U000e0001tag \ue000private",
]


@pytest.mark.parametrize("text", TRICKY_TEXTS, ids=range(len(TRICKY_TEXTS)))
def test_same_as_transformers_on_tricky_text(text, ours, hf):
    assert ours.tokenize(text) == hf.tokenize(text)
    keys = ("input_ids", "token_type_ids", "attention_mask", "offset_mapping")
    assert_same_encoding(ours(text, return_offsets_mapping=True), hf(text, return_offsets_mapping=True), keys)
    pair = ("second " + text[::-1]) * 3
    assert_same_encoding(
        ours(text, pair, truncation=True, max_length=24, return_offsets_mapping=True),
        hf(text, pair, truncation=True, max_length=24, return_offsets_mapping=True),
        keys,
    )


def test_tricky_expectations_spelled_out(ours):
    assert ours.tokenize("Crème brûlée") == ["cr", "##eme", "br", "##ule", "##e"]
    assert ours.tokenize("北京大学") == ["北", "京", "大", "学"]
    assert ours.tokenize("ΟΔΟΣ Σ") == ["ο", "##δ", "##ο", "##σ", "σ"]
    assert ours.tokenize("a" * 101) == ["[UNK]"]
    assert ours.tokenize("Paris is the [MASK] of France.")[3] == "[MASK]"
    assert ours.tokenize("a\ud800b") == ours.tokenize("ab")  # a lone surrogate is dropped (Rust refuses one)
    assert ours("") == {"input_ids": [101, 102], "token_type_ids": [0, 0], "attention_mask": [1, 1]}


def rust_words(rust, texts):
    """The words the Rust tokenizer's normalizer and pre-tokenizer make of each text."""
    return [[w for w, _ in rust.pre_tokenizer.pre_tokenize_str(rust.normalizer.normalize_str(t))] for t in texts]


def _stable_characters():
    """Every code point that Unicode 3.2 already had, with the same category as today.

    Python's `unicodedata` (Unicode 14 on Python 3.11) and the Rust crates behind
    `tokenizers` use different Unicode versions, so characters added or re-categorized
    since then can differ (about 1,000 of them, e.g. U+061D, a punctuation mark since
    Unicode 14). The supplementary private-use planes are left out for speed: like U+E000
    (kept), they are all dropped.
    """
    chars = []
    for cp in range(0xF0000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        then = unicodedata.ucd_3_2_0.category(c)
        if then != "Cn" and then == unicodedata.category(c):
            chars.append(c)
    return chars


def test_every_unicode_character_like_the_rust_tokenizer(ours, hf):
    """~100k characters, each as "x?y": words, ids and offsets (a few seconds)."""
    chars = _stable_characters()
    assert len(chars) > 90_000
    texts = [" ".join("x" + c + "y" for c in chars[i : i + 500]) for i in range(0, len(chars), 500)]
    # Words after normalization and pre-tokenization: compares BasicTokenizer exactly.
    assert [ours.basic_tokenizer.tokenize(t) for t in texts] == rust_words(hf.backend_tokenizer, texts)
    keys = ("input_ids", "offset_mapping")
    assert_same_encoding(ours(texts, return_offsets_mapping=True), hf(texts, return_offsets_mapping=True), keys)


@pytest.mark.parametrize(
    "settings", [{"do_lower_case": False}, {"strip_accents": False}, {"tokenize_chinese_chars": False}]
)
def test_unicode_characters_under_other_settings(settings, minilm_dir):
    """The other normalization settings on every third character of the test above."""
    ours = BertTokenizer.from_pretrained(minilm_dir, **settings)
    rust = HFBertTokenizer.from_pretrained(minilm_dir, **settings).backend_tokenizer
    chars = _stable_characters()[::3]
    texts = [" ".join("x" + c + "y" for c in chars[i : i + 500]) for i in range(0, len(chars), 500)]
    assert [ours.basic_tokenizer.tokenize(t) for t in texts] == rust_words(rust, texts)


def test_cjk_extension_e_follows_google(ours, legacy, hf):
    """U+2B820-U+2B91F (CJK Extension E) are ideographs in Google's list; the Rust tokenizer's
    list starts that block at 0x2B920, a typo, so there they glue to their neighbours."""
    text = "x\U0002b820y \U0002b91f"
    assert ours.tokenize(text) == ["x", "[UNK]", "y", "[UNK]"]
    if legacy is not None:
        assert legacy.tokenize(text) == ["x", "[UNK]", "y", "[UNK]"]
    assert ours.tokenize("\U0002b920") == hf.tokenize("\U0002b920")  # after the typo they agree again


# ---------------------------------------------------------------------------------------
# __call__: batches, pairs, padding, truncation, tensors


SHORT = ["Hello world!", "The quick brown fox jumps over the lazy dog.", "", "naïve 北京 [MASK]"]
LONG = ["A much longer second sentence that will need truncation. " * 3, "x", "y z", "Crème brûlée again"]
CALL_SETTINGS = [
    {},
    {"padding": True},
    {"padding": "longest", "return_tensors": "pt"},
    {"padding": "max_length", "max_length": 40},
    {"truncation": True, "max_length": 9},
    {"truncation": True, "max_length": 9, "padding": "max_length", "return_tensors": "pt"},
    {"truncation": "only_second", "max_length": 14, "padding": True},
    {"truncation": "longest_first", "max_length": 12},
]


@pytest.mark.parametrize(
    "settings, paired",
    [(settings, paired) for settings in CALL_SETTINGS for paired in (False, True)
     if paired or settings.get("truncation") != "only_second"],  # only_second needs pairs
)  # fmt: skip
def test_call_matches_transformers(settings, paired, ours, hf):
    pair = LONG if paired else None
    kwargs = dict(settings, return_offsets_mapping=True, return_special_tokens_mask=True)
    keys = ("input_ids", "token_type_ids", "attention_mask", "special_tokens_mask", "offset_mapping")
    assert_same_encoding(ours(SHORT, pair, **kwargs), hf(SHORT, pair, **kwargs), keys)
    # One string (not a list) gives flat lists, or a [1, T] tensor with return_tensors="pt".
    assert_same_encoding(ours(SHORT[1], None if pair is None else pair[0], **kwargs),
                         hf(SHORT[1], None if pair is None else pair[0], **kwargs), keys)  # fmt: skip


def test_longest_first_truncation_splits_like_transformers(ours, hf):
    # (tokens in A, tokens in B, max_length) -> what remains of each; hand-checked cases.
    expected = {(5, 5, 8): (2, 3), (6, 3, 8): (3, 2), (3, 6, 8): (2, 3),
                (2, 9, 9): (2, 4), (9, 2, 10): (5, 2), (7, 7, 10): (3, 4)}  # fmt: skip
    for (n_a, n_b, max_length), (keep_a, keep_b) in expected.items():
        a, b = " ".join(["a"] * n_a), " ".join(["b"] * n_b)
        types = ours(a, b, truncation=True, max_length=max_length)["token_type_ids"]
        assert (types.count(0) - 2, types.count(1) - 1) == (keep_a, keep_b)
        assert types == hf(a, b, truncation=True, max_length=max_length)["token_type_ids"]


def test_truncation_edge_cases_match_transformers(ours, hf):
    """Every strategy, with and without special tokens, for max_length 1..11 and short texts.

    Where transformers raises (only_first/only_second would cut their sequence to
    nothing), we raise a ValueError; elsewhere the ids are the same, including when
    max_length leaves no room for text at all. Only a max_length below the number of
    special tokens differs on purpose: transformers then ignores it, we raise.
    """
    texts = ["", "a", "a b", "a b c d e f"]
    compared = raised = 0
    for first, second, strategy, special, max_length in itertools.product(
        texts, texts + [None], ["longest_first", "only_first", "only_second"], [True, False], range(1, 12)
    ):
        if second is None and strategy == "only_second":
            continue
        pair = None if second is None else [second]
        kwargs = {"truncation": strategy, "max_length": max_length, "add_special_tokens": special}
        n_special = (2 if second is None else 3) if special else 0
        if max_length < n_special:
            with pytest.raises(ValueError, match=f"max_length={max_length} is smaller than the {n_special}"):
                ours([first], pair, **kwargs)
            continue
        try:
            expected = hf([first], pair, **kwargs)["input_ids"]
        except Exception as error:  # the Rust tokenizer raises a bare Exception
            assert "Sequence to truncate too short" in str(error)
            with pytest.raises(ValueError, match=f"truncation='{strategy}' would cut all"):
                ours([first], pair, **kwargs)
            raised += 1
            continue
        assert ours([first], pair, **kwargs)["input_ids"] == expected, kwargs
        compared += 1
    assert (compared, raised) == (996, 132)


def test_truncation_that_would_empty_a_sequence(ours):
    """Regression: only_first/only_second used to cut their sequence to nothing silently."""
    # Before: [CLS] [SEP] hello [SEP], the first sequence gone. Now an error that says the fix.
    message = (
        "truncation='only_first' would cut all 1 tokens of the first sequence: the second sequence "
        "(1 tokens, which 'only_first' never cuts) and 3 special tokens already take 4 of max_length=4. "
        "Use max_length >= 5, or truncation='longest_first'"
    )
    with pytest.raises(ValueError) as error:
        ours("world", "hello", truncation="only_first", max_length=4)
    assert str(error.value) == message
    with pytest.raises(ValueError, match=r"text\[1\]: truncation='only_second' would cut all 2 tokens"):
        ours(["a", "a b c"], ["b", "x y"], truncation="only_second", max_length=6)
    assert ours("world", "hello", truncation="only_first", max_length=5)["input_ids"] == [101, 2088, 102, 7592, 102]
    # longest_first may empty the shorter sequence, as transformers does (6 + 1 into 1 keeps 1 + 0).
    assert ours("a b c d e f", "x", truncation=True, max_length=4)["input_ids"] == [101, 1037, 102, 102]
    # No room for text at all: every strategy keeps only the special tokens, as transformers does.
    for strategy in ("longest_first", "only_first", "only_second"):
        assert ours("a b", "c", truncation=strategy, max_length=3)["input_ids"] == [101, 102, 102]
    assert ours("a b", truncation=True, max_length=2)["input_ids"] == [101, 102]


def test_empty_text_pair_is_still_a_pair(ours, hf):
    """`tok("a", "")` is `[CLS] a [SEP] [SEP]`, as in transformers' batched call and the Rust
    tokenizer. transformers' single-string call tests `if text_pair` and drops an empty pair:
    we do not copy that, so that one text and a batch of one give the same ids."""
    assert ours("a", "")["input_ids"] == hf(["a"], [""])["input_ids"][0] == [101, 1037, 102, 102]
    assert hf.backend_tokenizer.encode("a", "").ids == [101, 1037, 102, 102]
    assert hf("a", "")["input_ids"] == [101, 1037, 102]  # the quirk we leave out


def test_truncation_defaults_to_model_max_length(ours):
    assert ours.model_max_length == 512  # from tokenizer_config.json
    assert len(ours("word " * 1000, truncation=True)["input_ids"]) == 512
    assert len(ours("word " * 1000)["input_ids"]) == 1002  # no truncation unless asked
    assert len(ours("a", padding="max_length")["input_ids"]) == 512


def test_encode_and_batch_encoding(ours):
    assert ours.encode("hello world") == [101, 7592, 2088, 102]
    assert ours.encode("hello", "world", add_special_tokens=False) == [7592, 2088]
    batch = ours(("hello", "hello world"), padding=True, return_tensors="pt").to("cpu")
    assert type(batch).__name__ == "BatchEncoding" and batch["input_ids"].shape == (2, 4)
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]


def test_special_token_ids_and_masks_match_transformers(ours, hf):
    assert ours.vocab_size == hf.vocab_size == 30522
    for name in ("cls_token_id", "sep_token_id", "pad_token_id", "mask_token_id", "unk_token_id"):
        assert getattr(ours, name) == getattr(hf, name)
    assert sorted(ours.all_special_ids) == sorted(hf.all_special_ids) == [0, 100, 101, 102, 103]
    ids = ours("hello [MASK] world", padding="max_length", max_length=8)["input_ids"]
    assert ours.get_special_tokens_mask(ids, already_has_special_tokens=True) == hf.get_special_tokens_mask(
        ids, already_has_special_tokens=True
    ) == [1, 0, 1, 0, 1, 1, 1, 1]
    assert ours.get_special_tokens_mask([7, 8], [9]) == [1, 0, 0, 1, 0, 1]
    assert ours.convert_ids_to_tokens(ids) == hf.convert_ids_to_tokens(ids)
    tokens = ["hello", "zzzqqq", "[PAD]"]
    assert ours.convert_tokens_to_ids(tokens) == hf.convert_tokens_to_ids(tokens) == [7592, 100, 0]


# ---------------------------------------------------------------------------------------
# Decoding


def test_decode_matches_transformers(data_dir, ours, hf):
    texts = [record["sentence"] for record in load_sst2("dev")][:300] + TRICKY_TEXTS
    for ids in ours(texts)["input_ids"]:
        assert ours.decode(ids) == hf.decode(ids)
        assert ours.decode(ids, skip_special_tokens=True) == hf.decode(ids, skip_special_tokens=True)
    rng = random.Random(0)  # random id sequences, with punctuation and ## pieces mixed in
    punctuation = ours.convert_tokens_to_ids([".", ",", "?", "!", "'", "s", "t", "n", "##s", "[SEP]"])
    for _ in range(300):
        ids = [rng.choice(punctuation) if rng.random() < 0.4 else rng.randrange(30522) for _ in range(12)]
        assert ours.decode(ids) == hf.decode(ids)
        skipped = hf.decode(ids, skip_special_tokens=True)
        assert ours.decode(torch.tensor(ids), skip_special_tokens=True) == skipped
    assert ours.decode([]) == ""
    assert ours.decode(ours.encode("Hello , world . Isn't it ?")) == "[CLS] hello, world. isn ' t it? [SEP]"


def test_decode_then_encode_round_trip(data_dir, ours):
    for record in load_sst2("dev"):
        ids = ours(record["sentence"])["input_ids"]
        assert ours(ours.decode(ids, skip_special_tokens=True))["input_ids"] == ids
    batch = torch.tensor([[101, 7592, 102], [101, 2088, 102]])
    assert ours.batch_decode(batch) == ["[CLS] hello [SEP]", "[CLS] world [SEP]"]


# ---------------------------------------------------------------------------------------
# Saving and loading


def test_save_pretrained_loads_in_transformers_and_back(tmp_path, ours):
    written = ours.save_pretrained(tmp_path / "saved")
    assert sorted(p.rsplit("/", 1)[-1] for p in written) == ["tokenizer_config.json", "vocab.txt"]
    reloaded = BertTokenizer.from_pretrained(tmp_path / "saved")
    theirs = HFBertTokenizer.from_pretrained(tmp_path / "saved")
    assert reloaded.ids_to_tokens == ours.ids_to_tokens and reloaded.model_max_length == 512
    text = "Héllo wörld [MASK] 北京 unaffable!"
    assert reloaded.tokenize(text) == theirs.tokenize(text) == ours.tokenize(text)
    assert reloaded(text, "pair")["input_ids"] == theirs(text, "pair")["input_ids"]
    # A cased tokenizer keeps its settings through the files.
    cased = BertTokenizer(vocab=ours.ids_to_tokens, do_lower_case=False, model_max_length=128)
    cased.save_pretrained(tmp_path / "cased")
    theirs_cased = HFBertTokenizer.from_pretrained(tmp_path / "cased")
    assert BertTokenizer.from_pretrained(tmp_path / "cased").model_max_length == 128
    assert theirs_cased.model_max_length == 128
    # The uncased vocabulary has no capital letters, so a cased tokenizer cannot spell "Hello".
    assert theirs_cased.tokenize("Hello world") == cased.tokenize("Hello world") == ["[UNK]", "world"]


def test_vocab_file_round_trip(tmp_path):
    path = write_vocab(GOOGLE_VOCAB, tmp_path / "vocab.txt")
    assert path.read_text(encoding="utf-8").splitlines() == GOOGLE_VOCAB
    assert load_vocab(path) == GOOGLE_VOCAB
    assert BertTokenizer(path).tokenize("unwanted") == ["un", "##want", "##ed"]
    assert BertTokenizer(path).ids_to_tokens == BertTokenizer(vocab=GOOGLE_VOCAB).ids_to_tokens == GOOGLE_VOCAB


# ---------------------------------------------------------------------------------------
# Training a vocabulary


def test_train_wordpiece_tiny_corpus_exact():
    # Hugging Face course corpus: hug x10, pug x5, pun x12, bun x4, hugs x5.
    corpus = ["hug"] * 10 + ["pug"] * 5 + ["pun"] * 12 + ["bun"] * 4 + ["Hugs"] * 5
    # Characters: h p b, ##u ##g ##n ##s. Counts: ##u 36, ##g 20, p 17, ##n 16, h 15, ##s 5, b 4.
    # 1st merge: (##g, ##s) scores 5 / (20 * 5) = 1/20; every other pair scores 1/36.
    # 2nd: all pairs tie at 1/36; the most frequent wins: (p, ##u), 17 times -> "pu".
    # 3rd: ##u is left 19 times; (h, ##u) 15/(15*19), (b, ##u) 4/(4*19) and (##u, ##gs)
    #      5/(19*5) tie at 1/19, ahead of (pu, ##n) 12/(17*16); h ##u is most frequent -> "hu".
    vocab = train_wordpiece(corpus, vocab_size=15)
    assert vocab == SPECIALS + ["##g", "##n", "##s", "##u", "b", "h", "p"] + ["##gs", "pu", "hu"]
    tok = BertTokenizer(vocab=vocab)
    assert tok.tokenize("hugs hug Pun") == ["hu", "##gs", "hu", "##g", "pu", "##n"]

    # With room to spare, merging stops once every word is one token: 21 < vocab_size.
    bigger = train_wordpiece(corpus, vocab_size=25, min_frequency=1)
    assert bigger == vocab + ["bu", "hugs", "hug", "bun", "pun", "pug"]
    # min_frequency=6 rules out ##g+##s (5 times): ##ug (20 times, ties at 1/36), ##un
    # (16/(16*16)), hug (15/(15*20)), pun; every pair left occurs at most 5 times.
    assert train_wordpiece(corpus, vocab_size=25, min_frequency=6)[12:] == ["##ug", "##un", "hug", "pun"]
    assert train_wordpiece(corpus, vocab_size=25, min_frequency=100) == vocab[:12]  # no pair that frequent
    reordered = ["[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]"]
    assert train_wordpiece(corpus, vocab_size=12, special_tokens=reordered)[:5] == reordered
    cased = train_wordpiece(corpus, vocab_size=13, lowercase=False)
    assert "H" in cased and "h" in cased


def test_train_wordpiece_frequency_scoring_merges_the_most_frequent_pair():
    # The same corpus with BPE's rule. Pair counts: ##u ##g 20, p ##u 17, ##u ##n 16, h ##u 15.
    # 1st: ##u + ##g -> "##ug" (20). Then ##u ##n 16 > h ##ug 15 > p ##u 12 -> "##un".
    # 3rd: h ##ug 15 > p ##un 12 -> "hug" (the Hugging Face course's BPE example: ug, un, hug).
    corpus = ["hug"] * 10 + ["pug"] * 5 + ["pun"] * 12 + ["bun"] * 4 + ["Hugs"] * 5
    vocab = train_wordpiece(corpus, vocab_size=15, scoring="frequency")
    assert vocab[:12] == train_wordpiece(corpus, vocab_size=12)  # same start as "likelihood"
    assert vocab[12:] == ["##ug", "##un", "hug"]
    assert BertTokenizer(vocab=vocab).tokenize("hugs pun") == ["hug", "##s", "p", "##un"]
    with pytest.raises(ValueError, match='scoring must be "likelihood" or "frequency"'):
        train_wordpiece(corpus, vocab_size=15, scoring="bpe")


def naive_train_wordpiece(texts, vocab_size, min_frequency, scoring="likelihood"):
    """The same algorithm, recounting everything after every merge, with exact fractions:
    slow, but obviously right."""
    word_counts = Counter(word for text in texts for word in BasicTokenizer().tokenize(text))
    splits = {word: [word[0]] + ["##" + c for c in word[1:]] for word in word_counts}
    vocab = SPECIALS + sorted({piece for pieces in splits.values() for piece in pieces})
    while len(vocab) < vocab_size:
        piece_counts, pair_counts = Counter(), Counter()
        for word, pieces in splits.items():
            for piece in pieces:
                piece_counts[piece] += word_counts[word]
            for pair in zip(pieces, pieces[1:]):
                pair_counts[pair] += word_counts[word]
        frequent = sorted(pair for pair, n in pair_counts.items() if n >= min_frequency)
        if not frequent:
            break
        def score(pair):
            if scoring == "frequency":
                return pair_counts[pair]
            return Fraction(pair_counts[pair], piece_counts[pair[0]] * piece_counts[pair[1]])

        # max() keeps the first of equal keys, and `frequent` is sorted: the alphabetically first.
        a, b = max(frequent, key=lambda pair: (score(pair), pair_counts[pair]))
        merged = a + b.removeprefix("##")
        if merged not in vocab:
            vocab.append(merged)
        for word, pieces in splits.items():
            out, i = [], 0
            while i < len(pieces):
                if pieces[i : i + 2] == [a, b]:
                    out.append(merged)
                    i += 2
                else:
                    out.append(pieces[i])
                    i += 1
            splits[word] = out
    return vocab


def test_train_wordpiece_equals_naive_recount(data_dir):
    """The incremental counts of train_wordpiece give the same merges as recounting."""
    texts = [record["sentence"] for record in load_sst2("dev")][:150]
    start = len(train_wordpiece(texts, vocab_size=10_000, min_frequency=10**9))  # specials + characters
    for scoring in ("likelihood", "frequency"):  # "frequency" finds its pairs with a heap
        for min_frequency in (1, 3):
            expected = naive_train_wordpiece(texts, start + 120, min_frequency, scoring)
            assert train_wordpiece(texts, start + 120, min_frequency, scoring=scoring) == expected
            assert len(expected) == start + 120


def test_train_wordpiece_on_wikitext2_valid(data_dir):
    """The chapter's setting: ~200k words, 5,000 tokens (a few seconds)."""
    lines = read_wikitext2_lines("valid")
    vocab = train_wordpiece(lines, vocab_size=5000)
    assert len(vocab) == len(set(vocab)) == 5000
    assert vocab[:5] == SPECIALS
    assert sum(token.startswith("##") for token in vocab) > 1000
    tok = BertTokenizer(vocab=vocab)
    words = {word for line in lines for word in tok.basic_tokenizer.tokenize(line)}
    assert len(words) > 10_000
    assert all(tok.unk_token not in tok.wordpiece_tokenizer.tokenize_word(word) for word in words)


# ---------------------------------------------------------------------------------------
# Bad input: a clear error that says what to fix


def test_bad_input_raises_clear_errors(ours, tmp_path):
    with pytest.raises(TypeError, match="text must be a str, got NoneType"):
        ours.tokenize(None)
    with pytest.raises(TypeError, match=r"got bytes: decode it first"):
        ours(b"hello")
    with pytest.raises(TypeError, match=r"text\[1\] must be a str, got int"):
        ours(["fine", 3])
    with pytest.raises(TypeError, match=r"text_pair\[0\] must be a str"):
        ours(["a"], [None])
    with pytest.raises(ValueError, match="text has 2 items but text_pair has 1"):
        ours(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="max_length=2 is smaller than the 3 special tokens"):
        ours("a", "b", truncation=True, max_length=2)
    with pytest.raises(ValueError, match="max_length=1 is smaller than the 2 special tokens"):
        ours("a", truncation=True, max_length=1)
    with pytest.raises(ValueError, match="padding='left' is not one of"):
        ours("a", padding="left")
    with pytest.raises(ValueError, match="truncation='yes' is not one of"):
        ours("a", truncation="yes")
    with pytest.raises(ValueError, match="return_tensors='tf'"):
        ours("a", return_tensors="tf")
    with pytest.raises(ValueError, match="has no effect without truncation=True"):
        ours("a", max_length=8)
    with pytest.raises(ValueError, match="different lengths .* pass padding=True"):
        ours(["a", "a b c"], return_tensors="pt")
    with pytest.raises(ValueError, match="'only_second' would cut all 1 tokens of the second sequence"):
        ours("a b c d e f", "x", truncation="only_second", max_length=6)
    with pytest.raises(ValueError, match="token id 40000 is outside the vocabulary"):
        ours.decode([101, 40000])
    with pytest.raises(ValueError, match="use batch_decode"):
        ours.decode(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(FileNotFoundError, match="no vocabulary file at .*missing.txt"):
        BertTokenizer(tmp_path / "missing.txt")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "tokenizer_config.json").write_text('{"do_basic_tokenize": false}')
    with pytest.raises(ValueError, match="do_basic_tokenize=false"):
        BertTokenizer.from_pretrained(tmp_path / "odd")
    with pytest.raises(FileNotFoundError, match="not a folder"):
        BertTokenizer.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="give exactly one of vocab_file"):
        BertTokenizer()
    with pytest.raises(ValueError, match=r"special tokens \['\[MASK\]'\] are not in the vocabulary"):
        BertTokenizer(vocab=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"])
    with pytest.raises(ValueError, match="token 'a' appears twice"):
        BertTokenizer(vocab=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "a"])
    with pytest.raises(TypeError, match="not one string: wrap it"):
        train_wordpiece("one text", vocab_size=100)
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str"):
        train_wordpiece(["ok", None], vocab_size=100)
    with pytest.raises(ValueError, match="vocab_size=8 is too small: .* make 12"):
        train_wordpiece(["hug pug pun bun hugs"], vocab_size=8)


def _tokenizer_folder(folder, config=None, tokens=None):
    """A tokenizer folder with `tokens` as vocab.txt (GOOGLE_VOCAB by default) and `config` as JSON."""
    folder.mkdir()
    (folder / "vocab.txt").write_text("".join(t + "\n" for t in tokens or GOOGLE_VOCAB), encoding="utf-8")
    if config is not None:
        text = config if isinstance(config, str) else json.dumps(config)
        (folder / "tokenizer_config.json").write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    "field, value, error",
    [
        ("do_lower_case", "false", TypeError),  # a string: Python would read it as True
        ("do_lower_case", "true", TypeError),
        ("do_lower_case", 0, TypeError),
        ("tokenize_chinese_chars", "false", TypeError),
        ("strip_accents", "false", TypeError),
        ("do_basic_tokenize", "false", TypeError),
        ("model_max_length", "512", TypeError),
        ("model_max_length", 512.0, TypeError),
        ("model_max_length", True, TypeError),
        ("model_max_length", 0, ValueError),
        ("unk_token", 100, TypeError),
        ("cls_token", "", ValueError),
    ],
)
def test_config_values_of_the_wrong_type_name_the_file_and_field(tmp_path, field, value, error):
    folder = _tokenizer_folder(tmp_path / "tok", {field: value})
    config_file = folder / "tokenizer_config.json"
    with pytest.raises(error) as caught:
        BertTokenizer.from_pretrained(folder)
    message = str(caught.value)
    assert message.startswith(f"{config_file}: {field} must be ") and message.endswith(f", got {value!r}")


def test_config_file_checks(tmp_path, minilm_dir):
    # transformers refuses a string boolean too, with a message that names neither file nor field.
    folder = _tokenizer_folder(tmp_path / "string", {"do_lower_case": "false"})
    with pytest.raises(TypeError):
        HFBertTokenizer.from_pretrained(folder)
    message = r"tokenizer_config.json: do_lower_case must be true or false \(a boolean, not a string\), got 'false'"
    with pytest.raises(TypeError, match=message):
        BertTokenizer.from_pretrained(folder)
    # The same checks apply to arguments.
    with pytest.raises(TypeError, match="do_lower_case must be true or false"):
        BertTokenizer(vocab=GOOGLE_VOCAB, do_lower_case="false")
    with pytest.raises(TypeError, match="strip_accents must be true, false or null/None"):
        BasicTokenizer(strip_accents="no")
    with pytest.raises(ValueError, match="model_max_length must be a positive integer, got -1"):
        BertTokenizer(vocab=GOOGLE_VOCAB, model_max_length=-1)
    # Good values: booleans, null, a huge model_max_length (transformers' "no limit"), and
    # special tokens stored as {"content": ...}.
    good = {"do_lower_case": False, "strip_accents": None, "model_max_length": int(1e30),
            "mask_token": {"content": "[MASK]", "lstrip": False}, "never_split": None}  # fmt: skip
    folder = _tokenizer_folder(tmp_path / "good", good)
    expected = {"do_lower_case": False, "strip_accents": None, "model_max_length": int(1e30), "mask_token": "[MASK]"}
    assert read_tokenizer_config(folder / "tokenizer_config.json") == expected
    assert BertTokenizer.from_pretrained(folder).tokenize("UNwanted") == ["[UNK]"]  # cased: "UN" is unknown
    assert read_tokenizer_config(minilm_dir / "tokenizer_config.json")["do_lower_case"] is True
    # Not JSON, or not an object.
    folder = _tokenizer_folder(tmp_path / "broken", '{"do_lower_case": true,}')
    with pytest.raises(ValueError, match=re.escape(f"{folder / 'tokenizer_config.json'}: not valid JSON")):
        BertTokenizer.from_pretrained(folder)
    folder = _tokenizer_folder(tmp_path / "list", "[1, 2]")
    with pytest.raises(ValueError, match="must hold a JSON object"):
        BertTokenizer.from_pretrained(folder)


def test_vocab_file_problems_name_the_file(tmp_path):
    folder = _tokenizer_folder(tmp_path / "no_unk", tokens=[t for t in GOOGLE_VOCAB if t != "[UNK]"])
    vocab_file = re.escape(str(folder / "vocab.txt"))
    with pytest.raises(ValueError, match=rf"^{vocab_file}: special tokens \['\[UNK\]'\] are not in"):
        BertTokenizer.from_pretrained(folder)
    folder = _tokenizer_folder(tmp_path / "twice", tokens=GOOGLE_VOCAB + ["want"])
    vocab_file = re.escape(str(folder / "vocab.txt"))
    with pytest.raises(ValueError, match=rf"^{vocab_file}: token 'want' appears twice \(ids 5 and 13\)"):
        BertTokenizer.from_pretrained(folder)
    folder = _tokenizer_folder(tmp_path / "blank", tokens=GOOGLE_VOCAB[:6] + [""] + GOOGLE_VOCAB[6:])
    vocab_file = re.escape(str(folder / "vocab.txt"))
    with pytest.raises(ValueError, match=rf"^{vocab_file}: token 6 \(''\) is empty"):
        BertTokenizer.from_pretrained(folder)
