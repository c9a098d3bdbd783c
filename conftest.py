"""Root pytest hooks: run the suite on every core, and report how long each chapter took.

`make test` runs `pytest -n auto` (pytest-xdist): one worker per core, and the scheduler below
gives each worker whole test files and whole notebooks (a notebook's cells share one kernel, so they
never split). Every worker, and the notebook kernels it starts, uses one thread: on a 2-core
machine two chapters side by side finish sooner than two threads sharing one chapter. Every
file and notebook is its own unit of work, except the ORDERED_CHAPTERS below, and the longest
units start first. A plain `pytest` (no `-n`) runs everything in one process, in the same order.
"""
import os
from collections import defaultdict
from pathlib import Path

import pytest

# The reference libraries (transformers, sentence-transformers) draw a "Loading weights"
# progress bar for every checkpoint they load; in test output it is noise, not a result.
# huggingface_hub reads this variable when it is first imported, which is after this file,
# here for every test and every notebook kernel that pytest starts.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")



def pytest_configure(config):
    """Also switch the bars off in transformers itself: the variable above only counts if it is
    set before huggingface_hub is first imported, which a plugin or an earlier import can beat."""
    try:
        import transformers
    except ImportError:
        return
    transformers.utils.logging.disable_progress_bar()


if os.environ.get("PYTEST_XDIST_WORKER"):
    # Read by PyTorch (and its BLAS) when it starts, here and in every notebook kernel.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

# Notebooks that must run in order on one worker (a writer first, then its readers), by the
# start of their file names: chapter 14 reads the SQuAD model that chapter 11 trains and saves
# (`checkpoints.shared_run_folder`) instead of training it again; alone, it trains its own.
ORDERED_CHAPTERS: tuple[str, ...] = ("11_", "14_")
_notebook_seconds = defaultdict(float)
_notebook_span = []  # (start, stop) wall-clock times of every notebook cell


def work_unit(nodeid: str) -> str:
    """The unit of work of one worker: a test file or notebook (or the ordered chapters)."""
    path = nodeid.split("::")[0]
    name = Path(path).name
    if ORDERED_CHAPTERS and name.endswith(".ipynb") and name.startswith(ORDERED_CHAPTERS):
        return "ordered chapters"
    return path


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: ignored when xdist is not installed
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class WholeFileScheduling(LoadScopeScheduling):
        """pytest-xdist's `--dist loadscope`, with `work_unit` as the scope: every test of a
        unit runs on one worker, in collection order. (`--dist loadgroup` would do this with
        `xdist_group` marks, but pytest-xdist 3.8 cannot rename pytest 9's node ids for it.)"""

        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = False  # keep the longest-first order of the collection
    return WholeFileScheduling(config, log)


# Longest first: the workers take units in collection order, so the long chapters start at
# once and the short units fill the gaps at the end. A chapter's expected time is the sum of
# its cells' times, recorded in the committed notebook when it was last executed; these test
# files take minutes (measured on one thread); every other file is short and keeps its place.
SLOW_TEST_FILE_SECONDS = {"test_exercises.py": 170, "test_book_bert.py": 90, "test_website.py": 20}


def notebook_seconds(path: Path) -> float:
    """Seconds the notebook's cells took when it was last executed (0 if not recorded)."""
    import datetime
    import json

    total = 0.0
    for cell in json.loads(path.read_text(encoding="utf-8")).get("cells", []):
        timing = cell.get("metadata", {}).get("execution", {})
        start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if start and end:
            total += (datetime.datetime.fromisoformat(end) - datetime.datetime.fromisoformat(start)).total_seconds()
    return total


def expected_seconds(path: Path) -> float:
    if path.suffix == ".ipynb":
        return notebook_seconds(path)
    return SLOW_TEST_FILE_SECONDS.get(path.name, 0.0)


def order_longest_first(items: list) -> None:
    """Sort the items by their unit's expected time, longest first; a unit's items stay in order."""
    paths, seconds = set(), defaultdict(float)
    for item in items:
        if item.path not in paths:
            paths.add(item.path)
            seconds[work_unit(item.nodeid)] += expected_seconds(item.path)
    items.sort(key=lambda item: -seconds[work_unit(item.nodeid)])  # stable: same-unit order kept


# The fast tier, `pytest -m "not slow"`: the library's tests without the chapters, the
# website build and the nbgrader round trips (tests that use the fixtures below).
SLOW_FIXTURES = {"site", "browser", "base_url", "graded"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.suffix == ".ipynb" or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    order_longest_first(items)


def pytest_runtest_logreport(report):
    if report.when == "call" and ".ipynb" in report.nodeid:
        _notebook_seconds[report.nodeid.split("::")[0]] += report.duration
        _notebook_span.append((report.start, report.stop))


def pytest_terminal_summary(terminalreporter):
    if not _notebook_seconds:
        return
    workers = getattr(terminalreporter.config.option, "numprocesses", None)
    terminalreporter.section("notebook execution times" + (" (xdist workers, one thread each)" if workers else ""))
    for path, seconds in sorted(_notebook_seconds.items()):
        terminalreporter.write_line(f"{seconds:7.1f} s  {path}")
    terminalreporter.write_line(f"{sum(_notebook_seconds.values()):7.1f} s  total (summed over workers)")
    first_start, last_stop = min(s for s, _ in _notebook_span), max(e for _, e in _notebook_span)
    terminalreporter.write_line(f"{last_stop - first_start:7.1f} s  wall clock from the first chapter's start "
                                "to the last one's end (other tests may run in between)")
