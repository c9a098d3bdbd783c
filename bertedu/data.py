"""The book's datasets, read from their official files into plain Python records.

Every loader returns a list of dicts that prints well in a notebook, for example
`load_sst2("dev")[0]` is `{"sentence": "it 's a charming and often affecting journey .",
"label": 1}`. Labels are small ints; the module constants (`SST2_LABELS`, `CONLL_NER_LABELS`
...) map them back to names, in the order the Hugging Face datasets use.

| loader | splits | record |
|---|---|---|
| `load_wikitext2` | train, valid, test | title, paragraphs |
| `load_sst2` | train, dev, test | sentence, label |
| `load_smsspam` | one file; `split_smsspam` holds out a test set | text, label |
| `load_mrpc` | train, dev, test | sentence1, sentence2, label, id1, id2 |
| `load_rte` | train, dev, test | sentence1, sentence2, label |
| `load_stsb` | train, dev, test | sentence1, sentence2, score |
| `load_conll2003` | train, dev, test | tokens, pos_tags, chunk_tags, ner_tags |
| `load_squad` | dev (train: download) | id, title, context, question, answers |

GLUE's test splits have no public labels, so their `label`/`score` is None; MRPC is the
exception, because its test labels ship in `msr_paraphrase_test.txt`.

Where the files come from. `dataset_file("sst2/train.tsv")` looks, in order, in
1. the folder named by the environment variable BERTEDU_DATA (the course's read-only copy,
   `../shared/data` in CI);
2. the cache folder BERTEDU_CACHE (default `~/.cache/bertedu/data`);
3. the official source listed in `REMOTE_FILES`: it downloads the file into the cache and
   checks its SHA-256 against the published value first, so a broken download never
   stays in the cache. A file with no published SHA-256 is kept only if the download is
   complete (as long as the server announced) and looks like its format (not an HTML page;
   UTF-8 text; a tab in a `.tsv`'s first line; JSON that parses).

Damaged files. A local copy of a registered file must match its SHA-256 too, so a truncated,
edited or converted copy is refused before it is read. The loaders also read strictly on
their own (for files without a checksum, such as a test's hand-made copies): Windows (CRLF)
line ends read like LF, and anything else unexpected (bytes that are not UTF-8, a missing
field, a label or tag outside its set, an STS-B score outside [0, 5], bad SQuAD JSON, a file
with no records) raises a ValueError that names the file, and the line where the file is
read line by line.

CoNLL-2003 tags: IOB1 in the files, IOB2 in the records. In the original CoNLL files
(IOB1) an entity normally starts with `I-`; `B-` appears only where an entity directly
follows another entity of the same type, to mark the boundary between them. Today's tools
(seqeval's default mode, the Hugging Face `conll2003` dataset) use IOB2, also called BIO,
where every entity starts with `B-`. `iob1_to_iob2` converts; the loader applies it to the
NER tags and to the chunk tags, which use the same scheme:

    tokens  EU     rejects German  call  Peter  Blackburn
    IOB1    I-ORG  O       I-MISC  O     I-PER  I-PER
    IOB2    B-ORG  O       B-MISC  O     B-PER  I-PER

Two entities of the same type side by side show why IOB1 needs `B-` at all:
IOB1 `I-PER I-PER B-PER` and IOB2 `B-PER I-PER B-PER` both mean a two-word then a
one-word name.
"""
import codecs
import gzip
import hashlib
import http.client
import io
import json
import os
import random
import tempfile
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .checkpoints import atomic_write

SST2_LABELS = ("negative", "positive")
SMSSPAM_LABELS = ("ham", "spam")
MRPC_LABELS = ("not_equivalent", "equivalent")
RTE_LABELS = ("entailment", "not_entailment")
# The 9 IOB2 tags of CoNLL-2003 NER in the Hugging Face `conll2003` order, so that id i here
# is id i there.
CONLL_NER_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")


# ---------------------------------------------------------------------------------------
# Finding (and if need be downloading) a file


@dataclass(frozen=True)
class RemoteFile:
    """Where the official copy of one dataset file lives, and how to check it.

    Attributes:
        url: The file, or the zip archive that holds it.
        sha256: Hex SHA-256 of the file's content, as the data README lists it (for a
            `gzip` entry: of the decompressed content, the official file). None where no
            checksum is published: then a download is kept only if it is complete (the
            server announced its length and sent exactly that) and looks like the file's
            format (see `_check_complete` and `_check_plausible`).
        member: The path inside the zip archive at `url`, or None for a plain file.
        gzip: Store the content gzip-compressed, as the course's copy does.
    """

    url: str
    sha256: str | None
    member: str | None = None
    gzip: bool = False


