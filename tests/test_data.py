"""Tests of bertedu.data and bertedu.datafiles: official counts on the real files, exact first
records, the IOB1 -> IOB2 conversion, the SMS split, and the download path against a local HTTP
server."""
import gzip
import hashlib
import http.server
import io
import json
import os
import socket
import threading
import zipfile
from collections import Counter
from types import SimpleNamespace

import pytest
from seqeval.metrics.sequence_labeling import get_entities
from seqeval.scheme import IOB2, Entities

from bertedu import data, datafiles
from bertedu.data import (
    CONLL_NER_LABELS,
    iob1_to_iob2,
    load_conll2003,
    load_mrpc,
    load_rte,
    load_smsspam,
    load_squad,
    load_sst2,
    load_stsb,
    load_wikitext2,
    read_wikitext2_lines,
    split_smsspam,
)
from bertedu.datafiles import RemoteFile, dataset_file


@pytest.fixture
def real_data(data_dir, monkeypatch):
    """Read the course's copy; an empty cache, so nothing could come from elsewhere."""
    monkeypatch.setenv("BERTEDU_DATA", str(data_dir))
    return data_dir


# ---------------------------------------------------------------------------------------
# Official counts and first records


@pytest.mark.parametrize("split, lines, tokens", [
    ("train", 36_718, 2_088_628), ("valid", 3_760, 217_646), ("test", 4_358, 245_569)])
def test_wikitext2_lines_give_the_official_token_counts(real_data, split, lines, tokens):
    read = read_wikitext2_lines(split)
    assert len(read) == lines
    assert sum(len(line.split()) + 1 for line in read) == tokens  # +1: one <eos> per line


@pytest.mark.parametrize("split, article_count", [("train", 600), ("valid", 60), ("test", 60)])
def test_wikitext2_articles_keep_every_paragraph(real_data, split, article_count):
    lines = read_wikitext2_lines(split)
    articles = load_wikitext2(split)
    assert len(articles) == article_count  # WikiText-2 has 600 / 60 / 60 articles
    blank = sum(1 for line in lines if not line.strip())
    sections = sum(1 for line in lines if line.strip().startswith("= ="))
    paragraphs = [p for article in articles for p in article["paragraphs"]]
    # Every line is a blank, a section heading, a title or a paragraph: nothing is lost.
    assert len(paragraphs) == len(lines) - blank - sections - len(articles)
    assert all(p == p.strip() and p and not p.startswith("= =") for p in paragraphs)


def test_wikitext2_first_article_and_formula_lines(real_data):
    valid = load_wikitext2("valid")
    assert valid[0]["title"] == "Homarus gammarus"
    assert valid[0]["paragraphs"][0].startswith("Homarus gammarus , known as the European lobster")
    test = load_wikitext2("test")
    assert test[0]["title"] == "Robert <unk>"
    # Two displayed formulas look like titles but sit inside a paragraph run: they stay text.
    constant_k = next(a for a in test if a["title"] == "Constant k filter")
    assert "= 1 <unk> and <unk> C =" in constant_k["paragraphs"]
    assert "1 <unk> and <unk> C" not in [a["title"] for a in test]


def test_sst2_counts_and_first_records(real_data):
    train, dev, test = load_sst2("train"), load_sst2("dev"), load_sst2("test")
    assert (len(train), len(dev), len(test)) == (67_349, 872, 1_821)
    assert Counter(r["label"] for r in train) == {1: 37_569, 0: 29_780}
    assert Counter(r["label"] for r in dev) == {1: 444, 0: 428}
    assert {r["label"] for r in test} == {None}
    assert train[0] == {"sentence": "hide new secretions from the parental units", "label": 0}
    assert dev[0] == {"sentence": "it 's a charming and often affecting journey .", "label": 1}
    assert test[0] == {"sentence": "uneasy mishmash of styles and genres .", "label": None}
    assert not any(r["sentence"].endswith(" ") for r in train)  # the files' trailing space is gone


def test_smsspam_counts_and_first_record(real_data):
    records = load_smsspam()
    assert len(records) == 5_574
    assert Counter(r["label"] for r in records) == {0: 4_827, 1: 747}
    assert records[0] == {
        "text": "Go until jurong point, crazy.. Available only in bugis n great world la e buffet... "
                "Cine there got amore wat...",
        "label": 0,
    }


def test_mrpc_counts_and_first_records(real_data):
    train, dev, test = load_mrpc("train"), load_mrpc("dev"), load_mrpc("test")
    assert (len(train), len(dev), len(test)) == (3_668, 408, 1_725)
    assert Counter(r["label"] for r in train) == {1: 2_474, 0: 1_194}
    assert Counter(r["label"] for r in dev) == {1: 279, 0: 129}
    assert train[0] == {
        "sentence1": 'Amrozi accused his brother , whom he called " the witness " , of deliberately '
                     "distorting his evidence .",
        "sentence2": 'Referring to him as only " the witness " , Amrozi accused his brother of '
                     "deliberately distorting his evidence .",
        "label": 1, "id1": "702876", "id2": "702977",
    }
    assert (test[0]["id1"], test[0]["id2"], test[0]["label"]) == ("1089874", "1089925", 1)


def _glue_rows(path, bom):
    text = path.read_text(encoding="utf-8")
    assert text.startswith("\ufeff") == bom
    return [tuple(line.split("\t")) for line in text.lstrip("\ufeff").split("\n")[1:] if line]


def test_mrpc_equals_the_stored_glue_files(real_data):
    # load_mrpc rebuilds the splits from the Microsoft files; GLUE's tsv files must agree.
    for split, bom in [("train", True), ("dev", True)]:
        expected = _glue_rows(real_data / "mrpc" / f"{split}.tsv", bom)
        got = [(str(r["label"]), r["id1"], r["id2"], r["sentence1"], r["sentence2"])
               for r in load_mrpc(split)]
        assert got == expected
    expected = [row[1:] for row in _glue_rows(real_data / "mrpc" / "test.tsv", bom=False)]
    got = [(r["id1"], r["id2"], r["sentence1"], r["sentence2"]) for r in load_mrpc("test")]
    assert got == expected


def test_rte_counts_and_first_records(real_data):
    train, dev, test = load_rte("train"), load_rte("dev"), load_rte("test")
    assert (len(train), len(dev), len(test)) == (2_490, 277, 3_000)
    assert Counter(r["label"] for r in train) == {0: 1_249, 1: 1_241}  # 0 = entailment
    assert Counter(r["label"] for r in dev) == {0: 146, 1: 131}
    assert {r["label"] for r in test} == {None}
    assert train[0] == {"sentence1": "No Weapons of Mass Destruction Found in Iraq Yet.",
                        "sentence2": "Weapons of Mass Destruction Found in Iraq.", "label": 1}
    assert train[1]["label"] == 0


