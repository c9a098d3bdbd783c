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
# # 4. The encoder
#
# Chapter 3 turned a sentence into a matrix: one $H$-wide vector per token, the sum of a
# token, a segment and a position embedding. Each of those vectors knows only its own token
# and its place. The vector of "bank" is the same next to "river" and next to "rates".
#
# The **encoder** fixes that. It is a stack of $L$ identical blocks. In every block, each
# token looks at every other token and mixes what it finds into its own vector. After $L$
# blocks the vector of "bank" depends on the whole sentence. This is the contextual vector
# of chapter 1.
#
# This chapter builds the encoder from the equations of *Attention Is All You Need*
# {cite:p}`vaswani2017attention`, one piece at a time. We run each piece on the weights of the real MiniLM
# checkpoint and check that it matches the `bertedu` piece it becomes. At the end, our
# hand-written encoder gives the same numbers as the whole checkpoint.

# %% [markdown]
# ## What you will be able to do
#
# - Compute scaled dot-product attention by hand, and explain why the scores are divided by
#   $\sqrt{d_k}$.
# - Mask out padding with an additive mask, and explain why the mask holds the dtype's
#   minimum rather than $-\infty$ or $-10\,000$.
# - Split $H$-wide vectors into $A$ heads and join them back, knowing the shape of every
#   tensor on the way.
# - Write the position-wise feed-forward net with exact GELU, and BERT's post-LN
#   residual-plus-LayerNorm.
# - Stack $L$ blocks into an encoder that reproduces a real checkpoint number for number.
# - Count the parameters of BERT-base and BERT-large exactly from their configs, and say
#   where they go.
# - Contrast BERT's bidirectional mask with GPT's causal mask, and read attention maps of a
#   real model.

# %% [markdown]
# ## Setup
#
# The default run is sized for a laptop CPU. Setting the environment
# variable `BERTEDU_FULL=1` changes two sizes only. The final parity check runs on all
# sentences of the SST-2 dev set instead of 16. The overview of attention maps shows every
# layer of MiniLM instead of the first and the last. No result in the prose depends on the
# switch.
#
# This chapter only runs models forward; nothing is trained. So we turn gradient tracking
# off once, for the whole notebook.

# %%
# %config InlineBackend.figure_format = 'png'
import math
import os
import random

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from d2l import torch as d2l
from myst_nb import glue
from torch.testing import assert_close

import bertedu
import bertedu.data
import bertedu.model
from bertedu import BertConfig, BertModel
from bertedu.tokenization import BertTokenizer

FULL = os.environ.get("BERTEDU_FULL", "0") == "1"
torch.manual_seed(0)
random.seed(0)
np.random.seed(0)
torch.set_grad_enabled(False)  # forward passes only: no gradients needed anywhere
plt.rcParams.update({"font.size": 12})

# %% [markdown]
# We load the real checkpoint, all-MiniLM-L6-v2, and its tokenizer. This is the same folder
# as in chapters 1 to 3. `from_pretrained` returns the model in evaluation mode, so dropout
# is off and every run gives the same numbers.

# %%
# NBVAL_CHECK_OUTPUT
folder = bertedu.minilm_path()
tokenizer = BertTokenizer.from_pretrained(folder)
minilm = BertModel.from_pretrained(folder)
config = minilm.config
print(f"L={config.num_hidden_layers} layers, H={config.hidden_size} wide, "
      f"A={config.num_attention_heads} heads of D={config.head_size}, "
      f"feed-forward I={config.intermediate_size}")

# %% [markdown]
# Our running example is a batch of two sentences that both contain "bank". The second
# sentence is one token shorter, so the tokenizer pads it with `[PAD]`. The attention mask
# marks real tokens with 1 and padding with 0 (chapter 3).

# %%
# NBVAL_CHECK_OUTPUT
sentences = ["the bank of the river was muddy.", "the bank raised its interest rates."]
batch = tokenizer(sentences, padding=True, return_tensors="pt")
tokens = [tokenizer.convert_ids_to_tokens(row.tolist()) for row in batch["input_ids"]]
for row, mask in zip(tokens, batch["attention_mask"]):
    print(row)
    print(mask.tolist())

# %% [markdown]
# Chapter 3's embedding layer, now taken from the library, turns the ids into the
# encoder's input $X$ of shape `[B, T, H]`: batch, sequence length, hidden size.

# %%
# NBVAL_CHECK_OUTPUT
x = minilm.embeddings(batch["input_ids"], batch["token_type_ids"])  # (B, T, H)
B, T, H = x.shape
A, D = config.num_attention_heads, config.head_size
print("X:", tuple(x.shape))


# %% [markdown]
# ## 4.1 Scaled dot-product attention
#
# Attention lets a token gather information from the other tokens. Each token asks a
# question, its **query** $q$. Each token also offers a **key** $k$, which says what it
# contains, and a **value** $v$, which is what it hands over. The query is compared with
# every key. The better a key matches, the more of its value the token receives. The output
# is a weighted average of the values, and the weights sum to 1.
#
# {cite:t}`vaswani2017attention`, section 3.2.1:
#
# > We call our particular attention "Scaled Dot-Product Attention". The input consists of
# > queries and keys of dimension $d_k$, and values of dimension $d_v$. We compute the dot
# > products of the query with all keys, divide each by $\sqrt{d_k}$, and apply a softmax
# > function to obtain the weights on the values.
#
# $$
# \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}}\right) V
# $$
#
# $Q$ holds one query per row, $K$ one key per row, and $V$ one value per row. Entry
# $(i, j)$ of $QK^\top$ scores query $i$ against key $j$. The softmax runs along each row.
# The optional `mask` argument below is added to the scores; section 4.2 explains it.

# %%
def attention(q, k, v, mask=None):
    # q, k: (..., T, d_k); v: (..., T, d_v). "..." is any batch of leading dims, e.g. (B, A).
    d_k = q.size(-1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)  # (..., T_q, T_k): query i vs key j
    if mask is not None:
        scores = scores + mask  # additive mask: 0 keeps a key, a huge negative number hides it
    weights = scores.softmax(dim=-1)  # each query's row sums to 1
    return weights @ v, weights  # (..., T_q, d_v), (..., T_q, T_k)


# %% [markdown]
# A toy case you can check by eye. There are three keys: one points right, one up, and one
# left. The values are one-hot, so each output row *is* that query's row of weights. The
# first query points right, like key 0. The second points up, like key 1. The third is the
# zero vector, so it matches no key in particular and spreads its weight evenly.

# %%
keys = torch.tensor([[4.0, 0.0], [0.0, 4.0], [-4.0, 0.0]])  # right, up, left
values = torch.eye(3)  # one-hot values: output row = weights row
queries = torch.tensor([[4.0, 0.0], [0.0, 4.0], [0.0, 0.0]])
output, weights = attention(queries, keys, values)
print(weights.round(decimals=3))
assert weights.argmax(dim=-1).tolist()[:2] == [0, 1]  # each query finds its key
assert_close(weights[2], torch.full((3,), 1 / 3))  # the zero query has no preference
assert_close(output, weights)  # one-hot values copy the weights

# %% [markdown]
# The library's `bertedu.model.scaled_dot_product_attention` is the same function. We check
# it on random tensors shaped like MiniLM's: batch 2, 12 heads, 10 tokens, 32 features per
# head.

