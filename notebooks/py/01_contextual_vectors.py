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
# # 1. From words to contextual vectors
#
# A computer cannot read the word "bank"; it reads numbers. The first step of every neural
# language model is to turn each word into a vector. For years the standard was one fixed
# vector per word. BERT gives a word a different vector in every sentence, computed from
# the whole sentence around it. This chapter shows why that matters, how the field got
# there, and what it looks like inside a real pretrained BERT.

# %% [markdown]
# ## What you will be able to do
#
# - Explain the **pre-train / fine-tune** paradigm: learn from unlabeled text once, at great
#   cost, then adapt cheaply to many labeled tasks.
# - Say what a **static embedding** (word2vec, GloVe, BERT's own input table) is, and why one
#   vector per word fails for words with several senses, such as "bank", "stick" or "apple".
# - Explain what a **contextual embedding** is, and place ELMo, ULMFiT, the Transformer,
#   OpenAI GPT and BERT on a timeline, each with its key idea.
# - Load a real BERT checkpoint with `bertedu`, pull out the vector of one word in many
#   sentences (averaging its WordPieces when it is split), and **measure** with cosine
#   similarities that the vectors group by word sense.

# %% [markdown]
# ## Setup
#
# Every chapter starts the same way: imports, fixed seeds, and one switch. `FULL`
# (set the environment variable `BERTEDU_FULL=1`) selects the full-size experiment in the
# chapters that have one. Everything in this chapter runs in seconds on a laptop CPU, so
# here `FULL` changes nothing; the same numbers come out either way.

# %%
import os
import random
import re

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from myst_nb import glue

import bertedu
from bertedu import BertModel
from bertedu.tokenization import BertTokenizer

# %config InlineBackend.figure_format = 'png'
plt.rcParams.update({"font.size": 12, "axes.titlesize": 13})

random.seed(0)
np.random.seed(0)
torch.manual_seed(0)
FULL = os.environ.get("BERTEDU_FULL", "0") == "1"  # no effect in this chapter

# %% [markdown]
# ## 1.1 Pre-train once, fine-tune many times
#
# Labeled data is scarce and costly: someone has to read each SMS and mark it spam or not,
# or mark every person's name in a news story. Unlabeled text is nearly free: the web,
# Wikipedia and books hold billions of words. The **pre-train / fine-tune** paradigm uses
# both:
#
# | stage | data | objective | cost | how often |
# |---|---|---|---|---|
# | pre-training | billions of words of raw text | predict words from their context (a *self-supervised* task: the text is its own label) | high: days on many accelerators | once, by whoever publishes the checkpoint |
# | fine-tuning | a few thousand labeled examples | the task itself (spam or not, entity tags, answer spans...) | low: minutes to hours on one GPU | once per task, by anyone |
#
# To predict a hidden word well, a model has to learn a lot about language: syntax, word
# meanings, facts about the world. Fine-tuning then reuses all of it. The BERT paper states
# the costs plainly. Pre-training used BooksCorpus (800M words) and English Wikipedia
# (2,500M words), and took 4 days on 16 TPU chips for BERT-base and 4 days on 64 chips for
# BERT-large. Fine-tuning, by contrast, is "relatively inexpensive": every result in the
# paper "can be replicated in at most 1 hour on a single Cloud TPU, or a few hours on a
# GPU, starting from the exact same pre-trained model" {cite:p}`devlin2019bert`.
#
# The checkpoint used in this book went through the same chain. `all-MiniLM-L6-v2` is a
# small BERT: a compact model distilled from a larger pretrained Transformer (MiniLM,
# {cite:t}`wang2020minilm`), then fine-tuned by the sentence-transformers project
# {cite:p}`reimers2019sentence` on about a billion sentence pairs to produce good sentence
# vectors. We use it because it is real, small
# enough for a CPU, and in the standard BERT format. It is uncased: "Apple" and "apple" are
# the same token to it.

# %%
# NBVAL_CHECK_OUTPUT
folder = bertedu.minilm_path()
tokenizer = BertTokenizer.from_pretrained(folder)
model = BertModel.from_pretrained(folder)  # from_pretrained returns the model in eval mode
config = model.config
n_params = sum(p.numel() for p in model.parameters())
print(f"layers L = {config.num_hidden_layers}, width H = {config.hidden_size}, "
      f"heads A = {config.num_attention_heads}, vocabulary V = {config.vocab_size}")
print(f"parameters: {n_params:,}")

# %%
glue("ch1_num_layers", config.num_hidden_layers, display=False)
glue("ch1_hidden_size", config.hidden_size, display=False)
glue("ch1_vocab_size", config.vocab_size, display=False)
glue("ch1_num_params_millions", n_params / 1e6, display=False)

