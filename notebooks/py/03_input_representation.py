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
# # 3. Input representation
#
# The tokenizer of Chapter 2 turns text into WordPiece ids; the encoder of Chapter 4 works on
# vectors. This chapter builds the layer in between. BERT gives every position three ids (which
# WordPiece, which sentence, which position), looks each one up in its own table, adds the three
# vectors, and normalises the sum. That is the whole input layer, and it is small enough to build
# by hand and check against a real checkpoint.
#
# ## What you will be able to do
#
# - Turn one sentence, `[CLS] A [SEP]`, or a pair of sentences, `[CLS] A [SEP] B [SEP]`, into
#   the three sequences BERT reads: token ids, segment ids (`token_type_ids`) and positions.
# - Build BERT's embedding layer from three `nn.Embedding` tables, a LayerNorm and dropout; load
#   MiniLM's weights into it; and show that it gives the same output as `bertedu.model.BertEmbeddings`.
# - Explain why adding the three vectors loses nothing: the sum is one linear map of the
#   concatenated one-hot codes. You will also check this numerically.
# - Pad a batch of different lengths, build its attention mask, and show that the mask keeps
#   padding from changing the vectors of the real tokens.
# - Read the learned position embeddings of a real checkpoint, and compare them with the fixed
#   sinusoids of the original Transformer.
#
# ## Setup
#
# Imports, fixed seeds, and the book's one switch. Nothing in this chapter trains, so the whole
# notebook runs in seconds on a CPU. `FULL` (set the environment variable `BERTEDU_FULL=1`) only
# makes the position-embedding heatmaps cover all 512 positions instead of the first 128.

# %%
import os
import random

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.patches import Patch
from myst_nb import glue
from torch import nn

import bertedu
from bertedu.model import BertEmbeddings
from bertedu.tokenization import BertTokenizer

# %config InlineBackend.figure_format = 'png'
plt.rcParams.update({"font.size": 12})

random.seed(0)
np.random.seed(0)
torch.manual_seed(0)

# The one knob of the book. Here FULL only widens the position plots
# from the first 128 positions to all 512.
FULL = os.environ.get("BERTEDU_FULL", "0") == "1"

# %% [markdown]
# ## 3.1 From text to three sequences of ids
#
# Section 3 of the BERT paper {cite:p}`devlin2019bert` fixes the input format:
#
# > The first token of every sequence is always a special classification token (`[CLS]`). [...]
# > Sentence pairs are packed together into a single sequence. We differentiate the sentences in
# > two ways. First, we separate them with a special token (`[SEP]`). Second, we add a learned
# > embedding to every token indicating whether it belongs to sentence A or sentence B.
#
# So one sentence becomes `[CLS] A [SEP]`, and a pair becomes `[CLS] A [SEP] B [SEP]`. Every
# position carries three integers:
#
# - its **token id**, the WordPiece's row in the vocabulary;
# - its **segment id** (`token_type_ids` in Hugging Face's names): 0 for `[CLS] A [SEP]`, and 1
#   for `B [SEP]`;
# - its **position**, $0, 1, \dots, T-1$.
#
# We use the tokenizer of the real checkpoint, all-MiniLM-L6-v2, which is an uncased BERT with 6
# layers and width 384.

# %%
tokenizer = BertTokenizer.from_pretrained(bertedu.minilm_path())
sentence_a = "The unaffable cat sat on the mat."
sentence_b = "It purred anyway."


def print_inputs(encoding):
    # One row per WordPiece: the three integers BERT reads at that position.
    tokens = tokenizer.convert_ids_to_tokens(encoding["input_ids"])
    print(f"{'position':>8}  {'token':<8} {'token id':>8}  {'segment id':>10}")
    for position, (token, token_id, segment) in enumerate(
            zip(tokens, encoding["input_ids"], encoding["token_type_ids"])):
        print(f"{position:>8}  {token:<8} {token_id:>8}  {segment:>10}")


# %% [markdown]
# One sentence, `[CLS] A [SEP]`:

# %%
# NBVAL_CHECK_OUTPUT
single = tokenizer(sentence_a)
print_inputs(single)

# %% [markdown]
# A pair, `[CLS] A [SEP] B [SEP]`. Sentence B and its closing `[SEP]` get segment id 1:

# %%
# NBVAL_CHECK_OUTPUT
pair = tokenizer(sentence_a, sentence_b)
print_inputs(pair)

