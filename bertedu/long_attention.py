"""Attention for long inputs: a sliding window plus a few global tokens (Longformer's idea).

Beltagy, Peters and Cohan 2020 (chapter 14): query i attends to key j when `|i - j| <= window`,
and a few global tokens attend to, and are attended by, every token. `masked_attention` is the
quadratic reference; `sliding_window_attention` computes the same at a cost linear in T.

Shapes: B batch, A heads, T length, D head size, w window, n = ceil(T / w) blocks, G global tokens.
"""
from __future__ import annotations

import math
import random

import torch
import torch.nn.functional as F
from torch import nn

from .model import BertModel, check_inputs, scaled_dot_product_attention
from .qa import qa_logits


# ---------------------------------------------------------------------------------------
# Checks shared by the functions below
# ---------------------------------------------------------------------------------------
def _check_window(window) -> int:
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a positive int (keys at most `window` positions away), got {window!r}")
    return window


def _token_mask(mask, B: int, T: int, name: str, device) -> torch.Tensor:
    """A `[B, T]` boolean mask from None (all False for global, all True for padding) or a tensor."""
    if mask is None:
        return None
    mask = torch.as_tensor(mask, device=device)
    if mask.dim() == 1:
        mask = mask[None].expand(B, -1)
    if tuple(mask.shape) != (B, T):
        raise ValueError(f"{name} must have shape [batch_size, seq_len] = [{B}, {T}] (or [{T}]), "
                         f"got {tuple(mask.shape)}")
    return mask.bool()


