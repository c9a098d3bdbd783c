"""Adapters: small bottleneck layers inside every encoder block, the only encoder weights a task trains.

Houlsby et al. 2019: `adapter(h) = h + W_up f(W_down h + b_down) + b_up`, H -> m -> H with
m << H, after the attention output and the feed-forward output of every block, as
`LayerNorm(x + adapter(dropout(dense(h))))`; the pretrained weights stay frozen (chapter 7).

Example:
    >>> model = BertForSequenceClassification.from_pretrained(minilm_path(), num_labels=2)
    >>> add_adapters(model, bottleneck_size=64)   # two adapters per block
    >>> mark_trainable(model, "adapters")         # adapters + LayerNorms + head
    >>> save_trainable(model, "sst2_adapters.safetensors")  # after training: the task's tensors
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .checkpoints import atomic_write
from .model import BertLayer, activation

# What each `mark_trainable` mode trains, besides the task head (every parameter outside the
# encoder's embeddings and blocks: the pooler and the classifier, or `qa_outputs`, ...).
MODES = ("full", "head", "adapters")
ENCODER_PREFIXES = ("embeddings.", "encoder.")  # of a BertModel, after any `bert.` prefix


class Adapter(nn.Module):
    """The bottleneck `h + W_up f(W_down h)`: `[..., H] -> [..., H]`, with `2 m H + m + H` parameters.

    Args:
        hidden_size, bottleneck_size: H and m (the paper tries m from 8 to 256).
        hidden_act: the nonlinearity f, a name from `bertedu.model.ACTIVATIONS` ("gelu").
        init_std: std of both projections' initial weights; small = a near-identity start.
    """

    def __init__(self, hidden_size: int, bottleneck_size: int = 64, hidden_act: str = "gelu",
                 init_std: float = 1e-3):
        super().__init__()
        for name, value in (("hidden_size", hidden_size), ("bottleneck_size", bottleneck_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not init_std >= 0:
            raise ValueError(f"init_std must be >= 0, got {init_std!r}")
        self.down = nn.Linear(hidden_size, bottleneck_size)  # W_down: H -> m
        self.act = activation(hidden_act)
        self.up = nn.Linear(bottleneck_size, hidden_size)  # W_up: m -> H
        for linear in (self.down, self.up):
            nn.init.normal_(linear.weight, mean=0.0, std=init_std)
            nn.init.zeros_(linear.bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return hidden_states + self.up(self.act(self.down(hidden_states)))  # (..., H)


class AdaptedOutput(nn.Module):
    """`LayerNorm(x + adapter(dropout(dense(h))))`, reusing a block output's `dense`, `dropout`, `LayerNorm`."""

    def __init__(self, output: nn.Module, adapter: Adapter):
        super().__init__()
        self.dense = output.dense
        self.dropout = output.dropout
        self.LayerNorm = output.LayerNorm  # HF's name, kept so checkpoints load
        self.adapter = adapter

    def forward(self, hidden_states, input_tensor):
        return self.LayerNorm(input_tensor + self.adapter(self.dropout(self.dense(hidden_states))))


def encoder_layers(model: nn.Module) -> list[BertLayer]:
    """Every `BertLayer` of a `BertModel` or of a model with a head (`model.bert`)."""
    layers = [module for module in model.modules() if isinstance(module, BertLayer)]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no BertLayer: pass a bertedu BertModel or a "
                         "model with a head (BertForSequenceClassification, ...)")
    return layers


def has_adapters(model: nn.Module) -> bool:
    return any(isinstance(module, Adapter) for module in model.modules())