# %% [markdown]
# Three things to notice:
#
# - Positions count **WordPieces, not words**. The rare word "unaffable" takes up three
#   positions (`una ##ffa ##ble`), and so does "purred".
# - The tokenizer returns token ids and segment ids, but no positions. The model makes the
#   positions itself, as `torch.arange(T)`, because they are always $0, \dots, T-1$.
# - `[CLS]` is always at position 0. We will see this again in the position table.
#
# The segment ids follow a rule simple enough to check from the lengths of A and B alone:

# %%
n_a, n_b = len(tokenizer.tokenize(sentence_a)), len(tokenizer.tokenize(sentence_b))
expected_segments = [0] * (1 + n_a + 1) + [1] * (n_b + 1)  # [CLS] A [SEP] | B [SEP]
assert pair["token_type_ids"] == expected_segments, pair["token_type_ids"]
assert single["token_type_ids"] == [0] * (n_a + 2)

# %% [markdown]
# ## 3.2 Three tables, one sum
#
# For the token at position $t$, with WordPiece id $w_t$ and segment id $s_t$, BERT looks up
# one row in each of three learned tables and adds them:
#
# $$
# x_t = E_{\text{tok}}[w_t] + E_{\text{seg}}[s_t] + E_{\text{pos}}[t],
# \qquad E_{\text{tok}} \in \mathbb{R}^{V \times H},\;
# E_{\text{seg}} \in \mathbb{R}^{2 \times H},\;
# E_{\text{pos}} \in \mathbb{R}^{P \times H}.
# $$
#
# The paper puts it in one sentence: "For a given token, its input representation is
# constructed by summing the corresponding token, segment, and position embeddings." The
# sum then goes through a LayerNorm and dropout. The paper does not spell this step out, but
# Google's code does it (`embedding_postprocessor`), and every checkpoint depends on it:
#
# $$
# h^{(0)}_t = \operatorname{Dropout}\big(\operatorname{LayerNorm}(x_t)\big).
# $$
#
# Here are the three tables of the real checkpoint:

# %%
model = bertedu.BertModel.from_pretrained(bertedu.minilm_path()).eval()
config = model.config
library_embeddings = model.embeddings  # a bertedu.model.BertEmbeddings
assert isinstance(library_embeddings, BertEmbeddings)

# %%
# NBVAL_CHECK_OUTPUT
E_tok = library_embeddings.word_embeddings.weight.detach()        # (V, H)
E_seg = library_embeddings.token_type_embeddings.weight.detach()  # (2, H)
E_pos = library_embeddings.position_embeddings.weight.detach()    # (P, H)
for name, table in [("token", E_tok), ("segment", E_seg), ("position", E_pos)]:
    print(f"{name:>8} table: {tuple(table.shape)}")

n_table_params = E_tok.numel() + E_seg.numel() + E_pos.numel()
n_model_params = sum(p.numel() for p in model.parameters())
print(f"parameters in the three tables: {n_table_params:,}")
print(f"parameters in the whole model:    {n_model_params:,}")

# %%
glue("ch3_vocab_size", config.vocab_size, display=False)
glue("ch3_hidden_size", config.hidden_size, display=False)
glue("ch3_max_positions", config.max_position_embeddings, display=False)
glue("ch3_table_share", 100 * n_table_params / n_model_params, display=False)
glue("ch3_norm_tok", E_tok.norm(dim=-1).mean().item(), display=False)
glue("ch3_norm_seg", E_seg.norm(dim=-1).mean().item(), display=False)
glue("ch3_norm_pos", E_pos.norm(dim=-1).mean().item(), display=False)


# %% [markdown]
# The word table has $V =$ {glue:text}`ch3_vocab_size:,d` rows of width $H =$
# {glue:text}`ch3_hidden_size:d`. In a model this small, the three tables hold
# {glue:text}`ch3_table_share:.0f`% of all the parameters. The position table has
# $P =$ {glue:text}`ch3_max_positions:d` rows, so BERT cannot read a longer input; we come back
# to this below. On average a word vector is {glue:text}`ch3_norm_tok:.2f` long, a segment vector
# {glue:text}`ch3_norm_seg:.2f` and a position vector {glue:text}`ch3_norm_pos:.2f`. The word
# dominates the sum, but the other two are far from negligible.
#
# ### Building the layer plainly
#
# Three `nn.Embedding` tables, a sum, a LayerNorm and dropout. The names here are our own; the
# library uses Hugging Face's names (`word_embeddings`, `token_type_embeddings`,
# `position_embeddings`, `LayerNorm`) so that real checkpoints load without a renaming table.

