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
# # 5. Pretraining data: MLM and NSP
#
# BERT learns from raw text with no labels at all. The labels come from the text itself,
# through two tasks that the BERT paper {cite:p}`devlin2019bert` sets up:
#
# - **Masked language modelling (MLM):** hide some of the WordPieces of the input and ask
#   the model to recover them.
# - **Next-sentence prediction (NSP):** give the model two spans of text, A and B, and ask
#   whether B really followed A in the corpus.
#
# Both tasks are decided *before* the model sees anything, when the training data is built.
# Which spans are paired, which positions are hidden, what replaces them, which positions count
# in the loss: each choice is a line of data-preparation code, and each one changes what the model
# learns. This chapter builds that data on real text (WikiText-2 {cite:p}`merity2017pointer`)
# with the tokenizer of the real MiniLM checkpoint. It then measures on the whole corpus
# that the data follows the paper's recipe. Chapter 6 trains a small BERT on it.
#
# ## What you will be able to do
#
# - Cut a corpus of documents into sentence pairs for NSP, half IsNext and half NotNext. Use
#   the label convention of Google's code and `transformers`: 0 = IsNext, 1 = NotNext.
# - Explain how the final vector $C$ of `[CLS]` feeds a binary classifier.
# - Trim a pair that is too long the way BERT does, and explain why 10% of the pairs are made
#   shorter on purpose.
# - Apply the masking rule by hand: choose 15% of the WordPiece positions (never a special
#   token or padding), and of those turn 80% into `[MASK]`, 10% into a random token and leave
#   10% unchanged. Show that this equals `bertedu.pretraining.mask_tokens`.
# - Explain why BERT does not simply replace every chosen token with `[MASK]`.
# - Compute the MLM loss over exactly the chosen positions, with the ignore index $-100$ or
#   with Google's label weights. Show the wrong number that an average over padded slots gives.
# - Tell static from dynamic masking (RoBERTa), and measure what each one shows the model
#   over several epochs.
# - Measure the 15%, the 80/10/10 split and the NSP balance on a real corpus.
#
# ## Setup
#
# Imports, fixed seeds and the book's one switch. By default the chapter measures everything on
# the validation split of WikiText-2 (60 articles, about 217,000 words). This split ships with the
# course, and the chapter is sized to run quickly on a laptop CPU. `FULL = True` (set the environment
# variable `BERTEDU_FULL=1`) switches to the training split, which is about ten times larger and is
# downloaded on first use. It also makes more passes over the corpus for the NSP balance, as Google's
# `dupe_factor` does, and runs the static-vs-dynamic comparison for more epochs.

# %%
# %config InlineBackend.figure_format = 'png'
import math
import os
import random

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from d2l import torch as d2l
from myst_nb import glue
from torch import nn

import bertedu
from bertedu import BertConfig, BertForPreTraining
from bertedu.data import load_wikitext2
from bertedu.heads import IGNORE_INDEX, masked_lm_loss
from bertedu.pretraining import (IS_NEXT, NOT_NEXT, PretrainingDataset, create_nsp_examples,
                                 encode_pair, mask_tokens, split_sentences, tokenize_documents,
                                 truncate_pair, wikitext_documents)
from bertedu.tokenization import BertTokenizer

plt.rcParams.update({"font.size": 12})
random.seed(0)
np.random.seed(0)
torch.manual_seed(0)

# The one knob of the book (see the text above for what it changes).
FULL = os.environ.get("BERTEDU_FULL", "0") == "1"
SPLIT = "train" if FULL else "valid"  # the WikiText-2 split we measure on
DUPE_FACTOR = 10 if FULL else 5       # passes over the corpus for the NSP balance
EPOCHS = 20 if FULL else 10           # epochs in the static-vs-dynamic comparison
MAX_SEQ_LENGTH = 128                  # BERT's sequence length for 90% of its pretraining steps

# %% [markdown]
# ## 5.1 The corpus: documents made of sentences
#
# NSP needs to know which text follows which, so the corpus must keep its documents whole.
# Section 3.1 of the paper is firm about this:
#
# > It is critical to use a document-level corpus rather than a shuffled sentence-level corpus
# > such as the Billion Word Benchmark in order to extract long contiguous sequences.
#
# Our corpus is WikiText-2. A **document** is one Wikipedia article, and a document is a list
# of **sentences**. WikiText is already tokenized into words, with punctuation standing apart, so
# `split_sentences` ends a sentence after every word that is exactly `.`, `?` or `!`. A decimal point
# is written ` @.@ `, so it does not end a sentence. `wikitext_documents` also undoes WikiText's
# joining marks (`@-@`, `@,@`, `@.@`) before WordPiece sees the text, and turns WikiText's `<unk>`
# (a word outside its vocabulary) into BERT's `[UNK]`:

# %%
# NBVAL_CHECK_OUTPUT
print(split_sentences("The lobster is 0 @.@ 7 m long . Is it blue ? Yes"))
demo_article = {"title": "Demo", "paragraphs": [
    "A state @-@ of @-@ the @-@ art trap caught 1 @,@ 200 lobsters . A <unk> one was blue !"]}
print(wikitext_documents([demo_article]))

# %% [markdown]
# Now the whole split. `tokenize_documents` turns every sentence into MiniLM's WordPiece ids
# (Chapter 2), and keeps the document boundaries:

# %%
# NBVAL_CHECK_OUTPUT
tokenizer = BertTokenizer.from_pretrained(bertedu.minilm_path())
articles = load_wikitext2(SPLIT)
documents = wikitext_documents(articles)                       # documents of sentence strings
token_documents = tokenize_documents(documents, tokenizer)     # documents of sentences of ids
n_sentences = sum(len(d) for d in token_documents)
n_wordpieces = sum(len(s) for d in token_documents for s in d)
print(f"WikiText-2 {SPLIT}: {len(articles)} articles -> {len(token_documents)} documents, "
      f"{n_sentences:,} sentences, {n_wordpieces:,} WordPieces")
print("The first document begins:")
for sentence in documents[0][:2]:
    print("   ", sentence)
glue("ch5_n_documents", len(token_documents), display=False)
glue("ch5_n_sentences", n_sentences, display=False)
glue("ch5_n_wordpieces", n_wordpieces, display=False)

# %% [markdown]
# ## 5.2 Next-sentence prediction
#
# ### The task, and the vector that answers it
#
# Many fine-tuning tasks (question answering, entailment, paraphrase) ask how two pieces of
# text relate. A language model never learns that directly. NSP is the paper's way to teach it
# (section 3.1):
#
# > Specifically, when choosing the sentences A and B for each pretraining example, 50% of the
# > time B is the actual next sentence that follows A (labeled as IsNext), and 50% of the time
# > it is a random sentence from the corpus (labeled as NotNext).
#
# The model reads `[CLS] A [SEP] B [SEP]` (Chapter 3). The paper calls the final hidden vector of
# `[CLS]` $C \in \mathbb{R}^H$, and "C is used for next sentence prediction". In the code, $C$
# first passes through the **pooler**, a dense layer with a tanh, and then through a linear
# layer with two outputs:
#
# $$
# \begin{aligned}
# \text{pooled} &= \tanh(W_p\, C + b_p), \qquad W_p \in \mathbb{R}^{H \times H},\\
# (\ell_0, \ell_1) &= W_{\text{NSP}}\, \text{pooled} + b_{\text{NSP}}, \qquad W_{\text{NSP}} \in \mathbb{R}^{2 \times H},\\
# P(\text{label} = j \mid A, B) &= \operatorname{softmax}(\ell_0, \ell_1)_j .
# \end{aligned}
# $$
#
# **The label convention.** Output 0 means IsNext and output 1 means NotNext. Google's
# `run_pretraining.py` says so in a comment: "Note that 0 is "next sentence" and 1 is "random
# sentence"." `transformers` and `bertedu` keep this convention:

# %%
# NBVAL_CHECK_OUTPUT
print("IS_NEXT =", IS_NEXT, "  NOT_NEXT =", NOT_NEXT)

# %% [markdown]
# Below we build this classifier by hand on a small, untrained `BertForPreTraining`, and check
# that it gives the model's own NSP logits (`cls.seq_relationship`, Hugging Face's name). A
# trained model would give IsNext a high probability on the first pair. An untrained one cannot
# tell yet: its loss is close to $\ln 2$, the loss of a coin toss. Chapter 6 trains it.

# %%
torch.manual_seed(0)
nsp_model = BertForPreTraining(BertConfig.tiny(vocab_size=tokenizer.vocab_size)).eval()
pairs = tokenizer(["The cat sat on the mat.", "The train left at noon."],
                  ["It purred all afternoon.", "Bake the bread until the crust is brown."],
                  padding=True, return_tensors="pt")
nsp_labels = torch.tensor([IS_NEXT, NOT_NEXT])

with torch.no_grad():
    hidden = nsp_model.bert(pairs["input_ids"], pairs["token_type_ids"], pairs["attention_mask"])
    C = hidden.last_hidden_state[:, 0]                       # (B, H): the final vector of [CLS]
    pooled = torch.tanh(nsp_model.bert.pooler.dense(C))      # (B, H)
    nsp_logits = nsp_model.cls.seq_relationship(pooled)      # (B, 2): scores of IsNext, NotNext
    library = nsp_model(**pairs, next_sentence_label=nsp_labels)
torch.testing.assert_close(nsp_logits, library.seq_relationship_logits)

nsp_loss = F.cross_entropy(nsp_logits, nsp_labels)
assert abs(nsp_loss.item() - math.log(2)) < 0.05, nsp_loss  # untrained: a coin toss
print("C:", tuple(C.shape), " pooled:", tuple(pooled.shape), " NSP logits:", tuple(nsp_logits.shape))
print(f"NSP loss of the untrained model: {nsp_loss.item():.3f}   (ln 2 = {math.log(2):.3f})")

# %% [markdown]
# After pretraining, $W_{\text{NSP}}$ is thrown away ("This weight matrix is not used after
# pre-training", Google's code says). The pooler stays, and the sentence classifiers of Part II start from it.
# The paper also warns that $C$ "is not a meaningful sentence representation without
# fine-tuning, since it was trained with NSP".
#
# ### Building pairs from documents
#
# The paper calls A and B "sentences", but appendix A.2 explains that they are "spans of text
# [...] typically much longer than single sentences". The pair builder fills the sequence with
# as much text as fits. `create_nsp_examples` follows Google's `create_instances_from_document`,
# one document at a time:
#
# 1. **Collect a chunk.** Walk through the document's sentences and collect them into a *chunk*
#    until it holds `target` WordPieces. Usually `target = max_seq_length - 3`, which leaves room
#    for `[CLS]` and two `[SEP]`s.
# 2. **Cut it into A and B.** Draw a cut point `a_end`. A is the first `a_end` sentences of the chunk.
# 3. **Draw the label.**
#    - *IsNext* (probability 0.5): B is the rest of the chunk. B really follows A.
#    - *NotNext* (probability 0.5): B is a run of consecutive sentences that starts at a random
#      sentence of a random **other** document. The chunk's sentences after A are not wasted:
#      they are put back and start the next chunk.
# 4. **Trim.** Trim the pair to `max_seq_length - 3` WordPieces (next section), and add the
#    special tokens: `[CLS] A [SEP] B [SEP]`, with segment ids 0 and 1 (`encode_pair`).
#
# Here it is on three tiny documents and a maximum length of 24 (so 21 WordPieces for A and B):

# %%
# NBVAL_CHECK_OUTPUT
toy_documents = [
    ["The cat sat on the mat.", "It purred all afternoon.", "Then it fell asleep in the sun.",
     "At dusk it woke up hungry.", "It asked loudly for dinner.", "After eating, it slept again."],
    ["The train left the station at noon.", "It was full of tourists.",
     "The journey took three hours.", "Most passengers read or slept.",
     "It reached the coast before dark."],
    ["Bread needs flour, water and yeast.", "Knead the dough for ten minutes.",
     "Let it rise for an hour.", "Bake it until the crust is brown.",
     "Let it cool before you slice it."],
]
LABEL_NAMES = {IS_NEXT: "IsNext", NOT_NEXT: "NotNext"}
toy_examples = create_nsp_examples(tokenize_documents(toy_documents, tokenizer),
                                   max_seq_length=24, short_seq_prob=0.0, seed=1)
for e in toy_examples:
    print(f"{LABEL_NAMES[e.next_sentence_label]:<8} A from document {e.document_a}, "
          f"B from document {e.document_b}")
    print("    A:", tokenizer.decode(e.tokens_a))
    print("    B:", tokenizer.decode(e.tokens_b))

# %% [markdown]
# Four things to notice:
#
# - B may hold more than one sentence, and so may A: the pair is cut at a sentence boundary,
#   not after exactly one sentence.
# - Every IsNext B comes from A's own document, right after A. Every NotNext B comes from
#   another document.
# - After a NotNext pair, the sentences of the chunk that were not used for A start the next
#   pair, so no text of the document is lost.
# - Some spans end in the middle of a sentence. Those pairs were too long and were trimmed.

# %% [markdown]
# ### Trimming long pairs, and short pairs on purpose
#
# A NotNext B is cut from its document without regard to A's length, and a chunk can overshoot
# its target. So a pair can be too long. `truncate_pair` trims it one WordPiece at a time,
# always from the **longer** of the two sides, and from the front or the back of that side at
# random. Google's code gives the reason for the coin: to "add more randomness and avoid
# biases" (always cutting the end would keep only the beginnings of texts). Watch a pair of 12 + 3 tokens (letters, for readability) shrink as
# the limit goes down:

# %%
# NBVAL_CHECK_OUTPUT
rng = random.Random(0)
side_a, side_b = list("ABCDEFGHIJKL"), list("xyz")
for max_num_tokens in range(15, 4, -1):
    truncate_pair(side_a, side_b, max_num_tokens, rng)  # trims in place
    print(f"limit {max_num_tokens:>2}:  A = {''.join(side_a):<12}  B = {''.join(side_b)}")