_GLUE = "https://dl.fbaipublicfiles.com/glue/data"
_SENTEVAL = "https://dl.fbaipublicfiles.com/senteval/senteval_data"
_SQUAD = "https://rajpurkar.github.io/SQuAD-explorer/dataset"
_SMSSPAM = "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip"
# No official download exists any more for these two: GitHub copies pinned to a commit.
_CONLL = ("https://raw.githubusercontent.com/suryasumukh/conll-ner/"
          "18d3e43a09247adaa9ec088485a087d5ffa758a6/data")
_WIKITEXT2 = ("https://raw.githubusercontent.com/pytorch/examples/"
              "77f55b912142e11fcfdf5b530231fb9c52f181e8/word_language_model/data/wikitext-2")

# Each file the loaders read, by its path relative to the data folder.
REMOTE_FILES: dict[str, RemoteFile] = {
    "sst2/train.tsv": RemoteFile(
        f"{_GLUE}/SST-2.zip",
        "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1", "SST-2/train.tsv"),
    "sst2/dev.tsv": RemoteFile(
        f"{_GLUE}/SST-2.zip",
        "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0", "SST-2/dev.tsv"),
    "sst2/test.tsv": RemoteFile(
        f"{_GLUE}/SST-2.zip",
        "69a938605609b3e6663b4487918fe1565eb293734e6e520d0366d1d412fd2a13", "SST-2/test.tsv"),
    # GLUE builds its MRPC tsv files from these three; load_mrpc applies the same rule.
    "mrpc/msr_paraphrase_train.txt": RemoteFile(
        f"{_SENTEVAL}/msr_paraphrase_train.txt",
        "60a9b09084528f0673eedee2b69cb941920f0b8cd0eeccefc464a98768457f89"),
    "mrpc/msr_paraphrase_test.txt": RemoteFile(
        f"{_SENTEVAL}/msr_paraphrase_test.txt",
        "a04e271090879aaba6423d65b94950c089298587d9c084bf9cd7439bd785f784"),
    "mrpc/dev_ids.tsv": RemoteFile(
        f"{_GLUE}/mrpc_dev_ids.tsv",
        "971d7767d81b997fd9060ade0ec23c4fc31cbb226a55d1bd4a1bac474eb81dc7"),
    "rte/train.tsv": RemoteFile(
        f"{_GLUE}/RTE.zip",
        "41e3a9b063433392343fad9e962cf2f58b681c78d8f71592f4186f0837246c5c", "RTE/train.tsv"),
    "rte/dev.tsv": RemoteFile(
        f"{_GLUE}/RTE.zip",
        "80230dfa1347282e7b532b06a1004a76a710087541189bf874223ddf0e3819fb", "RTE/dev.tsv"),
    "rte/test.tsv": RemoteFile(
        f"{_GLUE}/RTE.zip",
        "6e33f09b5c2bfd5fd5fde217070f3dd49e484e33b9752b5864cf36fc421a213f", "RTE/test.tsv"),
    "stsb/train.tsv": RemoteFile(
        f"{_GLUE}/STS-B.zip",
        "41c4d978b6162abdcada7e49a982211954cca5459c228db478af333124b257a2", "STS-B/train.tsv"),
    "stsb/dev.tsv": RemoteFile(
        f"{_GLUE}/STS-B.zip",
        "fe7dc0632a5033562f3cadff991f6e8d9b9b6311861660e78c3c82eb7db67f59", "STS-B/dev.tsv"),
    "stsb/test.tsv": RemoteFile(
        f"{_GLUE}/STS-B.zip",
        "16b4223d7d44a644fbc10f1b449472cfe81e1715fb07cf44023b0aa88ce856eb", "STS-B/test.tsv"),
    "smsspam/SMSSpamCollection": RemoteFile(
        _SMSSPAM,
        "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d", "SMSSpamCollection"),
    "conll2003/eng.train": RemoteFile(
        f"{_CONLL}/eng.train",
        "eac0822f501353f265383ddf1edb0dcd42a1b6eefd3e383d7074db98c38eb41c"),
    "conll2003/eng.testa": RemoteFile(
        f"{_CONLL}/eng.testa",
        "aedc4ccbd1ae9795feaa0e86fe72d195b0258abed9d705b630d1c889276fac1e"),
    "conll2003/eng.testb": RemoteFile(
        f"{_CONLL}/eng.testb",
        "0632f32c090ef31c223135b7fee3187a7cf8e65c4015c7866bb7783428cdd9a6"),
    "squad/dev-v1.1.json.gz": RemoteFile(
        f"{_SQUAD}/dev-v1.1.json",
        "95aa6a52d5d6a735563366753ca50492a658031da74f301ac5238b03966972c9", gzip=True),
    "squad/train-v1.1.json.gz": RemoteFile(
        f"{_SQUAD}/train-v1.1.json",
        "3527663986b8295af4f7fcdff1ba1ff3f72d07d61a20f487cb238a6ef92fd955", gzip=True),
    "wikitext2/wiki.valid.tokens": RemoteFile(
        f"{_WIKITEXT2}/valid.txt",
        "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8"),
    "wikitext2/wiki.test.tokens": RemoteFile(
        f"{_WIKITEXT2}/test.txt",
        "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0"),
    # The train split's SHA-256 (10,797,148 bytes): the official file's published SHA-1 and
    # MD5 match the course copy, so this is the official file's digest too.
    "wikitext2/wiki.train.tokens": RemoteFile(
        f"{_WIKITEXT2}/train.txt", "9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f"),
}