# %%
class PlainEmbeddings(nn.Module):
    # Token + segment + position embeddings, summed, then LayerNorm and dropout.

    def __init__(self, vocab_size, hidden_size, max_positions, num_segments,
                 dropout, eps):
        super().__init__()
        self.token = nn.Embedding(vocab_size, hidden_size)
        self.segment = nn.Embedding(num_segments, hidden_size)
        self.position = nn.Embedding(max_positions, hidden_size)
        self.norm = nn.LayerNorm(hidden_size, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, input_ids, token_type_ids):  # both (B, T)
        positions = torch.arange(input_ids.shape[1])  # (T,): 0..T-1 in every row
        x = (self.token(input_ids)             # (B, T, H)
             + self.segment(token_type_ids)    # (B, T, H)
             + self.position(positions))       # (T, H), broadcast over the batch
        return self.dropout(self.norm(x))      # (B, T, H)


# %% [markdown]
# Now copy MiniLM's weights into it, table by table:

# %%
plain = PlainEmbeddings(
    config.vocab_size, config.hidden_size, config.max_position_embeddings,
    config.type_vocab_size, config.hidden_dropout_prob, config.layer_norm_eps)
lib = library_embeddings
with torch.no_grad():
    plain.token.weight.copy_(lib.word_embeddings.weight)
    plain.segment.weight.copy_(lib.token_type_embeddings.weight)
    plain.position.weight.copy_(lib.position_embeddings.weight)
    plain.norm.weight.copy_(lib.LayerNorm.weight)
    plain.norm.bias.copy_(lib.LayerNorm.bias)
plain.eval();  # dropout off, as in the library model

# %% [markdown]
# Run both on the sentence pair from above, in eval mode. We also compare with the first entry of
# the full model's `hidden_states`, which is exactly what the encoder's first layer receives:

# %%
inputs = tokenizer(sentence_a, sentence_b, return_tensors="pt")
ids, segments = inputs["input_ids"], inputs["token_type_ids"]  # (1, T) each

with torch.no_grad():
    mine = plain(ids, segments)                  # (1, T, H)
    theirs = library_embeddings(ids, segments)   # (1, T, H)
    all_layers = model(**inputs, output_hidden_states=True).hidden_states
    encoder_input = all_layers[0]                # what layer 1 receives

torch.testing.assert_close(mine, theirs)
torch.testing.assert_close(mine, encoder_input)
glue("ch3_plain_vs_library", (mine - theirs).abs().max().item(), display=False)
print(mine.shape)

# %% [markdown]
# The plain layer and `bertedu.model.BertEmbeddings` agree (the largest difference is
# {glue:text}`ch3_plain_vs_library:.1e`). From here on, the book uses the library's layer.
#
# ### LayerNorm, by hand
#
# LayerNorm {cite:p}`ba2016layer` normalises each token's vector over its $H$ features. It then rescales and shifts the
# result with the learned vectors $\gamma$ (`weight`) and $\beta$ (`bias`):
#
# $$
# \operatorname{LayerNorm}(x) = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta,
# \qquad \mu = \frac1H \sum_{i=1}^{H} x_i,\quad \sigma^2 = \frac1H \sum_{i=1}^{H} (x_i - \mu)^2.
# $$
#
# Note that the variance divides by $H$, not $H-1$. BERT uses $\epsilon = 10^{-12}$, not
# PyTorch's default $10^{-5}$.

# %%
with torch.no_grad():
    positions = torch.arange(ids.shape[1])
    x = E_tok[ids] + E_seg[segments] + E_pos[positions]  # (1, T, H): the raw sum
    mu = x.mean(dim=-1, keepdim=True)                     # (1, T, 1)
    var = x.var(dim=-1, unbiased=False, keepdim=True)     # (1, T, 1), divides by H
    gamma, beta = plain.norm.weight, plain.norm.bias      # (H,) each
    by_hand = gamma * (x - mu) / torch.sqrt(var + config.layer_norm_eps) + beta

torch.testing.assert_close(by_hand, theirs)

# %% [markdown]
# ### Dropout only in training
#
# In training mode, dropout zeroes each entry with probability $p$ =
# `hidden_dropout_prob` and scales the survivors by $1/(1-p)$. This is why every comparison
# above runs in eval mode. In training mode, two calls on the same input give different vectors:

# %%
library_embeddings.train()
with torch.no_grad():
    first = library_embeddings(ids, segments)
    second = library_embeddings(ids, segments)
