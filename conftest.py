"""Root pytest hooks: run the suite on every core, and report how long each chapter took.

`make test` runs `pytest -n auto --dist loadgroup` (pytest-xdist): one worker per core, each
worker takes whole test files and whole notebooks (a notebook's cells share one kernel, so they
never split). Every worker, and the notebook kernels it starts, uses one thread: on a 2-core
machine two chapters side by side finish sooner than two threads sharing one chapter. Chapters
6, 12 and 15 form one group that runs in that order: chapter 6 leaves the book's pretrained
model in the cache, where 12 and 15 load it (otherwise each would pretrain it again).
A plain `pytest` (no `-n`) runs everything in one process, as before.
"""
import os
from collections import defaultdict
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Read by PyTorch (and its BLAS) when it starts, here and in every notebook kernel.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

BOOK_MODEL_CHAPTERS = ("06_", "12_", "15_")  # the writer first, then its readers
_notebook_seconds = defaultdict(float)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    for item in items:
        path = item.nodeid.split("::")[0]
        name = Path(path).name
        group = "book-model-chapters" if name.endswith(".ipynb") and name.startswith(BOOK_MODEL_CHAPTERS) else path
        item.add_marker(pytest.mark.xdist_group(group))


def pytest_runtest_logreport(report):
    if report.when == "call" and ".ipynb" in report.nodeid:
        _notebook_seconds[report.nodeid.split("::")[0]] += report.duration


def pytest_terminal_summary(terminalreporter):
    if not _notebook_seconds:
        return
    terminalreporter.section("notebook execution times")
    for path, seconds in sorted(_notebook_seconds.items()):
        terminalreporter.write_line(f"{seconds:7.1f} s  {path}")
    terminalreporter.write_line(f"{sum(_notebook_seconds.values()):7.1f} s  total (summed over workers)")
