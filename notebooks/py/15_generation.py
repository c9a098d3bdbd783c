# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 15. BERT and generation
#
# Every model in this book so far reads a text and says something about it: a label, a tag per
# word, a span. None of them writes. Yet BERT's pretraining head predicts words, and chapter 6
# used it to fill in blanks. Can a fill-in-the-blank machine write a sentence? This chapter
# tries, with two models: the book's own small BERT of chapter 6, and the real MiniLM
# checkpoint with a masked-language-model head that we fit in a minute.
#
# First we try the obvious thing, writing from left to right one `[MASK]` at a time, and
# measure why it goes wrong: BERT was trained to fill a blank with words on *both* sides, and
# it never learned the probability of the next word given only the words before it, the one
# thing a left-to-right writer needs. Then we build **mask-predict** {cite:p}`ghazvininejad2019maskpredict`,
# a decoder that suits a masked language model: start from a row of `[MASK]`s, fill them all
# at once, re-mask the guesses the model is least sure of, and fill again. Last, we place BERT
# where it does help generation: as the *encoder* of a sequence-to-sequence model, with a
# left-to-right decoder like GPT's {cite:p}`radford2018improving` beside it.
#
# ## What you will be able to do
#
# - Say why a masked language model gives no left-to-right probability of a text, and measure
#   how much worse it guesses a word from its left context alone than from both sides.
# - Recognise the degenerate output of naive left-to-right filling, and put a number on it.
# - Write mask-predict (the linear re-masking schedule, keep the confident, re-mask the rest),
#   show it equals `bertedu.generation.mask_predict`, and read its steps.
# - Fit an MLM head onto a checkpoint that ships without one.
# - Draw the attention masks of BERT, GPT and an encoder-decoder model, and wire a BERT
#   encoder to a causal decoder with cross-attention.
#
# ## Setup
#
# The default run loads the book's BERT (chapter 6, section 6.9; `book_model()` returns the
# folder shipped with the library, so nothing is trained for it here), fits an MLM head onto MiniLM in under a minute, and then runs only forward
# passes. `FULL = True` (the environment variable `BERTEDU_FULL=1`) fits the head on more
# sentences for more epochs, measures on more held-out sentences and generates longer texts
# for more prompts; section 15.5 says what that changes.

# %%
# %config InlineBackend.figure_format = 'png'
import collections
import math
import os
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.colors import ListedColormap
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch
from myst_nb import glue

import bertedu
from bertedu import BertForMaskedLM, BertForPreTraining
from bertedu.data import load_wikitext2
from bertedu.generation import left_to_right, mask_predict, mask_schedule, pseudo_log_likelihood
from bertedu.pretraining import wikitext_documents
from bertedu.run_pretraining import book_model
from bertedu.tokenization import BertTokenizer
from bertedu.training import set_seed

FULL = os.environ.get("BERTEDU_FULL", "0") == "1"
HEAD_SENTENCES = 4000 if FULL else 600    # WikiText-2 valid sentences the MiniLM head is fitted on
HEAD_EPOCHS = 4 if FULL else 2
EVAL_SENTENCES = 600 if FULL else 80      # held-out sentences for the left-context measurement
LENGTH = 16 if FULL else 12               # WordPieces each generator writes
N_PROMPTS = 24 if FULL else 8
N_GAPS = 400 if FULL else 40              # held-out sentences with a gap to fill (section 15.3)
FULL_SETTINGS = {"head_sentences": 4000, "head_epochs": 4, "eval_sentences": 600, "length": 16, "prompts": 24, "gaps": 400}
for key, value in FULL_SETTINGS.items():
    glue(f"ch15_full_{key}", value, display=False)
plt.rcParams.update({"font.size": 12})
set_seed(0)
np.random.seed(0)
CPU_START, WALL_START = time.process_time(), time.time()

# %% [markdown]
# ## 15.1 Two fill-in-the-blank machines
#
# **The book's BERT.** `book_model()` returns the folder of chapter 6's model: the recipe's
# pretraining on WikiText-2, saved in the Hugging Face layout. We load it with its own
# WordPiece vocabulary.

# %%
cpu, wall = time.process_time(), time.time()
folder = book_model()                      # shipped with the library: nothing to train
book_cpu, book_wall = time.process_time() - cpu, time.time() - wall
book = BertForPreTraining.from_pretrained(folder).eval()
book_tokenizer = BertTokenizer.from_pretrained(folder)
config = book.config
print(f"book BERT: L={config.num_hidden_layers}, H={config.hidden_size}, vocabulary {config.vocab_size:,}, "
      f"{config.max_position_embeddings} positions, {sum(p.numel() for p in book.parameters()):,} parameters")
print(f"book_model(): {book_wall:.2f} s")
glue("ch15_book_cpu", book_cpu, display=False)
glue("ch15_book_parameters", sum(p.numel() for p in book.parameters()), display=False)
glue("ch15_book_vocab", config.vocab_size, display=False)

# %% [markdown]
# **MiniLM with an MLM head.** The real checkpoint of Parts I and II, all-MiniLM-L6-v2, was
# trained for sentence embeddings and ships without the MLM head: `BertForMaskedLM.from_pretrained`
# warns that `cls.predictions.*` is missing and initialises it at random. The head is small:
# the transform (a dense $H \times H$ layer, GELU and LayerNorm) and one bias per WordPiece;
# its decoder is the word-embedding matrix, tied. We fit it with the encoder **frozen**: mask
# a share of the WordPieces of WikiText-2 validation sentences, run the frozen encoder *once*
# to get the final vectors at the masked positions, and then train the head alone on those
# cached vectors, many epochs for the price of one forward pass. We mask 25% of the
# WordPieces rather than BERT's 15%: mask-predict will show the model inputs with many
# `[MASK]`s, and more targets per sentence cost nothing extra.

# %%
minilm_tokenizer = BertTokenizer.from_pretrained(bertedu.minilm_path())
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    minilm = BertForMaskedLM.from_pretrained(bertedu.minilm_path()).eval()
message = str(caught[0].message)
print("warning:", message[:message.index(" (not in")], "->", message[message.index("train before use"):][:90], "...")  # no machine path
assert any("cls.predictions" in str(w.message) for w in caught)

# %%
train_documents = wikitext_documents(load_wikitext2("valid"))
eval_documents = wikitext_documents(load_wikitext2("test"))


TOKENIZED = {}


def sentence_ids(documents, tokenizer):
    # every sentence without [UNK] as a list of ids (tokenized once per split and tokenizer)
    key = (id(documents), id(tokenizer))
    if key not in TOKENIZED:
        TOKENIZED[key] = [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(s))
                          for d in documents for s in d if "[UNK]" not in s]
    return TOKENIZED[key]


def clean_sentences(documents, tokenizer, n, min_pieces=8, max_pieces=40, seed=0):
    # n sentences of 8 to 40 WordPieces without [UNK], as id lists, in a seeded random order
    found = [ids for ids in sentence_ids(documents, tokenizer) if min_pieces <= len(ids) <= max_pieces]
    order = torch.randperm(len(found), generator=torch.Generator().manual_seed(seed)).tolist()
    return [found[i] for i in order[:n]]