library_embeddings.eval()

zero_fraction = (first == 0).float().mean().item()
assert not torch.equal(first, second)
assert abs(zero_fraction - config.hidden_dropout_prob) < 0.03, zero_fraction
glue("ch3_dropout_p", config.hidden_dropout_prob, display=False)
glue("ch3_zero_fraction", zero_fraction, display=False)

# %% [markdown]
# With $p =$ {glue:text}`ch3_dropout_p:.1f`, a fraction {glue:text}`ch3_zero_fraction:.3f` of
# the entries came out as exactly zero.
#
# ## 3.3 Why adding is fine
#
# Adding three vectors looks like it might blur them together: how can the encoder tell the word
# from the position once they are summed? Concatenating the three vectors would keep them apart.
# The answer is that the sum is itself a linear map, with nothing lost before learning starts.
#
# Write $o_V(w) \in \{0, 1\}^V$ for the one-hot code of $w$ (a single 1, in place $w$). Looking up a
# row is multiplying by a one-hot code: $E_{\text{tok}}[w] = E_{\text{tok}}^\top o_V(w)$. So
#
# $$
# x_t = E_{\text{tok}}^\top o_V(w_t) + E_{\text{seg}}^\top o_2(s_t) + E_{\text{pos}}^\top o_P(t)
#     = \begin{bmatrix} E_{\text{tok}} \\ E_{\text{seg}} \\ E_{\text{pos}} \end{bmatrix}^{\!\top}
#       \begin{bmatrix} o_V(w_t) \\ o_2(s_t) \\ o_P(t) \end{bmatrix}.
# $$
#
# The embedding layer is a single linear layer (without bias). Its input is the concatenation of
# the three one-hot codes, a vector of length $V + 2 + P$ with exactly three ones. Its weight is
# the three tables stacked into one block matrix. The model learns that one matrix, and adding
# three looked-up rows is simply the cheap way to multiply by it. Let us check this numerically on
# the sentence pair:

# %%
W = torch.cat([E_tok, E_seg, E_pos], dim=0)  # (V + 2 + P, H): the block matrix
positions = torch.arange(ids.shape[1])       # (T,)
codes = torch.cat([
    F.one_hot(ids[0], config.vocab_size),                  # (T, V)
    F.one_hot(segments[0], config.type_vocab_size),        # (T, 2)
    F.one_hot(positions, config.max_position_embeddings),  # (T, P)
], dim=-1).float()                                         # (T, V + 2 + P)

one_linear_map = codes @ W                                  # (T, H)
three_lookups = E_tok[ids[0]] + E_seg[segments[0]] + E_pos[positions]  # (T, H)
torch.testing.assert_close(one_linear_map, three_lookups)
glue("ch3_onehot_dim", codes.shape[1], display=False)
onehot_max_diff = (one_linear_map - three_lookups).abs().max().item()
glue("ch3_onehot_max_diff", onehot_max_diff, display=False)

# %%
# NBVAL_CHECK_OUTPUT
print("block matrix W:  ", tuple(W.shape))
print("one-hot codes:   ", tuple(codes.shape))
print("ones in each row:", codes.sum(dim=-1).int().tolist())

# %% [markdown]
# The {glue:text}`ch3_onehot_dim:,d`-dimensional code times the block matrix gives the same
# vectors as the three lookups (the largest difference is
# {glue:text}`ch3_onehot_max_diff:.1e`, which is rounding in float32).
#
# What about concatenating the three looked-up vectors and letting a learned matrix mix them?
# That gains nothing either. A linear layer on the concatenation splits into three blocks,
# $[A_1\; A_2\; A_3]\,[e_{\text{tok}};\, e_{\text{seg}};\, e_{\text{pos}}] = A_1 e_{\text{tok}} + A_2 e_{\text{seg}} + A_3 e_{\text{pos}}$.
# This is again a sum of three lookups, now into the tables $E_{\text{tok}} A_1^\top$,
# $E_{\text{seg}} A_2^\top$ and $E_{\text{pos}} A_3^\top$. A model that learns its tables can
# learn those ones directly. Summing gets the same expressive power with a width of $H$ instead
# of $3H$. Here is that argument in numbers, with a random $A$:

# %%
H = config.hidden_size
# A linear layer 3H -> H on the concatenation, with random weights.
A = torch.randn(H, 3 * H) / (3 * H) ** 0.5
A1, A2, A3 = A[:, :H], A[:, H:2 * H], A[:, 2 * H:]  # (H, H) each

