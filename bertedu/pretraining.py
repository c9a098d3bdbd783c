"""BERT's pretraining data and objectives: sentence pairs for next-sentence prediction (NSP),
masked tokens for the masked language model (MLM), their evaluation, and the CPU recipe.

Devlin et al. 2019, section 3.1 and appendix A.1; chapter 6 walks through every step.
Documents of sentences (`wikitext_documents`, `tokenize_documents`) -> NSP pairs
(`create_nsp_examples`; label 0 = IsNext, 1 = NotNext, as in Google's code, while d2l uses
the opposite) -> `[CLS] A [SEP] B [SEP]` (`encode_pair`) -> 80/10/10 masks on 15% of the
tokens, labels -100 elsewhere (`mask_tokens`) -> `PretrainingDataset`, static or dynamic.

Further pretraining, the masked LM alone on single sentences (chapter 12): `MaskedLMDataset`,
`masked_lm_batch_loss`, `masked_lm_accuracy`. The CPU recipe (chapter 6):
`PretrainingRecipe`, run by `benchmarks/pretrain_recipe.py`.
"""
from __future__ import annotations

import dataclasses
import os
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .config import BertConfig
from .datafiles import cache_folder
from .batching import eval_mode, pad_collate, pad_sequences, sorted_batches
from .checks import check_strings, check_token_ids
from .heads import IGNORE_INDEX
from .tokenization import BertTokenizer
from .wordpiece_trainer import train_wordpiece
from .precision import inference_autocast
from .training import TrainingConfig, derive_seed

IS_NEXT, NOT_NEXT = 0, 1  # NSP labels, as in Google's code and transformers (d2l: the opposite)


# ---------------------------------------------------------------------------------------
# 1. Documents and sentences
# ---------------------------------------------------------------------------------------
def split_sentences(paragraph: str) -> list[str]:
    """Split tokenized WikiText after every " . ", " ? " and " ! " (decimal points are " @.@ ").

        >>> split_sentences("It is red . Is it ? Yes")
        ['It is red .', 'Is it ?', 'Yes']
    """
    sentences, words = [], []
    for word in paragraph.split():
        words.append(word)
        if word in (".", "?", "!"):
            sentences.append(" ".join(words))
            words = []
    if words:
        sentences.append(" ".join(words))
    return sentences


def clean_wikitext(text: str, unk_token: str = "[UNK]") -> str:
    """Undo WikiText's marks ("0 @.@ 7" -> "0.7", likewise `@-@` and `@,@`), which would be easy
    tokens that inflate MLM accuracy; `<unk>` becomes `unk_token`, which masking never chooses."""
    text = text.replace(" @-@ ", "-").replace(" @,@ ", ",").replace(" @.@ ", ".")
    return text.replace("<unk>", unk_token)


def wikitext_documents(articles: list[dict], unk_token: str = "[UNK]") -> list[list[str]]:
    """WikiText articles (`bertedu.data.load_wikitext2`) -> documents, one per article (title
    dropped), each the list of its paragraphs' sentences, cleaned with `clean_wikitext`."""
    documents = []
    for article in articles:
        sentences = [clean_wikitext(s, unk_token) for p in article["paragraphs"] for s in split_sentences(p)]
        if sentences:
            documents.append(sentences)
    return documents


def tokenize_documents(documents: list[list[str]], tokenizer) -> list[list[list[int]]]:
    """Documents of sentence strings -> documents of sentences of WordPiece ids; empties dropped."""
    if isinstance(documents, str) or not all(isinstance(d, (list, tuple)) for d in documents):
        raise TypeError("documents must be a list of documents, each a list of sentence strings")
    tokenized = []
    for document in documents:
        sentences = [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(s)) for s in document]
        sentences = [s for s in sentences if s]
        if sentences:
            tokenized.append(sentences)
    return tokenized


# ---------------------------------------------------------------------------------------
# 2. Sentence pairs for NSP
# ---------------------------------------------------------------------------------------
@dataclass
class NspExample:
    """One sentence pair: `tokens_a`/`tokens_b` are WordPiece ids without special tokens,
    `next_sentence_label` 0 (IsNext) or 1 (NotNext), `document_a`/`document_b` the indices of
    the documents they came from."""

    tokens_a: list[int]
    tokens_b: list[int]
    next_sentence_label: int
    document_a: int
    document_b: int


def truncate_pair(tokens_a: list[int], tokens_b: list[int], max_num_tokens: int, rng: random.Random) -> None:
    """Trim the pair in place to `max_num_tokens`: one token at a time from the longer side,
    from its front or back at random (Google's rule)."""
    while len(tokens_a) + len(tokens_b) > max_num_tokens:
        longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