def masked_features(encoder, tokenizer, sentences, rate, seed, batch_size=64):
    # Mask `rate` of each sentence's WordPieces (at least one); return the encoder's final
    # vectors at the masked positions (M, H) and the original ids there (M,).
    generator = torch.Generator().manual_seed(seed)
    vectors, targets = [], []
    for start in range(0, len(sentences), batch_size):
        chunk = sentences[start:start + batch_size]
        T = max(map(len, chunk)) + 2
        ids = torch.full((len(chunk), T), tokenizer.pad_token_id)
        attention = torch.zeros_like(ids)
        chosen = torch.zeros(ids.shape, dtype=torch.bool)
        for b, sentence in enumerate(chunk):
            ids[b, :len(sentence) + 2] = torch.tensor([tokenizer.cls_token_id, *sentence, tokenizer.sep_token_id])
            attention[b, :len(sentence) + 2] = 1
            n = max(1, round(rate * len(sentence)))
            chosen[b, 1 + torch.randperm(len(sentence), generator=generator)[:n]] = True
        targets.append(ids[chosen])
        ids[chosen] = tokenizer.mask_token_id
        with torch.no_grad():
            vectors.append(encoder(ids, attention_mask=attention).last_hidden_state[chosen])  # (m, H)
    return torch.cat(vectors), torch.cat(targets)


cpu = time.process_time()
head_train = clean_sentences(train_documents, minilm_tokenizer, HEAD_SENTENCES)
head_eval = clean_sentences(eval_documents, minilm_tokenizer, 300, seed=1)
train_x, train_y = masked_features(minilm.bert, minilm_tokenizer, head_train, rate=0.25, seed=0)
eval_x, eval_y = masked_features(minilm.bert, minilm_tokenizer, head_eval, rate=0.15, seed=1)
print(f"fitting set: {len(head_train):,} sentences, {len(train_y):,} masked WordPieces; "
      f"held out: {len(head_eval)} test sentences, {len(eval_y):,} masked")

# %%
head = minilm.cls.predictions            # transform (dense, GELU, LayerNorm) and bias; decoder = E, tied
for parameter in minilm.parameters():
    parameter.requires_grad_(False)
trained = [*head.transform.parameters(), head.bias]
for parameter in trained:
    parameter.requires_grad_(True)
optimizer = torch.optim.AdamW(trained, lr=2e-3, weight_decay=0.01)


def head_accuracy():
    with torch.no_grad():
        return (head(eval_x).argmax(-1) == eval_y).float().mean().item()


