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
# # 10. Named entity recognition
#
# A *named entity* is a name of something particular: a person (*Peter Blackburn*), a place
# (*Brussels*), an organisation (*European Commission*), or another named thing (*German*, the
# *Tour de France*). Named entity recognition (NER) finds the names in a text and says what kind
# of thing each one names. It is one of the four task families of the BERT paper
# {cite:p}`devlin2019bert`, on the CoNLL-2003 shared task {cite:p}`tjongkimsang2003introduction`:
# English Reuters news, with four types of entity, PER (persons), LOC (locations), ORG
# (organisations) and MISC (everything else with a name: nationalities, events, products...).
#
# NER is the book's first task with one label per *token* instead of one per sentence. Two
# new problems come with it. The dataset labels **words**, but BERT reads **WordPieces**, so the
# labels must be moved from words to pieces, and the predictions back. And a tagger is judged on
# **entities**, not on tokens: a name that is half found counts as a name missed.
#
# ## What you will be able to do
#
# - Read CoNLL-2003's IOB tags, turn them into entity spans, and tell IOB1 from IOB2.
# - Give each word's label to its **first WordPiece** and ignore the other pieces ($-100$), read
#   predictions back at the first pieces, and show that this equals `bertedu.ner` and Hugging
#   Face's `word_ids()`.
# - Compute entity-level precision, recall and F1 per type, and show that it equals
#   `bertedu.metrics.entity_scores` and `seqeval`.
# - Fine-tune MiniLM on CoNLL-2003 on a CPU, in a few CPU minutes, to a test F1 above 0.80, with
#   length-grouped batches, dynamic padding and a tuned learning rate.
# - Explain what an uncased checkpoint cannot see, and measure what the casing is worth.
# - Repeat the feature-based study of the BERT paper: a frozen encoder feeding a small tagger
#   from six choices of layers, against full fine-tuning, next to the paper's numbers.
#
# ## Setup
#
# The default run is sized for a few CPU minutes of a laptop (section 10.4 prints what its
# fine-tuning took, the last cell what the whole notebook took). It fine-tunes on a random subset of the
# training sentences for one pass, with training sentences cut at 64 WordPieces (section 10.4 prints how
# many are longer: {glue:text}`ch10_train_truncated:,d` of {glue:text}`ch10_train_sentences:,d` in this run); the test split is always evaluated whole. The feature-based study trains its
# taggers on the first 3,000 sentences of that subset and scores them on the first 1,000 dev
# sentences. `FULL = True`
# (the environment variable `BERTEDU_FULL=1`) uses all {glue:text}`ch10_n_train:,d` training sentences for three
# epochs at length 128, and the whole dev split; that is a job for a GPU (its fine-tuning reads every
# training sentence three times, where the default run reads a subset once). Fine-tuned on all of CoNLL-2003, BERT-base reaches
# a test F1 of 92.4 and BERT-large 92.8 (published, {cite:t}`devlin2019bert`, table 3); a
# smaller model such as MiniLM (6 layers, 384 wide) should be expected to score below it.

# %%
# %config InlineBackend.figure_format = 'png'
import os
import random
import time
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seqeval.metrics
import torch
import transformers
from myst_nb import glue

import bertedu
from bertedu import BertForTokenClassification, BertModel
from bertedu.data import CONLL_NER_LABELS, iob1_to_iob2, load_conll2003
from bertedu.finetuning import LengthGroupedBatches, padding_fraction
from bertedu.heads import IGNORE_INDEX
from bertedu.metrics import entity_scores, format_entity_report, get_entities
from bertedu.ner import (LAYER_COMBINATIONS, WORD_SHAPES, FeatureTagger, NerDataset, ScalarMix,
                         WordFeatureDataset, combine_layers, extract_word_features, predict_feature_tags,
                         predict_tags, word_shape)
from bertedu.tokenization import BertTokenizer
from bertedu.training import TrainingConfig, batch_indices, set_seed, train

plt.rcParams.update({"font.size": 12})
set_seed(0)
np.random.seed(0)
cpu_start, wall_start = time.process_time(), time.perf_counter()

# The one knob of the book (see the text above for what it changes).
FULL = os.environ.get("BERTEDU_FULL", "0") == "1"
N_TRAIN = None if FULL else 9000  # training sentences, a seeded random subset (None: all)
EPOCHS = 3 if FULL else 1               # passes over them when fine-tuning
MAX_LENGTH = 128 if FULL else 64        # WordPieces per training sentence, [CLS] and [SEP] included
N_FEATURES = None if FULL else 3000     # of those, how many train the feature-based taggers
N_DEV = None if FULL else 1000          # dev sentences that score the feature-based study
TAGGER_EPOCHS = 3                       # passes of each small tagger over its features
TYPES = ["LOC", "MISC", "ORG", "PER"]

import warnings
# A new task head starts untrained and MiniLM's pooler goes unused, as the text says where
# the chapter builds the model; the library's reminders would print this machine's file
# paths on the page, so they are silenced.
warnings.filterwarnings("ignore", message=".*(newly initialised|unused tensors)")


# %% [markdown]
# ## 10.1 The data: CoNLL-2003 and its tags
#
# CoNLL-2003 gives one word per line with its tags; a blank line ends a sentence. The named-entity
# tag of a word has two parts: a *type* and a *position* in the entity. `B-X` **b**egins an
# entity of type X, `I-X` continues one (**i**nside), and `O` is **o**utside every entity. These
# are IOB tags. `bertedu.data.load_conll2003` reads the three official splits; `eng.testa` is the
# dev split and `eng.testb` the test split, and the counts below are the official ones:

# %%
# NBVAL_CHECK_OUTPUT
splits = {name: load_conll2003(name) for name in ("train", "dev", "test")}
rows = []
for name, records in splits.items():
    entities = Counter(entity[0] for r in records for entity in get_entities(r["ner_tags"]))
    rows.append({"split": name, "sentences": len(records), "words": sum(len(r["tokens"]) for r in records),
                 **{t: entities[t] for t in TYPES}, "entities": sum(entities.values())})