def create_nsp_examples(documents: list[list[list[int]]], max_seq_length: int = 128,
                        short_seq_prob: float = 0.1, nsp_probability: float = 0.5,
                        seed: int = 0) -> list[NspExample]:
    """Cut tokenized documents into NSP pairs, as Google's `create_instances_from_document`.

    Sentences gather into a chunk of `max_seq_length - 3` tokens (with probability
    `short_seq_prob`, a random shorter length). IsNext: A = the chunk's first sentences, B = the
    rest. NotNext: B = consecutive sentences of a random other document; the chunk's unused
    sentences start the next chunk. Unlike Google's code (every one-sentence chunk NotNext), the
    label is drawn first and an IsNext chunk takes two sentences or more, so labels stay balanced.

    Args:
        documents: tokenized documents (`tokenize_documents`); NotNext needs at least two.
        max_seq_length: the length of `[CLS] A [SEP] B [SEP]`, at least 5.
        short_seq_prob: probability of a shorter target length.
        nsp_probability: probability of NotNext (0.5 in BERT).
        seed: seeds the `random.Random` behind every choice.

    Returns:
        A list of `NspExample`s in corpus order (the training loop shuffles).
    """
    if not isinstance(max_seq_length, int) or max_seq_length < 5:
        raise ValueError(f"max_seq_length must be an int >= 5 ([CLS] A [SEP] B [SEP]), got {max_seq_length!r}")
    for name, p in (("short_seq_prob", short_seq_prob), ("nsp_probability", nsp_probability)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    documents = [[list(s) for s in doc if len(s)] for doc in documents]  # empty sentences out
    nonempty = [d for d, doc in enumerate(documents) if doc]
    position = {d: k for k, d in enumerate(nonempty)}
    if len(nonempty) < 2 and nsp_probability > 0:
        raise ValueError(f"NotNext pairs take B from another document, but there are {len(nonempty)} "
                         "non-empty documents; give at least 2")
    rng = random.Random(seed)
    max_num_tokens = max_seq_length - 3  # room for [CLS], [SEP], [SEP]
    examples = []
    for d, document in enumerate(documents):
        chunk, chunk_length, i = [], 0, 0
        target = max_num_tokens if rng.random() >= short_seq_prob else rng.randint(2, max_num_tokens)
        is_random_next = rng.random() < nsp_probability
        while i < len(document):
            chunk.append(document[i])
            chunk_length += len(document[i])
            at_end = i == len(document) - 1
            full = chunk_length >= target and (is_random_next or len(chunk) >= 2)
            if at_end or full:
                if is_random_next or len(chunk) >= 2:
                    # A is the first a_end sentences of the chunk
                    a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
                    tokens_a = [t for sentence in chunk[:a_end] for t in sentence]
                    if is_random_next:
                        k = rng.randrange(len(nonempty) - 1)
                        other = nonempty[k + (k >= position[d])]  # any document but this one
                        tokens_b = []
                        for sentence in documents[other][rng.randrange(len(documents[other])):]:
                            tokens_b.extend(sentence)
                            if len(tokens_b) >= target - len(tokens_a):
                                break
                        i -= len(chunk) - a_end  # the unused sentences start the next chunk
                    else:
                        other = d
                        tokens_b = [t for sentence in chunk[a_end:] for t in sentence]
                    truncate_pair(tokens_a, tokens_b, max_num_tokens, rng)
                    label = NOT_NEXT if is_random_next else IS_NEXT
                    examples.append(NspExample(tokens_a, tokens_b, label, d, other))
                # a new chunk: new target length, new label
                chunk, chunk_length = [], 0
                target = max_num_tokens if rng.random() >= short_seq_prob else rng.randint(2, max_num_tokens)
                is_random_next = rng.random() < nsp_probability
            i += 1
    return examples


def encode_pair(tokens_a: list[int], tokens_b: list[int], cls_token_id: int,
                sep_token_id: int) -> tuple[list[int], list[int]]:
    """`[CLS] A [SEP] B [SEP]` and its token types: 0 for `[CLS] A [SEP]`, 1 for `B [SEP]`."""
    input_ids = [cls_token_id] + tokens_a + [sep_token_id] + tokens_b + [sep_token_id]
    token_type_ids = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
    return input_ids, token_type_ids


# ---------------------------------------------------------------------------------------
# 3. Masking for MLM
# ---------------------------------------------------------------------------------------
def special_ids(tokenizer) -> list[int]:
    """Ids that masking never chooses: every special token, padding included."""
    for name in ("all_special_ids", "pad_token_id", "mask_token_id", "vocab_size"):
        if not hasattr(tokenizer, name):
            raise TypeError(f"tokenizer must be a BertTokenizer (it has no {name}); got {type(tokenizer).__name__}")
    return sorted(set(tokenizer.all_special_ids) | {tokenizer.pad_token_id})


def mask_tokens(input_ids: torch.Tensor, tokenizer, probability: float = 0.15,
                generator: torch.Generator | None = None,
                priority: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose positions for the masked language model and corrupt them, BERT's way.

    In every row, `round(probability * n)` of its n non-special positions (at least one) are
    chosen at random; of these, 80% become `[MASK]`, 10% a random non-special token and 10% stay.

    Args:
        input_ids: LongTensor `[batch_size, seq_len]`, possibly padded with `pad_token_id`.
        tokenizer: gives `all_special_ids`, `pad_token_id`, `mask_token_id`, `vocab_size`.
        probability: share of eligible positions to choose (0.15 in BERT).
        generator: a seeded `torch.Generator` makes the result reproducible.
        priority: optional FloatTensor `[batch_size, seq_len]`: choose the eligible positions of
            highest priority instead (ties at random): selective masking, Gu et al. 2020.

    Returns:
        `(inputs, labels)`, both `[batch_size, seq_len]`: the corrupted ids, and the original
        ids at the chosen positions with -100 everywhere else.
    """
    check_token_ids(input_ids)
    if isinstance(probability, bool) or not 0.0 < probability <= 1.0:
        raise ValueError(f"probability must be in (0, 1], got {probability!r}")
    device = input_ids.device
    specials = torch.tensor(special_ids(tokenizer), device=device)

    # 1. choose round(p * n) eligible positions per row, at least one
    eligible = ~torch.isin(input_ids, specials)  # (B, T)
    n = eligible.sum(dim=1)  # (B,)
    k = torch.clamp((n * probability).round().long(), min=1).minimum(n)  # (B,)
    scores = torch.rand(input_ids.shape, generator=generator, device=device)
    scores = scores.masked_fill(~eligible, 2.0)  # ineligible positions sort last
    order = scores.argsort(dim=1)  # (B, T): positions in a random order, ineligible last
    if priority is not None:  # highest priority first; a stable sort keeps ties in random order
        if not isinstance(priority, torch.Tensor) or priority.shape != input_ids.shape:
            got = tuple(priority.shape) if isinstance(priority, torch.Tensor) else type(priority).__name__
            raise ValueError(f"priority must be a tensor shaped like input_ids {tuple(input_ids.shape)}, got {got}")
        key = (-priority.float()).masked_fill(~eligible, float("inf")).to(device)
        order = order.gather(1, key.gather(1, order).argsort(dim=1, stable=True))
    rank = order.argsort(dim=1)  # (B, T): where each position comes in that order
    chosen = rank < k[:, None]
    labels = torch.where(chosen, input_ids, IGNORE_INDEX)

    # 2. of the chosen: 80% [MASK], 10% random token, 10% unchanged
    inputs = input_ids.clone()
    u = torch.rand(input_ids.shape, generator=generator, device=device)
    inputs[chosen & (u < 0.8)] = tokenizer.mask_token_id
    random_positions = chosen & (u >= 0.8) & (u < 0.9)
    allowed = torch.ones(tokenizer.vocab_size, dtype=torch.bool, device=device)
    allowed[specials] = False
    candidates = allowed.nonzero().squeeze(1)  # every non-special id
    picks = torch.randint(len(candidates), (int(random_positions.sum()),), generator=generator, device=device)
    inputs[random_positions] = candidates[picks].to(inputs.dtype)
    return inputs, labels


# ---------------------------------------------------------------------------------------
# 4. Dataset and batches
# ---------------------------------------------------------------------------------------
class PretrainingDataset:
    """NSP pairs encoded as `[CLS] A [SEP] B [SEP]`, with MLM masks, static or dynamic.

    `dataset[i]` is a dict of 1-D tensors `input_ids`, `token_type_ids`, `labels` and a scalar
    `next_sentence_label`; `dataset.collate(items)` pads a list of them into a batch.

    Args:
        examples: `NspExample`s from `create_nsp_examples`.
        tokenizer: a `BertTokenizer`.
        masking: "static" (BERT: masked once, here) or "dynamic" (RoBERTa: a fresh mask each
            epoch, seeded by `(seed, epoch, i)`; the training loop calls `set_epoch`).
        mlm_probability: share of positions chosen for MLM.
        seed: seeds the masks.
    """

    def __init__(self, examples: list[NspExample], tokenizer, masking: str = "dynamic",
                 mlm_probability: float = 0.15, seed: int = 0):
        if masking not in ("static", "dynamic"):
            raise ValueError(f"masking must be 'static' or 'dynamic', got {masking!r}")
        if not examples:
            raise ValueError("no examples: the corpus produced no sentence pairs")
        special_ids(tokenizer)  # checks that it is a tokenizer
        self.tokenizer = tokenizer
        self.masking = masking
        self.mlm_probability = mlm_probability
        self.seed = seed
        self.epoch = 0
        self.pad_token_id = tokenizer.pad_token_id
        self.items = []
        for example in examples:
            input_ids, token_type_ids = encode_pair(example.tokens_a, example.tokens_b,
                                                    tokenizer.cls_token_id, tokenizer.sep_token_id)
            self.items.append({"input_ids": torch.tensor(input_ids),
                               "token_type_ids": torch.tensor(token_type_ids),
                               "next_sentence_label": torch.tensor(example.next_sentence_label)})
        if masking == "static":  # masks fixed once, now
            for i, item in enumerate(self.items):
                item["input_ids"], item["labels"] = self._mask(item["input_ids"], i, epoch=0)

    def _mask(self, input_ids: torch.Tensor, index: int, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(derive_seed(self.seed, epoch, index))
        inputs, labels = mask_tokens(input_ids[None], self.tokenizer, self.mlm_probability, generator)
        return inputs[0], labels[0]

    def set_epoch(self, epoch: int) -> None:
        """Dynamic masking draws the masks of epoch `epoch` from now on."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        item = self.items[i]
        if self.masking == "static":
            return dict(item)
        inputs, labels = self._mask(item["input_ids"], i, self.epoch)
        return {**item, "input_ids": inputs, "labels": labels}

    def collate(self, items: list[dict]) -> dict:
        return collate_pretraining(items, self.pad_token_id)


def collate_pretraining(items: list[dict], pad_token_id: int) -> dict:
    """Pad `PretrainingDataset` items to the longest: `input_ids`, `token_type_ids`,
    `attention_mask`, `labels` `[batch_size, seq_len]` (padding: label -100, attention 0) and
    `next_sentence_label` `[batch_size]` when the items have it."""
    return pad_collate(items, pad_token_id)


# ---------------------------------------------------------------------------------------
# Loss and evaluation
# ---------------------------------------------------------------------------------------
def pretraining_logits(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The MLM logits at the chosen positions only, their labels, and the NSP logits.

    Only the chosen positions go through the MLM head (Google's `gather_indexes`), `[N, V]`
    instead of `[B, T, V]`: this halves the recipe's training step on a CPU.

    Returns:
        `(mlm_logits [N, V], mlm_labels [N], nsp_logits [B, 2])`, N = chosen positions.
    """
    if "labels" not in batch:
        raise ValueError(f"a pretraining batch needs labels, got keys {sorted(batch)}")
    out = model.bert(batch["input_ids"], batch.get("token_type_ids"), batch.get("attention_mask"))
    mlm_logits, mlm_labels = chosen_mlm_logits(model, out.last_hidden_state, batch["labels"])
    nsp_logits = model.cls.seq_relationship(out.pooler_output)  # (B, 2)
    return mlm_logits, mlm_labels, nsp_logits


def chosen_mlm_logits(model, last_hidden_state: torch.Tensor,
                      labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The MLM head (`model.cls.predictions`) at the chosen positions only (label != -100):
    `last_hidden_state` `[B, T, H]` and `labels` `[B, T]` -> `(logits [N, V], labels [N])`."""
    chosen = labels != IGNORE_INDEX  # (B, T)
    return model.cls.predictions(last_hidden_state[chosen]), labels[chosen]  # (N, H) -> (N, V)


def pretraining_loss(model, batch: dict) -> torch.Tensor:
    """MLM loss (mean over the chosen positions) + NSP loss (mean over the pairs), the paper's
    joint objective; equals `BertForPreTraining(**batch).loss`, faster (`pretraining_logits`)."""
    if "next_sentence_label" not in batch:
        raise ValueError(f"a pretraining batch needs next_sentence_label, got keys {sorted(batch)}")
    mlm_logits, mlm_labels, nsp_logits = pretraining_logits(model, batch)
    return F.cross_entropy(mlm_logits, mlm_labels) + F.cross_entropy(nsp_logits, batch["next_sentence_label"])


@torch.no_grad()
def evaluate_pretraining(model, dataset: PretrainingDataset, batch_size: int = 128) -> dict:
    """Held-out MLM and NSP figures of a `BertForPreTraining`.

    Returns:
        `mlm_loss`, `mlm_accuracy` (every chosen position), `mlm_masked_accuracy` (only those
        showing `[MASK]`: the honest figure, as the 10% left unchanged show their answer),
        `nsp_loss`, `nsp_accuracy`.
    """
    device = next(model.parameters()).device
    with eval_mode(model):
        mask_id = dataset.tokenizer.mask_token_id
        mlm_loss = mlm_correct = mlm_count = masked_correct = masked_count = nsp_loss = nsp_correct = 0.0
        for start in range(0, len(dataset), batch_size):
            batch = dataset.collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
            batch = {k: v.to(device) for k, v in batch.items()}
            mlm_logits, mlm_labels, nsp_logits = pretraining_logits(model, batch)
            mlm_logits, nsp_logits, nsp_labels = mlm_logits.float(), nsp_logits.float(), batch["next_sentence_label"]
            mlm_loss += F.cross_entropy(mlm_logits, mlm_labels, reduction="sum").item()
            correct = mlm_logits.argmax(-1) == mlm_labels  # (N,), N = chosen positions
            masked = batch["input_ids"][batch["labels"] != IGNORE_INDEX] == mask_id  # (N,)
            mlm_correct += correct.sum().item()
            mlm_count += mlm_labels.numel()
            masked_correct += correct[masked].sum().item()
            masked_count += masked.sum().item()
            nsp_loss += F.cross_entropy(nsp_logits, nsp_labels, reduction="sum").item()
            nsp_correct += (nsp_logits.argmax(-1) == nsp_labels).sum().item()
    return {"mlm_loss": mlm_loss / mlm_count, "mlm_accuracy": mlm_correct / mlm_count,
            "mlm_masked_accuracy": masked_correct / max(masked_count, 1),
            "nsp_loss": nsp_loss / len(dataset), "nsp_accuracy": nsp_correct / len(dataset)}


def baselines(train_examples: list[NspExample], eval_dataset: PretrainingDataset, tokenizer) -> dict:
    """What a model that ignores the context scores on `eval_dataset`: `mlm_unigram_accuracy`
    (always the most frequent training token, `mlm_unigram_token`), `mlm_masked_unigram_accuracy`
    (the same at `[MASK]` only), `mlm_context_free_accuracy` (copy the shown token, guess the
    unigram at `[MASK]`) and `nsp_majority_accuracy` (the more frequent training NSP label)."""
    specials = set(special_ids(tokenizer))
    counts = Counter(t for e in train_examples for t in e.tokens_a + e.tokens_b if t not in specials)
    top_token = counts.most_common(1)[0][0]
    majority = Counter(e.next_sentence_label for e in train_examples).most_common(1)[0][0]
    labels = torch.cat([eval_dataset[i]["labels"] for i in range(len(eval_dataset))])
    inputs = torch.cat([eval_dataset[i]["input_ids"] for i in range(len(eval_dataset))])
    chosen = labels != IGNORE_INDEX
    labels, shown = labels[chosen], inputs[chosen]
    masked = shown == tokenizer.mask_token_id
    context_free = torch.where(masked, labels == top_token, shown == labels)
    nsp = torch.stack([eval_dataset[i]["next_sentence_label"] for i in range(len(eval_dataset))])
    return {"mlm_unigram_accuracy": (labels == top_token).float().mean().item(),
            "mlm_masked_unigram_accuracy": (labels[masked] == top_token).float().mean().item(),
            "mlm_unigram_token": top_token,
            "mlm_context_free_accuracy": context_free.float().mean().item(),
            "nsp_majority_accuracy": (nsp == majority).float().mean().item()}


def read_cloze_probes(path: str | Path) -> list[tuple[str, str]]:
    """Cloze probes from a text file: one `sentence<TAB>answer` per line, the sentence with one
    `[MASK]`; lines starting with `#` are comments. The book's set is
    `bertedu/book_bert/cloze.tsv`, written before the book's BERT was trained."""
    probes = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        sentence, tab, answer = line.partition("\t")
        if not tab or sentence.count("[MASK]") != 1 or not answer.strip():
            raise ValueError(f"{path}, line {number}: expected 'sentence with one [MASK]<TAB>answer', got {line!r}")
        probes.append((sentence.strip(), answer.strip()))
    return probes


@torch.no_grad()
def cloze_predictions(model, tokenizer, probes: list[tuple[str, str]], k: int = 5) -> list[dict]:
    """Fill in the `[MASK]` of each probe with a masked LM; score the answer's rank.

    Args:
        model: a `BertForPreTraining` or `BertForMaskedLM`.
        tokenizer: its `BertTokenizer`; every answer must be one WordPiece of it.
        probes: `(sentence with one [MASK], answer)` pairs, e.g. from `read_cloze_probes`.
        k: how many guesses count as a hit.

    Returns:
        One dict per probe: `sentence`, `answer`, `top` (the k best WordPieces, best first),
        `rank` (1 = the best guess) and `hit` (rank <= k).
    """
    answer_ids = []
    for sentence, answer in probes:
        pieces = tokenizer.tokenize(answer)
        if len(pieces) != 1:
            raise ValueError(f"cloze answer {answer!r} is {pieces} in this vocabulary: each answer must be one WordPiece")
        answer_ids.append(tokenizer.convert_tokens_to_ids(pieces[0]))
    inputs = tokenizer([sentence for sentence, _ in probes], padding=True, return_tensors="pt")
    device = next(model.parameters()).device
    with eval_mode(model):
        logits = model(**{name: tensor.to(device) for name, tensor in inputs.items()}).logits.float().cpu()  # (P, T, V)
    at_mask = logits[inputs["input_ids"] == tokenizer.mask_token_id]  # (P, V): one [MASK] per probe
    results = []
    for (sentence, answer), answer_id, scores in zip(probes, answer_ids, at_mask):
        rank = int((scores > scores[answer_id]).sum()) + 1
        top = tokenizer.convert_ids_to_tokens(scores.topk(k).indices.tolist())
        results.append({"sentence": sentence, "answer": answer, "top": top, "rank": rank, "hit": rank <= k})
    return results


def book_bert_report(model, tokenizer, cloze_path: str | Path, eval_examples: int = 2048, seed: int = 0) -> dict:
    """Held-out figures of a model pretrained on WikiText-2, with their baselines (chapter 6,
    `benchmarks/book_bert.py`); held-out pairs from the test split, static masks at 15%.

    Returns:
        A dict: `metrics` (`evaluate_pretraining`), `baselines` (`baselines`), `n_eval_pairs`,
        `n_mask_positions`, `cloze` (`cloze_predictions` on `cloze_path`'s probes), `cloze_top5`
        (share answered in the top 5) and `cloze_top5_frequency_baseline` (the same for always
        guessing the 5 most frequent training tokens).
    """
    from .data import load_wikitext2

    train_split, eval_split = wikitext_splits()
    recipe = dataclasses.replace(PretrainingRecipe(), max_seq_length=model.config.max_position_embeddings,
                                 dupe_factor=1, eval_examples=eval_examples, seed=seed)
    data = prepare_pretraining_data(wikitext_documents(load_wikitext2(train_split)),
                                    wikitext_documents(load_wikitext2(eval_split)), tokenizer, recipe)
    eval_dataset = data["eval_dataset"]
    metrics = evaluate_pretraining(model, eval_dataset)
    base = baselines(data["train_examples"], eval_dataset, tokenizer)
    cloze = cloze_predictions(model, tokenizer, read_cloze_probes(cloze_path))
    specials = set(special_ids(tokenizer))
    counts = Counter(t for e in data["train_examples"] for t in e.tokens_a + e.tokens_b if t not in specials)
    frequent = set(tokenizer.convert_ids_to_tokens([t for t, _ in counts.most_common(5)]))
    n_masks = sum(int((eval_dataset[i]["input_ids"] == tokenizer.mask_token_id).sum()) for i in range(len(eval_dataset)))
    return {"metrics": metrics, "baselines": base, "n_eval_pairs": len(eval_dataset), "n_mask_positions": n_masks,
            "cloze": cloze, "cloze_top5": sum(c["hit"] for c in cloze) / len(cloze),
            "cloze_top5_frequency_baseline": sum(c["answer"] in frequent for c in cloze) / len(cloze)}


# ---------------------------------------------------------------------------------------
# Further pretraining: the masked LM alone, on single sentences (chapter 12)
# ---------------------------------------------------------------------------------------
class MaskedLMDataset:
    """Unlabeled sentences as `[CLS] sentence [SEP]` with BERT's 80/10/10 MLM masks, no NSP.

    `dataset[i]` is a dict of 1-D LongTensors `input_ids`, `token_type_ids`, `labels` (-100:
    not predicted); `collate` pads them and adds `attention_mask`.

    Args:
        tokenizer: a `BertTokenizer`.
        texts: N sentences (at least one eligible token each after tokenization).
        masking: "static" (masked once, here), "dynamic" (a fresh mask each epoch, seeded by
            `(seed, epoch, i)`; the loop calls `set_epoch`) or "selective" (masked once, at the
            tokens of highest `importance`, Gu et al. 2020).
        probability: share of tokens chosen for the MLM (0.15 in BERT).
        max_length: longest encoding, `[CLS]` and `[SEP]` included.
        seed: seeds the masks.
        importance: for "selective" only: N FloatTensors, one score per WordPiece of each
            encoding, `[CLS]` and `[SEP]` included (as `token_importance` returns them).
    """

    def __init__(self, tokenizer, texts: Sequence[str], masking: str = "dynamic",
                 probability: float = 0.15, max_length: int = 64, seed: int = 0,
                 importance: Sequence[torch.Tensor] | None = None):
        if masking not in ("static", "dynamic", "selective"):
            raise ValueError(f"masking must be 'static', 'dynamic' or 'selective', got {masking!r}")
        if (importance is not None) != (masking == "selective"):
            raise ValueError("pass importance (one score per WordPiece) exactly when masking='selective'")
        texts = check_strings(texts, "texts")
        if isinstance(probability, bool) or not 0.0 < probability <= 1.0:
            raise ValueError(f"probability must be in (0, 1], got {probability!r}")
        special_ids(tokenizer)
        self.tokenizer, self.masking, self.probability, self.seed = tokenizer, masking, probability, seed
        self.pad_token_id = tokenizer.pad_token_id
        self.epoch = 0
        encoded = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
        self.input_ids = [torch.tensor(ids) for ids in encoded]
        self.lengths = [len(ids) for ids in encoded]
        self.importance = None
        if importance is not None:
            if len(importance) != len(self.input_ids):
                raise ValueError(f"importance has {len(importance)} entries for {len(self.input_ids)} texts")
            for i, (scores, ids) in enumerate(zip(importance, self.input_ids)):
                if not isinstance(scores, torch.Tensor) or scores.shape != ids.shape:
                    got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
                    raise ValueError(f"importance[{i}] must have one score per WordPiece, shape {tuple(ids.shape)}, "
                                     f"got {got} (use token_importance with the same tokenizer and max_length)")
            self.importance = list(importance)
        fixed = masking in ("static", "selective")
        self.static = [self._mask(i, 0) for i in range(len(texts))] if fixed else None

    def _mask(self, i: int, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(derive_seed(self.seed, epoch, i))
        priority = self.importance[i][None] if self.importance is not None else None
        inputs, labels = mask_tokens(self.input_ids[i][None], self.tokenizer, self.probability, generator, priority)
        return inputs[0], labels[0]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, i: int) -> dict:
        inputs, labels = self.static[i] if self.static is not None else self._mask(i, self.epoch)
        return {"input_ids": inputs, "token_type_ids": torch.zeros_like(inputs), "labels": labels}

    def collate(self, items: Sequence[dict]) -> dict:
        """Pad to the longest item: `input_ids`, `token_type_ids`, `attention_mask`, `labels`, all `[B, T]`."""
        return collate_pretraining(list(items), self.pad_token_id)


def masked_lm_batch_loss(model: nn.Module, batch: dict) -> torch.Tensor:
    """Masked-LM cross-entropy, mean over the chosen positions, of a model with `.bert` and
    `.cls.predictions`; equals `BertForMaskedLM(**batch).loss`, faster (`pretraining_logits`).
    No NSP term: use it as `train(loss_fn=masked_lm_batch_loss)`."""
    if "labels" not in batch:
        raise ValueError(f"an MLM batch needs labels (-100 = not predicted), got keys {sorted(batch)}")
    if not (batch["labels"] != IGNORE_INDEX).any():
        raise ValueError("no position of the batch is chosen for the MLM (every label is -100)")
    out = model.bert(batch["input_ids"], batch.get("token_type_ids"), batch.get("attention_mask"))
    logits, labels = chosen_mlm_logits(model, out.last_hidden_state, batch["labels"])  # (N, V), (N,)
    return F.cross_entropy(logits, labels)


@torch.no_grad()
def masked_lm_accuracy(model: nn.Module, dataset: MaskedLMDataset, batch_size: int = 256,
                       mixed_precision: bool | None = None) -> float:
    """Share of the `[MASK]` positions whose original token the model (with `.bert` and
    `.cls.predictions`) ranks first; `dataset` must be static, so every model gets the same blanks.
    Batches of similar length; bf16 autocast where the hardware has it, unless `mixed_precision=False`."""
    if dataset.masking == "dynamic":
        raise ValueError("use a MaskedLMDataset with masking='static', so every model sees the same blanks")
    device = next(model.parameters()).device
    correct = total = 0
    with eval_mode(model), inference_autocast(model, device, mixed_precision):
        for indices in sorted_batches(dataset.lengths, batch_size):
            batch = dataset.collate([dataset[i] for i in indices])
            batch = {k: v.to(device) for k, v in batch.items()}
            shown = (batch["labels"] != IGNORE_INDEX) & (batch["input_ids"] == dataset.tokenizer.mask_token_id)
            out = model.bert(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
            predicted = model.cls.predictions(out.last_hidden_state[shown]).argmax(-1)  # (N,)
            correct += (predicted == batch["labels"][shown]).sum().item()
            total += int(shown.sum())
    if total == 0:
        raise ValueError("the dataset has no [MASK] position to score")
    return correct / total


@torch.no_grad()
def token_importance(classifier: nn.Module, tokenizer, texts: Sequence[str], max_length: int = 64,
                     batch_size: int = 256) -> list[torch.Tensor]:
    """How much each WordPiece supports a fine-tuned classifier's decision (selective masking).

    With `y` the predicted class of encoding `x`, WordPiece i scores `P(y | x) - P(y | x without
    i)` (Gu et al. 2020); `[CLS]` and `[SEP]` score 0.

    Args:
        classifier: a fine-tuned model whose output has `.logits` `[B, num_labels]`.
        tokenizer: its `BertTokenizer`; texts: N sentences.
        max_length, batch_size: the encoding's length cap (as in `MaskedLMDataset`), rows per pass.

    Returns:
        N FloatTensors, `importance[i]` with one score per WordPiece of text i's encoding.
    """
    texts = check_strings(texts, "texts")
    device = next(classifier.parameters()).device
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    rows, owners = [], []  # every text, then the text without each of its inner WordPieces
    for t, ids in enumerate(encoded):
        rows.append(ids)
        owners.append((t, -1))
        for i in range(1, len(ids) - 1):
            rows.append(ids[:i] + ids[i + 1:])
            owners.append((t, i))
    probabilities = []
    with eval_mode(classifier):
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            ids = pad_sequences(chunk, tokenizer.pad_token_id)                        # (b, T)
            mask = pad_sequences([[1] * len(row) for row in chunk], 0)                 # (b, T)
            probabilities.append(classifier(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float().softmax(-1).cpu())
    probabilities = torch.cat(probabilities)  # (rows, num_labels)
    importance = [torch.zeros(len(ids)) for ids in encoded]
    full = {}
    for row, (t, i) in enumerate(owners):
        if i == -1:
            label = int(probabilities[row].argmax())
            full[t] = (label, probabilities[row, label].item())
        else:
            label, confidence = full[t]
            importance[t][i] = confidence - probabilities[row, label].item()
    return importance


def label_association(tokenizer, texts: Sequence[str], labels: Sequence[int], smoothing: float = 1.0) -> torch.Tensor:
    """How strongly each WordPiece is tied to one class of a labelled set: `[V]` scores.

    `|log(p_w / q_w)|`, with `p_w`, `q_w` the smoothed frequencies of WordPiece w in class 1 and
    class 0 (Wang & Manning's NB weights); special tokens score 0. A cheap stand-in for
    `token_importance`: `scores[input_ids]` scores an unlabeled sentence.

    Args:
        tokenizer: a `BertTokenizer`; texts, labels: the labelled set (labels 0 or 1).
        smoothing: added to every count (Laplace), so unseen WordPieces score 0.
    """
    texts = check_strings(texts, "texts")
    if len(texts) != len(labels):
        raise ValueError(f"give as many labels as texts, at least one ({len(texts)} texts, {len(labels)} labels)")
    if any(label not in (0, 1) for label in labels):
        raise ValueError("labels must be 0 or 1: label_association scores two classes")
    if not smoothing > 0:
        raise ValueError(f"smoothing must be > 0, got {smoothing!r}")
    counts = torch.full((2, tokenizer.vocab_size), float(smoothing))
    for text, label in zip(texts, labels):
        for token_id in tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text)):
            counts[label, token_id] += 1
    frequencies = counts / counts.sum(dim=1, keepdim=True)
    scores = (frequencies[1].log() - frequencies[0].log()).abs()
    scores[special_ids(tokenizer)] = 0.0
    return scores


# ---------------------------------------------------------------------------------------
# The CPU recipe of chapter 6
# ---------------------------------------------------------------------------------------
@dataclass
class PretrainingRecipe:
    """Every setting of the small BERT the book pretrains on a 2-core CPU in a few minutes.

    WikiText-2's train split (else valid) for training, its test split held out; a WordPiece
    vocabulary learned on the corpus; MLM + NSP with dynamic masks over `dupe_factor` copies,
    AdamW with 10% warmup and linear decay, no dropout. Chapter 6 explains the choices;
    `benchmarks/pretrain_recipe.py` runs it.
    """

    vocab_size: int = 8000  # WordPiece vocabulary trained on the corpus
    max_seq_length: int = 64  # [CLS] A [SEP] B [SEP]
    short_seq_prob: float = 0.1
    dupe_factor: int = 5  # passes over the corpus, each cut into different pairs (Google: 10)
    masking: str = "dynamic"
    mlm_probability: float = 0.15
    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    intermediate_size: int = 512
    dropout: float = 0.0  # hidden and attention dropout; BERT's 0.1 only slows a model this undertrained
    initializer_range: float = 0.02  # std of the weights' normal init (BERT's 0.02)
    position_init: str = "normal"  # "normal" (BERT) or "sinusoidal" (`sinusoidal_positions`)
    position_std: float | None = None  # std of the sinusoidal start; None: initializer_range
    max_steps: int = 1500
    batch_size: int = 32
    learning_rate: float = 1e-3
    warmup_fraction: float = 0.1  # warmup_steps = this share of max_steps
    weight_decay: float = 0.01
    eval_examples: int = 512  # held-out pairs from the test split
    seed: int = 0

    def model_config(self, vocab_size: int) -> BertConfig:
        return BertConfig(vocab_size=vocab_size, hidden_size=self.hidden_size,
                          num_hidden_layers=self.num_hidden_layers,
                          num_attention_heads=self.num_attention_heads,
                          intermediate_size=self.intermediate_size,
                          max_position_embeddings=self.max_seq_length,
                          hidden_dropout_prob=self.dropout, attention_probs_dropout_prob=self.dropout,
                          initializer_range=self.initializer_range)

    @property
    def warmup_steps(self) -> int:
        return round(self.warmup_fraction * self.max_steps)

    def training_config(self, **overrides) -> TrainingConfig:
        settings = dict(max_steps=self.max_steps, batch_size=self.batch_size,
                        learning_rate=self.learning_rate, warmup_steps=self.warmup_steps,
                        weight_decay=self.weight_decay, seed=self.seed)
        settings.update(overrides)
        return TrainingConfig(**settings)


def sinusoidal_positions(num_positions: int, hidden_size: int, std: float = 0.02) -> torch.Tensor:
    """The Transformer's fixed position encoding (Vaswani et al. 2017, section 3.5), scaled to
    standard deviation `std`: `[num_positions, hidden_size]`, a starting value for BERT's learned
    `position_embeddings`. Row t holds sin(t / 10000^(2i/H)) in column 2i, cos(...) in 2i + 1."""
    positions = torch.arange(num_positions, dtype=torch.float32)[:, None]  # (T, 1)
    frequencies = 10000.0 ** (-torch.arange(0, hidden_size, 2, dtype=torch.float32) / hidden_size)  # (H/2,)
    table = torch.zeros(num_positions, hidden_size)
    table[:, 0::2] = torch.sin(positions * frequencies)
    table[:, 1::2] = torch.cos(positions * frequencies[: hidden_size // 2])
    return table * (std / table.std())


def build_pretraining_model(recipe: PretrainingRecipe, vocab_size: int):
    """A freshly initialized `BertForPreTraining` of the recipe's size and initialization."""
    from .heads import BertForPreTraining

    if recipe.position_init not in ("normal", "sinusoidal"):
        raise ValueError(f"position_init must be 'normal' or 'sinusoidal', got {recipe.position_init!r}")
    model = BertForPreTraining(recipe.model_config(vocab_size))
    if recipe.position_init == "sinusoidal":
        table = model.bert.embeddings.position_embeddings.weight
        with torch.no_grad():
            std = recipe.initializer_range if recipe.position_std is None else recipe.position_std
            table.copy_(sinusoidal_positions(*table.shape, std=std))
    return model


def wikitext_splits() -> tuple[str, str]:
    """The recipe's (training, held-out) WikiText-2 splits: ("train", "test") when the train file
    is on this machine ($BERTEDU_DATA or the cache), else ("valid", "test"); downloads nothing."""
    relative = "wikitext2/wiki.train.tokens"
    folders = [Path(os.environ["BERTEDU_DATA"])] if os.environ.get("BERTEDU_DATA") else []
    folders.append(cache_folder())
    present = any((folder / relative).is_file() for folder in folders)
    return ("train" if present else "valid"), "test"


def train_tokenizer(documents: list[list[str]], vocab_size: int, scoring: str = "frequency") -> BertTokenizer:
    """An uncased `BertTokenizer` with a WordPiece vocabulary learned on the documents' sentences
    (`train_wordpiece`), `[UNK]` marks left out. `scoring="frequency"` keeps common words whole,
    which NSP relies on (chapter 6 compares it with WordPiece's likelihood score)."""
    texts = [sentence.replace("[UNK]", " ") for document in documents for sentence in document]
    return BertTokenizer(vocab=train_wordpiece(texts, vocab_size, scoring=scoring))


def prepare_pretraining_data(train_documents: list[list[str]], eval_documents: list[list[str]],
                             tokenizer, recipe: PretrainingRecipe) -> dict:
    """Sentence documents -> the recipe's training and held-out datasets.

    Training pairs: `recipe.dupe_factor` passes over the corpus, each cut with its own seed
    (Google's `--dupe_factor`). Held out: up to `recipe.eval_examples` pairs drawn from
    `eval_documents`, static masks at 15% whatever `recipe.mlm_probability`, so runs compare.

    Returns:
        A dict with `train_examples` (the `NspExample`s), `train_dataset` and `eval_dataset`.
    """
    train_tokens = tokenize_documents(train_documents, tokenizer)
    train_examples = []
    for copy in range(recipe.dupe_factor):  # different pairs, so the model cannot memorise pairs
        train_examples += create_nsp_examples(train_tokens, recipe.max_seq_length, recipe.short_seq_prob,
                                              seed=derive_seed(recipe.seed, copy))
    eval_examples = create_nsp_examples(tokenize_documents(eval_documents, tokenizer),
                                        recipe.max_seq_length, recipe.short_seq_prob, seed=recipe.seed + 1)
    if len(eval_examples) > recipe.eval_examples:
        eval_examples = random.Random(recipe.seed).sample(eval_examples, recipe.eval_examples)
    return {
        "train_examples": train_examples,
        "train_dataset": PretrainingDataset(train_examples, tokenizer, recipe.masking,
                                            recipe.mlm_probability, seed=recipe.seed),
        # held-out masks at BERT's 15% whatever the training rate, so runs compare
        "eval_dataset": PretrainingDataset(eval_examples, tokenizer, "static", 0.15, seed=recipe.seed + 1),
    }