unigram_id = int(torch.bincount(train_y, minlength=minilm_tokenizer.vocab_size).argmax())
unigram_accuracy = (eval_y == unigram_id).float().mean().item()
curve = [(0, head_accuracy())]
generator = torch.Generator().manual_seed(0)
for epoch in range(HEAD_EPOCHS):
    for batch in torch.randperm(len(train_y), generator=generator).split(32):
        loss = F.cross_entropy(head(train_x[batch]), train_y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    curve.append((epoch + 1, head_accuracy()))
for parameter in minilm.parameters():
    parameter.requires_grad_(False)
head_cpu = time.process_time() - cpu
minilm_accuracy = curve[-1][1]
print("held-out accuracy at [MASK] after each epoch:", ", ".join(f"{a:.3f}" for _, a in curve))
print(f"unigram baseline (always {minilm_tokenizer.convert_ids_to_tokens(unigram_id)!r}): {unigram_accuracy:.3f}")
print(f"fitting the head: {head_cpu:.0f} CPU-s")
assert minilm_accuracy > unigram_accuracy + 0.02, (minilm_accuracy, unigram_accuracy)
glue("ch15_head_sentences", len(head_train), display=False)
glue("ch15_head_targets", len(train_y), display=False)
glue("ch15_head_epochs", HEAD_EPOCHS, display=False)
glue("ch15_head_cpu", head_cpu, display=False)
glue("ch15_minilm_accuracy", minilm_accuracy, display=False)
glue("ch15_minilm_head_unigram", unigram_accuracy, display=False)
glue("ch15_minilm_unigram_token", minilm_tokenizer.convert_ids_to_tokens(unigram_id), display=False)


# %% [markdown]
# After {glue:text}`ch15_head_epochs:d` epochs over {glue:text}`ch15_head_targets:,d` masked
# WordPieces of {glue:text}`ch15_head_sentences:,d` sentences ({glue:text}`ch15_head_cpu:.0f`
# CPU-seconds), MiniLM + head guesses {glue:text}`ch15_minilm_accuracy:.3f` of the held-out
# `[MASK]`s right, against {glue:text}`ch15_minilm_head_unigram:.3f` for always guessing
# {glue:text}`ch15_minilm_unigram_token`. That is weak, weaker than the book's BERT
# (section 15.2 measures both the same way, and chapter 6, section 6.9, measures the book's BERT
# on held-out WikiText). The reason is the checkpoint: all-MiniLM-L6-v2 was distilled and then trained to compare sentences, never to
# predict a hidden word, so its vector at a `[MASK]` holds little of the word. We keep both
# models anyway. They are real, they are what a laptop can afford, and their failures are the
# lesson of this chapter; section 15.5 says what a strong MLM changes.

# %% [markdown]
# ## 15.2 Why BERT cannot simply write left to right
#
# A left-to-right language model such as GPT writes with the chain rule of probability:
#
# $$P(x_1, \dots, x_n) = \prod_{t=1}^{n} P(x_t \mid x_1, \dots, x_{t-1}).$$
#
# Its training objective is exactly each factor: predict the next token from the tokens before
# it, with the causal mask of chapter 4 hiding the rest. To write, it samples $x_1$, then $x_2$
# given $x_1$, and so on. BERT's MLM head gives something else: the distribution of a masked
# token given *everything else* in the sequence, $P(x_t \mid x_{\setminus t})$, learned with
# 85% of the tokens visible on both sides. These conditionals do not multiply into
# $P(x_1, \dots, x_n)$, and a left-to-right writer asks BERT a question it was never trained
# on: the next word, when the right side is empty or all `[MASK]`.
#
# We measure this on held-out sentences of the WikiText-2 test split. At a few positions $t$
# of each sentence, each model guesses $x_t$ from three inputs:
#
# - **both sides**: `[CLS]` $x_{<t}$ `[MASK]` $x_{>t}$ `[SEP]`, the question MLM trains on;
# - **left only**: `[CLS]` $x_{<t}$ `[MASK]` `[SEP]`, what appending a `[MASK]` asks;
# - **left + [MASK]s**: `[CLS]` $x_{<t}$ `[MASK]` `[MASK]` ... `[SEP]`, the sentence's true
#   length in `[MASK]`s, what filling a row of `[MASK]`s from the left asks.
#
# As the left-to-right reference we count a **bigram model** on the training text (the
# WikiText-2 validation split, in each model's own WordPieces): it predicts the WordPiece
# that most often follows $x_{t-1}$. It is the simplest causal language model there is, with
# one token of left context and no training beyond counting. And the **unigram** guess,
# always the most frequent WordPiece, needs no context at all.

# %%
def bigram_table(sentences, tokenizer):
    # the most frequent next WordPiece after each WordPiece ([CLS] starts a sentence)
    counts = collections.defaultdict(collections.Counter)
    for ids in sentences:
        for previous, token in zip([tokenizer.cls_token_id] + ids[:-1], ids):
            counts[previous][token] += 1
    unigram = collections.Counter(t for ids in sentences for t in ids).most_common(1)[0][0]
    return {previous: c.most_common(1)[0][0] for previous, c in counts.items()}, unigram


@torch.no_grad()
def masked_log_probs(model, tokenizer, rows, positions, batch_size=128):
    # rows: id lists with [CLS]/[SEP]; positions: the [MASK] to score in each row.
    # Returns the log-probabilities (n, V) there, special tokens excluded.
    out = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        T = max(map(len, chunk))
        ids = torch.full((len(chunk), T), tokenizer.pad_token_id)
        for b, row in enumerate(chunk):
            ids[b, :len(row)] = torch.tensor(row)
        logits = model(ids, attention_mask=(torch.arange(T)[None] < torch.tensor([len(r) for r in chunk])[:, None]).long()).logits
        picked = logits[torch.arange(len(chunk)), torch.tensor(positions[start:start + batch_size])].float()
        picked[:, tokenizer.all_special_ids] = float("-inf")
        out.append(picked.log_softmax(-1))
    return torch.cat(out)


def context_study(model, tokenizer, train_sentences, eval_sentences, per_sentence=3, seed=2):
    # Accuracy of guessing x_t from both sides, left only, left + [MASK]s; bigram and unigram.
    bigram, unigram = bigram_table(train_sentences, tokenizer)
    generator = torch.Generator().manual_seed(seed)
    CLS, SEP, MASK = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.mask_token_id
    inputs = {"both sides": [], "left only": [], "left + [MASK]s": []}
    targets, bigram_guess = [], []
    for ids in eval_sentences:
        for t in torch.randperm(len(ids), generator=generator)[:per_sentence].tolist():
            inputs["both sides"].append([CLS, *ids[:t], MASK, *ids[t + 1:], SEP])
            inputs["left only"].append([CLS, *ids[:t], MASK, SEP])
            inputs["left + [MASK]s"].append([CLS, *ids[:t], *[MASK] * (len(ids) - t), SEP])
            targets.append(ids[t])
            bigram_guess.append(bigram.get(ids[t - 1] if t else CLS, unigram))
    targets = torch.tensor(targets)
    result = {}
    for name, rows in inputs.items():
        log_probs = masked_log_probs(model, tokenizer, rows, [r.index(MASK) for r in rows])  # the first [MASK]
        result[name] = {"accuracy": (log_probs.argmax(-1) == targets).float().mean().item(),
                        "log_prob": log_probs.gather(1, targets[:, None]).mean().item()}
    result["bigram (causal, counted)"] = {"accuracy": (torch.tensor(bigram_guess) == targets).float().mean().item()}
    result["unigram (no context)"] = {"accuracy": (targets == unigram).float().mean().item()}
    return result, len(targets)


cpu = time.process_time()
study = {}
for name, model, tokenizer in [("book BERT", book, book_tokenizer), ("MiniLM + head", minilm, minilm_tokenizer)]:
    train_ids = sentence_ids(train_documents, tokenizer)
    eval_ids = clean_sentences(eval_documents, tokenizer, EVAL_SENTENCES, seed=2)
    study[name], n_positions = context_study(model, tokenizer, train_ids, eval_ids)
table = pd.DataFrame({name: {row: r["accuracy"] for row, r in result.items()} for name, result in study.items()})
print(f"accuracy of the guess for x_t at {n_positions} positions of {EVAL_SENTENCES} held-out sentences "
      f"({time.process_time() - cpu:.0f} CPU-s)")
print(table.round(3).to_string())
for name, result in study.items():
    key = "book" if name == "book BERT" else "minilm"
    for row, short in [("both sides", "both"), ("left only", "left"), ("left + [MASK]s", "left_masks"),
                       ("bigram (causal, counted)", "bigram"), ("unigram (no context)", "unigram")]:
        glue(f"ch15_{key}_{short}", result[row]["accuracy"], display=False)
glue("ch15_n_positions", n_positions, display=False)
glue("ch15_eval_sentences", EVAL_SENTENCES, display=False)
assert study["book BERT"]["bigram (causal, counted)"]["accuracy"] > study["book BERT"]["left only"]["accuracy"] + 0.02
print("mean log-probability of the right WordPiece (nats):")
print(pd.DataFrame({name: {row: r["log_prob"] for row, r in result.items() if "log_prob" in r}
                    for name, result in study.items()}).round(2).to_string())


# %% [markdown]
# At {glue:text}`ch15_n_positions:,d` positions of {glue:text}`ch15_eval_sentences:d` held-out
# sentences, the book's BERT guesses {glue:text}`ch15_book_both:.3f` right from both sides and
# {glue:text}`ch15_book_left:.3f` from the left only; MiniLM + head
# {glue:text}`ch15_minilm_both:.3f` and {glue:text}`ch15_minilm_left:.3f`. The counted bigram,
# with a single token of left context, gets {glue:text}`ch15_book_bigram:.3f` (book vocabulary)
# and {glue:text}`ch15_minilm_bigram:.3f` (MiniLM's): **the simplest causal model predicts the
# next word better than the book's BERT does from the left**, although from both sides the
# book's BERT is far better than the bigram. The unigram guess gets {glue:text}`ch15_book_unigram:.3f` and
# {glue:text}`ch15_minilm_unigram:.3f`. Two remarks. First, the book's BERT gains a great deal
# from the right side: it was trained to read both sides, which is exactly why it is good at
# understanding and not at writing. MiniLM + head gains little from either side, because its
# head reads little context at all. Second, a row of `[MASK]`s to the right helps the book's BERT
# ({glue:text}`ch15_book_left_masks:.3f`, against {glue:text}`ch15_book_left:.3f` with an empty
# right side): the `[MASK]`s tell it how long the sentence is and give it an input shaped like the
# ones it was trained on, but they say nothing about the words.

# %% [markdown]
# Now we let both models write. Each prompt is the first four words of a held-out test
# sentence, and each generator writes the next {glue:text}`ch15_length:d` WordPieces, greedily
# (the most probable WordPiece each time). First the two naive left-to-right fillers of
# `bertedu.generation.left_to_right`: appending one `[MASK]` at a time, and filling a row of
# `[MASK]`s from the left.

# %%
def prompts_from(documents, n, seed=3):
    # the first four words of n held-out sentences long enough to continue for LENGTH pieces
    ids = clean_sentences(documents, minilm_tokenizer, n, min_pieces=LENGTH + 8, seed=seed)
    sentences = [minilm_tokenizer.decode(s) for s in ids]
    return [" ".join(s.split()[:4]) for s in sentences], sentences


prompts, prompt_sentences = prompts_from(eval_documents, N_PROMPTS)
models = {"book BERT": (book, book_tokenizer), "MiniLM + head": (minilm, minilm_tokenizer)}
naive = {name: {prompt: {"appending [MASK]": left_to_right(model, tokenizer, LENGTH, prompt=prompt),
                         "row of [MASK]s": left_to_right(model, tokenizer, LENGTH, prompt=prompt, future_masks=True)}
                for prompt in prompts} for name, (model, tokenizer) in models.items()}
for prompt in prompts[:3]:
    print(f"prompt: {prompt!r}")
    for name, (model, tokenizer) in models.items():
        for how, steps in naive[name][prompt].items():
            print(f"  {name:<14} {how:<17} -> {steps[-1].text(tokenizer)}")

# %% [markdown]
# How degenerate is this text? Three numbers per generator, averaged over the
# {glue:text}`ch15_n_prompts:d` prompts, next to the same numbers for the real continuations of the
# held-out sentences: the share of **distinct** WordPieces among the
# {glue:text}`ch15_length:d` written, the share of **immediate repeats** (a WordPiece equal to the
# one before it), and the share of the text made of the **ten most frequent** WordPieces of the
# training text (`the`, `,`, `.`, `of`, ...).

# %%
frequent = {name: {t for t, _ in collections.Counter(
    t for ids in sentence_ids(train_documents, tokenizer) for t in ids).most_common(10)}
    for name, (_, tokenizer) in models.items()}


def text_stats(ids, top10):
    ids = list(ids)
    return {"distinct": len(set(ids)) / len(ids),
            "repeats": sum(a == b for a, b in zip(ids, ids[1:])) / (len(ids) - 1),
            "frequent": sum(t in top10 for t in ids) / len(ids)}


def mean_stats(outputs, top10):
    rows = [text_stats(ids, top10) for ids in outputs]
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def slots_of(steps):
    return steps[-1].output_ids[steps[-1].slots].tolist()


def real_continuations(tokenizer):
    # the next LENGTH WordPieces of each held-out sentence after its prompt
    out = []
    for prompt, sentence in zip(prompts, prompt_sentences):
        n = len(tokenizer.tokenize(prompt))
        out.append(tokenizer.convert_tokens_to_ids(tokenizer.tokenize(sentence))[n:n + LENGTH])
    return out


stats = {}
for name, (model, tokenizer) in models.items():
    stats[name, "real text (held out)"] = mean_stats(real_continuations(tokenizer), frequent[name])
    for how in ["appending [MASK]", "row of [MASK]s"]:
        stats[name, f"left to right, {how}"] = mean_stats([slots_of(naive[name][p][how]) for p in prompts], frequent[name])
naive_table = pd.DataFrame(stats).T
print(naive_table.round(2).to_string())
for name in models:
    real = stats[name, "real text (held out)"]
    for how in ["appending [MASK]", "row of [MASK]s"]:
        assert stats[name, f"left to right, {how}"]["distinct"] < real["distinct"] - 0.4   # far more repetitive
key_of = {"book BERT": "book", "MiniLM + head": "minilm"}
for name in models:
    glue(f"ch15_{key_of[name]}_real_distinct", stats[name, "real text (held out)"]["distinct"], display=False)
    glue(f"ch15_{key_of[name]}_naive_distinct", stats[name, "left to right, row of [MASK]s"]["distinct"], display=False)
    glue(f"ch15_{key_of[name]}_naive_frequent", stats[name, "left to right, row of [MASK]s"]["frequent"], display=False)
    glue(f"ch15_{key_of[name]}_real_frequent", stats[name, "real text (held out)"]["frequent"], display=False)
glue("ch15_length", LENGTH, display=False)
glue("ch15_n_prompts", N_PROMPTS, display=False)

# %% [markdown]
# Real text uses a new WordPiece almost every time: {glue:text}`ch15_book_real_distinct:.2f`
# of the {glue:text}`ch15_length:d` WordPieces after a prompt are distinct in the book's
# vocabulary. The row-of-`[MASK]`s filler writes {glue:text}`ch15_book_naive_distinct:.2f`
# distinct (book) and {glue:text}`ch15_minilm_naive_distinct:.2f` (MiniLM + head), and
# {glue:text}`ch15_book_naive_frequent:.2f` and {glue:text}`ch15_minilm_naive_frequent:.2f` of
# what it writes are the ten most frequent WordPieces (real text: about
# {glue:text}`ch15_book_real_frequent:.2f`). This is the degenerate output of a masked
# language model asked for the next word: with no informative context on the right, its best
# guess falls back to the corpus's most frequent tokens, and every `the` it writes makes `the`
# likely again. A model trained left to right meets the same repetition trap under greedy
# decoding, but from a much better starting point: its training objective is the very question
# being asked.

# %% [markdown]
# ## 15.3 Mask-predict
#
# {cite:t}`ghazvininejad2019maskpredict` decode a masked language model the way it was trained:
# every guess is made with words on both sides. For a target of $N$ WordPieces and $T$
# iterations:
#
# 1. **Pass 0.** Put $N$ `[MASK]`s after the prompt and predict all of them at once. Keep, for
#    every slot $i$, the guess $y_i$ and its probability $p_i$.
# 2. **Pass $t = 1, \dots, T-1$.** Re-mask the $n_t = \lfloor N\,(T - t) / T \rfloor$ slots with
#    the lowest $p_i$ (a linear decay: many at first, few at the end), predict them again with
#    the other $N - n_t$ guesses in view, and update $y_i$ and $p_i$ at those slots only. A
#    slot that is not re-masked keeps its word and its probability.
#
# The number of forward passes is $T$, whatever $N$ is; left-to-right writing needs $N$. In
# the paper the model is a *conditional* MLM, an encoder-decoder whose decoder has no causal
# mask, trained for translation; here the "condition" is the prompt inside the same sequence.
# Here is the schedule for our length:

# %%
# NBVAL_CHECK_OUTPUT
for T in [1, 2, 4, 10]:
    print(f"N = {LENGTH}, T = {T:>2}: slots predicted in each pass {mask_schedule(LENGTH, T)}")


# %% [markdown]
# The algorithm in plain code, one pass per loop, on the first prompt, and the library's
# `bertedu.generation.mask_predict` on the same model: the same WordPieces come out.

# %%
@torch.no_grad()
def mask_predict_by_hand(model, tokenizer, prompt, N, T):
    prefix = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(prompt))
    ids = torch.tensor([tokenizer.cls_token_id, *prefix, *[tokenizer.mask_token_id] * N, tokenizer.sep_token_id])
    slots = torch.arange(1 + len(prefix), 1 + len(prefix) + N)     # (N,) positions of the slots
    p = torch.zeros(N)                                               # (N,) confidence of each slot
    for t in range(T):
        n = N if t == 0 else N * (T - t) // T                       # linear decay
        if n == 0:
            break
        remask = torch.arange(N) if t == 0 else p.argsort(stable=True)[:n]  # the n least confident
        ids[slots[remask]] = tokenizer.mask_token_id
        logits = model(ids[None]).logits[0, slots[remask]]           # (n, V)
        logits[:, tokenizer.all_special_ids] = float("-inf")         # never write [SEP], [MASK], ...
        probs = logits.softmax(-1)
        p[remask] = probs.max(-1).values                             # the best guess's probability
        ids[slots[remask]] = probs.argmax(-1)                        # and the guess
    return ids