# Names for error messages, by the first folder of a relative path.
_DATASET_NAMES = {
    "sst2": "SST-2", "mrpc": "MRPC", "rte": "RTE", "stsb": "STS-B",
    "smsspam": "SMS Spam Collection", "conll2003": "CoNLL-2003", "squad": "SQuAD v1.1",
    "wikitext2": "WikiText-2",
}


def cache_folder() -> Path:
    """The folder that downloads go to: $BERTEDU_CACHE, or `~/.cache/bertedu/data`."""
    folder = os.environ.get("BERTEDU_CACHE")
    return Path(folder).expanduser() if folder else Path.home() / ".cache" / "bertedu" / "data"


def dataset_file(relative_path: str) -> Path:
    """Return the local path of one dataset file, downloading it if it is nowhere local.

    Looks in $BERTEDU_DATA, then in `cache_folder()`, then downloads the official file
    listed in `REMOTE_FILES` into the cache (see the module docstring).

    Args:
        relative_path: The file's path inside the data folder, with `/` separators, e.g.
            `"sst2/train.tsv"`.

    Returns:
        The path of an existing file.

    Raises:
        FileNotFoundError: BERTEDU_DATA names a folder that does not exist, or the file is
            not local and could not be downloaded (for example offline).
        ValueError: `relative_path` is not a relative path inside the data folder, or a
            download does not match its published SHA-256 (nothing is kept then).
    """
    if not isinstance(relative_path, str) or not relative_path:
        raise ValueError("relative_path must be a non-empty string like 'sst2/train.tsv', "
                         f"got {relative_path!r}")
    parts = PurePosixPath(relative_path)
    if parts.is_absolute() or ".." in parts.parts:
        raise ValueError(f"relative_path must stay inside the data folder, got {relative_path!r}")
    searched = []

    data_folder = os.environ.get("BERTEDU_DATA")
    if data_folder:
        folder = Path(data_folder).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(
                f"BERTEDU_DATA is set to {data_folder!r}, which is not a folder: point it at the "
                "course's datasets folder (../shared/data in CI) or unset it")
        if (folder / relative_path).is_file():
            return _verified(relative_path, folder / relative_path)
        searched.append(f"BERTEDU_DATA={folder}")
    else:
        searched.append("BERTEDU_DATA (not set)")

    cached = cache_folder() / relative_path
    if cached.is_file():
        return _verified(relative_path, cached)
    searched.append(f"the cache {cache_folder()}")

    dataset = _DATASET_NAMES.get(parts.parts[0], parts.parts[0])
    remote = REMOTE_FILES.get(relative_path)
    if remote is None:
        raise FileNotFoundError(
            f"{dataset} file {relative_path!r} not found in {' or '.join(searched)}, and it has "
            "no download source in bertedu.data.REMOTE_FILES. Set BERTEDU_DATA to the folder "
            "that holds it.")
    try:
        download, announced_length = _fetch(remote.url)
    except (OSError, http.client.HTTPException) as error:  # offline, HTTP error, cut connection
        raise FileNotFoundError(
            f"{dataset} file {relative_path!r} not found in {' or '.join(searched)}, and "
            f"downloading it from {remote.url} failed ({error}). Set BERTEDU_DATA to the folder "
            "that holds the course's datasets (../shared/data in CI), or connect to the "
            "network.") from error
    _store(relative_path, remote, download, announced_length, cached)
    return cached