# %%
q, k, v = torch.randn(3, 2, A, 10, D).unbind(0)  # three (B=2, A, T=10, D) tensors
mine, my_weights = attention(q, k, v)
theirs, their_weights = bertedu.model.scaled_dot_product_attention(q, k, v)
assert_close(mine, theirs)
assert_close(my_weights, their_weights)

# %% [markdown]
# **Why divide by $\sqrt{d_k}$?** The paper's footnote gives the reason. Suppose the
# components of $q$ and $k$ are independent, with mean 0 and variance 1. Then
# $q \cdot k = \sum_{i=1}^{d_k} q_i k_i$ has mean 0 and variance $d_k$. Wider heads give
# larger scores. Large scores push the softmax towards a one-hot vector, and there its
# gradients nearly vanish. Dividing by $\sqrt{d_k}$ brings the variance back to 1 at any
# width. We measure this below. For each width we draw random queries and keys, and record
# the spread of the raw dot products. We also record how much weight the softmax over 10
# keys gives its favourite key, with and without the scaling.

# %%
rows = []
for d_k in (4, 16, 64, 256):
    q = torch.randn(20_000, 1, d_k)  # 20,000 queries...
    k = torch.randn(20_000, 10, d_k)  # ... each with its own 10 keys
    dots = (q @ k.transpose(-2, -1)).squeeze(1)  # (20000, 10) raw dot products
    rows.append({
        "d_k": d_k,
        "sqrt(d_k)": math.sqrt(d_k),
        "std of q.k": dots.std().item(),
        "top weight, unscaled": dots.softmax(-1).max(-1).values.mean().item(),
        "top weight, scaled": (dots / math.sqrt(d_k)).softmax(-1).max(-1).values.mean().item(),
    })
scaling = pd.DataFrame(rows).set_index("d_k")
scaling.round(3)

# %%
for d_k, row in scaling.iterrows():  # std grows like sqrt(d_k): within 3% at every width
    assert abs(row["std of q.k"] / row["sqrt(d_k)"] - 1) < 0.03, (d_k, row["std of q.k"])
assert scaling.loc[256, "top weight, unscaled"] > 0.9  # nearly one-hot: saturated softmax
assert scaling.loc[256, "top weight, scaled"] < 0.5  # scaled: still a soft average
glue("ch4_std_dot_64", float(scaling.loc[64, "std of q.k"]), display=False)
glue("ch4_top_unscaled_256", float(scaling.loc[256, "top weight, unscaled"]), display=False)
glue("ch4_top_scaled_256", float(scaling.loc[256, "top weight, scaled"]), display=False)


# %% [markdown]
# BERT-base's heads are $d_k = 64$ wide. At that width the raw dot products have a
# standard deviation of {glue:text}`ch4_std_dot_64:.2f`, close to $\sqrt{64} = 8$. At
# $d_k = 256$, the unscaled softmax gives its favourite key
# {glue:text}`ch4_top_unscaled_256:.2f` of the weight on average: it is nearly a hard
# choice. With the scaling, the favourite gets {glue:text}`ch4_top_scaled_256:.2f`, and the
# softmax stays a soft average.

# %% [markdown]
# ## 4.2 Padding masks
#
# Sentences in a batch differ in length, so the short ones are padded to a common length
# $T$. A `[PAD]` token carries no meaning, so no query may take anything from it. Its key
# must get a weight of exactly 0.
#
# BERT does this with an **additive mask**. We add 0 to the scores of real keys and a huge
# negative number to the scores of padded keys. After the softmax,
# $e^{\text{huge negative}}$ is 0. The mask depends only on the key position, so it has
# shape `[B, 1, 1, T]`. It broadcasts over the $A$ heads and the $T$ queries.

# %%
# NBVAL_CHECK_OUTPUT
def additive_mask(attention_mask, dtype=torch.float32):
    # attention_mask: (B, T), 1 = real token, 0 = padding (the tokenizer's convention)
    keep = attention_mask[:, None, None, :].to(dtype)  # (B, 1, 1, T): same for all heads, queries
    return (1.0 - keep) * torch.finfo(dtype).min  # 0 for real keys, the dtype's minimum for padding


mask = additive_mask(batch["attention_mask"])
print(tuple(mask.shape))
print(mask[1, 0, 0])

# %%
# the library's version gives the identical tensor
assert torch.equal(mask, bertedu.model.additive_attention_mask(batch["attention_mask"], torch.float32))

# %% [markdown]
# (`-0.` is zero: $0$ times a negative number keeps the sign bit.)
#
# Two checks show that the mask does its job. First, every query of the second sentence
# gives its `[PAD]` key a weight of exactly 0.0, not just a small one. Second, attention
# over the padded sentence gives the same outputs as attention over the sentence with the
# padding cut off.

# %%
q, k, v = torch.randn(3, B, 1, T, 8).unbind(0)  # one head, 8 features, for our padded batch
out, w = attention(q, k, v, mask)
print("weights on the [PAD] key:", w[1, 0, :, -1].tolist())
assert (w[1, 0, :, -1] == 0).all()

n = int(batch["attention_mask"][1].sum())  # real length of sentence 2
out_short, _ = attention(q[1:, :, :n], k[1:, :, :n], v[1:, :, :n])  # no padding, no mask
assert_close(out[1:, :, :n], out_short)

# %% [markdown]
# **Why the dtype's minimum?** There are three common choices for the "huge negative
# number". Google's original BERT code adds $-10\,000$. Many textbooks fill in $-\infty$ or
# $-10^6$ (d2l uses $-10^6$). Hugging Face and `bertedu` use the most negative finite
# number of the dtype, `torch.finfo(dtype).min`, which is about $-3.4 \times 10^{38}$ in
# float32. Two failure cases explain this choice.
#
# 1. *A row in which every key is masked.* This happens, for example, when a batch holds
#    an empty sequence, or when two masks together hide everything. With $-\infty$ every
#    score is $-\infty$, and the softmax computes $0/0$ = NaN. The NaN then spreads through
#    every later layer. With a finite minimum, all the scores become the same finite number,
#    and the softmax returns a harmless uniform row.
# 2. *Half precision.* A fixed constant that is large enough in float32 may not fit in
#    float16. There, $-10^9$ rounds to $-\infty$, which brings back problem 1.
#    `finfo(dtype).min` is finite in every dtype by definition.
#
# Any realistic score is negligible next to $3.4 \times 10^{38}$, so the masked weights
# come out as exactly 0, as we saw above.

# %%
scores = torch.tensor([[2.0, 1.0, 0.5],   # a normal row: only the last key is padding
                       [2.0, 1.0, 0.5]])  # a row in which every key is masked
hide = torch.tensor([[False, False, True], [True, True, True]])
for name, big in [("-inf", float("-inf")), ("finfo.min", torch.finfo(torch.float32).min)]:
    print(f"{name}:\n", scores.masked_fill(hide, big).softmax(-1).round(decimals=4))
print("-1e9 in float16:", torch.tensor(-1e9, dtype=torch.float16).item(),
      "  finfo(float16).min:", torch.finfo(torch.float16).min)