# %% [markdown]
# The checkpoint has {glue:text}`ch1_num_layers` layers that each produce vectors of width
# {glue:text}`ch1_hidden_size`, a vocabulary of {glue:text}`ch1_vocab_size` WordPiece
# tokens, and {glue:text}`ch1_num_params_millions:.1f` million parameters (BERT-base, for
# comparison, has 110M according to its paper).
#
# ## 1.2 Static embeddings: one vector per word
#
# A **static embedding** is a table $E \in \mathbb{R}^{V \times H}$ with one row per word of
# a vocabulary of size $V$. The vector of word $w$ is its row, $\mathbf{v}_w = E[w]$,
# whatever sentence $w$ appears in. The table is learned from unlabeled text, following
# the *distributional hypothesis*: words that occur in similar contexts get similar
# vectors.
#
# - **word2vec** {cite:p}`mikolov2013distributed`, skip-gram with negative sampling: for a word $w$
#   and a word $c$ seen near it, push $\mathbf{v}_w$ towards $c$'s context vector
#   $\mathbf{u}_c$ and away from $k$ randomly drawn words $n_1, \dots, n_k$:
#   $$\log \sigma(\mathbf{u}_c^\top \mathbf{v}_w) + \sum_{j=1}^{k} \log \sigma(-\mathbf{u}_{n_j}^\top \mathbf{v}_w).$$
# - **GloVe** {cite:p}`pennington2014glove` fits dot products to the logarithm of the
#   co-occurrence count $X_{ij}$ (how often word $j$ appears near word $i$ in the corpus),
#   with a weight $f$ that damps rare pairs and caps very frequent ones:
#   $$\sum_{i,j} f(X_{ij}) \left(\mathbf{w}_i^\top \tilde{\mathbf{w}}_j + b_i + \tilde{b}_j - \log X_{ij}\right)^2.$$
#
# Both give one vector per word *type*. A word with two senses gets a single vector, a
# blend of its senses weighted by how often each occurs in the training text.
#
# BERT has such a table too: its **input word embedding** `embeddings.word_embeddings`,
# the first thing every token passes through. Before any layer has looked at the
# sentence, a token is just its row of this table. Here is the row of "bank", and the
# tokens whose rows are closest to it by cosine similarity,
# $\cos(\mathbf{a}, \mathbf{b}) = \mathbf{a}^\top \mathbf{b} / (\lVert\mathbf{a}\rVert\,\lVert\mathbf{b}\rVert)$.

# %%
E = model.embeddings.word_embeddings.weight.detach()  # (V, H): the static table
E_unit = F.normalize(E, dim=-1)  # unit rows, so a dot product is a cosine


def static_vector(word):
    # A static vector is a single row: look the token up, ignore any context.
    return E[tokenizer.convert_tokens_to_ids(word)]


def nearest_tokens(word, k=10):
    # Cosine of `word`'s row with every row of the table; the word itself is dropped.
    sims = E_unit @ F.normalize(static_vector(word), dim=0)  # (V,)
    best = sims.topk(k + 1).indices.tolist()
    return [t for t in tokenizer.convert_ids_to_tokens(best) if t != word][:k]


print(f"'bank' -> row {tokenizer.convert_tokens_to_ids('bank')} of E, a vector of shape "
      f"{tuple(static_vector('bank').shape)}")

# %%
# NBVAL_CHECK_OUTPUT
for word in ["bank", "apple", "stick"]:
    print(f"{word:>6}: {', '.join(nearest_tokens(word, 12))}")


# %%
def static_cos(a, b):
    return F.cosine_similarity(static_vector(a), static_vector(b), dim=0).item()


bank_money, bank_river = static_cos("bank", "money"), static_cos("bank", "river")
glue("ch1_static_bank_money", bank_money, display=False)
glue("ch1_static_bank_river", bank_river, display=False)
# The finance sense dominates the static row of "bank": it sits closer to "money".
assert bank_money > bank_river + 0.05, (bank_money, bank_river)
print(f"cos(bank, money) = {bank_money:.3f}   cos(bank, river) = {bank_river:.3f}")