def test_stsb_counts_and_first_records(real_data):
    train, dev, test = load_stsb("train"), load_stsb("dev"), load_stsb("test")
    assert (len(train), len(dev), len(test)) == (5_749, 1_500, 1_379)
    assert train[:2] == [
        {"sentence1": "A plane is taking off.", "sentence2": "An air plane is taking off.",
         "score": 5.0},
        {"sentence1": "A man is playing a large flute.", "sentence2": "A man is playing a flute.",
         "score": 3.8},
    ]
    assert all(isinstance(r["score"], float) and 0.0 <= r["score"] <= 5.0 for r in train + dev)
    assert {r["score"] for r in test} == {None}


@pytest.mark.parametrize("split, sentences, tokens, entities", [
    ("train", 14_041, 203_621, {"PER": 6_600, "LOC": 7_140, "ORG": 6_321, "MISC": 3_438}),
    ("dev", 3_250, 51_362, {"PER": 1_842, "LOC": 1_837, "ORG": 1_341, "MISC": 922}),
    ("test", 3_453, 46_435, {"PER": 1_617, "LOC": 1_668, "ORG": 1_661, "MISC": 702}),
])
def test_conll2003_official_counts(real_data, split, sentences, tokens, entities):
    records = load_conll2003(split)
    assert len(records) == sentences
    assert sum(len(r["tokens"]) for r in records) == tokens
    assert all(len(r["tokens"]) == len(r["pos_tags"]) == len(r["chunk_tags"]) == len(r["ner_tags"])
               for r in records)
    # In IOB2 every entity starts with exactly one B- tag.
    assert Counter(t[2:] for r in records for t in r["ner_tags"] if t.startswith("B-")) == entities
    assert {t for r in records for t in r["ner_tags"]} == set(CONLL_NER_LABELS)


def test_conll2003_first_record_matches_the_iob2_dataset(real_data):
    # The first sentence as the Hugging Face `conll2003` dataset (IOB2) has it.
    assert load_conll2003("train")[0] == {
        "tokens": ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."],
        "pos_tags": ["NNP", "VBZ", "JJ", "NN", "TO", "VB", "JJ", "NN", "."],
        "chunk_tags": ["B-NP", "B-VP", "B-NP", "I-NP", "B-VP", "I-VP", "B-NP", "I-NP", "O"],
        "ner_tags": ["B-ORG", "O", "B-MISC", "O", "O", "O", "B-MISC", "O", "O"],
    }


def test_conll2003_conversion_keeps_seqeval_entities(real_data):
    # Read the raw IOB1 NER column independently, and let seqeval find the entities: its
    # lenient reading of IOB1 must equal its strict IOB2 reading of our converted tags.
    raw, sentence = [], []
    for line in (real_data / "conll2003" / "eng.train").read_text(encoding="utf-8").split("\n"):
        if line.startswith("-DOCSTART-") or not line.strip():
            if sentence:
                raw.append(sentence)
            sentence = []
        else:
            sentence.append(line.split(" ")[3])
    converted = [r["ner_tags"] for r in load_conll2003("train")]
    assert len(raw) == len(converted)
    strict = Entities(converted, IOB2).entities
    for iob1_tags, iob2_entities in zip(raw, strict):
        lenient = [(kind, start, end + 1) for kind, start, end in get_entities(iob1_tags)]
        assert [(e.tag, e.start, e.end) for e in iob2_entities] == lenient


def test_squad_dev_counts_and_first_record(real_data):
    records = load_squad("dev")
    assert len(records) == 10_570
    assert len({(r["title"], r["context"]) for r in records}) == 2_067
    assert len({r["title"] for r in records}) == 48
    assert len({r["id"] for r in records}) == 10_570
    first = records[0]
    assert (first["id"], first["title"]) == ("56be4db0acb8001400a502ec", "Super_Bowl_50")
    assert first["question"] == "Which NFL team represented the AFC at Super Bowl 50?"
    assert first["answers"] == {"text": ["Denver Broncos"] * 3, "answer_start": [177] * 3}
    for r in records:  # every answer is the span of context it points at
        for text, start in zip(r["answers"]["text"], r["answers"]["answer_start"]):
            assert r["context"][start:start + len(text)] == text


# ---------------------------------------------------------------------------------------
# IOB1 -> IOB2 and the SMS split, on hand-made cases


@pytest.mark.parametrize("iob1, iob2", [
    ([], []),
    (["O", "O"], ["O", "O"]),
    (["I-PER", "I-PER", "O"], ["B-PER", "I-PER", "O"]),
    (["I-PER", "I-PER", "B-PER"], ["B-PER", "I-PER", "B-PER"]),  # two names side by side
    (["I-ORG", "I-LOC", "I-LOC"], ["B-ORG", "B-LOC", "I-LOC"]),  # a new type starts an entity
    (["O", "B-MISC", "I-MISC"], ["O", "B-MISC", "I-MISC"]),  # a stray B- (as in eng.train) stays
    (["I-LOC", "O", "I-LOC"], ["B-LOC", "O", "B-LOC"]),
])
def test_iob1_to_iob2(iob1, iob2):
    assert iob1_to_iob2(iob1) == iob2
    assert iob1_to_iob2(iob2) == iob2  # IOB2 input comes back unchanged


@pytest.mark.parametrize("tags", [["I-PER", "PER"], ["X-PER"], ["B-"], ["o"], [None]])
def test_iob1_to_iob2_rejects_bad_tags(tags):
    with pytest.raises(ValueError, match="position"):
        iob1_to_iob2(tags)


def test_split_is_stratified_and_deterministic():
    # 5 spam, 10 ham
    records = [{"text": f"m{i}", "label": 1 if i % 3 == 0 else 0} for i in range(15)]
    train, test = split_smsspam(records, test_fraction=0.2, seed=0)
    assert Counter(r["label"] for r in test) == {0: 2, 1: 1}
    assert Counter(r["label"] for r in train) == {0: 8, 1: 4}
    assert split_smsspam(records, test_fraction=0.2, seed=0) == (train, test)
    # Both halves keep the input order, and together hold each record once.
    assert sorted(map(id, train + test)) == sorted(map(id, records))
    assert [records.index(r) for r in test] == sorted(records.index(r) for r in test)
    # The held-out count per label is rounded, not truncated: 0.4 * 4 = 1.6 -> 2.
    four_each = [{"label": label} for label in (0, 1) for _ in range(4)]
    _, test = split_smsspam(four_each, test_fraction=0.4)
    assert Counter(r["label"] for r in test) == {0: 2, 1: 2}