counts = pd.DataFrame(rows).set_index("split")
assert counts.loc["test", ["PER", "LOC", "ORG", "MISC"]].tolist() == [1617, 1668, 1661, 702]
assert counts.loc["train", ["PER", "LOC", "ORG", "MISC"]].tolist() == [6600, 7140, 6321, 3438]
print(counts.to_string())
example = splits["train"][0]
print()
print(" ".join(f"{word}/{tag}" for word, tag in zip(example["tokens"], example["ner_tags"])))
glue("ch10_n_train", len(splits["train"]), display=False)
glue("ch10_n_test", len(splits["test"]), display=False)
glue("ch10_test_entities", int(counts.loc["test", "entities"]), display=False)

# %% [markdown]
# **Why `B-` at all?** With only `I-X` and `O`, two entities of one type that touch would melt
# into one. Two neighbouring names happen in the data: a list of names, or *Germany 's Bayer* vs
# *Germany*'s *Bayer*, differently typed. The files themselves use **IOB1**: an entity starts
# with `I-`, and `B-` appears only where an entity directly follows another of the same type.
# Today's convention, and that of `seqeval` and Hugging Face's copy of the dataset, is **IOB2**
# (also called BIO): every entity starts with `B-`. The loader converts, with
# `bertedu.data.iob1_to_iob2`:

# %%
# NBVAL_CHECK_OUTPUT
iob1 = ["I-ORG", "O", "I-MISC", "O", "I-PER", "I-PER", "B-PER", "O"]  # as in eng.train
print("IOB1:", iob1)
print("IOB2:", iob1_to_iob2(iob1))
print("entities (type, first, last word):", get_entities(iob1_to_iob2(iob1)))

# %% [markdown]
# An entity is a **span**: a type, a first word and a last word. Both tag schemes give the same
# spans; a tagger that predicts IOB2 must learn that an entity's first word gets `B-` and the rest
# `I-`. The nine labels, in the order of Hugging Face's `conll2003` dataset, are the model's
# output classes:

# %%
# NBVAL_CHECK_OUTPUT
print(dict(enumerate(CONLL_NER_LABELS)))

# %% [markdown]
# ## 10.2 Words and WordPieces: label the first piece
#
# The tokenizer may cut a word into several pieces (Chapter 2), and uncased MiniLM lower-cases it
# first. The BERT paper's rule, section 5.3: "we use the representation of the first sub-token as
# the input to the token-level classifier over the NER label set". So each word's label goes to
# its **first piece**. The other pieces get the label $-100$, which the loss ignores (the same
# `IGNORE_INDEX` as the MLM labels of Chapter 5), and so do `[CLS]` and `[SEP]`. A list
# `word_ids` remembers which word every piece came from, to bring the predictions back.
#
# We build this plainly, one word at a time: tokenizing words separately guarantees that a piece
# never straddles two words.

# %%
tokenizer = BertTokenizer.from_pretrained(bertedu.minilm_path())


def align_plainly(words, tags):
    # (pieces, word_ids, labels): [CLS] + each word's pieces + [SEP]; a label on first pieces only.
    pieces, word_ids, labels = ["[CLS]"], [None], [IGNORE_INDEX]
    for w, (word, tag) in enumerate(zip(words, tags)):
        word_pieces = tokenizer.tokenize(word)
        pieces += word_pieces
        word_ids += [w] * len(word_pieces)
        labels += [CONLL_NER_LABELS.index(tag)] + [IGNORE_INDEX] * (len(word_pieces) - 1)
    return pieces + ["[SEP]"], word_ids + [None], labels + [IGNORE_INDEX]


sentence = splits["dev"][4]  # a sentence with multi-piece names
pieces, word_ids, labels = align_plainly(sentence["tokens"], sentence["ner_tags"])

# %%
# NBVAL_CHECK_OUTPUT
table = pd.DataFrame({"piece": pieces, "word_id": ["-" if w is None else w for w in word_ids],
                      "word": ["-" if w is None else sentence["tokens"][w] for w in word_ids],
                      "label": labels, "tag": [CONLL_NER_LABELS[l] if l != IGNORE_INDEX else "(ignored)" for l in labels]})
print(table.to_string(index=False))

# %% [markdown]
# Now the library on the same sentence, then on all dev sentences, and Hugging Face's fast
# tokenizer as an outside reference: `BertTokenizerFast(words, is_split_into_words=True)`
# gives the same ids and the same `word_ids()`.

# %%
dev_all = NerDataset(splits["dev"], tokenizer)
hf_tokenizer = transformers.BertTokenizerFast.from_pretrained(bertedu.minilm_path())
hf = hf_tokenizer([r["tokens"] for r in splits["dev"]], is_split_into_words=True)
for i, record in enumerate(splits["dev"]):
    pieces, word_ids, labels = align_plainly(record["tokens"], record["ner_tags"])
    assert dev_all[i]["input_ids"].tolist() == tokenizer.convert_tokens_to_ids(pieces) == hf["input_ids"][i]
    assert dev_all.word_ids[i] == word_ids == hf.word_ids(i)
    assert dev_all[i]["labels"].tolist() == labels
print(f"bertedu.ner.NerDataset = the plain alignment = Hugging Face's word_ids on all {len(dev_all):,} dev sentences")

words_total = sum(dev_all.num_words)
pieces_total = sum(n - 2 for n in dev_all.lengths)  # without [CLS] and [SEP]
split_words = sum(len(tokenizer.tokenize(w)) > 1 for r in splits["dev"] for w in r["tokens"])
entity_words = [w for r in splits["dev"] for w, t in zip(r["tokens"], r["ner_tags"]) if t != "O"]
split_entity_words = sum(len(tokenizer.tokenize(w)) > 1 for w in entity_words)
glue("ch10_pieces_per_word", pieces_total / words_total, display=False)
glue("ch10_split_words", 100 * split_words / words_total, display=False)
glue("ch10_split_entity_words", 100 * split_entity_words / len(entity_words), display=False)
glue("ch10_ignored_pieces", 100 * (pieces_total - words_total) / pieces_total, display=False)


