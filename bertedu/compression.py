"""Smaller BERTs: fewer layers, shared layers, fewer bits, fewer weights, and how to measure them.

`student_from_teacher` (DistilBERT, Sanh et al. 2019), `share_layers` and `factorize_embeddings`
(ALBERT, Lan et al. 2020), `quantize_dynamic_int8` and `magnitude_prune` each return a new model
and leave their input untouched (chapter 13). Measures: `parameter_count`, `size_on_disk`,
`sparsity`, `latency_per_batch`.

Shapes: B batch, T sequence, V vocabulary, H hidden, E factorised embedding, C classes, L layers.
"""
from __future__ import annotations

import copy
import os
import statistics
import tempfile
import time
from typing import Sequence

import torch
from torch import nn

from .batching import eval_mode
from .pooling import ColumnsDataset
from .model import BertModel

# ---------------------------------------------------------------------------------------
# Finding the encoder
# ---------------------------------------------------------------------------------------


def _encoder(model: nn.Module) -> BertModel:
    """The `BertModel` of a bare encoder or of any head (`model.bert`)."""
    if isinstance(model, BertModel):
        return model
    bert = getattr(model, "bert", None)
    if isinstance(bert, BertModel):
        return bert
    raise ValueError(f"expected a bertedu BertModel or a model with a `.bert` encoder "
                     f"(BertForSequenceClassification, ...), got {type(model).__name__}")


def _layer_count(encoder: BertModel) -> int:
    return len(encoder.encoder.layer)


# ---------------------------------------------------------------------------------------
# Students: a subset of the teacher's layers (DistilBERT's initialisation)
# ---------------------------------------------------------------------------------------


def student_from_teacher(teacher: nn.Module, layers: Sequence[int]) -> nn.Module:
    """A new model of `teacher`'s class that keeps only the encoder blocks `layers` (0 = the lowest).

    Example:
        >>> student = student_from_teacher(teacher, layers=[0, 3])   # 6 -> 2 blocks

    Args:
        teacher: a `BertModel` or a head with a `.bert` encoder (not changed).
        layers: increasing, distinct block indices in `[0, L)`.
    """
    count = _layer_count(_encoder(teacher))
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence) or len(layers) == 0:
        raise ValueError(f"layers must be a non-empty list of block indices, got {layers!r}")
    for i in layers:
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < count:
            raise ValueError(f"layer {i!r} does not exist: the teacher has blocks 0 to {count - 1}")
    if any(b <= a for a, b in zip(layers, layers[1:])):
        raise ValueError(f"layers={list(layers)} must be increasing and distinct: a student keeps "
                         "the teacher's blocks in their order (use share_layers to reuse a block)")
    student = copy.deepcopy(teacher)
    encoder = _encoder(student)
    encoder.encoder.layer = nn.ModuleList(encoder.encoder.layer[i] for i in layers)
    _set_layer_count(student, len(layers))
    return student


def _set_layer_count(model: nn.Module, num_layers: int) -> None:
    """Keep `config.num_hidden_layers` true (the config is shared by the head and its encoder)."""
    for module in (model, _encoder(model)):
        module.config = copy.copy(module.config)
        module.config.num_hidden_layers = num_layers


# ---------------------------------------------------------------------------------------
# ALBERT: one block for every layer, factorised embeddings
# ---------------------------------------------------------------------------------------


def share_layers(model: nn.Module, num_layers: int | None = None, source: int = 0) -> nn.Module:
    """ALBERT's cross-layer sharing: a copy of `model` whose every layer is the same block `source`.

    The parameters exist once but `num_layers` blocks still run. Save it with
    `torch.save(model.state_dict(), path)`: safetensors refuses shared tensors.

    Args:
        model: a `BertModel` or a head with a `.bert` encoder (not changed).
        num_layers: how many times the block runs; default: the model's number of layers.
        source: the block whose weights every layer uses.
    """
    count = _layer_count(_encoder(model))
    num_layers = count if num_layers is None else num_layers
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
    if isinstance(source, bool) or not isinstance(source, int) or not 0 <= source < count:
        raise ValueError(f"source={source!r} is not a block of this model: it has blocks 0 to {count - 1}")
    shared = copy.deepcopy(model)
    encoder = _encoder(shared)
    block = encoder.encoder.layer[source]
    encoder.encoder.layer = nn.ModuleList([block] * num_layers)  # one object, num_layers uses
    _set_layer_count(shared, num_layers)
    return shared


