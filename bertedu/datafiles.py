"""Finding the book's dataset files: local copies, a download cache, and checksums.

`dataset_file("sst2/train.tsv")` returns the local path of one file of a dataset;
`bertedu.data`'s loaders read every file through it.

Where the files come from. `dataset_file("sst2/train.tsv")` looks, in order, in
1. the folder named by the environment variable BERTEDU_DATA (the course's read-only copy,
   `../shared/data` in CI);
2. the cache folder BERTEDU_CACHE (default `~/.cache/bertedu/data`);
3. the official source registered in `REMOTE_FILES`: it downloads the file into the cache and
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

`REMOTE_FILES` is the registry of downloads: each file's URL (or zip archive and member) and
its published SHA-256. A test that needs a deliberately broken local copy removes the file's
entry with `monkeypatch.delitem(datafiles.REMOTE_FILES, path)`.
"""
import gzip
import hashlib
import http.client
import io
import json
import os
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .checkpoints import atomic_write



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
            "no download source in bertedu.datafiles.REMOTE_FILES. Set BERTEDU_DATA to the folder "
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
    atomic_write(target, lambda temporary: Path(temporary).write_bytes(content))  # absent or complete


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
        f"sha256 in bertedu.datafiles.REMOTE_FILES, and {reason}. Nothing was kept. Register the "
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