# %% [markdown]
# On the dev split a word has {glue:text}`ch10_pieces_per_word:.2f` pieces on average;
# {glue:text}`ch10_split_words:.1f`% of all words but {glue:text}`ch10_split_entity_words:.1f`% of
# the words inside entities are cut into several pieces: names are rarer than ordinary words, so
# the vocabulary holds fewer of them whole. {glue:text}`ch10_ignored_pieces:.1f`% of the pieces
# carry no label.
#
# Two other choices exist, and the paper's is the simplest that works. One could label every
# piece (the first `B-PER`, the rest `I-PER`), but then a long name weighs more in the loss than a
# short one, and the predictions of the extra pieces must be reconciled. Or one could average a
# word's pieces into one vector before classifying. The first piece sees the whole sentence,
# the rest of its word included, through self-attention, so it has what it needs.
#
# ## 10.3 Scoring entities, not tokens
#
# Most words are `O`, so per-token accuracy flatters a tagger. The CoNLL evaluation
# (`conlleval`) counts **entities**: a predicted entity is correct only if a gold entity has the
# same type, first word and last word. With $\text{TP}$ the correct predicted entities,
#
# $$
# P = \frac{\text{TP}}{\text{predicted entities}}, \qquad
# R = \frac{\text{TP}}{\text{gold entities}}, \qquad
# F_1 = \frac{2PR}{P + R},
# $$
#
# per type, and "overall" over all entities together (a micro average). A name found with one
# word too few is one false positive *and* one false negative. We write it plainly, spans
# included: an entity starts at a `B-X`, or at an `I-X` that does not continue an X (the rule of
# `conlleval` and `seqeval`'s default mode), and runs while `I-X` follows.

# %%
def spans_plainly(tags):
    # The (type, first, last) entities of one sentence's IOB2 tags.
    spans, kind, start = [], None, None
    for i, tag in enumerate(list(tags) + ["O"]):  # a final "O" closes the last entity
        if kind is not None and tag != "I-" + kind:
            spans.append((kind, start, i - 1))
            kind = None
        if tag != "O" and kind is None:
            kind, start = tag[2:], i
    return spans


def entity_f1_plainly(gold_seqs, pred_seqs):
    # {type: (precision, recall, f1)} and "overall", counted over (sentence, type, first, last).
    gold = {(s, *e) for s, tags in enumerate(gold_seqs) for e in spans_plainly(tags)}
    pred = {(s, *e) for s, tags in enumerate(pred_seqs) for e in spans_plainly(tags)}
    scores = {}
    for kind in sorted({e[1] for e in gold | pred}) + ["overall"]:
        g = {e for e in gold if kind in ("overall", e[1])}
        p = {e for e in pred if kind in ("overall", e[1])}
        precision = len(g & p) / len(p) if p else 0.0
        recall = len(g & p) / len(g) if g else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores[kind] = (precision, recall, f1)
    return scores


# %% [markdown]
# Something to score: the oldest baseline of the shared task, a **lookup table**. Every word
# gets the tag it had most often in the training data (unknown words get `O`). No model, no
# context:

# %%
tag_counts = {}
for r in splits["train"]:
    for word, tag in zip(r["tokens"], r["ner_tags"]):
        tag_counts.setdefault(word, Counter())[tag] += 1
lookup = {word: c.most_common(1)[0][0] for word, c in tag_counts.items()}
test_gold = [r["ner_tags"] for r in splits["test"]]
lookup_pred = [[lookup.get(w, "O") for w in r["tokens"]] for r in splits["test"]]
all_o_pred = [["O"] * len(tags) for tags in test_gold]

mine = entity_f1_plainly(test_gold, lookup_pred)
library = entity_scores(test_gold, lookup_pred)
report = seqeval.metrics.classification_report(test_gold, lookup_pred, output_dict=True)
for kind in TYPES + ["overall"]:
    theirs = report["micro avg" if kind == "overall" else kind]
    for k, name in enumerate(["precision", "recall", "f1"]):
        assert abs(mine[kind][k] - library[kind][name]) < 1e-12
        assert abs(library[kind][name] - theirs[name if name != "f1" else "f1-score"]) < 1e-12
print("plain = bertedu.metrics.entity_scores = seqeval, per type and overall\n")
print(format_entity_report(library))

token_accuracy = float(np.mean([p == g for gs, ps in zip(test_gold, all_o_pred) for g, p in zip(gs, ps)]))
assert entity_scores(test_gold, all_o_pred)["overall"]["f1"] == 0.0
glue("ch10_all_o_accuracy", 100 * token_accuracy, display=False)
glue("ch10_lookup_f1", library["overall"]["f1"], display=False)