def add_adapters(model: nn.Module, bottleneck_size: int = 64, init_std: float = 1e-3) -> nn.Module:
    """Insert two trainable adapters into every encoder block of `model`, in place; return it.

    Args:
        model: a bertedu `BertModel`, or a model with a head, loaded with its pretrained weights.
        bottleneck_size: m, the width of every adapter's bottleneck.
        init_std: see `Adapter`.

    Raises:
        ValueError: the model has no encoder blocks, or already has adapters.
    """
    layers = encoder_layers(model)
    if has_adapters(model):
        raise ValueError("the model already has adapters; add_adapters is meant to be called once "
                         "(load a fresh pretrained model to change the bottleneck size)")
    config = model.config
    reference = layers[0].output.dense.weight
    for layer in layers:
        for parent, name in ((layer.attention, "output"), (layer, "output")):
            adapter = Adapter(config.hidden_size, bottleneck_size, config.hidden_act, init_std)
            adapted = AdaptedOutput(getattr(parent, name), adapter.to(reference.device, reference.dtype))
            adapted.train(model.training)
            setattr(parent, name, adapted)
    return model


def is_head_parameter(name: str) -> bool:
    """True for a parameter outside the encoder's embeddings and blocks: the pooler and the head."""
    if name.startswith("bert."):
        name = name[len("bert."):]
    return not name.startswith(ENCODER_PREFIXES)


def mark_trainable(model: nn.Module, mode: str) -> list[str]:
    """Set `requires_grad` for one fine-tuning mode and return the names that train: "full" (all),
    "head" (pooler and task head), "adapters" (adapters, LayerNorms, pooler, head; after `add_adapters`)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "adapters" and not has_adapters(model):
        raise ValueError('mode="adapters" but the model has no adapters: call add_adapters(model) first')
    trained = []
    for name, parameter in model.named_parameters():
        if mode == "full":
            train = True
        elif mode == "head":
            train = is_head_parameter(name)
        else:
            train = is_head_parameter(name) or ".adapter." in name or "LayerNorm" in name
        parameter.requires_grad_(train)
        if train:
            trained.append(name)
    return trained


def trainable_and_total_parameters(model: nn.Module) -> tuple[int, int]:
    """`(trainable, total)` numbers of parameters (a tied weight is counted once)."""
    parameters = list({id(p): p for p in model.parameters()}.values())
    return (sum(p.numel() for p in parameters if p.requires_grad), sum(p.numel() for p in parameters))


def trainable_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors a task must store: every parameter with `requires_grad`, by its name."""
    state = {name: p.detach().contiguous().cpu() for name, p in model.named_parameters() if p.requires_grad}
    if not state:
        raise ValueError("no parameter of the model requires grad: call mark_trainable first")
    return state


def stored_bytes(model: nn.Module) -> int:
    """Bytes of the tensors `save_trainable` writes (the file adds a small header)."""
    return sum(t.numel() * t.element_size() for t in trainable_state_dict(model).values())


def save_trainable(model: nn.Module, path: str | Path) -> Path:
    """Write only the trainable tensors to a safetensors file, atomically; return its path.
    `load_trainable` puts them into a fresh pretrained model with the same adapters."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = trainable_state_dict(model)
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata={"format": "pt", "bertedu": "task tensors"}))
    return path


def load_trainable(model: nn.Module, path: str | Path) -> list[str]:
    """Copy the tensors of a `save_trainable` file into `model` (all checks first); return their names.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file names a tensor the model lacks (call `add_adapters` first?), or a
            shape differs (another bottleneck size or head).
    """
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no task file at {path}")
    try:
        state = load_file(str(path))
    except Exception as error:  # safetensors raises its own error types
        raise ValueError(f"{path} is not a readable safetensors file ({error}); it may be truncated") from error
    own = dict(model.named_parameters())
    unknown = sorted(n for n in state if n not in own)
    if unknown:
        hint = (" The file holds adapters: call add_adapters(model, bottleneck_size=...) first."
                if any(".adapter." in n for n in unknown) else "")
        raise ValueError(f"{path} has {len(unknown)} tensors the model lacks, first {unknown[:3]}.{hint}")
    wrong = [f"{n}: file {tuple(t.shape)}, model {tuple(own[n].shape)}" for n, t in state.items()
             if t.shape != own[n].shape]
    if wrong:
        raise ValueError(f"{path} was saved from a differently shaped model (another bottleneck size "
                         f"or number of labels?): {wrong[:3]}")
    with torch.no_grad():
        for name, tensor in state.items():
            own[name].copy_(tensor)
    return sorted(state)