concatenated = torch.cat(
    [E_tok[ids[0]], E_seg[segments[0]], E_pos[positions]], dim=-1)  # (T, 3H)
mixed = concatenated @ A.T                                          # (T, H)

new_tok, new_seg, new_pos = E_tok @ A1.T, E_seg @ A2.T, E_pos @ A3.T  # new tables
summed = new_tok[ids[0]] + new_seg[segments[0]] + new_pos[positions]  # (T, H)
torch.testing.assert_close(mixed, summed)

# %% [markdown]
# Intuition points the same way. In $H =$ {glue:text}`ch3_hidden_size:d` dimensions, there is
# plenty of room for the word, segment and position signals to sit in nearly separate directions.
# After the LayerNorm, the first attention layer projects its input linearly, and a projection
# can pick out the directions of each signal.
#
# ## 3.4 Padding and the attention mask
#
# A batch is a rectangle: every row must have the same length $T$. Shorter sequences are padded on
# the right with `[PAD]` (id 0). The `attention_mask` marks which positions are real (1) and which
# are padding (0). Here are three sentence pairs of different lengths:

# %%
# NBVAL_CHECK_OUTPUT
firsts = ["The cat sat on the mat.", "Dogs bark.", "Hi!"]
seconds = ["It purred.", "Cats meow loudly at night.", "Bye."]
batch = tokenizer(firsts, seconds, padding=True, return_tensors="pt")
for key, value in batch.items():
    print(key, tuple(value.shape))
    for row in value.tolist():
        print("   ", row)


# %% [markdown]
# Padding positions get token id 0, segment id 0 and mask 0. In the picture, each row is one
# example and each column is one position. The colour shows the segment, and hatched grey cells
# are padding:

# %% mystnb={"image": {"alt": "A grid of three padded sentence pairs, tokens coloured by segment id with padding hatched, above the attention mask of ones and zeros"}}
def draw_batch(batch, tokenizer, ax):
    # A (batch x positions) grid: colour = segment id, padding hatched grey.
    colours = {0: "#9ecae1", 1: "#fdae6b"}
    B, T = batch["input_ids"].shape
    for b in range(B):
        tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][b])
        for t in range(T):
            is_pad = batch["attention_mask"][b, t] == 0
            segment = int(batch["token_type_ids"][b, t])
            face = "#e0e0e0" if is_pad else colours[segment]
            ax.add_patch(plt.Rectangle(
                (t - 0.5, b - 0.5), 1, 1, facecolor=face, edgecolor="white",
                hatch="//" if is_pad else None))
            ax.text(t, b, tokens[t], ha="center", va="center", fontsize=11,
                    color="#777777" if is_pad else "black")
    ax.set_xlim(-0.5, T - 0.5)
    ax.set_ylim(B - 0.5, -0.5)
    ax.set_xticks(range(T))
    ax.set_yticks(range(B))
    ax.set_xlabel("position")
    ax.set_ylabel("example in the batch")
    ax.legend(handles=[Patch(facecolor=colours[0], label="segment 0 (A)"),
                       Patch(facecolor=colours[1], label="segment 1 (B)"),
                       Patch(facecolor="#e0e0e0", hatch="//", label="padding")],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=11)


B, T = batch["input_ids"].shape
fig, (ax_tokens, ax_mask) = plt.subplots(2, 1, figsize=(14, 5.5), sharex=True)
draw_batch(batch, tokenizer, ax_tokens)
ax_tokens.set_title("A padded batch of sentence pairs, coloured by segment id")
ax_tokens.set_xlabel("")
ax_mask.imshow(batch["attention_mask"], cmap="Greys_r", vmin=0, vmax=1,
               aspect="auto")
for b in range(B):
    for t in range(T):
        value = int(batch["attention_mask"][b, t])
        ax_mask.text(t, b, value, ha="center", va="center", fontsize=11,
                     color="black" if value else "white")
ax_mask.set_yticks(range(B))
ax_mask.set_xlabel("position")
ax_mask.set_ylabel("example in the batch")
ax_mask.set_title("attention_mask: 1 = real token (white), 0 = padding (black)")
fig.tight_layout()
plt.show()

# %% [markdown]
# Inside the model, the $[B, T]$ mask becomes an *additive* mask of shape $[B, 1, 1, T]$. It adds
# 0 to the attention scores of real keys and a very large negative number to those of padded keys,
# so after the softmax no query gives any weight to padding (Chapter 4 builds this). The mask
# acts on **keys** (columns). Padded *queries* (rows) still compute a vector, but it is garbage
# and nothing downstream reads it. Here is the query-by-key picture for the shortest example:

# %% mystnb={"image": {"alt": "Query-by-key mask of the shortest example: every query may read the real tokens, no query may read the padding columns"}}
shortest = int(batch["attention_mask"].sum(dim=1).argmin())
mask_row = batch["attention_mask"][shortest]  # (T,)
may_attend = mask_row[None, :].expand(T, T)   # (T, T): may query t read key j?
tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][shortest])

fig, ax = plt.subplots(figsize=(6.5, 6))
ax.imshow(may_attend, cmap="Greys_r", vmin=0, vmax=1)
ax.set_xticks(range(T), tokens, rotation=90)
ax.set_yticks(range(T), tokens)
ax.set_xlabel("key (the position being read)")
ax.set_ylabel("query (the position reading)")
ax.set_title(f"Which keys each query may attend to\n"
             f"(example {shortest}; white = allowed, black = masked)")
fig.tight_layout()
plt.show()

# %% [markdown]
# Does the mask really keep padding out? Encode the shortest example on its own, with no padding,
# and compare it with its row in the padded batch. The real tokens' output vectors should be the
# same. Without the mask, the real tokens would also attend to the `[PAD]` vectors and change:

# %%
n_real = int(mask_row.sum())
alone = tokenizer(firsts[shortest], seconds[shortest], return_tensors="pt")
with torch.no_grad():
    out_alone = model(**alone).last_hidden_state[0]  # (n_real, H)
    masked = model(**batch).last_hidden_state        # (B, T, H), mask given
    unmasked = model(batch["input_ids"], batch["token_type_ids"]).last_hidden_state
out_masked = masked[shortest, :n_real]              # (n_real, H)
out_unmasked = unmasked[shortest, :n_real]

diff_masked = (out_masked - out_alone).abs().max().item()
diff_unmasked = (out_unmasked - out_alone).abs().max().item()
assert diff_masked < 1e-4, diff_masked
assert diff_unmasked > 100 * max(diff_masked, 1e-6), (diff_unmasked, diff_masked)
glue("ch3_diff_masked", diff_masked, display=False)
glue("ch3_diff_unmasked", diff_unmasked, display=False)
glue("ch3_pad_norm", E_tok[tokenizer.pad_token_id].norm().item(), display=False)


# %% [markdown]
# With the mask, the real tokens' vectors in the padded batch match those of the example encoded
# alone to within {glue:text}`ch3_diff_masked:.1e`. This is floating-point noise. Without the
# mask, they move by up to {glue:text}`ch3_diff_unmasked:.2f`. The mask alone does this job, and
# the `[PAD]` vector cannot. `nn.Embedding(padding_idx=0)` only starts the `[PAD]` row at zero and
# keeps it out of the gradient. MiniLM's `[PAD]` row is not zero: its length is
# {glue:text}`ch3_pad_norm:.2f`. Position ids run through the padding too, $0, \dots, T-1$ in every
# row. That is harmless, for the same reason.
#
# ## 3.5 What the position embeddings learned
#
# BERT's position table starts out random and is learned during pretraining, like the word table.
# Nothing tells it that position 7 is next to position 8. Does it discover this? A good test is
# the cosine similarity between the vectors of two positions, for every pair of positions. For
# contrast, we also draw the fixed sinusoids of the original Transformer {cite:p}`vaswani2017attention`,
# with the same width $H$:
#
# $$
# \text{PE}(t, 2i) = \sin\!\big(t / 10000^{2i/H}\big), \qquad
# \text{PE}(t, 2i+1) = \cos\!\big(t / 10000^{2i/H}\big).
# $$

# %%
def sinusoidal_positions(n_positions, width):
    # The original Transformer's fixed encodings, shape (n_positions, width).
    t = torch.arange(n_positions, dtype=torch.float32)[:, None]  # (P, 1)
    frequencies = 10000 ** (-torch.arange(0, width, 2) / width)   # (width / 2,)
    pe = torch.zeros(n_positions, width)
    pe[:, 0::2] = torch.sin(t * frequencies)
    pe[:, 1::2] = torch.cos(t * frequencies)
    return pe


def cosine_matrix(vectors):
    unit = F.normalize(vectors, dim=-1)
    return unit @ unit.T  # (P, P)