# %%
assert torch.isnan(scores.masked_fill(hide, float("-inf")).softmax(-1)[1]).all()
safe = scores.masked_fill(hide, torch.finfo(torch.float32).min).softmax(-1)
assert_close(safe[1], torch.full((3,), 1 / 3))  # uniform, not NaN
assert safe[0, 2] == 0.0  # and the padded key of the normal row gets exactly 0
assert torch.tensor(-1e9, dtype=torch.float16).isinf()

# %% [markdown]
# ## 4.3 Multi-head attention
#
# In self-attention, the queries, keys and values all come from the same input $X$ through
# three learned linear maps. A single attention function gives each token only one weighted
# average. {cite:t}`vaswani2017attention` (section 3.2.2) run several smaller ones side by
# side instead:
#
# > Multi-head attention allows the model to jointly attend to information from different
# > representation subspaces at different positions. With a single attention head,
# > averaging inhibits this.
#
# $$
# \mathrm{MultiHead}(Q, K, V) = \mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_A)\,W^O,
# \qquad \mathrm{head}_i = \mathrm{Attention}(Q W_i^Q, K W_i^K, V W_i^V)
# $$
#
# In BERT, $Q = K = V = X$, and each head is $D = d_k = d_v = H / A$ wide. MiniLM has
# $384 / 12 = 32$, and BERT-base has $768 / 12 = 64$. The $A$ small projections $W_i^Q$
# (each $H \times D$) are stored side by side as one $H \times H$ matrix. So we compute one
# big projection and then *split* its $H$ output features into $A$ groups of $D$. That is
# a reshape, not a computation.
#
# The weights come from MiniLM's state dict. Their names are Hugging Face's, and the
# library keeps them, so real checkpoints load without a mapping table. Here is layer 0:

# %%
# NBVAL_CHECK_OUTPUT
state = minilm.state_dict()


def layer_weights(state, i):
    # the tensors of block i, with the prefix "encoder.layer.{i}." removed from their names
    prefix = f"encoder.layer.{i}."
    return {name[len(prefix):]: t for name, t in state.items() if name.startswith(prefix)}


p0 = layer_weights(state, 0)
for name, t in p0.items():
    print(f"{name:36s} {tuple(t.shape)}")


# %% [markdown]
# `nn.Linear` stores its weight as `(out_features, in_features)` and computes
# $x W^\top + b$. Our `linear` does the same.

# %%
def linear(x, weight, bias):
    return x @ weight.T + bias  # weight: (out, in), as nn.Linear stores it


def split_heads(t, A):
    B, T, H = t.shape
    return t.view(B, T, A, H // A).transpose(1, 2)  # (B, T, H) -> (B, T, A, D) -> (B, A, T, D)


def merge_heads(t):
    B, A, T, D = t.shape
    return t.transpose(1, 2).reshape(B, T, A * D)  # (B, A, T, D) -> (B, T, A, D) -> (B, T, H)


def multi_head_attention(x, p, A, mask=None):
    # x: (B, T, H); p: one block's weights; returns Concat(head_1..head_A) and the weights.
    # W^O is applied by the block (section 4.6); it is stored as attention.output.dense.
    q = split_heads(linear(x, p["attention.self.query.weight"], p["attention.self.query.bias"]), A)
    k = split_heads(linear(x, p["attention.self.key.weight"], p["attention.self.key.bias"]), A)
    v = split_heads(linear(x, p["attention.self.value.weight"], p["attention.self.value.bias"]), A)
    context, weights = attention(q, k, v, mask)  # (B, A, T, D), (B, A, T, T): all heads at once
    return merge_heads(context), weights  # (B, T, H): the heads side by side


# %%
# NBVAL_CHECK_OUTPUT
q_all = linear(x, p0["attention.self.query.weight"], p0["attention.self.query.bias"])
print("projected queries  ", tuple(q_all.shape), " (B, T, H)")
print("split into heads   ", tuple(split_heads(q_all, A).shape), " (B, A, T, D)")
context, weights0 = multi_head_attention(x, p0, A, mask)
print("attention weights  ", tuple(weights0.shape), "(B, A, T, T)")
print("heads merged       ", tuple(context.shape), " (B, T, H)")

# %% [markdown]
# The reshape really does give $A$ independent heads. Head $i$ uses only rows
# $iD, \dots, (i+1)D - 1$ of each projection weight, which is its own $W_i^Q$, $W_i^K$ and
# $W_i^V$. A plain loop over the heads, one at a time, gives the same result:

# %%
heads = []
for i in range(A):
    rows = slice(i * D, (i + 1) * D)  # head i's slice of the H output features
    q_i, k_i, v_i = (linear(x, p0[f"attention.self.{n}.weight"][rows], p0[f"attention.self.{n}.bias"][rows])
                     for n in ("query", "key", "value"))  # each (B, T, D)
    head_i, _ = attention(q_i, k_i, v_i, mask[:, 0])  # mask (B, 1, T) for the single head
    heads.append(head_i)
assert_close(torch.cat(heads, dim=-1), context)  # Concat(head_1, ..., head_A)

# %% [markdown]
# Now the library. `bertedu.model.BertSelfAttention` is the query/key/value part of BERT's
# attention. We load MiniLM's layer-0 weights into a fresh one and compare. The library has
# two code paths. The plain one follows the formula and can return the weights. The fused
# one calls PyTorch's `F.scaled_dot_product_attention` for speed. Both must agree with ours.

# %%
self_attention = bertedu.model.BertSelfAttention(config).eval()
self_attention.load_state_dict(minilm.encoder.layer[0].attention.self.state_dict())

theirs, their_weights = self_attention(x, mask, output_attentions=True)  # plain path
assert_close(context, theirs)
assert_close(weights0, their_weights)
fused, _ = self_attention(x, mask)  # fused PyTorch kernel, no weights returned
assert_close(context, fused)


# %% [markdown]
# ## 4.4 The position-wise feed-forward net, with GELU
#
# Attention mixes information *between* tokens. Each block then processes every token *on
# its own* with a small two-layer network. {cite:t}`vaswani2017attention`, section 3.3:
#
# > In addition to attention sub-layers, each of the layers in our encoder and decoder
# > contains a fully connected feed-forward network, which is applied to each position
# > separately and identically. This consists of two linear transformations with a ReLU
# > activation in between.
#
# $$
# \mathrm{FFN}(x) = \max(0,\, x W_1 + b_1)\, W_2 + b_2
# $$
#
# The inner width is four times the model width: 2048 for the Transformer's 512, and
# $I = 4H$ = 3072 for BERT-base. BERT {cite:p}`devlin2019bert` swaps ReLU for GELU (appendix A.2):
# "we use a gelu activation (Hendrycks and Gimpel, 2016) rather than the standard relu,
# following OpenAI GPT". GELU multiplies $x$ by the probability that a standard normal
# variable is below $x$:
#
# $$
# \mathrm{GELU}(x) = x\,\Phi(x) = \frac{x}{2}\left(1 + \mathrm{erf}\!\left(\frac{x}{\sqrt 2}\right)\right)
# \approx \frac{x}{2}\left(1 + \tanh\!\left(\sqrt{2/\pi}\,\left(x + 0.044715\,x^3\right)\right)\right)
# $$
#
# The tanh form is a faster approximation, offered in the GELU paper itself
# {cite:p}`hendrycks2016gaussian`. GPT-2 uses it,
# and so does minGPT, which follows GPT-2. BERT's checkpoints were trained with the exact erf form: `hidden_act:
# "gelu"` in their `config.json`. We use that form too.

# %%
def gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))  # x * Phi(x), exact


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