VERIFIED_RECORD = ".verified.json"  # in cache_folder(): files already checked, by path, size and mtime


def _verified(relative_path: str, path: Path) -> Path:
    """`path`, once its content matches the registered SHA-256 of `relative_path`.

    A local copy is checked like a download: a truncated, edited or wrongly decoded file
    (CRLF line ends, an HTML error page saved under the file's name) is refused, not read.
    The check runs once per file: `cache_folder()/.verified.json` remembers the files that
    passed, by path, size and modification time, and any change to those checks it again.
    Files without a registered checksum are returned as they are.
    """
    remote = REMOTE_FILES.get(relative_path)
    if remote is None or remote.sha256 is None:
        return path
    stat = path.stat()
    key, stamp = str(path.resolve()), [stat.st_size, stat.st_mtime_ns, remote.sha256]
    record_path = cache_folder() / VERIFIED_RECORD
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        record = {}
    if not isinstance(record, dict):
        record = {}
    if record.get(key) == stamp:
        return path
    content = path.read_bytes()
    if remote.gzip:
        try:
            content = gzip.decompress(content)
        except (gzip.BadGzipFile, EOFError, zlib.error) as error:  # not gzip, cut short, damaged
            raise ValueError(f"{path} is not a complete gzip file ({error}): replace it with the "
                             f"course's copy, or delete it to download {remote.url} again") from error
    actual = hashlib.sha256(content).hexdigest()
    if actual != remote.sha256:
        raise ValueError(
            f"{path} does not match the registered checksum of {relative_path!r} (expected sha256 "
            f"{remote.sha256}, got {actual}): the file is damaged, edited or converted (line ends?). "
            "Replace it with the course's copy, or delete it to download the official file again.")
    record[key] = stamp
    try:  # the record only saves time: a read-only cache means checking again next time
        record_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(record_path, lambda temporary: Path(temporary).write_text(json.dumps(record)))
    except OSError:
        pass
    return path


def _fetch(url: str) -> tuple[bytes, int | None]:
    """The bytes at `url`, and the length the server announced (Content-Length) or None.

    The files are small (30 MB at most), so memory holds them.
    """
    request = urllib.request.Request(url, headers={"User-Agent": "bertedu"})
    with urllib.request.urlopen(request, timeout=60) as response:
        announced = response.headers.get("Content-Length", "")
        # read() with no size raises IncompleteRead if the connection drops before the
        # announced length, so a cut download is an error, not a short file.
        content = response.read()
    return content, int(announced) if announced.strip().isdigit() else None


def _store(relative_path: str, remote: RemoteFile, download: bytes,
           announced_length: int | None, target: Path) -> None:
    """Check a download and write the file to `target`, which appears only when complete.

    `download` is what `_fetch` returned: the file itself, or the zip archive that holds it.
    """
    if remote.sha256 is None:
        _check_complete(relative_path, remote, download, announced_length)
    content = download if remote.member is None else _zip_member(download, remote, relative_path)
    if remote.sha256 is None:
        _check_plausible(relative_path, remote, content)
    actual = hashlib.sha256(content).hexdigest()
    if remote.sha256 is not None and actual != remote.sha256:
        raise ValueError(
            f"checksum mismatch for {relative_path!r} downloaded from {remote.url}: expected "
            f"sha256 {remote.sha256}, got {actual}. Nothing was kept; try again later, or put "
            "the official file into the folder named by BERTEDU_DATA.")
    if remote.gzip:
        content = gzip.compress(content, mtime=0)  # mtime=0: the same bytes on every download

    target.parent.mkdir(parents=True, exist_ok=True)
    # Write next to the target, then rename: os.replace within one folder is atomic, so the
    # target is either absent or complete, never half written (say, after Ctrl-C).
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                         suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)  # a no-op after a successful os.replace


# A download with no registered SHA-256 cannot be proven right, but a server's error or
# login page (status 200, HTML) or a cut transfer must not be cached as the dataset. So such a
# download is kept only when it is complete and looks like the file's format.