def mean_cosine_by_offset(similarity, first=0):
    # Mean of cos(p_t, p_{t+k}) over all t >= first, for k = 1 .. P - first - 1.
    P = similarity.shape[0]
    offsets = range(1, P - first)
    return torch.stack([similarity.diagonal(k)[first:].mean() for k in offsets])


P = config.max_position_embeddings
learned_cos = cosine_matrix(E_pos)  # (P, P)
sinusoid_cos = cosine_matrix(sinusoidal_positions(P, config.hidden_size))
# Position 0 is special (see below), so the averages start at position 1.
learned_by_offset = mean_cosine_by_offset(learned_cos, first=1)
sinusoid_by_offset = mean_cosine_by_offset(sinusoid_cos, first=1)

# %% mystnb={"image": {"alt": "Cosine similarity between position vectors: MiniLM's learned table shows rippling bands along the diagonal, the sinusoids a smooth band; similarity falls with the offset"}}
n_show = P if FULL else 128
fig, axes = plt.subplots(1, 3, figsize=(16, 5), layout="constrained")
panels = [(axes[0], learned_cos, "MiniLM's learned positions"),
          (axes[1], sinusoid_cos, "Sinusoidal positions (Transformer)")]
for ax, matrix, title in panels:
    image = ax.imshow(matrix[:n_show, :n_show], cmap="RdBu_r", vmin=-1, vmax=1,
                      interpolation="nearest")
    ax.set_title(f"{title}\ncosine similarity, first {n_show} positions")
    ax.set_xlabel("position")
    ax.set_ylabel("position")
fig.colorbar(image, ax=axes[:2], shrink=0.8, label="cosine similarity")

max_offset = 256  # beyond this, few pairs are left and the curve gets noisy
offsets = torch.arange(1, max_offset + 1)
axes[2].plot(offsets, learned_by_offset[:max_offset], label="MiniLM, learned")
axes[2].plot(offsets, sinusoid_by_offset[:max_offset], label="sinusoidal",
             linestyle="--")
axes[2].set_xscale("log")
axes[2].axhline(0, color="grey", linewidth=0.8)
axes[2].set_xlabel("offset k between the two positions (log scale)")
axes[2].set_ylabel("mean cos(position t, position t + k)")
axes[2].set_title("Nearby positions are similar")
axes[2].legend(fontsize=11)
plt.show()

# %%
distance = (torch.arange(P)[:, None] - torch.arange(P)[None, :]).abs()  # (P, P)
far = distance >= 64
far[0, :] = far[:, 0] = False                 # leave out position 0
cos_neighbours = learned_by_offset[0].item()  # mean cos(p_t, p_{t+1}), t >= 1
cos_far = learned_cos[far].mean().item()
norms = E_pos.norm(dim=-1)                    # (P,)
pos0_max_cos = learned_cos[0, 1:].max().item()

# The claims the prose makes, checked:
assert cos_neighbours > cos_far + 0.3, (cos_neighbours, cos_far)
assert learned_by_offset.argmax() == 0, learned_by_offset[:8]  # offset 1 is the top
assert learned_by_offset[2] < learned_by_offset[5], learned_by_offset[:8]  # ripple
assert norms[0] > 2 * norms[1:].median(), norms[:3]       # position 0 stands apart
assert pos0_max_cos < cos_neighbours - 0.3, pos0_max_cos
glue("ch3_cos_neighbours", cos_neighbours, display=False)
glue("ch3_cos_offset3", learned_by_offset[2].item(), display=False)
glue("ch3_cos_offset6", learned_by_offset[5].item(), display=False)
glue("ch3_cos_far", cos_far, display=False)
glue("ch3_pos0_norm", norms[0].item(), display=False)
glue("ch3_pos_median_norm", norms[1:].median().item(), display=False)
glue("ch3_pos0_max_cos", pos0_max_cos, display=False)
segment_cos = F.cosine_similarity(E_seg[0], E_seg[1], dim=0).item()
glue("ch3_segment_cos", segment_cos, display=False)