grid = torch.linspace(-4, 4, 801)
assert_close(gelu(grid), F.gelu(grid))
assert_close(gelu(grid), bertedu.model.activation("gelu")(grid))  # what config "gelu" selects
assert_close(gelu_tanh(grid), F.gelu(grid, approximate="tanh"))

# %% mystnb={"image": {"alt": "Left: ReLU, exact GELU and tanh-approximated GELU on x from -4 to 4; right: the tiny gap between the two GELU forms."}}
fig, (ax, ax_diff) = plt.subplots(1, 2, figsize=(11, 4))
ax.plot(grid, F.relu(grid), label="ReLU", lw=2, color="tab:gray")
ax.plot(grid, gelu(grid), label="GELU (exact, erf)", lw=2)
ax.plot(grid, gelu_tanh(grid), "--", label="GELU (tanh approx.)", lw=2)
ax.set(xlabel="x", ylabel="activation", title="GELU vs ReLU", ylim=(-0.5, 3))
ax.legend()
ax_diff.plot(grid, gelu(grid) - gelu_tanh(grid), color="tab:red")
ax_diff.set(xlabel="x", ylabel="exact - tanh", title="The tanh approximation's error")
ax_diff.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
fig.tight_layout()

# %%
gap = (gelu(grid) - gelu_tanh(grid)).abs().max().item()
dip = grid[gelu(grid).argmin()].item()
assert 1e-5 < gap < 1e-3, gap  # small, but not zero: a checkpoint's numbers depend on it
assert -0.8 < dip < -0.7, dip  # GELU is not monotone: a small dip below zero near x = -0.75
glue("ch4_gelu_tanh_gap", gap, display=False)
glue("ch4_gelu_min", gelu(grid).min().item(), display=False)
glue("ch4_gelu_argmin", dip, display=False)


# %% [markdown]
# Unlike ReLU, GELU is smooth, and it lets small negative inputs through a little. Its
# minimum is {glue:text}`ch4_gelu_min:.3f`, at $x \approx$ {glue:text}`ch4_gelu_argmin:.2f`.
# The two GELU forms differ by at most {glue:text}`ch4_gelu_tanh_gap:.1e` on $[-4, 4]$.
# That is tiny, but it is not zero. If we ran a BERT checkpoint with the wrong form, its
# outputs would drift slightly from the reference.
#
# The feed-forward net, with MiniLM's layer-0 weights ($H = 384 \to I = 1536 \to H$):

# %%
def feed_forward(x, p):
    h = gelu(linear(x, p["intermediate.dense.weight"], p["intermediate.dense.bias"]))  # (B, T, I)
    return linear(h, p["output.dense.weight"], p["output.dense.bias"])  # (B, T, H)


ffn_out = feed_forward(x, p0)
# "applied to each position separately and identically": token by token gives the same
one_by_one = torch.stack([feed_forward(x[:, t], p0) for t in range(T)], dim=1)
assert_close(ffn_out, one_by_one)

# the first half is the library's BertIntermediate
intermediate = bertedu.model.BertIntermediate(config).eval()
intermediate.load_state_dict(minilm.encoder.layer[0].intermediate.state_dict())
assert_close(gelu(linear(x, p0["intermediate.dense.weight"], p0["intermediate.dense.bias"])),
             intermediate(x))


# %% [markdown]
# ## 4.5 Residual connections and LayerNorm (post-LN)
#
# Each of the two sub-layers, attention and feed-forward, is wrapped in the same way.
# {cite:t}`vaswani2017attention`, section 3.1:
#
# > We employ a residual connection around each of the two sub-layers, followed by layer
# > normalization. That is, the output of each sub-layer is
# > $\mathrm{LayerNorm}(x + \mathrm{Sublayer}(x))$.
#
# The residual connection $x + \mathrm{Sublayer}(x)$ lets a block make a small change to
# its input instead of rebuilding it. It also gives gradients a direct path through a deep
# stack. LayerNorm {cite:p}`ba2016layer` then rescales each token's vector separately. It uses the mean $\mu$ and
# variance $\sigma^2$ of that token's $H$ features, followed by a learned per-feature scale
# $\gamma$ and shift $\beta$:
#
# $$
# \mathrm{LayerNorm}(x) = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \varepsilon}} + \beta,
# \qquad \mu = \frac1H \sum_{j} x_j,\quad \sigma^2 = \frac1H \sum_j (x_j - \mu)^2
# $$
#
# BERT uses $\varepsilon = 10^{-12}$ (`layer_norm_eps`), not PyTorch's default $10^{-5}$.

# %%
def layer_norm(x, gamma, beta, eps=config.layer_norm_eps):
    mu = x.mean(dim=-1, keepdim=True)  # (B, T, 1): one mean per token
    var = x.var(dim=-1, keepdim=True, unbiased=False)  # divide by H, not H - 1
    return gamma * (x - mu) / torch.sqrt(var + eps) + beta


def add_and_norm(x, sublayer_out, gamma, beta):
    return layer_norm(x + sublayer_out, gamma, beta)  # post-LN: normalize after the residual sum


gamma, beta = p0["output.LayerNorm.weight"], p0["output.LayerNorm.bias"]
assert_close(layer_norm(x, gamma, beta), F.layer_norm(x, (H,), gamma, beta, eps=1e-12))

# %% [markdown]
# **Dropout.** During pretraining and fine-tuning, BERT applies dropout ($p = 0.1$) in
# three places. It drops attention weights, and it drops each sub-layer's output just before
# the residual sum, $\mathrm{LayerNorm}(x + \mathrm{Dropout}(\mathrm{Sublayer}(x)))$. It
# also drops the embedding output. At inference, dropout is the identity. Our functions
# leave it out, and the library's model is in `eval()` mode, where its dropout layers do
# nothing.

# %%
assert not minilm.training  # from_pretrained returns the model in eval mode


# %% [markdown]
# > **Post-LN (BERT) vs pre-LN (GPT-2, nanoGPT).** BERT follows the original Transformer:
# > it normalizes *after* the residual sum, $x \leftarrow \mathrm{LN}(x + F(x))$, so every
# > block's output is a normalized vector. GPT-2 {cite:p}`radford2019language` moved the LayerNorm
# > to the *input* of each sub-layer, $x \leftarrow x + F(\mathrm{LN}(x))$, and added one
# > final LayerNorm after the last block. nanoGPT, minGPT and the Annotated Transformer are
# > written this way too. In pre-LN, the sum $x$ (the "residual stream") is never
# > normalized inside the stack. This makes deep stacks easier to train, often without a
# > learning-rate warm-up (Xiong et al., 2020, *On Layer Normalization in the Transformer
# > Architecture*). The two orders are different functions. A checkpoint trained post-LN
# > gives wrong outputs in a pre-LN block, so to load BERT's weights we must follow BERT's
# > order.