for name, (model, tokenizer) in models.items():
    by_hand = mask_predict_by_hand(model, tokenizer, prompts[0], LENGTH, 10)
    library = mask_predict(model, tokenizer, LENGTH, prompt=prompts[0], iterations=10)
    assert torch.equal(by_hand, library[-1].output_ids), name
print("the plain loop and bertedu.generation.mask_predict write the same WordPieces")


# %% [markdown]
# `mask_predict` returns every pass as a `GenerationStep`: what the model read (the slots that
# are `[MASK]` show as `_`), what it wrote, and the probability of each slot's word. Here are
# the passes of MiniLM + head with $T = 10$ on the first prompt, greedy as before.

# %%
def steps_table(steps, tokenizer):
    return pd.DataFrame([{"pass": s.iteration, "masked": s.n_masked,
                          "the model reads": s.text(tokenizer, "input"),
                          "and writes": s.text(tokenizer),
                          "mean p": s.probabilities[s.slots].mean().item()} for s in steps]).set_index("pass")


pd.set_option("display.max_colwidth", 100)
pd.set_option("display.width", 220)
greedy_steps = mask_predict(minilm, minilm_tokenizer, LENGTH, prompt=prompts[0], iterations=10)
print("prompt:", repr(prompts[0]))
print(steps_table(greedy_steps, minilm_tokenizer).round(2).to_string())
greedy_text = {name: [mask_predict(model, tokenizer, LENGTH, prompt=p, iterations=10)[-1].text(tokenizer) for p in prompts]
               for name, (model, tokenizer) in models.items()}
for name, texts in greedy_text.items():
    print(f"{name}, mask-predict T = 10, the other prompts:")
    for p, text in list(zip(prompts, texts))[1:4]:
        print(f"    {p} | {text}")