# ---------------------------------------------------------------------------------------
# The plain form: a [T, T] mask and full attention with it (quadratic)
# ---------------------------------------------------------------------------------------
def sliding_window_mask(seq_len: int, window: int, global_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Which (query, key) pairs Longformer's attention keeps: `|i - j| <= window`, or i or j global.

    Args:
        seq_len, window: T, and w, the neighbours on each side a token attends to.
        global_mask: optional `[T]` or `[B, T]`, True (or 1) for global tokens; a `[B, T]` mask
            gives a BoolTensor `[B, T, T]`, else `[T, T]`.
    """
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
        raise ValueError(f"seq_len must be a positive int, got {seq_len!r}")
    _check_window(window)
    positions = torch.arange(seq_len)
    allowed = (positions[:, None] - positions[None, :]).abs() <= window  # (T, T): the band
    if global_mask is None:
        return allowed
    is_global = torch.as_tensor(global_mask).bool()
    if is_global.shape[-1] != seq_len or is_global.dim() not in (1, 2):
        raise ValueError(f"global_mask must have shape [{seq_len}] or [batch_size, {seq_len}], "
                         f"got {tuple(is_global.shape)}")
    return allowed | is_global[..., :, None] | is_global[..., None, :]  # rows and columns of global tokens


def masked_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, allowed: torch.Tensor,
                     key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Full attention that keeps only the `allowed` pairs, `[B, A, T, D]`: the quadratic reference.

    Args:
        query, key, value: FloatTensors `[B, A, T, D]`.
        allowed: BoolTensor `[T, T]` or `[B, T, T]` (`sliding_window_mask`).
        key_padding_mask: optional `[B, T]`, 1 for tokens and 0 for padding.
    """
    B, A, T, D = query.shape
    allowed = torch.as_tensor(allowed, device=query.device).bool()
    if tuple(allowed.shape[-2:]) != (T, T):
        raise ValueError(f"allowed must be [T, T] = [{T}, {T}] (or [B, T, T]), got {tuple(allowed.shape)}")
    allowed = allowed if allowed.dim() == 3 else allowed[None]  # (B or 1, T, T)
    keep = _token_mask(key_padding_mask, B, T, "key_padding_mask", query.device)
    if keep is not None:
        allowed = allowed & keep[:, None, :]
    additive = (~allowed[:, None]).to(query.dtype) * torch.finfo(query.dtype).min  # (B, 1, T, T)
    context, _ = scaled_dot_product_attention(query, key, value, additive)
    return context


# ---------------------------------------------------------------------------------------
# The banded form: blocks of w queries meet 3w keys (linear)
# ---------------------------------------------------------------------------------------
def sliding_window_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, window: int,
                             global_mask: torch.Tensor | None = None,
                             key_padding_mask: torch.Tensor | None = None,
                             dropout: nn.Module | None = None) -> torch.Tensor:
    """Sliding-window attention with global tokens, at a cost linear in the length: the numbers of
    `masked_attention(query, key, value, sliding_window_mask(T, window, global_mask), key_padding_mask)`.

    Query blocks of w meet only the `3w` keys of their own and neighbouring blocks, plus the G
    global keys; the G global queries get one ordinary row each: `B * A * T * (3w + 2G)` scores.

    Args:
        query, key, value: FloatTensors `[B, A, T, D]`.
        window: w, the neighbours on each side.
        global_mask, key_padding_mask: optional `[B, T]`, True for global tokens; 1 for tokens, 0 for padding.
        dropout: optional `nn.Dropout` on the attention weights (BERT's).

    Returns:
        FloatTensor `[B, A, T, D]` (rows of padding queries are meaningless).
    """
    if query.dim() != 4 or key.shape != query.shape or value.shape != query.shape:
        raise ValueError(f"query, key and value must all be [B, A, T, D]; got {tuple(query.shape)}, "
                         f"{tuple(key.shape)}, {tuple(value.shape)}")
    w = _check_window(window)
    B, A, T, D = query.shape
    n = math.ceil(T / w)
    P = n * w  # T padded to whole blocks
    scale, low = 1.0 / math.sqrt(D), torch.finfo(query.dtype).min
    keep = _token_mask(key_padding_mask, B, T, "key_padding_mask", query.device)
    if keep is None:
        keep = torch.ones(B, T, dtype=torch.bool, device=query.device)
    is_global = _token_mask(global_mask, B, T, "global_mask", query.device)
    if is_global is None:
        is_global = torch.zeros(B, T, dtype=torch.bool, device=query.device)
    is_global = is_global & keep  # padding is never global

    # 1. Local band: block b of queries against key blocks b-1, b, b+1.
    q_blocks = F.pad(query * scale, (0, 0, 0, P - T)).view(B, A, n, w, D)  # (B, A, n, w, D), scaled once
    k_blocks = F.pad(key, (0, 0, w, P - T + w)).unfold(2, 3 * w, w).transpose(-1, -2)  # (B, A, n, 3w, D)
    v_blocks = F.pad(value, (0, 0, w, P - T + w)).unfold(2, 3 * w, w).transpose(-1, -2)  # (B, A, n, 3w, D)
    i = torch.arange(P, device=query.device).view(n, w, 1)  # query position
    j = (torch.arange(n, device=query.device) * w - w).view(n, 1, 1) + torch.arange(3 * w, device=query.device)
    near = ((i - j).abs() <= w) & (j >= 0) & (j < T)  # (n, w, 3w): inside the window and the sequence
    band_keys = F.pad(keep & ~is_global, (w, P - T + w), value=False).unfold(1, 3 * w, w)  # (B, n, 3w)
    allowed = near[None] & band_keys[:, :, None, :]  # (B, n, w, 3w)

    # 2. Every query also meets the global keys: append them to every block's keys, so one
    #    matmul, one softmax and one weighted sum serve both parts of a row.
    G = int(is_global.sum(dim=1).max())
    if G:
        # the positions of each row's global tokens first (stable: in order), then the others
        order = torch.argsort((~is_global).int(), dim=1, stable=True)[:, :G]  # (B, G)
        real = is_global.gather(1, order)  # (B, G): False where a row has fewer than G
        index = order[:, None, :, None].expand(B, A, G, D)
        q_global, k_global, v_global = query.gather(2, index), key.gather(2, index), value.gather(2, index)
        k_blocks = torch.cat([k_blocks, k_global[:, :, None].expand(B, A, n, G, D)], dim=3)  # (B, A, n, 3w + G, D)
        v_blocks = torch.cat([v_blocks, v_global[:, :, None].expand(B, A, n, G, D)], dim=3)
        allowed = torch.cat([allowed, real[:, None, None, :].expand(B, n, w, G)], dim=-1)  # (B, n, w, 3w + G)
    scores = q_blocks @ k_blocks.transpose(-1, -2)  # (B, A, n, w, 3w + G)
    scores.masked_fill_(~allowed[:, None], low)
    weights = scores.softmax(dim=-1)
    if dropout is not None:
        weights = dropout(weights)
    context = (weights @ v_blocks).reshape(B, A, P, D)[:, :, :T]  # (B, A, T, D)

    # 3. Global queries read every token: ordinary attention rows.
    if G:
        rows = (q_global * scale) @ key.transpose(-1, -2)  # (B, A, G, T)
        rows = rows.masked_fill(~keep[:, None, None, :], low).softmax(dim=-1)
        if dropout is not None:
            rows = dropout(rows)
        global_context = rows @ value  # (B, A, G, D)
        # rows of the filler slots (real == False) write back what is already there
        global_context = torch.where(real[:, None, :, None], global_context, context.gather(2, index))
        context = context.scatter(2, index, global_context)
    return context