def test_split_smsspam_on_the_real_collection(real_data):
    records = load_smsspam()
    train, test = split_smsspam(records)
    assert (len(train), len(test)) == (4_460, 1_114)
    # round(0.2 * 4827) ham and round(0.2 * 747) spam
    assert Counter(r["label"] for r in test) == {0: 965, 1: 149}
    assert not set(map(id, train)) & set(map(id, test))
    assert split_smsspam(records) == (train, test)
    _, other_test = split_smsspam(records, seed=1)
    assert [r["text"] for r in other_test] != [r["text"] for r in test]


@pytest.mark.parametrize("kwargs, message", [
    ({"test_fraction": 0.0}, "test_fraction"),
    ({"test_fraction": 1.0}, "test_fraction"),
    ({"records": []}, "empty"),
    ({"records": [{"text": "hi"}]}, "label"),
])
def test_split_smsspam_rejects_bad_arguments(kwargs, message):
    arguments = {"records": [{"text": "a", "label": 0}, {"text": "b", "label": 1}], **kwargs}
    with pytest.raises(ValueError, match=message):
        split_smsspam(**arguments)


# ---------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("loader, split", [
    (load_sst2, "validation"), (load_mrpc, "valid"), (load_rte, "Train"), (load_stsb, None),
    (load_conll2003, "testa"), (load_squad, "test"), (load_wikitext2, "dev"),
])
def test_unknown_split_is_rejected(loader, split):
    with pytest.raises(ValueError, match="split"):
        loader(split)


@pytest.mark.parametrize("path", ["", "/etc/passwd", "../secret.txt", "sst2/../../x", 3])
def test_dataset_file_rejects_paths_outside_the_data_folder(path):
    with pytest.raises(ValueError, match="relative_path"):
        dataset_file(path)


def test_malformed_files_name_the_file_and_line(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTEDU_DATA", str(tmp_path))
    monkeypatch.setenv("BERTEDU_CACHE", str(tmp_path / "cache"))
    for name in ("sst2/dev.tsv", "conll2003/eng.testa"):  # unregistered here, so the readers run
        monkeypatch.delitem(datafiles.REMOTE_FILES, name)
    (tmp_path / "sst2").mkdir()
    (tmp_path / "sst2" / "dev.tsv").write_text("sentence\tlabel\ngood film \t1\nbad film \t2\n")
    with pytest.raises(ValueError, match=r"dev\.tsv, line 3"):
        load_sst2("dev")
    (tmp_path / "sst2" / "dev.tsv").write_text("text,label\n")
    with pytest.raises(ValueError, match="header"):
        load_sst2("dev")
    (tmp_path / "conll2003").mkdir()
    (tmp_path / "conll2003" / "eng.testa").write_text("EU NNP I-NP I-ORG\nrejects VBZ\n")
    with pytest.raises(ValueError, match=r"eng\.testa, line 2"):
        load_conll2003("dev")


# ---------------------------------------------------------------------------------------
# Damaged files: a table of damages, each applied to a tiny, well-formed copy of one file

_STSB_HEADER = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2"
_MRPC_HEADER = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
_TINY_SQUAD = {"version": "1.1", "data": [{"title": "Paris", "paragraphs": [{
    "context": "Paris is big.",
    "qas": [{"id": "q1", "question": "What is big?",
             "answers": [{"answer_start": 0, "text": "Paris"}]}]}]}]}

# A tiny, well-formed copy of each file the loaders read (stored bytes).
TINY_FILES = {
    "sst2/dev.tsv": b"sentence\tlabel\ngood film \t1\nbad film \t0\n",
    "sst2/test.tsv": b"index\tsentence\n0\tfine film \n",
    "smsspam/SMSSpamCollection": b"ham\tSee you at 5 \nspam\tWIN a prize\tnow\n",
    "mrpc/msr_paraphrase_train.txt": (_MRPC_HEADER + "1\t1\t2\tA b .\tA b !\n"
                                      "0\t3\t4\tC d .\tE f .\n").encode(),
    "mrpc/dev_ids.tsv": b"3\t4\n",
    "mrpc/msr_paraphrase_test.txt": (_MRPC_HEADER + "1\t5\t6\tG h .\tG h !\n").encode(),
    "rte/dev.tsv": (b"index\tsentence1\tsentence2\tlabel\n"
                    b"0\tA cat sat.\tA cat exists.\tentailment\n"
                    b"1\tA dog ran.\tA cat ran.\tnot_entailment\n"),
    "stsb/dev.tsv": (f"{_STSB_HEADER}\tscore\n"
                     "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane takes off.\t"
                     "A plane is taking off.\t5.000\n"
                     "1\tmain-captions\tMSRvid\t2012test\t0004\tnone\tnone\tA man plays a flute.\t"
                     "A man plays.\t3.800\n").encode(),
    "conll2003/eng.testa": (b"-DOCSTART- -X- O O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\n\n"
                            b"Peter NNP I-NP I-PER\nBlackburn NNP I-NP I-PER\n"),
    "wikitext2/wiki.valid.tokens": (b" \n = Lobster = \n \n Lobsters live in the sea . \n \n"
                                    b" = = Habitat = = \n \n They like rocks . \n"),
    "squad/dev-v1.1.json.gz": gzip.compress(json.dumps(_TINY_SQUAD, indent=1).encode(), mtime=0),
}

# What each tiny copy must load as.
TINY_RECORDS = {
    "sst2/dev.tsv": [{"sentence": "good film", "label": 1}, {"sentence": "bad film", "label": 0}],
    "sst2/test.tsv": [{"sentence": "fine film", "label": None}],
    "smsspam/SMSSpamCollection": [{"text": "See you at 5 ", "label": 0},
                                  {"text": "WIN a prize\tnow", "label": 1}],
    "mrpc/msr_paraphrase_train.txt": [{"sentence1": "A b .", "sentence2": "A b !", "label": 1,
                                       "id1": "1", "id2": "2"}],
    "mrpc/dev_ids.tsv": [{"sentence1": "C d .", "sentence2": "E f .", "label": 0,
                          "id1": "3", "id2": "4"}],
    "mrpc/msr_paraphrase_test.txt": [{"sentence1": "G h .", "sentence2": "G h !", "label": 1,
                                      "id1": "5", "id2": "6"}],
    "rte/dev.tsv": [{"sentence1": "A cat sat.", "sentence2": "A cat exists.", "label": 0},
                    {"sentence1": "A dog ran.", "sentence2": "A cat ran.", "label": 1}],
    "stsb/dev.tsv": [{"sentence1": "A plane takes off.", "sentence2": "A plane is taking off.",
                      "score": 5.0},
                     {"sentence1": "A man plays a flute.", "sentence2": "A man plays.",
                      "score": 3.8}],
    "conll2003/eng.testa": [
        {"tokens": ["EU", "rejects"], "pos_tags": ["NNP", "VBZ"], "chunk_tags": ["B-NP", "B-VP"],
         "ner_tags": ["B-ORG", "O"]},
        {"tokens": ["Peter", "Blackburn"], "pos_tags": ["NNP", "NNP"],
         "chunk_tags": ["B-NP", "I-NP"], "ner_tags": ["B-PER", "I-PER"]}],
    "wikitext2/wiki.valid.tokens": [
        {"title": "Lobster", "paragraphs": ["Lobsters live in the sea .", "They like rocks ."]}],
    "squad/dev-v1.1.json.gz": [{"id": "q1", "title": "Paris", "context": "Paris is big.",
                                "question": "What is big?",
                                "answers": {"text": ["Paris"], "answer_start": [0]}}],
}

# The loader call that reads each file (MRPC's dev split reads both dev_ids and the train source).
LOADERS = {
    "sst2/dev.tsv": lambda: load_sst2("dev"),
    "sst2/test.tsv": lambda: load_sst2("test"),
    "smsspam/SMSSpamCollection": load_smsspam,
    "mrpc/msr_paraphrase_train.txt": lambda: load_mrpc("train"),
    "mrpc/dev_ids.tsv": lambda: load_mrpc("dev"),
    "mrpc/msr_paraphrase_test.txt": lambda: load_mrpc("test"),
    "rte/dev.tsv": lambda: load_rte("dev"),
    "stsb/dev.tsv": lambda: load_stsb("dev"),
    "conll2003/eng.testa": lambda: load_conll2003("dev"),
    "wikitext2/wiki.valid.tokens": lambda: load_wikitext2("valid"),
    "squad/dev-v1.1.json.gz": lambda: load_squad("dev"),
}


@pytest.fixture
def tiny_data(tmp_path, monkeypatch):
    """A data folder of the tiny copies, opted out of the registry so the loaders read them."""
    folder = tmp_path / "data"
    for relative_path, content in TINY_FILES.items():
        (folder / relative_path).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative_path).write_bytes(content)
        monkeypatch.delitem(datafiles.REMOTE_FILES, relative_path)
    monkeypatch.setenv("BERTEDU_DATA", str(folder))
    monkeypatch.setenv("BERTEDU_CACHE", str(tmp_path / "cache"))
    return folder


