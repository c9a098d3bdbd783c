"""The environment `make test` builds has what the chapters import."""
import re
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def test_d2l_imports_with_torch_backend():
    from d2l import torch as d2l  # imports torchvision at import time

    assert callable(d2l.show_heatmaps) and hasattr(d2l, "Animator")


def test_installed_torch_is_the_pinned_one():
    pinned = re.search(r"^torch==(\S+)$", (ROOT / "requirements.lock").read_text(), re.M).group(1)
    assert torch.__version__.split("+")[0] == pinned


def test_lock_pins_every_requirement():
    lock = {line.split("==")[0].lower().replace("_", "-")
            for line in (ROOT / "requirements.lock").read_text().splitlines()
            if "==" in line and not line.startswith("#")}
    wanted = {re.split(r"[=<>\[ ]", line.strip())[0].lower().replace("_", "-")
              for line in (ROOT / "requirements.in").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    assert wanted - lock == set(), "add these to requirements.lock (see CONTRIBUTING.md)"


def test_real_checkpoint_is_installed(minilm_dir):
    assert (minilm_dir / "model.safetensors").stat().st_size > 80_000_000
    assert len((minilm_dir / "vocab.txt").read_text().splitlines()) == 30522
