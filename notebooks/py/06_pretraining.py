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
# # 6. Pretraining a small BERT
#
# Chapter 5 built BERT's pretraining data: sentence pairs for next-sentence prediction (NSP)
# and masked WordPieces for the masked language model (MLM). This chapter trains a BERT on it,
# from random weights, on real text. The authors of the paper {cite:p}`devlin2019bert` trained
# BERT-base for four days on 16 TPU chips. We do it twice.
# First comes a run you can redo here: a BERT with {glue:text}`ch6_n_parameters:,d` parameters,
# trained on WikiText-2 {cite:p}`merity2017pointer` on a laptop CPU in a few minutes. Every piece
# of the run is the real thing: the same loss, the same optimizer and learning-rate schedule, the
# same heads and the same checkpoint format. We measure what the model learns, and what it does
# not yet learn, against baselines that ignore the context. Minutes teach a BERT the frequencies
# of words, and little more. So then we load **the book's BERT**: the same code, run for
# {glue:text}`ch6_book_hours:.1f` hours on a 2-core CPU of the same kind, and shipped with the
# library. On held-out text it fills a `[MASK]` correctly {glue:text}`ch6_book_mask_accuracy:.2f`
# of the time, against {glue:text}`ch6_book_mask_unigram:.2f` for always guessing the most frequent
# word.
#
# ## What you will be able to do
#
# - Write BERT's joint pretraining loss, the MLM loss plus the NSP loss, compute it by hand
#   on a batch, and show that it equals the library's. Explain why an untrained model starts
#   at $\ln V + \ln 2$.
# - Read the settings of a small pretraining recipe and compare them with BERT-base's.
# - Draw the learning-rate schedule (linear warmup, then linear decay), write BERT's training
#   loop yourself (AdamW groups, the schedule, clipping, bf16 matrix products on the CPU), and
#   show that it makes exactly the updates of the library's `bertedu.training.train`.
# - Read loss curves, and judge held-out MLM and NSP accuracy against baselines that do not
#   look at the context: always predict the most frequent token, always predict the more
#   frequent NSP label.
# - Use the MLM head to fill in blanks, and read its top-5 guesses.
# - Judge a longer pretraining run, the book's BERT: its learning curves and where it leaves
#   the plateau, its held-out figures against the baselines, cloze probes written before it was
#   trained, and how far it is from BERT-base.
# - Save the model and its tokenizer in the Hugging Face layout, and reload them with
#   `transformers`.
# - Put the run in proportion: what the original pretraining cost, and what the GLUE
#   benchmark, on which BERT was judged, measures.
#
# ## Setup
#
# Imports, fixed seeds and the book's one switch. By default the chapter runs the library's
# CPU recipe, `bertedu.pretraining.PretrainingRecipe()`, as it is. It trains on the training
# split of WikiText-2 (about two million words; where only the validation split is on the
# machine, on that one), and holds out pairs from the test split for evaluation. The whole
# notebook is sized for a few minutes of a 2-core CPU (section 6.4 prints how long its training
# took). `FULL = True` (set the environment variable
# `BERTEDU_FULL=1`) runs the recipe of the book's BERT instead (section 6.9), meant for a GPU:
# pairs of 128 WordPieces, 4 layers of width 256 with 4 heads, 40% of the WordPieces chosen
# for MLM, sinusoids as the start of the position embeddings, batches of 32 pairs and 3,000
# steps. Compare them with the CPU recipe's settings in
# the table of section 6.3; everything else stays as in the recipe.

# %%
# %config InlineBackend.figure_format = 'png'
import dataclasses
import json
import math
import os
import random
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from myst_nb import glue

from bertedu import BertForPreTraining
from bertedu.data import load_wikitext2
from bertedu.heads import IGNORE_INDEX
from bertedu.pretraining import (IS_NEXT, NOT_NEXT, PretrainingDataset, PretrainingRecipe, baselines,
                                 book_bert_report, build_pretraining_model, cloze_predictions,
                                 create_nsp_examples,
                                 evaluate_pretraining, prepare_pretraining_data,
                                 pretraining_logits, pretraining_loss, tokenize_documents,
                                 train_tokenizer, wikitext_documents, wikitext_splits)
from bertedu.run_pretraining import BOOK_BERT, book_model
from bertedu.tokenization import BertTokenizer
from bertedu.training import batch_indices, lr_at, set_seed, train, use_mixed_precision

plt.rcParams.update({"font.size": 12})
random.seed(0)
np.random.seed(0)
torch.manual_seed(0)

# The one knob of the book (see the text above for what it changes).
FULL = os.environ.get("BERTEDU_FULL", "0") == "1"
recipe = PretrainingRecipe()  # the library's CPU recipe, every setting as it is
EVAL_EVERY = 100              # held-out evaluation every this many steps
if FULL:  # the book's BERT (section 6.9): its command line sets the same values
    recipe = dataclasses.replace(recipe, max_seq_length=128, hidden_size=256, num_hidden_layers=4,
                                 num_attention_heads=4, intermediate_size=1024, batch_size=32,
                                 mlm_probability=0.4, position_init="sinusoidal", position_std=0.1,
                                 max_steps=3000, warmup_fraction=150 / 3000)
    EVAL_EVERY = 250

# %% [markdown]
# ## 6.1 The corpus, the vocabulary and the pairs
#
# This is Chapter 5's pipeline, end to end, with the library's functions. A document is one
# WikiText-2 article, made of sentences (`wikitext_documents`). Unlike Chapter 5, which
# borrowed MiniLM's vocabulary, we now learn our own: a WordPiece vocabulary of
# {glue:text}`ch6_vocab_size:,d` entries trained on the training text (`train_tokenizer`: the
# algorithm of Chapter 2, except that it merges the most *frequent* pair instead of using
# WordPiece's likelihood score; section 6.6 shows why). A small vocabulary keeps the embedding matrix, and the MLM head's
# output layer, small. `prepare_pretraining_data` then builds the NSP pairs of both splits
# and wraps them in two datasets:
#
# - the **training set**, with *dynamic* masking: a fresh 15% of each pair is masked every
#   epoch (RoBERTa's choice, Chapter 5);
# - the **held-out set**, {glue:text}`ch6_n_eval_pairs:,d` pairs drawn from the *test* split,
#   with *static* masks, so that every evaluation scores the same positions.
#
# Note that the held-out pairs come from articles the model never sees during training, and
# NotNext pairs of the held-out set take their B from another *test* article.

# %%
# NBVAL_CHECK_OUTPUT
train_split, eval_split = wikitext_splits()          # ("train", "test") with the course's data

train_documents = wikitext_documents(load_wikitext2(train_split))
eval_documents = wikitext_documents(load_wikitext2(eval_split))
tokenizer = train_tokenizer(train_documents, recipe.vocab_size)
data = prepare_pretraining_data(train_documents, eval_documents, tokenizer, recipe)
train_dataset, eval_dataset = data["train_dataset"], data["eval_dataset"]

n_words = sum(len(sentence.split()) for document in train_documents for sentence in document)
n_train_labels = [e.next_sentence_label for e in data["train_examples"]]
print(f"training text:  WikiText-2 {train_split}, {len(train_documents)} articles, {n_words:,} words")
print(f"held-out text:  WikiText-2 {eval_split}, {len(eval_documents)} articles")
print(f"vocabulary:     {tokenizer.vocab_size:,} WordPieces")
print(f"training pairs: {len(train_dataset):,} ({n_train_labels.count(IS_NEXT):,} IsNext, "
      f"{n_train_labels.count(NOT_NEXT):,} NotNext)")
print(f"held-out pairs: {len(eval_dataset):,}")
glue("ch6_train_split", train_split, display=False)
glue("ch6_corpus_words", n_words, display=False)
glue("ch6_vocab_size", tokenizer.vocab_size, display=False)
glue("ch6_n_train_pairs", len(train_dataset), display=False)
glue("ch6_n_eval_pairs", len(eval_dataset), display=False)

# %% [markdown]
# One training pair, as the model receives it in epoch 0: `[CLS] A [SEP] B [SEP]`, with the
# chosen positions in angle brackets, and the NSP label.

# %%
# NBVAL_CHECK_OUTPUT
item = train_dataset[1]
labels = item["labels"]
shown = [f"<{tokenizer.convert_ids_to_tokens(int(t))}>" if int(label) != IGNORE_INDEX
         else tokenizer.convert_ids_to_tokens(int(t)) for t, label in zip(item["input_ids"], labels)]
print(" ".join(shown))
print("chosen positions:", int((labels != IGNORE_INDEX).sum()), "of", len(labels),
      "  their original tokens:", tokenizer.convert_ids_to_tokens(labels[labels != IGNORE_INDEX].tolist()))
print("NSP label:", int(item["next_sentence_label"]), "(0 = IsNext, 1 = NotNext)")

# %% [markdown]
# ## 6.2 The joint loss: MLM + NSP
#
# Appendix A.2 of the paper states the objective in one sentence:
#
# > The training loss is the sum of the mean masked LM likelihood and the mean next sentence
# > prediction likelihood.
#
# ("likelihood" here means the negative log-likelihood, the cross-entropy.) For a batch of $B$
# pairs, let $M$ be the set of chosen MLM positions $(b, i)$ in the whole batch (the
# `[MASK]`, random and unchanged ones: all 15%), $x_{b,i}$ the original token at a chosen position,
# $\tilde{x}_b$ the corrupted input of pair $b$ and $y_b$ its NSP label. Then
#
# $$
# \mathcal{L} \;=\;
# \underbrace{-\frac{1}{|M|} \sum_{(b,i) \in M} \log P_{\text{MLM}}\big(x_{b,i} \mid \tilde{x}_b\big)}_{\mathcal{L}_{\text{MLM}}}
# \;+\;
# \underbrace{-\frac{1}{B} \sum_{b=1}^{B} \log P_{\text{NSP}}\big(y_b \mid \tilde{x}_b\big)}_{\mathcal{L}_{\text{NSP}}},
# $$
#
# where $P_{\text{MLM}}(\cdot \mid \tilde{x}_b) = \operatorname{softmax}\big(E\, \operatorname{transform}(h_{b,i}) + c\big)$
# scores all $V$ WordPieces from the final vector $h_{b,i}$ of position $i$ (the decoder is
# the word-embedding matrix $E$, tied, with its own bias $c$), and
# $P_{\text{NSP}}(\cdot \mid \tilde{x}_b) = \operatorname{softmax}\big(W_{\text{NSP}} \tanh(W_p C_b + b_p) + b_{\text{NSP}}\big)$
# is Chapter 5's classifier on the final vector $C_b$ of `[CLS]`. The MLM mean runs over
# the chosen positions of the whole batch, as in Google's code, not over each pair first.
#
# We build the model of the recipe and compute the loss by hand on a batch of 8 training
# pairs: run the model without labels, take the log-softmax, pick the log-probability of the
# right answer at each chosen position and for each pair, and average.

# %%
set_seed(recipe.seed)
model = build_pretraining_model(recipe, tokenizer.vocab_size)   # BertForPreTraining(recipe.model_config(V))
batch = train_dataset.collate([train_dataset[i] for i in range(8)])