def attention_score_count(seq_len: int, window: int | None = None, n_global: int = 0) -> int:
    """Attention scores one head computes for one sequence: T * T for full attention (`window=None`),
    else n * w * 3w + 2 * T * G; times the dtype's bytes, the largest tensor's memory."""
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
        raise ValueError(f"seq_len must be a positive int, got {seq_len!r}")
    if window is None:
        return seq_len * seq_len
    w = _check_window(window)
    if isinstance(n_global, bool) or not isinstance(n_global, int) or not 0 <= n_global <= seq_len:
        raise ValueError(f"n_global must be an int between 0 and seq_len={seq_len}, got {n_global!r}")
    return math.ceil(seq_len / w) * w * 3 * w + 2 * seq_len * n_global


# ---------------------------------------------------------------------------------------
# A real BertModel with windowed attention and more than 512 positions
# ---------------------------------------------------------------------------------------
def extend_position_embeddings(bert: BertModel, max_positions: int) -> BertModel:
    """Give `bert` `max_positions` position embeddings, position p a copy of learned position `p % P`
    (as Longformer, section 5); positions below P are unchanged. Returns `bert`.

    Args:
        bert: a `BertModel` (pass `model.bert` for a model with a head); changed in place.
        max_positions: the new table size, larger than the current one.
    """
    if not isinstance(bert, BertModel):
        raise TypeError(f"expected a BertModel (for a model with a head, pass model.bert), got {type(bert).__name__}")
    old = bert.embeddings.position_embeddings.weight  # (P, H)
    P = old.size(0)
    if isinstance(max_positions, bool) or not isinstance(max_positions, int) or max_positions <= P:
        raise ValueError(f"max_positions must be an int larger than the current {P} positions, got {max_positions!r}")
    table = nn.Embedding(max_positions, old.size(1), device=old.device, dtype=old.dtype)
    with torch.no_grad():
        copies = math.ceil(max_positions / P)
        table.weight.copy_(old.repeat(copies, 1)[:max_positions])  # row p = old row p % P
    bert.embeddings.position_embeddings = table
    bert.config.max_position_embeddings = max_positions
    return bert


def sliding_window_encode(bert: BertModel, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                          attention_mask: torch.Tensor | None = None,
                          global_attention_mask: torch.Tensor | None = None, window: int = 256) -> torch.Tensor:
    """The last layer's vectors `[B, T, H]` of a `BertModel`'s own weights, run with sliding-window +
    global attention in every layer.

    Equals `bert(...).last_hidden_state` when `window >= T - 1`. Unlike Longformer, global pairs
    use the same projections as local ones. Inputs longer than `max_position_embeddings` need
    `extend_position_embeddings` first.

    Args:
        bert: a `BertModel`.
        input_ids, token_type_ids, attention_mask: `[B, T]`, as for `BertModel`.
        global_attention_mask: optional `[B, T]`, 1 for global tokens (`question_global_mask` for QA).
        window: w, the neighbours on each side.
    """
    if not isinstance(bert, BertModel):
        raise TypeError(f"expected a BertModel (for a model with a head, pass model.bert), got {type(bert).__name__}")
    check_inputs(bert.config, input_ids, token_type_ids, attention_mask)
    if global_attention_mask is not None and tuple(global_attention_mask.shape) != tuple(input_ids.shape):
        raise ValueError(f"global_attention_mask has shape {tuple(global_attention_mask.shape)} but input_ids has "
                         f"{tuple(input_ids.shape)}; they must match")
    _check_window(window)
    if token_type_ids is None:
        token_type_ids = torch.zeros_like(input_ids)
    x = bert.embeddings(input_ids, token_type_ids)  # (B, T, H)
    for layer in bert.encoder.layer:
        attention = layer.attention.self
        q = attention.split_heads(attention.query(x))  # (B, A, T, D)
        k = attention.split_heads(attention.key(x))
        v = attention.split_heads(attention.value(x))
        context = sliding_window_attention(q, k, v, window, global_attention_mask, attention_mask,
                                           dropout=attention.dropout)
        B, A, T, D = context.shape
        context = context.transpose(1, 2).reshape(B, T, A * D)  # (B, T, H): heads side by side
        attended = layer.attention.output(context, x)  # dense, dropout, LayerNorm(x + .)
        x = layer.output(layer.intermediate(attended), attended)  # (B, T, H)
    return x


