"""The book's datasets, read from their official files into plain Python records.

Every loader returns a list of dicts, e.g. `load_sst2("dev")[0]` is `{"sentence": "it 's a
charming and often affecting journey .", "label": 1}`; the constants (`SST2_LABELS`,
`CONLL_NER_LABELS` ...) map label ids to names, in the Hugging Face datasets' order. GLUE's
test splits have no public labels (None), except MRPC's. `bertedu.datafiles.dataset_file`
finds each file (BERTEDU_DATA, the cache, or a checked download). Unexpected content raises
a ValueError naming the file and line; CRLF line ends read like LF.

CoNLL-2003's files tag in IOB1 (an entity starts with `I-`; `B-` only between two adjacent
entities of one type); the records use IOB2 (every entity starts with `B-`), converted by
`iob1_to_iob2`:

    tokens  EU     rejects German  call  Peter  Blackburn
    IOB1    I-ORG  O       I-MISC  O     I-PER  I-PER
    IOB2    B-ORG  O       B-MISC  O     B-PER  I-PER
"""
import codecs
import gzip
import json
import random
import zlib
from pathlib import Path

from .datafiles import dataset_file

SST2_LABELS = ("negative", "positive")
SMSSPAM_LABELS = ("ham", "spam")
MRPC_LABELS = ("not_equivalent", "equivalent")
RTE_LABELS = ("entailment", "not_entailment")
# The 9 IOB2 tags of CoNLL-2003 NER in the Hugging Face `conll2003` order, so that id i here
# is id i there.
CONLL_NER_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")


# ---------------------------------------------------------------------------------------
# Small readers shared by the loaders


def _file_error(path: Path, problem: str, line: int | None = None) -> ValueError:
    """The error for a data file that cannot be read: it names the file, the line (1-based)
    where there is one, the problem, and the fix."""
    where = f"{path}, line {line}" if line is not None else str(path)
    return ValueError(f"{where}: {problem}. Correct the file, or replace it with the course's "
                      "copy of the dataset.")


def _decode_utf8(content: bytes, path: Path) -> str:
    """`content` decoded as UTF-8, without the byte-order mark that MRPC's files start with
    (otherwise the first header field would read "\\ufeffQuality")."""
    content = content.removeprefix(codecs.BOM_UTF8)
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as error:
        line = content.count(b"\n", 0, error.start) + 1
        bad = content[error.start:error.end]
        raise _file_error(path, f"the bytes {bad!r} are not UTF-8 (the file was saved in "
                                "another encoding, or is damaged)", line) from None


