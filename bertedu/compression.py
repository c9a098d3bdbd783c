"""Smaller BERTs: fewer layers, shared layers, fewer bits, fewer weights, and how to measure them.

Four ways to make a fine-tuned BERT cheaper, each a function that returns a new model and
leaves its input untouched:

- **A student with fewer layers** (`student_from_teacher`): keep a subset of the teacher's
  encoder blocks, as DistilBERT (Sanh et al., 2019) initialises its 6-layer student from
  every other layer of BERT-base, then train it on the teacher's soft labels
  (`WithTeacherLogits` here, `distillation_objective` in `bertedu.distillation`).
- **Parameter sharing as in ALBERT** (Lan et al., 2020; `share_layers`): one block's weights
  used by every layer, so L layers store one block; and **factorised embeddings**
  (`factorize_embeddings`): the `V x H` word table replaced by `V x E` then `E x H`. Sharing
  saves parameters and disk, not compute: every layer still runs.
- **Dynamic int8 quantization** (`quantize_dynamic_int8`): the weights of every `nn.Linear`
  stored as 8-bit integers with one scale (PyTorch's `quantize_dynamic`), the activations
  quantized on the fly; optionally the word-embedding table too, one scale per row.
- **Magnitude pruning** (`magnitude_prune`): the encoder's smallest weights set to zero.
  Unstructured zeros do not make a dense matrix product faster or a dense file smaller.

And the measures of the trade-off: `parameter_count`, `size_on_disk`, `sparsity`,
`latency_per_batch`.

Shape legend: B batch size, T sequence length, V vocabulary size, H hidden size,
E factorised embedding size, C classes, L layers.
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
    """A copy of `teacher` that keeps only the encoder blocks `layers` (0 = the lowest).

    Everything else (embeddings, pooler, task head) is copied unchanged, and
    `config.num_hidden_layers` becomes `len(layers)`. DistilBERT keeps one layer of two
    (`layers=[0, 2, 4, 6, 8, 10]` of BERT-base).

    Example:
        >>> student = student_from_teacher(teacher, layers=[0, 3])   # 6 -> 2 blocks

    Args:
        teacher: a `BertModel` or a head with a `.bert` encoder.
        layers: increasing, distinct block indices in `[0, L)`.

    Returns:
        A new model of the teacher's class; the teacher is not changed.
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
    """ALBERT's cross-layer sharing: a copy of `model` whose every layer is block `source`.

    The encoder's `ModuleList` holds the *same* `BertLayer` object `num_layers` times, so the
    block's parameters exist once (`parameter_count` counts them once, the optimizer updates
    them once with the gradients of every use, `torch.save` stores them once), while the
    forward pass still runs `num_layers` blocks: the compute per token does not shrink.
    (`save_pretrained` writes safetensors, which refuses tensors shared between names; keep
    a shared model with `torch.save(model.state_dict(), path)`.)

    Args:
        model: a `BertModel` or a head with a `.bert` encoder.
        num_layers: how many times the block runs; default: the model's number of layers.
        source: the block whose weights every layer uses.

    Returns:
        A new model; `model` is not changed.
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
    """A word-embedding table in two factors: ids -> `[V, E]` table -> `E x H` projection.

    Parameters: `V E + E H` instead of `V H` (ALBERT-base: E = 128, H = 768). Drop-in for
    `BertEmbeddings.word_embeddings`: `[B, T]` ids -> `[B, T, H]` vectors.

    ALBERT factorises the sum of the word, position and segment embeddings (all of size E)
    and projects that; here only the word table, which holds nearly all of the embedding
    parameters, is factorised, and the projection has no bias, so that with E = H and an
    identity projection it is the plain table.
    """

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
        model: a `BertModel` or a head with a `.bert` encoder, with a plain word table.
        embedding_size: E, with `1 <= E <= H`.
        init: "svd": the best rank-E approximation of the existing `[V, H]` table (truncated
            SVD, `W ~ (U_E S_E) V_E^T`; exact when E = H, up to float rounding); "random":
            BERT's initialisation (a model trained from scratch, as ALBERT is).

    Returns:
        A new model; `model` is not changed.
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
    """The number of distinct weights: a shared or tied tensor counts once.

    The weights of dynamically quantized layers (stored packed, not as parameters) count
    too, so a quantized model has as many weights as the model it came from.
    """
    count = sum(p.numel() for p in model.parameters())  # parameters() skips repeats
    for module in model.modules():
        if isinstance(module, _QUANTIZED_LINEAR):
            weight, bias = module._weight_bias()
            count += weight.numel() + (bias.numel() if bias is not None else 0)
        elif isinstance(module, Int8Embedding):
            count += module.weight_int8.numel()
    return count


def size_on_disk(model: nn.Module) -> int:
    """Bytes of `torch.save(model.state_dict())` in a temporary file (deleted afterwards).

    `torch.save` writes a tensor's storage once however many names point to it, so shared
    layers are stored once; int8 tensors take one byte per weight.
    """
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
    """Median wall-clock seconds of `model(**batch)` in eval mode, over `repeats` runs.

    `warmup` runs come first and are not timed (the first call allocates and picks kernels).
    The number depends on the machine, its load and `torch.get_num_threads()`: compare models
    measured in one process, one after the other, on the same batch.
    """
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
    """Symmetric int8 quantization: `weight ~ q * scale`, `q` in [-128, 127].

    `scale = max|w| / 127.5` (PyTorch's rule for `per_tensor_symmetric` int8, so the result
    equals the int8 weights of `quantize_dynamic`) over the whole tensor (`dim=None`) or one
    scale per slice along `dim` (e.g. `dim=0`: one per row).

    Returns:
        `(q, scale)`: an int8 tensor of `weight`'s shape and a float32 scale (0-dim, or the
        size of `dim`).
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
    """A word-embedding table stored in int8, one scale per row: `[V, H]` int8 + `[V]` float32.

    Looking up ids dequantizes only the rows it reads: `q[ids] * scale[ids]`. It stays a
    lookup, so unlike a `Linear` there is nothing to compute in int8.
    """

    def __init__(self, embedding: nn.Embedding):
        super().__init__()
        q, scale = quantize_symmetric(embedding.weight, dim=0)
        self.register_buffer("weight_int8", q)  # (V, H)
        self.register_buffer("scale", scale)  # (V,)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.weight_int8[input_ids].float() * self.scale[input_ids].unsqueeze(-1)  # (B, T, H)