with torch.no_grad():
    out = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])  # no labels
    chosen = batch["labels"] != IGNORE_INDEX                         # (B, T): the set M
    mlm_log_probs = out.logits.log_softmax(dim=-1)[chosen]           # (|M|, V)
    targets = batch["labels"][chosen]                                # (|M|,) original ids
    mlm_loss = -mlm_log_probs[torch.arange(len(targets)), targets].mean()
    nsp_log_probs = out.seq_relationship_logits.log_softmax(dim=-1)  # (B, 2)
    nsp_labels = batch["next_sentence_label"]                        # (B,)
    nsp_loss = -nsp_log_probs[torch.arange(len(nsp_labels)), nsp_labels].mean()
    loss = mlm_loss + nsp_loss

    torch.testing.assert_close(loss, model(**batch).loss)          # the model's own loss
    torch.testing.assert_close(loss, pretraining_loss(model, batch))  # the loss we train with

V = tokenizer.vocab_size
print(f"batch: input_ids {tuple(batch['input_ids'].shape)}, |M| = {len(targets)} chosen positions")
print(f"MLM loss {mlm_loss.item():.3f}   ln V = ln {V} = {math.log(V):.3f}")
print(f"NSP loss {nsp_loss.item():.3f}   ln 2 = {math.log(2):.3f}")
print(f"total    {loss.item():.3f}   ln V + ln 2 = {math.log(V) + math.log(2):.3f}")
assert abs(mlm_loss.item() - math.log(V)) < 0.1 and abs(nsp_loss.item() - math.log(2)) < 0.05
glue("ch6_initial_loss", loss.item(), display=False)
glue("ch6_ln_v_ln_2", math.log(V) + math.log(2), display=False)

# %% [markdown]
# **Where an untrained model starts.** The weights start small (a normal distribution with
# standard deviation 0.02), so every logit is close to 0 and both softmaxes are close to
# uniform. A uniform guess over $V$ tokens costs $\ln V$, and a coin toss costs $\ln 2$. So
# before any training the loss is close to $\ln V + \ln 2 =$ {glue:text}`ch6_ln_v_ln_2:.2f`;
# our batch gives {glue:text}`ch6_initial_loss:.2f`. Watch the first steps of a run: if
# the loss starts far from this value, something is wrong with the initialization or the labels.
#
# **Why the library's loss is faster.** `model(**batch)` scores all $V$ WordPieces at every
# position, a tensor of shape $[B, T, V]$, and then throws away the 85% of the rows that are not
# chosen. `pretraining_loss` gathers the chosen positions first, and runs the MLM head on those
# rows only (Google's code does the same with `gather_indexes`). The vocabulary projection is
# the largest matrix product of a small BERT, so this roughly halves a training step on the CPU:

# %%
# NBVAL_CHECK_OUTPUT
with torch.no_grad():
    mlm_logits, mlm_labels, nsp_logits = pretraining_logits(model, batch)
print("model(**batch).logits:   ", tuple(out.logits.shape), "  [B, T, V]")
print("pretraining_logits(...): ", tuple(mlm_logits.shape), "  [|M|, V]")
print("NSP logits:              ", tuple(nsp_logits.shape), "  [B, 2]")

# %% [markdown]
# ## 6.3 The recipe
#
# `PretrainingRecipe` holds every setting of the run. Here they are next to BERT-base's, as
# the paper reports them (appendix A.2). Everything that makes BERT big is scaled down by one
# or two orders of magnitude: the vocabulary, the width, the depth, the sequence length, the
# batch and, above all, the number of steps. A few choices go the other way, because a tiny
# model trained for minutes needs them: a higher learning rate, little or no dropout (dropout
# fights overfitting, and a model this undertrained does not overfit), and dynamic masking.

# %%
# NBVAL_CHECK_OUTPUT
bert_base = {  # the paper's BERT-base (Devlin et al. 2019, section 3 and appendix A.2)
    "vocab_size": "30,522 (30,000 in the paper's text)", "max_seq_length": "128, then 512",
    "short_seq_prob": "0.1", "dupe_factor": "10", "masking": "static", "mlm_probability": "0.15",
    "hidden_size": "768", "num_hidden_layers": "12", "num_attention_heads": "12",
    "intermediate_size": "3072", "dropout": "0.1", "max_steps": "1,000,000",
    "batch_size": "256", "learning_rate": "1e-4", "warmup_fraction": "0.01 (10,000 steps)",
    "weight_decay": "0.01", "eval_examples": "-", "seed": "-", "initializer_range": "0.02",
    "position_init": "normal", "position_std": "-",
}
print(f"{'setting':<20} {'ours':>10}   BERT-base (paper)")
for name, value in dataclasses.asdict(recipe).items():
    print(f"{name:<20} {str(value):>10}   {bert_base.get(name, '-')}")
print(f"{'warmup_steps':<20} {recipe.warmup_steps:>10}   10,000")
n_parameters = sum(p.numel() for p in model.parameters())
print(f"{'parameters':<20} {n_parameters:>10,}   110M")
glue("ch6_n_parameters", n_parameters, display=False)
glue("ch6_max_steps", recipe.max_steps, display=False)
glue("ch6_batch_size", recipe.batch_size, display=False)
glue("ch6_max_seq_length", recipe.max_seq_length, display=False)
glue("ch6_learning_rate", recipe.learning_rate, display=False)
glue("ch6_warmup_steps", recipe.warmup_steps, display=False)
glue("ch6_warmup_percent", 100 * recipe.warmup_steps / recipe.max_steps, display=False)


# %% [markdown]
# Where do the {glue:text}`ch6_n_parameters:,d` parameters sit? In BERT-base, most of the
# 110M are in the 12 blocks. In a model this small, the word embeddings alone, $V \times H$,
# are {glue:text}`ch6_word_embedding_share:.0f`% of it: the size of the vocabulary matters.

# %%
# NBVAL_CHECK_OUTPUT
def count(module):
    return sum(p.numel() for p in module.parameters())

parts = {
    "word embeddings (V x H)": model.bert.embeddings.word_embeddings.weight.numel(),
    "other embeddings + LayerNorm": count(model.bert.embeddings)
                                    - model.bert.embeddings.word_embeddings.weight.numel(),
    f"{recipe.num_hidden_layers} encoder blocks": count(model.bert.encoder),
    "pooler": count(model.bert.pooler),
    "MLM head (decoder tied to E)": count(model.cls.predictions),
    "NSP head": count(model.cls.seq_relationship),
}
parts["MLM head (decoder tied to E)"] -= model.bert.embeddings.word_embeddings.weight.numel()
assert sum(parts.values()) == n_parameters
for name, n in parts.items():
    print(f"{name:<30} {n:>10,}  {100 * n / n_parameters:5.1f}%")
glue("ch6_word_embedding_share", 100 * parts["word embeddings (V x H)"] / n_parameters, display=False)

# %% [markdown]
# **The optimizer and the learning rate.** BERT is trained with Adam with decoupled weight
# decay (AdamW, {cite:t}`loshchilov2019decoupled`) and a learning rate that rises linearly from 0
# during a warmup and then falls linearly to 0 at the last step. `bertedu.training.lr_at` is
# that schedule as a pure function of the step, with `step = 0` the first update:
#
# $$
# \eta(s) =
# \begin{cases}
# \eta_{\max}\, \dfrac{s + 1}{s_{\text{warmup}}} & s < s_{\text{warmup}},\\[1ex]
# \eta_{\max}\, \dfrac{s_{\max} - s}{s_{\max} - s_{\text{warmup}}} & s \ge s_{\text{warmup}}.
# \end{cases}
# $$
#
# The warmup protects the start: Adam's estimates of the gradients' scale are poor in the first
# steps, and a freshly initialized post-LN Transformer is easily knocked off course by large
# updates. The decay lets the weights settle at the end. Our warmup is
# {glue:text}`ch6_warmup_steps:d` steps, {glue:text}`ch6_warmup_percent:.0f`% of the run; BERT's
# 10,000 steps were 1% of its million.

# %% mystnb={"image": {"alt": "Learning rate against step: a straight rise from near 0 to the peak during the warmup, then a straight fall to 0 at the last step."}}
schedule = [lr_at(s, recipe.learning_rate, recipe.warmup_steps, recipe.max_steps)
            for s in range(recipe.max_steps)]
assert max(schedule) == schedule[recipe.warmup_steps - 1] == recipe.learning_rate
assert 0 < schedule[-1] < schedule[0] and lr_at(recipe.max_steps, recipe.learning_rate,
                                                recipe.warmup_steps, recipe.max_steps) == 0

fig, ax = plt.subplots(figsize=(8, 3.5))
ax.plot(range(recipe.max_steps), schedule)
ax.axvline(recipe.warmup_steps, color="gray", ls="--", lw=1)
ax.text(recipe.warmup_steps + 5, recipe.learning_rate * 0.5, "end of warmup", fontsize=11)
ax.set_xlabel("step (0 = the first update)")
ax.set_ylabel("learning rate")
ax.set_title("lr_at: linear warmup, then linear decay to 0")
plt.show()


# %% [markdown]
# ## 6.4 Training
#
# The training loop is the library's `bertedu.training.train`, the same one that fine-tunes
# every model of Part II. Before we use it, we write it ourselves. One optimizer step has five
# parts:
#
# 1. **AdamW with two groups** (built once): the weight matrices get weight decay; biases and
#    LayerNorm weights, the parameters with one dimension, do not.
# 2. **The batch of this step.** Epoch $e$ visits the training pairs in a random order seeded by
#    the seed and $e$ (`batch_indices`), so the batch of any step can be recomputed from the step
#    alone, which is what makes a stopped run resumable. Dynamic masking draws the epoch's masks.
# 3. **The learning rate** of the step, `lr_at` above.
# 4. **Forward and backward.** On a CPU with bf16 hardware (Intel's AMX or AVX512-BF16
#    instructions; `use_mixed_precision` asks the CPU), the matrix products run in bfloat16
#    under `torch.autocast`, which is several times faster, while the weights, the gradients'
#    sums and Adam's state stay in float32.
# 5. **Clip** the gradients' global norm to 1, **update**, and clear the gradients.
#
# Here it is in code; then we run it and the library's loop for 20 steps from the same weights,
# and check that they agree.

# %%
def plain_train(model, dataset, config, loss_fn):
    """BERT's training loop written out; returns the loss of every step."""
    # 1. AdamW: weight matrices decay; biases and LayerNorm weights (1-D) do not
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=config.learning_rate, betas=(config.adam_beta1, config.adam_beta2),
                                  eps=config.adam_epsilon, fused=True)
    bf16 = use_mixed_precision(config.mixed_precision, torch.device("cpu"))  # bf16 where the CPU has it
    losses = []
    model.train()
    for step in range(config.max_steps):
        # 2. this step's batch: epoch e visits the pairs in a random order seeded by (seed, e)
        indices, epoch = batch_indices(step, len(dataset), config.batch_size, config.seed)
        dataset.set_epoch(epoch)                      # dynamic masking: fresh masks each epoch
        batch = dataset.collate([dataset[i] for i in indices])
        # 3. the learning rate of this step: linear warmup, then linear decay to 0
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config.learning_rate, config.warmup_steps, config.max_steps)
        # 4. forward (matrix products in bf16, weights kept in fp32) and backward
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model, batch)
        loss.backward()
        # 5. clip the gradients' global norm, update the weights, clear the gradients
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses


check = recipe.training_config(max_steps=20, warmup_steps=5, progress_bar=False)
set_seed(recipe.seed)
mine = BertForPreTraining(recipe.model_config(tokenizer.vocab_size))
set_seed(recipe.seed)
library = BertForPreTraining(recipe.model_config(tokenizer.vocab_size))
my_losses = plain_train(mine, train_dataset, check, pretraining_loss)
library_losses = train(library, train_dataset, check, collate_fn=train_dataset.collate,
                       loss_fn=pretraining_loss).losses
assert my_losses == library_losses                                    # every loss, exactly
assert all(torch.equal(a, b) for a, b in zip(mine.state_dict().values(), library.state_dict().values()))
bf16 = use_mixed_precision(None, torch.device("cpu"))
print(f"bf16 matrix products on this CPU: {bf16}")
print(f"20 steps: the same losses ({my_losses[0]:.3f} -> {my_losses[-1]:.3f}) and the same weights, bit for bit")


# %% [markdown]
# The two loops make the same updates, to the last bit. Both ran their matrix products in bf16
# if the CPU multiplies bf16 in hardware (the output above says whether this one does);
# `benchmarks/training_speed.py` measures what that saves, and `benchmarks/bf16_accuracy.py`
# checks that fine-tuning loses no accuracy with it. From now on we use the library's loop: it
# wraps the same five parts in what a long run needs, namely held-out evaluations, a progress
# bar, checkpoints that resume exactly, gradient accumulation and several processes.

# %% [markdown]
# What the loop needs from us is the data, the settings and three functions: how to make a
# batch (`collate`), the loss (`pretraining_loss`, above) and what to measure on the held-out
# set (`evaluate_pretraining`, every {glue:text}`ch6_eval_every:d` steps). Before training,
# we measure the untrained model once, to have a point at step 0. This cell is the long one:
# from under a minute to a few minutes on a laptop CPU, depending on the machine.

# %%
def evaluate(model, step=0):
    # held-out MLM loss and accuracy, NSP loss and accuracy (a dict); train passes the step
    return evaluate_pretraining(model, eval_dataset)

at_start = {"step": 0, **evaluate(model)}
history = train(model, train_dataset,
                recipe.training_config(eval_every=EVAL_EVERY, progress_bar=False),
                collate_fn=train_dataset.collate, loss_fn=pretraining_loss, eval_fn=evaluate)
evaluations = [at_start] + history.eval

train_seconds = history.train[-1]["seconds"]
n_tokens = sum(record["tokens"] for record in history.train)
epochs = recipe.max_steps * recipe.batch_size / len(train_dataset)
print(f"{len(history.train)} steps, {n_tokens:,} tokens, {epochs:.1f} epochs, {train_seconds:.0f} s")
glue("ch6_eval_every", EVAL_EVERY, display=False)
glue("ch6_train_seconds", train_seconds, display=False)
glue("ch6_train_tokens", n_tokens, display=False)
glue("ch6_epochs", epochs, display=False)

# %% [markdown]
# The run made {glue:text}`ch6_max_steps:,d` updates of {glue:text}`ch6_batch_size:d` pairs, about
# {glue:text}`ch6_epochs:.1f` passes over the {glue:text}`ch6_n_train_pairs:,d` training pairs,
# and read {glue:text}`ch6_train_tokens:,d` WordPieces in {glue:text}`ch6_train_seconds:.0f`
# seconds, held-out evaluations included. (On a shared or slower machine the time differs; the
# results do not, up to floating-point details, because every random choice comes from the seed.)

# %% [markdown]
# ## 6.5 Loss curves
#
# `history.train` holds one record per step (loss, learning rate, gradient norm, tokens,
# seconds), and `evaluations` one per held-out evaluation. We compute the baselines first,
# to draw them on the curves. A model that ignores the context can still score:
#
# - **MLM:** always predict the most frequent WordPiece of the training pairs (the *unigram*
#   baseline; the next cell finds that it is {glue:text}`ch6_unigram_token`).
# - **NSP:** always predict the more frequent training label (the *majority* baseline). Our
#   training labels are balanced, so this is close to 0.5.

# %%
base = baselines(data["train_examples"], eval_dataset, tokenizer)
unigram_token = tokenizer.convert_ids_to_tokens(base["mlm_unigram_token"])
print(f"unigram baseline: always {unigram_token!r}, held-out MLM accuracy {base['mlm_unigram_accuracy']:.3f}")
print(f"majority baseline: held-out NSP accuracy {base['nsp_majority_accuracy']:.3f}")
glue("ch6_unigram_token", unigram_token, display=False)
glue("ch6_unigram_accuracy", base["mlm_unigram_accuracy"], display=False)

# A second MLM baseline that reads no context: copy the token the position shows, and at a
# [MASK], guess the unigram token (section 6.6 explains why).
seen_ids = torch.cat([eval_dataset[i]["input_ids"] for i in range(len(eval_dataset))])
target_ids = torch.cat([eval_dataset[i]["labels"] for i in range(len(eval_dataset))])
seen_ids, target_ids = seen_ids[target_ids != IGNORE_INDEX], target_ids[target_ids != IGNORE_INDEX]
context_free = torch.where(seen_ids == tokenizer.mask_token_id, target_ids == base["mlm_unigram_token"],
                          seen_ids == target_ids).float().mean().item()
print(f"context-free baseline (copy what is shown, {unigram_token!r} at [MASK]): {context_free:.3f}")
glue("ch6_context_free_accuracy", context_free, display=False)
glue("ch6_majority_accuracy", base["nsp_majority_accuracy"], display=False)

# %% mystnb={"image": {"alt": "Three panels over the training steps. Left: the training loss falls from about 9.6, fast at first and then slowly, with the held-out loss close to it and the held-out NSP loss near ln 2. Middle: held-out MLM accuracy over all chosen positions and at [MASK] positions only, each with its unigram baseline as a dashed line, and the dotted context-free baseline. Right: held-out NSP accuracy with the majority baseline and the goal of 0.6 as lines."}}
steps = np.array(history.steps)
losses = np.array(history.losses)
smooth = np.convolve(losses, np.ones(20) / 20, mode="valid")   # mean of 20 steps
eval_steps = [e["step"] for e in evaluations]

fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
ax = axes[0]
ax.plot(steps, losses, color="tab:blue", alpha=0.3, lw=1, label="training loss (each step)")
ax.plot(steps[19:], smooth, color="tab:blue", lw=2, label="training loss (mean of 20 steps)")
ax.plot(eval_steps, [e["mlm_loss"] + e["nsp_loss"] for e in evaluations], "o-", color="tab:red",
        label="held-out MLM + NSP loss")
ax.plot(eval_steps, [e["nsp_loss"] for e in evaluations], "s-", color="tab:green",
        label="held-out NSP loss")
ax.axhline(math.log(V) + math.log(2), color="gray", ls=":", lw=1)
ax.axhline(math.log(2), color="gray", ls=":", lw=1)
ax.set_xlabel("step")
ax.set_ylabel("cross-entropy (nats)")
ax.set_title("Losses")
ax.legend(fontsize=10)

ax = axes[1]
ax.plot(eval_steps, [e["mlm_accuracy"] for e in evaluations], "o-", color="tab:red",
        label="held-out MLM accuracy")
ax.axhline(base["mlm_unigram_accuracy"], color="k", ls="--", lw=1,
           label=f"unigram baseline (always {unigram_token!r})")
ax.axhline(context_free, color="tab:purple", ls=":", lw=1.5,
           label="context-free baseline (section 6.6)")
ax.plot(eval_steps, [e["mlm_masked_accuracy"] for e in evaluations], "^-", color="tab:brown",
        label="held-out accuracy at [MASK] only")
ax.axhline(base["mlm_masked_unigram_accuracy"], color="tab:brown", ls="--", lw=1,
           label="unigram baseline at [MASK]")
ax.set_xlabel("step")
ax.set_ylabel("accuracy at the chosen positions")
ax.set_title("Masked language model")
ax.set_ylim(0, None)
ax.legend(fontsize=9, loc="lower right")

ax = axes[2]
ax.plot(eval_steps, [e["nsp_accuracy"] for e in evaluations], "s-", color="tab:green",
        label="held-out NSP accuracy")
ax.axhline(base["nsp_majority_accuracy"], color="k", ls="--", lw=1, label="majority baseline")
noise = 2 * math.sqrt(0.25 / len(eval_dataset))   # 2 standard errors of an accuracy near 0.5
ax.axhline(base["nsp_majority_accuracy"] + noise, color="tab:orange", ls=":", lw=1.5,
           label="majority + 2 standard errors")
ax.set_xlabel("step")
ax.set_ylabel("accuracy over the pairs")
ax.set_title("Next-sentence prediction")
ax.set_ylim(0.4, 0.8)
ax.legend(fontsize=10, loc="upper left")
fig.tight_layout()
plt.show()


def leaves_baseline(key, baseline, margin):
    # The first evaluation step from which every later evaluation beats baseline + margin, or None.
    above = [e[key] > baseline + margin for e in evaluations]
    return next((evaluations[i]["step"] for i in range(len(above)) if all(above[i:])), None)


mask_step = leaves_baseline("mlm_masked_accuracy", base["mlm_masked_unigram_accuracy"], 0.005)
nsp_step = leaves_baseline("nsp_accuracy", base["nsp_majority_accuracy"], 0.02)
glue("ch6_mask_story", f"stays on its unigram baseline until step {mask_step:,d} and beats it from then on"
     if mask_step else "never leaves its unigram baseline in this run", display=False)
glue("ch6_nsp_story", f"stays at the majority baseline until step {nsp_step:,d}, and only then rises above it"
     if nsp_step else "stays near the majority baseline for the whole run", display=False)
print("[MASK] accuracy leaves its baseline at step", mask_step, "; NSP accuracy at step", nsp_step)


# %% [markdown]
# Read the curves from the left:
#
# - The loss starts near $\ln V + \ln 2$ and falls fast during the first hundred or so steps,
#   while the model learns which WordPieces are frequent: predicting by frequency alone brings
#   the MLM loss from $\ln V$ down to the entropy of the unigram distribution. After that it
#   falls only slowly. Section 6.6 looks at what the model has learned by then.
# - The held-out loss follows the training loss closely. A model of this size, trained for
#   {glue:text}`ch6_train_seconds:.0f` seconds with dynamic masks, is far from overfitting; it
#   is *undertrained*.
# - The MLM accuracy over all chosen positions crosses the unigram baseline early, helped by the
#   positions that show their own token (section 6.6). The accuracy at the `[MASK]` positions,
#   where only the context can help, {glue:text}`ch6_mask_story`: a model first learns the
#   frequencies of the tokens, and only later to read the context.
# - The NSP accuracy {glue:text}`ch6_nsp_story` (section 6.6 explains why it comes so late).
#

# %% [markdown]
# ## 6.6 Against the baselines
#
# The final figures on the {glue:text}`ch6_n_eval_pairs:,d` held-out pairs, next to the
# baselines:

