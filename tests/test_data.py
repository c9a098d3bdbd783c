"""Tests of bertedu.data: official counts on the real files, exact first records, the IOB1 ->
IOB2 conversion, the SMS split, and the download path against a local HTTP server."""
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

from bertedu import data
from bertedu.data import (
    CONLL_NER_LABELS,
    RemoteFile,
    dataset_file,
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


@pytest.fixture
def real_data(data_dir, monkeypatch):
    """Read the course's copy; an empty cache, so nothing could come from elsewhere."""
    monkeypatch.setenv("BERTEDU_DATA", str(data_dir))
    return data_dir


# ---------------------------------------------------------------------------------------
# Official counts and first records


@pytest.mark.parametrize("split, tokens", [("valid", 217_646), ("test", 245_569)])
def test_wikitext2_lines_give_the_official_token_counts(real_data, split, tokens):
    lines = read_wikitext2_lines(split)
    assert sum(len(line.split()) + 1 for line in lines) == tokens  # +1: one <eos> per line


@pytest.mark.parametrize("split", ["valid", "test"])
def test_wikitext2_articles_keep_every_paragraph(real_data, split):
    lines = read_wikitext2_lines(split)
    articles = load_wikitext2(split)
    assert len(articles) == 60  # WikiText-2 has 600 / 60 / 60 articles
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
        monkeypatch.delitem(data.REMOTE_FILES, name)
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
    monkeypatch.setitem(data.REMOTE_FILES, "toy/good.txt",
                        RemoteFile(f"{server.url}/good.txt", _sha256(content)))
    path = dataset_file("toy/good.txt")
    assert path == cache / "toy" / "good.txt"
    assert path.read_bytes() == content
    assert server.hits == ["/good.txt"]
    assert dataset_file("toy/good.txt") == path  # the second call finds the cached copy
    assert server.hits == ["/good.txt"]
    assert _files_in(cache) == sorted(["toy/good.txt", data.VERIFIED_RECORD])  # no temporary file left behind


def test_corrupted_download_raises_and_keeps_nothing(server, cache, monkeypatch):
    good, corrupted = b"the official bytes\n", b"the official bytez\n"
    server.files["/bad.txt"] = corrupted
    monkeypatch.setitem(data.REMOTE_FILES, "toy/bad.txt",
                        RemoteFile(f"{server.url}/bad.txt", _sha256(good)))
    with pytest.raises(ValueError) as error:
        dataset_file("toy/bad.txt")
    for part in ("toy/bad.txt", _sha256(good), _sha256(corrupted)):
        assert part in str(error.value)
    assert _files_in(cache) == []


def test_truncated_download_keeps_nothing_even_without_a_checksum(server, cache, monkeypatch):
    monkeypatch.setitem(data.REMOTE_FILES, "toy/cut.txt",
                        RemoteFile(f"{server.url}/truncated", None))
    with pytest.raises(FileNotFoundError, match="IncompleteRead"):
        dataset_file("toy/cut.txt")
    assert _files_in(cache) == []


def test_failed_write_leaves_no_temporary_file(server, cache, monkeypatch):
    server.files["/good.txt"] = b"content\n"
    monkeypatch.setitem(data.REMOTE_FILES, "toy/good.txt",
                        RemoteFile(f"{server.url}/good.txt", None))

    def full_disk(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(data.os, "replace", full_disk)
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
    monkeypatch.setitem(data.REMOTE_FILES, "sst2/fake.tsv", RemoteFile(url, None))
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
    monkeypatch.setitem(data.REMOTE_FILES, "toy/test.tsv",
                        RemoteFile(f"{server.url}/TOY.zip", _sha256(member), member="TOY/test.tsv"))
    monkeypatch.setitem(data.REMOTE_FILES, "toy/absent.tsv",
                        RemoteFile(f"{server.url}/TOY.zip", None, member="TOY/absent.tsv"))
    assert dataset_file("toy/test.tsv").read_bytes() == member
    with pytest.raises(ValueError, match="no member 'TOY/absent.tsv'"):
        dataset_file("toy/absent.tsv")
    server.files["/notzip"] = b"<html>moved</html>"
    monkeypatch.setitem(data.REMOTE_FILES, "toy/x.tsv",
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
    monkeypatch.setitem(data.REMOTE_FILES, "squad/dev-v1.1.json.gz",
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
    monkeypatch.setitem(data.REMOTE_FILES, "sst2/dev.tsv",
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
    load_wikitext2("valid"), load_wikitext2("test"), load_squad("dev"), load_smsspam()
    assert set(read) <= set(data.REMOTE_FILES)
    # 3 SST-2, 3 MRPC sources, 3 RTE, 3 STS-B, 3 CoNLL, 2 WikiText-2, 1 SQuAD, 1 SMS
    assert len(set(read)) == 19


def test_registered_checksums_match_the_course_copy(real_data):
    # The checksum each download is held to is that of the course's copy (for the gzip
    # file: of its content, the official dev-v1.1.json).
    for relative_path, remote in data.REMOTE_FILES.items():
        local = real_data / relative_path
        if not local.exists():  # the two files too big for the course copy
            assert relative_path in ("squad/train-v1.1.json.gz", "wikitext2/wiki.train.tokens")
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
    assert str(target.resolve()) in json.loads((tmp_path / "cache" / data.VERIFIED_RECORD).read_text())
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