def _check_complete(relative_path: str, remote: RemoteFile, download: bytes,
                    announced_length: int | None) -> None:
    """Refuse an unhashed download unless the server announced its length and sent exactly that."""
    if announced_length is None:
        raise _refused_download(relative_path, remote, (
            f"the server did not announce its length (no Content-Length), so the "
            f"{len(download):,} bytes received may be only part of it"))
    if announced_length != len(download):
        raise _refused_download(relative_path, remote, (
            f"the server announced {announced_length:,} bytes but sent {len(download):,}"))


def _check_plausible(relative_path: str, remote: RemoteFile, content: bytes) -> None:
    """Refuse an unhashed file that is not what its name promises: it must not be an HTML page,
    and must be non-empty UTF-8 text, whose first line has a tab for a `.tsv` and which parses
    for a `.json` (or `.json.gz`)."""
    if content[:200].lstrip().lower().startswith((b"<!doctype html", b"<html")):
        raise _refused_download(relative_path, remote, (
            "it is an HTML page (an error, login or moved page), not the data file"))
    if not content.strip():
        raise _refused_download(relative_path, remote, "it is empty")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _refused_download(relative_path, remote,
                                "it is not UTF-8 text, which every file of the course is") from None
    name = relative_path.removesuffix(".gz")
    if name.endswith(".tsv") and "\t" not in text.split("\n", 1)[0]:
        raise _refused_download(relative_path, remote,
                                "its first line has no tab, so it is not a tab-separated file")
    if name.endswith(".json"):
        try:
            json.loads(text)
        except json.JSONDecodeError as error:
            reason = f"it is not valid JSON ({error})"
            raise _refused_download(relative_path, remote, reason) from None


def _refused_download(relative_path: str, remote: RemoteFile, reason: str) -> ValueError:
    return ValueError(
        f"refusing the download of {relative_path!r} from {remote.url}: it has no registered "
        f"sha256 in bertedu.data.REMOTE_FILES, and {reason}. Nothing was kept. Register the "
        "file's sha256, or put the file into the folder named by BERTEDU_DATA.")


def _zip_member(archive: bytes, remote: RemoteFile, relative_path: str) -> bytes:
    """The bytes of `remote.member` inside the downloaded zip `archive`."""
    if not archive.startswith(b"PK\x03\x04"):  # the signature every zip archive starts with
        raise ValueError(f"{remote.url}, downloaded for {relative_path!r}, is not a zip archive "
                         f"(it starts with {archive[:15]!r}). Nothing was kept; try again later.")
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
            return zipped.read(remote.member)
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:  # not a zip, or a damaged one
        raise ValueError(
            f"{remote.url}, downloaded for {relative_path!r}, is not a zip archive or is damaged "
            f"({error}). Nothing was kept; try again later.") from error
    except KeyError as error:
        raise ValueError(f"the archive {remote.url} has no member {remote.member!r} "
                         f"(needed for {relative_path!r})") from error


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
    """The lines of a UTF-8 text file, without their line ends (LF or CRLF).

    We split on "\\n" only: `str.splitlines` would also split inside an SMS that contains
    characters such as "\\x0b" or "\\u2028". A "\\r" before the "\\n" is dropped, so a copy
    saved with Windows line ends gives the same records (no SMS ending in "\\r", no tag "O\\r").
    """
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
    """The raw lines of WikiText-2 (tokenized v1 files), without line ends.

    The official token counts (valid 217,646, test 245,569) are
    `sum(len(line.split()) + 1 for line in lines)`: the words of every line plus one
    `<eos>` per line, blank lines included.

    Args:
        split: "train", "valid" or "test" (the course copy holds all three).
    """
    return _read_wikitext2(split)[1]


def _read_wikitext2(split: str) -> tuple[Path, list[str]]:
    """The path and the lines of one WikiText-2 split; an empty file is an error."""
    _check_split(split, ("train", "valid", "test"), "WikiText-2")
    path = dataset_file(f"wikitext2/wiki.{split}.tokens")
    lines = _read_lines(path)
    _require_records(lines, path, "lines")
    return path, lines