stats_mp = {name: mean_stats([minilm_tokenizer.convert_tokens_to_ids(minilm_tokenizer.tokenize(t)) if name == "MiniLM + head"
                              else book_tokenizer.convert_tokens_to_ids(book_tokenizer.tokenize(t)) for t in texts], frequent[name])
            for name, texts in greedy_text.items()}
print(pd.DataFrame(stats_mp).T.round(2).to_string())
glue("ch15_mp_distinct_minilm", stats_mp["MiniLM + head"]["distinct"], display=False)
glue("ch15_mp_distinct_book", stats_mp["book BERT"]["distinct"], display=False)

# %% [markdown]
# Over the {glue:text}`ch15_n_prompts:d` prompts, greedy mask-predict writes
# {glue:text}`ch15_mp_distinct_book:.2f` (book) and {glue:text}`ch15_mp_distinct_minilm:.2f`
# (MiniLM + head) distinct WordPieces per slot: no better than left to right. Greedy decoding
# turns mask-predict into a confirmation of pass 0. With nothing but
# `[MASK]`s to read, each slot's best guess is the most frequent WordPiece, and once a few
# `the`s are kept, `the` is also the best guess next to them. The paper's models were trained
# for exactly this start: a conditional MLM sees training targets with a *uniformly* drawn
# number of masks, from one to all of them, and it reads a source sentence that decides most
# words. Ours saw 40% (the book's BERT) or 25% (the MiniLM head) and have no source.
#
# **Sampling.** Greedy decoding asks for the single most probable WordPiece at every slot, and
# for a weak model that is a frequent one. Sampling asks for a *typical* WordPiece instead:
# `temperature=1, top_k=50` draws each re-masked slot from the model's 50 most probable
# WordPieces, in proportion to their probabilities (with a seeded `torch.Generator`, so the run
# repeats). The re-masking is unchanged: after each pass the least confident slots are masked
# and drawn again, now with the other slots in view. To see whether a pass made the text more
# plausible *to the model*, we score each pass's text with the **pseudo-log-likelihood** of
# {cite:t}`salazar2020masked`: mask each written WordPiece in turn, with everything else in view,
# and add up the log-probabilities of the WordPieces that are there,
#
# $$
# \operatorname{PLL}(y) = \sum_{i=1}^{N} \log P(y_i \mid \text{prompt}, y_{\setminus i}).
# $$
#
# It is not the probability of the text (an MLM does not define one), but it rises when the
# words fit each other. Here is the book's BERT on the first prompt, pass by pass, with the PLL
# of each pass's text and the slots that the pass changed:

# %%
SAMPLING = dict(iterations=10, temperature=1.0, top_k=50)


@torch.no_grad()
def slots_pll(model, step):
    """Pseudo-log-likelihood of the slots of a GenerationStep: mask each slot in turn, add log P(its WordPiece)."""
    positions = step.slots.nonzero().squeeze(1)                       # (N,)
    rows = step.output_ids.repeat(len(positions), 1)                  # (N, T): row i masks slot i
    rows[torch.arange(len(positions)), positions] = book_tokenizer.mask_token_id
    log_probs = model(rows).logits[torch.arange(len(positions)), positions].float().log_softmax(-1)  # (N, V)
    return log_probs.gather(1, step.output_ids[positions][:, None]).sum().item()


def sample_text(model, tokenizer, prompt, seed):
    return mask_predict(model, tokenizer, LENGTH, prompt=prompt, generator=torch.Generator().manual_seed(seed), **SAMPLING)


sampled = sample_text(book, book_tokenizer, prompts[0], seed=0)
again = sample_text(book, book_tokenizer, prompts[0], seed=0)
assert torch.equal(again[-1].output_ids, sampled[-1].output_ids)   # the same generator seed, the same text
table = steps_table(sampled, book_tokenizer)
table["PLL"] = [slots_pll(book, s) for s in sampled]
table["changed"] = [""] + [", ".join(f"{book_tokenizer.convert_ids_to_tokens(int(a))} -> {book_tokenizer.convert_ids_to_tokens(int(b))}"
                                     for a, b in zip(before.output_ids[before.slots], after.output_ids[after.slots]) if a != b)
                           for before, after in zip(sampled, sampled[1:])]
print("prompt:", repr(prompts[0]))
print(table.drop(columns="the model reads").round(2).to_string(max_colwidth=70))

# every prompt, greedy and sampled: the PLL after each pass, and how varied the final text is
runs = {"greedy": [mask_predict(book, book_tokenizer, LENGTH, prompt=p, iterations=10) for p in prompts],
        "sampled": [sample_text(book, book_tokenizer, p, seed=k) for k, p in enumerate(prompts)]}
# slots_pll is the library's pseudo_log_likelihood, which takes text: check it on every final text
# that decodes and re-tokenizes to the same WordPieces
checked = 0
for p, steps in zip(prompts + prompts, runs["sampled"] + runs["greedy"]):
    text = steps[-1].text(book_tokenizer)
    if book_tokenizer.tokenize(text) == book_tokenizer.convert_ids_to_tokens(slots_of(steps)):
        library = pseudo_log_likelihood(book, book_tokenizer, text, prompt=p).sum().item()
        assert abs(slots_pll(book, steps[-1]) - library) < 1e-3, (p, text)
        checked += 1
assert checked >= 3, checked
pll_by_pass = {how: np.array([[slots_pll(book, s) for s in steps] for steps in runs[how]]).mean(0) for how in runs}
finals = {how: [slots_of(steps) for steps in runs[how]] for how in runs}
variety = {}
for how, outputs in finals.items():
    counts = collections.Counter(t for ids in outputs for t in ids)
    top_id, top_count = counts.most_common(1)[0]
    variety[how] = {"distinct per text": mean_stats(outputs, frequent["book BERT"])["distinct"],
                    "most used WordPiece": book_tokenizer.convert_ids_to_tokens(top_id),
                    "its share of the slots": top_count / sum(counts.values()),
                    "PLL after pass 0": pll_by_pass[how][0], "PLL after the last pass": pll_by_pass[how][-1]}
print(f"\nbook BERT, mask-predict T = 10, {len(prompts)} prompts x {LENGTH} slots:")
print(pd.DataFrame(variety).T.to_string(float_format="{:.2f}".format))
for p, ids in list(zip(prompts, finals["sampled"]))[1:5]:
    print(f"    {p} | {book_tokenizer.decode(ids)}")
sampled_variety = variety["sampled"]
assert sampled_variety["distinct per text"] >= 0.60, sampled_variety              # varied text ...
assert sampled_variety["its share of the slots"] <= 0.30, sampled_variety        # ... with no WordPiece dominating
assert pll_by_pass["sampled"][-1] > pll_by_pass["sampled"][0] + 10, pll_by_pass  # re-masking raises the PLL
changed = sum(int((a.output_ids != b.output_ids).sum()) for a, b in zip(sampled, sampled[1:]))
glue("ch15_sampled_changes", changed, display=False)
glue("ch15_sampled_distinct", sampled_variety["distinct per text"], display=False)
glue("ch15_sampled_top_share", sampled_variety["its share of the slots"], display=False)
glue("ch15_sampled_top_token", sampled_variety["most used WordPiece"], display=False)
glue("ch15_greedy_top_share", variety["greedy"]["its share of the slots"], display=False)
glue("ch15_greedy_top_token", variety["greedy"]["most used WordPiece"], display=False)
glue("ch15_sampled_pll_first", float(pll_by_pass["sampled"][0]), display=False)
glue("ch15_sampled_pll_last", float(pll_by_pass["sampled"][-1]), display=False)
glue("ch15_greedy_pll_first", float(pll_by_pass["greedy"][0]), display=False)
glue("ch15_greedy_pll_last", float(pll_by_pass["greedy"][-1]), display=False)
glue("ch15_prompt_slots", len(prompts) * LENGTH, display=False)