@pytest.mark.parametrize("relative_path", sorted(TINY_FILES))
def test_tiny_copies_load_exactly(tiny_data, relative_path):
    assert LOADERS[relative_path]() == TINY_RECORDS[relative_path]


# Damages. Each takes the stored bytes and returns the damaged bytes; SQuAD's go through gzip.
def _crlf(content):
    return content.replace(b"\n", b"\r\n")


def _without_last_line(content):
    return b"".join(content.splitlines(keepends=True)[:-1])


def _first_line_only(content):
    return content.splitlines(keepends=True)[0]


def _empty(content):
    return b""


def _replace(old, new):
    return lambda content: content.replace(old, new, 1)


def _in_squad(damage):
    return lambda content: gzip.compress(damage(gzip.decompress(content)), mtime=0)


def _squad_without(key):
    def damage(json_bytes):
        squad = json.loads(json_bytes)
        qa = squad["data"][0]["paragraphs"][0]["qas"][0]
        del qa[key]
        return json.dumps(squad, indent=1).encode()
    return damage


SAME_RECORDS = "the records of the tiny copy"

# file, damage, and what the loader must do with the damaged copy when the file is not in the
# registry: return these records, or raise a ValueError whose message names the file and matches
# this pattern (which names the line wherever the file is read line by line).
DAMAGED_FILES = [
    # SST-2
    pytest.param("sst2/dev.tsv", _without_last_line, [{"sentence": "good film", "label": 1}],
                 id="sst2-truncated-at-a-line-boundary"),
    pytest.param("sst2/dev.tsv", lambda content: content[:-3],
                 r", line 3: expected 'sentence<TAB>0 or 1'", id="sst2-cut-inside-a-line"),
    pytest.param("sst2/dev.tsv", _replace(b"\t1\n", b"\t2\n"),
                 r", line 2: expected 'sentence<TAB>0 or 1', found 'good film \\t2'",
                 id="sst2-label-not-in-the-set"),
    pytest.param("sst2/dev.tsv", _first_line_only, "holds no rows", id="sst2-header-only"),
    pytest.param("sst2/dev.tsv", _empty, "the file is empty", id="sst2-empty"),
    pytest.param("sst2/dev.tsv", _crlf, SAME_RECORDS, id="sst2-crlf"),
    pytest.param("sst2/dev.tsv", _replace(b"bad film", b"caf\xe9 film"),
                 r", line 3: the bytes b'\\xe9' are not UTF-8", id="sst2-latin-1-byte"),
    pytest.param("sst2/test.tsv", _first_line_only, "holds no rows", id="sst2-test-header-only"),
    pytest.param("sst2/test.tsv", _crlf, SAME_RECORDS, id="sst2-test-crlf"),
    # SMS Spam
    pytest.param("smsspam/SMSSpamCollection", _replace(b"spam\t", b"spm\t"),
                 r", line 2: unknown label 'spm'", id="sms-label-not-in-the-set"),
    pytest.param("smsspam/SMSSpamCollection", _replace(b"ham\t", b"ham "),
                 r", line 1: expected 'ham<TAB>text'", id="sms-no-tab"),
    pytest.param("smsspam/SMSSpamCollection", _empty, "holds no messages", id="sms-empty"),
    pytest.param("smsspam/SMSSpamCollection", _crlf, SAME_RECORDS, id="sms-crlf"),
    pytest.param("smsspam/SMSSpamCollection", _replace(b"prize", b"pri\xffze"),
                 r", line 2: the bytes b'\\xff' are not UTF-8", id="sms-bad-byte"),
    # MRPC
    pytest.param("mrpc/msr_paraphrase_train.txt", _replace(b"\n1\t1", b"\n2\t1"),
                 r", line 2: unknown label '2'", id="mrpc-label-not-in-the-set"),
    pytest.param("mrpc/msr_paraphrase_train.txt", _first_line_only, "holds no rows",
                 id="mrpc-header-only"),
    pytest.param("mrpc/msr_paraphrase_train.txt", _empty, "the file is empty", id="mrpc-empty"),
    pytest.param("mrpc/msr_paraphrase_train.txt", _crlf, SAME_RECORDS, id="mrpc-crlf"),
    pytest.param("mrpc/dev_ids.tsv", _crlf, SAME_RECORDS, id="mrpc-dev-ids-crlf"),
    pytest.param("mrpc/dev_ids.tsv", _empty, "holds no id pairs", id="mrpc-dev-ids-empty"),
    pytest.param("mrpc/dev_ids.tsv", _replace(b"3\t4", b"3\t9"),
                 r"msr_paraphrase_train\.txt: it lacks 1 of the pairs", id="mrpc-dev-pair-missing"),
    pytest.param("mrpc/msr_paraphrase_test.txt", _first_line_only, "holds no rows",
                 id="mrpc-test-header-only"),
    pytest.param("mrpc/msr_paraphrase_test.txt", _crlf, SAME_RECORDS, id="mrpc-test-crlf"),
    # RTE
    pytest.param("rte/dev.tsv", _replace(b"not_entailment", b"neutral"),
                 r", line 3: unknown label 'neutral'", id="rte-label-not-in-the-set"),
    pytest.param("rte/dev.tsv", _replace(b"\tentailment", b" entailment"),
                 r", line 2: expected 4 tab-separated fields, found 3", id="rte-missing-tab"),
    pytest.param("rte/dev.tsv", _first_line_only, "holds no rows", id="rte-header-only"),
    pytest.param("rte/dev.tsv", _crlf, SAME_RECORDS, id="rte-crlf"),
    # STS-B
    pytest.param("stsb/dev.tsv", _replace(b"\t3.800", b"\tnan"),
                 r", line 3: the score must be a number from 0 to 5, found 'nan'", id="stsb-nan"),
    pytest.param("stsb/dev.tsv", _replace(b"\t5.000", b"\t7.5"),
                 r", line 2: the score must be a number from 0 to 5, found '7.5'", id="stsb-7.5"),
    pytest.param("stsb/dev.tsv", _replace(b"\t5.000", b"\t-0.5"), r", line 2: the score",
                 id="stsb-negative"),
    pytest.param("stsb/dev.tsv", _replace(b"\t5.000", b"\tinf"), r", line 2: the score",
                 id="stsb-inf"),
    pytest.param("stsb/dev.tsv", _replace(b"\t5.000", b"\tfive"), r", line 2: the score",
                 id="stsb-not-a-number"),
    pytest.param("stsb/dev.tsv", _first_line_only, "holds no rows", id="stsb-header-only"),
    pytest.param("stsb/dev.tsv", _crlf, SAME_RECORDS, id="stsb-crlf"),
    # CoNLL-2003
    pytest.param("conll2003/eng.testa", _replace(b"I-PER\n", b"I-PERSON\n"),
                 r", line 6: unknown NER tag 'I-PERSON'", id="conll-unknown-ner-tag"),
    pytest.param("conll2003/eng.testa", _replace(b"VBZ I-VP", b"VBZ VP"),
                 r", line 4: chunk tag 'VP' is not", id="conll-bad-chunk-tag"),
    pytest.param("conll2003/eng.testa", _replace(b"EU NNP", b"EU  NNP"),
                 r", line 3: expected 4 columns", id="conll-double-space"),
    pytest.param("conll2003/eng.testa", _first_line_only, "holds no sentences",
                 id="conll-docstart-only"),
    pytest.param("conll2003/eng.testa", _empty, "holds no sentences", id="conll-empty"),
    pytest.param("conll2003/eng.testa", _crlf, SAME_RECORDS, id="conll-crlf"),
    pytest.param("conll2003/eng.testa", _replace(b"Peter", b"P\xe9ter"),
                 r", line 6: the bytes b'\\xe9' are not UTF-8", id="conll-latin-1-byte"),
    # WikiText-2
    pytest.param("wikitext2/wiki.valid.tokens", _empty, "holds no lines", id="wikitext-empty"),
    pytest.param("wikitext2/wiki.valid.tokens", _replace(b" = Lobster = \n \n", b""),
                 r", line 2: text before the first article title", id="wikitext-no-title"),
    pytest.param("wikitext2/wiki.valid.tokens", lambda content: b" \n \n",
                 "holds no articles", id="wikitext-blank-lines-only"),
    pytest.param("wikitext2/wiki.valid.tokens", _crlf, SAME_RECORDS, id="wikitext-crlf"),
    pytest.param("wikitext2/wiki.valid.tokens", _replace(b"rocks", b"r\x80cks"),
                 r", line 8: the bytes b'\\x80' are not UTF-8", id="wikitext-bad-byte"),
    # SQuAD (the damage is to the JSON inside the gzip file, except where the gzip is cut)
    pytest.param("squad/dev-v1.1.json.gz", lambda content: content[:-12],
                 "not a complete gzip file", id="squad-gzip-truncated"),
    pytest.param("squad/dev-v1.1.json.gz", gzip.decompress, "not a complete gzip file",
                 id="squad-not-gzipped"),
    pytest.param("squad/dev-v1.1.json.gz",
                 _in_squad(_replace(b'"What is big?",', b'"What is big?"')),  # a comma lost
                 r", line 13: invalid JSON after decompressing, at column 8: "
                 "Expecting ',' delimiter", id="squad-bad-json"),
    pytest.param("squad/dev-v1.1.json.gz", _in_squad(_squad_without("question")),
                 r"article data\[0\] \('Paris'\), paragraph 0, question 0 \(id 'q1'\) has no "
                 "'question' field", id="squad-missing-question"),
    pytest.param("squad/dev-v1.1.json.gz", _in_squad(_squad_without("id")),
                 r"question 0 has no 'id' field", id="squad-missing-id"),
    pytest.param("squad/dev-v1.1.json.gz", _in_squad(_replace(b'"answer_start": 0',
                                                               b'"answer_start": 20')),
                 r"answer 0: answer_start 20 puts 'Paris' outside its context",
                 id="squad-answer-outside-context"),
    pytest.param("squad/dev-v1.1.json.gz", _in_squad(_replace(b'"answer_start": 0',
                                                               b'"answer_start": "0"')),
                 r"'answer_start' should be an integer, found str",
                 id="squad-answer-start-a-string"),
    pytest.param("squad/dev-v1.1.json.gz", _in_squad(lambda _: b'{"version": "1.1", "data": []}'),
                 "holds no questions", id="squad-no-articles"),
    pytest.param("squad/dev-v1.1.json.gz", _in_squad(_replace(b'"1.1"', b'"2.0"')),
                 "version '1.1', found '2.0'", id="squad-version-2"),
    pytest.param("squad/dev-v1.1.json.gz", _in_squad(_crlf), SAME_RECORDS, id="squad-crlf"),
    pytest.param("squad/dev-v1.1.json.gz", _in_squad(_empty),
                 r", line 1: invalid JSON after decompressing", id="squad-empty-json"),
]