# %% [markdown]
# Tagging every word `O` is right for {glue:text}`ch10_all_o_accuracy:.1f`% of the test words,
# and finds no entity: entity F1 0. The lookup table reaches an F1 of
# {glue:text}`ch10_lookup_f1:.3f`. Its precision is good, its recall poor: a test name it never
# saw in training is invisible to it, and a word such as *Washington* gets one tag whatever the
# context says (person, place or team). Both are what a contextual model should fix.
#
# ## 10.4 Fine-tuning MiniLM for NER
#
# The model is `BertForTokenClassification` (Chapter 7): the encoder, dropout, and one linear
# layer from each position's final vector to 9 logits. The loss is the cross-entropy over the
# positions whose label is not $-100$, that is, over the words. The recipe for a CPU budget:
#
# - **A subset, once through.** A seeded random subset of the training sentences, one pass.
# - **Dynamic padding and length-grouped batches** (Chapter 8). Each batch is padded only to
#   its own longest sentence, and `LengthGroupedBatches` puts sentences of similar length
#   together, so little padding is left to compute.
# - **A tuned learning rate.** A short run needs a higher rate than the $2$-$5 \times 10^{-5}$ the
#   paper used over several epochs; we warm up for 10% of the steps and decay linearly
#   (Chapter 7). The rate below was tuned on training sentences against the dev split, never the
#   test split.
# - **Frozen word embeddings.** The 30,522 x 384 word-embedding matrix is half of MiniLM's
#   parameters, and AdamW would update all of it at every step though a batch uses a few
#   hundred rows. Freezing it makes a step much cheaper; the rest of the network adapts around
#   fixed word vectors.
# - **No dropout.** One pass over a few thousand sentences is far from overfitting, and
#   dropout would slow down what little learning there is time for (and cost computation).

# %%
rng = random.Random(0)
train_records = splits["train"] if N_TRAIN is None else rng.sample(splits["train"], N_TRAIN)
train_set = NerDataset(train_records, tokenizer, max_length=MAX_LENGTH)
test_set = NerDataset(splits["test"], tokenizer)  # never truncated: every test word is scored
dev_records = splits["dev"] if N_DEV is None else splits["dev"][:N_DEV]
dev_set = NerDataset(dev_records, tokenizer)

BATCH_SIZE = 32
config = TrainingConfig(batch_size=BATCH_SIZE, max_steps=EPOCHS * len(train_set) // BATCH_SIZE,
                        learning_rate=4e-4, warmup_steps=EPOCHS * len(train_set) // BATCH_SIZE // 10,
                        weight_decay=0.01, seed=0, progress_bar=False)
