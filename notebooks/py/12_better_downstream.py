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
# # 12. Getting more out of BERT downstream
#
# Part II fine-tuned BERT the plain way: a pretrained encoder, a small head, AdamW with warmup and
# linear decay, a few epochs. Papers and competitions add many tricks on top. Sun et al.
# {cite:p}`sun2019finetune` test several of them on BERT-base: further pretraining on in-domain
# text, layer-wise learning rates, the choice of layer, multi-task learning. ULMFiT
# {cite:p}`howard2018universal` introduced the first two, and "Don't Stop Pretraining"
# {cite:p}`gururangan2020dont` measured further pretraining at scale. Each trick is reported with
# a gain. Most gains are one run against one run, a point or less of accuracy.
#
# This chapter puts the tricks side by side on one task, with one small budget, in one table. The
# plain fine-tune is the reference row. Every row is repeated with three seeds, so the table can
# say which differences are larger than the spread between seeds and which are noise.
#
# ## What you will be able to do
#
# - Continue pretraining an encoder on unlabeled in-task text (MLM only, static or dynamic masks),
#   measure how its fill-in-the-blank accuracy on the task's text changes, and read a curve of
#   downstream accuracy against further-pretraining steps.
# - Build parameter groups for layer-wise learning-rate decay and train with them
#   (`bertedu.training.train(parameter_groups=...)`).
# - Recognise a learning rate that is too high by what it does to the encoder (forgetting), not only
#   to the task accuracy.
# - Feed the classifier different vectors: the pooled `[CLS]`, the mean of the tokens, or the
#   `[CLS]` of every layer.
# - Run self-distillation, an auxiliary MLM loss, EDA data augmentation (`bertedu.augment`) and
#   external features concatenated to the pooled vector (`bertedu.pooling`).
# - Decide, with a seed spread, whether a gain is real at your scale.

# %% [markdown]
# ## Setup
#
# The model is the book's own BERT from Chapter 6 (`bertedu.run_pretraining.book_model()`, section 6.9:
# {glue:text}`ch12_layers:d` blocks of width {glue:text}`ch12_hidden:d`, an 8,000-entry WordPiece
# vocabulary, pretrained with MLM and NSP on WikiText-2). It is small enough to train each row of
# the table three times in a few CPU minutes, and it is far from the task's domain: it read
# Wikipedia, the task is film reviews.
#
# The task is SST-2 {cite:p}`socher2013recursive,wang2018glue` with a small labelled budget: a fixed
# random sample of 1,000 training sentences, evaluated on all 872 dev sentences. All the other
# SST-2 training sentences, {glue:text}`ch12_unlabeled:,d` of them with their labels dropped, are the
# unlabeled in-task text for further pretraining. Every fine-tune makes 100 updates with batches of 32 (about three
# epochs) at a peak rate of 1e-3, with 10% warmup and linear decay, the rate that Chapter 6 used to
# pretrain this model.
#
# `BERTEDU_FULL=1` runs the same table with 8,000 labelled sentences, 600 updates per fine-tune
# and 3,000 further-pretraining steps over all the other training sentences. It is meant for a GPU
# and has not been run for this page. For scale, the published figures: BERT-base reaches 93.5% on
# SST-2 with all 67,349 training sentences {cite:p}`devlin2019bert`. Sun et al. report that
# further pretraining lowers BERT-base's test error on IMDb from 5.40% (fine-tuning only) to 4.37%
# when it continues on IMDb's own training text (within-task), and to 4.88% when it continues on
# the text of three sentiment datasets together (in-domain) {cite:p}`sun2019finetune` (their
# Table 6; published).

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
import pandas as pd
import torch
import torch.nn.functional as F
from myst_nb import glue
from torch.testing import assert_close

from bertedu import BertForPreTraining, BertForSequenceClassification
from bertedu.augment import augment_dataset, random_deletion, random_insertion, random_swap, synonym_replacement
from bertedu.data import load_sst2, load_wikitext2
from bertedu.distillation import distillation_loss, distillation_objective
from bertedu.finetuning import LengthGroupedBatches, SequenceClassificationDataset, majority_class, predict_logits
from bertedu.heads import IGNORE_INDEX, MultiTaskClassifier
from bertedu.pooling import ColumnsDataset, PooledClassifier, lexicon_features, pool
from bertedu.pretraining import (MaskedLMDataset, label_association, masked_lm_accuracy, masked_lm_batch_loss,
                                 token_importance, wikitext_documents)
from bertedu.run_pretraining import book_model
from bertedu.tokenization import BertTokenizer
from bertedu.training import (TrainingConfig, batch_indices, default_loss, layerwise_lr_groups, lr_at, set_seed,
                              train)

warnings.filterwarnings("ignore", message=".*(newly initialised|unused tensors).*")
plt.rcParams.update({"font.size": 12})
set_seed(0)
cpu_start, wall_start = time.process_time(), time.perf_counter()