@pytest.mark.parametrize("relative_path, damage, expected", DAMAGED_FILES)
def test_damaged_unregistered_file(tiny_data, relative_path, damage, expected):
    path = tiny_data / relative_path
    path.write_bytes(damage(path.read_bytes()))
    if expected == SAME_RECORDS:
        expected = TINY_RECORDS[relative_path]
    if isinstance(expected, list):
        assert LOADERS[relative_path]() == expected
        return
    with pytest.raises(ValueError, match=expected) as error:
        LOADERS[relative_path]()
    assert str(path) in str(error.value)


@pytest.mark.parametrize("relative_path, damage, expected", DAMAGED_FILES)
def test_damaged_registered_file_fails_its_checksum(tiny_data, monkeypatch, relative_path,
                                                    damage, expected):
    # The same damages, with the tiny copy's SHA-256 registered: every one is refused before
    # the loader reads a line, truncations and CRLF included.
    path = tiny_data / relative_path
    good = path.read_bytes()
    is_gzip = relative_path.endswith(".gz")
    digest = _sha256(gzip.decompress(good) if is_gzip else good)
    monkeypatch.setitem(datafiles.REMOTE_FILES, relative_path,
                        RemoteFile("https://example.invalid/file", digest, gzip=is_gzip))
    assert LOADERS[relative_path]() == TINY_RECORDS[relative_path]
    path.write_bytes(damage(good))
    os.utime(path, ns=(1, 1))  # a modification time the check has not seen
    with pytest.raises(ValueError, match="registered checksum|not a complete gzip file") as error:
        LOADERS[relative_path]()
    assert str(path) in str(error.value)