# %%
final = history.eval[-1]
mlm_margin = final["mlm_accuracy"] - base["mlm_unigram_accuracy"]
nsp_margin = final["nsp_accuracy"] - base["nsp_majority_accuracy"]
print(f"MLM accuracy {final['mlm_accuracy']:.3f}   unigram baseline {base['mlm_unigram_accuracy']:.3f}"
      f"   margin {mlm_margin:+.3f}")
print(f"NSP accuracy {final['nsp_accuracy']:.3f}   majority baseline {base['nsp_majority_accuracy']:.3f}"
      f"   margin {nsp_margin:+.3f}")
print(f"held-out MLM loss {final['mlm_loss']:.3f}, NSP loss {final['nsp_loss']:.3f} (ln 2 = {math.log(2):.3f})")

# MLM: the model must clearly beat a predictor that ignores the context.
MLM_MARGIN = 0.05
assert final["mlm_accuracy"] > base["mlm_unigram_accuracy"] + MLM_MARGIN, (final, base)
assert final["mlm_loss"] < at_start["mlm_loss"] - 2, (final, at_start)
# NSP: better than the majority answer, beyond chance? Score every held-out pair of the test
# split (not only the sample of the curves) and measure the margin in standard errors.
majority_label = max((IS_NEXT, NOT_NEXT), key=[e.next_sentence_label for e in data["train_examples"]].count)
all_eval_pairs = create_nsp_examples(tokenize_documents(eval_documents, tokenizer), recipe.max_seq_length,
                                     recipe.short_seq_prob, seed=recipe.seed + 1)
nsp_check = evaluate_pretraining(model, PretrainingDataset(all_eval_pairs, tokenizer, "static", seed=1))
p_majority = float(np.mean([e.next_sentence_label == majority_label for e in all_eval_pairs]))
standard_error = math.sqrt(p_majority * (1 - p_majority) / len(all_eval_pairs))
nsp_z = (nsp_check["nsp_accuracy"] - p_majority) / standard_error
print(f"NSP on all {len(all_eval_pairs):,} held-out pairs: {nsp_check['nsp_accuracy']:.3f} against "
      f"{p_majority:.3f} for the majority label, {nsp_z:.1f} standard errors above it")
assert nsp_z > 3, nsp_z
chosen_per_pair = sum(int((eval_dataset[i]["labels"] != IGNORE_INDEX).sum())
                      for i in range(len(eval_dataset))) / len(eval_dataset)
glue("ch6_mlm_accuracy", final["mlm_accuracy"], display=False)
glue("ch6_mlm_loss", final["mlm_loss"], display=False)
glue("ch6_mlm_margin", mlm_margin, display=False)
glue("ch6_mlm_margin_asserted", MLM_MARGIN, display=False)
glue("ch6_nsp_accuracy", final["nsp_accuracy"], display=False)
glue("ch6_nsp_margin", nsp_margin, display=False)
glue("ch6_nsp_all_pairs", len(all_eval_pairs), display=False)
glue("ch6_nsp_all_accuracy", nsp_check["nsp_accuracy"], display=False)
glue("ch6_nsp_all_majority", p_majority, display=False)
glue("ch6_nsp_z", nsp_z, display=False)
glue("ch6_chosen_per_pair", chosen_per_pair, display=False)

# %% [markdown]
# On held-out text, the model predicts the hidden WordPiece at {glue:text}`ch6_mlm_accuracy:.3f`
# of the chosen positions, against {glue:text}`ch6_unigram_accuracy:.3f` for always guessing
# {glue:text}`ch6_unigram_token`: a margin of {glue:text}`ch6_mlm_margin:.3f` (the notebook
# asserts at least {glue:text}`ch6_mlm_margin_asserted:.2f`, so a broken loss or a broken
# masking fails it). Its NSP accuracy is {glue:text}`ch6_nsp_accuracy:.3f`, against
# {glue:text}`ch6_majority_accuracy:.3f` for always giving the more frequent training label
# (the held-out labels are not exactly balanced, so this baseline is not exactly 0.5). On 512 pairs a
# difference of a few hundredths is within the noise, either way. So the cell also scores every one of the
# {glue:text}`ch6_nsp_all_pairs:,d` pairs that the test split's articles give: the model is right
# at {glue:text}`ch6_nsp_all_accuracy:.3f` of them, against {glue:text}`ch6_nsp_all_majority:.3f`
# for the majority label. That is {glue:text}`ch6_nsp_z:.1f` standard errors above it; the
# notebook asserts more than 3, a margin that chance alone gives less than once in 700 runs.
# The model has begun to tell a continuation from a random sentence, although it is far from the
# 97% of the paper's BERT (section 6.6 below says why).
#
# Does the MLM margin mean that the model reads the context? Not necessarily: let us look closer.
#
# ### What the MLM accuracy is made of
#
# Recall the three kinds of chosen position (Chapter 5): 80% show `[MASK]`, 10% a random
# token, and 10% their own token, unchanged. The model cannot tell an unchanged token from a
# random one, but a model that simply copies the token it sees gets every unchanged position
# right without reading any context. Only at a `[MASK]` must it use the context. So we split
# the held-out accuracy by kind of position, and compare each part with the unigram guess. This
# is also the reason for the *context-free* baseline drawn on the curves: copy the visible
# token, and guess {glue:text}`ch6_unigram_token` at every `[MASK]`. The same pass measures how
# often the right WordPiece is among the model's five best guesses.

# %%
model.eval()
u = base["mlm_unigram_token"]
targets, inputs_seen, top1, top5 = [], [], [], []
with torch.no_grad():
    for start in range(0, len(eval_dataset), 256):
        eval_batch = eval_dataset.collate([eval_dataset[i] for i in range(start, min(start + 256, len(eval_dataset)))])
        mlm_logits, mlm_labels, _ = pretraining_logits(model, eval_batch)   # (N, V), (N,)
        best = mlm_logits.topk(5).indices                                  # (N, 5)
        targets.append(mlm_labels)
        inputs_seen.append(eval_batch["input_ids"][eval_batch["labels"] != IGNORE_INDEX])  # what the model saw
        top1.append(best[:, 0] == mlm_labels)
        top5.append((best == mlm_labels[:, None]).any(-1))
targets, inputs_seen, top1, top5 = map(torch.cat, (targets, inputs_seen, top1, top5))
assert abs(top1.float().mean().item() - final["mlm_accuracy"]) < 1e-6   # the same positions as above

shown_mask = inputs_seen == tokenizer.mask_token_id
unchanged = inputs_seen == targets
kinds = {"[MASK]": shown_mask, "random token": ~shown_mask & ~unchanged, "unchanged": unchanged}
print(f"{'position shows':<15} {'share':>6} {'model':>6} {'unigram':>8}")
for kind, where in kinds.items():
    print(f"{kind:<15} {where.float().mean().item():6.3f} {top1[where].float().mean().item():6.3f} "
          f"{(targets[where] == u).float().mean().item():8.3f}")
assert abs(torch.where(shown_mask, targets == u, unchanged).float().mean().item() - context_free) < 1e-6
print(f"all positions: model {final['mlm_accuracy']:.3f}, unigram {base['mlm_unigram_accuracy']:.3f}, "
      f"context-free baseline {context_free:.3f}; model top 5: {top5.float().mean().item():.3f}")

mask_accuracy = top1[shown_mask].float().mean().item()
mask_unigram = (targets[shown_mask] == u).float().mean().item()
assert sum(where.sum() for where in kinds.values()) == len(targets)    # every position, once
assert top1[unchanged].float().mean() > 0.5                            # it copies what it sees
assert mask_accuracy > mask_unigram - 0.01, (mask_accuracy, mask_unigram)  # never below frequency
if mask_accuracy > mask_unigram + 0.01:
    verdict = "above"
elif mask_accuracy > mask_unigram - 0.01:
    verdict = "no better than"
else:
    verdict = "below"
glue("ch6_mask_share", shown_mask.float().mean().item(), display=False)
glue("ch6_mask_accuracy", mask_accuracy, display=False)
glue("ch6_mask_unigram", mask_unigram, display=False)
glue("ch6_mask_verdict", verdict, display=False)
glue("ch6_unchanged_accuracy", top1[unchanged].float().mean().item(), display=False)
glue("ch6_mlm_top5", top5.float().mean().item(), display=False)
if verdict == "above":
    reading = ("Most of the margin over the unigram baseline still comes from copying the unchanged "
               f"tokens, but not all of it: at [MASK] the model beats the frequency guess by "
               f"{mask_accuracy - mask_unigram:.3f}, so it has begun to read the context.")
else:
    reading = ("The margin over the unigram baseline comes from copying the unchanged tokens: in this "
               "run, the model has learned the frequencies of the WordPieces and to copy what it sees, "
               "and has not yet learned to read the context.")
glue("ch6_mask_reading", reading, display=False)

# %% [markdown]
# At the `[MASK]` positions, {glue:text}`ch6_mask_share:.2f` of the targets and the only ones
# where the context is needed, the model is right at {glue:text}`ch6_mask_accuracy:.3f`:
# {glue:text}`ch6_mask_verdict` the {glue:text}`ch6_mask_unigram:.3f` of always guessing
# {glue:text}`ch6_unigram_token`. At the unchanged positions it is right at
# {glue:text}`ch6_unchanged_accuracy:.3f`: it has learned to copy the token it sees. The
# context-free baseline, which copies the visible token and guesses
# {glue:text}`ch6_unigram_token` at every `[MASK]`, scores {glue:text}`ch6_context_free_accuracy:.3f`
# over all positions, against the model's {glue:text}`ch6_mlm_accuracy:.3f`. {glue:text}`ch6_mask_reading` The right WordPiece is among its five best guesses at
# {glue:text}`ch6_mlm_top5:.3f` of the positions.
#
# This is how MLM training starts. A freshly initialized model first learns the cheapest
# statistics, token frequencies, and its loss sits on a plateau near the entropy of the unigram
# distribution (the slow part of the loss curve above). It leaves the plateau once its
# attention heads learn to link a position to the tokens that predict it. In our run, the
# `[MASK]` accuracy {glue:text}`ch6_mask_story`. The real BERT trained for 1,000,000 steps
# (section 6.9).
#
# **Why the vocabulary is learned with frequency merges.** Chapter 2 trained WordPiece with its
# likelihood score, $\text{count}(ab) / (\text{count}(a)\,\text{count}(b))$, which merges pairs
# of *rare* pieces first, so that very common words are learned late. `train_tokenizer` merges the
# most frequent pair instead (`train_wordpiece(..., scoring="frequency")`, the rule of BPE, which
# is also what the `tokenizers` library's WordPiece trainer runs). Here are both rules on the same
# training text, with the same {glue:text}`ch6_vocab_size:,d` entries:
#

# %%
# NBVAL_CHECK_OUTPUT
from bertedu.tokenization import BasicTokenizer

likelihood_tokenizer = train_tokenizer(train_documents, recipe.vocab_size, scoring="likelihood")
for word in ["the", "season", "first", "album", "war", "gloucestershire"]:
    print(f"{word:<16} frequency: {' '.join(tokenizer.tokenize(word)):<22} likelihood: "
          f"{' '.join(likelihood_tokenizer.tokenize(word))}")