FULL = os.environ.get("BERTEDU_FULL", "0") == "1"
TRAIN_SIZE = 8000 if FULL else 1000      # labelled SST-2 training sentences
UNLABELED = None                         # unlabeled in-task sentences (None: all the others)
FT_STEPS = 600 if FULL else 100          # updates per fine-tune
BATCH_SIZE = 32
LR = 1e-3                                # peak rate of every fine-tune (Chapter 6's pretraining rate)
TOO_HIGH = 1e-2                          # ten times higher
FP_STEPS = 3000 if FULL else 600         # further-pretraining updates (batches of 32)
FP_LR = 5e-4                             # half of Chapter 6's pretraining rate
FP_SNAPSHOTS = (FP_STEPS // 4, FP_STEPS // 2)  # intermediate points of the curve
LLRD_DECAY = 0.7                         # each block gets 0.7 x the rate of the block above
SEEDS = (0, 1, 2)

FOLDER = book_model()                    # shipped with the library (Chapter 6, section 6.9)
tokenizer = BertTokenizer.from_pretrained(FOLDER)
pretrained = BertForPreTraining.from_pretrained(FOLDER).eval()
glue("ch12_layers", pretrained.config.num_hidden_layers, display=False)
glue("ch12_hidden", pretrained.config.hidden_size, display=False)

# %% [markdown]
# ## 12.1 The task and the reference row
#
# A fixed random sample of the training split is labelled; a disjoint part of the rest is the
# unlabeled text.

# %%
# NBVAL_CHECK_OUTPUT
sst2_train, sst2_dev = load_sst2("train"), load_sst2("dev")
order = list(range(len(sst2_train)))
random.Random(0).shuffle(order)
labelled = [sst2_train[i] for i in order[:TRAIN_SIZE]]
unlabeled = [sst2_train[i]["sentence"] for i in order[TRAIN_SIZE:None if UNLABELED is None else TRAIN_SIZE + UNLABELED]]
train_set = SequenceClassificationDataset.from_records(labelled, tokenizer, max_length=64)
dev_set = SequenceClassificationDataset.from_records(sst2_dev, tokenizer, max_length=64)
dev_labels = torch.tensor([r["label"] for r in sst2_dev])
majority = (dev_labels == majority_class([r["label"] for r in labelled])).float().mean().item()
print(f"labelled {len(train_set):,}, unlabeled {len(unlabeled):,}, dev {len(dev_set)}")
print("a labelled example:", labelled[0])
glue("ch12_train_size", len(train_set), display=False)
glue("ch12_unlabeled", len(unlabeled), display=False)
glue("ch12_dev_size", len(dev_set), display=False)
glue("ch12_majority", majority, display=False)

# %% [markdown]
# Always answering the majority class of the training sample scores {glue:text}`ch12_majority:.3f`
# on dev. Every row of the table uses `PooledClassifier` from `bertedu.pooling`: an encoder, a
# choice of vector, optional extra features, dropout, one linear layer. With `pooling="pooler"` it
# is the classifier of Part II. The check below loads the book's model both ways, gives the two
# heads the same weights, and compares the logits.

# %%
set_seed(0)
reference = BertForSequenceClassification.from_pretrained(FOLDER, num_labels=2).eval()
ours = PooledClassifier(copy.deepcopy(pretrained.bert), pooling="pooler").eval()
ours.classifier.load_state_dict(reference.classifier.state_dict())
batch = tokenizer(["a gripping , funny film", "dull"], padding=True, return_tensors="pt")
with torch.no_grad():
    assert_close(ours(**batch).logits, reference(**batch).logits)
print("PooledClassifier(pooling='pooler') == BertForSequenceClassification")

# %% [markdown]
# One function runs a row: build the model for a seed, fine-tune it with `bertedu.training.train`
# (batches of similar length), and score the dev set. The seed fixes the head's initial weights
# and the order of the batches (the book's model has no dropout, so nothing else is random).

# %%
def fine_tune(make_model, seed, dataset=train_set, learning_rate=LR, loss_fn=default_loss,
              parameter_groups=None, eval_set=dev_set, steps=FT_STEPS):
    """Train make_model() with the chapter's recipe; return (dev accuracy, model)."""
    set_seed(seed)
    model = make_model()
    config = TrainingConfig(max_steps=steps, batch_size=BATCH_SIZE, learning_rate=learning_rate,
                            warmup_steps=steps // 10, seed=seed, progress_bar=False)
    groups = parameter_groups(model) if parameter_groups is not None else None
    train(model, dataset, config, loss_fn=loss_fn, parameter_groups=groups)  # length-grouped batches
    predicted = predict_logits(model, eval_set).argmax(-1)
    return (predicted == dev_labels).float().mean().item(), model


def classifier(bert, **options):
    """A new PooledClassifier on a copy of `bert` (the original stays as it is)."""
    return lambda: PooledClassifier(copy.deepcopy(bert), **options)


results, cpu_seconds = {}, {}


def run_row(name, make_model, **options):
    """Fine-tune once per seed; keep the accuracies, the models and the CPU seconds."""
    start, models = time.process_time(), []
    results[name] = []
    for seed in SEEDS:
        accuracy, model = fine_tune(make_model, seed, **options)
        results[name].append(accuracy)
        models.append(model)
    cpu_seconds[name] = (time.process_time() - start) / len(SEEDS)
    print(f"{name:<32} " + "  ".join(f"{a:.3f}" for a in results[name])
          + f"   mean {np.mean(results[name]):.3f}  std {np.std(results[name], ddof=1):.3f}")
    return models


def compare(name):
    """(difference of means from the reference row, twice its standard error, verdict)."""
    accuracies = results[name]
    difference = float(np.mean(accuracies)) - plain_mean
    threshold = 2 * float(np.sqrt(np.var(accuracies, ddof=1) / len(accuracies) + plain_std ** 2 / len(SEEDS)))
    if name == "plain fine-tune":
        return 0.0, threshold, "reference"
    if abs(difference) <= threshold:
        return difference, threshold, "noise"
    return difference, threshold, "a real gain" if difference > 0 else "a real loss"


plain_models = run_row("plain fine-tune", classifier(pretrained.bert))
plain_mean = float(np.mean(results["plain fine-tune"]))
plain_std = float(np.std(results["plain fine-tune"], ddof=1))
glue("ch12_plain_mean", plain_mean, display=False)
glue("ch12_plain_std", plain_std, display=False)
glue("ch12_run_cpu", cpu_seconds["plain fine-tune"], display=False)
assert plain_mean >= majority + 0.03, (plain_mean, majority)

# %% [markdown]
# The reference row reaches {glue:text}`ch12_plain_mean:.3f` dev accuracy on average (standard
# deviation over the three seeds {glue:text}`ch12_plain_std:.3f`), against
# {glue:text}`ch12_majority:.3f` for the majority class. One fine-tune costs about
# {glue:text}`ch12_run_cpu:.1f` CPU seconds. This is a weak model: {glue:text}`ch12_layers:d` small
# blocks pretrained on two million words for about an hour of CPU time. The tricks below have
# room to help.

# %% [markdown]
# ## 12.2 Further pretraining on in-task text
#
# ### Two, three or four stages
#
# BERT's recipe has **two stages**: general pretraining, then fine-tuning. ULMFiT
# {cite:p}`howard2018universal` added a middle stage: continue the language-model training on the
# target task's own text before fine-tuning, so the encoder learns the words and style of that text.
# That makes **three stages** (general -> in-task -> fine-tune). Sun et al. {cite:p}`sun2019finetune`
# did the same for BERT, with in-task and in-domain text. "Don't Stop Pretraining"
# {cite:p}`gururangan2020dont` separates the two and uses **four stages**: general -> domain
# (a large corpus of the same kind of text, e.g. millions of reviews or biomedical papers) ->
# task (the task's own unlabeled text) -> fine-tune. In their experiments each stage adds to the
# previous one (published).
#
# Here we run the three-stage version. The in-task text is SST-2's other training sentences. The
# fourth stage would need a domain corpus: film reviews that are not SST-2 sentences (e.g. IMDb).
# The course's data folder has none, and WikiText, the only other unlabeled text, is the general
# corpus the model already read. So the four-stage run is left out.
#
# ### MLM only
#
# Chapter 6 pretrained with two losses, masked LM and next-sentence prediction. NSP needs pairs of
# consecutive sentences from a document. SST-2's sentences are single review snippets with no
# neighbours, so only the MLM loss is left. The in-task sentences are encoded as
# `[CLS] sentence [SEP]`, and 15% of their tokens are chosen with BERT's 80/10/10 rule
# (`bertedu.pretraining.mask_tokens`). `MaskedLMDataset` holds them. The loss is the cross-entropy
# at the chosen positions. By hand, from the full `[B, T, V]` logits, it equals `masked_lm_batch_loss`, which
# projects only the chosen positions onto the vocabulary:

# %%
masked_data = MaskedLMDataset(tokenizer, unlabeled[:8], masking="static", seed=0)
batch = masked_data.collate([masked_data[i] for i in range(8)])
with torch.no_grad():
    out = pretrained.bert(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    logits = pretrained.cls.predictions(out.last_hidden_state)                # (B, T, V)
    by_hand = F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(),  # -100 is skipped
                              ignore_index=IGNORE_INDEX)
    assert_close(by_hand, masked_lm_batch_loss(pretrained, batch))
print(f"MLM loss of the book's model on 8 in-task sentences: {by_hand:.3f} (ln V = {np.log(tokenizer.vocab_size):.3f})")

# %% [markdown]
# ### Static or dynamic masks
#
# BERT masked its corpus once and reused the masks. The original code copied the corpus ten times
# with different masks, which is called **static masking**. RoBERTa {cite:p}`liu2019roberta` draws
# new masks every time a sentence is seen (**dynamic masking**) and reports it as slightly better
# (published). Here is one sentence in three epochs of each:

# %%
# NBVAL_CHECK_OUTPUT
sentence = unlabeled[3]
for masking in ("static", "dynamic"):
    data = MaskedLMDataset(tokenizer, [sentence], masking=masking, seed=0)
    for epoch in range(3):
        data.set_epoch(epoch)
        print(f"{masking:<8} epoch {epoch}:", " ".join(tokenizer.convert_ids_to_tokens(data[0]["input_ids"].tolist())))

# %% [markdown]
# Static masks differ from dynamic ones only when a sentence is read more than once (epoch 0 of
# the dynamic masks equals the static masks, as printed above). Our run reads each sentence at most
# once: {glue:text}`ch12_fp_steps:d` updates with batches of 32 cover about
# {glue:text}`ch12_fp_share:.0%` of the {glue:text}`ch12_unlabeled:,d` in-task sentences, so the
# two kinds of masks give the same model here, and we run it once, with dynamic masks. More text
# read once is the better use of a budget than less text read several times; with repeated passes,
# RoBERTa found dynamic masks as good as or slightly better than static ones (published). The peak
# rate is {glue:text}`ch12_fp_lr:.0e`, half the rate that pretrained the model: Sun et al. also
# further pretrained BERT at half of BERT's pretraining rate {cite:p}`sun2019finetune`. We measure
# the encoder's fill-in-the-blank accuracy at `[MASK]` positions on the SST-2 dev sentences (their
# text only; the same static masks for every model) four times along the run, and keep copies of
# the model after {glue:text}`ch12_fp_first:d` and {glue:text}`ch12_fp_second:d` updates for the
# curve further down.

# %%
heldout_task = MaskedLMDataset(tokenizer, [r["sentence"] for r in sst2_dev], masking="static", seed=12)
mlm_before = masked_lm_accuracy(pretrained, heldout_task)
snapshots = {}


def further_pretrain(texts, steps, masking="dynamic", importance=None, keep=()):
    """MLM-only training of a copy of the book's model on `texts`; keeps the encoder at the steps in `keep`."""
    model = copy.deepcopy(pretrained).train()
    data = MaskedLMDataset(tokenizer, texts, masking=masking, seed=0, importance=importance)
    evaluate_every = max(1, steps // 4)
    config = TrainingConfig(max_steps=steps, batch_size=32, learning_rate=FP_LR, warmup_steps=steps // 10,
                            eval_every=evaluate_every if keep else None, seed=0, progress_bar=False)

    def evaluate(m, step):  # called every evaluate_every updates
        if step in keep:
            snapshots[step] = copy.deepcopy(m.bert)
        return {"mlm_accuracy": masked_lm_accuracy(m, heldout_task)}

    start = time.process_time()
    history = train(model, data, config, loss_fn=masked_lm_batch_loss, batch_fn=batch_indices,  # random batches
                    eval_fn=evaluate if keep else None)
    return model.eval(), history, time.process_time() - start


fp_model, fp_history, fp_cpu = further_pretrain(unlabeled, FP_STEPS, keep=FP_SNAPSHOTS)
mlm_after = masked_lm_accuracy(fp_model, heldout_task)
print(f"MLM accuracy at [MASK] on SST-2 dev text: book model {mlm_before:.3f}, after further pretraining {mlm_after:.3f}")
print("along the run:", [(r["step"], round(r["mlm_accuracy"], 3)) for r in fp_history.eval])
assert sorted(snapshots) == list(FP_SNAPSHOTS)
assert mlm_after > mlm_before + 0.02, (mlm_before, mlm_after)
for name, value in [("fp_steps", FP_STEPS), ("fp_first", FP_SNAPSHOTS[0]), ("fp_second", FP_SNAPSHOTS[1]),
                    ("fp_lr", FP_LR), ("fp_share", min(1.0, FP_STEPS * 32 / len(unlabeled))),
                    ("mlm_before", mlm_before), ("mlm_after", mlm_after), ("fp_cpu", fp_cpu)]:
    glue(f"ch12_{name}", value, display=False)

# %% [markdown]
# Further pretraining does what it is for: the encoder fills in blanks in film-review text better,
# {glue:text}`ch12_mlm_before:.3f` before and {glue:text}`ch12_mlm_after:.3f` after. The absolute
# numbers are low because the model is small and read little. The run cost
# {glue:text}`ch12_fp_cpu:.0f` CPU seconds. Does the better language model make a better
# classifier? We fine-tune it, three seeds:

# %%
FP_ROW = "+ further pretraining"
fp_models = run_row(FP_ROW, classifier(fp_model.bert))
fp_diff, fp_threshold, fp_verdict = compare(FP_ROW)
print(f"against the plain fine-tune: {fp_diff:+.3f} (2 standard errors: {fp_threshold:.3f}), {fp_verdict}")
glue("ch12_fp_diff", fp_diff, display=False)
glue("ch12_fp_threshold", fp_threshold, display=False)
glue("ch12_fp_verdict", fp_verdict, display=False)

# %% [markdown]
# ### When to stop
#
# The curve below also fine-tunes the two snapshots, three seeds each. Step 0 is the plain
# fine-tune. One caveat: the snapshots come from a run whose rate decays to 0 at
# {glue:text}`ch12_fp_steps:d` updates, so the model at {glue:text}`ch12_fp_first:d` updates is not
# quite what a run planned for {glue:text}`ch12_fp_first:d` updates would give (that one would have
# finished its decay). A separate run per point would cost more than this whole section.

# %%
curve = {0: results["plain fine-tune"]}
for step in FP_SNAPSHOTS:
    curve[step] = [fine_tune(classifier(snapshots[step]), seed)[0] for seed in SEEDS]
curve[FP_STEPS] = results[FP_ROW]
curve_steps = sorted(curve)
curve_mean = [float(np.mean(curve[s])) for s in curve_steps]
curve_std = [float(np.std(curve[s], ddof=1)) for s in curve_steps]
mlm_curve = [mlm_before] + [r["mlm_accuracy"] for r in fp_history.eval]
mlm_steps = [0] + [r["step"] for r in fp_history.eval]
for s, m, sd in zip(curve_steps, curve_mean, curve_std):
    print(f"further-pretraining steps {s:>5}: dev accuracy {m:.3f} +- {sd:.3f}")
best_step = curve_steps[int(np.argmax(curve_mean))]
glue("ch12_best_step", best_step, display=False)
glue("ch12_first_gain", curve_mean[1] - curve_mean[0], display=False)
glue("ch12_late_gain", curve_mean[-1] - curve_mean[1], display=False)
glue("ch12_curve_std", float(np.mean(curve_std)), display=False)

# %% mystnb={"image": {"alt": "Two panels sharing the x axis of further-pretraining steps. Left: dev accuracy after fine-tuning, mean of three seeds with error bars of one standard deviation, at 0, a third and all of the further-pretraining steps; a dashed line marks the majority class. Right: the encoder's fill-in-the-blank accuracy on SST-2 dev text at 0, a third, two thirds and all of the further-pretraining steps: it dips after the first third, then rises above its start."}}
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
left.errorbar(curve_steps, curve_mean, yerr=curve_std, fmt="o-", capsize=4, lw=2)
left.axhline(majority, color="gray", ls="--", lw=1)
left.text(curve_steps[0], majority + 0.005, "majority class", color="gray", fontsize=11)
left.set_xlabel("further-pretraining steps (MLM, dynamic masks)")
left.set_ylabel("SST-2 dev accuracy after fine-tuning")
left.set_title("Downstream accuracy (mean and std of 3 seeds)")
right.plot(mlm_steps, mlm_curve, "s-", color="tab:orange", lw=2)  # evaluated every FP_STEPS // 4 updates
right.set_xlabel("further-pretraining steps (MLM, dynamic masks)")
right.set_ylabel("accuracy at [MASK] positions")
right.set_title("Fill-in-the-blank on SST-2 dev text")
fig.tight_layout()
plt.show()

# %% [markdown]
# Read the two panels together. The right one rises all along the run: the encoder keeps learning
# the task's text. The left one rises by {glue:text}`ch12_first_gain:+.3f` in the first
# {glue:text}`ch12_fp_first:d` updates and by {glue:text}`ch12_late_gain:+.3f` after that, while the
# seeds of one point spread by {glue:text}`ch12_curve_std:.3f` (the mean standard deviation). The
# practical rule for when to stop comes from this kind of plot: stop when the downstream accuracy,
# not the MLM accuracy, stops improving, and judge that on the dev set with several seeds. An MLM
# curve that keeps rising is no reason to keep going. Here the best point of the downstream curve is
# at {glue:text}`ch12_best_step:d` further-pretraining steps; if that is the last point, the curve
# has not flattened yet, and a longer run (`BERTEDU_FULL=1` makes 3,000 updates) is where to look
# next.
#
# Against the reference row, the fine-tunes after the full further pretraining gain
# {glue:text}`ch12_fp_diff:+.3f`, against twice its standard error of
# {glue:text}`ch12_fp_threshold:.3f`: **{glue:text}`ch12_fp_verdict`**. Why does it pay here? The
# book's model read Wikipedia; the task is film reviews, written in another register, with words and
# phrases that Wikipedia rarely uses. Reading thousands of the task's own sentences teaches the
# encoder that text before it sees a label. The conditions match
# what the sources report: Sun et al.'s largest gains come with a small labelled set (with 0.4% of
# IMDb's training labels, further pretraining cut BERT-base's error from 17.26% to 9.23%,
# published), and Gururangan et al. find the gain grows with the distance between the pretraining
# corpus and the task's domain {cite:p}`gururangan2020dont`. With a model that has read the
# domain already and tens of thousands of labels, expect much less: Sun et al.'s 1.03 points on
# IMDb, with 25,000 labelled reviews, is the within-task gain at that scale.
#
# ### Selective masking
#
# Random masks spend most predictions on words that say nothing about the task ("the", "of",
# ","). **Selective masking** {cite:p}`gu2020train` masks the words that matter for the task
# instead. Gu et al. measure how important a token is by how much a fine-tuned classifier's
# confidence drops without it; since that costs a forward pass per token, they train a small
# model on such scores and let it score the large in-domain corpus, which is then further
# pretrained with its important tokens masked. `bertedu.pretraining.token_importance` computes the
# deletion score, $	ext{importance}_i = P(y \mid x) - P(y \mid x \setminus x_i)$, with $y$ the class
# the classifier predicts for $x$, here the reference row's first classifier.
# `MaskedLMDataset(masking="selective")` then chooses, in each sentence, the $k$ WordPieces of
# highest importance instead of $k$ at random (the 80/10/10 rule is unchanged). Here is one
# sentence, scored by hand and by the library, and the cost of scoring a few hundred:

# %%
judge = plain_models[0].eval()                   # the reference row's first classifier
sentence = unlabeled[7]
ids = tokenizer(sentence)["input_ids"]
with torch.no_grad():
    full = judge(input_ids=torch.tensor([ids])).logits.softmax(-1)[0]            # (2,)
    label = int(full.argmax())
    by_hand = [0.0] + [full[label].item() - judge(input_ids=torch.tensor([ids[:i] + ids[i + 1:]])).logits.softmax(-1)[0, label].item()
                       for i in range(1, len(ids) - 1)] + [0.0]
library = token_importance(judge, tokenizer, [sentence])[0]
assert_close(library, torch.tensor(by_hand), atol=1e-5, rtol=0)
selective = MaskedLMDataset(tokenizer, [sentence], masking="selective", importance=[library])
chosen = (selective[0]["labels"] != IGNORE_INDEX).nonzero().flatten().tolist()
print(f"classifier says {'positive' if label else 'negative'} ({full[label]:.2f}):")
print("  ".join(f"{t}:{s:+.2f}" for t, s in zip(tokenizer.convert_ids_to_tokens(ids)[1:-1], library[1:-1].tolist())))
print("selective masking chooses:", [tokenizer.convert_ids_to_tokens(ids[i]) for i in chosen])
start = time.process_time()
token_importance(judge, tokenizer, unlabeled[:200])
deletion_cpu = (time.process_time() - start) / 200
print(f"deletion scores: {deletion_cpu * 1000:.0f} CPU-ms per sentence, "
      f"{deletion_cpu * len(unlabeled) / 60:.0f} CPU-minutes for all {len(unlabeled):,} unlabeled sentences")
glue("ch12_deletion_minutes", deletion_cpu * len(unlabeled) / 60, display=False)

# %% [markdown]
# The example shows both sides of the method. The scores pick out words that carry the
# sentiment only as well as the classifier reads them, and ours is right about
# {glue:text}`ch12_plain_mean:.0%` of the time: a weak classifier can change its mind when any one
# of several WordPieces goes, so its scores are noisy. And scoring every unlabeled sentence this
# way would take about {glue:text}`ch12_deletion_minutes:.0f` CPU-minutes, more than this whole
# chapter. Like Gu et al., we therefore score the corpus with something cheaper, learned from the
# labelled data; ours is the simplest such scorer there is. `label_association` counts how often
# each WordPiece occurs in the positive and the negative labelled sentences and scores it by the
# absolute log ratio of the two (smoothed) frequencies, the weights of a naive Bayes classifier
# {cite:p}`wang2012baselines`. A WordPiece of an unlabeled sentence gets its type's score. Then
# we further pretrain exactly as above, same text, same updates, same seed, with selective masks
# instead of random ones, and fine-tune three times.

# %%
association = label_association(tokenizer, [r["sentence"] for r in labelled], [r["label"] for r in labelled])
print("the 20 WordPieces most tied to one class:", tokenizer.convert_ids_to_tokens(association.topk(20).indices.tolist()))
importance = [association[torch.tensor(ids)] for ids in tokenizer(unlabeled, truncation=True, max_length=64)["input_ids"]]
selective_fp, _, selective_cpu = further_pretrain(unlabeled, FP_STEPS, masking="selective", importance=importance)
print(f"MLM accuracy at [MASK] on SST-2 dev text after selective further pretraining: "
      f"{masked_lm_accuracy(selective_fp, heldout_task):.3f} (random masks: {mlm_after:.3f})")
SELECTIVE_ROW = "+ further pretraining, selective masks"
run_row(SELECTIVE_ROW, classifier(selective_fp.bert))
sel_diff = float(np.mean(results[SELECTIVE_ROW]) - np.mean(results[FP_ROW]))
sel_threshold = 2 * float(np.sqrt((np.var(results[SELECTIVE_ROW], ddof=1) + np.var(results[FP_ROW], ddof=1)) / len(SEEDS)))
sel_verdict = "noise" if abs(sel_diff) <= sel_threshold else ("a real gain" if sel_diff > 0 else "a real loss")
print(f"selective - random masks = {sel_diff:+.3f} (2 standard errors {sel_threshold:.3f}): {sel_verdict}; "
      f"against the plain fine-tune: {compare(SELECTIVE_ROW)[0]:+.3f}, {compare(SELECTIVE_ROW)[2]}")
for name, value in [("sel_diff", sel_diff), ("sel_threshold", sel_threshold), ("sel_verdict", sel_verdict),
                    ("selective_fp_diff", compare(SELECTIVE_ROW)[0]), ("selective_fp_verdict", compare(SELECTIVE_ROW)[2])]:
    glue(f"ch12_{name}", value, display=False)

# %% [markdown]
# The list shows what selective masking asks the model to predict: the words the labelled set
# ties to one class, along with some rare WordPieces that occur a few times in one class by
# chance (counts from {glue:text}`ch12_train_size:,d` sentences are noisy too). Against the plain fine-tune, selective
# further pretraining moves the dev accuracy by {glue:text}`ch12_selective_fp_diff:+.3f`
# ({glue:text}`ch12_selective_fp_verdict`); against further pretraining with random masks, by
# {glue:text}`ch12_sel_diff:+.3f` (twice the standard error: {glue:text}`ch12_sel_threshold:.3f`),
# which the test calls **{glue:text}`ch12_sel_verdict`**. The cell also prints what selective
# masks do to the language model itself: its accuracy at *random* blanks of the dev text falls far
# below that of the random-mask run, because it only ever learned to fill the blanks that the
# labels single out. The classifier does not seem to need the rest. Gu et al. report that selective masking
# reaches the accuracy of random-mask further pretraining with much less in-domain computation
# (published). At our scale, with a small model that still has to learn the plain words of a new
# domain, which random masks also teach, the question is open, and this is how to answer it: the
# same text, the same budget, seeds, and the difference against its standard error.

# %% [markdown]
# ## 12.3 Learning rates: one per layer, and one too many
#
# ### Layer-wise learning-rate decay
#
# The lower blocks of a pretrained encoder hold general features (word pieces, local syntax); the
# upper blocks and the new head are the most task-specific. ULMFiT's *discriminative fine-tuning*
# gives each layer its own rate, lower for lower layers {cite:p}`howard2018universal`. Sun et al.
# {cite:p}`sun2019finetune` apply it to BERT. The head gets the peak rate $\eta$, block $L$ gets
# $\eta\xi$, block $L-1$ gets $\eta\xi^2$, and so on down to the embeddings, which get
# $\eta\xi^{L+1}$. Sun et al. use $\xi = 0.95$ with 12 blocks (published); with our {glue:text}`ch12_layers:d` blocks we take
# $\xi = $ {glue:text}`ch12_decay:.1f`, so the embeddings still train at
# $\xi^{L+1} =$ {glue:text}`ch12_embedding_share:.2f` of the peak rate.
# By hand, by parameter name:

# %%
# NBVAL_CHECK_OUTPUT
model = PooledClassifier(copy.deepcopy(pretrained.bert))
L = model.config.num_hidden_layers


def depth_by_hand(name):
    if name.startswith("bert.embeddings."):
        return 0
    if name.startswith("bert.encoder.layer."):
        return int(name.split(".")[3]) + 1
    return L + 1                                        # pooler and classifier


rates_by_hand = {name: LR * LLRD_DECAY ** (L + 1 - depth_by_hand(name)) for name, _ in model.named_parameters()}
names = {id(p): n for n, p in model.named_parameters()}
groups = layerwise_lr_groups(model, LR, LLRD_DECAY)
for group in groups:
    for p in group["params"]:
        assert group["lr"] == rates_by_hand[names[id(p)]]
    print(f"depth {group['depth']}: {len(group['params']):>2} tensors, peak rate {group['lr']:.2e}")
glue("ch12_decay", LLRD_DECAY, display=False)
glue("ch12_embedding_share", LLRD_DECAY ** (L + 1), display=False)

# %% [markdown]
# `train(..., parameter_groups=groups)` gives each group its own peak rate, and the warmup and
# decay schedule (`lr_at`) scales each of them. Every tensor also keeps its weight-decay rule
# (matrices decay, biases and LayerNorm do not).

# %%
run_row("layer-wise LR decay", classifier(pretrained.bert),
        parameter_groups=lambda m: layerwise_lr_groups(m, LR, LLRD_DECAY))
llrd_diff, _, llrd_verdict = compare("layer-wise LR decay")
glue("ch12_llrd_diff", llrd_diff, display=False)
glue("ch12_llrd_verdict", llrd_verdict, display=False)

# %% [markdown]
# Against the reference row, layer-wise decay changes the dev accuracy by
# {glue:text}`ch12_llrd_diff:+.3f`, which the test of Section 12.9 calls
# {glue:text}`ch12_llrd_verdict`. Keep in mind what the decay does in a run this short. The head
# keeps the peak rate, but the blocks and the embeddings train at the lower rates printed above,
# for the same short run. If the reference row is still under-trained (Chapter 7 showed how much a short run
# depends on the rate), lower rates in the lower layers mostly mean less training there. Decay
# protects pretrained features over a long fine-tune of a deep model. Sun et al. tuned it on
# BERT-base with 12 blocks.
#
# ### A rate that is too high, and what it erases
#
# Chapter 7 showed that a rate far too high leaves a model that answers one class. Sun et al. call
# this *catastrophic forgetting* {cite:p}`sun2019finetune`: large early steps wipe out what
# pretraining learned. We can see the forgetting directly. Put each fine-tuned encoder back under
# the book's pretrained MLM head and ask it to fill in blanks in held-out WikiText sentences, the
# kind of text it was pretrained on.

# %%
too_high_models = run_row("too-high LR (1e-2)", classifier(pretrained.bert), learning_rate=TOO_HIGH)

wiki_sentences = [s for document in wikitext_documents(load_wikitext2("test")) for s in document
                  if 8 <= len(s.split()) <= 40][:1000]
heldout_wiki = MaskedLMDataset(tokenizer, wiki_sentences, masking="static", seed=12)


def wiki_mlm_accuracy(bert):
    """The encoder `bert` under the pretrained MLM head, filling in WikiText blanks."""
    probe = copy.deepcopy(pretrained)
    probe.bert.load_state_dict(bert.state_dict())
    return masked_lm_accuracy(probe, heldout_wiki)


wiki_before = masked_lm_accuracy(pretrained, heldout_wiki)
wiki_plain = [wiki_mlm_accuracy(m.bert) for m in plain_models]
wiki_high = [wiki_mlm_accuracy(m.bert) for m in too_high_models]
print(f"WikiText MLM accuracy: pretrained {wiki_before:.3f}, after fine-tuning at {LR:.0e} "
      f"{np.mean(wiki_plain):.3f}, at {TOO_HIGH:.0e} {np.mean(wiki_high):.3f}")
high_one_class = max(float((predict_logits(m, dev_set).argmax(-1) == c).float().mean())
                     for m in too_high_models for c in (0, 1))
high = results["too-high LR (1e-2)"]
assert max(wiki_plain + wiki_high) < wiki_before, (wiki_before, wiki_plain, wiki_high)  # both forget
assert np.mean(high) < plain_mean - 0.05, (high, plain_mean)  # here every seed collapses to one class
every_seed = max(high) < min(results["plain fine-tune"])
glue("ch12_high_vs_plain", "every seed ends below every seed of the reference row" if every_seed
     else "the mean ends below the reference row's, though not every seed does", display=False)
glue("ch12_high_forgets", "less" if np.mean(wiki_high) < np.mean(wiki_plain) else "no less", display=False)
for name, value in [("wiki_before", wiki_before), ("wiki_plain", float(np.mean(wiki_plain))),
                    ("wiki_high", float(np.mean(wiki_high))), ("too_high", TOO_HIGH),
                    ("high_mean", float(np.mean(results["too-high LR (1e-2)"]))), ("high_one_class", 100 * high_one_class)]:
    glue(f"ch12_{name}", value, display=False)

# %% [markdown]
# At {glue:text}`ch12_too_high:.0e`, {glue:text}`ch12_high_vs_plain` (mean
# {glue:text}`ch12_high_mean:.3f`; the most one-sided model gives
# {glue:text}`ch12_high_one_class:.0f`% of the dev sentences the same class). The encoder's blanks
# tell more. Before fine-tuning it fills in {glue:text}`ch12_wiki_before:.3f` of the WikiText blanks.
# After the plain fine-tune it fills in {glue:text}`ch12_wiki_plain:.3f` (mean of the seeds), after
# the too-high rate {glue:text}`ch12_wiki_high:.3f`: {glue:text}`ch12_high_forgets` than the plain
# fine-tune. So forgetting is not only a matter of too-high rates. Even the ordinary rate of this
# small model's recipe erases a large share of its language model in one short fine-tune, probably
# because a small, undertrained encoder has few weights, and the classifier's loss rewrites the
# same ones that the MLM used. This is the case that lower rates for the lower
# layers (above) and the auxiliary MLM loss (below) were invented for.

# %% [markdown]
# ## 12.4 Which vector feeds the classifier
#
# BERT's classifier reads the last layer's `[CLS]` through the pooler, a dense layer with tanh
# that was trained by NSP. Two other choices are common. One is the **mean of the last layer's
# token vectors**, padding excluded, which Sentence-BERT uses {cite:p}`reimers2019sentence`. The
# other is the **`[CLS]` of every layer, concatenated**, since different layers hold different
# information (Sun et al. {cite:p}`sun2019finetune` try several layer combinations; Chapter 10 did
# the same for NER). Mean pooling by hand, on a padded batch:

# %%
batch = tokenizer(["a gripping , funny film", "dull"], padding=True, return_tensors="pt")
with torch.no_grad():
    hidden = pretrained.bert(**batch, output_hidden_states=True).hidden_states   # L + 1 of (B, T, H)
    mask = batch["attention_mask"][:, :, None].float()                            # (B, T, 1)
    mean_by_hand = (hidden[-1] * mask).sum(1) / mask.sum(1)                        # (B, H)
    layers_by_hand = torch.cat([h[:, 0] for h in hidden[1:]], dim=-1)              # (B, L * H)
    assert_close(mean_by_hand, pool(hidden, batch["attention_mask"], "mean"))
    assert_close(layers_by_hand, pool(hidden, batch["attention_mask"], "cls_layers"))
print("mean", tuple(mean_by_hand.shape), " [CLS] of every block", tuple(layers_by_hand.shape))

# %%
run_row("mean pooling", classifier(pretrained.bert, pooling="mean"))
run_row("[CLS] of all layers", classifier(pretrained.bert, pooling="cls_layers"));

# %% [markdown]
# ## 12.5 Self-distillation
#
# Knowledge distillation {cite:p}`sanh2019distilbert` trains a student on a teacher's soft labels,
# its full output distribution. In **self-distillation** the student has the teacher's
# architecture and the teacher's starting point. Here the student starts from the same pretrained
# weights and the same seed as the teacher, and is trained again on the teacher's soft labels. The
# teachers are the three plain fine-tuned models. The loss is `bertedu.distillation.distillation_loss`
# (wrapped for the trainer by `distillation_objective`):
# half the KL divergence to the teacher at temperature 2 (scaled by $T^2$), half the cross-entropy
# on the true labels. For one batch, the soft term by hand:

# %%
TEMPERATURE, SOFT_WEIGHT = 2.0, 0.5
teacher_logits = [predict_logits(m, train_set) for m in plain_models]      # (N, 2) per seed
student, teacher = torch.randn(4, 2), teacher_logits[0][:4]
p = torch.softmax(teacher / TEMPERATURE, -1)
kl = (p * (p.log() - torch.log_softmax(student / TEMPERATURE, -1))).sum(-1).mean() * TEMPERATURE ** 2
assert_close(kl, distillation_loss(student, teacher, temperature=TEMPERATURE))
teacher_agreement = float(np.mean([(t.argmax(-1) == torch.tensor([r["label"] for r in labelled])).float().mean()
                                   for t in teacher_logits]))
glue("ch12_teacher_train_acc", teacher_agreement, display=False)
print(f"the teachers agree with the training labels on {teacher_agreement:.3f} of the sentences")

# %%
results["self-distillation"], start = [], time.process_time()
for seed, logits in zip(SEEDS, teacher_logits):
    distill_set = ColumnsDataset(train_set, teacher_logits=logits)
    accuracy, _ = fine_tune(classifier(pretrained.bert), seed, dataset=distill_set,
                           loss_fn=distillation_objective(TEMPERATURE, SOFT_WEIGHT))
    results["self-distillation"].append(accuracy)
cpu_seconds["self-distillation"] = (time.process_time() - start) / len(SEEDS)
print("self-distillation", [round(a, 3) for a in results["self-distillation"]])

# %% [markdown]
# The teachers fit {glue:text}`ch12_teacher_train_acc:.3f` of the training labels, so their soft
# labels mostly repeat the hard ones, with a confidence attached. The table below says whether
# retraining on them moved the dev accuracy beyond the seed spread.
#
# ## 12.6 An auxiliary MLM loss
#
# Multi-task learning adds a second loss while fine-tuning. The obvious candidate for BERT is its own
# MLM loss on the same sentences, meant to keep the language model alive while the classifier
# trains. `MultiTaskClassifier` masks each training batch a second time and adds
# $0.5 \times$ the MLM loss of the pretrained MLM head (its decoder tied to the word embeddings) to
# the classification loss. Sun et al. {cite:p}`sun2019finetune` found that multi-task fine-tuning
# brings little on top of further pretraining (published), and we expect no gain here either.

# %%
def multitask():
    model = PooledClassifier(copy.deepcopy(pretrained.bert))
    return MultiTaskClassifier(model, copy.deepcopy(pretrained.cls.predictions), tokenizer, mlm_weight=0.5)


run_row("+ auxiliary MLM loss", multitask)
aux_diff, _, _ = compare("+ auxiliary MLM loss")
glue("ch12_aux_diff", aux_diff, display=False)
glue("ch12_aux_cpu", cpu_seconds["+ auxiliary MLM loss"] / cpu_seconds["plain fine-tune"], display=False)

# %% [markdown]
# The auxiliary loss changes the dev accuracy by {glue:text}`ch12_aux_diff:+.3f` and costs
# {glue:text}`ch12_aux_cpu:.1f` times the CPU time of a plain run (a second forward and backward pass
# per batch). The MLM term competes with the classification loss for the same few updates of the
# same small encoder.
#
# ## 12.7 Data augmentation with EDA
#
# EDA {cite:p}`wei2019eda` makes new training sentences with four cheap edits: synonym
# replacement, random insertion of a synonym, random swap and random deletion. It is meant for
# small labelled sets like ours. The paper takes synonyms from WordNet. `bertedu.augment` uses a
# small hand-made table of film-review words, so every edit can be read. Sentiment words are only
# replaced by words of the same polarity, so the label stays right. Back-translation (translate to
# another language and back) is the other classic augmentation; it needs two translation models,
# so we only mention it. One training sentence under each edit, with the settings `eda` uses
# (one word changed per ten, each word deleted with probability 0.1):

# %%
# NBVAL_CHECK_OUTPUT
example = "a charming and funny film with a very smart cast".split()
rng = random.Random(0)
print("original            :", " ".join(example))
print("synonym replacement :", " ".join(synonym_replacement(example, 1, rng)))
print("random insertion    :", " ".join(random_insertion(example, 1, rng)))
print("random swap         :", " ".join(random_swap(example, 1, rng)))
print("random deletion     :", " ".join(random_deletion(example, 0.1, rng)))

# %% [markdown]
# Random deletion happened to delete nothing here: with ten words and $p = 0.1$ that happens with
# probability $0.9^{10}$, about a third of the time.
#
# Each of the {glue:text}`ch12_train_size:,d` labelled sentences gets two EDA versions
# (`augment_dataset`; each version by one edit, the four edits taking turns), so the training set
# triples. The number of updates stays the same, so the compute matches the other
# rows; the model sees each original sentence about a third as often, next to two noisy copies.

# %%
aug_texts, aug_labels = augment_dataset([r["sentence"] for r in labelled], [r["label"] for r in labelled],
                                        num_aug=2, seed=0)
eda_set = SequenceClassificationDataset(tokenizer, aug_texts, aug_labels, max_length=64)
changed = float(np.mean([a != b for a, b in zip(aug_texts[TRAIN_SIZE:], [t for t in aug_texts[:TRAIN_SIZE] for _ in range(2)])]))
glue("ch12_eda_size", len(eda_set), display=False)
glue("ch12_eda_changed", 100 * changed, display=False)
run_row("+ EDA (x3 data)", classifier(pretrained.bert), dataset=eda_set);

# %% [markdown]
# The augmented set has {glue:text}`ch12_eda_size:,d` sentences. {glue:text}`ch12_eda_changed:.0f`%
# of the augmented sentences differ from their original. The rest drew an edit that changed
# nothing: synonym replacement or insertion in a sentence with no word in the table, a deletion
# that deleted no word, or a swap of two equal words.
#
# ## 12.8 External features
#
# Sometimes we know something about the input that the encoder does not see well: metadata, a count
# from a hand-made word list, a score from another system. The simplest way in is to concatenate
# those numbers to the pooled vector before the linear layer. Our features come from a tiny
# hand-made sentiment lexicon: hits of positive words, hits of negative words, negations ("not",
# "n't", "never"...), and the log of the sentence length. They are standardized with the training
# set's mean and standard deviation.

# %%
POSITIVE = """good great best excellent wonderful beautiful funny fun charming delightful moving
    enjoyable entertaining brilliant smart clever fresh powerful touching lovely perfect love loved
    engaging compelling remarkable rich solid warm witty gorgeous terrific superb impressive""".split()
NEGATIVE = """bad worst awful terrible boring dull stupid mess tedious poor flat lame predictable
    silly pointless annoying ugly weak waste tired bland forgettable unfunny pretentious
    disappointing mediocre lifeless clumsy shallow painful""".split()
train_features = lexicon_features([r["sentence"] for r in labelled], POSITIVE, NEGATIVE)   # (N, 4)
dev_features = lexicon_features([r["sentence"] for r in sst2_dev], POSITIVE, NEGATIVE)
mean, std = train_features.mean(0), train_features.std(0)
# by hand for one sentence: "a charming and funny film , not a dull moment" -> 2 positive, 1 negative, 1 negation
assert lexicon_features(["a charming and funny film , not a dull moment"], POSITIVE, NEGATIVE)[0, :3].tolist() == [2, 1, 1]
featured_train = ColumnsDataset(train_set, features=(train_features - mean) / std)
featured_dev = ColumnsDataset(dev_set, features=(dev_features - mean) / std)
lexicon_only = float(np.mean((dev_features[:, 0] > dev_features[:, 1]).float().numpy() == dev_labels.numpy()))
glue("ch12_lexicon_only", lexicon_only, display=False)
run_row("+ lexicon features", classifier(pretrained.bert, num_features=4), dataset=featured_train,
        eval_set=featured_dev);

# %% [markdown]
# On its own, the rule "more positive than negative hits means positive" scores
# {glue:text}`ch12_lexicon_only:.3f` on dev (a tie counts as negative), so the lexicon knows
# something. Whether the encoder already knew it is what the table tells.

# %% [markdown]
# ## 12.9 The table: which gains are real?
#
# Every row ran with the same three seeds. For each row we compare its mean with the reference
# row's. We call a difference **real at this scale** when it exceeds twice its standard error,
# $2\sqrt{s_a^2/3 + s_b^2/3}$ (with $s$ the standard deviation of a row's three accuracies), and
# **noise** otherwise. With three seeds this is a rough test, not a proof. A real effect smaller
# than the noise would need more seeds, or a larger dev set, to show up.

# %%
PUBLISHED = {  # what the sources report for each trick (published; BERT-base unless said otherwise)
    "plain fine-tune": "",
    FP_ROW: "IMDb error 5.40% -> 4.37% within-task, 4.88% in-domain (Sun et al., Table 6)",
    SELECTIVE_ROW: "reaches random masking's accuracy with less in-domain compute (Gu et al.)",
    "layer-wise LR decay": "IMDb error 5.42% -> 5.40% at decay 0.95 (Sun et al., Table 4)",
    "too-high LR (1e-2)": "rates of 4e-4 and above fail to converge (Sun et al.)",
    "mean pooling": "no row for mean pooling; last layer vs. other layer mixes within 0.02 points (Sun et al., Table 3)",
    "[CLS] of all layers": "IMDb error 5.42% (last layer) vs. 5.44% (concat all 12) (Sun et al., Table 3)",
    "self-distillation": "improves BERT fine-tuning (Xu et al. 2020, abstract); no figure verified here",
    "+ auxiliary MLM loss": "beats ULMFiT, most with little data (Chronopoulou et al. 2019, LSTM); no figure verified",
    "+ EDA (x3 data)": "+3.0 points at 500 examples, +0.8 on full sets (Wei & Zou, RNN/CNN, not BERT)",
    "+ lexicon features": "no published figure for this setting",
}
assert set(PUBLISHED) == set(results), set(results) ^ set(PUBLISHED)
rows = []
for name, accuracies in results.items():
    mean_, std_ = float(np.mean(accuracies)), float(np.std(accuracies, ddof=1))
    difference, threshold, verdict = compare(name)
    rows.append({"row": name, "dev accuracy (mean)": mean_, "std (3 seeds)": std_,
                 "difference": difference, "2 std. errors": threshold, "verdict": verdict,
                 "seeds": " ".join(f"{a:.3f}" for a in accuracies),
                 "CPU s per run": cpu_seconds.get(name, float("nan")), "published effect": PUBLISHED[name]})
table = pd.DataFrame(rows)
table.style.format({c: "{:.3f}" for c in ("dev accuracy (mean)", "std (3 seeds)", "difference", "2 std. errors")}
                   | {"CPU s per run": "{:.1f}"}).hide(axis="index")

# %% mystnb={"image": {"alt": "Horizontal chart with one row per method: plain fine-tune, further pretraining static and dynamic, layer-wise LR decay, too-high LR, mean pooling, CLS of all layers, self-distillation, auxiliary MLM loss, EDA and lexicon features. Each row shows the mean dev accuracy of three seeds as a dot with a one-standard-deviation bar and the three seeds as small marks; a vertical band marks the plain fine-tune's mean plus and minus two standard errors, and a dashed line marks the majority class."}}
fig, ax = plt.subplots(figsize=(9.5, 6))
names_ = list(results)[::-1]
colors = {"reference": "black", "noise": "tab:gray", "a real gain": "tab:green", "a real loss": "tab:red"}
for y, name in enumerate(names_):
    row = table.set_index("row").loc[name]
    ax.errorbar(row["dev accuracy (mean)"], y, xerr=row["std (3 seeds)"], fmt="o", capsize=4,
                color=colors[row["verdict"]], ms=8)
    ax.plot(results[name], [y] * len(results[name]), "|", color=colors[row["verdict"]], ms=12)
band = 2 * plain_std * float(np.sqrt(2 / len(SEEDS)))
ax.axvspan(plain_mean - band, plain_mean + band, color="tab:blue", alpha=0.12, label="plain +- 2 std. errors")
ax.axvline(majority, color="gray", ls="--", lw=1, label="majority class")
ax.set_yticks(range(len(names_)), names_)
ax.set_xlabel("SST-2 dev accuracy (3 seeds: mean, std bar, seed marks)")
ax.set_title(f"Tricks on {TRAIN_SIZE:,} labelled sentences, book's small BERT")
ax.legend(loc="lower left", fontsize=10)
fig.tight_layout()
plt.show()

# %%
verdicts = table.set_index("row")["verdict"]
real = [n for n, v in verdicts.items() if v in ("a real gain", "a real loss")]
gains = [n for n, v in verdicts.items() if v == "a real gain"]
glue("ch12_aux_verdict", verdicts["+ auxiliary MLM loss"], display=False)
noise = [n for n, v in verdicts.items() if v == "noise"]
glue("ch12_real_rows", ", ".join(real) if real else "none", display=False)
glue("ch12_gain_rows", ", ".join(gains) if gains else "none", display=False)
glue("ch12_noise_rows", ", ".join(noise) if noise else "none", display=False)
glue("ch12_n_noise", len(noise), display=False)
glue("ch12_n_rows", len(results) - 1, display=False)
glue("ch12_band", band, display=False)
best_row = table[table["row"] != "plain fine-tune"].sort_values("dev accuracy (mean)").iloc[-1]
glue("ch12_best_row", best_row["row"], display=False)
glue("ch12_best_diff", float(best_row["difference"]), display=False)
print("real differences:", real)
print("noise:", noise)

# %% [markdown]
# Of the {glue:text}`ch12_n_rows:d` tricks, the differences beyond twice the standard error are:
# **{glue:text}`ch12_real_rows`**. Of these, the gains are: **{glue:text}`ch12_gain_rows`**. The other
# {glue:text}`ch12_n_noise:d` rows (**{glue:text}`ch12_noise_rows`**) stay within the noise: with three
# seeds the band around the reference is {glue:text}`ch12_band:.3f` wide on each side. The largest mean
# is **{glue:text}`ch12_best_row`**, {glue:text}`ch12_best_diff:+.3f` above the reference; check
# its verdict before you trust it.
#
# What to take from this:
#
# - **The learning rate matters most.** A rate ten times too high costs accuracy and the encoder's
#   language model (12.3); here even the recipe's own rate erased much of it. Tune the rate before
#   any trick.
# - **Most published gains are smaller than a seed spread at small scale.** A trick that helps
#   BERT-base by half a point on 67,000 sentences can be invisible, or reversed, on a small model
#   with 1,000 sentences. Even the dev set's own sampling error, $\sqrt{p(1-p)/n}$ with
#   $n$ = {glue:text}`ch12_dev_size:d`, is larger than many of these differences. One run against one run proves nothing. Repeat with seeds and compare
#   the difference with the spread, as in this table.
# - **Further pretraining pays when the task's text is new to the model** (12.2): reading the
#   task's own unlabeled sentences moved the classifier by {glue:text}`ch12_fp_diff:+.3f`,
#   {glue:text}`ch12_fp_verdict`. It is the trick the sources rate most reliable, and here, with a
#   Wikipedia model, {glue:text}`ch12_train_size:,d` labels and tens of thousands of unlabeled
#   film-review sentences, its conditions hold.
# - **Published effect sizes** sit next to each row. Most are a fraction of a point on BERT-base
#   with tens of thousands of labels; none of them says what a trick does at another scale.
# - **An auxiliary MLM loss** was expected to bring nothing; the table calls its difference
#   {glue:text}`ch12_aux_verdict`.
#
# ```{admonition} Coming from d2l?
# :class: note
# d2l {cite:p}`zhang2023dive` fine-tunes with one rate for every parameter and reports one run. The
# book's loop takes parameter groups with their own peak rates, which the warmup and decay
# schedule scales (`train(parameter_groups=...)`). This chapter reports every result as a mean
# and a spread over seeds, and tests each difference against that spread before calling it a gain.
# ```
#
# ## Summary
#
# - **Further pretraining** (three stages: general -> in-task MLM -> fine-tune; four with a domain
#   corpus in between) uses MLM only on single sentences; `MaskedLMDataset` masks statically,
#   dynamically or selectively (`token_importance`), and `masked_lm_batch_loss` scores only the chosen
#   positions. Here it raised the fill-in-the-blank accuracy on SST-2 text from
#   {glue:text}`ch12_mlm_before:.3f` to {glue:text}`ch12_mlm_after:.3f`, and the classifiers built on
#   it by {glue:text}`ch12_fp_diff:+.3f` over the plain fine-tune ({glue:text}`ch12_fp_verdict`).
#   Selective masking (masks on the WordPieces the labels single out) against random masks, at the
#   same budget: {glue:text}`ch12_sel_verdict`. Decide when to stop from the
#   downstream curve, with seeds, not from the MLM curve; here that curve was best at
#   {glue:text}`ch12_best_step:d` steps.
# - **Learning rates**: `layerwise_lr_groups` builds ULMFiT's discriminative rates for
#   `train(parameter_groups=...)`. A rate ten times too high ({glue:text}`ch12_too_high:.0e`) lowered
#   the dev accuracy to {glue:text}`ch12_high_mean:.3f`, and fine-tuning lowered the encoder's WikiText
#   fill-in accuracy from {glue:text}`ch12_wiki_before:.3f` to {glue:text}`ch12_wiki_plain:.3f` (recipe rate)
#   and {glue:text}`ch12_wiki_high:.3f` (too high): forgetting, measured.
# - **The classifier's input** can be the pooled `[CLS]`, the mean of the tokens or every layer's
#   `[CLS]` (`PooledClassifier(pooling=...)`), plus external features (`num_features`).
# - **Self-distillation, an auxiliary MLM loss, EDA** (`bertedu.augment`) and **lexicon features**
#   are each one row of the table. The verdicts above say which beat the seed spread at this scale.
# - **Method**: same seeds for every row, mean and standard deviation, and a difference called real only
#   when it exceeds twice its standard error.
#
# ## Exercises
#
# The exercises for this chapter are the nbgrader assignment
# `exercises/source/12_better_downstream/12_better_downstream.ipynb`, with reference solutions.
# `make exercises` writes the student version, without them, to
# `exercises/release/12_better_downstream/`; instructors, see the guide "Teaching with this book".

# %%
cpu_total, wall_total = time.process_time() - cpu_start, time.perf_counter() - wall_start
glue("ch12_cpu_total", cpu_total, display=False)
print(f"CPU time of this notebook's kernel since the setup cell: {cpu_total:.0f} s (wall {wall_total:.0f} s)")