# %% [markdown]
# The table shows the problem. The neighbours of "bank" are other forms of the word and
# money words, and $\cos(\text{bank}, \text{money}) =$
# {glue:text}`ch1_static_bank_money:.2f` against $\cos(\text{bank}, \text{river}) =$
# {glue:text}`ch1_static_bank_river:.2f`: the money sense dominates the single vector, and
# no river word is among its nearest neighbours. The neighbours of "apple" mix both of its
# senses (*iphone*, *itunes*, *macintosh* next to *apples* and *fruit*): one vector sits
# somewhere between the company and the fruit. "stick" leans to the verb
# (*sticking*, *stuck*, *adhere*, *grip*): of its twelve neighbours, only *sticks* can be a
# form of the noun (it can also be the verb), and none is a word for a branch or a rod.
#
# Whatever the sentence, a static embedding hands the same vector to the next layer, and
# that layer has to sort out the sense on its own. In "I sat on the bank of the river" and
# "I paid the cash into the bank", the row is identical.
#
# ## 1.3 Contextual vectors, and how the field got there
#
# A **contextual embedding** is computed from the whole sentence: an encoder $f_\theta$
# reads all the tokens $w_1, \dots, w_n$ at once and returns one vector per position,
#
# $$(\mathbf{h}_1, \dots, \mathbf{h}_n) = f_\theta(w_1, \dots, w_n), \qquad \mathbf{h}_i \in \mathbb{R}^H,$$
#
# so $\mathbf{h}_i$ depends on $w_i$ *and* on its neighbours. "bank" next to "river" and
# "bank" next to "loan" get different vectors. The static table is still there, as the
# first step of $f_\theta$; the layers on top mix in the context.
#
# Five papers in under two years turned this idea into the standard way of doing NLP.

# %% mystnb={"image": {"alt": "Timeline: word2vec 2013, GloVe 2014, Transformer 2017, ULMFiT, ELMo, OpenAI GPT and BERT in 2018"}}
# name, date, kind, key idea: the dates are those of the papers' first public versions
events = [
    ("word2vec", "Jan 2013", "static", "one vector per word,\nfrom nearby words"),
    ("GloVe", "Oct 2014", "static", "one vector per word,\nfrom co-occurrence counts"),
    ("Transformer", "Jun 2017", "architecture", "self-attention\nencoder-decoder"),
    ("ULMFiT", "Jan 2018", "LSTM", "fine-tune a pretrained\nLSTM language model"),
    ("ELMo", "Feb 2018", "LSTM", "features from two\nLSTM LMs (-> and <-)"),
    ("OpenAI GPT", "Jun 2018", "transformer", "Transformer decoder,\nleft to right, fine-tuned"),
    ("BERT", "Oct 2018", "transformer", "Transformer encoder,\nbidirectional via masking"),
]
colors = {"static": "tab:gray", "architecture": "tab:purple", "LSTM": "tab:orange",
          "transformer": "tab:blue"}
legend_names = {"static": "static embeddings", "architecture": "new architecture",
                "LSTM": "pretrained LSTMs", "transformer": "pretrained Transformers"}

fig, ax = plt.subplots(figsize=(13, 4.4))
ax.axhline(0, color="black", lw=1, zorder=1)
seen = set()
for i, (name, date, kind, idea) in enumerate(events):
    up = 1 if i % 2 == 0 else -1  # alternate above and below the line
    ax.scatter(i, 0, s=140, color=colors[kind], zorder=3,
               label=None if kind in seen else legend_names[kind])
    seen.add(kind)
    ax.plot([i, i], [0, 0.3 * up], color=colors[kind], lw=1.5, zorder=2)
    bold_name = r"$\bf{" + name.replace(" ", r"\ ") + "}$"  # mathtext bold
    ax.text(i, 0.35 * up, f"{bold_name}\n{date}\n{idea}", ha="center", fontsize=11.5,
            va="bottom" if up > 0 else "top", linespacing=1.3)
ax.set_xlim(-0.6, len(events) - 0.4)
ax.set_ylim(-1.0, 1.0)
ax.set_yticks([])
ax.set_xticks([])
for side in ("left", "right", "top", "bottom"):
    ax.spines[side].set_visible(False)
ax.set_title("From static word vectors to BERT (in order of publication, not to scale)")
ax.legend(loc="lower center", fontsize=11, frameon=False, bbox_to_anchor=(0.5, -0.12), ncol=4)
plt.show()