# %% [markdown]
# The short side B is not touched until A has been trimmed down to B's length. Then the two
# sides take turns. What is left of A is always one contiguous run of the original: both ends
# wear away.
#
# **Short sequences.** If every pair filled the whole sequence, the model would see only
# full-length inputs during pretraining. Fine-tuning inputs are often short: one sentence, or
# a question and a paragraph. So with probability `short_seq_prob` = 0.1, a chunk's target
# length is drawn at random between 2 and the maximum. The histogram compares the pair lengths
# on our corpus with and without this rule:

# %% mystnb={"image": {"alt": "Histogram of pair lengths on a log scale: almost all pairs are close to 128 WordPieces; with short_seq_prob 0.1 a thin spread of shorter pairs appears at every length."}}
examples = create_nsp_examples(token_documents, MAX_SEQ_LENGTH, short_seq_prob=0.1, seed=0)
no_short = create_nsp_examples(token_documents, MAX_SEQ_LENGTH, short_seq_prob=0.0, seed=0)
pair_length = lambda e: len(e.tokens_a) + len(e.tokens_b) + 3   # with [CLS], [SEP], [SEP]
lengths = np.array([pair_length(e) for e in examples])
lengths_no_short = np.array([pair_length(e) for e in no_short])
assert lengths.max() <= MAX_SEQ_LENGTH and lengths_no_short.max() <= MAX_SEQ_LENGTH
short_share = float((lengths <= MAX_SEQ_LENGTH // 2).mean())  # float(): glue wants Python numbers
short_share_without = float((lengths_no_short <= MAX_SEQ_LENGTH // 2).mean())
assert short_share > short_share_without + 0.01, (short_share, short_share_without)
glue("ch5_n_pairs", len(examples), display=False)
glue("ch5_short_share", 100 * short_share, display=False)
glue("ch5_short_share_without", 100 * short_share_without, display=False)
glue("ch5_full_share", 100 * float((lengths >= MAX_SEQ_LENGTH - 8).mean()), display=False)

fig, ax = plt.subplots(figsize=(8, 4))
bins = np.arange(0, MAX_SEQ_LENGTH + 5, 4)
ax.hist(lengths_no_short, bins=bins, histtype="step", lw=2, label="short_seq_prob = 0")
ax.hist(lengths, bins=bins, histtype="step", lw=2, label="short_seq_prob = 0.1 (BERT)")
ax.set_yscale("log")
ax.set_xlabel("pair length in WordPieces, [CLS] A [SEP] B [SEP]")
ax.set_ylabel("number of pairs (log scale)")
ax.set_title(f"Lengths of the NSP pairs of WikiText-2 {SPLIT}, max_seq_length = {MAX_SEQ_LENGTH}")
ax.legend(loc="upper left")
plt.show()

# %% [markdown]
# Most of the {glue:text}`ch5_n_pairs:,d` pairs fill the sequence:
# {glue:text}`ch5_full_share:.0f`% are within 8 WordPieces of the maximum. With the rule,
# {glue:text}`ch5_short_share:.1f`% of the pairs are at most half the maximum length, against
# {glue:text}`ch5_short_share_without:.1f`% without it (the few short pairs without the rule are
# the ends of documents).
#
# ### Real pairs: IsNext or NotNext?
#
# Here are four pairs from the corpus, with the labels hidden. Only the end of A and the start
# of B are shown, because that is where the answer lies. Guess before you run the next cell.

# %%
# NBVAL_CHECK_OUTPUT
shown = [44, 45, 46, 47]
for number, i in enumerate(shown, start=1):
    e = examples[i]
    print(f"pair {number}")
    print("    A: ...", tokenizer.decode(e.tokens_a[-16:]))
    print("    B:", tokenizer.decode(e.tokens_b[:16]), "...")

# %%
# NBVAL_CHECK_OUTPUT
for number, i in enumerate(shown, start=1):
    e = examples[i]
    print(f"pair {number}: {LABEL_NAMES[e.next_sentence_label]:<8} (label {e.next_sentence_label}); "
          f"A from article {e.document_a} ({articles[e.document_a]['title']!r}), "
          f"B from article {e.document_b} ({articles[e.document_b]['title']!r})")


# %% [markdown]
# You probably got all four right, and not always by following the thread of the text. In
# pairs 2 and 3, B is about a different subject altogether: a design team, a list of finalists.
# A random document is almost always on another topic, so much of NSP can be solved by
# noticing a change of topic. That is one reason why later models changed or dropped the task.
# RoBERTa {cite:p}`liu2019roberta` reports that removing NSP matches or slightly improves
# downstream results. ALBERT {cite:p}`lan2020albert` replaces it with sentence-order prediction:
# its negative pairs are the same two spans in swapped order, so the topic gives nothing away.
#
# (The article titles are printed as WikiText-2 stores them; `<unk>` is a word outside WikiText's
# vocabulary.)
#
# **Are the labels balanced, and does every pair come from where its label says?** We build
# the pairs {glue:text}`ch5_dupe_factor:d` times over the corpus with different seeds, as
# Google's `dupe_factor` does, and check every pair. For an IsNext pair, A's WordPieces must occur in
# its document and B's must occur later in the same document. For a NotNext pair, the two
# documents must differ.

# %%
def find_run(haystack, needle, start=0):
    # The first index >= start at which the list `needle` occurs in `haystack`, or -1.
    for i in range(start, len(haystack) - len(needle) + 1):
        if haystack[i] == needle[0] and haystack[i:i + len(needle)] == needle:
            return i
    return -1


flat_documents = [[t for sentence in doc for t in sentence] for doc in token_documents]
nsp_passes = [create_nsp_examples(token_documents, MAX_SEQ_LENGTH, seed=seed)
              for seed in range(DUPE_FACTOR)]
all_pairs = [e for one_pass in nsp_passes for e in one_pass]
for e in examples:  # one pass is enough for the (slower) text search
    if e.next_sentence_label == IS_NEXT:
        doc = flat_documents[e.document_a]
        a_at = find_run(doc, e.tokens_a)
        assert e.document_b == e.document_a and a_at >= 0
        assert find_run(doc, e.tokens_b, a_at + len(e.tokens_a)) >= 0  # B comes after A
    else:
        assert e.document_b != e.document_a
assert all((e.document_a == e.document_b) == (e.next_sentence_label == IS_NEXT) for e in all_pairs)

notnext_share = sum(e.next_sentence_label == NOT_NEXT for e in all_pairs) / len(all_pairs)
assert abs(notnext_share - 0.5) < 0.02, notnext_share
print(f"{len(all_pairs):,} pairs in {DUPE_FACTOR} passes, NotNext share {notnext_share:.4f}")
glue("ch5_dupe_factor", DUPE_FACTOR, display=False)
glue("ch5_nsp_pairs_all", len(all_pairs), display=False)
glue("ch5_notnext_share", notnext_share, display=False)


# %% [markdown]
# Over {glue:text}`ch5_nsp_pairs_all:,d` pairs, the share of NotNext is
# {glue:text}`ch5_notnext_share:.3f`. Google's code is not quite this balanced. It turns every chunk
# that holds a single sentence into a NotNext pair, because such a chunk has no second sentence
# to serve as B. That tilts its labels towards NotNext. `create_nsp_examples` draws the label first,
# and lets an IsNext chunk keep collecting until it holds two sentences, so its labels stay balanced.
#
# ```{admonition} Coming from d2l?
# :class: note
# d2l's BERT {cite:p}`zhang2023dive` uses the **opposite label convention**: its
# `_get_next_sentence` returns `is_next = True` for a real next sentence, so its NSP label 1
# means IsNext. Read its NSP accuracy code with the labels swapped. d2l's pairs also differ
# from BERT's in three ways. A and B are always two adjacent single sentences of a paragraph,
# and a paragraph counts as a document. A pair that is too long is dropped instead of trimmed.
# And the random B is drawn from *any* paragraph, which can be A's own. So a "NotNext" pair can
# come from the same paragraph, and now and then it is the true next sentence.
# ```

# %% [markdown]
# ## 5.3 Masked language modelling
#
# ### The rule
#
# A left-to-right language model predicts each word from the words before it. BERT wants every
# vector to see both sides, and then predicting a word is trivial: the word is in the input.
# The paper's way out (section 3.1):
#
# > In order to train a deep bidirectional representation, we simply mask some percentage of
# > the input tokens at random, and then predict those masked tokens. [...] In all of our
# > experiments, we mask 15% of all WordPiece tokens in each sequence at random.
#
# And then the detail that this chapter is about:
#
# > The training data generator chooses 15% of the token positions at random for prediction.
# > If the i-th token is chosen, we replace the i-th token with (1) the [MASK] token 80% of the
# > time (2) a random token 10% of the time (3) the unchanged i-th token 10% of the time. Then,
# > $T_i$ will be used to predict the original token with cross entropy loss.
#
# In symbols: let $E$ be the *eligible* positions of a sequence $x$ (all of them except
# `[CLS]`, `[SEP]`, padding and the other special tokens), and $n = |E|$. Choose a uniformly
# random subset $M \subseteq E$ of $k = \max(1, \operatorname{round}(0.15\, n))$ positions.
# Build the corrupted input $\tilde{x}$: for each $i \in M$, independently,
#
# $$
# \tilde{x}_i =
# \begin{cases}
# \texttt{[MASK]} & \text{with probability } 0.8,\\
# \text{a random non-special token} & \text{with probability } 0.1,\\
# x_i & \text{with probability } 0.1,
# \end{cases}
# \qquad \tilde{x}_i = x_i \text{ for } i \notin M .
# $$
#
# The model reads $\tilde{x}$ and is trained to predict $x_i$ at every $i \in M$ and nowhere else:
#
# $$
# \mathcal{L}_{\text{MLM}} = -\frac{1}{|M|} \sum_{i \in M} \log P(x_i \mid \tilde{x}) .
# $$
#
# In a batch, $M$ is the set of chosen positions of all its sequences.
#
# ### Why 80/10/10, and not always `[MASK]`?
#
# The paper gives two reasons.
#
# 1. **Pretraining and fine-tuning must not differ too much.** "A downside is that we are
#    creating a mismatch between pre-training and fine-tuning, since the [MASK] token does not
#    appear during fine-tuning." If every chosen token were `[MASK]`, the model could learn that
#    the useful work happens only at `[MASK]`s. It could then treat every other token as a
#    plain, trusted input. Fine-tuning inputs have no `[MASK]` at all.
# 2. **The model cannot trust any token.** Appendix A.1 says that "the Transformer encoder
#    does not know which words it will be asked to predict or which have been replaced by random
#    words, so it is forced to keep a distributional contextual representation of every input
#    token." A token that looks normal may be a random replacement (10% of the chosen) or a
#    token it must predict anyway (the unchanged 10%). So the model has to build a good
#    contextual vector at *every* position, which is what fine-tuning uses.
#
# The random tokens are noise. The paper argues that they do little harm, "because random
# replacement only occurs for 1.5% of all tokens (i.e., 10% of 15%)". Its ablation (appendix C.2)
# supports the mix. Fine-tuning turned out fairly robust to the masking strategy. Using `[MASK]`
# only hurt most when BERT's vectors were used as fixed features without fine-tuning, and using
# random tokens only did worse than the 80/10/10 mix.
#
# ### Building the rule plainly
#
# Here is the rule in plain Python, one sequence and one position at a time. It draws its
# random numbers in the same order as `bertedu.pretraining.mask_tokens`, from the same
# `torch.Generator`, so the two can be compared exactly:
#
# 1. One uniform score per position. A row's chosen positions are its $k$ eligible positions
#    with the lowest scores: a uniformly random subset of size $k$.
# 2. One more uniform number $u$ per position. A chosen position becomes `[MASK]` if
#    $u < 0.8$, a random token if $0.8 \le u < 0.9$, and stays unchanged if $u \ge 0.9$.
# 3. One random index into the list of non-special ids for each random replacement, in
#    reading order.
#
# The labels hold the original id at the chosen positions and `IGNORE_INDEX` ($-100$)
# everywhere else.

# %%
def mask_plainly(input_ids, tokenizer, probability=0.15, generator=None):
    # BERT's masking rule, written out: returns (corrupted inputs, labels), both (B, T).
    B, T = input_ids.shape
    never = set(tokenizer.all_special_ids) | {tokenizer.pad_token_id}  # never chosen
    ids = input_ids.tolist()
    inputs = [row[:] for row in ids]
    labels = [[IGNORE_INDEX] * T for _ in range(B)]

    # 1. choose k = max(1, round(probability * n)) of the n eligible positions of each row
    scores = torch.rand(B, T, generator=generator).tolist()
    for b in range(B):
        eligible = [t for t in range(T) if ids[b][t] not in never]
        k = min(max(1, round(probability * len(eligible))), len(eligible))
        for t in sorted(eligible, key=lambda t: scores[b][t])[:k]:  # the k lowest scores
            labels[b][t] = ids[b][t]

    # 2. of the chosen: u < 0.8 -> [MASK]; 0.8 <= u < 0.9 -> random token; else unchanged
    u = torch.rand(B, T, generator=generator).tolist()
    to_randomize = []
    for b in range(B):
        for t in range(T):
            if labels[b][t] == IGNORE_INDEX:
                continue
            if u[b][t] < 0.8:
                inputs[b][t] = tokenizer.mask_token_id
            elif u[b][t] < 0.9:
                to_randomize.append((b, t))

    # 3. a random non-special id for each position of the 10%
    candidates = [i for i in range(tokenizer.vocab_size) if i not in never]
    picks = torch.randint(len(candidates), (len(to_randomize),), generator=generator).tolist()
    for (b, t), pick in zip(to_randomize, picks):
        inputs[b][t] = candidates[pick]
    return torch.tensor(inputs), torch.tensor(labels)


# %% [markdown]
# Now the whole corpus goes through it: every pair, encoded as `[CLS] A [SEP] B [SEP]` and
# padded into one batch. The plain version and the library see the same generator seed:

# %%
def pad_rows(rows, pad_id):
    # Right-pad lists of ids into one (B, T) tensor.
    T = max(len(r) for r in rows)
    return torch.tensor([r + [pad_id] * (T - len(r)) for r in rows])


corpus_ids = pad_rows([encode_pair(e.tokens_a, e.tokens_b, tokenizer.cls_token_id,
                                   tokenizer.sep_token_id)[0] for e in examples],
                      tokenizer.pad_token_id)                     # (pairs, T)
mine = mask_plainly(corpus_ids, tokenizer, generator=torch.Generator().manual_seed(0))
library = mask_tokens(corpus_ids, tokenizer, generator=torch.Generator().manual_seed(0))
assert torch.equal(mine[0], library[0]) and torch.equal(mine[1], library[1])
print("the plain rule and bertedu.pretraining.mask_tokens agree on all",
      f"{corpus_ids.numel():,} positions of a {tuple(corpus_ids.shape)} batch")


# %% [markdown]
# They agree on every position. From here on we use `mask_tokens`. Here is the first pair of
# the toy documents after masking. We picked the generator seed (87) because it shows all three
# cases in one short pair. The table lists the chosen positions:

# %%
# NBVAL_CHECK_OUTPUT
def kind_of(original, corrupted):
    # What happened to a chosen position.
    if corrupted == tokenizer.mask_token_id:
        return "[MASK]"
    return "unchanged" if corrupted == original else "random token"


toy = toy_examples[0]
toy_ids = torch.tensor([encode_pair(toy.tokens_a, toy.tokens_b, tokenizer.cls_token_id,
                                    tokenizer.sep_token_id)[0]])
toy_inputs, toy_labels = mask_tokens(toy_ids, tokenizer, generator=torch.Generator().manual_seed(87))
print("original: ", " ".join(tokenizer.convert_ids_to_tokens(toy_ids[0])))
print("model in: ", " ".join(tokenizer.convert_ids_to_tokens(toy_inputs[0])))
print("labels:   ", toy_labels[0].tolist())
n_toy_eligible = int((~torch.isin(toy_ids, torch.tensor(tokenizer.all_special_ids))).sum())
glue("ch5_toy_eligible", n_toy_eligible, display=False)
glue("ch5_toy_k", int((toy_labels != IGNORE_INDEX).sum()), display=False)
print(f"\n{'position':>8}  {'original':<10} {'model input':<12} what happened")
for t in (toy_labels[0] != IGNORE_INDEX).nonzero().flatten().tolist():
    original, corrupted = toy_ids[0, t].item(), toy_inputs[0, t].item()
    print(f"{t:>8}  {tokenizer.convert_ids_to_tokens(original):<10} "
          f"{tokenizer.convert_ids_to_tokens(corrupted):<12} {kind_of(original, corrupted)}")

# %% [markdown]
# This pair has {glue:text}`ch5_toy_eligible:d` eligible positions, so
# $k = \operatorname{round}(0.15\, n) =$ {glue:text}`ch5_toy_k:d` of them are chosen. `[CLS]` and the two `[SEP]`s are never chosen. `[UNK]` is never chosen either,
# because "predict an unknown word" teaches nothing. (Google's code can choose `[UNK]`; it
# leaves out only `[CLS]` and `[SEP]`.) The random token is drawn from the whole vocabulary
# except the special tokens, so it can be a `##` piece or a character from another script. The
# labels carry the original id at each chosen position, the unchanged one included, and $-100$
# everywhere else.
#
# ## 5.4 Which positions enter the loss
#
# **All of the chosen positions, and only them.** That includes the 10% left unchanged and the 10% replaced
# by a random token, not only the `[MASK]`s. (The unchanged ones are what stops the model from
# simply copying its input.) Padding, special tokens and the 85% that were not chosen must
# stay out of the loss. There are two common ways to keep them out:
#
# - **An ignore index** (`transformers`, `bertedu`). Labels have the shape of the input, and
#   every position that does not count gets the label $-100$. `F.cross_entropy(...,
#   ignore_index=-100)` skips those positions in the sum *and* in the count it divides by.
# - **Label weights** (Google's code). Each sequence lists its chosen positions in a fixed
#   number of *prediction slots*: `masked_lm_positions`, `masked_lm_ids`, and
#   `masked_lm_weights`, with `max_predictions_per_seq` = 20 at length 128. Unused slots are
#   padded with position 0, id 0 and **weight 0**. The loss is $\sum_s w_s \ell_s / \sum_s w_s$,
#   a weighted mean over the slots.
#
# Both give the mean over exactly the chosen positions. We check this on a batch small enough
# to read: two sequences of 6 positions and a vocabulary of 10. The second sequence is
# shorter and ends in padding. The logits are random, with a bonus of 3 on the correct token
# at the chosen positions, as if from a model that has learned something.

# %%
torch.manual_seed(0)
V = 10
labels = torch.tensor([[-100, 4, -100, -100, 7, -100],     # chosen: positions 1 and 4
                       [-100, -100, 5, -100, -100, -100]])  # chosen: position 2; 4, 5 are padding
chosen = labels != IGNORE_INDEX                              # (B, T)
logits = torch.randn(2, 6, V)                                # (B, T, V)
logits[chosen, labels[chosen]] += 3.0                        # the "model" is fairly sure there

# by hand: the mean of -log p(original token) over the chosen positions
terms = [-F.log_softmax(logits[b, t], dim=-1)[labels[b, t]] for b, t in chosen.nonzero().tolist()]
by_hand = torch.stack(terms).mean()

ignore_index = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=-100)
torch.testing.assert_close(ignore_index, by_hand)
torch.testing.assert_close(masked_lm_loss(logits, labels), by_hand)  # the library's loss

# garbage at the positions that do not count changes nothing
noisy = logits.clone()
noisy[~chosen] = 100 * torch.randn_like(noisy[~chosen])
torch.testing.assert_close(masked_lm_loss(noisy, labels), by_hand)
print(f"mean over the {int(chosen.sum())} chosen positions: {by_hand.item():.4f}")

# %% [markdown]
# Now Google's layout of the same batch, with 3 prediction slots per sequence. The second
# sequence has one chosen position and two padded slots:

# %%
positions = torch.tensor([[1, 4, 0], [2, 0, 0]])            # masked_lm_positions (B, S)
slot_ids = torch.tensor([[4, 7, 0], [5, 0, 0]])             # masked_lm_ids
weights = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # masked_lm_weights: 0 = padded slot
slot_logits = torch.stack([logits[b, positions[b]] for b in range(2)])  # (B, S, V), gathered
slot_loss = F.cross_entropy(slot_logits.reshape(-1, V), slot_ids.reshape(-1),
                            reduction="none")                 # (B*S,): one loss per slot
google = (weights.reshape(-1) * slot_loss).sum() / weights.sum()
torch.testing.assert_close(google, by_hand)
print(f"Google's label weights:      {google.item():.4f}")


# %% [markdown]
# d2l's BERT uses Google's layout, but its published loss loses the weights. Its
# `_get_batch_loss_bert` multiplies the loss by the weights and divides by their sum:
# `loss(mlm_Y_hat, mlm_Y) * mlm_weights_X.reshape(-1, 1)`. The book trains with
# `loss = nn.CrossEntropyLoss()`, whose default reduction is the **mean**. So the loss is
# already a single number, averaged over *every* slot (padded slots included), before the
# weights can act. Multiplying by the weights and dividing by their sum gives that same mean
# back. We call d2l's own function, with a stand-in network that returns our logits:

# %%
def stand_in_net(tokens, segments, valid_lens, pred_positions):
    # Plays d2l's BERTModel: returns (encoded, MLM logits at the slots, NSP logits).
    return None, slot_logits, torch.zeros(2, 2)


d2l_mlm, _, _ = d2l._get_batch_loss_bert(
    stand_in_net, nn.CrossEntropyLoss(), V, None, None, torch.tensor([6.0, 4.0]),
    positions, weights, slot_ids, torch.tensor([0, 1]))
torch.testing.assert_close(d2l_mlm, slot_loss.mean(), rtol=1e-6, atol=1e-6)  # mean over ALL slots
assert abs(d2l_mlm.item() - by_hand.item()) > 0.5, (d2l_mlm, by_hand)
print(f"correct (chosen positions):  {by_hand.item():.4f}")
print(f"d2l's published loss:        {d2l_mlm.item():.4f}   = mean over all {slot_loss.numel()} slots, "
      f"{int((weights == 0).sum())} of them padding")
glue("ch5_loss_correct", by_hand.item(), display=False)
glue("ch5_loss_d2l", d2l_mlm.item(), display=False)


# %% [markdown]
# The right answer is {glue:text}`ch5_loss_correct:.3f`. d2l's function returns
# {glue:text}`ch5_loss_d2l:.3f`, because half of the slots it averages over are padding. At each
# padded slot, it scores the prediction of token 0 at position 0 (`[CLS]`). That part of the loss
# measures nothing, and its gradient trains the model to predict token 0 from `[CLS]`'s vector.
# How far off the number is depends on how many slots are padded. Let us count them for pairs
# cut our way and pairs cut d2l's way, with d2l's number of slots,
# `round(0.15 * max_len)`:

# %%
def padded_slot_share(pair_lengths, max_len):
    # d2l: round(0.15 * len) predictions per pair (at least 1), round(0.15 * max_len) slots.
    slots = round(0.15 * max_len)
    used = [max(1, round(0.15 * n)) for n in pair_lengths]
    return 1 - sum(used) / (slots * len(used))


ours = padded_slot_share(lengths, MAX_SEQ_LENGTH)
# d2l's pairs: two adjacent sentences, pairs longer than max_len = 64 dropped
d2l_lengths = [len(s1) + len(s2) + 3 for doc in token_documents for s1, s2 in zip(doc, doc[1:])]
d2l_lengths = [n for n in d2l_lengths if n <= 64]
theirs = padded_slot_share(d2l_lengths, 64)
assert theirs > ours
print(f"padded slots, our pairs at 128: {ours:.1%};  d2l-style sentence pairs at 64: {theirs:.1%}")
glue("ch5_pad_slots_ours", 100 * ours, display=False)
glue("ch5_pad_slots_d2l", 100 * theirs, display=False)

# %% [markdown]
# Our pairs nearly fill the sequence, so only {glue:text}`ch5_pad_slots_ours:.1f`% of the slots
# would be padding. d2l's pairs are two single sentences, much shorter than the maximum, and
# {glue:text}`ch5_pad_slots_d2l:.1f`% of their slots are padding: that share of the terms
# in d2l's MLM loss measures nothing.
#
# ```{admonition} Coming from d2l?
# :class: note
# Five differences in MLM between d2l's BERT {cite:p}`zhang2023dive` and this book:
# - **The loss.** d2l's published `_get_batch_loss_bert` averages over padded prediction slots,
#   as shown above. Ours is the mean over the chosen positions only: labels $-100$ and
#   `ignore_index`, in `bertedu.heads.masked_lm_loss`.
# - **The vocabulary.** d2l masks *words* from a word-level vocabulary. BERT masks WordPieces,
#   so a long word can be partly masked: "crustaceans" is `crust ##ace ##ans`, and `##ace`
#   may be hidden while `crust` is not. (Google later released "whole word masking" models that
#   choose all the pieces of a word together.)
# - **The random token.** d2l's random token can be any vocabulary entry, `<pad>`, `<cls>` and
#   `<mask>` included. Ours is never a special token.
# - **The count.** d2l's 15% counts `<cls>` and `<sep>` in the length. Ours counts only the
#   eligible positions.
# - **The head.** d2l's `MaskLM` uses ReLU. BERT's MLM head (Chapter 6) uses GELU, like the real
#   checkpoints.
# ```
#
# **Predicting only the chosen positions** also saves work. Scoring the whole vocabulary at
# every position costs a $T \times H$ by $H \times V$ matrix product. Only about 15% of those
# rows enter the loss, so Google's code (`gather_indexes`) and `bertedu.pretraining.pretraining_logits`
# first gather the encoder's outputs at the chosen positions, and apply the MLM head to those
# rows only. Chapter 6 uses this.
#
# ## 5.5 Static and dynamic masking
#
# Google's `create_pretraining_data.py` masks the data **once**, when it writes the training
# files. To show the model more than one mask per sequence, it writes the corpus `dupe_factor`
# = 10 times, each time with different masks. RoBERTa {cite:p}`liu2019roberta` (section 4.1)
# spells out the consequence:
#
# > [...] training data was duplicated 10 times so that each sequence is masked in 10 different
# > ways over the 40 epochs of training. Thus, each training sequence was seen with the same
# > mask four times during training.
#
# RoBERTa proposes **dynamic masking** instead: "we generate the masking pattern every time we
# feed a sequence to the model". It reports results comparable to or slightly better than
# static masking, with no copies of the data. `PretrainingDataset(masking=...)` does either. With
# `"static"`, each example is masked once, when the dataset is built. With `"dynamic"`,
# `dataset[i]` draws a fresh mask every epoch. The mask comes from a generator seeded by
# (seed, epoch, i), so it is reproducible. Here are the masks of the first toy pair over four epochs:

# %%
# NBVAL_CHECK_OUTPUT
static_toy = PretrainingDataset(toy_examples, tokenizer, masking="static", seed=0)
dynamic_toy = PretrainingDataset(toy_examples, tokenizer, masking="dynamic", seed=0)
for dataset in (static_toy, dynamic_toy):
    print(f"{dataset.masking} masking")
    for epoch in range(4):
        dataset.set_epoch(epoch)
        item = dataset[0]
        tokens = tokenizer.convert_ids_to_tokens(item["input_ids"])
        marked = [f"<{tok}>" if label != IGNORE_INDEX else tok        # <...> = chosen
                  for tok, label in zip(tokens, item["labels"].tolist())]
        print(f"  epoch {epoch}:", " ".join(marked))


# %% [markdown]
# The angle brackets mark the chosen positions, as the model receives them. The static dataset
# shows the model the same puzzle every epoch. The dynamic one hides different positions each time.
# (Its epoch 0 equals the static mask, because both draw it from the same seed.) Over the whole corpus
# and {glue:text}`ch5_epochs:d` epochs, we count how many of the eligible positions the model has
# been asked to predict at least once. With independent draws of 15%, that share should follow
# $1 - 0.85^{e}$ after $e$ epochs:

# %% mystnb={"image": {"alt": "Line chart over epochs: with static masking the share of positions ever predicted stays flat at 15 percent; with dynamic masking it rises along the curve 1 - 0.85 to the power e."}}
def coverage_by_epoch(dataset, epochs):
    # Share of eligible positions chosen at least once in epochs 0..e-1, for e = 1..epochs.
    seen = [None] * len(dataset)
    shares = []
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        for i in range(len(dataset)):
            chosen_now = dataset[i]["labels"] != IGNORE_INDEX
            seen[i] = chosen_now if seen[i] is None else seen[i] | chosen_now
        n_seen = sum(int(s.sum()) for s in seen)
        shares.append(n_seen / n_eligible)
    return np.array(shares)


static = PretrainingDataset(examples, tokenizer, masking="static", seed=0)
dynamic = PretrainingDataset(examples, tokenizer, masking="dynamic", seed=0)
n_eligible = int((~torch.isin(corpus_ids, torch.tensor(
    tokenizer.all_special_ids + [tokenizer.pad_token_id]))).sum())
static_coverage = coverage_by_epoch(static, EPOCHS)
dynamic_coverage = coverage_by_epoch(dynamic, EPOCHS)
epochs_axis = np.arange(1, EPOCHS + 1)
expected = 1 - 0.85 ** epochs_axis

assert np.all(static_coverage == static_coverage[0])        # static: never anything new
assert abs(static_coverage[0] - 0.15) < 0.005, static_coverage[0]
assert np.all(np.diff(dynamic_coverage) > 0)                 # dynamic: new positions every epoch
assert np.abs(dynamic_coverage - expected).max() < 0.02, dynamic_coverage - expected
glue("ch5_epochs", EPOCHS, display=False)
glue("ch5_static_coverage", 100 * float(static_coverage[-1]), display=False)
glue("ch5_dynamic_coverage", 100 * float(dynamic_coverage[-1]), display=False)
glue("ch5_expected_coverage", 100 * float(expected[-1]), display=False)

fig, ax = plt.subplots(figsize=(8, 4.5))
ax.plot(epochs_axis, 100 * dynamic_coverage, "o-", label="dynamic masking (measured)")
ax.plot(epochs_axis, 100 * expected, "k--", lw=1, label=r"$1 - 0.85^{e}$")
ax.plot(epochs_axis, 100 * static_coverage, "s-", label="static masking (measured)")
ax.set_xlabel("epochs e")
ax.set_ylabel("eligible positions predicted at least once (%)")
ax.set_title(f"What the model is asked to predict, WikiText-2 {SPLIT}")
ax.set_ylim(0, 100)
ax.set_xticks(epochs_axis)
ax.legend(loc="upper left")
plt.show()

# %% [markdown]
# After {glue:text}`ch5_epochs:d` epochs, static masking has asked for the same
# {glue:text}`ch5_static_coverage:.1f`% of the positions over and over. Dynamic masking has
# asked for {glue:text}`ch5_dynamic_coverage:.1f`% of them, close to the
# {glue:text}`ch5_expected_coverage:.1f`% that independent draws predict. Google's `dupe_factor`
# = 10 sits in between: 10 different masks, each seen 4 times in 40 epochs.
#
# ## 5.6 The proportions, measured on the whole corpus
#
# The rule says 15% of the eligible positions are chosen, and that those split 80/10/10. Now
# we measure it. `corpus_ids` holds every pair of the split, padded into one batch; `library`
# is its masking from above.

# %%
inputs, labels = library
never = torch.isin(corpus_ids, torch.tensor(tokenizer.all_special_ids + [tokenizer.pad_token_id]))
eligible = ~never
chosen = labels != IGNORE_INDEX

# what must hold exactly
assert not (chosen & never).any()                           # no special token, no padding
assert torch.equal(inputs[~chosen], corpus_ids[~chosen])    # unchosen positions untouched
assert torch.equal(labels[chosen], corpus_ids[chosen])      # labels are the original ids

masked = chosen & (inputs == tokenizer.mask_token_id)
unchanged = chosen & (inputs == corpus_ids)  # (a random draw of the same token counts here)
randomized = chosen & ~masked & ~unchanged
assert not torch.isin(inputs[randomized], torch.tensor(tokenizer.all_special_ids)).any()

n_chosen = int(chosen.sum())
measured = {
    "chosen / eligible": (chosen.sum() / eligible.sum()).item(),
    "[MASK] / chosen": (masked.sum() / n_chosen).item(),
    "random / chosen": (randomized.sum() / n_chosen).item(),
    "unchanged / chosen": (unchanged.sum() / n_chosen).item(),
    "NotNext / pairs": notnext_share,
}
targets = {"chosen / eligible": 0.15, "[MASK] / chosen": 0.8, "random / chosen": 0.1,
           "unchanged / chosen": 0.1, "NotNext / pairs": 0.5}
tolerances = {"chosen / eligible": 0.005, "[MASK] / chosen": 0.015, "random / chosen": 0.01,
              "unchanged / chosen": 0.01, "NotNext / pairs": 0.02}
for name, value in measured.items():
    assert abs(value - targets[name]) < tolerances[name], (name, value)
    print(f"{name:<20} measured {value:.4f}   target {targets[name]:.2f}")

# %% mystnb={"image": {"alt": "Left: bars of target and measured shares for chosen/eligible (0.15), [MASK], random and unchanged among the chosen (0.8, 0.1, 0.1) and NotNext among pairs (0.5), each measured bar next to its target. Right: histograms of the chosen fraction per pair: choosing round(0.15 n) positions gives a narrow spike at 0.15, a coin per position spreads from about 0.05 to 0.3."}}
per_sequence = (chosen.sum(1) / eligible.sum(1)).numpy()   # chosen fraction of each pair
# transformers' collator instead flips a coin with p = 0.15 at every eligible position
coins = (torch.rand(corpus_ids.shape, generator=torch.Generator().manual_seed(0)) < 0.15) & eligible
per_sequence_coins = (coins.sum(1) / eligible.sum(1)).numpy()
assert per_sequence_coins.std() > 3 * per_sequence.std(), (per_sequence_coins.std(), per_sequence.std())
glue("ch5_per_sequence_std", float(per_sequence.std()), display=False)
glue("ch5_per_sequence_std_coins", float(per_sequence_coins.std()), display=False)
random_of_all = (randomized.sum() / eligible.sum()).item()
mask_of_all = (masked.sum() / eligible.sum()).item()
is_unk = corpus_ids == tokenizer.unk_token_id
unk_share = (is_unk.sum() / (eligible | is_unk).sum()).item()  # [UNK] among the words' WordPieces
assert abs(random_of_all - 0.015) < 0.002 and abs(mask_of_all - 0.12) < 0.005
glue("ch5_n_chosen", n_chosen, display=False)
glue("ch5_chosen_fraction", measured["chosen / eligible"], display=False)
glue("ch5_mask_share", measured["[MASK] / chosen"], display=False)
glue("ch5_random_share", measured["random / chosen"], display=False)
glue("ch5_unchanged_share", measured["unchanged / chosen"], display=False)
glue("ch5_random_of_all", 100 * random_of_all, display=False)
glue("ch5_mask_of_all", 100 * mask_of_all, display=False)
glue("ch5_unk_share", 100 * unk_share, display=False)
glue("ch5_per_sequence_median", float(np.median(per_sequence)), display=False)

fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [1.3, 1]})
names = list(measured)
x = np.arange(len(names))
left.bar(x - 0.2, [targets[n] for n in names], width=0.4, color="lightgray", label="target")
left.bar(x + 0.2, [measured[n] for n in names], width=0.4, color="tab:blue", label="measured")
for xi, n in zip(x, names):
    left.text(xi + 0.2, measured[n] + 0.02, f"{measured[n]:.3f}", ha="center", fontsize=11)
left.set_xticks(x, [n.replace(" / ", "\n/ ") for n in names], fontsize=11)
left.set_ylabel("share")
left.set_ylim(0, 1)
left.set_title("MLM and NSP proportions on the corpus")
left.legend(loc="upper left")

fraction_bins = np.arange(0.0, 0.4, 0.005)
right.hist(per_sequence, bins=fraction_bins, histtype="step", lw=2, color="tab:blue",
           label="round(0.15 n) per pair\n(BERT, bertedu)")
right.hist(per_sequence_coins, bins=fraction_bins, histtype="step", lw=2, color="tab:orange",
           label="a coin per position\n(transformers' collator)")
right.axvline(0.15, color="k", ls="--", lw=1)
right.set_yscale("log")
right.set_xlabel("chosen / eligible positions, per pair")
right.set_ylabel("number of pairs (log scale)")
right.set_title("The chosen fraction of each pair")
right.legend(fontsize=11)
fig.tight_layout()
plt.show()

# %% [markdown]
# On WikiText-2 {glue:text}`ch5_n_pairs:,d` pairs, {glue:text}`ch5_n_chosen:,d` positions were
# chosen: a share of {glue:text}`ch5_chosen_fraction:.4f` of the eligible positions. Of the
# chosen positions, {glue:text}`ch5_mask_share:.3f` became `[MASK]`, {glue:text}`ch5_random_share:.3f`
# a random token, and {glue:text}`ch5_unchanged_share:.3f` stayed unchanged. Of all eligible
# positions, that makes {glue:text}`ch5_mask_of_all:.1f`% `[MASK]`s and only
# {glue:text}`ch5_random_of_all:.2f`% random tokens, the paper's "1.5% of all tokens". The NSP
# labels came out {glue:text}`ch5_notnext_share:.3f` NotNext.
#
# The blue histogram on the right is a narrow spike because the library fixes the number of
# chosen positions of every pair: $k = \max(1, \operatorname{round}(0.15\, n))$ of its $n$
# eligible positions (and never more than $n$). Google's `create_pretraining_data.py` also fixes
# the count per sequence, but computes it differently:
# `num_to_predict = min(max_predictions_per_seq, max(1, int(round(len(tokens) * masked_lm_prob))))`.
# Its `len(tokens)` counts `[CLS]` and the two `[SEP]`s, which are never chosen, so Google's code
# chooses a little more than 15% of the eligible positions, most visibly in short pairs: with 8
# eligible WordPieces it chooses $\operatorname{round}(0.15 \times 11) = 2$ of them, the library
# $\operatorname{round}(0.15 \times 8) = 1$. And `max_predictions_per_seq` caps the count (20 for
# sequences of 128 in the README's example, where 15% of 128 tokens rounds to 19, so the cap never
# binds there). Google's code can also choose `[UNK]` (section 5.3); the library cannot. The
# median pair has a chosen fraction of {glue:text}`ch5_per_sequence_median:.3f`, and the
# standard deviation over pairs is {glue:text}`ch5_per_sequence_std:.4f`. Only short pairs
# stray from 0.15, because $k$ is rounded and is at least 1: a pair with 3 eligible tokens has 1
# of them chosen, which is 33%. `transformers`' data collator flips a coin with probability 0.15
# at each position instead (orange). It also chooses 15% on average, but the share varies from pair to
# pair (standard deviation {glue:text}`ch5_per_sequence_std_coins:.4f`), and a batch of short
# sequences can end up with nothing to predict. The `[MASK]`/random/unchanged split, on the other
# hand, is drawn independently at each chosen position, in the library as in Google's code, so
# it is 80/10/10 only on average.
# One more detail: {glue:text}`ch5_unk_share:.1f`% of this corpus's WordPieces are `[UNK]`
# (WikiText's `<unk>`). They are never chosen, and they count neither as eligible positions nor in the loss.
#
# ## Summary
#
# - **Pretraining data comes from documents.** A document (here a WikiText-2 article) is a list
#   of sentences. A and B are spans of whole sentences, packed as `[CLS] A [SEP] B [SEP]` to fill
#   `max_seq_length`.
# - **NSP:** half the pairs have the real continuation as B (IsNext, **label 0**). The other half
#   take B from a random *other* document (NotNext, **label 1**), as in Google's code and
#   `transformers`. d2l uses the opposite labels. The final vector $C$ of `[CLS]` goes through the
#   pooler ($\tanh$) and a 2-way linear layer. Topic changes give much of NSP away, which is why
#   RoBERTa dropped it and ALBERT changed it.
# - **Long pairs** are trimmed one token at a time from the longer side, at its front or back
#   at random. **Short pairs** are made on purpose (10% of chunks get a random, shorter target),
#   so that the model also sees inputs as short as fine-tuning inputs.
# - **MLM:** choose 15% of the eligible positions (never `[CLS]`, `[SEP]`, padding or other
#   special tokens). Of those, 80% become `[MASK]`, 10% a random token and 10% stay unchanged,
#   so the model cannot trust any token and fine-tuning inputs (without `[MASK]`) look familiar.
# - **The loss** is the mean over *all* chosen positions (`[MASK]`, random and unchanged) and
#   no others: labels $-100$ with `ignore_index`, or Google's label weights. d2l's published loss
#   averages over padded slots too, and gives a wrong number.
# - **Static masking** asks the same questions every epoch. **Dynamic masking** (RoBERTa) asks new
#   ones, and after $e$ epochs it has covered about $1 - 0.85^{e}$ of the positions.
# - **Measured on WikiText-2:** {glue:text}`ch5_chosen_fraction:.3f` of the eligible
#   positions were chosen, split {glue:text}`ch5_mask_share:.3f` / {glue:text}`ch5_random_share:.3f` /
#   {glue:text}`ch5_unchanged_share:.3f`, and {glue:text}`ch5_notnext_share:.3f` of the pairs
#   are NotNext.
#
# ## Exercises
#
# The exercises for this chapter are the nbgrader assignment `exercises/source/05_pretraining_data/05_pretraining_data.ipynb`, with reference solutions. `make exercises` writes the student version, without them, to `exercises/release/05_pretraining_data/`; instructors, see the guide "Teaching with this book".
