"""Text from a masked language model: naive left-to-right filling and mask-predict (chapter 15).

BERT is trained to fill in blanks with both sides in view, not to continue a text. This module
holds the two ways the chapter makes it write anyway:

- `left_to_right`: fill one `[MASK]` at a time, from left to right, either appending a fresh
  `[MASK]` after the text so far (`future_masks=False`) or filling the leftmost of a row of
  `[MASK]`s (`future_masks=True`). The model is used far from how it was trained: it never
  saw a `[MASK]` whose right side was empty, or a sentence that was mostly `[MASK]`s.
- `mask_predict`: the iterative decoding of Ghazvininejad et al. (2019), "Mask-Predict:
  Parallel Decoding of Conditional Masked Language Models". Start from `N` `[MASK]`s, predict
  every one of them at once, then for `t = 1 .. T-1` re-mask the
  `n_t = floor(N (T - t) / T)` generated tokens the model is least sure of and predict them
  again, now with the more confident tokens in view (`mask_schedule`).

`pseudo_log_likelihood` scores a text the way a masked language model can: each WordPiece
masked in turn and predicted from all the others (Salazar et al. 2020, "Masked Language Model
Scoring"); it is not the log-probability of the text, which an MLM does not define.

The generators read an optional `prompt` before the generated slots and an optional `suffix` after
them, `[CLS] prompt [MASK] ... [MASK] suffix [SEP]`, and both return every step as a
`GenerationStep`, so the chapter can print the text as it forms. Decoding is greedy (the most
probable WordPiece) by default; `temperature > 0` samples instead (from the `top_k` most
probable WordPieces if `top_k` is given), with the random numbers of `generator`.
Special tokens (`[CLS]`, `[SEP]`, `[PAD]`, `[MASK]`, `[UNK]`) are never generated.

Shapes: `T` is the length of the whole sequence, special tokens included; `N` the number of
generated slots; `V` the vocabulary size.

Example:
    >>> model = BertForPreTraining.from_pretrained(folder)
    >>> tokenizer = BertTokenizer.from_pretrained(folder)
    >>> steps = mask_predict(model, tokenizer, 8, prompt="the film", iterations=4)
    >>> [step.text(tokenizer) for step in steps]      # the 8 slots after each pass
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import torch

from .batching import eval_mode
from .checks import check_count

__all__ = ["GenerationStep", "mask_schedule", "mask_predict", "left_to_right", "pseudo_log_likelihood"]


@dataclass
class GenerationStep:
    """One forward pass of a generator.

    Attributes:
        iteration: 0 for the first pass.
        input_ids: LongTensor `[T]`, what the model read: `[CLS]`, the prompt, the slots
            (a guess or `[MASK]`), the suffix, `[SEP]`.
        output_ids: LongTensor `[T]`, the sequence after this pass: the masked slots filled.
        probabilities: FloatTensor `[T]`, at each generated slot the probability the model
            gave the token it now holds, when it chose it; 1 for the given tokens and 0 for a
            slot not generated yet.
        masked: BoolTensor `[T]`, the positions that were `[MASK]` in `input_ids` and were
            predicted in this pass.
        slots: BoolTensor `[T]`, the positions of the generated slots (fixed tokens: False).
    """

    iteration: int
    input_ids: torch.Tensor
    output_ids: torch.Tensor
    probabilities: torch.Tensor
    masked: torch.Tensor
    slots: torch.Tensor

    @property
    def n_masked(self) -> int:
        """How many positions this pass predicted."""
        return int(self.masked.sum())

    def text(self, tokenizer, which: str = "output", mask: str = "_") -> str:
        """The generated slots as text (`##` pieces glued), `[MASK]` shown as `mask`.

        Args:
            tokenizer: the model's `BertTokenizer`.
            which: "output" (after this pass) or "input" (what the model read).
            mask: how to show a `[MASK]`.
        """
        if which not in ("output", "input"):
            raise ValueError(f"which must be 'output' or 'input', got {which!r}")
        ids = (self.output_ids if which == "output" else self.input_ids)[self.slots]
        text = tokenizer.decode(ids.tolist())
        return text.replace(tokenizer.mask_token, mask)


def mask_schedule(length: int, iterations: int) -> list[int]:
    """How many slots each pass of mask-predict predicts: `[N, n_1, ..., n_k]`.

    The first pass predicts all `N = length` slots; pass `t = 1 .. T-1` re-masks
    `n_t = floor(N (T - t) / T)` of them, a linear decay (Ghazvininejad et al. 2019,
    section 3.2). Passes with `n_t = 0` are left out, so the list can be shorter than `T`.

    Example:
        >>> mask_schedule(10, 4)
        [10, 7, 5, 2]
    """
    check_count("length", length)
    check_count("iterations", iterations)
    counts = [length] + [length * (iterations - t) // iterations for t in range(1, iterations)]
    return [n for n in counts if n > 0]


def mask_predict(model, tokenizer, length: int, *, prompt: str = "", suffix: str = "",
                 iterations: int = 10, temperature: float = 0.0, top_k: int | None = None,
                 generator: torch.Generator | None = None) -> list[GenerationStep]:
    """Generate `length` WordPieces with mask-predict (Ghazvininejad et al. 2019).

    The sequence is `[CLS] prompt [MASK]*length suffix [SEP]` (one segment). Pass 0 predicts
    every slot. Each later pass `t` re-masks the `n_t` slots with the lowest probabilities
    (`mask_schedule`; ties go to the leftmost slot), predicts them again with the other
    slots in view, and updates only those slots and their probabilities: a token that was
    not re-masked keeps the probability it had when it was chosen, as in the paper.

    Args:
        model: a BERT with an MLM head (`BertForMaskedLM`, `BertForPreTraining`, or a
            `transformers` one): `model(input_ids).logits` is `[1, T, V]`.
        tokenizer: its `BertTokenizer`.
        length: N, the number of WordPieces to generate, at least 1.
        prompt, suffix: fixed text before and after the slots (never re-masked).
        iterations: T, the number of passes at most, at least 1.
        temperature: 0 = take the most probable WordPiece; > 0 = sample from
            `softmax(logits / temperature)`. The recorded probability is always the
            model's own (temperature 1).
        top_k: when sampling, draw only from the `top_k` most probable WordPieces (None: all).
        generator: the `torch.Generator` for sampling (None: torch's global one).

    Returns:
        One `GenerationStep` per pass (`len(mask_schedule(length, iterations))` of them); the
        last one's `output_ids` is the result.

    Raises:
        ValueError: no MLM head, a vocabulary that does not match the model, a length or
            number of iterations below 1, a negative temperature, or a sequence longer than
            the model's position embeddings.
    """
    template, slots = _template(model, tokenizer, length, prompt, suffix, temperature, top_k)
    schedule = mask_schedule(length, iterations)
    slot_positions = slots.nonzero().squeeze(1)                       # (N,)
    ids = template.clone()                                            # (T,)
    probabilities = torch.where(slots, 0.0, 1.0)                      # (T,)
    steps = []
    with eval_mode(model):
        for t, n in enumerate(schedule):
            if t == 0:
                chosen = slot_positions
            else:  # the n least confident slots, ties to the left (a stable sort)
                order = torch.sort(probabilities[slot_positions], stable=True).indices
                chosen = slot_positions[order[:n]].sort().values    # (n,)
            masked = torch.zeros_like(slots)
            masked[chosen] = True
            input_ids = ids.clone()
            input_ids[masked] = tokenizer.mask_token_id
            new_ids, new_probabilities = _predict(model, tokenizer, input_ids, masked, temperature, top_k, generator)
            ids[masked] = new_ids
            probabilities[masked] = new_probabilities
            steps.append(GenerationStep(t, input_ids, ids.clone(), probabilities.clone(), masked, slots))
    return steps


def left_to_right(model, tokenizer, length: int, *, prompt: str = "", suffix: str = "",
                  future_masks: bool = False, temperature: float = 0.0, top_k: int | None = None,
                  generator: torch.Generator | None = None) -> list[GenerationStep]:
    """Generate `length` WordPieces one at a time, from left to right (the naive way).

    With `future_masks=False`, each pass appends one `[MASK]` to the text so far and predicts
    it: `[CLS] prompt y_1 .. y_{t-1} [MASK] suffix [SEP]`, so the sequence grows by one per
    pass. With `future_masks=True`, the sequence is `[CLS] prompt [MASK]*length suffix [SEP]`
    from the start, and pass `t` fills the leftmost `[MASK]` with the others still in view.
    Either way, each slot is predicted once and never revised.

    Args:
        model, tokenizer, length, prompt, suffix, temperature, top_k, generator: as in `mask_predict`.
        future_masks: keep the not yet generated slots in the input as `[MASK]`s.

    Returns:
        One `GenerationStep` per generated WordPiece (`length` of them). With
        `future_masks=False` the tensors of step `t` have `len(prefix) + t + 1 + len(suffix)`
        entries; `slots` marks the WordPieces generated so far, including this pass's.

    Raises:
        ValueError: as `mask_predict`.
    """
    template, slots = _template(model, tokenizer, length, prompt, suffix, temperature, top_k)
    start = int(slots.nonzero()[0])                                   # first slot: after [CLS] prompt
    steps = []
    with eval_mode(model):
        if future_masks:
            ids = template.clone()
            probabilities = torch.where(slots, 0.0, 1.0)
            for t in range(length):
                masked = torch.zeros_like(slots)
                masked[start + t] = True
                input_ids = ids.clone()
                new_ids, new_probabilities = _predict(model, tokenizer, input_ids, masked, temperature, top_k, generator)
                ids[masked] = new_ids
                probabilities[masked] = new_probabilities
                steps.append(GenerationStep(t, input_ids, ids.clone(), probabilities.clone(), masked, slots))
        else:
            head, tail = template[:start], template[start + length:]  # [CLS] prompt | suffix [SEP]
            generated, confidence = [], []
            for t in range(length):
                grown = torch.tensor(generated + [tokenizer.mask_token_id], dtype=torch.long, device=template.device)
                input_ids = torch.cat([head, grown, tail])             # (start + t + 1 + len(tail),)
                masked = torch.zeros(len(input_ids), dtype=torch.bool, device=template.device)
                masked[start + t] = True
                new_ids, new_probabilities = _predict(model, tokenizer, input_ids, masked, temperature, top_k, generator)
                generated.append(int(new_ids[0]))
                confidence.append(float(new_probabilities[0]))
                output_ids = input_ids.clone()
                output_ids[masked] = new_ids
                step_slots = torch.zeros_like(masked)
                step_slots[start:start + t + 1] = True
                probabilities = torch.ones(len(input_ids), device=template.device)
                probabilities[step_slots] = torch.tensor(confidence, device=template.device)
                steps.append(GenerationStep(t, input_ids, output_ids, probabilities, masked, step_slots))
    return steps


def pseudo_log_likelihood(model, tokenizer, text: str, *, prompt: str = "",
                          batch_size: int = 64) -> torch.Tensor:
    """`log P(x_t | every other token)` for each WordPiece `x_t` of `text`, each masked in turn.

    The sequence is `[CLS] prompt text [SEP]`; row `i` of the batch masks the `i`-th WordPiece
    of `text` (the prompt is context only, never scored). The sum of the result is the
    pseudo-log-likelihood of Salazar et al. (2020); it is not `log P(text)`, which a masked
    language model does not define. The softmax runs over the whole vocabulary.

    Args:
        model, tokenizer: as in `mask_predict`.
        text: the text to score, at least one WordPiece.
        prompt: context before it.
        batch_size: rows per forward pass.

    Returns:
        FloatTensor `[n]`, one log-probability (nats) per WordPiece of `text`.

    Raises:
        ValueError: as `mask_predict`, or a `text` with no WordPiece.
    """
    if not isinstance(text, str) or not tokenizer.tokenize(text):
        raise ValueError(f"text must be a string of at least one WordPiece, got {text!r}")
    pieces = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))
    template, slots = _template(model, tokenizer, len(pieces), prompt, "", 0.0, None)
    ids = template.clone()
    ids[slots] = torch.tensor(pieces, device=ids.device)               # (T,) the text itself
    positions = slots.nonzero().squeeze(1)                               # (n,)
    rows = ids.repeat(len(positions), 1)                                 # (n, T)
    rows[torch.arange(len(positions)), positions] = tokenizer.mask_token_id  # row i masks piece i
    scores = []
    with eval_mode(model):
        for start in range(0, len(positions), batch_size):
            chunk = slice(start, start + batch_size)
            logits = model(rows[chunk]).logits                           # (b, T, V)
            picked = logits[torch.arange(len(rows[chunk])), positions[chunk]].float()  # (b, V)
            scores.append(picked.log_softmax(-1).gather(1, ids[positions[chunk]][:, None]).squeeze(1))
    return torch.cat(scores)


# ---------------------------------------------------------------------------------------
# Shared pieces


def _template(model, tokenizer, length, prompt, suffix, temperature, top_k):
    """`[CLS] prompt [MASK]*length suffix [SEP]` as ids `[T]`, and the slot positions `[T]`."""
    predictions = getattr(getattr(model, "cls", None), "predictions", None)
    if predictions is None:
        raise ValueError(f"{type(model).__name__} has no MLM head (model.cls.predictions): generate with "
                         "BertForMaskedLM or BertForPreTraining, not BertModel or a fine-tuning head")
    check_count("length", length)
    if not isinstance(temperature, numbers.Real) or temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = the most probable WordPiece), got {temperature!r}")
    if top_k is not None:
        check_count("top_k", top_k)
    config = model.config
    if tokenizer.vocab_size != config.vocab_size:
        raise ValueError(f"the tokenizer has {tokenizer.vocab_size} WordPieces but the model's vocabulary has "
                         f"{config.vocab_size}: load both from the same folder")
    for name, text in (("prompt", prompt), ("suffix", suffix)):
        if not isinstance(text, str):
            raise ValueError(f"{name} must be a string, got {type(text).__name__}")
    before = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(prompt)) if prompt else []
    after = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(suffix)) if suffix else []
    ids = [tokenizer.cls_token_id, *before, *[tokenizer.mask_token_id] * length, *after, tokenizer.sep_token_id]
    if len(ids) > config.max_position_embeddings:
        raise ValueError(f"[CLS] + prompt + {length} slots + suffix + [SEP] is {len(ids)} WordPieces, more than "
                         f"the model's {config.max_position_embeddings} positions: shorten the length or the text")
    device = next(model.parameters()).device
    slots = torch.zeros(len(ids), dtype=torch.bool, device=device)
    slots[1 + len(before):1 + len(before) + length] = True
    return torch.tensor(ids, dtype=torch.long, device=device), slots


def _predict(model, tokenizer, input_ids, masked, temperature, top_k, generator):
    """New ids `[n]` and their probabilities `[n]` at the `masked` positions of `input_ids` `[T]`."""
    logits = model(input_ids[None]).logits[0, masked].float()        # (n, V)
    logits[:, tokenizer.all_special_ids] = float("-inf")               # never generate a special token
    probs = logits.softmax(dim=-1)                                     # (n, V)
    if temperature == 0:
        new_ids = probs.argmax(dim=-1)                                 # (n,)
    else:
        scaled = logits / temperature
        if top_k is not None and top_k < scaled.size(-1):                # keep the top_k of each row
            kth = scaled.topk(top_k, dim=-1).values[:, -1:]
            scaled = scaled.masked_fill(scaled < kth, float("-inf"))
        sample_probs = scaled.softmax(dim=-1)
        new_ids = torch.multinomial(sample_probs.cpu(), 1, generator=generator).squeeze(1).to(logits.device)
    return new_ids, probs.gather(1, new_ids[:, None]).squeeze(1)