def _read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file, without their line ends (LF or CRLF); split on "\\n" only,
    as `str.splitlines` would also split SMS texts at characters such as "\\x0b" or "\\u2028"."""
    lines = _decode_utf8(path.read_bytes(), path).split("\n")
    if lines[-1] == "":
        lines.pop()  # the file's final newline ends the last line; it does not start a new one
    return [line.removesuffix("\r") for line in lines]


def _check_header(lines: list[str], expected: str, path: Path) -> None:
    if not lines:
        raise _file_error(path, f"the file is empty; expected the header line {expected!r}")
    if lines[0] != expected:
        raise _file_error(path, f"expected the header line {expected!r}, found {lines[0]!r}", 1)


def _require_records(records: list | set, path: Path, what: str = "rows") -> None:
    """Refuse a file that held no data (empty, or a header only): a loader never returns []."""
    if not records:
        raise _file_error(path, f"the file holds no {what} (it is empty, or holds only a header "
                                "or blank lines)")


def _fields(line: str, count: int, path: Path, number: int) -> list[str]:
    """Split a tab-separated line into exactly `count` fields (`number` is 1-based, for errors)."""
    fields = line.split("\t")
    if len(fields) != count:
        raise _file_error(path, f"expected {count} tab-separated fields, found {len(fields)}",
                          number)
    return fields


def _label_id(name: str, labels: tuple[str, ...], path: Path, number: int) -> int:
    if name not in labels:
        raise _file_error(path, f"unknown label {name!r}, expected one of {labels}", number)
    return labels.index(name)


def _check_split(split: str, choices: tuple[str, ...], dataset: str) -> None:
    if split not in choices:
        raise ValueError(f"{dataset} has the splits {choices}, got split={split!r}")


# ---------------------------------------------------------------------------------------
# WikiText-2: the pretraining corpus


def read_wikitext2_lines(split: str) -> list[str]:
    """The raw lines of WikiText-2 `split` ("train", "valid" or "test"), without line ends.
    The official token counts are `sum(len(line.split()) + 1 for line in lines)` (one `<eos>`
    per line)."""
    return _read_wikitext2(split)[1]


def _read_wikitext2(split: str) -> tuple[Path, list[str]]:
    """The path and the lines of one WikiText-2 split; an empty file is an error."""
    _check_split(split, ("train", "valid", "test"), "WikiText-2")
    path = dataset_file(f"wikitext2/wiki.{split}.tokens")
    lines = _read_lines(path)
    _require_records(lines, path, "lines")
    return path, lines


def load_wikitext2(split: str) -> list[dict]:
    """WikiText-2 `split` ("train", "valid" or "test") as its articles made of paragraphs.

    An article starts at a title line ` = Title = ` followed by a blank line; section headings
    and blank lines are dropped. Text stays as tokenized (`@-@` for a hyphen, `<unk>`).

    Returns:
        A list of `{"title": str, "paragraphs": [str, ...]}`, e.g. `{"title": "Homarus
        gammarus", "paragraphs": ["Homarus gammarus , known as the European lobster ...", ...]}`.
    """
    path, lines = _read_wikitext2(split)
    articles = []
    for i, line in enumerate(lines):
        text = line.strip()
        if not text:
            continue
        is_heading = text.startswith("= ") and text.endswith(" =")
        next_is_blank = i + 1 == len(lines) or not lines[i + 1].strip()
        if is_heading and not text.startswith("= =") and next_is_blank:
            articles.append({"title": text[2:-2].strip(), "paragraphs": []})
        elif is_heading and text.startswith("= ="):
            continue  # a section heading
        elif not articles:
            raise _file_error(path, "text before the first article title ' = Title = ' (followed "
                                    "by a blank line)", i + 1)
        else:
            articles[-1]["paragraphs"].append(text)
    _require_records(articles, path, "articles")
    return articles


# ---------------------------------------------------------------------------------------
# Single-sentence classification: SST-2 and SMS Spam


def load_sst2(split: str) -> list[dict]:
    """SST-2 (GLUE): movie-review sentences, lower-cased and tokenized (`it 's`), by sentiment.

    Args:
        split: "train" (67,349), "dev" (872) or "test" (1,821, unlabeled).

    Returns:
        A list of `{"sentence": str, "label": int | None}`, label 0 = negative,
        1 = positive (`SST2_LABELS`), None for test.
    """
    _check_split(split, ("train", "dev", "test"), "SST-2")
    path = dataset_file(f"sst2/{split}.tsv")
    lines = _read_lines(path)
    records = []
    if split == "test":
        _check_header(lines, "index\tsentence", path)
        for number, line in enumerate(lines[1:], start=2):
            _, sentence = _fields(line, 2, path, number)
            records.append({"sentence": sentence.strip(), "label": None})
        _require_records(records, path)
        return records
    _check_header(lines, "sentence\tlabel", path)
    for number, line in enumerate(lines[1:], start=2):
        # The label is after the last tab. No CSV parser: sentences contain " and ' freely.
        sentence, tab, label = line.rpartition("\t")
        if not tab or label not in ("0", "1"):
            raise _file_error(path, f"expected 'sentence<TAB>0 or 1', found {line!r}", number)
        records.append({"sentence": sentence.strip(), "label": int(label)})
    _require_records(records, path)
    return records


def load_smsspam() -> list[dict]:
    """The SMS Spam Collection v.1: 5,574 text messages, 747 of them spam, kept exactly as
    written. There is no official split: hold out a test set with `split_smsspam`.

    Returns:
        A list of `{"text": str, "label": int}`, label 0 = ham, 1 = spam (`SMSSPAM_LABELS`).
    """
    path = dataset_file("smsspam/SMSSpamCollection")
    records = []
    for number, line in enumerate(_read_lines(path), start=1):
        label, tab, text = line.partition("\t")  # the first tab: messages may contain tabs
        if not tab:
            raise _file_error(path, f"expected 'ham<TAB>text' or 'spam<TAB>text', found {line!r}",
                              number)
        records.append({"text": text, "label": _label_id(label, SMSSPAM_LABELS, path, number)})
    _require_records(records, path, "messages")
    return records


def split_smsspam(records: list[dict], test_fraction: float = 0.2,
                  seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Hold out a stratified test set (the same share of every label), chosen by `seed` alone,
    so every chapter gets the same split; both parts keep the order of `records`.

    Args:
        records: `load_smsspam()` (or any list of dicts with an int "label").
        test_fraction: the share of each label held out, strictly between 0 and 1.
        seed: seed of the random choice.

    Returns:
        `(train_records, test_records)`.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be strictly between 0 and 1, got {test_fraction}")
    if not records:
        raise ValueError("records is empty: there is nothing to split")
    positions_by_label: dict[int, list[int]] = {}
    for position, record in enumerate(records):
        if not isinstance(record, dict) or "label" not in record:
            raise ValueError(f"records[{position}] has no 'label' key: {record!r}")
        positions_by_label.setdefault(record["label"], []).append(position)

    rng = random.Random(seed)  # our own generator: the global random state stays untouched
    test_positions = set()
    for label in sorted(positions_by_label):  # a fixed order, so the draws are reproducible
        positions = positions_by_label[label]
        rng.shuffle(positions)
        test_positions.update(positions[:round(test_fraction * len(positions))])
    train = [record for position, record in enumerate(records) if position not in test_positions]
    test = [record for position, record in enumerate(records) if position in test_positions]
    return train, test


# ---------------------------------------------------------------------------------------
# Sentence pairs: MRPC, RTE, STS-B


def _read_msr_paraphrase(path: Path) -> list[dict]:
    lines = _read_lines(path)
    _check_header(lines, "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String", path)
    records = []
    for number, line in enumerate(lines[1:], start=2):
        quality, id1, id2, sentence1, sentence2 = _fields(line, 5, path, number)
        label = _label_id(quality, ("0", "1"), path, number)
        records.append({"sentence1": sentence1, "sentence2": sentence2, "label": label,
                        "id1": id1, "id2": id2})
    _require_records(records, path)
    return records


def load_mrpc(split: str) -> list[dict]:
    """MRPC (GLUE): news sentence pairs, tokenized, labeled 1 when they are paraphrases; split
    as GLUE does, with the test labels of `msr_paraphrase_test.txt`.

    Args:
        split: "train" (3,668), "dev" (408) or "test" (1,725).

    Returns:
        A list of `{"sentence1", "sentence2", "label", "id1", "id2"}`, label 0 = not
        equivalent, 1 = equivalent (`MRPC_LABELS`); ids are the corpus's, as strings.
    """
    _check_split(split, ("train", "dev", "test"), "MRPC")
    if split == "test":
        return _read_msr_paraphrase(dataset_file("mrpc/msr_paraphrase_test.txt"))
    ids_path = dataset_file("mrpc/dev_ids.tsv")
    dev_ids = {tuple(_fields(line, 2, ids_path, number))
               for number, line in enumerate(_read_lines(ids_path), start=1)}
    _require_records(dev_ids, ids_path, "id pairs")
    train_path = dataset_file("mrpc/msr_paraphrase_train.txt")
    records = _read_msr_paraphrase(train_path)
    missing = dev_ids - {(record["id1"], record["id2"]) for record in records}
    if missing:  # every dev pair comes from the train file: one of the two is cut or mismatched
        raise _file_error(train_path, f"it lacks {len(missing)} of the pairs that {ids_path} "
                                      f"holds out as dev, e.g. {min(missing)}")
    want_dev = split == "dev"
    return [record for record in records if ((record["id1"], record["id2"]) in dev_ids) == want_dev]


def load_rte(split: str) -> list[dict]:
    """RTE (GLUE): does sentence1 entail sentence2?

    Args:
        split: "train" (2,490), "dev" (277) or "test" (3,000, unlabeled).

    Returns:
        A list of `{"sentence1", "sentence2", "label"}`, label 0 = entailment,
        1 = not_entailment (`RTE_LABELS`, GLUE's and Hugging Face's order), None for test.
    """
    _check_split(split, ("train", "dev", "test"), "RTE")
    path = dataset_file(f"rte/{split}.tsv")
    lines = _read_lines(path)
    labeled = split != "test"
    _check_header(lines, "index\tsentence1\tsentence2" + ("\tlabel" if labeled else ""), path)
    records = []
    for number, line in enumerate(lines[1:], start=2):
        fields = _fields(line, 4 if labeled else 3, path, number)
        label = _label_id(fields[3], RTE_LABELS, path, number) if labeled else None
        records.append({"sentence1": fields[1], "sentence2": fields[2], "label": label})
    _require_records(records, path)
    return records


def load_stsb(split: str) -> list[dict]:
    """STS-B (GLUE): sentence pairs scored for similarity from 0 (unrelated) to 5 (same meaning).

    Args:
        split: "train" (5,749), "dev" (1,500) or "test" (1,379, unscored).

    Returns:
        A list of `{"sentence1", "sentence2", "score": float | None}` (None for test).
    """
    _check_split(split, ("train", "dev", "test"), "STS-B")
    path = dataset_file(f"stsb/{split}.tsv")
    lines = _read_lines(path)
    scored = split != "test"
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2"
    _check_header(lines, header + ("\tscore" if scored else ""), path)
    records = []
    for number, line in enumerate(lines[1:], start=2):
        fields = _fields(line, 10 if scored else 9, path, number)
        score = _stsb_score(fields[9], path, number) if scored else None
        records.append({"sentence1": fields[7], "sentence2": fields[8], "score": score})
    _require_records(records, path)
    return records


def _stsb_score(text: str, path: Path, number: int) -> float:
    """A score field as a float, refused unless it is a number from 0 to 5 (not nan, not inf)."""
    try:
        score = float(text)
    except ValueError:
        score = float("nan")
    if not 0.0 <= score <= 5.0:  # also False for nan
        raise _file_error(path, f"the score must be a number from 0 to 5, found {text!r}", number)
    return score


# ---------------------------------------------------------------------------------------
# Token classification: CoNLL-2003


def iob1_to_iob2(tags: list[str]) -> list[str]:
    """One sentence's tags from IOB1 to IOB2: an `I-X` not preceded by an X tag becomes `B-X`;
    other tags (and IOB2 input) stay. Returns a new list.

    `["I-PER", "I-PER", "B-PER", "O", "I-LOC"]` -> `["B-PER", "I-PER", "B-PER", "O", "B-LOC"]`.
    """
    converted = []
    previous_type = None  # the entity type of the tag before, None after O or at the start
    for position, tag in enumerate(tags):
        if tag == "O":
            converted.append(tag)
            previous_type = None
            continue
        if not isinstance(tag, str) or tag[:2] not in ("B-", "I-") or len(tag) == 2:
            raise ValueError(f"tag {tag!r} at position {position} is not 'O', 'B-TYPE' or 'I-TYPE'")
        prefix, entity_type = tag[:2], tag[2:]
        if prefix == "I-" and entity_type != previous_type:
            converted.append("B-" + entity_type)
        else:
            converted.append(tag)
        previous_type = entity_type
    return converted


def load_conll2003(split: str) -> list[dict]:
    """CoNLL-2003 English: Reuters sentences with POS, chunk and named-entity tags (chunk and
    NER tags converted to IOB2); `-DOCSTART-` lines are skipped.

    Args:
        split: "train" (`eng.train`, 14,041 sentences), "dev" (`eng.testa`, 3,250) or "test".

    Returns:
        A list of `{"tokens", "pos_tags", "chunk_tags", "ner_tags"}`, four lists of strings of
        one length; `CONLL_NER_LABELS` maps NER tags to ids.
    """
    _check_split(split, ("train", "dev", "test"), "CoNLL-2003")
    file_name = {"train": "eng.train", "dev": "eng.testa", "test": "eng.testb"}[split]
    path = dataset_file(f"conll2003/{file_name}")
    sentences = []
    rows: list[list[str]] = []  # the (token, pos, chunk, ner) rows of the sentence being read
    for number, line in enumerate(_read_lines(path) + [""], start=1):  # "" ends the last one
        if line.startswith("-DOCSTART-") or not line.strip():
            if rows:
                tokens, pos_tags, chunk_tags, ner_tags = (list(column) for column in zip(*rows))
                sentences.append({"tokens": tokens, "pos_tags": pos_tags,
                                  "chunk_tags": iob1_to_iob2(chunk_tags),
                                  "ner_tags": iob1_to_iob2(ner_tags)})
                rows = []
            continue
        columns = line.split(" ")
        if len(columns) != 4 or not all(columns):
            raise _file_error(path, "expected 4 columns 'token POS chunk NER' separated by single "
                                    f"spaces, found {line!r}", number)
        _token, _pos, chunk, ner = columns
        if ner not in CONLL_NER_LABELS:  # the IOB1 file uses the same 9 tags as IOB2
            raise _file_error(path, f"unknown NER tag {ner!r}, expected one of {CONLL_NER_LABELS}",
                              number)
        if chunk != "O" and (chunk[:2] not in ("B-", "I-") or len(chunk) == 2):
            raise _file_error(path, f"chunk tag {chunk!r} is not 'O', 'B-TYPE' or 'I-TYPE'", number)
        rows.append(columns)
    _require_records(sentences, path, "sentences")
    return sentences


# ---------------------------------------------------------------------------------------
# Extractive question answering: SQuAD v1.1


def load_squad(split: str = "dev") -> list[dict]:
    """SQuAD v1.1, one record per question.

    Args:
        split: "dev" (10,570 questions) or "train" (87,599; not in the course copy: downloaded).

    Returns:
        A list of `{"id", "title", "context", "question", "answers"}` in file order, with
        `answers = {"text": [...], "answer_start": [...]}` (character offsets into `context`),
        as in Hugging Face's `squad`; dev questions have several answers.
    """
    _check_split(split, ("train", "dev"), "SQuAD v1.1")
    path = dataset_file(f"squad/{split}-v1.1.json.gz")
    squad = _read_gzipped_json(path)
    if not isinstance(squad, dict) or squad.get("version") != "1.1":
        found = squad.get("version") if isinstance(squad, dict) else type(squad).__name__
        raise _file_error(path, f"expected a SQuAD JSON object with version '1.1', found {found!r}")
    records = []
    for a, article in enumerate(_squad_field(squad, "data", list, path, "the top level")):
        where = f"article data[{a}]"
        title = _squad_field(article, "title", str, path, where)
        for p, paragraph in enumerate(_squad_field(article, "paragraphs", list, path, where)):
            where = f"article data[{a}] ({title!r}), paragraph {p}"
            context = _squad_field(paragraph, "context", str, path, where)
            for q, qa in enumerate(_squad_field(paragraph, "qas", list, path, where)):
                where = f"article data[{a}] ({title!r}), paragraph {p}, question {q}"
                question_id = _squad_field(qa, "id", str, path, where)
                where += f" (id {question_id!r})"
                answers = _squad_field(qa, "answers", list, path, where)
                if not answers:
                    raise _file_error(path, f"{where} has no answers; SQuAD v1.1 questions have "
                                            "at least one")
                texts, starts = [], []
                for k, answer in enumerate(answers):
                    text = _squad_field(answer, "text", str, path, f"{where}, answer {k}")
                    start = _squad_field(answer, "answer_start", int, path, f"{where}, answer {k}")
                    if not 0 <= start <= len(context) - len(text):
                        raise _file_error(path, f"{where}, answer {k}: answer_start {start} puts "
                                                f"{text!r} outside its context")
                    texts.append(text)
                    starts.append(start)
                records.append({"id": question_id, "title": title, "context": context,
                                "question": _squad_field(qa, "question", str, path, where),
                                "answers": {"text": texts, "answer_start": starts}})
    _require_records(records, path, "questions")
    return records


def _read_gzipped_json(path: Path):
    """The JSON value in a gzip file; errors name the file (and the line and column of bad JSON)."""
    try:
        with gzip.open(path, "rb") as file:
            content = file.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:  # not gzip, cut short, damaged
        raise _file_error(path, f"it is not a complete gzip file ({error})") from None
    try:
        return json.loads(_decode_utf8(content, path))
    except json.JSONDecodeError as error:
        raise _file_error(path, f"invalid JSON after decompressing, at column {error.colno}: "
                                f"{error.msg}", error.lineno) from None


def _squad_field(node, key: str, kind: type, path: Path, where: str):
    """`node[key]`, checked to be a `kind`; `where` names the place in the file for errors."""
    if not isinstance(node, dict):
        raise _file_error(path, f"{where} should be a JSON object, found {type(node).__name__}")
    if key not in node:
        raise _file_error(path, f"{where} has no {key!r} field")
    value = node[key]
    if not isinstance(value, kind) or isinstance(value, bool):  # True would pass as an int
        expected = {str: "a string", int: "an integer", list: "a list"}[kind]
        raise _file_error(path, f"{where}: {key!r} should be {expected}, found "
                                f"{type(value).__name__}")
    return value
