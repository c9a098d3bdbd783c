"""The BERT encoder, written to be read top to bottom.

Devlin, Chang, Lee and Toutanova, "BERT: Pre-training of Deep Bidirectional Transformers for
Language Understanding" (NAACL 2019), built on Vaswani et al., "Attention Is All You Need"
(2017). Reference implementations: google-research/bert `modeling.py` and Hugging Face
`transformers` `modeling_bert.py`.

Module and attribute names follow Hugging Face's (`embeddings.LayerNorm`,
`encoder.layer.N.attention.self.query`, `attention.output.dense`, `intermediate.dense`,
`output.dense`, `pooler.dense`), so a real checkpoint loads with `load_state_dict(strict=True)`
and no mapping table. Where a name is odd (`LayerNorm` in CamelCase, `attention.self`) it is
kept for that reason only.

The numerics real checkpoints depend on, stated once. Readers coming from nanoGPT, minGPT or
the Annotated Transformer, note the differences:
- post-LN blocks: `LayerNorm(x + dropout(dense(h)))`, not pre-LN `x + f(LayerNorm(x))`;
- `layer_norm_eps = 1e-12`, not PyTorch's 1e-5;
- exact erf GELU, `x * Phi(x)`, not the tanh approximation (d2l's BERT uses ReLU in places);
- a tanh pooler on the first token (`[CLS]`).

Conventions at the API boundary: `attention_mask` 1 = real token, 0 = padding (turned into an
additive mask of the dtype's minimum inside); `token_type_ids` 0 = sentence A, 1 = sentence B.

Shape legend used in comments: B batch size, T sequence length, H hidden size,
A attention heads, D = H / A head size, I intermediate size, L layers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoints import PretrainedMixin
from .checks import check_token_ids
from .config import BertConfig

# The activations a BERT config.json may name. "gelu" is the exact erf form BERT uses.
ACTIVATIONS = {
    "gelu": lambda x: F.gelu(x),
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
}


def activation(name: str):
    if name not in ACTIVATIONS:
        raise ValueError(f"hidden_act={name!r} is not supported; use one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


@dataclass
class BertModelOutput:
    """What `BertModel` returns.

    Attributes:
        last_hidden_state: FloatTensor `[B, T, H]`, the top layer's vector for every token.
        pooler_output: FloatTensor `[B, H]`, `tanh(W h_[CLS] + b)`; None without a pooler.
        hidden_states: with `output_hidden_states=True`, a tuple of L + 1 tensors `[B, T, H]`:
            the embedding output, then every layer's output.
        attentions: with `output_attentions=True`, a tuple of L tensors `[B, A, T, T]`
            (row = query position, column = key position; each row sums to 1).
    """

    last_hidden_state: torch.Tensor
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


# ---------------------------------------------------------------------------------------
# Embeddings: token + segment + position, summed, then LayerNorm and dropout
# ---------------------------------------------------------------------------------------
class BertEmbeddings(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size,
                                            padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)  # HF's name
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        T = input_ids.size(1)
        position_ids = torch.arange(T, device=input_ids.device)  # (T,), broadcast over the batch
        x = (self.word_embeddings(input_ids)
             + self.token_type_embeddings(token_type_ids)
             + self.position_embeddings(position_ids))  # (B, T, H)
        return self.dropout(self.LayerNorm(x))


# ---------------------------------------------------------------------------------------
# Attention
# ---------------------------------------------------------------------------------------
def additive_attention_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Turn a `[B, T]` mask of 1 (token) / 0 (padding) into `[B, 1, 1, T]` additive form.

    Kept positions add 0; padded positions add the most negative number of `dtype`, so after
    softmax their weight is exactly 0 and no query attends to padding. Any nonzero value
    means "attend", as in transformers: a mask of 2s is a mask of 1s, never a weight.
    """
    keep = (attention_mask[:, None, None, :] != 0).to(dtype)  # (B, 1, 1, T): broadcast over heads, queries
    return (1.0 - keep) * torch.finfo(dtype).min


def scaled_dot_product_attention(query, key, value, additive_mask=None, dropout=None):
    """Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + mask) V  (Vaswani et al., eq. 1).

    Args:
        query, key, value: FloatTensors of shape `[B, A, T, D]`.
        additive_mask: optional `[B, 1, 1, T]` (or broadcastable) tensor added to the scores.
        dropout: optional `nn.Dropout` applied to the attention weights (BERT does this).

    Returns:
        `(context, weights)`: `[B, A, T, D]` and `[B, A, T, T]`.
    """
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))  # (B, A, T, T)
    if additive_mask is not None:
        scores = scores + additive_mask
    weights = scores.softmax(dim=-1)  # each query's row sums to 1
    if dropout is not None:
        weights = dropout(weights)
    return weights @ value, weights  # (B, A, T, D), (B, A, T, T)


