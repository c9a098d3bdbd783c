"""Text from a masked language model: naive left-to-right filling and mask-predict (chapter 15).

Also `pseudo_log_likelihood`, a text's score (Salazar et al. 2020). Shapes: `T` the whole
sequence, special tokens included; `N` the generated slots; `V` the vocabulary.

Example:
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
    """One forward pass of a generator; every tensor is `[T]`.

    Attributes:
        iteration: 0 for the first pass.
        input_ids, output_ids: LongTensors, what the model read and the sequence after this pass.
        probabilities: FloatTensor, each slot token's probability when chosen (given: 1, not yet: 0).
        masked, slots: BoolTensors, the positions predicted in this pass, and all generated slots.
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
        """The generated slots as text, `[MASK]` shown as `mask`; `which`: "output" or "input"."""
        if which not in ("output", "input"):
            raise ValueError(f"which must be 'output' or 'input', got {which!r}")
        ids = (self.output_ids if which == "output" else self.input_ids)[self.slots]
        text = tokenizer.decode(ids.tolist())
        return text.replace(tokenizer.mask_token, mask)


def mask_schedule(length: int, iterations: int) -> list[int]:
    """Slots each mask-predict pass predicts: `[N, n_1, ...]`, `n_t = floor(N (T - t) / T)`, zeros left out.

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
    """Generate `length` WordPieces with mask-predict (Ghazvininejad et al. 2019): predict every
    slot, then re-mask the `n_t` least probable (`mask_schedule`; ties: leftmost) and predict again.

    Args:
        model, tokenizer: a BERT with an MLM head (`model(input_ids).logits` `[1, T, V]`) and its tokenizer.
        length, iterations: N WordPieces to generate, T passes at most (each >= 1).
        prompt, suffix: fixed text before and after the slots.
        temperature, top_k, generator: 0 = greedy; > 0 = sample from `softmax(logits / temperature)`,
            from the `top_k` most probable (None: all), with `generator` (None: torch's global one).

    Returns:
        One `GenerationStep` per pass; the last one's `output_ids` is the result.

    Raises:
        ValueError: no MLM head, a tokenizer/model vocabulary mismatch, a bad argument, or too long a sequence.
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
    """Generate `length` WordPieces left to right, never revised: one `GenerationStep` each.

    Args:
        model, tokenizer, length, prompt, suffix, temperature, top_k, generator: as in `mask_predict`.
        future_masks: False: append one `[MASK]` per pass to the text so far (the sequence grows);
            True: start from `length` `[MASK]`s and fill the leftmost each pass.
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
    """FloatTensor `[n]`: `log P(x_t | every other token)` (nats) for each WordPiece `x_t` of `text`,
    each masked in turn; the sum is the pseudo-log-likelihood (Salazar et al. 2020), not `log P(text)`.

    Args:
        model, tokenizer: as in `mask_predict`.
        text, prompt: the text to score (at least one WordPiece), and context before it.
        batch_size: rows per forward pass.

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