# %% mystnb={"image": {"alt": "Line plot: the mean pseudo-log-likelihood of the generated slots after each of the ten mask-predict passes, for greedy and for sampled decoding with the book's BERT; both curves rise from pass 0 to the last pass."}}
fig, ax = plt.subplots(figsize=(8, 4.5))
for how, color in [("greedy", "tab:gray"), ("sampled", "tab:blue")]:
    ax.plot(range(len(pll_by_pass[how])), pll_by_pass[how], "o-", color=color, lw=2,
            label=f"{how}: {variety[how]['distinct per text']:.2f} distinct per text, "
                  f"'{variety[how]['most used WordPiece']}' {variety[how]['its share of the slots']:.0%} of slots")
ax.set_xlabel("mask-predict pass")
ax.set_ylabel(f"pseudo-log-likelihood of the {LENGTH} slots")
ax.set_title(f"The book's BERT: every pass re-masks the least confident slots\n(mean over {len(prompts)} prompts)")
ax.legend(loc="lower right", fontsize=10)
fig.tight_layout()
plt.show()


# %% [markdown]
# On the first prompt the passes replaced {glue:text}`ch15_sampled_changes:d` slot values in
# all. Read the `changed` column: the slots that pass 0 drew with little confidence, often a
# word that does not fit its neighbours, are the ones re-masked, and the new draw sees the words
# that were kept around it. Over all {glue:text}`ch15_n_prompts:d` prompts, the PLL of the
# sampled text rises from {glue:text}`ch15_sampled_pll_first:.1f` after pass 0 to
# {glue:text}`ch15_sampled_pll_last:.1f` after the last pass (greedy:
# {glue:text}`ch15_greedy_pll_first:.1f` to {glue:text}`ch15_greedy_pll_last:.1f`). The sampled
# text stays varied: {glue:text}`ch15_sampled_distinct:.2f` of the WordPieces of a text are
# distinct, and the most used WordPiece, {glue:text}`ch15_sampled_top_token`, fills
# {glue:text}`ch15_sampled_top_share:.0%` of the {glue:text}`ch15_prompt_slots:d` slots, where
# greedy decoding gives {glue:text}`ch15_greedy_top_token` {glue:text}`ch15_greedy_top_share:.0%`
# of them. Greedy decoding reaches the higher PLL, and that is the lesson about the score: the PLL
# rewards frequent, mutually predictable WordPieces, and a phrase that repeats itself, like the
# greedy texts printed earlier, is as predictable as text gets. The PLL tells us that the passes
# make the text fit the model better (not every single pass: a new draw can also lower it); it
# cannot tell us that the text is good. Read the samples printed above: locally plausible phrases,
# no plan across the sentence. That is what a
# 4-block model that read two million words knows.

# %% [markdown]
# ### Filling a gap, with the answer known
#
# Writing from nothing has no right answer to score against. Filling a gap has one, and it is
# closer to what these models were trained for. From each of {glue:text}`ch15_n_gaps:d` held-out test
# sentences we hide two consecutive words in the middle (all their WordPieces), give the
# words before them as the `prompt` and the words after as the `suffix`, and let four decoders
# fill the gap: **one pass** (mask-predict with $T = 1$, every slot from the same input),
# **mask-predict** with $T = 3$ and $T = 10$, and **left to right** (`future_masks=True`: the
# leftmost `[MASK]` first, each later slot seeing the earlier fills). The score is the share of
# the hidden WordPieces written exactly, and the share of gaps filled exactly right.

# %%
def gap_cases(n, seed=4):
    cases = []
    for ids in clean_sentences(eval_documents, minilm_tokenizer, 4 * n, min_pieces=10, seed=seed):
        words = minilm_tokenizer.decode(ids).split()
        if len(words) < 8:
            continue
        k = len(words) // 2 - 1                                       # the two middle words
        cases.append((" ".join(words[:k]), " ".join(words[k:k + 2]), " ".join(words[k + 2:])))
    return cases[:n]


cases = gap_cases(N_GAPS)
decoders = {"one pass (T = 1)": dict(iterations=1), "mask-predict, T = 3": dict(iterations=3),
            "mask-predict, T = 10": dict(iterations=10), "left to right": dict(future_masks=True)}
cpu = time.process_time()
gap_scores = {}
for name, (model, tokenizer) in models.items():
    unigram = collections.Counter(t for ids in sentence_ids(train_documents, tokenizer) for t in ids).most_common(1)[0][0]
    for decoder, options in decoders.items():
        right = exact = total = 0
        for before, hidden, after in cases:
            truth = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(hidden))
            generate = left_to_right if "future_masks" in options else mask_predict
            last = generate(model, tokenizer, len(truth), prompt=before, suffix=after, **options)[-1]
            written = last.output_ids[last.slots].tolist()
            hits = sum(a == b for a, b in zip(written, truth))
            right, exact, total = right + hits, exact + (hits == len(truth)), total + len(truth)
        gap_scores[name, decoder] = {"WordPieces right": right / total, "gaps exactly right": exact / len(cases)}
    truths = [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(h)) for _, h, _ in cases]
    gap_scores[name, "unigram (no context)"] = {
        "WordPieces right": sum(t == unigram for ids in truths for t in ids) / sum(map(len, truths)),
        "gaps exactly right": sum(all(t == unigram for t in ids) for ids in truths) / len(cases)}
gap_table = pd.DataFrame(gap_scores).T
print(f"{len(cases)} gaps of two words ({time.process_time() - cpu:.0f} CPU-s)")
print(gap_table.round(3).to_string())
print("e.g.", " | ".join(cases[0]))
glue("ch15_n_gaps", len(cases), display=False)
for name in models:
    scores = {d: gap_scores[name, d]["WordPieces right"] for d in [*decoders, "unigram (no context)"]}
    glue(f"ch15_{key_of[name]}_gap_best", max(v for d, v in scores.items() if d in decoders), display=False)
    glue(f"ch15_{key_of[name]}_gap_unigram", scores["unigram (no context)"], display=False)
    glue(f"ch15_{key_of[name]}_gap_one_pass", scores["one pass (T = 1)"], display=False)
    glue(f"ch15_{key_of[name]}_gap_left_to_right", scores["left to right"], display=False)
    assert max(v for d, v in scores.items() if d in decoders) >= scores["unigram (no context)"] - 0.03
glue("ch15_gap_exact_max", float(gap_table["gaps exactly right"].max()), display=False)

# %% [markdown]
# The best decoder gets {glue:text}`ch15_book_gap_best:.3f` of the hidden WordPieces right with
# the book's BERT and {glue:text}`ch15_minilm_gap_best:.3f` with MiniLM + head, against
# {glue:text}`ch15_book_gap_unigram:.3f` and {glue:text}`ch15_minilm_gap_unigram:.3f` for
# writing the unigram token everywhere; the best share of gaps filled exactly is
# {glue:text}`ch15_gap_exact_max:.3f`. **The decoder matters less than the model.** With the book's BERT, one
# pass and mask-predict fill {glue:text}`ch15_book_gap_one_pass:.3f` and
# {glue:text}`ch15_book_gap_best:.3f` of the hidden WordPieces, and left to right, which does not
# let the first word of the gap see the second, {glue:text}`ch15_book_gap_left_to_right:.3f`;
# MiniLM + head writes about the same frequent WordPieces whatever the decoder. Mask-predict
# improves on one pass only when the model's guesses depend on the words around them, so that
# fixing the confident slots changes what the others should be. That needs a model that reads
# context well; the book's BERT has only begun to, and the published numbers of section 15.5
# show the size of the effect with a strong one.