# %% [markdown]
# The learned table has discovered order. The vectors of neighbouring positions have a mean cosine
# similarity of {glue:text}`ch3_cos_neighbours:.2f`, the highest at any offset. For positions at
# least 64 apart, the similarity averages only {glue:text}`ch3_cos_far:.2f`. The similarity depends
# mostly on the offset $t - t'$, not on where the pair sits, which shows as bands parallel to the
# diagonal. The bands ripple: the similarity drops to {glue:text}`ch3_cos_offset3:.2f` at offset 3
# and rises again to {glue:text}`ch3_cos_offset6:.2f` at offset 6. Nothing in training asked for
# waves. The sinusoids have their offset structure by construction, since
# $\text{PE}(t)\cdot\text{PE}(t') = \sum_i \cos\big(\omega_i (t - t')\big)$ depends *only* on
# $t - t'$; the learned table arrived at something similar from data.
#
# Position 0 is the exception. Its vector is {glue:text}`ch3_pos0_norm:.2f` long, against a
# median of {glue:text}`ch3_pos_median_norm:.2f` for the other positions. It also resembles no
# other position: its highest cosine similarity with any of them is
# {glue:text}`ch3_pos0_max_cos:.2f`, far below the {glue:text}`ch3_cos_neighbours:.2f` that
# neighbours usually share. Position 0 always holds `[CLS]`, so its position vector marks that
# token as well as a place.
#
# The segment table has only two rows. In MiniLM they point in almost the same direction (cosine
# {glue:text}`ch3_segment_cos:.2f`). MiniLM was distilled from a larger model {cite:p}`wang2020minilm` and then
# fine-tuned for single-sentence embeddings {cite:p}`reimers2019sentence`, so it may make little use of the A/B distinction. A model
# pretrained with next-sentence prediction (Chapter 5) has a reason to keep the two rows apart.
#
# A learned table has one hard limit: it has rows only for positions $0, \dots, P-1$. Sinusoids
# can be computed for any $t$; a table cannot be read past its last row. `bertedu` refuses longer
# inputs with a message that tells you what to do:

# %%
# NBVAL_CHECK_OUTPUT
n_too_many = config.max_position_embeddings + 1
too_long = torch.full((1, n_too_many), tokenizer.cls_token_id)
try:
    model(too_long)
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# ```{admonition} Coming from d2l?
# :class: note
# d2l's `BERTEncoder` {cite:p}`zhang2023dive` also *learns* its positions, as an `nn.Parameter` of shape
# `(1, max_len, num_hiddens)`, and it also adds a two-row segment embedding. There are three
# differences. First, d2l's BERT uses a word-level vocabulary (the WikiText-2 words seen at least
# five times, with `<unk>` for the rest), while real BERT uses WordPiece, so here a position is
# a WordPiece position: "unaffable" takes three. Second, d2l adds no LayerNorm and no dropout
# after the sum, while BERT normalises the sum, and real checkpoints expect it. Third, d2l passes
# `valid_lens` to the encoder, while BERT and Hugging Face pass a 0/1 `attention_mask` of shape
# `[B, T]`. The two carry the same information for right-padded batches.
# ```
#
# ```{admonition} Coming from the original Transformer?
# :class: note
# "Attention Is All You Need" {cite:p}`vaswani2017attention` adds fixed sinusoids to the token embeddings (which it scales by
# $\sqrt{d_{\text{model}}}$). It has no segment embeddings and no LayerNorm on the input. The
# paper reports that learned position embeddings gave "nearly identical results". BERT chose
# learned ones. The price is the hard limit of
# {glue:text}`ch3_max_positions:d` positions shown above.
# ```
#
# ## Summary
#
# - BERT reads three integer sequences: WordPiece ids, segment ids (0 for `[CLS] A [SEP]`, 1 for
#   `B [SEP]`) and positions $0, \dots, T-1$, which the model makes itself.
# - The input layer looks up one row in each of three tables, adds them, and applies LayerNorm
#   ($\epsilon = 10^{-12}$) and dropout. Our plain version with MiniLM's weights equals
#   `bertedu.model.BertEmbeddings`.
# - Adding is fine: the sum is one linear map of the concatenated one-hot codes (checked
#   numerically). Concatenating and then projecting would be no more expressive, and it would cost
#   three times the width.
# - Batches are padded on the right. The `attention_mask` (1 = token, 0 = padding), not the
#   `[PAD]` embedding, is what keeps the real tokens' vectors independent of the padding.
# - MiniLM's learned position vectors are similar for nearby positions, in bands that depend on
#   the offset, much like sinusoids. Position 0, always `[CLS]`, stands apart. A learned table
#   caps the input at {glue:text}`ch3_max_positions:d` tokens.
#
# ## Exercises
#
# The exercises for this chapter are the nbgrader assignment `exercises/source/03_input_representation/03_input_representation.ipynb`, with reference solutions. `make exercises` writes the student version, without them, to `exercises/release/03_input_representation/`; instructors, see the guide "Teaching with this book".