# %% [markdown]
# **ELMo** {cite:p}`peters2018deep`: *Embeddings from Language Models*. Two multi-layer LSTM
# language models are trained on a large corpus, one reading left to right, one right to
# left. The vector of a word is a learned weighted sum of their layers at its position, so
# it depends on the sentence. ELMo is *feature-based*: the vectors are fed into an existing
# task model, and the language models stay frozen. Its bidirectionality is shallow: each
# direction is trained on its own, and their states are simply concatenated.
#
# **ULMFiT** {cite:p}`howard2018universal`: *Universal Language Model Fine-tuning*. Pre-train an
# LSTM language model on Wikipedia, fine-tune it as a language model on the target domain's
# text, then fine-tune it with a classifier on top. Tricks such as a different learning
# rate per layer and unfreezing the layers one at a time keep fine-tuning from erasing
# what pre-training learned. ULMFiT made *fine-tuning the whole pretrained model* work for
# NLP, as ImageNet pre-training had for vision.
#
# **The Transformer** {cite:p}`vaswani2017attention`: an encoder-decoder for translation made only of
# attention and feed-forward layers, no recurrence. Every position attends to every other
# in one step, and the whole sequence is processed in parallel, which makes much larger
# models trainable. Chapter 4 builds it.
#
# **OpenAI GPT** {cite:p}`radford2018improving`: a 12-layer Transformer *decoder* pre-trained as a
# left-to-right language model on BooksCorpus, maximising
# $\sum_t \log p(w_t \mid w_1, \dots, w_{t-1})$, then fine-tuned on each task, with the task's
# input written as one token sequence. A causal mask hides the future, so the vector of
# word $t$ sees only the words before it: in "the bank of the river", "bank" cannot see
# "river".
#
# **BERT** {cite:p}`devlin2019bert`: a Transformer *encoder*, so every position sees the whole
# sentence, in every layer. A left-to-right objective cannot train that: with both sides
# visible, each word would indirectly see itself. BERT hides words instead: it chooses 15%
# of the tokens, replaces most of them by `[MASK]`, and predicts them from both sides, the
# *masked language model*
# $\sum_{t \in \text{masked}} \log p(w_t \mid \tilde{w}_1, \dots, \tilde{w}_n)$, plus a
# next-sentence prediction task. In the paper's words, BERT is "designed to pre-train deep
# bidirectional representations from unlabeled text by jointly conditioning on both left
# and right context in all layers". Fine-tuned with one small output layer, it set new
# records on eleven tasks. Chapters 5 and 6 build its pre-training.
#
# ```{admonition} Common misconceptions
# :class: warning
# Popular explanations of BERT often get a few facts wrong. What the paper
# {cite:p}`devlin2019bert` and the later chapters show:
#
# - **BERT is a stack of Transformer *encoder* blocks, not decoder blocks.** It keeps only the
#   encoder of the Transformer: no causal mask, so every token attends to every other token, left
#   and right, in every layer. GPT is the decoder stack. Section 4.9 puts the two masks side by side.
# - **BERT-base has 12 layers and BERT-large 24** (BERT-base: $L = 12$, $H = 768$, $A = 12$;
#   BERT-large: $L = 24$, $H = 1024$, $A = 16$). Section 4.8 counts their parameters.
# - **A token's vector in BERT-base is 768 numbers wide, 1,024 in BERT-large**, in every layer.
#   128 is not BERT's width: it is the size of ALBERT's factorised word embeddings, $E = 128$
#   {cite:p}`lan2020albert` (section 13.3), or the width of a small model made to train on a
#   laptop. The MiniLM checkpoint of this chapter is {glue:text}`ch1_hidden_size` wide.
# - **Question answering on SQuAD is not a three-way tag per token.** The model gives every token
#   of the passage two scores, one for starting the answer and one for ending it, and the answer
#   is the best-scoring span (section 11.3). Tags such as B/I/O belong to named entity recognition
#   (Chapter 10), not to SQuAD.
# ```

# %% [markdown]
# ## 1.4 Seeing context: one word in ten sentences
#
# Now the demonstration. We take the word "bank" in ten sentences, five about money and
# five about rivers, and compare its vectors.
#
# **Finding the word's tokens.** BERT reads WordPieces (chapter 2), not words. "bank" is a
# single token, but a rarer word can be split: "riverbank" becomes `river ##bank`. The
# tokenizer's *offset mapping* gives, for each token, its start and end characters in the
# text; the word's tokens are those whose characters lie inside the word's span. When a
# word has several pieces, we average their vectors, a common choice (another is to keep
# the first piece, as chapter 10 does for tagging).

# %%
def word_span(sentence, word):
    # Character span of the first whole-word match ("bank" matches "Bank", not "banks").
    match = re.search(rf"\b{re.escape(word)}\b", sentence, flags=re.IGNORECASE)
    if match is None:
        raise ValueError(f"{word!r} does not occur as a whole word in {sentence!r}")
    return match.span()


def word_token_positions(offsets, sentence, word):
    # offsets: [(start, end), ...] per token; special tokens and padding have (0, 0).
    start, end = word_span(sentence, word)
    return [i for i, (a, b) in enumerate(offsets) if b > a and a >= start and b <= end]


# %%
# NBVAL_CHECK_OUTPUT
for sentence, word in [("We walked along the riverbank at dusk.", "riverbank"),
                       ("The Bank raised its rates.", "bank")]:
    enc = tokenizer(sentence, return_offsets_mapping=True)
    positions = word_token_positions(enc["offset_mapping"], sentence, word)
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    print(tokens)
    print(f"  {word!r} -> positions {positions}: {[tokens[i] for i in positions]}")