basic = BasicTokenizer()
running_words = [w for document in train_documents for sentence in document
                 for w in basic.tokenize(sentence.replace("[UNK]", " "))]
whole = {}
for name, tok in [("frequency", tokenizer), ("likelihood", likelihood_tokenizer)]:
    cache = {}
    pieces = [cache.setdefault(w, len(tok.wordpiece_tokenizer.tokenize_word(w))) for w in running_words]
    whole[name] = float(np.mean(np.array(pieces) == 1))
    print(f"{name:<10}: {whole[name]:.3f} of the {len(running_words):,} running words are one WordPiece, "
          f"{np.mean(pieces):.2f} WordPieces per word")
assert whole["frequency"] > whole["likelihood"] + 0.05
glue("ch6_whole_frequency", whole["frequency"], display=False)
glue("ch6_whole_likelihood", whole["likelihood"], display=False)


# %% [markdown]
# With the likelihood score, {glue:text}`ch6_whole_likelihood:.2f` of the running words of the
# training text are a single WordPiece; with frequency merges, {glue:text}`ch6_whole_frequency:.2f`.
# The likelihood vocabulary fills the MLM task with letters inside words, which the model can
# guess from the word's other letters without reading the sentence, and makes every sequence
# longer, so that a pair of {glue:text}`ch6_max_seq_length:d` WordPieces holds fewer words. It
# also hides the repeated words that next-sentence prediction relies on: a real continuation
# often repeats a name or a rare word of A, but two pieces like `th ##e` repeat in every pair.
# The real BERT's vocabulary is far larger: 30,522 entries in the released uncased checkpoints, "a 30,000
# token vocabulary" of WordPiece embeddings in the paper, which cites {cite:t}`wu2016google` for
# WordPiece and does not say on what text the vocabulary was learned. With that many entries
# almost every common word stays whole whichever rule learned them; with a small corpus and a
# small vocabulary, the rule matters.
#
# ### Why NSP is hard for a tiny model trained for minutes
#
# BERT's NSP accuracy reached 97% to 98% (section 3.1 of the paper); ours reached
# {glue:text}`ch6_nsp_accuracy:.3f`. The task is not broken (Chapter 5 checked every pair's label against where its B
# came from); the model is too small and too briefly trained to solve it well. Its accuracy
# {glue:text}`ch6_nsp_story`, because:
#
# - **Little signal.** Each pair gives NSP one bit and MLM about
#   {glue:text}`ch6_chosen_per_pair:.1f` predictions, each over {glue:text}`ch6_vocab_size:,d`
#   WordPieces. Summed into one loss, the MLM part dominates the gradients of the shared encoder.
# - **It needs what MLM builds first.** Telling a real continuation from a random one comes down
#   mostly to noticing a change of topic (Chapter 5). The `[CLS]` vector must summarise what A is
#   about and what B is about, and compare them. That requires word meanings, or at least noticing
#   that B repeats words of A, and the model builds these only as MLM training leaves its plateau.
#   In the paper's model, NSP rides on representations that 3.3 billion words of MLM built.
# - **Little text.** The {glue:text}`ch6_n_train_pairs:,d` training pairs are cut from only
#   {glue:text}`ch6_corpus_words:,d` words, and the held-out pairs come from other articles on
#   other subjects: whatever the model learns about the topics of its training articles helps
#   little there.
#
# RoBERTa {cite:p}`liu2019roberta` later found that dropping NSP altogether does not hurt, and
# ALBERT {cite:p}`lan2020albert` replaced it with a harder task (sentence order). The book's
# later chapters do not depend on this model's NSP head: Part II starts from a real checkpoint.
#
# ### What the paper's own ablations show
#
# The BERT paper tests its own choices {cite:p}`devlin2019bert` (its section 5). The first
# ablation pretrains BERT-base-sized models that differ in one choice each, on the same
# data, with the same fine-tuning and hyperparameters (Table 5 of the paper; accuracy, F1 for
# SQuAD v1.1; published):
#
# | pretraining objective | MNLI-m | QNLI | MRPC | SST-2 | SQuAD |
# |---|---|---|---|---|---|
# | MLM + NSP (BERT-base) | 84.4 | 88.4 | 86.7 | 92.7 | 88.5 |
# | MLM, no NSP | 83.9 | 84.9 | 86.5 | 92.6 | 87.9 |
# | left-to-right LM, no NSP | 82.1 | 84.3 | 77.5 | 92.1 | 77.8 |
# | left-to-right LM, no NSP, + BiLSTM | 82.1 | 84.1 | 75.7 | 91.6 | 84.9 |
#
# - **NSP.** Without it, QNLI drops most (88.4 to 84.9), MNLI and SQuAD a little. RoBERTa's
#   comparison above reached the opposite verdict, and suggests why: its models without NSP read
#   contiguous text up to the full length, while the paper's model without NSP probably still read
#   pairs of segments, with only the loss removed {cite:p}`liu2019roberta`.
# - **Direction.** The second and third rows differ only in direction: masked LM against a
#   left-to-right LM like GPT's, whose causal mask (section 4.9) the paper keeps during fine-tuning.
#   The left-to-right model is worse on every task, most on MRPC (86.5 to 77.5) and on SQuAD (87.9
#   to 77.8). For SQuAD the reason is plain: the answer's start and end are scored token by token
#   (Chapter 11), and a left-to-right token vector has seen nothing to its right.
# - **A BiLSTM on top does not replace it.** A randomly initialized BiLSTM added over the
#   left-to-right model for fine-tuning gives each token a right context back: SQuAD recovers to
#   84.9, still well below 87.9, and the GLUE tasks stay level or get worse. Context from both sides in
#   every layer, learned in pretraining, is what helps.
#
# The second ablation varies the size: same pretraining, different numbers of layers $L$, width
# $H$ and heads $A$ (Table 6 of the paper; the masked LM perplexity on held-out training data, and
# dev accuracy averaged over 5 fine-tuning restarts; published):
#
# | $L$ | $H$ | $A$ | MLM perplexity | MNLI-m | MRPC | SST-2 |
# |---|---|---|---|---|---|---|
# | 3 | 768 | 12 | 5.84 | 77.9 | 79.8 | 88.4 |
# | 6 | 768 | 3 | 5.24 | 80.6 | 82.2 | 90.7 |
# | 6 | 768 | 12 | 4.68 | 81.9 | 84.8 | 91.3 |
# | 12 | 768 | 12 | 3.99 | 84.4 | 86.7 | 92.9 |
# | 12 | 1024 | 16 | 3.54 | 85.7 | 86.9 | 93.3 |
# | 24 | 1024 | 16 | 3.23 | 86.6 | 87.8 | 93.7 |
#
# The fourth row is BERT-base and the last BERT-large. Down the table the perplexity falls and all
# three accuracies rise, MRPC included, whose training set holds only about 3,700
# pairs (section 6.11): the paper's point is that size helps small tasks too, provided the model
# was pretrained enough. The second and third rows have the same number of parameters (the count
# of section 4.8 does not depend on $A$), yet 12 heads beat 3. This chapter's model is smaller
# than the smallest row.

# %% [markdown]
# ## 6.7 Fill in the blank
#
# The MLM head is a fill-in-the-blank machine: put `[MASK]` in a sentence and it scores
# every WordPiece of the vocabulary for that slot. Here are a few sentences of the held-out test
# split, each with one word masked. The code checks that each sentence really comes from the
# held-out articles and is absent from the training text.

# %%
held_out = {sentence for document in eval_documents for sentence in document}
seen = {sentence for document in train_documents for sentence in document}
blanks = [  # (a held-out sentence, the word to hide)
    ("The work evokes memories of the Second World War .", "war"),
    ("He was previously the head coach at Butler University in Indianapolis .", "university"),
    ("Five singles have been released from the album .", "album"),
    ("Three of the plane 's occupants received minor injuries .", "injuries"),
    ("In addition , strong winds caused widespread power outages .", "strong"),
    ("Du Fu 's work is notable above all for its range .", "its"),
]


# WordPieces that can start a word: not "##...", not special
starts_word = torch.tensor([not tokenizer.convert_ids_to_tokens(i).startswith("##") for i in range(V)])
starts_word[tokenizer.all_special_ids] = False


@torch.no_grad()
def fill_in(model, sentence, word, k=5):
    # Hide `word` in `sentence`; the model's top k over all pieces and over word starts only.
    assert sentence in held_out and sentence not in seen, sentence
    assert len(tokenizer.tokenize(word)) == 1, word                    # one WordPiece to guess
    words = sentence.split()
    words[[w.lower() for w in words].index(word)] = tokenizer.mask_token
    inputs = tokenizer(" ".join(words), return_tensors="pt")
    position = (inputs["input_ids"][0] == tokenizer.mask_token_id).nonzero().item()
    probs = model(**inputs).logits[0, position].softmax(-1)            # (V,)
    p_answer = probs[tokenizer.convert_tokens_to_ids(word)]
    rank_starts = int((probs[starts_word] > p_answer).sum()) + 1
    any_piece = probs.topk(k)
    word_start = torch.where(starts_word, probs, 0.0).topk(k)
    show = lambda top: ", ".join(f"{tokenizer.convert_ids_to_tokens(i)} {p:.2f}"
                                 for i, p in zip(top.indices.tolist(), top.values.tolist()))
    print(" ".join(words))
    print(f"    answer {word!r}: rank {rank_starts} of the {int(starts_word.sum()):,} word starts")
    print(f"    top {k}, any piece:   {show(any_piece)}")
    print(f"    top {k}, word starts: {show(word_start)}")


model.eval()
for sentence, word in blanks:
    fill_in(model, sentence, word)

# %% [markdown]
# The five best guesses are the most frequent WordPieces of the corpus, `the`, the comma and
# `of` among them, and the list hardly changes from one sentence to the next: at a `[MASK]`, the
# model's first guess is still the frequency guess. (With a vocabulary of whole words, the best
# guesses over *any* piece and over word starts only are the same.) What it has learned of the
# context shows further down its ranking, in the rank of the right answer among the word starts,
# and in aggregate in section 6.6: at the `[MASK]` positions it is {glue:text}`ch6_mask_verdict`
# the unigram guess, {glue:text}`ch6_mask_accuracy:.3f` against {glue:text}`ch6_mask_unigram:.3f`.
# It has only begun to read the sentence. Section 6.9 asks the same of a model that trained
# for longer.
#

# %% [markdown]
# ## 6.8 Save, and reload with `transformers`
#
# A pretrained model is only useful if others can load it. `save_pretrained` writes the Hugging
# Face layout: `config.json` (the `BertConfig` fields under their Hugging Face names) and
# `model.safetensors` (the weights, under the module names of `transformers`' `modeling_bert.py`;
# the tied decoder weight is not stored twice). The tokenizer's `save_pretrained` adds `vocab.txt`
# and `tokenizer_config.json`. We write both into a temporary folder, load the folder with
# `transformers.BertForPreTraining.from_pretrained` (no key is missing or unexpected), and
# check that `transformers` computes the same MLM and NSP logits as our model, and that its
# tokenizer gives the same ids as ours.

# %%
# NBVAL_CHECK_OUTPUT
import transformers