grouped = LengthGroupedBatches(train_set.lengths)
steps = range(len(train_set) // BATCH_SIZE)
random_padding = padding_fraction(train_set.lengths, [batch_indices(s, len(train_set), BATCH_SIZE, 0)[0] for s in steps])
grouped_padding = padding_fraction(train_set.lengths, [grouped(s, len(train_set), BATCH_SIZE, 0)[0] for s in steps])
assert grouped_padding < random_padding / 3
glue("ch10_train_sentences", len(train_set), display=False)
glue("ch10_train_truncated", train_set.num_truncated, display=False)
glue("ch10_random_padding", 100 * random_padding, display=False)
glue("ch10_grouped_padding", 100 * grouped_padding, display=False)
glue("ch10_steps", config.max_steps, display=False)
glue("ch10_tagger_epochs", TAGGER_EPOCHS, display=False)
glue("ch10_lr", config.learning_rate, display=False)
print(f"{len(train_set):,} training sentences ({train_set.num_truncated} cut at {MAX_LENGTH} pieces), "
      f"{config.max_steps} steps of {BATCH_SIZE}")
print(f"padding in random batches: {random_padding:.1%}, in length-grouped batches: {grouped_padding:.1%}")

# %% [markdown]
# In random batches of {glue:text}`ch10_train_sentences:,d` CoNLL sentences,
# {glue:text}`ch10_random_padding:.0f`% of the positions the encoder would compute are padding;
# length-grouped batches leave {glue:text}`ch10_grouped_padding:.1f`%. Now the training, with
# the book's one loop (`bertedu.training.train`):

# %%
set_seed(0)
model = BertForTokenClassification.from_pretrained(bertedu.minilm_path(), num_labels=len(CONLL_NER_LABELS),
                                                   id2label=dict(enumerate(CONLL_NER_LABELS)),
                                                   hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
cpu, wall = time.process_time(), time.perf_counter()
history = train(model, train_set, config)  # batches: LengthGroupedBatches(train_set.lengths), as `grouped`
finetune_cpu, finetune_wall = time.process_time() - cpu, time.perf_counter() - wall
glue("ch10_trainable", trainable / 1e6, display=False)
glue("ch10_finetune_wall", finetune_wall, display=False)
glue("ch10_finetune_cpu", finetune_cpu, display=False)
print(f"{config.max_steps} steps, {trainable / 1e6:.1f}M trainable parameters: "
      f"{finetune_wall:.0f} s wall, {finetune_cpu:.0f} CPU-seconds")

# %% mystnb={"image": {"alt": "Training loss of MiniLM on CoNLL-2003 per optimizer step, log scale: it falls steeply in the first tens of steps, then keeps declining slowly."}}
fig, ax = plt.subplots(figsize=(8, 4))
losses = np.array(history.losses)
window = 10
ax.plot(history.steps, losses, color="lightgray", label="each step")
ax.plot(history.steps[window - 1:], np.convolve(losses, np.ones(window) / window, mode="valid"),
        color="tab:blue", lw=2, label=f"mean of {window} steps")
ax.set(xlabel="optimizer step", ylabel="cross-entropy per word", yscale="log",
       title="Fine-tuning MiniLM on CoNLL-2003")
ax.legend()
fig.tight_layout()

# %% [markdown]
# ### The test split
#
# `predict_tags` runs the model over the whole test split in length-sorted batches, takes each
# word's first-piece prediction with `word_tags`, and returns one IOB2 tag per word:

# %%
cpu = time.process_time()
test_pred = predict_tags(model, test_set, batch_size=128)
test_scores = entity_scores(test_set.tags, test_pred)
test_eval_cpu = time.process_time() - cpu
print(format_entity_report(test_scores, digits=3))
assert abs(test_scores["overall"]["f1"] - seqeval.metrics.f1_score(test_set.tags, test_pred)) < 1e-12
assert test_scores["overall"]["f1"] >= 0.80, test_scores["overall"]
glue("ch10_test_f1", test_scores["overall"]["f1"], display=False)
glue("ch10_test_p", test_scores["overall"]["precision"], display=False)
glue("ch10_test_r", test_scores["overall"]["recall"], display=False)
for kind in TYPES:
    glue(f"ch10_test_f1_{kind}", test_scores[kind]["f1"], display=False)
glue("ch10_test_eval_cpu", test_eval_cpu, display=False)


# %% [markdown]
# Fine-tuned on {glue:text}`ch10_train_sentences:,d` sentences for {glue:text}`ch10_steps:d` steps
# ({glue:text}`ch10_finetune_cpu:.0f` CPU-seconds), MiniLM tags the
# {glue:text}`ch10_test_entities:,d` entities of the test split with an F1 of
# {glue:text}`ch10_test_f1:.3f` (precision {glue:text}`ch10_test_p:.3f`, recall
# {glue:text}`ch10_test_r:.3f`), against {glue:text}`ch10_lookup_f1:.3f` for the lookup table.
# The score equals `seqeval`'s. By type, PER is easiest ({glue:text}`ch10_test_f1_PER:.3f`):
# person names have typical contexts and shapes. MISC ({glue:text}`ch10_test_f1_MISC:.3f`) and ORG
# ({glue:text}`ch10_test_f1_ORG:.3f`) are hardest: MISC is a grab bag, and an organisation is
# often named after a place (*Sheffield Wednesday*, *Bank of Japan*) or used like one.
#
# Here are some mistakes, gold entities against predicted ones:

# %%
def entity_text(words, entity):
    kind, first, last = entity
    return f"{' '.join(words[first:last + 1])}/{kind}"


shown = 0
for i, (words, gold, pred) in enumerate(zip([r["tokens"] for r in splits["test"]], test_set.tags, test_pred)):
    missed = set(get_entities(gold)) - set(get_entities(pred))
    wrong = set(get_entities(pred)) - set(get_entities(gold))
    if missed and wrong and 8 <= len(words) <= 25 and shown < 6:
        print(" ".join(words))
        print("   gold only:", ", ".join(entity_text(words, e) for e in sorted(missed, key=lambda e: e[1])),
              "  | predicted only:", ", ".join(entity_text(words, e) for e in sorted(wrong, key=lambda e: e[1])))
        shown += 1

# %% [markdown]
# Typical errors: a name that can be several things gets the wrong type (in CoNLL's
# annotation a country in a table of sports results is a LOC, a club an ORG), a boundary is off
# by a word, and headlines in capitals, which carry little besides the words themselves, go
# wrong more often. Several of them are hard for people too without the document around the
# sentence: CoNLL sentences come from documents, and the models of the
# BERT paper were given "maximal document context" (section 5.3), which a sentence-by-sentence
# tagger never sees.
#
# ## 10.5 The feature-based approach: a frozen encoder and a small tagger
#
# Fine-tuning changes every weight of the encoder for every task. The paper's section 5.3 asks
# what happens without that: keep BERT frozen, compute its vectors once, and train only a small
# task model on top, as ELMo {cite:p}`peters2018deep` was used. It is cheaper (the encoder runs
# once per sentence, whatever the number of experiments) and it lets one encoder serve many
# tasks. Its table 7 feeds "a randomly initialized two-layer 768-dimensional BiLSTM" from one
# or more layers of BERT-base, without fine-tuning any BERT parameter:
#
# - (a) the **embedding layer**: the input to block 1, no context at all;
# - (b) the **last** hidden layer, and (c) the **second-to-last**;
# - (d) the **sum of the last four**, and (e) their **concatenation** (4 x 768 wide);
# - (f) a **weighted sum of all layers**, with weights learned along with the tagger (ELMo's
#   *scalar mix*: $\gamma \sum_j \operatorname{softmax}(s)_j\, h_j$).
#
# The paper's rows are named "Embeddings", "Last Hidden", "Second-to-Last Hidden", "Weighted Sum
# Last Four Hidden", "Concat Last Four Hidden" and "Weighted Sum All 12 Layers". Row (d) is
# not quite the paper's: the code below adds the last four layers with equal weights, a plain
# *sum of the last four hidden* layers, where the paper's row is a *weighted* sum, and the paper
# does not say how its weights were set. The published 95.9 printed in row (d) of the table is
# that weighted sum's, the nearest row the paper has. Row (f) mixes the embedding layer and
# MiniLM's 6 blocks, with weights learned as above.
#
# MiniLM has 6 blocks, so its "last four" are layers 3 to 6, two thirds of the network, where
# BERT-base's are the top third.
#
# ### The features, computed once
#
# `extract_word_features` runs the pretrained, frozen MiniLM once over the taggers' training
# sentences ({glue:text}`ch10_feature_sentences:,d` of the fine-tuning subset) and the
# {glue:text}`ch10_dev_sentences:,d` dev sentences, and keeps, for each word, its first piece's vector at every layer: a
# `[7, W, 384]` tensor per sentence (the embedding layer and 6 blocks), stored in float16 to halve
# the memory. Every tagger below reads from this cache; the encoder never runs again.

# %%
encoder = BertModel.from_pretrained(bertedu.minilm_path())  # pretrained and frozen: never trained here
cpu = time.process_time()
feature_records = train_records[:N_FEATURES]  # None: all of them
feature_set = NerDataset(feature_records, tokenizer, max_length=MAX_LENGTH)
train_features = extract_word_features(encoder, feature_set, batch_size=128)
dev_features = extract_word_features(encoder, dev_set, batch_size=128)
extract_cpu = time.process_time() - cpu
cache_mb = sum(f.numel() * f.element_size() for f in train_features + dev_features) / 2**20
glue("ch10_extract_cpu", extract_cpu, display=False)
glue("ch10_cache_mb", cache_mb, display=False)
glue("ch10_dev_sentences", len(dev_set), display=False)
glue("ch10_feature_sentences", len(feature_set), display=False)
print(f"features of {len(train_features):,} + {len(dev_features):,} sentences, each [layers, words, H] = "
      f"{tuple(train_features[0].shape)} for the first: {cache_mb:.0f} MB, {extract_cpu:.0f} CPU-seconds")

# %% [markdown]
# The six ways of reading the layers, built plainly from one sentence's `hidden_states` (the
# embedding output and the output of each block), equal `bertedu.ner.combine_layers` on the
# cached features:

# %%
i = 4
with torch.no_grad():
    batch = feature_set.collate([feature_set[i]])
    hidden = encoder(batch["input_ids"], batch["token_type_ids"], output_hidden_states=True).hidden_states  # 7 x (1, T, H)
first = [feature_set.word_ids[i].index(w) for w in range(feature_set.num_words[i])]  # each word's first piece
h = [layer[0, first] for layer in hidden]  # 7 x (W, H)
mix = ScalarMix(len(h))
with torch.no_grad():
    mix.scalars.copy_(torch.linspace(-1, 1, len(h)))  # some weights, as if learned
plain = {
    "embeddings": h[0],
    "last": h[-1],
    "second_to_last": h[-2],
    "sum_last_four": h[-4] + h[-3] + h[-2] + h[-1],
    "concat_last_four": torch.cat(h[-4:], dim=-1),  # (W, 4H)
    "weighted_sum": mix.gamma * sum(w * layer for w, layer in zip(torch.softmax(mix.scalars, -1), h)),
}
cached = train_features[i].float()  # (7, W, H), float16 in the cache
for how in LAYER_COMBINATIONS:
    torch.testing.assert_close(combine_layers(cached, how, mix), plain[how], atol=0.02, rtol=0.01)
print({how: tuple(v.shape) for how, v in plain.items()})

# %% [markdown]
# (The tolerance covers the float16 cache, about three significant digits.) The tagger,
# `FeatureTagger`, is much smaller than the paper's: the combined vector, with dropout,
# is projected to 128 dimensions and read by a one-layer BiLSTM with 64 units per direction; a
# linear layer gives each word 9 logits. It is trained with the same loop, one tagger per
# row of the table, for {glue:text}`ch10_tagger_epochs:d` passes over its sentences. The
# fine-tuned model of section 10.4 is scored on the same dev sentences; it was trained on more
# sentences than the taggers (all {glue:text}`ch10_train_sentences:,d`, against
# {glue:text}`ch10_feature_sentences:,d`), which the budget of this notebook asks for.

# %%
train_feature_set = WordFeatureDataset(train_features, feature_set.tags, words=[r["tokens"] for r in feature_records])
dev_feature_set = WordFeatureDataset(dev_features, dev_set.tags, words=[r["tokens"] for r in dev_records])
TAGGER_BATCH = 32
tagger_config = TrainingConfig(batch_size=TAGGER_BATCH, max_steps=TAGGER_EPOCHS * len(train_feature_set) // TAGGER_BATCH,
                               learning_rate=3e-3, warmup_steps=TAGGER_EPOCHS * len(train_feature_set) // TAGGER_BATCH // 10,
                               weight_decay=0.01, seed=0, progress_bar=False)


def train_tagger(how, num_shapes=0):
    # One FeatureTagger on the cached features; returns it and its dev F1.
    set_seed(0)
    tagger = FeatureTagger(len(train_features[0]), encoder.config.hidden_size, len(CONLL_NER_LABELS), how,
                           num_shapes=num_shapes)
    train(tagger, train_feature_set, tagger_config)  # batches of sentences with similar word counts
    return tagger, entity_scores(dev_feature_set.tags, predict_feature_tags(tagger, dev_feature_set))["overall"]["f1"]


cpu = time.process_time()
taggers, dev_f1 = {}, {}
for how in LAYER_COMBINATIONS:
    taggers[how], dev_f1[how] = train_tagger(how)
taggers_cpu = time.process_time() - cpu
dev_f1["fine-tuning"] = entity_scores(dev_set.tags, predict_tags(model, dev_set, batch_size=128))["overall"]["f1"]
glue("ch10_taggers_cpu", taggers_cpu, display=False)
print(f"{len(LAYER_COMBINATIONS)} taggers trained in {taggers_cpu:.0f} CPU-seconds")

# %%
PAPER = {"embeddings": 91.0, "second_to_last": 95.6, "last": 94.9, "sum_last_four": 95.9,
         "concat_last_four": 96.1, "weighted_sum": 95.5, "fine-tuning": 96.4}  # published, BERT-base
NAMES = {"embeddings": "(a) embedding layer", "last": "(b) last hidden layer",
         "second_to_last": "(c) second-to-last hidden layer", "sum_last_four": "(d) sum of the last four",
         "concat_last_four": "(e) concatenation of the last four", "weighted_sum": "(f) weighted sum of all layers",
         "fine-tuning": "full fine-tuning (section 10.4)"}
study = pd.DataFrame({"MiniLM, dev F1 (this notebook)": [100 * dev_f1[k] for k in NAMES],
                      "BERT-base, dev F1 (published)": [PAPER[k] for k in NAMES]},
                     index=list(NAMES.values())).round(1)
print(study.to_string())
features_only = {k: v for k, v in dev_f1.items() if k != "fine-tuning"}
best = max(features_only, key=features_only.get)
assert dev_f1["fine-tuning"] > max(features_only.values())  # fine-tuning wins, as in the paper
assert dev_f1["concat_last_four"] > dev_f1["last"]  # four layers read together beat the last alone
assert dev_f1["last"] < dev_f1["second_to_last"] and dev_f1["last"] < dev_f1["embeddings"]  # see the text
for k, v in dev_f1.items():
    glue(f"ch10_dev_f1_{k}".replace("-", "_"), 100 * v, display=False)
glue("ch10_dev_f1_best", 100 * dev_f1[best], display=False)
glue("ch10_best_features", NAMES[best], display=False)
glue("ch10_gap", 100 * (dev_f1["fine-tuning"] - dev_f1[best]), display=False)

# %% mystnb={"image": {"alt": "Left: horizontal bars of dev entity F1 for the six frozen-feature taggers and full fine-tuning of MiniLM, with the published BERT-base numbers as black diamonds: fine-tuning scores highest, the last hidden layer lowest, below even the embedding layer, and all MiniLM bars lie well below the published points. Right: the learned weight of each of MiniLM's seven layers in the weighted-sum tagger, against the dashed line of equal weights."}}
fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1.6, 1]})
keys = list(NAMES)
y = np.arange(len(keys))
left.barh(y, [100 * dev_f1[k] for k in keys], color=["tab:blue"] * 6 + ["tab:green"], label="MiniLM (this notebook)")
left.plot([PAPER[k] for k in keys], y, "kD", label="BERT-base (published)")
for yi, k in zip(y, keys):
    left.text(100 * dev_f1[k] - 0.5, yi, f"{100 * dev_f1[k]:.1f}", va="center", ha="right", color="white", fontsize=11)