def load_wikitext2(split: str) -> list[dict]:
    """WikiText-2 as articles made of paragraphs.

    The file holds one paragraph or heading per line. An article starts at a title line
    ` = Title = ` that is followed by a blank line; every other non-blank line is one of
    its paragraphs, except section headings (` = = Section = = `, ` = = = Sub = = = ` ...),
    which are dropped. Blank lines (a single space) are dropped too. The title test needs
    the blank line because two displayed formulas in the test split look like titles
    (` = 1 <unk> and <unk> C = `): they are kept as paragraphs, and each split has its
    official 60 articles.

    Text stays as tokenized: words separated by spaces, `@-@` for a hyphen inside a word,
    `<unk>` for rare words.

    Args:
        split: "train", "valid" or "test".

    Returns:
        A list of `{"title": str, "paragraphs": [str, ...]}` with titles and paragraphs
        stripped of their surrounding spaces, e.g. `{"title": "Homarus gammarus",
        "paragraphs": ["Homarus gammarus , known as the European lobster ...", ...]}`.
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
    """SST-2 (GLUE): movie-review sentences and phrases labeled by sentiment.

    Sentences are lower-cased and tokenized (`it 's`). The files end every sentence with a
    space, which is removed here.

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
    """The SMS Spam Collection v.1: 5,574 text messages, 747 of them spam.

    The file has no header and no quoting: each line is `ham` or `spam`, a tab, and the raw
    message, kept exactly as written (some end with spaces). There is no official split:
    hold out a test set with `split_smsspam`.

    Returns:
        A list of `{"text": str, "label": int}` with label 0 = ham, 1 = spam
        (`SMSSPAM_LABELS`).
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
    """Hold out a stratified test set: the same share of every label goes to test.

    With the defaults, round(0.2 * 747) = 149 spam and round(0.2 * 4,827) = 965 ham
    messages form the test set (Python's `round`, which sends an exact half to the even
    number). The choice depends only on `seed`, so every chapter gets
    the same split. Both parts keep the order of `records`. Any records with an int
    `"label"` work, not only SMS.

    Args:
        records: The output of `load_smsspam()` (or any list of dicts with a "label").
        test_fraction: The share of each label held out, strictly between 0 and 1.
        seed: Seed of the random choice.

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
    """MRPC (GLUE): news sentence pairs, labeled 1 when they are paraphrases.

    Built as GLUE builds it, from the two Microsoft files: the 408 pairs listed in
    `dev_ids.tsv` form dev, the rest of `msr_paraphrase_train.txt` is train, and
    `msr_paraphrase_test.txt` is test, with its labels (GLUE's own test.tsv drops them).
    The sentences are tokenized (`doesn 't`).

    Args:
        split: "train" (3,668), "dev" (408) or "test" (1,725).

    Returns:
        A list of `{"sentence1", "sentence2", "label", "id1", "id2"}`, label 0 = not
        equivalent, 1 = equivalent (`MRPC_LABELS`); the ids are the corpus's sentence ids,
        as strings.
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
    """Convert one sentence's tags from IOB1 to IOB2 (BIO): every entity starts with `B-`.

    An `I-X` tag starts an entity when the tag before it is not of type X (it is `O`, another
    type, or there is none): it becomes `B-X`. `B-` tags, which in IOB1 already mark a new
    entity, stay. Already-IOB2 tags come back unchanged.

    Example: `["I-PER", "I-PER", "B-PER", "O", "I-LOC"]` ->
    `["B-PER", "I-PER", "B-PER", "O", "B-LOC"]`.

    Args:
        tags: Tags `O`, `B-TYPE` or `I-TYPE`.

    Returns:
        A new list of the same length.
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
    """CoNLL-2003 English: Reuters sentences with POS, chunk and named-entity tags.

    `-DOCSTART-` lines (document boundaries) are skipped; a blank line ends a sentence.
    Chunk and NER tags are converted from the file's IOB1 to IOB2 (see the module
    docstring); POS tags are Penn Treebank tags as written.

    Args:
        split: "train" (`eng.train`, 14,041 sentences), "dev" (`eng.testa`, 3,250) or
            "test" (`eng.testb`, 3,453).

    Returns:
        A list of `{"tokens", "pos_tags", "chunk_tags", "ner_tags"}`, four lists of strings
        of one length, e.g. tokens `["EU", "rejects", "German", ...]` with ner_tags
        `["B-ORG", "O", "B-MISC", ...]`. `CONLL_NER_LABELS` maps NER tags to ids.
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
        split: "dev" (10,570 questions on 2,067 paragraphs of 48 articles) or "train"
            (87,599 questions; not in the course copy, so it is downloaded).

    Returns:
        A list of `{"id", "title", "context", "question", "answers"}` in file order, with
        `answers = {"text": [...], "answer_start": [...]}` as in Hugging Face's `squad`.
        `answer_start[k]` is a character offset into `context`. Dev questions have several
        answers (usually three annotators, which may repeat); the official score takes the
        best match over them.
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