transformers.utils.logging.disable_progress_bar()  # no progress bar while loading
check = eval_dataset.collate([eval_dataset[i] for i in range(16)])
inputs = {k: check[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
text = "The flooding caused severe damage and killed one person."

with tempfile.TemporaryDirectory() as folder:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    print("saved:", sorted(os.listdir(folder)))
    hf_model, info = transformers.BertForPreTraining.from_pretrained(folder, output_loading_info=True)
    hf_tokenizer = transformers.BertTokenizer.from_pretrained(folder)
    reloaded = BertForPreTraining.from_pretrained(folder)           # and back into bertedu
assert not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"]), info

with torch.no_grad():
    ours, theirs, again = model(**inputs), hf_model(**inputs), reloaded(**inputs)
real = inputs["attention_mask"].bool()                              # compare the non-padded positions
torch.testing.assert_close(ours.logits[real], theirs.prediction_logits[real], rtol=1e-4, atol=1e-4)
torch.testing.assert_close(ours.seq_relationship_logits, theirs.seq_relationship_logits, rtol=1e-4, atol=1e-4)
torch.testing.assert_close(ours.logits, again.logits, rtol=0, atol=0)  # bit for bit
assert hf_tokenizer(text)["input_ids"] == tokenizer(text)["input_ids"]
print("transformers loaded", type(hf_model).__name__, "with", sum(p.numel() for p in hf_model.parameters()), "parameters")
print("MLM logits", tuple(theirs.prediction_logits.shape), "and NSP logits",
      tuple(theirs.seq_relationship_logits.shape), "equal ours")

# %% [markdown]
# The temporary folder is gone at the end of the cell. To keep a model, give `save_pretrained`
# a real folder. The command line does the whole chapter in one go and saves the model, its
# tokenizer, the history and the exact command in a folder:
# `python -m bertedu.run_pretraining --output-dir runs/recipe` runs this chapter's recipe, and
# `python -m bertedu.run_pretraining --help` lists every setting (model size, masking rate, steps...).
# An interrupted run continues exactly where it stopped with `--resume`.

# %% [markdown]
# ```{admonition} Coming from d2l?
# :class: note
# d2l's BERT chapter {cite:p}`zhang2023dive` also pretrains on WikiText-2, but with a *word*
# vocabulary (every word seen at least 5 times, the rest `<unk>`) instead of a WordPiece
# vocabulary learned on the text. Its MLM head uses ReLU (ours GELU, like the real
# checkpoints), its NSP labels are the other way round (1 = IsNext there, 0 here), and its MLM
# loss averages over padded prediction slots as well as real ones (Chapter 5), so its printed
# MLM loss is not the mean over the predicted tokens. Ours ignores the padded slots: the loss
# is the mean over exactly the chosen positions. d2l trains for 50 steps and reports the
# training losses only; here we hold out the test split and compare against baselines.
# ```

# %% [markdown]
# ## 6.9 The book's BERT: a longer run
#
# A few minutes of a laptop's CPU teach a BERT the frequencies of the WordPieces, to copy what it
# sees, and to guess NSP a little better than a coin. Reading the context takes longer. The book
# ships a BERT that trained for longer with the same library: `bertedu.run_pretraining.book_model()`
# returns its folder, inside the installed package, with no download and no training. The
# folder holds the model in the Hugging Face layout (so `transformers` loads it too), the run's
# whole history, and `run.json`: the exact command that made it, its seed, and the library's
# commit. A test of the library (`tests/test_book_bert.py`) re-runs that command's first 30
# steps and checks that they give the losses of the shipped history, so the weights are what the
# command makes. Every figure below is computed here, from the shipped weights, on held-out text.

# %%
import shlex

book_folder = book_model()
book_run = json.loads((book_folder / "run.json").read_text())
book_history = json.loads((book_folder / "history.json").read_text())
book = BertForPreTraining.from_pretrained(book_folder)
book_tokenizer = BertTokenizer.from_pretrained(book_folder)
book_options = dict(zip(shlex.split(book_run["command"])[3::2], shlex.split(book_run["command"])[4::2]))
book_steps = len(book_history["train"])
book_seconds = book_history["train"][-1]["seconds"]
book_tokens = sum(r["tokens"] for r in book_history["train"])
book_parameters = sum(p.numel() for p in book.parameters())
c = book.config
print(book_run["command"])
print(f"commit {book_run['commit'][:10]}, seed {book_run['seed']}, {book_run['threads']} thread, {book_run['machine']}")
print(f"L={c.num_hidden_layers} H={c.hidden_size} A={c.num_attention_heads}, vocabulary {c.vocab_size:,}, "
      f"pairs of {c.max_position_embeddings}: {book_parameters:,} parameters")
print(f"{book_steps:,} steps of {book_options['--batch-size']} pairs, {book_tokens:,} WordPieces read, "
      f"{book_seconds / 3600:.1f} hours")
glue("ch6_book_hours", book_seconds / 3600, display=False)
glue("ch6_book_steps", book_steps, display=False)
glue("ch6_book_tokens", book_tokens, display=False)
glue("ch6_book_parameters", book_parameters, display=False)
glue("ch6_book_batch", int(book_options["--batch-size"]), display=False)
glue("ch6_book_mlm_probability", 100 * float(book_options["--mlm-probability"]), display=False)
glue("ch6_book_layers", c.num_hidden_layers, display=False)
glue("ch6_book_hidden", c.hidden_size, display=False)
glue("ch6_book_length", c.max_position_embeddings, display=False)

# %% [markdown]
# It is this chapter's recipe with four changes, each for a reason:
#
# - **Bigger:** {glue:text}`ch6_book_layers:d` blocks of width {glue:text}`ch6_book_hidden:d`, and
#   pairs of {glue:text}`ch6_book_length:d` WordPieces, which give NSP longer segments to compare
#   ({glue:text}`ch6_book_parameters:,d` parameters in all).
# - **Longer:** {glue:text}`ch6_book_steps:,d` steps of {glue:text}`ch6_book_batch:d` pairs,
#   {glue:text}`ch6_book_tokens:,d` WordPieces, {glue:text}`ch6_book_hours:.1f` hours on a 2-core
#   CPU (two processes of one thread each, `torchrun`, with bf16 matrix products).
# - **More masking:** {glue:text}`ch6_book_mlm_probability:.0f`% of the WordPieces are chosen for
#   MLM instead of 15%, still split 80/10/10. Every chosen position is one more prediction to
#   learn from, and a small model trained for hours is starved of predictions more than of
#   context. {cite:t}`wettig2023mask` found that 40% also trains BERT-large better than 15%.
#   The held-out figures below still mask 15%, as BERT does.
# - **A different start for the position embeddings:** the Transformer's sinusoids
#   (`sinusoidal_positions`: row $t$ holds $\sin(t/10000^{2i/H})$ and $\cos(t/10000^{2i/H})$),
#   scaled to a standard deviation of {glue:text}`ch6_book_position_std:.2f` per entry, five times
#   the 0.02 of the word embeddings. BERT *learns* its position embeddings, and so does this
#   model: only their starting value changes, and the result is an ordinary BERT.
#
# Everything else, the loss, the optimizer, the schedule, the vocabulary of 8,000 WordPieces
# learned on the same text, is this chapter's. The last change is the one that matters most, and
# it comes from short pilot runs made before the long one, shipped with it (`pilots.json`).
# Each is chapter 6's small model for one or two thousand steps, with one setting changed:

# %% mystnb={"image": {"alt": "Two panels of pilot runs. Left: held-out accuracy at [MASK] against step; with BERT's start of the position embeddings, at 15% or 40% masking, it stays near 0.06, while with the sinusoidal start it climbs to about 0.15 by step 1,000. Right: held-out MLM loss of the 15% and 40% pilots; the 40% curve is lower at every step."}}
pilots = json.loads((book_folder / "pilots.json").read_text())["runs"]
fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
ax = axes[0]
for key, color in (("m1", "tab:blue"), ("m7", "tab:orange"), ("m10", "tab:red")):
    run = pilots[key]
    ax.plot([e["step"] for e in run["eval"]], [e["mlm_masked_accuracy"] for e in run["eval"]], "o-",
            color=color, label=run["description"].replace("chapter 6's recipe", "recipe"))
ax.axhline(0.06, color="gray", ls="--", lw=1, label="about the unigram guess")
ax.set_xlabel("step")
ax.set_ylabel("held-out accuracy at [MASK]")
ax.set_title("Leaving the plateau: the position embeddings' start")
ax.legend(fontsize=8)
ax = axes[1]
for key, color in (("m1", "tab:blue"), ("m7", "tab:orange")):
    run = pilots[key]
    ax.plot([e["step"] for e in run["eval"]], [e["mlm_loss"] for e in run["eval"]], "o-", color=color,
            label=run["description"].replace("chapter 6's recipe", "recipe"))
ax.set_xlabel("step")
ax.set_ylabel("held-out MLM loss (nats, 15% masked)")
ax.set_title("15% against 40% masked")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
small_15, small_40, sinusoid = pilots["m1"]["eval"], pilots["m7"]["eval"], pilots["m10"]["eval"]
reach = next(e["step"] for e in small_40 if e["mlm_loss"] <= small_15[-1]["mlm_loss"])
at = {e["step"]: e for e in small_40}
plateau_best = max(e["mlm_masked_accuracy"] for key in ("m1", "m2", "m4", "m5", "m6", "m7", "m8") for e in pilots[key]["eval"])
print(f"40% masked reaches after {reach:,} steps the held-out loss that 15% reaches after {small_15[-1]['step']:,}")
print(f"at step {sinusoid[-1]['step']:,}, accuracy at [MASK]: sinusoidal start {sinusoid[-1]['mlm_masked_accuracy']:.3f}, "
      f"BERT's start {at[sinusoid[-1]['step']]['mlm_masked_accuracy']:.3f}; the best of every other pilot: {plateau_best:.3f}")
assert reach < small_15[-1]["step"] and sinusoid[-1]["mlm_masked_accuracy"] > 2 * plateau_best
glue("ch6_pilot_steps_15", small_15[-1]["step"], display=False)
glue("ch6_pilot_steps_40", reach, display=False)
glue("ch6_pilot_sinusoid_step", sinusoid[-1]["step"], display=False)
glue("ch6_pilot_sinusoid_accuracy", sinusoid[-1]["mlm_masked_accuracy"], display=False)
glue("ch6_pilot_plateau_best", plateau_best, display=False)
glue("ch6_book_position_std", float(book_options["--position-std"]), display=False)

# %% [markdown]
# **Where the plateau comes from.** On the left, the accuracy at `[MASK]` of three pilots. With
# BERT's start (random position embeddings with a standard deviation of 0.02, like every other
# weight), it stays on the frequency guess for the whole pilot, and so did every other change we
# tried: the learning rate, the batch size, the scale of all the weights, the plain attention
# kernel instead of the fused one, fp32 instead of bf16, and a sinusoidal start as small as the
# other weights (their best: {glue:text}`ch6_pilot_plateau_best:.3f`). With the sinusoids at five
# times that scale, the accuracy leaves the plateau within a few hundred steps and reaches
# {glue:text}`ch6_pilot_sinusoid_accuracy:.3f` at step {glue:text}`ch6_pilot_sinusoid_step:,d`.
#
# Why? To fill a blank, a model first needs the words *next to* it: a counted table of which
# word follows which already beats the frequency guess. Attention finds a neighbour only through
# the position embeddings: the score of position $j$ seen from position $i$ must be high when
# $j = i \pm 1$, for every $i$. With random, small position vectors there is no such pattern to
# start from, and the gradient that would build one is weak next to the noise, so the model
# spends thousands of steps learning only frequencies and topics: the plateau that chapter 6's
# run shows, and that larger BERTs also sit on before a sudden drop of the loss
# {cite:p}`chen2024sudden`. In the sinusoids, position $t + k$ is the same rotation of position
# $t$ for every $t$, so one linear map of queries and keys can prefer "the next position"
# everywhere at once; at a scale the attention can see, the model finds it quickly.
#
# On the right, the same small model with 15% and 40% masked: 40% reaches in
# {glue:text}`ch6_pilot_steps_40:,d` steps the held-out loss that 15% reaches in
# {glue:text}`ch6_pilot_steps_15:,d`. Here is the whole run of the book's BERT:

# %% mystnb={"image": {"alt": "Three panels over the 3,000 steps of the book's BERT. Left: the training and held-out losses fall, with a steep drop after step 1,000. Middle: accuracy at [MASK] stays near the unigram baseline until about step 750, then climbs to about 0.23; a first attempt with BERT's position start stays on the baseline until it was stopped. Right: NSP accuracy rises from about 0.5 to about 0.76, above the majority baseline."}}
book_evals = book_history["eval"]
e_steps = [e["step"] for e in book_evals]
train_steps = np.array([r["step"] for r in book_history["train"]])
train_losses = np.array([r["loss"] for r in book_history["train"]])
report = book_bert_report(book, book_tokenizer, BOOK_BERT / "cloze.tsv")
m, b = report["metrics"], report["baselines"]


def leaves_plateau(evals, key, baseline, margin=0.01):
    # the first evaluation from which every later one beats baseline + margin, or None
    above = [e[key] > baseline + margin for e in evals]
    return next((evals[i]["step"] for i in range(len(above)) if all(above[i:])), None)


book_leaves = leaves_plateau(book_evals, "mlm_masked_accuracy", b["mlm_masked_unigram_accuracy"])
fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
ax = axes[0]
ax.plot(train_steps[49:], np.convolve(train_losses, np.ones(50) / 50, mode="valid"), lw=2,
        label="training loss (mean of 50 steps; 40% masked)")
ax.plot(e_steps, [e["mlm_loss"] + e["nsp_loss"] for e in book_evals], "o-", color="tab:red",
        label="held-out MLM + NSP loss (15% masked)")
ax.set_xlabel("step")
ax.set_ylabel("cross-entropy (nats)")
ax.set_title("Losses")
ax.legend(fontsize=10)
ax = axes[1]
ax.plot(e_steps, [e["mlm_masked_accuracy"] for e in book_evals], "^-", color="tab:brown",
        label="held-out accuracy at [MASK]")
ax.axhline(b["mlm_masked_unigram_accuracy"], color="tab:brown", ls="--", lw=1,
           label="unigram baseline at [MASK]")
first_try = pilots["long1"]["eval"]  # the same run with BERT's start of the position embeddings
ax.plot([e["step"] for e in first_try], [e["mlm_masked_accuracy"] for e in first_try], "x:", color="gray",
        label="same run, BERT's position start (stopped)")
if book_leaves is not None:
    ax.axvline(book_leaves, color="gray", ls=":", lw=1.5, label="leaves the plateau")
ax.set_xlabel("step")
ax.set_ylabel("accuracy")
ax.set_title("Masked language model")
ax.set_ylim(0, None)
ax.legend(fontsize=10)
ax = axes[2]
ax.plot(e_steps, [e["nsp_accuracy"] for e in book_evals], "s-", color="tab:green",
        label="held-out NSP accuracy")
ax.axhline(b["nsp_majority_accuracy"], color="k", ls="--", lw=1, label="majority baseline")
ax.set_xlabel("step")
ax.set_ylabel("accuracy over the pairs")
ax.set_title("Next-sentence prediction")
ax.legend(fontsize=10)
fig.tight_layout()
plt.show()
assert book_leaves is not None
print(f"[MASK] accuracy stays above its baseline from step {book_leaves:,} on "
      f"(evaluations every {e_steps[1] - e_steps[0]} steps on {len(eval_dataset)} held-out pairs)")
glue("ch6_book_leaves", book_leaves, display=False)
same_step = {e["step"]: e for e in book_evals}[first_try[-1]["step"]]
glue("ch6_first_try_steps", first_try[-1]["step"], display=False)
glue("ch6_first_try_accuracy", first_try[-1]["mlm_masked_accuracy"], display=False)
glue("ch6_book_at_first_try", same_step["mlm_masked_accuracy"], display=False)
glue("ch6_book_leaves_share", 100 * book_leaves / book_steps, display=False)

# %% [markdown]
# The curves of a run that leaves the plateau. For the first {glue:text}`ch6_book_leaves:,d`
# steps ({glue:text}`ch6_book_leaves_share:.0f`% of the run) the accuracy at `[MASK]` sits on the
# frequency guess, as in our few-minute run: the loss falls, but only as the model learns
# frequencies, copying and topics. Then the accuracy at `[MASK]` climbs away from its baseline
# and keeps climbing to the end, while the learning rate decays: the model has started to use
# the words around a blank. NSP rises as well, on the representations that MLM builds. The gray
# crosses are a first attempt with the same model, data, batch and masking, but BERT's own start
# of the position embeddings (and a schedule planned for 4,500 steps):
# after {glue:text}`ch6_first_try_steps:,d` steps it was still on the plateau
# ({glue:text}`ch6_first_try_accuracy:.3f` at `[MASK]`, against {glue:text}`ch6_book_at_first_try:.3f`
# for the shipped run at the same step), and we stopped it.
#
# The final figures, on {glue:text}`ch6_book_eval_pairs:,d` held-out pairs of the test split
# ({glue:text}`ch6_book_mask_positions:,d` `[MASK]` positions), next to the baselines:

# %%
rows = [
    ("MLM accuracy at [MASK]", m["mlm_masked_accuracy"], "always the most frequent token", b["mlm_masked_unigram_accuracy"]),
    ("MLM accuracy, all chosen", m["mlm_accuracy"], "copy what is shown, else the most frequent", b["mlm_context_free_accuracy"]),
    ("NSP accuracy", m["nsp_accuracy"], "always the majority label", b["nsp_majority_accuracy"]),
    ("cloze probes, answer in top 5", report["cloze_top5"], "the 5 most frequent tokens", report["cloze_top5_frequency_baseline"]),
]
print(f"{'':<31} {'book BERT':>9}   {'baseline':>8}")
for name, ours_value, baseline_name, baseline_value in rows:
    print(f"{name:<31} {ours_value:9.3f}   {baseline_value:8.3f}  ({baseline_name})")
print(f"held-out MLM loss {m['mlm_loss']:.3f} nats: perplexity {math.exp(m['mlm_loss']):.0f}")
assert m["mlm_masked_accuracy"] >= 2 * b["mlm_masked_unigram_accuracy"]
assert m["mlm_accuracy"] > b["mlm_context_free_accuracy"] + 0.05
nsp_se = math.sqrt(b["nsp_majority_accuracy"] * (1 - b["nsp_majority_accuracy"]) / report["n_eval_pairs"])
assert m["nsp_accuracy"] > b["nsp_majority_accuracy"] + 3 * nsp_se
assert report["cloze_top5"] > report["cloze_top5_frequency_baseline"]
glue("ch6_book_eval_pairs", report["n_eval_pairs"], display=False)
glue("ch6_book_mask_positions", report["n_mask_positions"], display=False)
glue("ch6_book_mask_accuracy", m["mlm_masked_accuracy"], display=False)
glue("ch6_book_mask_unigram", b["mlm_masked_unigram_accuracy"], display=False)
glue("ch6_book_mask_ratio", m["mlm_masked_accuracy"] / b["mlm_masked_unigram_accuracy"], display=False)
glue("ch6_book_mlm_accuracy", m["mlm_accuracy"], display=False)
glue("ch6_book_context_free", b["mlm_context_free_accuracy"], display=False)
glue("ch6_book_nsp", m["nsp_accuracy"], display=False)
glue("ch6_book_nsp_majority", b["nsp_majority_accuracy"], display=False)
glue("ch6_book_perplexity", math.exp(m["mlm_loss"]), display=False)
glue("ch6_book_cloze", report["cloze_top5"], display=False)
glue("ch6_book_cloze_hits", sum(c["hit"] for c in report["cloze"]), display=False)
glue("ch6_book_cloze_n", len(report["cloze"]), display=False)
glue("ch6_book_cloze_baseline", report["cloze_top5_frequency_baseline"], display=False)

# %% [markdown]
# At a `[MASK]` the book's BERT is right {glue:text}`ch6_book_mask_accuracy:.3f` of the time,
# {glue:text}`ch6_book_mask_ratio:.1f` times the {glue:text}`ch6_book_mask_unigram:.3f` of the
# frequency guess; over all chosen positions it beats the context-free baseline, which copies
# what is shown (this chapter's few-minute model barely did). Its NSP accuracy is
# {glue:text}`ch6_book_nsp:.3f`, against {glue:text}`ch6_book_nsp_majority:.3f` for the majority
# label. The cell asserts each comparison, so a broken model or a broken evaluation fails it.
#
# **Cloze probes.** Before the run started, we wrote {glue:text}`ch6_book_cloze_n:d` sentences with
# one blank each, general knowledge and Wikipedia style ("the second world [MASK] ended in 1945
# ."), in `bertedu/book_bert/cloze.tsv`, and never changed them after seeing the model (two whose
# answers the learned vocabulary splits into pieces were replaced before training). The model has
# the answer among its five best guesses for {glue:text}`ch6_book_cloze_hits:d` of them
# ({glue:text}`ch6_book_cloze:.2f`); the five most frequent tokens would contain it for
# {glue:text}`ch6_book_cloze_baseline:.2f`. Here is every probe, with the rank of the answer:

# %%
for result in sorted(report["cloze"], key=lambda r: r["rank"]):
    mark = "+" if result["hit"] else " "
    print(f"{mark} {result['rank']:5d}  {result['sentence']:<68} [{result['answer']}]  top 5: {' '.join(result['top'])}")

# %% [markdown]
# Read the list from the top. The probes it gets are those where the blank is fixed by the words
# right next to it, in a phrase that Wikipedia articles repeat: "united states", "american civil
# war", "12th century", "studio album", "new york times". The probes it misses need a fact that
# the neighbouring words do not give away ("the capital of italy is ..."), or a frame that
# WikiText-2's two million words rarely use ("water freezes at zero ..."). Its guesses there are
# often words of the right kind, nouns where a noun belongs, but not the right noun, and the
# text it read shows through: after "the second world" its first guesses are sports words
# ("team", "game", "club"), and "war" comes later. A phrase seen often is learned first; a fact
# needs far more text. That is the distance between a model of {glue:text}`ch6_book_hours:.1f` hours on a 2-core CPU
# and one of 4 days on 16 TPU chips.
#
# The same held-out sentences as in section 6.7, now for the book's BERT (its own vocabulary):

# %%
masked_blanks = []
for sentence, word in blanks:
    words = sentence.lower().split()
    words[words.index(word)] = "[MASK]"
    masked_blanks.append((" ".join(words), word))
for result in cloze_predictions(book, book_tokenizer, masked_blanks):
    print(f"{result['sentence']}\n    answer {result['answer']!r}: rank {result['rank']}, "
          f"top 5: {', '.join(result['top'])}")

# %% [markdown]
# **Against BERT-base.** The book's BERT has left the plateau, and it is still a small model
# that has read little. The paper's BERT-base has 110M parameters against
# {glue:text}`ch6_book_parameters:,d`, read about $1.3 \times 10^{11}$ tokens against
# {glue:text}`ch6_book_tokens:,d`, and trained for 4 days on 16 TPU chips against
# {glue:text}`ch6_book_hours:.1f` hours on a 2-core CPU. Its NSP accuracy was 97% to 98% (ours
# {glue:text}`ch6_book_nsp:.2f`). The paper gives no held-out MLM figure; RoBERTa
# {cite:p}`liu2019roberta` reports a held-out perplexity of about 4 for a BERT-base-sized model
# pretrained like BERT (its Table 3; a vocabulary of 50,000 pieces, so the figure is only a rough
# guide), where ours is {glue:text}`ch6_book_perplexity:.0f` (over 8,000 pieces, at the chosen
# positions). Part II fine-tunes MiniLM {cite:p}`wang2020minilm`, a real pretrained checkpoint,
# for its results; chapters 12 and 15 use the book's BERT where it matters that we know
# everything it ever read.

# %% [markdown]
# ## 6.10 What the real thing cost
#
# The numbers in the left column are the paper's (section 3.1 and appendix A.2); the right
# column is this notebook's run.
#
# | | BERT (the paper) | this chapter |
# |---|---|---|
# | corpus | BooksCorpus (800M words) + English Wikipedia (2,500M words) = 3.3B words | WikiText-2 {glue:text}`ch6_train_split`, {glue:text}`ch6_corpus_words:,d` words |
# | model | BERT-base 110M, BERT-large 340M parameters | {glue:text}`ch6_n_parameters:,d` parameters |
# | steps | 1,000,000 | {glue:text}`ch6_max_steps:,d` |
# | batch | 256 sequences of up to 512 tokens ("128,000 tokens/batch") | {glue:text}`ch6_batch_size:d` pairs of up to {glue:text}`ch6_max_seq_length:d` WordPieces |
# | tokens read | up to $1{,}000{,}000 \times 256 \times 512 \approx 1.3 \times 10^{11}$ | {glue:text}`ch6_train_tokens:,d` |
# | passes over the corpus | "approximately 40 epochs" | {glue:text}`ch6_epochs:.1f` epochs |
# | hardware and time | 4 days on 4 Cloud TPUs (16 TPU chips) for base, 16 Cloud TPUs (64 chips) for large | {glue:text}`ch6_train_seconds:.0f` seconds on this machine's CPU |

# %%
paper_words = 800e6 + 2_500e6             # BooksCorpus + English Wikipedia (the paper's figures)
paper_tokens = 1_000_000 * 256 * 512      # steps x sequences x tokens, as the paper states them
paper_tokens_128 = 1_000_000 * 256 * (0.9 * 128 + 0.1 * 512)  # 90% of the steps at length 128
words_ratio = paper_words / n_words
tokens_ratio = paper_tokens / n_tokens
print(f"the paper's corpus is {words_ratio:,.0f} times ours; it read {tokens_ratio:,.0f} times "
      f"(or, at length 128 for 90% of the steps, {paper_tokens_128 / n_tokens:,.0f} times) as many tokens")
glue("ch6_words_ratio", words_ratio, display=False)
glue("ch6_tokens_ratio", tokens_ratio, display=False)
glue("ch6_tokens_ratio_128", paper_tokens_128 / n_tokens, display=False)
glue("ch6_size_ratio", 110e6 / n_parameters, display=False)  # BERT-base: 110M (the paper)

# %% [markdown]
# BERT's corpus is about {glue:text}`ch6_words_ratio:,.0f` times ours, and BERT read about
# {glue:text}`ch6_tokens_ratio:,.0f` times as many tokens as our run. (The paper states its
# batch as 256 sequences of 512 tokens. It also says that 90% of the steps used sequences of
# 128 tokens, to save time, and only the last 10% used 512 to learn the later position
# embeddings. Counted that way, the factor is about {glue:text}`ch6_tokens_ratio_128:,.0f`.)
# And each of BERT-base's tokens went through a model about {glue:text}`ch6_size_ratio:.0f` times larger than ours. Our model is
# small because the budget is a few minutes of a laptop's CPU; it is not a model to fine-tune.
# For Part II we start from the real pretrained checkpoint, MiniLM
# {cite:p}`wang2020minilm`, which was itself distilled from a large pretrained model.

# %% [markdown]
# ## 6.11 What BERT was judged on: GLUE
#
# Pretraining is judged by what it enables: fine-tuned on a task, does the model do well? The
# BERT paper's main test is **GLUE**, the General Language Understanding Evaluation benchmark
# {cite:p}`wang2018glue`: nine English tasks on one sentence or on a pair of sentences, each with
# its own training set (from a few hundred to hundreds of thousands of examples) and its own
# metric. A model is fine-tuned on each task separately, and the GLUE score is the average of
# the task scores. The tasks in **bold** are the ones Part II of this book fine-tunes on.
#
# | task | input | what the model must tell | metric | training examples |
# |---|---|---|---|---|
# | CoLA | one sentence | is it grammatical English? | Matthews correlation | 8.5k |
# | **SST-2** | one sentence (a movie review) | positive or negative sentiment | accuracy | 67k |
# | **MRPC** | two sentences (news) | is one a paraphrase of the other? | F1 and accuracy | 3.7k |
# | **STS-B** | two sentences | how similar are they, from 0 to 5 (regression) | Pearson and Spearman correlation | 5.7k |
# | QQP | two Quora questions | do they ask the same thing? | F1 and accuracy | 364k |
# | MNLI | premise and hypothesis | entailment, contradiction or neutral | accuracy (matched and mismatched genres) | 393k |
# | QNLI | question and sentence | does the sentence contain the answer? | accuracy | 105k |
# | **RTE** | premise and hypothesis | does the premise entail the hypothesis? | accuracy | 2.5k |
# | WNLI | two sentences | a pronoun resolution task cast as entailment | accuracy | 0.6k |
#
# Seven of the nine tasks are about a *pair* of sentences (all but CoLA and SST-2): this is what NSP and the
# `[CLS] A [SEP] B [SEP]` input prepare for. The paper reports a GLUE average (without WNLI,
# whose test set it found problematic) of 79.6 for BERT-base and 82.1 for BERT-large, ahead of
# every earlier model. Our {glue:text}`ch6_n_parameters:,d`-parameter model, with its held-out
# NSP accuracy of {glue:text}`ch6_nsp_accuracy:.2f`, is in no position to be tested on GLUE;
# it shows the mechanism, not the result.

# %% [markdown]
# ## Summary
#
# - **The loss** of pretraining is the sum of two cross-entropies: the MLM loss, averaged over
#   exactly the chosen positions of the batch, and the NSP loss, averaged over the pairs. An
#   untrained model starts at $\ln V + \ln 2$ (here {glue:text}`ch6_ln_v_ln_2:.2f`). Scoring the
#   vocabulary at the chosen positions only gives the same loss faster.
# - **The recipe** scales BERT-base down by one or two orders of magnitude in every direction:
#   {glue:text}`ch6_n_parameters:,d` parameters, {glue:text}`ch6_word_embedding_share:.0f`% of them
#   the word embeddings, a vocabulary of {glue:text}`ch6_vocab_size:,d` WordPieces,
#   {glue:text}`ch6_max_steps:,d` steps of
#   {glue:text}`ch6_batch_size:d` pairs, with AdamW and a learning rate that warms up for
#   {glue:text}`ch6_warmup_steps:d` steps and then decays linearly to 0.
# - **The run** took {glue:text}`ch6_train_seconds:.0f` seconds on the CPU. On held-out text, the
#   MLM accuracy reached {glue:text}`ch6_mlm_accuracy:.3f` against {glue:text}`ch6_unigram_accuracy:.3f`
#   for always predicting {glue:text}`ch6_unigram_token`, and the NSP accuracy reached
#   {glue:text}`ch6_nsp_accuracy:.3f` against a majority baseline of
#   {glue:text}`ch6_majority_accuracy:.3f` on the curves' sample, and
# {glue:text}`ch6_nsp_all_accuracy:.3f` over all {glue:text}`ch6_nsp_all_pairs:,d` held-out pairs,
# {glue:text}`ch6_nsp_z:.1f` standard errors above the majority label there. The MLM
#   loss falls fast, then slowly; the NSP accuracy {glue:text}`ch6_nsp_story`.
# - **What it learned:** first the frequencies of the WordPieces and to copy the token it sees;
#   then, slowly, to use the context. At the `[MASK]` positions, where only the context can help,
#   it is {glue:text}`ch6_mask_verdict` the unigram guess ({glue:text}`ch6_mask_accuracy:.3f`
#   against {glue:text}`ch6_mask_unigram:.3f`): its accuracy there {glue:text}`ch6_mask_story`.
#   A vocabulary learned with frequency merges keeps the common words whole
#   ({glue:text}`ch6_whole_frequency:.2f` of the running words, against
#   {glue:text}`ch6_whole_likelihood:.2f` with WordPiece's likelihood score).
# - **The book's BERT**, the same code run for {glue:text}`ch6_book_hours:.1f` hours with 40% of
#   the WordPieces masked, leaves the plateau after {glue:text}`ch6_book_leaves:,d` steps: at
#   `[MASK]` it is right {glue:text}`ch6_book_mask_accuracy:.3f` of the time against
#   {glue:text}`ch6_book_mask_unigram:.3f` for the frequency guess, its NSP accuracy is
#   {glue:text}`ch6_book_nsp:.3f`, and {glue:text}`ch6_book_cloze_hits:d` of
#   {glue:text}`ch6_book_cloze_n:d` cloze probes written before training have their answer in its
#   top 5. `bertedu.run_pretraining.book_model()` returns it, with the command that made it.
# - **The checkpoint** is a Hugging Face folder (`config.json`, `model.safetensors`, `vocab.txt`):
#   `transformers.BertForPreTraining.from_pretrained` loads it and computes the same logits.
# - **The real thing** read about {glue:text}`ch6_tokens_ratio:,.0f` times more tokens, with a model
#   {glue:text}`ch6_size_ratio:.0f` times larger, for 4 days on 16 TPU chips. It was judged by fine-tuning on **GLUE**, nine
#   sentence and sentence-pair tasks; Part II fine-tunes on four of them.
#
# ## Exercises
#
# The exercises for this chapter are the nbgrader assignment `exercises/source/06_pretraining/06_pretraining.ipynb`, with reference solutions. `make exercises` writes the student version, without them, to `exercises/release/06_pretraining/`; instructors, see the guide "Teaching with this book".