def test_crlf_copies_leave_no_carriage_return(tiny_data):
    for relative_path in ("smsspam/SMSSpamCollection", "conll2003/eng.testa"):
        path = tiny_data / relative_path
        path.write_bytes(_crlf(path.read_bytes()))
    assert not any(r["text"].endswith("\r") for r in load_smsspam())
    assert "O\r" not in {tag for r in load_conll2003("dev") for tag in r["ner_tags"]}
    assert read_wikitext2_lines("valid")[1] == " = Lobster = "


def test_every_file_has_damage_cases_and_a_crlf_case():
    damaged = {case.values[0] for case in DAMAGED_FILES}
    crlf = {case.values[0] for case in DAMAGED_FILES if case.id.endswith("crlf")}
    assert damaged == crlf == set(TINY_FILES) == set(LOADERS)


# ---------------------------------------------------------------------------------------
# Finding and downloading files


@pytest.fixture
def server(monkeypatch):
    """A local HTTP server: `files` maps a URL path to its bytes, `hits` logs every request."""
    files, hits = {}, []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            if self.path == "/truncated":  # announce 1000 bytes, send 10, hang up
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b"0123456789")
                return
            if self.path.startswith("/no-length/"):  # no Content-Length: the end is the hang-up
                self.send_response(200)
                self.end_headers()
                self.wfile.write(files.get(self.path.removeprefix("/no-length"), b""))
                return
            if self.path not in files:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(files[self.path])))
            self.end_headers()
            self.wfile.write(files[self.path])

        def log_message(self, *args):
            pass  # keep pytest's output clean

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    for name in ("no_proxy", "NO_PROXY"):  # a proxy set in the environment must not intercept
        monkeypatch.setenv(name, "*")
    yield SimpleNamespace(url=f"http://127.0.0.1:{httpd.server_port}", files=files, hits=hits)
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """No BERTEDU_DATA and an empty cache folder: files can only come from a download."""
    monkeypatch.delenv("BERTEDU_DATA", raising=False)
    folder = tmp_path / "cache"
    monkeypatch.setenv("BERTEDU_CACHE", str(folder))
    return folder


def _files_in(folder):
    """Every file under `folder` (hidden temporary ones included), as relative paths."""
    if not folder.exists():
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _sha256(content):
    return hashlib.sha256(content).hexdigest()


def test_download_is_verified_and_cached(server, cache, monkeypatch):
    content = "héllo\tworld\n".encode("utf-8")
    server.files["/good.txt"] = content
    monkeypatch.setitem(datafiles.REMOTE_FILES, "toy/good.txt",
                        RemoteFile(f"{server.url}/good.txt", _sha256(content)))
    path = dataset_file("toy/good.txt")
    assert path == cache / "toy" / "good.txt"
    assert path.read_bytes() == content
    assert server.hits == ["/good.txt"]
    assert dataset_file("toy/good.txt") == path  # the second call finds the cached copy
    assert server.hits == ["/good.txt"]
    assert _files_in(cache) == sorted(["toy/good.txt", datafiles.VERIFIED_RECORD])  # no temporary file left behind


def test_corrupted_download_raises_and_keeps_nothing(server, cache, monkeypatch):
    good, corrupted = b"the official bytes\n", b"the official bytez\n"
    server.files["/bad.txt"] = corrupted
    monkeypatch.setitem(datafiles.REMOTE_FILES, "toy/bad.txt",
                        RemoteFile(f"{server.url}/bad.txt", _sha256(good)))
    with pytest.raises(ValueError) as error:
        dataset_file("toy/bad.txt")
    for part in ("toy/bad.txt", _sha256(good), _sha256(corrupted)):
        assert part in str(error.value)
    assert _files_in(cache) == []


def test_truncated_download_keeps_nothing_even_without_a_checksum(server, cache, monkeypatch):
    monkeypatch.setitem(datafiles.REMOTE_FILES, "toy/cut.txt",
                        RemoteFile(f"{server.url}/truncated", None))
    with pytest.raises(FileNotFoundError, match="IncompleteRead"):
        dataset_file("toy/cut.txt")
    assert _files_in(cache) == []