left.set_yticks(y, [NAMES[k] for k in keys])
left.invert_yaxis()
left.set_xlim(50, 100)
left.set_xlabel("entity F1 on dev (%)")
left.set_title("Frozen features + BiLSTM tagger vs fine-tuning")
left.legend(loc="lower left", fontsize=10)

weights = taggers["weighted_sum"].mix.weights.detach().numpy()
right.bar(range(len(weights)), weights, color="tab:blue")
right.axhline(1 / len(weights), color="k", ls="--", lw=1, label="equal weights (the start)")
right.set_xticks(range(len(weights)), ["emb"] + [str(l) for l in range(1, len(weights))])
right.set_xlabel("layer of MiniLM")
right.set_ylabel("learned weight softmax(s)")
right.set_title("(f): the learned mix of layers")
right.legend(fontsize=10)
fig.tight_layout()

# %% [markdown]
# Full fine-tuning wins, as in the paper, and by much more: the best frozen reading,
# {glue:text}`ch10_best_features`, scores {glue:text}`ch10_dev_f1_best:.1f` against
# {glue:text}`ch10_dev_f1_fine_tuning:.1f`, a gap of {glue:text}`ch10_gap:.1f` points, where
# BERT-base's is 0.3 (96.1 vs 96.4, published) and the paper concludes that "BERT is effective
# for both fine-tuning and feature-based approaches". Reading several layers beats reading the
# top one, as in the paper. One result is not in the paper at all: MiniLM's **last layer** is
# its worst reading, below the second-to-last ({glue:text}`ch10_dev_f1_second_to_last:.1f`) and
# even below the embedding layer ({glue:text}`ch10_dev_f1_last:.1f` against
# {glue:text}`ch10_dev_f1_embeddings:.1f`), whose vectors know nothing of the sentence (the
# BiLSTM supplies the context there). The likely reason is the checkpoint's training. all-MiniLM-L6-v2 was
# distilled from a larger model {cite:p}`wang2020minilm` and then trained further, on about a
# billion sentence pairs (its model card), to give *sentence* embeddings for similarity search
# {cite:p}`reimers2019sentence`: the loss reached the encoder only through the mean of the last
# layer's vectors, so that layer was probably pushed towards what a sentence is about and away from what
# each word is. The learned mix (right) shows which layers the tagger picks when it may choose.
# Fine-tuning pulls the upper layers back to the words; a frozen reader cannot.
#
# Two more differences widen the gap, and are worth keeping in mind when reading any such
# table: the tagger (the paper's two-layer, 768-dimensional BiLSTM trained on all of CoNLL-2003,
# against our one layer of 64 units per direction trained for
# {glue:text}`ch10_tagger_epochs:d` passes over {glue:text}`ch10_feature_sentences:,d`
# sentences), and the context (the paper's numbers use whole documents, ours single sentences).
#
# ## 10.6 What an uncased checkpoint cannot see
#
# MiniLM's tokenizer lower-cases every word before WordPiece (Chapter 2). For most tasks that
# merges spelling variants harmlessly. For NER it erases the strongest single clue in English:
# names are capitalised.

