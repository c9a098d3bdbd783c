# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 13. Poor man's BERT
#
# A fine-tuned BERT is accurate, and it is big and slow: every prediction runs all of its layers
# over all of its weights. This chapter takes one fine-tuned model, the real all-MiniLM-L6-v2
# {cite:p}`wang2020minilm` fine-tuned on SST-2 sentiment {cite:p}`socher2013recursive`, and
# makes it cheaper in four ways, measuring after each what it costs in accuracy:
#
# - **Knowledge distillation** {cite:p}`hinton2015distilling`: a student with fewer layers learns
#   from the teacher's soft labels, as DistilBERT {cite:p}`sanh2019distilbert` and TinyBERT
#   {cite:p}`jiao2020tinybert` do.
# - **Parameter sharing** as in ALBERT {cite:p}`lan2020albert`: one block's weights for every
#   layer, and a factorised embedding table.
# - **Quantization**: weights stored and multiplied as 8-bit integers.
# - **Pruning**: the smallest weights set to zero.
#
# By the end of the chapter you will be able to:
#
# - train a small student on a teacher's soft labels, and tell whether it beats the same student
#   trained on the labels alone, using several seeds;
# - share one block across layers and factorise the embedding table, and count exactly what that
#   saves, and what it does not save;
# - quantize a model's linear layers to int8 and prune its smallest weights, and measure size on
#   disk, CPU latency and accuracy side by side in one table;
# - place DistilBERT, TinyBERT, MobileBERT {cite:p}`sun2020mobilebert` and ALBERT next to your
#   measurements, using their published numbers.
#
# The pieces live in `bertedu.compression`: `student_from_teacher`, `share_layers`,
# `factorize_embeddings`, `quantize_dynamic_int8`, `magnitude_prune`, the measures
# `parameter_count`, `size_on_disk`, `sparsity`, `latency_per_batch`, and `WithTeacherLogits`, the
# teacher's logits beside each example; the loss is `bertedu.distillation`'s `distillation_objective`.
#
# ```{admonition} For readers coming from d2l
# :class: note
# d2l's BERT chapters measure a model by its number of parameters. Here we measure three things,
# because the four methods change them differently. **Parameters** are the distinct weights.
# **Bytes on disk** are what `torch.save` writes. **Latency** is the time one batch takes on this
# CPU. Sharing cuts parameters and bytes, but not time. Quantization cuts bytes (and time on a
# CPU with int8 kernels), but not parameters. Unstructured pruning cuts none of the three until
# the zeros are stored sparsely and multiplied by sparse kernels.
# ```

# %%
# %config InlineBackend.figure_format = 'png'
import copy
import os
import random
import statistics
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import scipy.stats
import torch
import torch.nn.functional as F
from myst_nb import glue
from torch import nn

import bertedu
from bertedu import BertConfig, BertForSequenceClassification, BertModel
from bertedu.compression import (FactorizedEmbedding, WithTeacherLogits, factorize_embeddings,
                                 latency_per_batch, magnitude_prune, parameter_count, quantize_dynamic_int8,
                                 quantize_symmetric, share_layers, size_on_disk, sparsity, student_from_teacher)
from bertedu.data import load_sst2
from bertedu.distillation import distillation_loss, distillation_objective
from bertedu.finetuning import LengthGroupedBatches, SequenceClassificationDataset, majority_class, predict_logits
from bertedu.metrics import accuracy
from bertedu.tokenization import BertTokenizer
from bertedu.training import TrainingConfig, set_seed, train

CPU_START, WALL_START = time.process_time(), time.perf_counter()  # the chapter's own cost
plt.rcParams.update({"font.size": 12})
warnings.filterwarnings("ignore", message=".*newly initialised.*")  # the new classifier head
# PyTorch 2.14 warns that its quantized tensor types will move out of core (to torchao); they work here.
warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
set_seed(0)

# The one knob of the book (see the text for what it changes).
FULL = os.environ.get("BERTEDU_FULL") == "1"
TRAIN_SIZE = 67_349 if FULL else 4_800      # SST-2 training phrases (FULL: all of them)
MAX_WORDS = None if FULL else 12             # the default run trains on phrases of <= 12 words
EPOCHS = 2 if FULL else 1
BATCH_SIZE, LEARNING_RATE = 32, 1e-4
STUDENT_LAYERS = [0, 3]                      # 2 of MiniLM's 6 blocks
SEEDS = [0, 1, 2]                            # every student setting is trained with each seed
TEMPERATURE, SOFT_WEIGHT = 2.0, 0.5          # distillation: T and the soft term's share
EMBEDDING_SIZE = 128                         # E of the factorised embeddings (ALBERT-base's)
PRUNE_AMOUNTS = [0.3, 0.5, 0.7]

# %% [markdown]
# ## 13.1 The teacher
#
# The teacher is MiniLM fine-tuned on SST-2 as in Chapter 8, on a smaller budget: one pass over
# {glue:text}`ch13_train_n:,d` training phrases of at most 12 words, with the word-embedding
# table frozen. Every model in this chapter is scored on the same 872 dev sentences (SST-2's
# test labels are not public; the dev set serves as our test set, and we tune nothing on it).