def quantize_dynamic_int8(model: nn.Module, embeddings: bool = False) -> nn.Module:
    """A copy of `model` for CPU inference with int8 `nn.Linear` weights (dynamic quantization).

    `torch.ao.quantization.quantize_dynamic` replaces every `nn.Linear` (encoder, pooler and
    task head) by a layer that stores its weight as int8 with one scale (`quantize_symmetric`)
    and, at run time, quantizes each input batch with a scale measured on that batch, so
    that the matrix product runs in integers. Embeddings and LayerNorms stay float32.

    Args:
        model: a float32 model on the CPU.
        embeddings: also store the word-embedding table in int8 (`Int8Embedding`, one scale
            per row). In a small BERT the table is a large share of the weights (11.7 M of
            MiniLM's 22.7 M), so this decides how much smaller the file gets.

    Returns:
        A new model in eval mode (quantized models are for inference only).
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
    """A copy of `model` with the smallest-magnitude encoder weights set to zero (L1 unstructured).

    Only the weight matrices of the encoder blocks' `nn.Linear` layers are pruned (not the
    embeddings, biases, LayerNorms, pooler or head), with `torch.nn.utils.prune`, and the
    zeros are made permanent (`prune.remove`): the result is an ordinary dense model.

    Args:
        model: a `BertModel` or a head with a `.bert` encoder.
        amount: the fraction of those weights to zero, in [0, 1).
        scope: "global": the smallest `amount` of all of them together (layers with smaller
            weights lose more); "layer": `amount` of each matrix.

    Returns:
        A new model; `model` is not changed. `sparsity(result)` is the fraction reached.
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
    """A classification dataset whose items also carry the teacher's logits for that example.

    The teacher runs once over the training set (`predict_logits`), not at every step of
    every student. `collate` pads like the wrapped dataset and adds `teacher_logits [B, C]`.
    It is `bertedu.pooling.ColumnsDataset` with one column, checked to be `[N, C]` logits.

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