# ---------------------------------------------------------------------------------------
# Long-input question answering
# ---------------------------------------------------------------------------------------
def question_global_mask(token_type_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Longformer's choice for QA, BoolTensor `[B, T]`: `[CLS]`, the question and its `[SEP]` are global.

    Args:
        token_type_ids: `[B, T]`, 0 up to the first `[SEP]`, 1 after.
        attention_mask: optional `[B, T]`, 1 for tokens; padding is never global.
    """
    is_global = torch.as_tensor(token_type_ids) == 0
    if attention_mask is not None:
        if tuple(attention_mask.shape) != tuple(is_global.shape):
            raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)} but token_type_ids has "
                             f"{tuple(is_global.shape)}; they must match")
        is_global = is_global & attention_mask.bool()
    return is_global


@torch.no_grad()
def sliding_window_qa_logits(model: nn.Module, dataset, window: int, batch_size: int = 1,
                             mixed_precision: bool | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """`qa.qa_logits` for a `BertForQuestionAnswering` with `sliding_window_encode`, the question
    global: `(start_logits, end_logits)`, two lists of CPU FloatTensors `[T_f]` in feature order."""
    def windowed_forward(batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        global_mask = question_global_mask(batch["token_type_ids"], batch["attention_mask"])
        hidden = sliding_window_encode(model.bert, batch["input_ids"], batch["token_type_ids"],
                                       batch["attention_mask"], global_mask, window)
        start_logits, end_logits = model.qa_outputs(hidden).unbind(dim=-1)  # (B, T) each
        return start_logits, end_logits

    return qa_logits(model, dataset, batch_size, forward=windowed_forward, mixed_precision=mixed_precision)


def long_squad_examples(records: list[dict], tokenizer, min_tokens: int, seed: int = 0) -> list[dict]:
    """SQuAD questions over long passages: the answer's paragraph among other paragraphs of its article.

    Paragraphs of the same article (seeded order) are joined by blank lines until the passage has
    `min_tokens` tokens, the answer's paragraph at a random place; `answer_start` is shifted.
    Returns new records in the same format, one per question, in the same order.

    Args:
        records: `bertedu.data.load_squad` records (with `title`); paragraphs are grouped by title.
        tokenizer: a `BertTokenizer`, to count tokens.
        min_tokens, seed: the shortest passage wanted, in tokens; the random order's seed.
    """
    if isinstance(min_tokens, bool) or not isinstance(min_tokens, int) or min_tokens < 1:
        raise ValueError(f"min_tokens must be a positive int, got {min_tokens!r}")
    paragraphs: dict[str, list[str]] = {}  # title -> its distinct paragraphs, in order
    for r in records:
        for key in ("title", "context", "answers"):
            if key not in r:
                raise ValueError(f"record {r.get('id')!r} has no {key!r}: give load_squad records")
        kept = paragraphs.setdefault(r["title"], [])
        if r["context"] not in kept:
            kept.append(r["context"])
    n_tokens: dict[str, int] = {}

    def count(text: str) -> int:
        if text not in n_tokens:
            n_tokens[text] = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        return n_tokens[text]

    rng = random.Random(seed)
    long_records = []
    for r in records:
        others = [p for p in paragraphs[r["title"]] if p != r["context"]]
        rng.shuffle(others)
        chosen, total = [], count(r["context"])
        for p in others:
            if total >= min_tokens:
                break
            chosen.append(p)
            total += count(p)
        chosen.insert(rng.randint(0, len(chosen)), r["context"])
        shift = sum(len(p) + 2 for p in chosen[:chosen.index(r["context"])])  # "\n\n" between paragraphs
        answers = {"text": list(r["answers"]["text"]),
                   "answer_start": [s + shift for s in r["answers"]["answer_start"]]}
        long_records.append({**r, "context": "\n\n".join(chosen), "answers": answers})
    return long_records