def test_failed_write_leaves_no_temporary_file(server, cache, monkeypatch):
    server.files["/good.txt"] = b"content\n"
    monkeypatch.setitem(datafiles.REMOTE_FILES, "toy/good.txt",
                        RemoteFile(f"{server.url}/good.txt", None))

    def full_disk(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(datafiles.os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        dataset_file("toy/good.txt")
    assert _files_in(cache) == []


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("where", ["404", "server down"])
def test_failed_download_names_dataset_folders_url_and_bertedu_data(server, cache, monkeypatch,
                                                                    where):
    if where == "404":
        url = f"{server.url}/missing.txt"
    else:
        url = f"http://127.0.0.1:{_closed_port()}/x.txt"
    monkeypatch.setitem(datafiles.REMOTE_FILES, "sst2/fake.tsv", RemoteFile(url, None))
    with pytest.raises(FileNotFoundError) as error:
        dataset_file("sst2/fake.tsv")
    message = str(error.value)
    for part in ("SST-2", "sst2/fake.tsv", str(cache), url, "BERTEDU_DATA"):
        assert part in message
    assert _files_in(cache) == []


def test_file_with_no_source_and_no_copy(cache):
    with pytest.raises(FileNotFoundError, match="no download source"):
        dataset_file("toy/nowhere.txt")


def test_zip_member_is_extracted(server, cache, monkeypatch):
    member = "index\tsentence1\tsentence2\n0\tA man sings.\tA man is singing.\n".encode()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("TOY/readme.txt", "not this one")
        zipped.writestr("TOY/test.tsv", member)
    server.files["/TOY.zip"] = archive.getvalue()
    monkeypatch.setitem(datafiles.REMOTE_FILES, "toy/test.tsv",
                        RemoteFile(f"{server.url}/TOY.zip", _sha256(member), member="TOY/test.tsv"))
    monkeypatch.setitem(datafiles.REMOTE_FILES, "toy/absent.tsv",
                        RemoteFile(f"{server.url}/TOY.zip", None, member="TOY/absent.tsv"))
    assert dataset_file("toy/test.tsv").read_bytes() == member
    with pytest.raises(ValueError, match="no member 'TOY/absent.tsv'"):
        dataset_file("toy/absent.tsv")
    server.files["/notzip"] = b"<html>moved</html>"
    monkeypatch.setitem(datafiles.REMOTE_FILES, "toy/x.tsv",
                        RemoteFile(f"{server.url}/notzip", None, member="x"))
    with pytest.raises(ValueError, match="not a zip archive"):
        dataset_file("toy/x.tsv")
    assert _files_in(cache) == ["toy/test.tsv"]


def test_gzip_entry_end_to_end_through_load_squad(server, cache, monkeypatch):
    # A tiny SQuAD file stands in for dev-v1.1.json: stored gzipped, checked decompressed.
    question = {"id": "q1", "question": "What is big?",
                "answers": [{"answer_start": 0, "text": "Paris"}]}
    paragraph = {"context": "Paris is big.", "qas": [question]}
    squad = {"version": "1.1", "data": [{"title": "T", "paragraphs": [paragraph]}]}
    content = json.dumps(squad).encode()
    server.files["/dev.json"] = content
    monkeypatch.setitem(datafiles.REMOTE_FILES, "squad/dev-v1.1.json.gz",
                        RemoteFile(f"{server.url}/dev.json", _sha256(content), gzip=True))
    assert load_squad("dev") == [{"id": "q1", "title": "T", "context": "Paris is big.",
                                  "question": "What is big?",
                                  "answers": {"text": ["Paris"], "answer_start": [0]}}]
    assert gzip.decompress((cache / "squad" / "dev-v1.1.json.gz").read_bytes()) == content


def test_bertedu_data_that_is_not_a_folder_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTEDU_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="BERTEDU_DATA"):
        dataset_file("sst2/dev.tsv")


def test_missing_file_in_bertedu_data_falls_back_to_the_cache(tmp_path, cache, server, monkeypatch):
    monkeypatch.setenv("BERTEDU_DATA", str(tmp_path))  # exists, but holds no sst2/dev.tsv
    (cache / "sst2").mkdir(parents=True)
    (cache / "sst2" / "dev.tsv").write_text("sentence\tlabel\nfine \t1\n")
    monkeypatch.setitem(datafiles.REMOTE_FILES, "sst2/dev.tsv",
                        RemoteFile(f"{server.url}/dev.tsv", None))
    assert load_sst2("dev") == [{"sentence": "fine", "label": 1}]
    assert server.hits == []


def test_registry_covers_every_file_the_loaders_read(real_data, monkeypatch):
    read = []

    def recording_dataset_file(relative_path):
        read.append(relative_path)
        return real_data / relative_path

    monkeypatch.setattr(data, "dataset_file", recording_dataset_file)
    for loader in (load_sst2, load_mrpc, load_rte, load_stsb, load_conll2003):
        for split in ("train", "dev", "test"):
            loader(split)
    for split in ("train", "valid", "test"):
        load_wikitext2(split)
    load_squad("dev"), load_smsspam()
    assert set(read) <= set(datafiles.REMOTE_FILES)
    # 3 SST-2, 3 MRPC sources, 3 RTE, 3 STS-B, 3 CoNLL, 3 WikiText-2, 1 SQuAD, 1 SMS
    assert len(set(read)) == 20


def test_registered_checksums_match_the_course_copy(real_data):
    # The checksum each download is held to is that of the course's copy (for the gzip
    # file: of its content, the official dev-v1.1.json).
    for relative_path, remote in datafiles.REMOTE_FILES.items():
        local = real_data / relative_path
        if not local.exists():  # the one file too big for the course copy
            assert relative_path == "squad/train-v1.1.json.gz"
            continue
        content = gzip.decompress(local.read_bytes()) if remote.gzip else local.read_bytes()
        assert _sha256(content) == remote.sha256, relative_path
        assert remote.url.startswith("https://")


def test_local_copies_are_checked_against_their_registered_sha256(real_data, tmp_path, monkeypatch):
    monkeypatch.setenv("BERTEDU_CACHE", str(tmp_path / "cache"))
    good = (real_data / "sst2" / "dev.tsv").read_bytes()
    copy_folder = tmp_path / "copy"
    (copy_folder / "sst2").mkdir(parents=True)
    target = copy_folder / "sst2" / "dev.tsv"
    monkeypatch.setenv("BERTEDU_DATA", str(copy_folder))
    target.write_bytes(good)
    assert len(load_sst2("dev")) == 872
    assert str(target.resolve()) in json.loads((tmp_path / "cache" / datafiles.VERIFIED_RECORD).read_text())
    lines = good.split(b"\n")
    damaged = {
        "truncated at a line boundary": b"\n".join(lines[:400]) + b"\n",
        "CRLF line ends": good.replace(b"\n", b"\r\n"),
        "one label flipped": good.replace(b"\t1\n", b"\t0\n", 1),
        "header only": lines[0] + b"\n",
    }
    for case, content in damaged.items():
        target.write_bytes(content)
        os.utime(target, ns=(1, len(case)))  # a new modification time, as any edit gives
        with pytest.raises(ValueError, match="does not match the registered checksum") as caught:
            load_sst2("dev")
        assert str(target) in str(caught.value), case


# ---------------------------------------------------------------------------------------
# Downloads with no registered checksum: kept only when complete and plausible


def _zip_holding(member_name, member):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr(member_name, member)
    return archive.getvalue()


_HTML_PAGE = b"<!DOCTYPE html>\n<html><body>Please sign in</body></html>\n"
_GOOD_TSV = b"sentence\tlabel\nfine \t1\n"


# relative path, zip member (None: a plain file), the bytes the server sends, the length it
# announces (None: no Content-Length), and what the refusal says.
REFUSED_DOWNLOADS = [
    pytest.param("toy/page.tsv", None, _HTML_PAGE, None, r"no Content-Length",
                 id="html-page-without-content-length"),
    pytest.param("toy/page.tsv", None, _HTML_PAGE, len(_HTML_PAGE), r"it is an HTML page",
                 id="html-page-with-content-length"),
    pytest.param("toy/page.tsv", None, b"  <html><body>moved</body></html>", 33,
                 r"it is an HTML page", id="html-page-without-doctype"),
    pytest.param("toy/data.tsv", None, _GOOD_TSV, None, r"no Content-Length",
                 id="good-tsv-without-content-length"),
    pytest.param("toy/data.tsv", None, _GOOD_TSV, 1000, r"announced 1,000 bytes but sent 23",
                 id="shorter-than-announced"),
    pytest.param("toy/data.tsv", None, b"sentence label\nfine 1\n", 22, r"first line has no tab",
                 id="tsv-without-a-tab"),
    pytest.param("toy/data.json", None, b'{"data": [', 10, r"not valid JSON", id="cut-json"),
    pytest.param("toy/data.txt", None, b"", 0, r"it is empty", id="empty"),
    pytest.param("toy/data.txt", None, b"caf\xe9\n", 5, r"not UTF-8 text", id="latin-1-text"),
    pytest.param("toy/data.tsv", "TOY/data.tsv", _HTML_PAGE, len(_HTML_PAGE),
                 r"is not a zip archive \(it starts with b'<!DOCTYPE html",
                 id="html-instead-of-zip"),
    pytest.param("toy/data.tsv", "TOY/data.tsv", _zip_holding("TOY/data.tsv", _HTML_PAGE),
                 len(_zip_holding("TOY/data.tsv", _HTML_PAGE)), r"it is an HTML page",
                 id="zip-member-is-html"),
]


@pytest.mark.parametrize("relative_path, member, sent, announced, message", REFUSED_DOWNLOADS)
def test_unhashed_download_is_refused_unless_complete_and_plausible(
        cache, monkeypatch, relative_path, member, sent, announced, message):
    url = "https://example.invalid/file"
    monkeypatch.setattr(datafiles, "_fetch", lambda fetched_url: (sent, announced))
    monkeypatch.setitem(datafiles.REMOTE_FILES, relative_path, RemoteFile(url, None, member=member))
    with pytest.raises(ValueError, match=message) as error:
        dataset_file(relative_path)
    assert relative_path in str(error.value) and url in str(error.value)
    assert _files_in(cache) == []


@pytest.mark.parametrize("relative_path, member, sent", [
    pytest.param("toy/data.tsv", None, _GOOD_TSV, id="tsv"),
    pytest.param("toy/data.json.gz", None, b'{"version": "1.1", "data": []}', id="json"),
    pytest.param("toy/data.tsv", "TOY/data.tsv", _zip_holding("TOY/data.tsv", _GOOD_TSV),
                 id="zip-member"),
])
def test_complete_plausible_unhashed_download_is_kept(cache, monkeypatch, relative_path, member,
                                                      sent):
    monkeypatch.setattr(datafiles, "_fetch", lambda url: (sent, len(sent)))
    monkeypatch.setitem(datafiles.REMOTE_FILES, relative_path,
                        RemoteFile("https://example.invalid/file", None, member=member,
                                   gzip=relative_path.endswith(".gz")))
    kept = dataset_file(relative_path).read_bytes()
    if relative_path.endswith(".gz"):
        kept = gzip.decompress(kept)
    assert kept == (_GOOD_TSV if member else sent)


def test_hashed_download_needs_no_content_length(cache, monkeypatch):
    # A registered SHA-256 proves the content whole: the length announcement is not needed.
    monkeypatch.setattr(datafiles, "_fetch", lambda url: (_GOOD_TSV, None))
    monkeypatch.setitem(datafiles.REMOTE_FILES, "toy/data.tsv",
                        RemoteFile("https://example.invalid/file", _sha256(_GOOD_TSV)))
    assert dataset_file("toy/data.tsv").read_bytes() == _GOOD_TSV


def test_fetch_reports_the_announced_length(server, cache, monkeypatch):
    # Through a real HTTP server: a response without Content-Length is refused when unhashed.
    server.files["/data.tsv"] = _GOOD_TSV
    assert datafiles._fetch(f"{server.url}/data.tsv") == (_GOOD_TSV, len(_GOOD_TSV))
    assert datafiles._fetch(f"{server.url}/no-length/data.tsv") == (_GOOD_TSV, None)
    monkeypatch.setitem(datafiles.REMOTE_FILES, "toy/data.tsv",
                        RemoteFile(f"{server.url}/no-length/data.tsv", None))
    with pytest.raises(ValueError, match="no Content-Length"):
        dataset_file("toy/data.tsv")
    monkeypatch.setitem(datafiles.REMOTE_FILES, "toy/data.tsv",
                        RemoteFile(f"{server.url}/data.tsv", None))
    assert dataset_file("toy/data.tsv").read_bytes() == _GOOD_TSV


def test_wikitext2_train_is_pinned_and_verifies_against_the_course_copy(real_data, tmp_path,
                                                                        monkeypatch):
    monkeypatch.setenv("BERTEDU_CACHE", str(tmp_path / "cache"))
    remote = datafiles.REMOTE_FILES["wikitext2/wiki.train.tokens"]
    assert remote.sha256 == "9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f"
    path = dataset_file("wikitext2/wiki.train.tokens")  # hashes the file against the registry
    assert path == real_data / "wikitext2" / "wiki.train.tokens"
    record = json.loads((tmp_path / "cache" / datafiles.VERIFIED_RECORD).read_text())
    assert record[str(path.resolve())][2] == remote.sha256