class BertSelfAttention(nn.Module):
    """Multi-head self-attention: A heads of width D = H / A, computed in parallel.

    Two code paths give the same numbers (tests prove it): the plain one above, which can
    return the attention weights, and PyTorch's fused `F.scaled_dot_product_attention`, used
    for speed when the weights are not requested and `use_sdpa` is True. Training on a CPU
    (gradients on) with at most 128 tokens takes the plain path: there PyTorch's fused
    backward is 20-30% slower under bf16 (`benchmarks/attention_speed.py`).
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.num_attention_heads = config.num_attention_heads
        self.head_size = config.head_size
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)
        self.use_sdpa = True

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, H = x.shape
        return x.view(B, T, self.num_attention_heads, self.head_size).transpose(1, 2)  # (B, A, T, D)

    def forward(self, hidden_states, additive_mask=None, output_attentions=False):
        q = self.split_heads(self.query(hidden_states))  # (B, A, T, D)
        k = self.split_heads(self.key(hidden_states))
        v = self.split_heads(self.value(hidden_states))
        short_cpu_training = q.requires_grad and q.device.type == "cpu" and q.shape[2] <= 128
        if self.use_sdpa and not output_attentions and not short_cpu_training:
            context = F.scaled_dot_product_attention(
                q, k, v, attn_mask=additive_mask,
                dropout_p=self.dropout.p if self.training else 0.0)
            weights = None
        else:
            context, weights = scaled_dot_product_attention(q, k, v, additive_mask, self.dropout)
        B, A, T, D = context.shape
        context = context.transpose(1, 2).reshape(B, T, A * D)  # (B, T, H): heads side by side
        return context, weights


class BertSelfOutput(nn.Module):
    """Project the heads back to H, then the post-LN residual: LayerNorm(x + dropout(dense(h)))."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, input_tensor):
        return self.LayerNorm(input_tensor + self.dropout(self.dense(hidden_states)))


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)  # `self.self` is HF's name, kept so checkpoints load
        self.output = BertSelfOutput(config)

    def forward(self, hidden_states, additive_mask=None, output_attentions=False):
        context, weights = self.self(hidden_states, additive_mask, output_attentions)
        return self.output(context, hidden_states), weights


# ---------------------------------------------------------------------------------------
# Position-wise feed-forward network and the block
# ---------------------------------------------------------------------------------------
class BertIntermediate(nn.Module):
    """The first half of the feed-forward net: H -> I (= 4H), then GELU."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = activation(config.hidden_act)

    def forward(self, hidden_states):
        return self.intermediate_act_fn(self.dense(hidden_states))  # (B, T, I)


class BertOutputLayer(nn.Module):
    """The second half: I -> H, then the post-LN residual. (HF calls this class `BertOutput`.)"""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, input_tensor):
        return self.LayerNorm(input_tensor + self.dropout(self.dense(hidden_states)))  # (B, T, H)


class BertLayer(nn.Module):
    """One encoder block: self-attention sub-layer, then feed-forward sub-layer, each post-LN."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutputLayer(config)

    def forward(self, hidden_states, additive_mask=None, output_attentions=False):
        attended, weights = self.attention(hidden_states, additive_mask, output_attentions)
        return self.output(self.intermediate(attended), attended), weights


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, hidden_states, additive_mask=None, output_hidden_states=False,
                output_attentions=False):
        all_hidden = [hidden_states] if output_hidden_states else None
        all_weights = [] if output_attentions else None
        for layer in self.layer:
            hidden_states, weights = layer(hidden_states, additive_mask, output_attentions)
            if output_hidden_states:
                all_hidden.append(hidden_states)
            if output_attentions:
                all_weights.append(weights)
        return hidden_states, all_hidden, all_weights