class FactorizedEmbedding(nn.Module):
    """A word-embedding table in two factors, `[V, E]` then `E x H` (no bias): `[B, T]` ids ->
    `[B, T, H]`, with `V E + E H` parameters instead of `V H`. ALBERT factorises the sum of all
    three embeddings; here only the word table."""

    def __init__(self, vocab_size: int, embedding_size: int, hidden_size: int, padding_idx: int | None = None):
        super().__init__()
        self.table = nn.Embedding(vocab_size, embedding_size, padding_idx=padding_idx)  # [V, E]
        self.projection = nn.Linear(embedding_size, hidden_size, bias=False)  # weight [H, E]

    @property
    def weight(self) -> torch.Tensor:
        """The `[V, E]` table."""
        return self.table.weight

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.projection(self.table(input_ids))  # (B, T, E) -> (B, T, H)


def factorize_embeddings(model: nn.Module, embedding_size: int, init: str = "svd") -> nn.Module:
    """A copy of `model` whose word embeddings are a `FactorizedEmbedding` of size `embedding_size`.

    Args:
        model: a `BertModel` or a head with a `.bert` encoder, with a plain word table (not changed).
        embedding_size: E, with `1 <= E <= H`.
        init: "svd" (the best rank-E approximation of the `[V, H]` table; exact when E = H) or
            "random" (BERT's initialisation).
    """
    encoder = _encoder(model)
    table = encoder.embeddings.word_embeddings
    if not isinstance(table, nn.Embedding):
        raise ValueError(f"the word embeddings are a {type(table).__name__}, not a plain nn.Embedding: "
                         "factorise a model once")
    V, H = table.weight.shape
    if isinstance(embedding_size, bool) or not isinstance(embedding_size, int) or not 1 <= embedding_size <= H:
        raise ValueError(f"embedding_size must be an integer in [1, hidden_size={H}], got {embedding_size!r}")
    if init not in ("svd", "random"):
        raise ValueError(f"init={init!r}: use 'svd' (approximate the existing table) or 'random'")
    new = copy.deepcopy(model)
    factorized = FactorizedEmbedding(V, embedding_size, H, padding_idx=table.padding_idx)
    factorized.to(device=table.weight.device, dtype=table.weight.dtype)
    with torch.no_grad():
        if init == "svd":
            U, S, Vh = torch.linalg.svd(table.weight.float(), full_matrices=False)  # [V,H], [H], [H,H]
            E = embedding_size
            factorized.table.weight.copy_(U[:, :E] * S[:E])  # (V, E)
            factorized.projection.weight.copy_(Vh[:E].T)  # (H, E)
        else:
            std = encoder.config.initializer_range
            nn.init.normal_(factorized.table.weight, std=std)
            nn.init.normal_(factorized.projection.weight, std=std)
            if table.padding_idx is not None:
                factorized.table.weight[table.padding_idx].zero_()
    _encoder(new).embeddings.word_embeddings = factorized
    return new


# ---------------------------------------------------------------------------------------
# Measures
# ---------------------------------------------------------------------------------------


def parameter_count(model: nn.Module) -> int:
    """The number of distinct weights (a shared or tied tensor counts once; int8 weights count)."""
    count = sum(p.numel() for p in model.parameters())  # parameters() skips repeats
    for module in model.modules():
        if isinstance(module, _QUANTIZED_LINEAR):
            weight, bias = module._weight_bias()
            count += weight.numel() + (bias.numel() if bias is not None else 0)
        elif isinstance(module, Int8Embedding):
            count += module.weight_int8.numel()
    return count