# %% [markdown]
# **The vectors.** One forward pass gives everything we need. The *static* vector of the
# word is its row of the input table $E$ (averaged over its pieces, like the contextual
# one); the *contextual* vector is the model's output at the same positions. With
# `output_hidden_states=True`, `BertModel` also returns every layer's output: index 0 is
# the embedding layer (token + position + segment, chapter 3), index $L$ the last layer.

# %%
@torch.no_grad()
def word_vectors(sentences, word):
    '''The static and contextual vectors of `word` in each sentence.

    Returns:
        static: FloatTensor [N, H], the word's rows of the input table E.
        layers: FloatTensor [L + 1, N, H], the word's vector after the embedding layer (0)
            and after each encoder layer (1 .. L).
    '''
    enc = tokenizer(sentences, padding=True, return_offsets_mapping=True, return_tensors="pt")
    offsets = enc.pop("offset_mapping")  # (N, T, 2); the model does not take it
    out = model(**enc, output_hidden_states=True)
    hidden = torch.stack(out.hidden_states)  # (L + 1, N, T, H)
    table_rows = model.embeddings.word_embeddings(enc["input_ids"])  # (N, T, H)
    static, layers = [], []
    for n, sentence in enumerate(sentences):
        positions = word_token_positions(offsets[n].tolist(), sentence, word)
        static.append(table_rows[n, positions].mean(0))  # (H,)
        layers.append(hidden[:, n, positions].mean(1))  # (L + 1, H): average the pieces
    return torch.stack(static), torch.stack(layers, dim=1)


def cosine_matrix(X):
    # X: (N, H) -> (N, N) with entry (i, j) = cos(x_i, x_j)
    X = F.normalize(X, dim=-1)
    return X @ X.T


# %% [markdown]
# The ten sentences. The two senses share no content words besides "bank"; only the
# context tells them apart.

# %%
# NBVAL_CHECK_OUTPUT
bank_sentences = [
    # sense 0: the financial institution
    "She deposited her salary at the bank on Monday.",
    "The bank approved our loan for the new house.",
    "He opened a savings account at the local bank.",
    "The bank raised its interest rates again.",
    "I need to withdraw cash before the bank closes.",
    # sense 1: the side of a river
    "We sat on the grassy bank and watched the river flow.",
    "The boat drifted slowly toward the muddy bank.",
    "Fishermen lined the bank of the stream at dawn.",
    "Flood water rose over the bank after the storm.",
    "Wild flowers grew along the steep bank of the creek.",
]
bank_senses = torch.tensor([0] * 5 + [1] * 5)
sense_names = {"bank": ["money", "river"]}


def snippet(sentence, word, width=2):
    # A short label for a figure: the word and `width` words on each side.
    words = sentence.rstrip(".").split()
    i = next(k for k, w in enumerate(words) if re.fullmatch(rf"{word}\W*", w, re.IGNORECASE))
    return " ".join(words[max(0, i - width): i + width + 1])


bank_labels = [f"{snippet(s, 'bank')} ({sense_names['bank'][k]})"
               for s, k in zip(bank_sentences, bank_senses.tolist())]
for label in bank_labels:
    print(label)

# %%
bank_static, bank_layers = word_vectors(bank_sentences, "bank")
S_static = cosine_matrix(bank_static)  # (10, 10)
S_context = cosine_matrix(bank_layers[-1])  # (10, 10), last layer
print("static vectors:", tuple(bank_static.shape), " contextual, every layer:",
      tuple(bank_layers.shape))

# The static vector is the same row in every sentence: every similarity is 1.
torch.testing.assert_close(S_static, torch.ones(10, 10))
glue("ch1_static_min_similarity", S_static.min().item(), display=False)


# %% [markdown]
# A small plotting helper draws a similarity matrix with one label per sentence. The
# dashed lines separate the two senses.

# %% mystnb={"image": {"alt": "Two 10 by 10 cosine-similarity heatmaps of the word bank in ten sentences: the static vector is uniformly 1, the contextual vector shows two blocks, money and river"}}
def plot_similarity(S, labels, senses=None, ax=None, title=None, vmin=0.5, vmax=1.0):
    '''Draw an (N, N) similarity matrix as a heatmap; returns (fig, ax).'''
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 5.5))
    image = ax.imshow(S.numpy(), cmap="viridis", vmin=vmin, vmax=vmax)
    n = len(labels)
    ax.set_xticks(range(n), [str(i + 1) for i in range(n)])
    ax.set_yticks(range(n), [f"{label}  {i + 1}" for i, label in enumerate(labels)])
    ax.set_xlabel("sentence")
    if senses is not None:  # a line where the sense changes
        for k in torch.nonzero(senses[1:] != senses[:-1]).flatten().tolist():
            ax.axhline(k + 0.5, color="white", ls="--", lw=1.5)
            ax.axvline(k + 0.5, color="white", ls="--", lw=1.5)
    if title:
        ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="cosine similarity")
    return ax.figure, ax