# %% [markdown]
# ## 4.6 One encoder block
#
# Now we put the pieces together. With $X$ of shape `[B, T, H]`:
#
# $$
# \begin{aligned}
# X' &= \mathrm{LayerNorm}_1\big(X + \mathrm{MultiHead}(X)\,W^O + b^O\big) \\
# Y &= \mathrm{LayerNorm}_2\big(X' + \mathrm{FFN}(X')\big)
# \end{aligned}
# $$
#
# The output has the same shape as the input. That is what lets us stack blocks.

# %%
def encoder_block(x, p, A, mask=None):
    context, weights = multi_head_attention(x, p, A, mask)  # (B, T, H), (B, A, T, T)
    attended = linear(context, p["attention.output.dense.weight"], p["attention.output.dense.bias"])  # W^O
    x = add_and_norm(x, attended, p["attention.output.LayerNorm.weight"], p["attention.output.LayerNorm.bias"])
    x = add_and_norm(x, feed_forward(x, p), p["output.LayerNorm.weight"], p["output.LayerNorm.bias"])
    return x, weights  # (B, T, H): same shape as the input


# %%
# NBVAL_CHECK_OUTPUT
block = bertedu.model.BertLayer(config).eval()
block.load_state_dict(minilm.encoder.layer[0].state_dict())

mine, my_weights = encoder_block(x, p0, A, mask)
theirs, their_weights = block(x, mask, output_attentions=True)
assert_close(mine, theirs)
assert_close(my_weights, their_weights)
assert_close(mine, block(x, mask)[0])  # the fused attention path agrees too
print("one block:", tuple(x.shape), "->", tuple(mine.shape))


# %% [markdown]
# > **Coming from d2l?** d2l's {cite:p}`zhang2023dive` `TransformerEncoderBlock` is also post-LN (its `AddNorm` is
# > `LayerNorm(dropout(Y) + X)`), and its `BERTEncoder` stacks such blocks. It differs from
# > real BERT checkpoints in a few places. Its feed-forward net uses ReLU, not exact GELU.
# > Its LayerNorm keeps PyTorch's $\varepsilon = 10^{-5}$. It masks padding with
# > `valid_lens` and writes $-10^6$ into the scores, where BERT adds the dtype's minimum from
# > a 1/0 `attention_mask`. Its embedding sum gets no LayerNorm or dropout. And it has no
# > tanh pooler on `[CLS]`. `bertedu` follows the checkpoints, so it can load them.

# %% [markdown]
# ## 4.7 Stacking $L$ blocks: the whole encoder
#
# {cite:t}`devlin2019bert`, section 3:
#
# > BERT's model architecture is a multi-layer bidirectional Transformer encoder based on
# > the original implementation described in Vaswani et al. (2017) [...] We denote the
# > number of layers (i.e., Transformer blocks) as L, the hidden size as H, and the number
# > of self-attention heads as A.
#
# The encoder applies $L$ blocks in turn, each with its own weights. After the last block
# comes BERT's **pooler**, $\tanh(W h_{\texttt{[CLS]}} + b)$, which reads the first token's
# vector. The next-sentence and classification heads use it (chapters 5 and 8).

# %%
def encoder(x, state, config, mask=None):
    for i in range(config.num_hidden_layers):
        x, _ = encoder_block(x, layer_weights(state, i), config.num_attention_heads, mask)
    return x  # (B, T, H)


def pooler(hidden, state):
    return torch.tanh(linear(hidden[:, 0], state["pooler.dense.weight"], state["pooler.dense.bias"]))  # (B, H)


def my_bert(batch, state, config):
    x = minilm.embeddings(batch["input_ids"], batch["token_type_ids"])  # chapter 3, from the library
    hidden = encoder(x, state, config, additive_mask(batch["attention_mask"]))
    return hidden, pooler(hidden, state)


# %%
hidden, pooled = my_bert(batch, state, config)
out = minilm(**batch)
assert_close(hidden, out.last_hidden_state)
assert_close(pooled, out.pooler_output)

# %% [markdown]
# Now a larger test: real sentences from the SST-2 dev set, padded into batches. We compare
# only the real tokens. Outputs at `[PAD]` positions are never used. `bertedu` itself is
# checked against Hugging Face `transformers`, the reference implementation, in one assert.

# %%
import transformers

transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()
reference = transformers.BertModel.from_pretrained(str(folder)).eval()

sst2 = [record["sentence"] for record in bertedu.data.load_sst2("dev")]
texts = sst2 if FULL else sst2[:16]
worst = 0.0
for start in range(0, len(texts), 64):
    chunk = tokenizer(texts[start:start + 64], padding=True, return_tensors="pt")
    real = chunk["attention_mask"].bool()  # (B, T): compare real tokens only
    mine, _ = my_bert(chunk, state, config)
    ours = minilm(**chunk).last_hidden_state
    assert_close(mine[real], ours[real])  # our hand-written encoder == bertedu
    assert_close(ours[real], reference(**chunk).last_hidden_state[real])  # bertedu == transformers
    worst = max(worst, (mine[real] - ours[real]).abs().max().item())
print(f"{len(texts)} sentences; largest |ours - bertedu| = {worst:.1e}")
glue("ch4_parity_sentences", len(texts), display=False)
glue("ch4_parity_worst", worst, display=False)

# %% [markdown]
# Our few dozen lines of functions reproduce the real checkpoint on
# {glue:text}`ch4_parity_sentences:d` sentences. The largest difference is
# {glue:text}`ch4_parity_worst:.1e`, which is float32 rounding noise.
#
# The mask matters, and here is the proof. Encode the second sentence alone (no padding)
# and inside the padded batch. With the mask, its real tokens get identical vectors both
# ways. Without the mask, telling the model that `[PAD]` is a real token, the vectors change.

# %%
alone = tokenizer(sentences[1], return_tensors="pt")
n = alone["input_ids"].size(1)
h_alone = minilm(**alone).last_hidden_state[0]  # (n, H)
h_batch = minilm(**batch).last_hidden_state[1, :n]  # same sentence, padded in the batch
no_mask = {**batch, "attention_mask": torch.ones_like(batch["attention_mask"])}
h_unmasked = minilm(**no_mask).last_hidden_state[1, :n]

assert_close(h_alone, h_batch)
change = (h_alone - h_unmasked).norm(dim=-1) / h_alone.norm(dim=-1)  # (n,) relative change per token
print("relative change of each token's vector without the mask:", change.round(decimals=2))
assert change.max() > 0.05, change
glue("ch4_unmasked_change", change.max().item(), display=False)


# %% [markdown]
# Without the mask, a single `[PAD]` token moves some token vectors by
# {glue:text}`ch4_unmasked_change:.0%` of their length. That is far above rounding noise:
# the model reads the padding as part of the sentence.