def size_on_disk(model: nn.Module) -> int:
    """Bytes of `torch.save(model.state_dict())`: shared storage once, int8 one byte per weight."""
    handle, path = tempfile.mkstemp(suffix=".pt")
    os.close(handle)
    try:
        torch.save(model.state_dict(), path)
        return os.path.getsize(path)
    finally:
        os.remove(path)


def _encoder_linears(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """The `nn.Linear` layers inside the encoder blocks (attention and feed-forward), once each."""
    seen, linears = set(), []
    for name, module in _encoder(model).encoder.named_modules():
        if isinstance(module, nn.Linear) and id(module) not in seen:
            seen.add(id(module))
            linears.append((name, module))
    return linears


def sparsity(model: nn.Module) -> float:
    """The fraction of exact zeros among the weights of the encoder blocks' `nn.Linear` layers."""
    linears = _encoder_linears(model)
    if not linears:
        raise ValueError("the model's encoder has no nn.Linear layers (is it quantized?)")
    zeros = sum(int((m.weight == 0).sum()) for _, m in linears)
    return zeros / sum(m.weight.numel() for _, m in linears)


@torch.inference_mode()
def latency_per_batch(model: nn.Module, batch: dict, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall-clock seconds of `model(**batch)` in eval mode over `repeats` runs, after
    `warmup` untimed ones; compare models measured in one process, on the same batch."""
    for name, value in (("repeats", repeats), ("warmup", warmup)):
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "repeats" else 0):
            raise ValueError(f"{name} must be an integer >= {1 if name == 'repeats' else 0}, got {value!r}")
    if not isinstance(batch, dict) or "input_ids" not in batch:
        raise ValueError("batch must be a dict of model inputs with at least input_ids, e.g. a collated batch")
    batch = {k: v for k, v in batch.items() if k != "labels"}
    with eval_mode(model):
        for _ in range(warmup):
            model(**batch)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(**batch)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


# ---------------------------------------------------------------------------------------
# Quantization
# ---------------------------------------------------------------------------------------

_QUANTIZED_LINEAR = torch.ao.nn.quantized.dynamic.Linear


def quantize_symmetric(weight: torch.Tensor, dim: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 quantization: `weight ~ q * scale`, `scale = max|w| / 127.5` (PyTorch's
    rule), over the whole tensor (`dim=None`) or per slice along `dim`.

    Returns:
        `(q, scale)`: int8 `q` of `weight`'s shape, float32 `scale` (0-dim, or the size of `dim`).
    """
    if not weight.is_floating_point():
        raise ValueError(f"can only quantize floating-point weights, got dtype {weight.dtype}")
    w = weight.detach().float()
    if dim is None:
        max_abs = w.abs().max()
    else:
        other = [d for d in range(w.dim()) if d != dim % w.dim()]
        max_abs = w.abs().amax(dim=other)
    scale = (max_abs / 127.5).clamp(min=torch.finfo(torch.float32).eps)  # an all-zero slice: any scale
    view = scale if dim is None else scale.reshape([-1 if d == dim % w.dim() else 1 for d in range(w.dim())])
    q = torch.clamp(torch.round(w / view), -128, 127).to(torch.int8)
    return q, scale


class Int8Embedding(nn.Module):
    """A word-embedding table stored in int8, one scale per row: `[V, H]` int8 + `[V]` float32;
    a lookup dequantizes only the rows it reads."""

    def __init__(self, embedding: nn.Embedding):
        super().__init__()
        q, scale = quantize_symmetric(embedding.weight, dim=0)
        self.register_buffer("weight_int8", q)  # (V, H)
        self.register_buffer("scale", scale)  # (V,)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.weight_int8[input_ids].float() * self.scale[input_ids].unsqueeze(-1)  # (B, T, H)


def quantize_dynamic_int8(model: nn.Module, embeddings: bool = False) -> nn.Module:
    """A copy of `model` for CPU inference with int8 `nn.Linear` weights (PyTorch's `quantize_dynamic`).

    Args:
        model: a float32 model on the CPU.
        embeddings: also store the word-embedding table in int8 (`Int8Embedding`); in MiniLM it
            is 11.7 M of the 22.7 M weights.

    Returns:
        A new model in eval mode (for inference only).
    """
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ValueError("dynamic int8 quantization runs on the CPU: call model.cpu() first")
    if any(p.dtype != torch.float32 for p in model.parameters()):
        raise ValueError("quantize a float32 model (call model.float() first)")
    quantized = copy.deepcopy(model).eval()
    if embeddings:
        encoder = _encoder(quantized)
        table = encoder.embeddings.word_embeddings
        if not isinstance(table, nn.Embedding):
            raise ValueError(f"the word embeddings are a {type(table).__name__}, not a plain nn.Embedding")
        encoder.embeddings.word_embeddings = Int8Embedding(table)
    return torch.ao.quantization.quantize_dynamic(quantized, {nn.Linear}, dtype=torch.qint8, inplace=True)


# ---------------------------------------------------------------------------------------
# Pruning
# ---------------------------------------------------------------------------------------


def magnitude_prune(model: nn.Module, amount: float, scope: str = "global") -> nn.Module:
    """A copy of `model` with the smallest-magnitude weights of the encoder blocks' `nn.Linear`
    matrices set to zero (L1 unstructured, made permanent: an ordinary dense model).

    Args:
        model: a `BertModel` or a head with a `.bert` encoder (not changed).
        amount: the fraction of those weights to zero, in [0, 1).
        scope: "global" (the smallest of all together) or "layer" (`amount` of each matrix).
    """
    from torch.nn.utils import prune

    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 <= amount < 1:
        raise ValueError(f"amount must be a fraction in [0, 1), got {amount!r}")
    if scope not in ("global", "layer"):
        raise ValueError(f"scope={scope!r}: use 'global' (one threshold) or 'layer' (each matrix)")
    pruned = copy.deepcopy(model)
    linears = [m for _, m in _encoder_linears(pruned)]
    if not linears:
        raise ValueError("the model's encoder has no nn.Linear layers to prune (is it quantized?)")
    if amount == 0:
        return pruned
    if scope == "global":
        prune.global_unstructured([(m, "weight") for m in linears], pruning_method=prune.L1Unstructured,
                                  amount=float(amount))
    else:
        for m in linears:
            prune.l1_unstructured(m, "weight", amount=float(amount))
    for m in linears:
        prune.remove(m, "weight")  # weight = weight_orig * mask, as a plain parameter
    return pruned


# ---------------------------------------------------------------------------------------
# Distillation data: each example with the teacher's logits
# ---------------------------------------------------------------------------------------


class WithTeacherLogits(ColumnsDataset):
    """A classification dataset whose items also carry the teacher's logits (`pooling.ColumnsDataset`
    with one column); `collate` adds `teacher_logits` `[B, C]`.

    Args:
        dataset: e.g. a `SequenceClassificationDataset` (items, `collate`, `lengths`).
        teacher_logits: FloatTensor `[N, C]`, row i for example i.
    """

    def __init__(self, dataset, teacher_logits: torch.Tensor):
        if not isinstance(teacher_logits, torch.Tensor) or teacher_logits.dim() != 2:
            raise ValueError("teacher_logits must be a FloatTensor [num_examples, num_classes], got "
                             f"{tuple(teacher_logits.shape) if isinstance(teacher_logits, torch.Tensor) else type(teacher_logits).__name__}")
        if teacher_logits.size(0) != len(dataset):
            raise ValueError(f"teacher_logits has {teacher_logits.size(0)} rows but the dataset has "
                             f"{len(dataset)} examples: compute them with predict_logits(teacher, dataset)")
        super().__init__(dataset, teacher_logits=teacher_logits.detach().float().cpu())
        self.teacher_logits = self.columns["teacher_logits"]