fig, axes = plt.subplots(1, 2, figsize=(15, 6), sharey=True, layout="constrained")
plot_similarity(S_static, bank_labels, bank_senses, ax=axes[0],
                title='"bank", static vector (input embedding)')
plot_similarity(S_context, bank_labels, bank_senses, ax=axes[1],
                title='"bank", contextual vector (last layer)')
axes[1].tick_params(labelleft=False)
plt.show()


# %% [markdown]
# On the left, the static vector: the same row of $E$ in all ten sentences, so every
# similarity is exactly 1 (the smallest is {glue:text}`ch1_static_min_similarity:.3f`).
# Nothing distinguishes the senses. On the right, the last layer of the same model: two
# bright blocks on the diagonal. The five "money" banks resemble each other, the five
# "river" banks resemble each other, and the two groups resemble each other less.
#
# Let us put numbers on it. For a matrix $S$ and sense labels $s_1, \dots, s_n$, the
# *within-sense* similarity is the mean of $S_{ij}$ over pairs $i \ne j$ of the same sense,
# and the *across-sense* similarity the mean over pairs of different senses. A second
# check asks of each sentence: is its most similar other sentence one of the same sense?

# %%
def sense_block_stats(S, senses):
    '''Mean within-sense and across-sense similarity, and how many rows have their
    nearest other row (by similarity) in the same sense.'''
    same = senses[:, None] == senses[None, :]  # (N, N)
    off_diagonal = ~torch.eye(len(senses), dtype=torch.bool)
    within = S[same & off_diagonal].mean().item()
    across = S[~same].mean().item()
    nearest = S.masked_fill(~off_diagonal, float("-inf")).argmax(dim=1)  # (N,)
    nn_same = (senses[nearest] == senses).sum().item()
    return within, across, nn_same


within, across, nn_same = sense_block_stats(S_context, bank_senses)
print(f"within-sense {within:.3f}   across-sense {across:.3f}   gap {within - across:.3f}")
print(f"nearest neighbour of the same sense: {nn_same} of {len(bank_senses)} sentences")
glue("ch1_bank_within", within, display=False)
glue("ch1_bank_across", across, display=False)
glue("ch1_bank_gap", within - across, display=False)
glue("ch1_bank_nn_same", nn_same, display=False)
glue("ch1_n_sentences", len(bank_sentences), display=False)

assert within > across + 0.05, (within, across)  # the blocks are real, not noise
assert nn_same == len(bank_senses), nn_same  # every sentence's closest one shares its sense

# %%
# Which "river" sentence is closest, on average, to the "money" block?
river_rows = torch.nonzero(bank_senses == 1).flatten()
to_money = S_context[river_rows][:, bank_senses == 0].mean(dim=1)  # (5,)
closest = river_rows[to_money.argmax()].item()
print(f"closest to the money sentences: {closest + 1}. {bank_sentences[closest]!r}")
assert "Flood" in bank_sentences[closest]  # the sentence the text below discusses


# %% [markdown]
# Within a sense the mean cosine similarity is {glue:text}`ch1_bank_within:.2f`, across
# senses {glue:text}`ch1_bank_across:.2f`: a gap of {glue:text}`ch1_bank_gap:.2f`. For
# {glue:text}`ch1_bank_nn_same` of the {glue:text}`ch1_n_sentences` sentences, the most
# similar other sentence uses "bank" in the same sense. No one told the model which sense
# is which; it worked it out from the context.
#
# Two remarks keep this honest. First, all the similarities are high, even across senses:
# the contextual vectors of a model tend to share a few common directions (they are
# *anisotropic*, as Ethayarajh (2019, "How Contextual are Contextualized Word
# Representations?") measured), so the absolute value of a cosine means
# little and the *contrast* between the blocks is what counts. Second, the blocks are not
# perfectly clean: of the river sentences, the flood sentence ("rose over the bank after
# the storm") is the closest to the money block, perhaps because it names no river,
# stream or creek.
#
# ### Where does the context come in?
#
# `word_vectors` returned the word's vector after every layer, so we can run the same
# measurement layer by layer. Layer 0 is the embedding layer: the static row plus a
# position vector, so the ten "bank" vectors differ only by where the word sits in the
# sentence.