# %% [markdown]
# ## 4.8 How big is BERT? Counting parameters exactly
#
# {cite:t}`devlin2019bert` report two sizes:
#
# > We primarily report results on two model sizes: BERT-BASE (L=12, H=768, A=12, Total
# > Parameters=110M) and BERT-LARGE (L=24, H=1024, A=16, Total Parameters=340M).
# > BERT-BASE was chosen to have the same model size as OpenAI GPT for comparison purposes.
#
# Here they are next to the original Transformer. The figures are the papers' own:
#
# | model | layers | width $H$ ($d_\text{model}$) | heads $A$ | feed-forward | parameters (paper) |
# |---|---|---|---|---|---|
# | Transformer base {cite:p}`vaswani2017attention` | 6 encoder + 6 decoder | 512 | 8 | 2048 | 65M |
# | Transformer big | 6 encoder + 6 decoder | 1024 | 16 | 4096 | 213M |
# | BERT-base {cite:p}`devlin2019bert` | 12 encoder | 768 | 12 | 3072 | 110M |
# | BERT-large | 24 encoder | 1024 | 16 | 4096 | 340M |
#
# BERT keeps only the encoder. It is deeper than the Transformer, and BERT-large is as wide
# as "Transformer big". In every row the head width $H/A$ is 64.
#
# Now let us count exactly. A linear map from $m$ to $n$ features has $mn$ weights and $n$
# biases. A LayerNorm over $H$ features has $2H$ (its $\gamma$ and $\beta$). With vocabulary
# $V$, position table $P$, segment types $S$ and feed-forward width $I$:
#
# - **Embeddings:** three tables and one LayerNorm, $(V + P + S)H + 2H$.
# - **One block:** four $H \to H$ maps ($Q, K, V, O$), giving $4(H^2 + H)$. The
#   feed-forward net has $H \to I$ and $I \to H$, giving $2HI + I + H$. Two LayerNorms give
#   $4H$. In total: $4H^2 + 2HI + 9H + I$.
# - **Pooler:** one $H \to H$ map, $H^2 + H$.
#
# $$
# N = (V + P + S + 2)\,H \;+\; L\,(4H^2 + 2HI + 9H + I) \;+\; H^2 + H
# $$
#
# With $I = 4H$, a block has $12H^2 + 13H$ parameters: about $12H^2$.

# %%
def count_parameters(c):
    # the formula above, split by component; c is a BertConfig
    V, P, S = c.vocab_size, c.max_position_embeddings, c.type_vocab_size
    H, I, L = c.hidden_size, c.intermediate_size, c.num_hidden_layers
    return {
        "word embeddings": V * H,
        "position embeddings": P * H,
        "segment embeddings": S * H,
        "embedding LayerNorm": 2 * H,
        "attention (Q, K, V, O)": L * 4 * (H * H + H),
        "feed-forward": L * (2 * H * I + I + H),
        "block LayerNorms": L * 4 * H,
        "pooler": H * H + H,
    }


# %% [markdown]
# Next we check the formula against PyTorch's own count. We build BERT-base and BERT-large
# on PyTorch's `meta` device. There a tensor has a shape but no storage, so even BERT-large
# takes no memory and no time to initialise.

# %%
# NBVAL_CHECK_OUTPUT
sizes = {"BERT-base": BertConfig.base(), "BERT-large": BertConfig.large(), "MiniLM-L6": config}
totals = {}
for name, c in sizes.items():
    with torch.device("meta"):  # shapes only: no memory allocated, no random numbers drawn
        model = BertModel(c)
    counted = sum(t.numel() for t in model.parameters())
    formula = sum(count_parameters(c).values())
    assert formula == counted, (name, formula, counted)
    totals[name] = counted
    print(f"{name:10s}  formula {formula:>12,}   counted {counted:>12,}")
assert totals["MiniLM-L6"] == sum(t.numel() for t in minilm.parameters())  # the real checkpoint

# %%
with torch.device("meta"):
    pretraining = bertedu.BertForPreTraining(BertConfig.base())
heads_extra = sum(t.numel() for t in pretraining.parameters()) - totals["BERT-base"]
assert heads_extra < 0.01 * totals["BERT-base"]  # tiny, because the MLM decoder reuses E

base_parts = count_parameters(BertConfig.base())
H_base, L_base = 768, 12
glue("ch4_params_base", totals["BERT-base"], display=False)
glue("ch4_params_large", totals["BERT-large"], display=False)
glue("ch4_params_minilm", totals["MiniLM-L6"], display=False)
glue("ch4_params_per_block_base", (totals["BERT-base"] - base_parts["pooler"]
      - sum(v for k, v in base_parts.items() if "embedding" in k)) // L_base, display=False)
glue("ch4_12H2_base", 12 * H_base**2, display=False)
glue("ch4_pretraining_heads_base", heads_extra, display=False)

# %% [markdown]
# The formula gives {glue:text}`ch4_params_base:,d` parameters for BERT-base and
# {glue:text}`ch4_params_large:,d` for BERT-large. Rounded to two significant figures, these are the paper's "110M" and "340M": BERT-large's
# "340M" is {glue:text}`ch4_params_large:,d` rounded to the nearest ten million, not a count
# of 340 million, and BERT-base's "110M" is {glue:text}`ch4_params_base:,d` rounded.
# This book's MiniLM has {glue:text}`ch4_params_minilm:,d`.
# One block of BERT-base holds {glue:text}`ch4_params_per_block_base:,d` parameters, close
# to $12H^2$ = {glue:text}`ch4_12H2_base:,d`. The pretraining heads of chapter 5 add only
# {glue:text}`ch4_pretraining_heads_base:,d` more. This is because the masked-LM output
# layer reuses the word-embedding matrix (it is "tied") and owns only a bias.
#
# Where do the parameters go?

# %%
parts = pd.DataFrame({name: count_parameters(c) for name, c in sizes.items()})
shares = parts / parts.sum()
table = pd.DataFrame({f"{name}": [f"{n:,} ({s:.1%})" for n, s in zip(parts[name], shares[name])]
                      for name in parts.columns}, index=parts.index)
table.loc["total"] = [f"{n:,}" for n in parts.sum()]
table

# %% mystnb={"image": {"alt": "Stacked horizontal bars: the share of parameters in embeddings, attention, feed-forward, LayerNorm and pooler for MiniLM, BERT-base and BERT-large."}}
fig, ax = plt.subplots(figsize=(10, 3.2))
left = np.zeros(len(shares.columns))
colors = plt.cm.tab10.colors
for color, (part, row) in zip(colors, shares.iterrows()):
    ax.barh(shares.columns, row.values, left=left, color=color, label=part)
    left += row.values
ax.set(xlabel="share of the parameters", title="Where the parameters go", xlim=(0, 1))
ax.invert_yaxis()
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=11)
fig.tight_layout()

# %%
assert shares.loc["word embeddings", "MiniLM-L6"] > shares.loc["word embeddings", "BERT-base"] \
    > shares.loc["word embeddings", "BERT-large"]
glue("ch4_word_share_base", float(shares.loc["word embeddings", "BERT-base"]), display=False)
glue("ch4_word_share_large", float(shares.loc["word embeddings", "BERT-large"]), display=False)
glue("ch4_word_share_minilm", float(shares.loc["word embeddings", "MiniLM-L6"]), display=False)
glue("ch4_ffn_share_base", float(shares.loc["feed-forward", "BERT-base"]), display=False)

# %% [markdown]
# The feed-forward nets are the largest part of BERT-base,
# {glue:text}`ch4_ffn_share_base:.0%`, twice the attention projections. The word-embedding
# table grows only with $H$, while the blocks grow with $LH^2$. So its share shrinks as
# models grow: {glue:text}`ch4_word_share_minilm:.0%` of small MiniLM,
# {glue:text}`ch4_word_share_base:.0%` of BERT-base, and
# {glue:text}`ch4_word_share_large:.0%` of BERT-large. ALBERT, in chapter 13, attacks
# exactly this table.