class BertPooler(nn.Module):
    """tanh(W h_0 + b) on the first token, `[CLS]`; the NSP and classification heads read it."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden_states):
        return self.activation(self.dense(hidden_states[:, 0]))  # (B, H)


# ---------------------------------------------------------------------------------------
# The shared base of every model: initialisation, loading and saving
# ---------------------------------------------------------------------------------------
class BertPreTrainedModel(PretrainedMixin, nn.Module):
    """Base class: BERT's weight initialisation plus `from_pretrained` / `save_pretrained`."""

    def __init__(self, config: BertConfig):
        super().__init__()
        if not isinstance(config, BertConfig):
            raise TypeError(f"expected a BertConfig, got {type(config).__name__}")
        self.config = config

    def init_weights(self):
        """Normal(0, initializer_range) for weights, zeros for biases, LayerNorm at identity."""
        std = self.config.initializer_range
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=std)
                if module.padding_idx is not None:
                    with torch.no_grad():
                        module.weight[module.padding_idx].zero_()
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        self.tie_weights()

    def tie_weights(self):
        """Heads that share weights with the embeddings override this (the MLM decoder)."""

    def set_attention_implementation(self, use_sdpa: bool):
        """Choose the fused attention kernel (True) or the plain, readable one (False)."""
        for module in self.modules():
            if isinstance(module, BertSelfAttention):
                module.use_sdpa = use_sdpa
        return self


class BertModel(BertPreTrainedModel):
    """The bare BERT encoder: embeddings, L blocks and (optionally) the pooler.

    Example:
        >>> model = BertModel.from_pretrained(bertedu.checkpoints.minilm_path())
        >>> out = model(**tokenizer(["a sentence"], return_tensors="pt"))
        >>> out.last_hidden_state.shape   # [1, T, 384]
    """

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.init_weights()

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, output_hidden_states: bool = False,
                output_attentions: bool = False) -> BertModelOutput:
        """Encode a batch.

        Args:
            input_ids: LongTensor `[B, T]` of WordPiece ids.
            token_type_ids: LongTensor `[B, T]`, 0 for sentence A and 1 for B (default all 0).
            attention_mask: `[B, T]`, 1 for tokens and 0 for padding (default all 1).
            output_hidden_states: also return every layer's output.
            output_attentions: also return every layer's attention weights (uses the plain
                attention path).
        """
        check_inputs(self.config, input_ids, token_type_ids, attention_mask)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, H)
        additive_mask = None
        if attention_mask is not None:  # in the hidden states' dtype (float32, or bf16 for a bf16 model)
            additive_mask = additive_attention_mask(attention_mask, x.dtype)  # (B, 1, 1, T)
        x, all_hidden, all_weights = self.encoder(x, additive_mask, output_hidden_states,
                                                  output_attentions)
        return BertModelOutput(
            last_hidden_state=x,
            pooler_output=self.pooler(x) if self.pooler is not None else None,
            hidden_states=tuple(all_hidden) if output_hidden_states else None,
            attentions=tuple(all_weights) if output_attentions else None,
        )


def check_inputs(config: BertConfig, input_ids, token_type_ids, attention_mask):
    """Refuse inputs that would otherwise fail deep inside or give a silent wrong answer."""
    check_token_ids(input_ids)
    B, T = input_ids.shape
    if B == 0 or T == 0:
        raise ValueError(f"input_ids has shape [{B}, {T}]: a batch needs at least one sequence, and "
                         "every sequence at least one token ([CLS]); skip empty batches before the model")
    if T > config.max_position_embeddings:
        raise ValueError(f"sequence length {T} exceeds max_position_embeddings="
                         f"{config.max_position_embeddings}: truncate the input")
    if input_ids.min() < 0 or input_ids.max() >= config.vocab_size:
        raise ValueError(f"input_ids must lie in [0, {config.vocab_size}); got values in "
                         f"[{input_ids.min().item()}, {input_ids.max().item()}]: wrong vocabulary?")
    for name, tensor in (("token_type_ids", token_type_ids), ("attention_mask", attention_mask)):
        if tensor is not None and not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{name} must be a tensor shaped like input_ids, got {type(tensor).__name__} "
                            "(use return_tensors='pt' in the tokenizer, or torch.tensor(...))")
        if tensor is not None and tensor.shape != input_ids.shape:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)} but input_ids has "
                             f"{tuple(input_ids.shape)}; they must match")
    if token_type_ids is not None and token_type_ids.is_floating_point():
        raise TypeError(f"token_type_ids must hold integer segment ids, got dtype {token_type_ids.dtype}")
    if attention_mask is not None and attention_mask.is_floating_point() and torch.isnan(attention_mask).any():
        raise ValueError("attention_mask contains NaN: use 1 (or any nonzero) for tokens and 0 for padding")
    if token_type_ids is not None and (
            token_type_ids.min() < 0 or token_type_ids.max() >= config.type_vocab_size):
        raise ValueError(f"token_type_ids must lie in [0, {config.type_vocab_size})")