# %% mystnb={"image": {"alt": "Line plot of mean within-sense and across-sense cosine similarity of bank for layers 0 to 6"}}
def gap_by_layer(layers, senses):
    # layers: (L + 1, N, H) -> within and across similarity per layer
    stats = [sense_block_stats(cosine_matrix(h), senses) for h in layers]
    return [s[0] for s in stats], [s[1] for s in stats]


bank_within, bank_across = gap_by_layer(bank_layers, bank_senses)
fig, ax = plt.subplots(figsize=(7, 4.2))
layer_ids = range(len(bank_within))
ax.plot(layer_ids, bank_within, "o-", label="within sense")
ax.plot(layer_ids, bank_across, "s--", label="across senses")
ax.set_xticks(list(layer_ids), ["0\n(embeddings)"] + [str(i) for i in layer_ids][1:])
ax.set_xlabel("layer")
ax.set_ylabel("mean cosine similarity")
ax.set_title('"bank": similarity of its vectors, layer by layer')
ax.legend()
ax.grid(alpha=0.3)
plt.show()

gap_0 = bank_within[0] - bank_across[0]
glue("ch1_bank_gap_layer0", gap_0, display=False)
assert abs(gap_0) < 0.02, gap_0  # before any attention layer, no sense information
assert min(w - a for w, a in zip(bank_within[1:], bank_across[1:])) > 0.03  # every layer separates

# %% [markdown]
# After the embedding layer the gap is {glue:text}`ch1_bank_gap_layer0:.3f`: position
# alone tells the senses nothing. From the first attention layer on, "bank" has looked at
# its neighbours and the senses separate. Chapter 4 opens up the attention layers to see
# how.
#
# ### Two more words: "apple" and "stick"
#
# The same measurement for two more words. "apple" the fruit against Apple the company is
# a hard case for an uncased model: the capital letter that gives the company away in
# writing is gone before the model sees the text. "stick" the branch against "stick" the
# verb (to attach) also differs in part of speech.

# %% mystnb={"image": {"alt": "Cosine-similarity heatmaps of apple (fruit vs company) and stick (branch vs attach) in ten sentences each, both with two blocks"}}
more_words = {
    "apple": (["fruit", "company"], [
        "She ate a crisp red apple for lunch.",
        "He peeled the apple and cut it into slices.",
        "Grandma baked an apple pie with cinnamon.",
        "A ripe apple fell from the tree in the orchard.",
        "The juice was made from a sweet green apple.",
        "Apple released a new iPhone this autumn.",
        "Shares of Apple rose after the earnings report.",
        "Apple opened a large store in the city center.",
        "The lawsuit accused Apple of breaking patent law.",
        "Apple hired thousands of software engineers last year.",
    ]),
    "stick": (["branch", "attach"], [
        "The dog fetched the stick from the pond.",
        "He carved a walking stick out of oak.",
        "She poked the fire with a long stick.",
        "The children gathered a dry stick for the campfire.",
        "A broken stick lay across the forest path.",
        "Please stick the stamp on the envelope.",
        "These labels do not stick to wet glass.",
        "Stick the poster to the wall with tape.",
        "The glue will stick the two pieces together.",
        "Wet clay can stick to your hands.",
    ]),
}
senses = torch.tensor([0] * 5 + [1] * 5)

within_bank, across_bank = sense_block_stats(S_context, bank_senses)[:2]
more_results = {}
fig, axes = plt.subplots(1, 2, figsize=(16, 6), layout="constrained")
for ax, (word, (names, sentences)) in zip(axes, more_words.items()):
    _, layers = word_vectors(sentences, word)
    S = cosine_matrix(layers[-1])
    labels = [f"{snippet(s, word)} ({names[k]})" for s, k in zip(sentences, senses.tolist())]
    plot_similarity(S, labels, senses, ax=ax, title=f'"{word}", contextual vector (last layer)')
    within, across, nn_same = sense_block_stats(S, senses)
    print(f"{word:>6}: within {within:.3f}   across {across:.3f}   gap {within - across:.3f}"
          f"   same-sense nearest neighbour {nn_same}/10")
    glue(f"ch1_{word}_within", within, display=False)
    glue(f"ch1_{word}_across", across, display=False)
    glue(f"ch1_{word}_gap", within - across, display=False)
    assert within > across + 0.05, (word, within, across)
    assert nn_same >= 9, (word, nn_same)
    more_results[word] = (S, within - across)
plt.show()

# The remarks below, checked: "stick" has the widest gap of the three words, and
# "Shares of Apple rose" is the company sentence closest to the fruit block.
assert more_results["stick"][1] > max(more_results["apple"][1], within_bank - across_bank)
S_apple = more_results["apple"][0]
apple_to_fruit = S_apple[5:, :5].mean(dim=1)  # company rows vs fruit columns
assert more_words["apple"][1][5 + apple_to_fruit.argmax().item()].startswith("Shares")