# %% [markdown]
# ## 4.9 Encoder vs decoder: the causal mask
#
# BERT's mask hides padding and nothing else, so every token sees every token, both left
# and right. OpenAI's GPT {cite:p}`radford2018improving` is a Transformer *decoder*. It is trained
# to predict the next token. Position $t$ must therefore not see positions $t+1, t+2,
# \dots$, or the task would be trivial. A **causal mask** hides the upper triangle of the
# score matrix. In the words of {cite:t}`devlin2019bert` (section 3):
#
# > the BERT Transformer uses bidirectional self-attention, while the GPT Transformer uses
# > constrained self-attention where every token can only attend to context to its left.
#
# We build both masks for the padded sentence, as "may query $i$ see key $j$?" tables.

# %%
# NBVAL_CHECK_OUTPUT
real_key = batch["attention_mask"][1].bool()  # (T,): key j is a real token
bidirectional = real_key[None, :].expand(T, T)  # (T, T): every query sees every real key
causal = torch.ones(T, T, dtype=torch.bool).tril() & real_key[None, :]  # ... and only keys j <= i
print("pairs allowed, bidirectional:", int(bidirectional.sum()), "  causal:", int(causal.sum()))


# %% mystnb={"image": {"alt": "Side by side: the bidirectional padding-only mask lets every token attend to every real token; the causal mask is lower-triangular."}}
def draw_mask(ax, keep, labels, title):
    ax.imshow(keep.float(), cmap="Greens", vmin=0, vmax=1.3)
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="key (attended to)", ylabel="query (attending)", title=title)


fig, axes = plt.subplots(1, 2, figsize=(11, 5.2))
draw_mask(axes[0], bidirectional, tokens[1], "BERT: bidirectional (padding only)")
draw_mask(axes[1], causal, tokens[1], "GPT: causal (left context only)")
fig.suptitle("Which keys each query may attend to (green = allowed)")
fig.tight_layout()

# %% [markdown]
# To use these tables as additive masks, we combine the booleans first and convert once.
# Adding two additive masks is a trap. Where both mask a position, the sum
# $\text{min} + \text{min}$ overflows to $-\infty$, and the NaN risk of section 4.2 comes
# back:

# %%
fmin = torch.tensor(torch.finfo(torch.float32).min)  # a float32 tensor, as in a real mask
print("finfo.min + finfo.min =", (fmin + fmin).item())
assert (fmin + fmin).isinf()


def to_additive(keep, dtype=torch.float32):
    return torch.zeros(keep.shape, dtype=dtype).masked_fill(~keep, torch.finfo(dtype).min)


# %% [markdown]
# What does the causal mask do to understanding? We run our encoder, with MiniLM's weights,
# on the two "bank" sentences, once with each mask. Under the causal mask, "bank" (position
# 2) sees only `[CLS] the bank`, which is identical in both sentences. So its vector cannot
# tell a river bank from a money bank. Under the bidirectional mask it sees "river" or
# "rates". (MiniLM was trained bidirectionally. Running it with a causal mask is a thought
# experiment about information flow, not a usable model.)

# %%
keep_bi = batch["attention_mask"].bool()[:, None, None, :]  # (B, 1, 1, T): padding only
keep_causal = keep_bi & torch.ones(T, T, dtype=torch.bool).tril()  # (B, 1, T, T): and j <= i
bank = tokens[0].index("bank")
assert bank == tokens[1].index("bank")  # same position in both sentences

similarity = {}
for name, keep in [("bidirectional", keep_bi), ("causal", keep_causal)]:
    h = encoder(x, state, config, to_additive(keep))
    similarity[name] = F.cosine_similarity(h[0, bank], h[1, bank], dim=0).item()
    print(f"{name:>13}: cosine('bank' by the river, 'bank' raising rates) = {similarity[name]:.4f}")
assert abs(similarity["causal"] - 1) < 1e-5  # same left context -> same vector
assert similarity["bidirectional"] < 0.95  # the right context changed the vector
glue("ch4_bank_cos_bidirectional", similarity["bidirectional"], display=False)

# %% [markdown]
# With the bidirectional mask, the two "bank" vectors have cosine similarity
# {glue:text}`ch4_bank_cos_bidirectional:.2f`. With the causal mask they are identical.
# This is the core of the paper's argument. For *understanding* tasks (classification,
# tagging, question answering), every token should see its whole context. A left-to-right
# model cannot look ahead. Bidirectional attention has a cost, though. A model that sees
# every token cannot be trained to predict the next one, because the answer is in its
# input. BERT therefore trains on a different task: it predicts *masked* tokens (chapter
# 5).
#
# For *generation* it is the other way round. Text is produced one token at a time, and
# the next token depends only on the ones before it. That is exactly what the causal mask
# enforces. The causal mask also gives a training bonus: one forward pass trains the
# prediction at every position at once, without leaking the answers. So GPT suits
# generation, and BERT suits understanding. Chapter 15 comes back to what it takes to make
# BERT generate.

# %% [markdown]
# ## 4.10 Attention maps of a real checkpoint
#
# `output_attentions=True` makes the model return every layer's attention weights. They
# form a tuple of $L$ tensors of shape `[B, A, T, T]`: row $i$ of a head is how query $i$
# spreads its attention over the keys. We look at one sentence with a pronoun.

# %%
# NBVAL_CHECK_OUTPUT
sentence = "the cat sat on the mat because it was tired."
encoded = tokenizer(sentence, return_tensors="pt")
words = tokenizer.convert_ids_to_tokens(encoded["input_ids"][0].tolist())
maps = torch.stack(minilm(**encoded, output_attentions=True).attentions)[:, 0]  # (L, A, T, T)
print(words)
print("attention maps:", tuple(maps.shape), "(layers, heads, queries, keys)")

# %%
assert_close(maps.sum(-1), torch.ones(maps.shape[:-1]))  # every row is a distribution
n_words = len(words)
# four questions, each answered by searching all 72 heads
previous = torch.stack([maps[..., i, i - 1] for i in range(1, n_words)], -1).mean(-1)  # (L, A)
following = torch.stack([maps[..., i, i + 1] for i in range(n_words - 1)], -1).mean(-1)
to_cls = maps[..., :, 0].mean(-1)  # average weight on [CLS]
it, cat = words.index("it"), words.index("cat")
it_to_cat = maps[..., it, cat] - maps[..., :, cat].mean(-1)  # "it" looks at "cat" more than others do


def best_head(score):
    layer, head = divmod(int(score.argmax()), score.size(1))
    return layer, head, score[layer, head].item()


picked = {
    "previous token": best_head(previous),
    "next token": best_head(following),
    '"it" -> "cat"': best_head(it_to_cat),
    "[CLS] (a resting place)": best_head(to_cls),
}
for what, (layer, head, score) in picked.items():  # score: what the search maximized
    print(f"{what:25s} layer {layer}, head {head}: score {score:.2f}")


# %% mystnb={"image": {"alt": "Attention heatmaps of four MiniLM heads on one sentence, tokens on both axes: a previous-token head, a next-token head, a head linking it to cat, and a head resting on [CLS]."}}
def plot_attention(ax, weights, labels, title):
    # weights: (T, T), row = query, column = key
    image = ax.imshow(weights, cmap="Reds", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="key", title=title)
    return image