# %% [markdown]
# ## 15.4 BERT as an encoder, GPT as the contrast
#
# The clean way to generate text *from* a text (translate, summarise, simplify) is an
# encoder-decoder, the original Transformer's design {cite:p}`vaswani2017attention`. The
# **encoder** reads the source with bidirectional self-attention: this is BERT's job, and a
# pretrained BERT can simply be its starting point. The **decoder** writes the target left to
# right. Each of its blocks has three sub-layers: *causal* self-attention over the target so far
# (GPT's mask, chapter 4), **cross-attention** whose queries come from the target and whose keys
# and values are the encoder's final vectors, and the feed-forward net. {cite:t}`rothe2020leveraging`
# warm-started such models from public checkpoints, BERT for the encoder and BERT or GPT-2 for
# the decoder (a BERT used as a decoder gets the causal mask and new, randomly initialised
# cross-attention layers), and reached results competitive with models pretrained for
# generation on translation, summarisation, sentence splitting and sentence fusion.
#
# GPT {cite:p}`radford2018improving` is the other road: a decoder alone, trained on the next
# token, which writes with the chain rule and reads its input as the beginning of the text to
# continue. Its representations see only the left context, the price chapter 4 measured
# ("bank" cannot see "river"). The three attention patterns side by side:

# %% mystnb={"image": {"alt": "Three attention-mask matrices, queries down and keys across. BERT: every cell allowed (bidirectional). GPT: the lower triangle only (causal). Seq2seq: a source block where every source token sees every source token, a target block that is lower-triangular, and a block where every target token sees every source token (cross-attention); source tokens never see the target."}}
BLOCKED, BIDIRECTIONAL, CAUSAL, CROSS = 0, 1, 2, 3
mask_colors = ListedColormap(["#f2f2f2", "#4daf4a", "#377eb8", "#ff7f00"])
sentence = ["[CLS]", "the", "river", "bank", "was", "muddy", "[SEP]"]
source, target = ["[CLS]", "das", "ufer", "war", "[SEP]"], ["<s>", "the", "bank", "was"]
n, S, U = len(sentence), len(source), len(target)
lower = lambda k: torch.ones(k, k, dtype=torch.bool).tril()
bert_mask = torch.full((n, n), BIDIRECTIONAL)
gpt_mask = torch.where(lower(n), CAUSAL, BLOCKED)
seq2seq_mask = torch.full((S + U, S + U), BLOCKED)
seq2seq_mask[:S, :S] = BIDIRECTIONAL                              # encoder: source sees source
seq2seq_mask[S:, :S] = CROSS                                      # decoder reads all of the source
seq2seq_mask[S:, S:] = torch.where(lower(U), CAUSAL, BLOCKED)     # decoder: target sees its left
fig, axes = plt.subplots(1, 3, figsize=(16, 5.6), gridspec_kw={"width_ratios": [n, n, S + U]})
for ax, matrix, labels, title in [(axes[0], bert_mask, sentence, "BERT (encoder): bidirectional"),
                                  (axes[1], gpt_mask, sentence, "GPT (decoder): causal"),
                                  (axes[2], seq2seq_mask, source + target, "seq2seq: encoder + decoder")]:
    ax.imshow(matrix, cmap=mask_colors, vmin=0, vmax=3)
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xticks(np.arange(-0.5, len(labels)), minor=True)
    ax.set_yticks(np.arange(-0.5, len(labels)), minor=True)
    ax.grid(which="minor", color="white", lw=1)
    ax.tick_params(which="minor", length=0)
    ax.set(xlabel="key (attended to)", ylabel="query (attending)", title=title)
axes[2].axhline(S - 0.5, color="k", lw=1.5)
axes[2].axvline(S - 0.5, color="k", lw=1.5)
fig.legend(handles=[Patch(color=mask_colors(BIDIRECTIONAL), label="bidirectional self-attention"),
                    Patch(color=mask_colors(CAUSAL), label="causal self-attention (left only)"),
                    Patch(color=mask_colors(CROSS), label="cross-attention (decoder reads encoder)"),
                    Patch(color=mask_colors(BLOCKED), label="not allowed")], loc="lower center", ncol=4, fontsize=11)
fig.suptitle("Who may attend to whom: encoder, decoder, encoder-decoder")
fig.tight_layout(rect=(0, 0.06, 1, 1))
plt.show()

# %% [markdown]
# And the encoder-decoder as a block diagram:

# %% mystnb={"image": {"alt": "Block diagram. Left, the encoder (BERT): the source sentence enters a stack of L blocks of bidirectional self-attention and feed-forward, giving one vector per source token. Right, the decoder: the target so far enters a stack of L blocks of causal self-attention, cross-attention and feed-forward, and predicts the next token. An arrow carries the source vectors into the cross-attention of every decoder block."}}
fig, ax = plt.subplots(figsize=(12, 6.2))
ax.set_xlim(0, 12)
ax.set_ylim(0, 7.4)
ax.axis("off")


def box(x, y, w, h, text, color):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc=color, ec="k", lw=1.2))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=11.5)


def arrow(x0, y0, x1, y1, **style):
    ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=16, lw=1.5, **style))


box(0.6, 0.3, 4, 0.7, "source: [CLS] das ufer war schlammig [SEP]", "#eeeeee")
box(0.6, 1.6, 4, 3.4, "", "#e5f5e0")
ax.text(2.6, 4.65, "encoder = BERT (warm start)", ha="center", fontsize=12, weight="bold")
box(1.0, 2.0, 3.2, 0.9, "bidirectional\nself-attention", "#c7e9c0")
box(1.0, 3.2, 3.2, 0.9, "feed-forward", "white")
ax.text(0.75, 1.75, "x L", fontsize=12)
arrow(2.6, 1.0, 2.6, 1.6)
arrow(2.6, 5.0, 2.6, 5.8)
box(0.9, 5.8, 3.4, 0.7, "source vectors (one per token)", "#c7e9c0")
box(7.2, 0.3, 4.3, 0.7, "target so far: <s> the bank was", "#eeeeee")
box(7.2, 1.6, 4.3, 4.4, "", "#deebf7")
ax.text(9.35, 5.65, "decoder (GPT-like, or BERT weights)", ha="center", fontsize=12, weight="bold")
box(7.6, 1.9, 3.5, 0.9, "causal\nself-attention", "#c6dbef")
box(7.6, 3.0, 3.5, 0.9, "cross-attention\n(queries: target, keys: source)", "#fdd0a2")
box(7.6, 4.1, 3.5, 0.9, "feed-forward", "white")
ax.text(11.55, 1.75, "x L", fontsize=12)
arrow(9.35, 1.0, 9.35, 1.6)
arrow(9.35, 6.0, 9.35, 6.6)
ax.text(9.35, 6.9, "next token: P(muddy | source, <s> the bank was)", ha="center", fontsize=12)
arrow(4.3, 6.15, 7.55, 3.45, color="#d95f0e", connectionstyle="arc3,rad=-0.2")
ax.text(4.8, 3.9, "keys and values\nof every block's\ncross-attention", fontsize=11, color="#d95f0e")
ax.set_title("BERT as the encoder of a sequence-to-sequence model")
fig.tight_layout()
plt.show()