# %% [markdown]
# Both words form two blocks. For "apple" the within-sense similarity is
# {glue:text}`ch1_apple_within:.2f` against {glue:text}`ch1_apple_across:.2f` across (gap
# {glue:text}`ch1_apple_gap:.2f`); for "stick", {glue:text}`ch1_stick_within:.2f` against
# {glue:text}`ch1_stick_across:.2f` (gap {glue:text}`ch1_stick_gap:.2f`). The "stick" blocks
# are the sharpest of the three words: the noun and the verb play different roles in the
# sentence, and the vectors carry syntax as well as meaning. In the "apple" matrix, the
# stock-market sentence ("Shares of Apple rose after the earnings report") is the company
# sentence closest to the fruit block. The model is not a sense dictionary: every word of
# the context pulls the vector somewhere, and "shares" and "rose" are not only about
# companies.
#
# ## 1.5 Can we trust these vectors? Same numbers as `transformers`
#
# Every vector above came from `bertedu`, the small library this book builds. As a trust
# anchor, here is the reference implementation, Hugging Face `transformers`, run on the
# same checkpoint and the same ten "bank" sentences. (`transformers` appears in this book
# only as such a reference, never inside the library.)

# %%
import transformers

transformers.utils.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()
reference = transformers.BertModel.from_pretrained(folder).eval()
reference_tokenizer = transformers.BertTokenizerFast.from_pretrained(folder)

enc = tokenizer(bank_sentences, padding=True, return_tensors="pt")
assert enc["input_ids"].tolist() == reference_tokenizer(bank_sentences, padding=True)["input_ids"]
with torch.no_grad():
    ours = model(**enc).last_hidden_state  # (10, T, 384)
    theirs = reference(**enc).last_hidden_state
torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)
glue("ch1_max_abs_diff_transformers", (ours - theirs).abs().max().item(), display=False)
print("bertedu == transformers on every token of the ten sentences:", tuple(ours.shape))

# %% [markdown]
# Same token ids, and the same vectors for every token of every sentence: the largest
# absolute difference is {glue:text}`ch1_max_abs_diff_transformers:.1e`. (The check
# allows differences up to $10^{-4}$, the rounding noise that other hardware or other
# kernels can produce.) The next chapters build each piece of `bertedu` from scratch,
# starting with the tokenizer.
#
# ```{admonition} Coming from d2l?
# :class: note
# *Dive into Deep Learning* {cite:p}`zhang2023dive` trains word2vec and GloVe from scratch (chapter 15) and, after
# pre-training its own small BERT on WikiText-2, shows that the word "crane" gets different
# vectors in "a crane is flying" and "a crane driver came". This chapter makes the same
# point with a real pretrained checkpoint and measures it on ten sentences per word. Two
# differences to keep in mind: d2l's BERT uses a word-level vocabulary, ours uses
# WordPieces, so a word can be several tokens whose vectors we average; and d2l's BERT is
# trained in the chapter, while ours loads published weights (in the Hugging Face format),
# so the same code runs any BERT checkpoint.
# ```
#
# ## Summary
#
# - **Pre-train, then fine-tune**: learn general knowledge of language once from raw text
#   (costly, self-supervised), then adapt the same model to each labeled task cheaply.
# - **Static embeddings** (word2vec, GloVe, and BERT's own input table) give a word one
#   vector in every context. For words with several senses that vector is a blend: the
#   static "bank" leans to money ({glue:text}`ch1_static_bank_money:.2f`) and away from
#   river ({glue:text}`ch1_static_bank_river:.2f`), whatever the sentence.
# - **Contextual embeddings** are computed from the whole sentence. ELMo took them from
#   LSTM language models as features; ULMFiT showed that fine-tuning a pretrained language
#   model works; the Transformer made deep, parallel models practical; GPT pre-trained a
#   left-to-right Transformer decoder; BERT pre-trained a bidirectional Transformer encoder
#   with masked language modelling.
# - In a real checkpoint, the last-layer vectors of "bank" in {glue:text}`ch1_n_sentences`
#   sentences form two blocks by sense: mean cosine similarity
#   {glue:text}`ch1_bank_within:.2f` within a sense against
#   {glue:text}`ch1_bank_across:.2f` across, and every sentence's nearest neighbour shares
#   its sense. The static vector cannot tell them apart at all.
# - `bertedu` gives the same vectors as `transformers` on this checkpoint.
#
# ## Exercises
#
# The exercises for this chapter are the nbgrader assignment `exercises/source/01_contextual_vectors/01_contextual_vectors.ipynb`, with reference solutions. `make exercises` writes the student version, without them, to `exercises/release/01_contextual_vectors/`; instructors, see the guide "Teaching with this book".