# %%
# NBVAL_CHECK_OUTPUT
for pair in [("Bush", "bush"), ("May", "may"), ("US", "us"), ("Turkey", "turkey"), ("Reading", "reading")]:
    ids = [tokenizer(word, add_special_tokens=False)["input_ids"] for word in pair]
    print(f"{pair[0]:>8} -> {ids[0]}   {pair[1]:>8} -> {ids[1]}   the same input: {ids[0] == ids[1]}")

# %% [markdown]
# In CoNLL-2003, *Reading* is always the football club (ORG), *US* the country (LOC) and
# *May* now and then a person, while *reading*, *us* and *may* are never part of an entity. The
# model sees identical inputs and must decide from the context alone. How much does the casing tell? On
# the test split, we count the words of each shape inside and outside entities, leaving out
# the first word of each sentence (capitalised anyway) and the sentences written all in capitals
# (headlines such as *SOCCER - JAPAN GET LUCKY WIN*, where casing carries nothing):

# %%
shape_rows = Counter()
for r in splits["test"]:
    words, tags = r["tokens"], r["ner_tags"]
    if all(word_shape(w) != 0 for w in words if any(c.isalpha() for c in w)):
        continue  # a headline in capitals
    for w, t in zip(words[1:], tags[1:]):
        shape_rows[WORD_SHAPES[word_shape(w)], "entity" if t != "O" else "not an entity"] += 1
shapes = pd.DataFrame([{"shape": s, "in an entity": shape_rows[s, "entity"], "outside": shape_rows[s, "not an entity"]}
                       for s in WORD_SHAPES]).set_index("shape")