# %%
tokenizer = BertTokenizer.from_pretrained(bertedu.minilm_path())
train_all, dev = load_sst2("train"), load_sst2("dev")
pool = [r for r in train_all if MAX_WORDS is None or len(r["sentence"].split()) <= MAX_WORDS]
train_records = random.Random(0).sample(pool, min(TRAIN_SIZE, len(pool)))
train_set = SequenceClassificationDataset.from_records(train_records, tokenizer)
dev_set = SequenceClassificationDataset.from_records(dev, tokenizer)
dev_gold = [r["label"] for r in dev]
majority = accuracy([majority_class([r["label"] for r in train_records])] * len(dev), dev_gold)
STEPS = EPOCHS * (len(train_set) // BATCH_SIZE)
glue("ch13_train_n", len(train_set), display=False)
glue("ch13_steps", STEPS, display=False)
glue("ch13_majority", majority, display=False)
print(f"{len(train_set):,} training phrases, {STEPS} steps of {BATCH_SIZE}; dev {len(dev_set)} sentences; "
      f"majority class {majority:.3f}")


def fit(model, seed, dataset=train_set, loss_fn=None, freeze_table=True):
    """Fine-tune `model` for STEPS steps (the word table frozen, as in Chapter 8); CPU-seconds."""
    model.bert.embeddings.word_embeddings.weight.requires_grad_(not freeze_table)
    config = TrainingConfig(max_steps=STEPS, batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE,
                            warmup_steps=STEPS // 10, seed=seed, progress_bar=False)
    extra = {} if loss_fn is None else {"loss_fn": loss_fn}
    cpu = time.process_time()
    train(model, dataset, config, **extra)  # length-grouped batches: the dataset has lengths
    return time.process_time() - cpu


def dev_accuracy(model):
    # fp32 for every model (bf16 would be the default on this CPU): the int8 rows differ from the
    # fp32 ones by their int8 weights only
    return accuracy(predict_logits(model, dev_set, mixed_precision=False).argmax(-1), dev_gold)


# %%
set_seed(0)
pretrained = BertForSequenceClassification.from_pretrained(bertedu.minilm_path(), num_labels=2)
teacher = copy.deepcopy(pretrained)
teacher_cpu = fit(teacher, seed=0)
teacher_accuracy = dev_accuracy(teacher)
assert teacher_accuracy >= 0.80, teacher_accuracy
print(f"teacher: {teacher_cpu:.0f} CPU-seconds of training, dev accuracy {teacher_accuracy:.3f}")
glue("ch13_teacher_acc", teacher_accuracy, display=False)
glue("ch13_teacher_cpu", teacher_cpu, display=False)

# %% [markdown]
# The teacher classifies {glue:text}`ch13_teacher_acc:.1%` of the dev sentences correctly (the
# majority class: {glue:text}`ch13_majority:.1%`). It trained for
# {glue:text}`ch13_teacher_cpu:.0f` CPU-seconds. Chapter 8's teacher, trained longer, does better; this budget leaves room for
# the students.
#
# ## 13.2 Knowledge distillation
#
# A classifier's output says more than its arg-max. "70% positive" says how sure the teacher is,
# and, with many classes, which wrong answers are close to right. {cite:t}`hinton2015distilling`
# call this the teacher's *dark knowledge* and train a student to match the whole distribution.
# Both softmaxes are softened by a temperature $T$:
#
# $$
# p_i^{(T)} = \frac{\exp(z_i / T)}{\sum_j \exp(z_j / T)}, \qquad
# \mathcal{L} = w \, T^2 \, \mathrm{KL}\!\left(p^{(T)}_{\text{teacher}} \,\middle\|\, p^{(T)}_{\text{student}}\right)
#  + (1 - w)\, \mathrm{CE}(\text{student}, y).
# $$
#
# The $T^2$ keeps the gradients of the soft term the same size whatever $T$ is. Here is what the
# temperature does to the teacher's output for three dev sentences:

# %%
examples = dev_set.collate([dev_set[i] for i in range(3)])
with torch.no_grad():
    teacher_logits_3 = teacher(**{k: v for k, v in examples.items() if k != "labels"}).logits  # (3, 2)
for T in (1.0, 2.0, 4.0):
    p = torch.softmax(teacher_logits_3 / T, dim=-1)[:, 1]
    print(f"T = {T:g}: P(positive) =", " ".join(f"{x:.3f}" for x in p.tolist()))
for i in range(3):
    print(f"  {['negative', 'positive'][dev_gold[i]]:>8}: {dev[i]['sentence'][:80]}")

# %% [markdown]
# At $T = 1$ a confident teacher is close to a hard label; a higher $T$ moves every probability
# toward one half and shows how sure the teacher is. The loss, written out from the formula, is
# the library's `distillation_loss`:

# %%
student_logits_3 = torch.randn(3, 2, generator=torch.Generator().manual_seed(0))
labels_3 = examples["labels"]
T, w = TEMPERATURE, SOFT_WEIGHT
p_teacher = torch.softmax(teacher_logits_3 / T, dim=-1)                        # (3, 2)
log_p_student = torch.log_softmax(student_logits_3 / T, dim=-1)               # (3, 2)
kl = (p_teacher * (p_teacher.log() - log_p_student)).sum(-1).mean()           # KL(teacher || student)
by_hand = w * T**2 * kl + (1 - w) * F.cross_entropy(student_logits_3, labels_3)
torch.testing.assert_close(by_hand, distillation_loss(student_logits_3, teacher_logits_3, labels_3, T, w))
print(f"distillation loss by hand {by_hand.item():.5f} = bertedu.distillation.distillation_loss")

# %% [markdown]
# ### The student
#
# DistilBERT's student has BERT-base's width and half its layers, and it starts from the teacher's
# own weights, keeping one layer out of two {cite:p}`sanh2019distilbert`. Ours keeps blocks
# {glue:text}`ch13_student_layers` of MiniLM's six: a third of the encoder's compute. A
# student is the pretrained model with the other blocks taken out, which is
# all that `student_from_teacher` does:

# %%
# NBVAL_CHECK_OUTPUT
by_hand = copy.deepcopy(pretrained)
by_hand.bert.encoder.layer = nn.ModuleList(by_hand.bert.encoder.layer[i] for i in STUDENT_LAYERS)
student = student_from_teacher(pretrained, STUDENT_LAYERS)
with torch.no_grad():
    inputs = {k: v for k, v in examples.items() if k != "labels"}
    torch.testing.assert_close(by_hand.eval()(**inputs).logits, student.eval()(**inputs).logits)
print(f"layers kept {STUDENT_LAYERS}: config.num_hidden_layers = {student.config.num_hidden_layers}")
print(f"parameters: teacher {parameter_count(pretrained):,}, student {parameter_count(student):,}")
glue("ch13_student_layers", str(STUDENT_LAYERS), display=False)

# %% [markdown]
# The student keeps two thirds of the teacher's parameters, though it runs a third of its blocks:
# MiniLM's embedding table alone ({glue:text}`ch13_embedding_params:,d` weights) is half of
# the model, and the student keeps all of it. The students start from the *pretrained*
# MiniLM, as DistilBERT's does, not from the fine-tuned teacher, so they learn the task only
# from what they are trained on.
#
# ### Hard labels against soft labels
#
# Two students with the same blocks, the same data, the same steps and the same seed, trained
# with two losses:
#
# - **hard**: cross-entropy on the gold labels, the ordinary fine-tune;
# - **distilled**: the distillation loss above ($T =$ {glue:text}`ch13_temperature:g`, $w =$
#   {glue:text}`ch13_soft_weight:g`), so half soft labels and half gold labels.
#
# The teacher labels the training set once (`predict_logits`), and `WithTeacherLogits` hands
# each batch its rows, so no student step runs the teacher. A gain from distillation on one
# seed could be luck: the data order, the dropout masks and the new head's initial weights all
# come from the seed. So every setting runs with {glue:text}`ch13_n_seeds:d` seeds, and we
# compare the two losses seed by seed.

# %%
glue("ch13_embedding_params", pretrained.bert.embeddings.word_embeddings.weight.numel(), display=False)
glue("ch13_temperature", TEMPERATURE, display=False)
glue("ch13_soft_weight", SOFT_WEIGHT, display=False)
glue("ch13_n_seeds", len(SEEDS), display=False)
cpu = time.process_time()
train_teacher_logits = predict_logits(teacher, train_set, mixed_precision=False)  # (N, 2), once
distill_set = WithTeacherLogits(train_set, train_teacher_logits)
teacher_train_accuracy = accuracy(train_teacher_logits.argmax(-1), [r["label"] for r in train_records])
print(f"teacher logits of {len(train_set):,} phrases: {time.process_time() - cpu:.0f} CPU-seconds; "
      f"the teacher agrees with {teacher_train_accuracy:.1%} of the gold training labels")
glue("ch13_teacher_train_acc", teacher_train_accuracy, display=False)

students, student_results, student_cpu = {}, {"hard": [], "distilled": []}, []
for seed in SEEDS:
    for kind in ("hard", "distilled"):
        set_seed(seed)
        model = student_from_teacher(pretrained, STUDENT_LAYERS)
        if kind == "hard":
            student_cpu.append(fit(model, seed))
        else:
            student_cpu.append(fit(model, seed, distill_set, distillation_objective(TEMPERATURE, SOFT_WEIGHT)))
        student_results[kind].append(dev_accuracy(model))
        if seed == SEEDS[0]:
            students[kind] = model  # seed 0's models go into the table below
        print(f"seed {seed} {kind:<9} dev accuracy {student_results[kind][-1]:.3f} ({student_cpu[-1]:.0f} CPU-s)")

# %%
hard, distilled = np.array(student_results["hard"]), np.array(student_results["distilled"])
gains = distilled - hard  # paired: the same seed, the same data order
print(f"{'':<12}{'mean':>8}{'std':>8}   per seed")
for name, values in [("hard", hard), ("distilled", distilled), ("gain", gains)]:
    print(f"{name:<12}{values.mean():>8.3f}{values.std(ddof=1):>8.3f}   " + " ".join(f"{v:+.3f}" if name == "gain" else f"{v:.3f}" for v in values))
wins = int((gains > 0).sum())
# A paired t-test on the per-seed gains: is their mean far from 0, given how much they vary?
t_value = gains.mean() / (gains.std(ddof=1) / np.sqrt(len(gains)))
t_needed = scipy.stats.t.ppf(0.975, df=len(gains) - 1)  # two-sided, 5%: 4.3 for 3 seeds
if wins == len(SEEDS) and t_value > t_needed:
    verdict = (f"distillation wins on all {len(SEEDS)} seeds (paired t = {t_value:.1f}, above the "
               f"{t_needed:.1f} that {len(SEEDS)} seeds need): at this scale the gain is real")
elif wins == len(SEEDS):
    verdict = (f"distillation wins on all {len(SEEDS)} seeds, but by little (paired t = {t_value:.1f}; "
               f"{len(SEEDS)} seeds need {t_needed:.1f} to call it real at the 5% level): a consistent "
               "but small gain that this run cannot confirm")
else:
    verdict = (f"distillation wins on {wins} of {len(SEEDS)} seeds only: the difference is within the "
               "seed-to-seed noise, and this run cannot call it real")
print(verdict)
glue("ch13_hard_mean", float(hard.mean()), display=False)
glue("ch13_hard_std", float(hard.std(ddof=1)), display=False)
glue("ch13_distilled_mean", float(distilled.mean()), display=False)
glue("ch13_distilled_std", float(distilled.std(ddof=1)), display=False)
glue("ch13_gain_mean", float(gains.mean()), display=False)
glue("ch13_gain_min", float(gains.min()), display=False)
glue("ch13_gain_max", float(gains.max()), display=False)
glue("ch13_verdict", verdict, display=False)
glue("ch13_student_cpu", float(np.mean(student_cpu)), display=False)

# %% [markdown]
# Trained on the gold labels, the two-block student reaches
# {glue:text}`ch13_hard_mean:.3f` $\pm$ {glue:text}`ch13_hard_std:.3f` (mean $\pm$ standard
# deviation over the seeds); trained on the teacher's soft labels, it reaches
# {glue:text}`ch13_distilled_mean:.3f` $\pm$ {glue:text}`ch13_distilled_std:.3f`. Seed by seed,
# the gain from distillation runs from {glue:text}`ch13_gain_min:+.3f` to
# {glue:text}`ch13_gain_max:+.3f` (mean {glue:text}`ch13_gain_mean:+.3f`). The verdict:
# {glue:text}`ch13_verdict`. Either student stays below the teacher
# ({glue:text}`ch13_teacher_acc:.3f`), and each costs about
# {glue:text}`ch13_student_cpu:.0f` CPU-seconds to train, against the teacher's
# {glue:text}`ch13_teacher_cpu:.0f`.
#
# Why soft labels could help, when the teacher saw the same phrases: the teacher agrees with
# {glue:text}`ch13_teacher_train_acc:.1%` of the gold training labels, and where it is unsure its
# soft label says so. Many SST-2 training phrases are fragments of sentences with little
# sentiment of their own; a gold label asks the student for a confident answer on them, a soft
# label does not. The soft labels also carry what the teacher learned from its four extra blocks. DistilBERT
# adds two more terms, a masked-LM loss and a cosine loss between the hidden states of student
# and teacher, and distils during *pretraining*, on all of BERT's corpus; TinyBERT also matches
# attention maps and hidden states layer by layer, and distils again on augmented task data
# {cite:p}`jiao2020tinybert`. Those are where most of their gains come from. Here the student sees
# only the phrases the teacher was trained on, for a few hundred steps, and the teacher is itself
# a small model trained briefly: whatever its soft labels add is, at this scale, a fraction of a
# point, the size of the differences between seeds. A student trained on the teacher's labels for *more* text than was
# labelled by hand (unlabelled phrases, or augmented ones as in TinyBERT) is where distillation
# is expected to pay off.
#
# ## 13.3 Parameter sharing, as in ALBERT
#
# ALBERT {cite:p}`lan2020albert` makes BERT smaller in parameters, not in compute, with two ideas.
#
# **Cross-layer sharing.** All $L$ layers use the weights of one block: the input runs through the
# same block $L$ times. In code that is a `ModuleList` holding the same module $L$ times. By hand,
# a plain model whose every block has been given the weights of block 0 computes exactly what
# `share_layers` computes; the difference is what is stored:

# %%
# NBVAL_CHECK_OUTPUT
plain_equal = copy.deepcopy(pretrained).eval()
for layer in plain_equal.bert.encoder.layer:
    layer.load_state_dict(pretrained.bert.encoder.layer[0].state_dict())  # 6 copies of block 0
shared = share_layers(pretrained, source=0).eval()
with torch.no_grad():
    torch.testing.assert_close(plain_equal(**inputs).logits, shared(**inputs).logits, rtol=0, atol=0)
block = parameter_count(pretrained.bert.encoder.layer[0])
print(f"one block: {block:,} parameters")
print(f"6 blocks with equal weights: {parameter_count(plain_equal):,} parameters, {size_on_disk(plain_equal) / 1e6:.1f} MB")
print(f"1 block used 6 times:        {parameter_count(shared):,} parameters, {size_on_disk(shared) / 1e6:.1f} MB")
assert parameter_count(plain_equal) - parameter_count(shared) == 5 * block

# %% [markdown]
# **Factorised embeddings.** BERT's word table is $V \times H$. ALBERT makes it $V \times E$,
# followed by an $E \times H$ projection, with $E \ll H$: $VE + EH$ weights instead of $VH$. The
# reason it gives: word vectors are meant to be context-free, so they need less room than the
# hidden states, which are not. To start from MiniLM's trained table rather than from random
# numbers, we take the best rank-$E$ approximation of it, the truncated SVD
# $W \approx (U_E \Sigma_E)\, V_E^\top$: the table becomes $U_E \Sigma_E$ and the projection
# $V_E^\top$. The share of the table that is lost, $\lVert W - W_E \rVert_F / \lVert W \rVert_F$,
# follows from the singular values alone:

# %%
W = pretrained.bert.embeddings.word_embeddings.weight.detach()          # (V, H)
U, S, Vh = torch.linalg.svd(W, full_matrices=False)                       # (V, H), (H,), (H, H)
for E in (32, 64, 128, 256, 384):
    lost = (S[E:].square().sum() / S.square().sum()).sqrt().item()
    print(f"E = {E:>3}: {W.size(0) * E + E * W.size(1):>10,} weights instead of {W.numel():,}, "
          f"relative error {lost:.3f}")
factorised = factorize_embeddings(pretrained, EMBEDDING_SIZE)
emb = factorised.bert.embeddings.word_embeddings
E = EMBEDDING_SIZE
torch.testing.assert_close(emb.table.weight @ emb.projection.weight.T,
                           (U[:, :E] * S[:E]) @ Vh[:E], atol=1e-5, rtol=1e-4)
glue("ch13_svd_error", (S[E:].square().sum() / S.square().sum()).sqrt().item(), display=False)
glue("ch13_E", E, display=False)


# %% [markdown]
# At $E =$ {glue:text}`ch13_E:d`, a third of MiniLM's width, the relative error is
# {glue:text}`ch13_svd_error:.2f`: MiniLM's table was not trained to be low-rank, and most of its
# singular values matter. (At $E = H$ the two factors hold more weights than the table itself.)
# ALBERT learns its two factors from the start, during pretraining; cutting a trained table
# afterwards loses much of it, so our ALBERT-style student below trains its table. Then the two ideas together on BERT-base's shape,
# counted exactly (the models are built on PyTorch's `meta` device: shapes without memory):

# %%
# NBVAL_CHECK_OUTPUT
def albert_style(config, embedding_size):
    with torch.device("meta"):
        return factorize_embeddings(share_layers(BertModel(config)), embedding_size, init="random")


with torch.device("meta"):
    bert_base = BertModel(BertConfig.base())
    minilm_shape = BertModel(BertConfig.mini())
rows = [("BERT-base", bert_base), ("BERT-base shape, shared + E = 128", albert_style(BertConfig.base(), 128)),
        ("MiniLM", minilm_shape), ("MiniLM shape, shared + E = 128", albert_style(BertConfig.mini(), 128))]
for name, model in rows:
    print(f"{name:<36}{parameter_count(model):>13,} parameters")
albert_base_count = parameter_count(rows[1][1])
glue("ch13_bert_base_params", parameter_count(bert_base) / 1e6, display=False)
glue("ch13_albert_base_params", albert_base_count / 1e6, display=False)

# %% [markdown]
# BERT-base's {glue:text}`ch13_bert_base_params:.1f` M parameters become
# {glue:text}`ch13_albert_base_params:.1f` M, the 12 M that ALBERT-base reports for the same
# shape (published; its embeddings and projection differ in small details). But an ALBERT-base
# still runs twelve blocks of width 768 for every token, exactly as many multiply-adds as
# BERT-base: sharing saves memory and disk, not time. ALBERT's speed claims compare models of
# the same *parameter count*, where ALBERT is the narrower or shallower one.
#
# Now the same ideas on our student: one block, run twice, with a factorised table. It starts
# from MiniLM's block 0 and the SVD of MiniLM's table, and trains with the same distillation
# loss, data, steps and first seed:

# %%
set_seed(SEEDS[0])
albert_student = factorize_embeddings(share_layers(pretrained, num_layers=len(STUDENT_LAYERS), source=0),
                                      EMBEDDING_SIZE)
albert_cpu = fit(albert_student, SEEDS[0], distill_set, distillation_objective(TEMPERATURE, SOFT_WEIGHT),
                 freeze_table=False)  # the V x E table trains: it must recover what the SVD cut
albert_accuracy = dev_accuracy(albert_student)
print(f"ALBERT-style student: {parameter_count(albert_student):,} parameters, dev accuracy "
      f"{albert_accuracy:.3f} ({albert_cpu:.0f} CPU-s)")
glue("ch13_albert_acc", albert_accuracy, display=False)
glue("ch13_albert_params", parameter_count(albert_student) / 1e6, display=False)

# %% [markdown]
# Unlike the other students, whose full tables stay frozen, this one trains its $V \times E$
# table and the projection. The table in section 13.6 sets this student's accuracy,
# {glue:text}`ch13_albert_acc:.3f` with {glue:text}`ch13_albert_params:.1f` M parameters, against
# the distilled two-block student's. It is one seed, so read a difference of a point or so as
# noise.
#
# ## 13.4 Quantization to int8
#
# A float32 weight takes 4 bytes; an int8 takes 1. **Symmetric** quantization stores a weight
# matrix as integers $q \in [-128, 127]$ and one float scale $s$:
#
# $$ s = \frac{\max |W|}{127.5}, \qquad q = \mathrm{clamp}\big(\mathrm{round}(W / s), -128, 127\big), \qquad W \approx s\,q, $$
#
# so every weight is off by at most $s/2$. **Dynamic** quantization (PyTorch's
# `quantize_dynamic`) does this once for the weights of every `nn.Linear`. At run time it
# quantizes each incoming batch of activations with a scale measured on that batch, multiplies
# in integers, and rescales the result to float. Our formula by hand gives exactly PyTorch's
# int8 weights:

# %%
# NBVAL_CHECK_OUTPUT
dense = teacher.bert.encoder.layer[0].intermediate.dense            # (1536, 384)
s = dense.weight.detach().abs().max() / 127.5
q = torch.clamp(torch.round(dense.weight.detach() / s), -128, 127).to(torch.int8)
teacher_int8 = quantize_dynamic_int8(teacher)
theirs = teacher_int8.bert.encoder.layer[0].intermediate.dense.weight()  # a quantized tensor
assert torch.equal(q, theirs.int_repr()) and torch.equal(q, quantize_symmetric(dense.weight)[0])
assert (q.float() * s - dense.weight).abs().max() <= s / 2 + 1e-7
print("int8 weights:", tuple(q.shape), q.dtype, "| equal to torch.ao.quantization.quantize_dynamic's")
print("layers now:", type(teacher_int8.bert.encoder.layer[0].intermediate.dense).__module__)

# %% [markdown]
# `quantize_dynamic` leaves embeddings alone, and in MiniLM the word table is half of the
# weights. So `quantize_dynamic_int8(model, embeddings=True)` also stores the table in int8, with
# one scale per row (a lookup reads a few rows and dequantizes them; there is no matrix product
# to run in int8). The table in section 13.6 has both variants.
#
# ## 13.5 Magnitude pruning
#
# Pruning sets weights to zero. The simplest rule, magnitude pruning, zeroes the weights with the
# smallest absolute value. With one threshold over all of the encoder's linear layers
# ("global"), layers with smaller weights lose more. By hand, the threshold is the $k$-th smallest
# $|w|$ (a few weights may have exactly the threshold's magnitude; which of those go is arbitrary):

# %%
amount = 0.5
linears = [m for m in teacher.bert.encoder.modules() if isinstance(m, nn.Linear)]
magnitudes = torch.cat([m.weight.detach().abs().flatten() for m in linears])
k = round(amount * magnitudes.numel())
threshold = magnitudes.kthvalue(k).values
pruned = magnitude_prune(teacher, amount)
kept_by_hand = magnitudes > threshold
kept = torch.cat([m.weight.detach().flatten() for m in pruned.bert.encoder.modules() if isinstance(m, nn.Linear)]) != 0
differ = kept != kept_by_hand
assert (magnitudes[differ] == threshold).all()  # only exact ties at the threshold may go either way
assert kept.sum() == magnitudes.numel() - k
print(f"{magnitudes.numel():,} encoder weights, {k:,} set to zero; sparsity {sparsity(pruned):.3f}")
for name in ("attention.self.query", "intermediate.dense"):
    m = dict(pruned.bert.encoder.layer[0].named_modules())[name]
    print(f"  layer 0 {name:<22} {float((m.weight == 0).float().mean()):.1%} zeros")

# %% [markdown]
# The pruned model is still an ordinary dense model: its matrices have the same shapes, the file
# has the same size, and a dense matrix product multiplies the zeros as fast as any other number.
# Unstructured sparsity pays off only with sparse storage (values plus their positions) and
# kernels that skip zeros, which on a CPU win only at high sparsity; removing whole heads,
# neurons or layers (*structured* pruning) makes the matrices smaller instead. Without training
# after pruning, accuracy also depends on how much was cut. {cite:t}`gordon2020compressing` found
# that pruning 30-40% of BERT's pretrained weights does not hurt transfer to downstream tasks,
# while larger cuts remove pretrained knowledge that fine-tuning does not win back.
#
# ## 13.6 Everything in one table
#
# Every model is scored on the same 872 dev sentences, and timed on the same batch of 64 dev
# sentences, one model after another in this process (median of 5 runs, after one untimed run).
# Latency depends on the machine and on what else runs on it, so the text states no timing as a
# fact, and the notebook asserts none.

# %%
latency_batch = dev_set.collate([dev_set[i] for i in range(64)])
latency_batch.pop("labels")
torch.manual_seed(0)
candidates = [("teacher fp32", teacher),
              ("teacher int8 (Linear)", teacher_int8),
              ("teacher int8 (Linear + embeddings)", quantize_dynamic_int8(teacher, embeddings=True))]
candidates += [(f"teacher pruned {a:.0%}", magnitude_prune(teacher, a)) for a in PRUNE_AMOUNTS]
candidates += [("student, hard labels", students["hard"]), ("student, distilled", students["distilled"]),
               ("ALBERT-style student, distilled", albert_student)]
table = []
for name, model in candidates:
    table.append({"model": name, "parameters": parameter_count(model), "MB": size_on_disk(model) / 1e6,
                  "ms": 1000 * latency_per_batch(model, latency_batch, repeats=5),
                  "accuracy": teacher_accuracy if model is teacher else dev_accuracy(model)})
reference = table[0]
print(f"{'model':<36}{'params (M)':>11}{'MB':>8}{'ms/batch':>10}{'accuracy':>10}")
for row in table:
    print(f"{row['model']:<36}{row['parameters'] / 1e6:>11.2f}{row['MB']:>8.1f}{row['ms']:>10.0f}{row['accuracy']:>10.3f}")

# %%
by_name = {row["model"]: row for row in table}
int8, int8_all = by_name["teacher int8 (Linear)"], by_name["teacher int8 (Linear + embeddings)"]
# Robust facts, asserted: exact counts, file sizes, accuracy within tolerances.
assert all(row["parameters"] == reference["parameters"] for row in table[:3 + len(PRUNE_AMOUNTS)])
assert by_name["student, distilled"]["parameters"] == reference["parameters"] - 4 * block
assert reference["MB"] / int8_all["MB"] > 3.0                        # everything in int8: ~4x smaller
assert reference["MB"] / int8["MB"] > 1.4                            # the embeddings stay float32
assert abs(int8["accuracy"] - teacher_accuracy) <= 0.02             # int8 costs (almost) nothing
assert abs(int8_all["accuracy"] - teacher_accuracy) <= 0.02
assert abs(by_name["teacher pruned 30%"]["MB"] - reference["MB"]) < 0.01  # zeros are stored like any number
assert by_name["teacher pruned 30%"]["accuracy"] >= teacher_accuracy - 0.02     # 30%: (almost) free
assert by_name["teacher pruned 70%"]["accuracy"] < teacher_accuracy - 0.05      # 70%: a real loss
glue("ch13_fp32_mb", reference["MB"], display=False)
glue("ch13_int8_mb", int8["MB"], display=False)
glue("ch13_int8_all_mb", int8_all["MB"], display=False)
glue("ch13_int8_ratio", reference["MB"] / int8["MB"], display=False)
glue("ch13_int8_all_ratio", reference["MB"] / int8_all["MB"], display=False)
glue("ch13_int8_acc", int8["accuracy"], display=False)
glue("ch13_int8_all_acc", int8_all["accuracy"], display=False)
glue("ch13_int8_speedup", reference["ms"] / int8["ms"], display=False)
for a in PRUNE_AMOUNTS:
    glue(f"ch13_pruned_{round(a * 100)}_acc", by_name[f"teacher pruned {a:.0%}"]["accuracy"], display=False)
glue("ch13_student_mb", by_name["student, distilled"]["MB"], display=False)
glue("ch13_student_speedup", reference["ms"] / by_name["student, distilled"]["ms"], display=False)
glue("ch13_albert_mb", by_name["ALBERT-style student, distilled"]["MB"], display=False)

# %% [markdown]
# What the table shows:
#
# - **int8 on the linear layers** keeps the teacher's accuracy
#   ({glue:text}`ch13_int8_acc:.3f` against {glue:text}`ch13_teacher_acc:.3f`), but the file
#   shrinks only {glue:text}`ch13_int8_ratio:.1f` times ({glue:text}`ch13_fp32_mb:.0f` MB to
#   {glue:text}`ch13_int8_mb:.0f` MB), because the float32 embedding table is half of MiniLM. With the
#   table in int8 as well the file is {glue:text}`ch13_int8_all_mb:.0f` MB,
#   {glue:text}`ch13_int8_all_ratio:.1f` times smaller, at accuracy
#   {glue:text}`ch13_int8_all_acc:.3f`.
# - **Pruning without retraining** keeps the accuracy at 30%
#   ({glue:text}`ch13_pruned_30_acc:.3f`), loses a little at 50%
#   ({glue:text}`ch13_pruned_50_acc:.3f`) and much more at 70%
#   ({glue:text}`ch13_pruned_70_acc:.3f`); the size does not change, and neither does the work
#   of a dense matrix product.
# - **The students** are the only rows that cut the compute, to a third of the blocks, with a
#   {glue:text}`ch13_student_mb:.0f` MB file. They cost accuracy, and they cost training.
# - **The ALBERT-style student** has the smallest float32 file ({glue:text}`ch13_albert_mb:.0f` MB)
#   and runs as many blocks as the two-block student, so it does the same work per token.
#
# A word on the timings: they depend on what else ran on the machine at the time, and a single
# slow run can move a median, so read the latency column and the right-hand plot as rough. The int8 teacher ran the batch {glue:text}`ch13_int8_speedup:.1f` times as fast as the fp32
# teacher in this run. Counted in work rather than time, the two-block students do a third of the
# teacher's encoder work per token, and the embedding lookup and the head cost little.

# %% mystnb={"image": {"alt": "Two scatter plots of SST-2 dev accuracy: against size on disk in megabytes (left) and against CPU latency per batch (right), one point per model: the fp32 teacher, its int8 versions, the teacher pruned by 30, 50 and 70 percent, the two-block students trained on hard and on soft labels, and the ALBERT-style student. The int8 versions sit at the teacher's accuracy with a smaller size; the pruned models keep the teacher's size, and the 70 percent one drops toward the majority class; the students are smaller and faster with lower accuracy."}}
fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
markers = {"teacher": "o", "student": "s", "ALBERT": "^"}
colors = {"teacher": "tab:blue", "student": "tab:orange", "ALBERT": "tab:green"}
for ax, key, label in [(axes[0], "MB", "size on disk (MB)"), (axes[1], "ms", "CPU latency per batch of 64 (ms, this run)")]:
    for row in table:
        kind = row["model"].split()[0].rstrip(",").replace("ALBERT-style", "ALBERT")
        ax.scatter(row[key], row["accuracy"], s=70, marker=markers[kind], color=colors[kind], zorder=3)
        ax.annotate(row["model"].replace("teacher ", "").replace(", distilled", ""), (row[key], row["accuracy"]),
                    textcoords="offset points", xytext=(6, 4), fontsize=9)
    ax.axhline(majority, color="gray", linestyle=":", label="majority class")
    ax.set_xlabel(label)
    ax.grid(alpha=0.3)
axes[0].set_ylabel("SST-2 dev accuracy")
axes[0].set_title("Accuracy against size")
axes[1].set_title("Accuracy against latency")
axes[0].legend(loc="lower right")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 13.7 The published small BERTs
#
# The same trade-off at full scale, as published (not measured here). The scores are not
# comparable across rows: they use different splits and averages, and each model is compared
# with its own BERT-base.
#
# | model | how it is made smaller | parameters | speed-up vs BERT-base | GLUE score (BERT-base) | source |
# |---|---|---|---|---|---|
# | BERT-base | (reference) | 110 M | 1x | | {cite:p}`devlin2019bert` |
# | DistilBERT | 6 of 12 layers, distilled during pretraining | 66 M | 1.6x (CPU) | 77.0 (79.5), dev | {cite:p}`sanh2019distilbert` |
# | TinyBERT$_4$ | 4 layers of width 312; distils embeddings, attention, hidden states and logits, in pretraining and on augmented task data | 14.5 M | 9.4x | 77.0 (79.5), test | {cite:p}`jiao2020tinybert` |
# | MobileBERT | 24 thin layers with bottlenecks, distilled layer by layer from a specially built teacher | 25.3 M | 5.5x (phone) | 77.7 (78.3), test | {cite:p}`sun2020mobilebert` |
# | ALBERT-base | one shared block, $E = 128$ | 12 M | none per token (same compute as BERT-base) | not reported as one score | {cite:p}`lan2020albert` |
#
# Our own rows, measured above: the fp32 teacher (MiniLM, itself a distilled model,
# {glue:text}`ch13_fp32_mb:.0f` MB), the same teacher in int8 ({glue:text}`ch13_int8_all_mb:.0f` MB,
# the same accuracy), and a two-block student (a third of the teacher's blocks, at the accuracy in the
# table). DistilBERT's 97% of BERT-base's score with 60% of its parameters comes from
# distilling during pretraining on BERT's whole corpus, at a cost far beyond a CPU chapter.
#
# ## 13.8 With `BERTEDU_FULL=1`
#
# The full run trains every model on all 67,349 SST-2 training phrases, of any length, for two
# epochs, which takes hours on a CPU; we have not run it. For scale: DistilBERT, a six-layer
# student of BERT-base, reaches 91.3% on SST-2 dev (published {cite:p}`sanh2019distilbert`).
# With the whole training set the gold labels carry more of what the teacher knows, so expect the
# teacher and the students to gain, and distillation's gain over hard labels to shrink.

# %%
notebook_cpu = time.process_time() - CPU_START
notebook_wall = time.perf_counter() - WALL_START
print(f"this notebook: {notebook_cpu:.0f} CPU-seconds (this process), {notebook_wall:.0f} s wall")
glue("ch13_notebook_cpu", notebook_cpu, display=False)

# %% [markdown]
# ## Summary
#
# - **Distillation**: a student starts from some of the teacher's blocks (DistilBERT's
#   initialisation) and learns from the teacher's softened outputs, $T^2\,\mathrm{KL}$ plus
#   cross-entropy. On {glue:text}`ch13_n_seeds:d` seeds our two-block student reached
#   {glue:text}`ch13_distilled_mean:.3f` distilled against {glue:text}`ch13_hard_mean:.3f` on hard labels
#   (teacher {glue:text}`ch13_teacher_acc:.3f`): {glue:text}`ch13_verdict`.
# - **ALBERT's sharing** stores one block for every layer, and **factorised embeddings** replace
#   $VH$ by $VE + EH$. BERT-base's shape goes from {glue:text}`ch13_bert_base_params:.1f` M to
#   {glue:text}`ch13_albert_base_params:.1f` M parameters, with the same compute per token.
# - **Dynamic int8 quantization** keeps the accuracy and divides the size of what it
#   quantizes by four. In MiniLM that is the file divided by {glue:text}`ch13_int8_ratio:.1f`
#   for the linear layers alone, and by {glue:text}`ch13_int8_all_ratio:.1f` with the embedding
#   table too.
# - **Magnitude pruning** without retraining keeps accuracy at 30% and loses it at 70%, and
#   unstructured zeros save neither bytes nor time in a dense model.
# - Parameters, bytes and latency are three different measures; say which one you mean.
#
# This chapter took {glue:text}`ch13_notebook_cpu:.0f` CPU-seconds on the machine that executed
# it (other jobs on the same machine can inflate it).
#
# ## Exercises
#
# The exercises are in `exercises/source/13_smaller_models/13_smaller_models.ipynb`. You write
# symmetric int8 quantization and global magnitude pruning, count the parameters of an
# ALBERT-style configuration, run a small distillation experiment, and explain what ALBERT's
# sharing does not save.