fig, axes = plt.subplots(2, 2, figsize=(11, 11), layout="constrained")
for ax, (what, (layer, head, _)) in zip(axes.flat, picked.items()):
    image = plot_attention(ax, maps[layer, head], words, f"{what}: layer {layer}, head {head}")
    ax.set_ylabel("query")
fig.colorbar(image, ax=axes, shrink=0.6, label="attention weight")
fig.suptitle("Four heads of MiniLM on one sentence");

# %%
layer_prev, head_prev, prev_value = picked["previous token"]
layer_it, head_it, _ = picked['"it" -> "cat"']
it_value = maps[layer_it, head_it, it, cat].item()  # what "it" gives "cat" in that head
others_value = maps[layer_it, head_it, :, cat].mean().item()  # what an average token gives "cat"
_, _, cls_value = picked["[CLS] (a resting place)"]
assert prev_value > 0.5 and cls_value > 0.5  # pronounced patterns exist
assert it_value > 2 * others_value, (it_value, others_value)  # specific to the pronoun
glue("ch4_it_others", others_value, display=False)
glue("ch4_prev_layer", layer_prev, display=False)
glue("ch4_prev_head", head_prev, display=False)
glue("ch4_prev_value", prev_value, display=False)
glue("ch4_it_layer", layer_it, display=False)
glue("ch4_it_head", head_it, display=False)
glue("ch4_it_value", it_value, display=False)
glue("ch4_cls_value", cls_value, display=False)
glue("ch4_uniform_weight", 1 / n_words, display=False)

# %% [markdown]
# Each head above was found by a search over all 72 heads, not picked by hand. Head
# {glue:text}`ch4_prev_head:d` of layer {glue:text}`ch4_prev_layer:d` sends on average
# {glue:text}`ch4_prev_value:.2f` of every token's attention to the token just before it. A
# uniform spread would give {glue:text}`ch4_uniform_weight:.2f`. Head
# {glue:text}`ch4_it_head:d` of layer {glue:text}`ch4_it_layer:d` gives
# {glue:text}`ch4_it_value:.2f` of the attention of "it" to "cat", the noun the pronoun
# refers to. The average token gives "cat" only {glue:text}`ch4_it_others:.2f` in that head. Some heads park most of their weight
# ({glue:text}`ch4_cls_value:.2f` on average) on `[CLS]`. Clark et al. (2019, *What Does
# BERT Look At?*) found the same kinds of heads in BERT-base. There, previous- and
# next-token heads, coreference heads, and heads that rest on `[SEP]` behave like a
# "no-op" when a head has nothing to do. Attention maps are suggestive, but they are not an
# explanation of the model's decision. What a head passes on also depends on its values
# and on everything downstream.
#
# For an overview we use d2l's `show_heatmaps`: all 12 heads of the first and the last
# layer (every layer with `FULL`). Rows are layers, and columns are heads.

# %% mystnb={"image": {"alt": "A grid of attention maps of every head in the first and last MiniLM layers, query positions down and key positions across."}}
from matplotlib_inline.backend_inline import set_matplotlib_formats

shown_layers = list(range(config.num_hidden_layers)) if FULL else [0, config.num_hidden_layers - 1]
d2l.show_heatmaps(maps[shown_layers], xlabel="key", ylabel="query",
                  titles=[f"head {h}" for h in range(A)], figsize=(18, 1.7 * len(shown_layers) + 0.6))
for i, ax in enumerate(plt.gcf().axes[:-1]):  # the last axes is the colour bar
    if i % A == 0:
        ax.set_ylabel(f"layer {shown_layers[i // A]}\nquery")
plt.gcf().suptitle("All heads of MiniLM on one sentence (rows: layers, columns: heads)")
set_matplotlib_formats("png")  # show_heatmaps switches the notebook to SVG; switch back

# %% [markdown]
# Some heads of layer 0 follow positions. They show diagonals, where each token looks at
# itself or a neighbour. Many heads of the last layer show vertical stripes instead, where
# every query looks at the same few tokens. We can measure this. For each layer, we compute
# the average weight a token gives to itself and its two neighbours.

# %%
n = len(words)
near = sum(maps[..., i, j] for i in range(n) for j in range(max(0, i - 1), min(n, i + 2))) / n  # (L, A)
near_by_layer = near.mean(-1)  # average over the heads
print("weight on i-1, i, i+1, by layer:", near_by_layer.round(decimals=2))
assert near_by_layer[0] > near_by_layer[-1]
glue("ch4_near_first", near_by_layer[0].item(), display=False)
glue("ch4_near_last", near_by_layer[-1].item(), display=False)

# %% [markdown]
# On average, a token gives {glue:text}`ch4_near_first:.2f` of its attention to itself and
# its neighbours in layer 0, and {glue:text}`ch4_near_last:.2f` in the last layer.

# %% [markdown]
# ## Summary
#
# - **Scaled dot-product attention**, $\mathrm{softmax}(QK^\top/\sqrt{d_k})V$, gives each
#   token a weighted average of the other tokens' values. The $\sqrt{d_k}$ keeps the
#   softmax from saturating as heads get wider. At $d_k = 64$, raw scores spread with
#   standard deviation {glue:text}`ch4_std_dot_64:.1f`.
# - **Padding masks** add 0 to real keys and `finfo(dtype).min` to padded keys. This gives
#   exactly zero weight, stays finite (no NaN in fully masked rows), and works in every
#   precision. Combine masks as booleans, never by adding two additive masks.
# - **Multi-head attention** is one $H \times H$ projection reshaped into $A$ heads of
#   width $H/A$, attended in parallel, then concatenated and mixed by $W^O$.
# - **The feed-forward net** ($H \to 4H \to H$, exact erf GELU) works on each position on
#   its own. Each sub-layer is wrapped **post-LN**: $\mathrm{LayerNorm}(x +
#   \mathrm{Sublayer}(x))$, with $\varepsilon = 10^{-12}$. GPT-2 and nanoGPT use pre-LN
#   instead.
# - Our hand-written block and the stack of $L$ blocks equal `bertedu.model.BertLayer` and
#   `bertedu.BertModel` on the real MiniLM weights. `bertedu` equals `transformers`.
# - **Size:** $N = (V+P+S+2)H + L(4H^2 + 2HI + 9H + I) + H^2 + H$. That is
#   {glue:text}`ch4_params_base:,d` for BERT-base and {glue:text}`ch4_params_large:,d` for
#   BERT-large, most of it in the blocks' $\approx 12H^2$ per layer.
# - **Encoder vs decoder:** BERT's bidirectional mask lets "bank" see "river". GPT's causal
#   mask does not (cosine {glue:text}`ch4_bank_cos_bidirectional:.2f` vs exactly 1). That
#   suits GPT to generation and BERT to understanding.
# - **Attention maps** of a real checkpoint show heads that track the previous token,
#   pronoun-to-noun links, and resting places such as `[CLS]`.
#
# ## Exercises
#
# The exercises for this chapter are the nbgrader assignment `exercises/source/04_encoder/04_encoder.ipynb`, with reference solutions. `make exercises` writes the student version, without them, to `exercises/release/04_encoder/`; instructors, see the guide "Teaching with this book".