shapes["share in entities"] = shapes["in an entity"] / shapes.sum(axis=1)
print(shapes.round(3).to_string())
capital = shapes.loc[["Capitalised", "UPPER"]]
glue("ch10_entity_words_capital", 100 * float(capital["in an entity"].sum() / shapes["in an entity"].sum()), display=False)
glue("ch10_capital_in_entity", 100 * float(capital["in an entity"].sum() / capital[["in an entity", "outside"]].values.sum()),
     display=False)
glue("ch10_lower_in_entity", 100 * float(shapes.loc["lower", "share in entities"]), display=False)

# %% [markdown]
# Away from the start of a sentence and outside headlines, {glue:text}`ch10_entity_words_capital:.1f`%
# of the words inside entities are capitalised or in capitals, and
# {glue:text}`ch10_capital_in_entity:.0f`% of such words belong to an entity, against
# {glue:text}`ch10_lower_in_entity:.2f`% of lower-case words. A cased model gets this clue in its
# input; an uncased one must rebuild it from context. To measure what it is worth, we give one
# frozen-feature tagger the casing back: the best reading of section 10.5 plus a 16-dimensional
# embedding of each word's shape (`word_shape`: lower, Capitalised, UPPER, other), and nothing
# else changed:

# %%
cpu = time.process_time()
_, cased_f1 = train_tagger(best, num_shapes=len(WORD_SHAPES))
casing_cpu = time.process_time() - cpu
assert cased_f1 > dev_f1[best]
glue("ch10_cased_f1", 100 * cased_f1, display=False)
glue("ch10_casing_gain", 100 * (cased_f1 - dev_f1[best]), display=False)
print(f"{NAMES[best]}: dev F1 {100 * dev_f1[best]:.1f} without the casing, {100 * cased_f1:.1f} with it")

# %% [markdown]
# One casing class per word (four classes, two bits) lifts the frozen tagger from
# {glue:text}`ch10_dev_f1_best:.1f` to {glue:text}`ch10_cased_f1:.1f` dev F1,
# {glue:text}`ch10_casing_gain:.1f` points, with nothing else changed: information that the
# uncased tokenizer threw away before the encoder ever saw the sentence. The context recovers
# much of it (a word after *Mr.* or before *said* is probably a person, capitalised or not),
# which is why the gain is points and not tens of points, but not all: in a headline in capitals,
# or in a short fragment such as a line of a results table, there is little context to recover
# it from. This is why Google's README for the BERT release advises the cased models when "case
# information is important for your task (e.g., Named Entity Recognition or Part-of-Speech
# tagging)", and why a cased checkpoint is the usual choice for NER. The price of a cased
# vocabulary: the same 30,000 entries must hold *the*, *The* and *THE*, so words are cut into
# more pieces.
#
# ```{admonition} Coming from d2l?
# :class: note
# d2l {cite:p}`zhang2023dive` describes text tagging (in its section on fine-tuning BERT for
# sequence-level and token-level applications) as one output layer applied to the BERT vector
# of every token. Its BERT splits text into whole words, so a token is a word
# and the question of this chapter never comes up. With WordPieces it does: only each word's
# first piece carries a label here, the other pieces are $-100$, and the predictions are read
# back per word. And NER is measured by entity-level F1, not accuracy, which can hide a
# useless tagger entirely (tagging everything `O` is
# {glue:text}`ch10_all_o_accuracy:.0f`% accurate and finds nothing).
# ```
#
# ## Summary
#
# - CoNLL-2003 tags words with IOB tags: `B-X` begins an entity of type X, `I-X` continues it,
#   `O` is outside. The files are IOB1; `bertedu.data` converts them to IOB2, where every entity
#   starts with `B-`. An entity is a (type, first word, last word) span.
# - Words become WordPieces one word at a time; `word_ids` maps pieces back. The label goes to
#   each word's **first piece**, $-100$ to the rest and to `[CLS]`/`[SEP]`; predictions are read
#   back at first pieces (`bertedu.ner`, equal to the plain version and to Hugging Face's
#   `word_ids()`).
# - Scoring is **entity-level** P/R/F1 (`bertedu.metrics.entity_scores`, equal to `seqeval`):
#   only exact spans with the right type count. All-`O` is
#   {glue:text}`ch10_all_o_accuracy:.0f`% token-accurate and F1 0; a lookup table gets
#   {glue:text}`ch10_lookup_f1:.3f`.
# - Fine-tuning MiniLM on {glue:text}`ch10_train_sentences:,d` sentences, one pass with
#   length-grouped, dynamically padded batches, a tuned rate and frozen word embeddings, took
#   {glue:text}`ch10_finetune_cpu:.0f` CPU-seconds and reaches a test F1 of
#   {glue:text}`ch10_test_f1:.3f`.
# - Frozen features feeding a small BiLSTM tagger: the best reading ({glue:text}`ch10_best_features`,
#   {glue:text}`ch10_dev_f1_best:.1f` dev F1) stays {glue:text}`ch10_gap:.1f` points below
#   fine-tuning ({glue:text}`ch10_dev_f1_fine_tuning:.1f`), against 0.3 for BERT-base
#   (published). The last layer of this sentence-embedding checkpoint is its worst reading for
#   NER, below even the embedding layer: check what a checkpoint was trained for before
#   freezing it.
# - The uncased checkpoint cannot see capital letters, the strongest clue to a name; giving a
#   frozen tagger the casing back is worth {glue:text}`ch10_casing_gain:.1f` dev F1 points.

# %%
cpu_total, wall_total = time.process_time() - cpu_start, time.perf_counter() - wall_start
print(f"this notebook: {wall_total:.0f} s wall, {cpu_total:.0f} CPU-seconds in this process")

# %% [markdown]
# ## Exercises
#
# The exercises for this chapter are the nbgrader assignment
# `exercises/source/10_ner/10_ner.ipynb`, with reference solutions. `make exercises` writes the
# student version, without them, to `exercises/release/10_ner/`; instructors, see the guide
# "Teaching with this book".