# %% [markdown]
# The wiring in code: MiniLM encodes a source sentence, and a fresh two-block decoder
# (PyTorch's `nn.TransformerDecoder`, untrained, sharing MiniLM's word embeddings) reads it
# through cross-attention under a causal mask. Untrained, it writes nothing useful, but the
# information flow can be checked: changing a target token changes the decoder's outputs at
# that position and after it, never before it; changing a source token changes every output.

# %%
# NBVAL_CHECK_OUTPUT
set_seed(0)
H = minilm.config.hidden_size
decoder = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(
    d_model=H, nhead=minilm.config.num_attention_heads, dim_feedforward=4 * H, dropout=0.0, batch_first=True),
    num_layers=2).eval()
embed = minilm.bert.embeddings                                        # shared with the encoder


@torch.no_grad()
def seq2seq_logits(source_text, target_ids):
    source_batch = minilm_tokenizer([source_text], return_tensors="pt")
    memory = minilm.bert(**source_batch).last_hidden_state            # (1, S, H): BERT reads both ways
    U = target_ids.size(1)
    causal = torch.nn.Transformer.generate_square_subsequent_mask(U)  # (U, U): -inf above the diagonal
    h = decoder(embed(target_ids, torch.zeros_like(target_ids)), memory, tgt_mask=causal)  # (1, U, H)
    return h @ embed.word_embeddings.weight.T                         # (1, U, V): tied output layer


target_ids = minilm_tokenizer(["[CLS] das ufer war schlammig"], add_special_tokens=False, return_tensors="pt")["input_ids"]
base = seq2seq_logits("the river bank was muddy.", target_ids)
changed_target = target_ids.clone()
changed_target[0, 3] = minilm_tokenizer.convert_tokens_to_ids("ist")
after_target = seq2seq_logits("the river bank was muddy.", changed_target)
after_source = seq2seq_logits("the river bank was dry.", target_ids)
moved = lambda a, b: [bool((a[0, u] - b[0, u]).abs().max() > 1e-5) for u in range(a.size(1))]
print("target tokens:           ", minilm_tokenizer.convert_ids_to_tokens(target_ids[0].tolist()))
print("logits shape:            ", tuple(base.shape))
print("target token 3 changed -> outputs changed at", moved(base, after_target))
print("source word changed    -> outputs changed at", moved(base, after_source))
assert moved(base, after_target) == [u >= 3 for u in range(target_ids.size(1))]  # never before position 3
assert all(moved(base, after_source))

# %% [markdown]
# ## 15.5 At full scale
#
# `FULL = True` fits the MiniLM head on {glue:text}`ch15_full_head_sentences:,d` sentences for
# {glue:text}`ch15_full_head_epochs:d` epochs, measures the contexts on
# {glue:text}`ch15_full_eval_sentences:d` held-out sentences, writes
# {glue:text}`ch15_full_length:d` WordPieces after each of {glue:text}`ch15_full_prompts:d`
# prompts and fills {glue:text}`ch15_full_gaps:d` gaps. It makes the measurements less noisy;
# it does not make the models strong, because the limit is what the two checkpoints know. What changes the picture is a
# strong MLM: BERT-base or BERT-large with its real pretraining head, loaded with
# `BertForMaskedLM.from_pretrained` where the network allows, was pretrained to fill exactly
# these blanks on 3.3 billion words, and is the model to run the gap benchmark with (we have not
# measured it here). Even then there is no
# probability of the whole text: {cite:t}`wang2019bert` sample from BERT by re-masking and
# re-predicting one position at a time, and find its text more diverse but less fluent than
# that of a left-to-right model of similar size (published).
#
# The published numbers of mask-predict (marked as published; BLEU on the test sets) come
# from a *conditional* MLM: an encoder-decoder Transformer for translation whose decoder has no
# causal mask, trained with a uniformly drawn number of masked target words and with
# knowledge distillation from a left-to-right model. {cite:t}`ghazvininejad2019maskpredict`
# report 27.03 BLEU on WMT'14 English-German with $T = 10$ iterations (and 33.08 on WMT'16
# English-Romanian), "within about 1 BLEU point of a typical left-to-right transformer" (their
# base Transformer: 27.74), with a constant number of decoder passes instead of one per word;
# a single pass ($T = 1$) scores several BLEU points lower. The source sentence is what makes
# that work: it decides most of the target's words, which our prompt-only setting cannot.

# %%
print(f"this notebook: {time.process_time() - CPU_START:.0f} CPU-s, {time.time() - WALL_START:.0f} s wall "
      f"(book_model(): {book_cpu:.0f} CPU-s of it)")
glue("ch15_cpu_seconds", time.process_time() - CPU_START, display=False)
glue("ch15_wall_seconds", time.time() - WALL_START, display=False)

# %% [markdown]
# ```{admonition} Coming from d2l?
# :class: note
# d2l {cite:p}`zhang2023dive` generates text with RNN and Transformer language models and with
# the encoder-decoder of its machine-translation chapters, always left to right; its BERT
# chapter stops at pretraining and fine-tuning. Two differences from its encoder-decoder code:
# d2l's Transformer decoder builds the causal mask from `dec_valid_lens` during training and
# feeds one token at a time at prediction, and its encoder is trained from scratch, whereas here
# the encoder is a pretrained BERT. d2l's masked language model (`MaskLM`) is never used to
# write; mask-predict is new here.
# ```
#
# ## Summary
#
# - **A masked language model is not a left-to-right model.** BERT learned
#   $P(x_t \mid x_{\setminus t})$ with words on both sides; writing left to right asks for
#   $P(x_t \mid x_{<t})$, which it never trained on. From the left only, the book's BERT guesses
#   {glue:text}`ch15_book_left:.3f` of held-out words right, below a counted bigram's
#   {glue:text}`ch15_book_bigram:.3f`.
# - **Naive left-to-right filling** (appending a `[MASK]`, or filling a row of them) writes
#   degenerate text: {glue:text}`ch15_book_naive_distinct:.2f` distinct WordPieces per slot
#   against {glue:text}`ch15_book_real_distinct:.2f` in real text, mostly the corpus's most
#   frequent tokens.
# - **Mask-predict** predicts every slot at once, then re-masks the
#   $n_t = \lfloor N(T-t)/T \rfloor$ least confident and predicts them again, in $T$ passes
#   whatever the length (`bertedu.generation.mask_predict`, with every pass returned).
# - **Greedy mask-predict confirms its first guess** with a weak model: the most probable
#   WordPiece is a frequent one. **Sampling** (`temperature=1, top_k=50`) with the same
#   re-masking writes varied text, {glue:text}`ch15_sampled_distinct:.2f` distinct WordPieces per
#   text with the book's BERT, and the passes raise its pseudo-log-likelihood (mean over the prompts: from
#   {glue:text}`ch15_sampled_pll_first:.1f` to {glue:text}`ch15_sampled_pll_last:.1f`). On gaps
#   with a known answer, the decoder matters less than the model; MiniLM's fitted head
#   ({glue:text}`ch15_minilm_accuracy:.3f` accuracy at `[MASK]`) stays near the unigram guess
#   whatever the decoder. The published conditional MLM comes within about 1 BLEU of a
#   left-to-right Transformer with 10 passes.
# - **BERT in a seq2seq model** is the encoder: bidirectional self-attention over the source,
#   read by a causal decoder through cross-attention (BERT2BERT warm starts). **GPT** is a
#   decoder alone, trained on the next token: the right tool for writing.
#
# ## Exercises
#
# The exercises for this chapter are the nbgrader assignment `exercises/source/15_generation/15_generation.ipynb`, with reference solutions. `make exercises` writes the student version, without them, to `exercises/release/15_generation/`; instructors, see the guide "Teaching with this book".
