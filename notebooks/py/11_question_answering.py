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
# # 11. Extractive question answering
#
# Chapter 10 gave every token a label. Question answering asks for a single answer, and the
# answer is a piece of the passage, copied out. SQuAD v1.1 {cite:p}`rajpurkar2016squad` made this
# task a standard benchmark: crowdworkers wrote more than 100,000 questions about Wikipedia
# paragraphs, and the answer to each question is a span of its paragraph. BERT's solution
# {cite:p}`devlin2019bert` (section 4.2) is small: two vectors, learned during fine-tuning. One
# scores every passage token as the start of the answer, the other scores it as the end.
#
# The rest of this chapter is the glue that turns those scores into answers. The question and
# the passage share one input. Characters become token positions, and token positions become
# characters again. A passage longer than the model's window is cut into overlapping windows.
# The best span is picked from all of them, and SQuAD scores it.
#
# ## What you will be able to do
#
# - Build the input `[CLS] question [SEP] passage [SEP]` with its segment ids, and check it
#   against `bertedu.qa.QADataset`.
# - Compute the start and end logits of every token from the encoder's output with two vectors
#   $S$ and $E$, and the training loss, equal to `bertedu.BertForQuestionAnswering`.
# - Turn an answer given in characters into token positions through the tokenizer's offsets, and
#   a predicted token span back into the passage's own characters.
# - Cut a long passage into overlapping windows with a document stride, and say which windows
#   hold the answer.
# - Decode the best valid span (start before end, bounded length, passage tokens only) and the
#   $n$ best, over all windows of a question, equal to `bertedu.qa.best_spans`.
# - Score answers with SQuAD's exact match and F1, with the official normalisation, and compare
#   them with simple baselines.
# - Fine-tune the real MiniLM checkpoint for question answering on a CPU, and read its answers
#   and its mistakes.
#
# ## Setup
#
# **The data, plainly.** The course ships only SQuAD v1.1's **dev** file: {glue:text}`ch11_n_dev:,d` questions on
# {glue:text}`ch11_n_articles:d` Wikipedia articles. The official train file (published: 87,599
# questions on 442 articles) is not in the offline copy. So by default this chapter **trains on questions from the first 38 articles of
# the dev file and evaluates on the questions of the last 10 articles.** The split is by article,
# so no held-out passage, and no held-out topic, is seen in training. The scores are real SQuAD
# scores on real SQuAD questions, but they are *not* comparable with published SQuAD dev
# scores: those models train on the 87,599 train questions and are scored on all of dev.
#
# The default run fits a CPU budget of a few minutes, which shapes its recipe: {glue:text}`ch11_n_train:,d`
# training questions, short training windows, and one pass over the data (section 11.8).
# `FULL = True` (set the environment variable `BERTEDU_FULL=1`; it needs the network and, in
# practice, a GPU) downloads the official train file, checks its SHA-256, trains on all of it
# with BERT's settings (windows of 384 tokens, a document stride of 128, every window, three
# epochs, batches of 32, a learning rate of 5e-5) and evaluates on all 48 dev articles. The published numbers to set it against are in
# section 11.8.

# %%
# %config InlineBackend.figure_format = 'png'
import collections
import math
import os
import random
import re
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
import torch.utils.data
from myst_nb import glue

import bertedu
from bertedu import BertForQuestionAnswering
from bertedu.checkpoints import save_shared_run, shared_run_folder
from bertedu.data import load_squad
from bertedu.finetuning import LengthGroupedBatches
from bertedu.metrics import normalize_answer, squad_evaluate, squad_exact_match, squad_f1
from bertedu.qa import QADataset, best_spans, char_span_to_token_span, predict_answers, qa_logits
from bertedu.tokenization import BertTokenizer
from bertedu.training import TrainingConfig, set_seed, train

CPU_START, WALL_START = time.process_time(), time.perf_counter()
plt.rcParams.update({"font.size": 12})
set_seed(0)

# The one knob of the book (see the text above for what it changes).
FULL = os.environ.get("BERTEDU_FULL") == "1"
N_HELD_OUT_ARTICLES = 10        # the last 10 dev articles are the held-out set (default run)
EVAL_LENGTH, EVAL_STRIDE = 384, 128   # evaluation windows: BERT's SQuAD settings
MAX_ANSWER_LENGTH = 30          # the longest answer considered, in tokens (BERT's run_squad.py)
if FULL:
    TRAIN_LENGTH, DOC_STRIDE = 384, 128   # BERT's training windows
    ANSWER_WINDOWS_ONLY = False           # train on every window, as Google's run_squad.py
    N_TRAIN = None                        # every train question
    EPOCHS, BATCH_SIZE, LEARNING_RATE = 3, 32, 5e-5   # BERT's SQuAD v1.1 settings
    N_CURVE = 1000                        # held-out questions scored along the run
else:
    TRAIN_LENGTH, DOC_STRIDE = 128, 64    # short windows: most of the cost is tokens
    ANSWER_WINDOWS_ONLY = True            # one window per question, one that holds the answer
    N_TRAIN = 1200                        # training questions, drawn from the 38 training articles
    EPOCHS, BATCH_SIZE, LEARNING_RATE = 1, 8, 3e-4  # a short run: small batches, a high rate
    N_CURVE = 100                         # held-out questions scored along the run
EVAL_POINTS = 4                           # evaluations along the run (the last one on everything)

import warnings
# A new task head starts untrained and MiniLM's pooler goes unused, as the text says where
# the chapter builds the model; the library's reminders would print this machine's file
# paths on the page, so they are silenced.
warnings.filterwarnings("ignore", message=".*(newly initialised|unused tensors)")


# %% [markdown]
# ## 11.1 The data: questions whose answers are spans
#
# `load_squad` returns one record per question: its id, the article's title, the paragraph
# (`context`), the question, and the answers. An answer is a piece of text and the **character**
# offset where it starts in the context. Dev questions have several answers, usually three, from
# different crowdworkers; they may repeat. The official score compares a prediction with each of
# them and keeps the best.

# %%
# NBVAL_CHECK_OUTPUT

dev = load_squad("dev")
titles = list(dict.fromkeys(record["title"] for record in dev))  # the 48 articles, in file order
held_out_titles = set(titles[-N_HELD_OUT_ARTICLES:])
if FULL:
    train_pool, eval_examples = load_squad("train"), dev   # downloaded, sha256-checked
else:
    train_pool = [r for r in dev if r["title"] not in held_out_titles]
    eval_examples = [r for r in dev if r["title"] in held_out_titles]
random.Random(0).shuffle(train_pool)
train_examples = train_pool if N_TRAIN is None else train_pool[:N_TRAIN]
train_titles = {r["title"] for r in train_pool}
assert not (train_titles & {r["title"] for r in eval_examples}) or FULL  # no article on both sides

print(f"dev: {len(dev):,} questions on {len(titles)} articles")
print(f"training pool: {len(train_pool):,} questions on {len(train_titles)} articles; "
      f"we train on {len(train_examples):,} of them")
print(f"held out: {len(eval_examples):,} questions on "
      f"{len({r['title'] for r in eval_examples})} articles: {sorted({r['title'] for r in eval_examples})}")
example = eval_examples[0]
print("\ncontext:", example["context"][:300], "...")
print("question:", example["question"])
print("answers:", example["answers"])
glue("ch11_n_dev", len(dev), display=False)
glue("ch11_n_articles", len(titles), display=False)
glue("ch11_train_ratio", 87_599 / len(train_examples), display=False)  # the published train-set size
glue("ch11_n_pool", len(train_pool), display=False)
glue("ch11_n_train", len(train_examples), display=False)
glue("ch11_n_eval", len(eval_examples), display=False)

# %% [markdown]
# Every answer is a copy of characters of its context: `context[answer_start:answer_start +
# len(text)] == text` holds for every answer of SQuAD v1.1 (`bertedu.qa.check_answer` checks it
# and refuses anything else with a clear message). So the model never writes an answer; it
# points at one.
#
# ## 11.2 One input for the question and the passage
#
# The question is segment A and the passage is segment B (Chapter 3): the model reads
#
# $$\texttt{[CLS]}\ q_1 \dots q_m\ \texttt{[SEP]}\ p_1 \dots p_n\ \texttt{[SEP]}$$
#
# with segment id 0 up to the first `[SEP]` and 1 after it. Every layer of the encoder lets
# every passage token attend to every question token and back, so by the last layer the vector
# of a passage token "knows" the question. Here is the input built by hand from the two
# tokenizations, and `QADataset`'s feature for the same question:

# %%
# NBVAL_CHECK_OUTPUT

tokenizer = BertTokenizer.from_pretrained(bertedu.minilm_path())
question_ids = tokenizer(example["question"], add_special_tokens=False)["input_ids"]
passage_ids = tokenizer(example["context"], add_special_tokens=False)["input_ids"]
input_ids = [tokenizer.cls_token_id, *question_ids, tokenizer.sep_token_id, *passage_ids, tokenizer.sep_token_id]
token_type_ids = [0] * (len(question_ids) + 2) + [1] * (len(passage_ids) + 1)

one = QADataset([example], tokenizer, max_length=EVAL_LENGTH, doc_stride=EVAL_STRIDE)
feature = one.features[0]
assert len(one.features) == 1  # this passage fits in one window
assert feature["input_ids"] == input_ids and feature["token_type_ids"] == token_type_ids
print(f"{len(question_ids)} question tokens + {len(passage_ids)} passage tokens + 3 special = {len(input_ids)}")
tokens = tokenizer.convert_ids_to_tokens(input_ids)
for t in range(len(question_ids) + 8):
    print(f"{t:>3} {tokens[t]:<12} segment {token_type_ids[t]}")
print("...")

# %% [markdown]
# ## 11.3 Two vectors: start and end scores for every token
#
# Let $T_i \in \mathbb{R}^H$ be the final hidden vector of token $i$. Section 4.2 of the BERT
# paper introduces only two new vectors for the task, a start vector $S \in \mathbb{R}^H$ and an
# end vector $E \in \mathbb{R}^H$:
#
# $$
# P_{\text{start}}(i) = \frac{e^{S \cdot T_i}}{\sum_j e^{S \cdot T_j}}, \qquad
# P_{\text{end}}(j) = \frac{e^{E \cdot T_j}}{\sum_k e^{E \cdot T_k}}, \qquad
# \text{score}(i, j) = S \cdot T_i + E \cdot T_j .
# $$
#
# In the code the two vectors are the two rows of one linear layer $H \to 2$, `qa_outputs`
# (Hugging Face's name). The layer also has two biases, but a bias adds the same number to every
# position, so it changes neither softmax nor which span scores best. Training maximises the
# log-likelihood of the correct start and end positions. The paper sums the two
# log-likelihoods; Google's code and `transformers` take the mean of the two cross-entropies over
# the positions of the sequence, which only halves the scale of the gradient. `bertedu` takes
# the mean too.
#
# We load MiniLM with a new, random `qa_outputs` (the warning says so) and compute the logits by
# hand from the encoder's output:

# %%
set_seed(0)
model = BertForQuestionAnswering.from_pretrained(bertedu.minilm_path())
model.eval()
batch = one.collate([one[0]])
with torch.no_grad():
    T = model.bert(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]).last_hidden_state[0]  # (L, H)
    S, E = model.qa_outputs.weight                        # (H,) each: the start and end vectors
    b_start, b_end = model.qa_outputs.bias
    start_logits, end_logits = T @ S + b_start, T @ E + b_end  # (L,) each: one score per token
    library = model(**batch)
torch.testing.assert_close(start_logits, library.start_logits[0])
torch.testing.assert_close(end_logits, library.end_logits[0])

L = len(start_logits)
start_gold, end_gold = batch["start_positions"], batch["end_positions"]
loss = (F.cross_entropy(start_logits[None], start_gold) + F.cross_entropy(end_logits[None], end_gold)) / 2
torch.testing.assert_close(loss, library.loss)
assert abs(loss.item() - math.log(L)) < 0.5  # the untrained head guesses: about uniform over L positions
print(f"S, E: {tuple(S.shape)} each; start and end logits: {tuple(start_logits.shape)}")
print(f"gold start/end positions {start_gold.item()}, {end_gold.item()}: "
      f"{tokenizer.decode(feature['input_ids'][start_gold.item():end_gold.item() + 1])!r}")
print(f"loss of the untrained head {loss.item():.3f}; a uniform guess over {L} positions gives ln {L} = {math.log(L):.3f}")


# %% [markdown]
# The untrained head is a uniform guess. Fine-tuning trains $S$, $E$ and every layer of the
# encoder together.
#
# ## 11.4 From characters to tokens and back
#
# SQuAD gives answers in **characters**; the model points at **tokens**. The tokenizer's offsets
# link the two: for every passage token, the span of characters of the context it came from
# (Chapter 2). The answer's first token is the first token that overlaps its characters, and its
# last token is the last one that does. A plain version, checked against
# `bertedu.qa.char_span_to_token_span` on every gold answer of the held-out articles:

# %%
# NBVAL_CHECK_OUTPUT

def plain_token_span(offsets, start_char, end_char):
    # the first and the last token whose characters overlap [start_char, end_char)
    overlapping = [t for t, span in enumerate(offsets) if span is not None
                   and span[0] < end_char and span[1] > start_char]
    return overlapping[0], overlapping[-1]


eval_set = QADataset(eval_examples, tokenizer, max_length=EVAL_LENGTH, doc_stride=EVAL_STRIDE)
n_answers = n_exact = 0
stretched = []
for e, record in enumerate(eval_examples):
    offsets = eval_set.context_offsets[e]  # every context token's (start, end) characters
    context = record["context"]
    for text, start_char in zip(record["answers"]["text"], record["answers"]["answer_start"]):
        end_char = start_char + len(text)
        first, last = plain_token_span(offsets, start_char, end_char)
        assert (first, last) == char_span_to_token_span(offsets, start_char, end_char)
        back = context[offsets[first][0]:offsets[last][1]]  # token span -> the context's characters
        n_answers += 1
        n_exact += back == text
        if back != text:
            stretched.append((text, back))
print(f"{n_answers:,} gold answers; {n_exact:,} come back character for character from their tokens")
print("the others, gold -> whole tokens:", sorted(set(stretched))[:4])
glue("ch11_n_answers", n_answers, display=False)
glue("ch11_exact_back", 100 * n_exact / n_answers, display=False)

# %% [markdown]
# {glue:text}`ch11_exact_back:.1f`% of the {glue:text}`ch11_n_answers:,d` gold answers of the held-out
# articles start and end on token boundaries, so the model can point at them exactly. The rest
# start or end inside a word, mostly slips of the annotators' selection; the model can only
# answer with whole tokens.
#
# The way back matters as much. A predicted span of tokens $(i, j)$ becomes the answer
# `context[offsets[i][0]:offsets[j][1]]`: the passage's own characters, with their capitals,
# accents and spacing. Decoding the WordPiece ids instead would give the *uncased model's*
# lower-cased, accent-stripped, re-spaced version. SQuAD's normalisation forgives the case but
# not every difference, and a reader deserves the original text.
#
# ## 11.5 Long passages: windows with a document stride
#
# A feature holds at most `max_length` tokens, question and special tokens included. A longer
# passage is cut into **windows** of passage tokens. Consecutive windows start `doc_stride`
# tokens apart, so they overlap, and an answer cut by the edge of one window lies whole inside
# another. Each window becomes one feature `[CLS] question [SEP] window [SEP]`. In a window that
# does not hold the whole answer, the target start and end are both 0, the `[CLS]` token: "not
# in this window" (Google's `run_squad.py` convention). Hugging Face's tokenizers call the
# *overlap* `stride`, which is window length minus our `doc_stride` (`tests/test_qa.py` checks
# that `QADataset`'s windows equal theirs, token for token).
#
# The plain version, on the held-out question with the longest passage, and with this
# chapter's training windows of {glue:text}`ch11_train_length:d` tokens:

# %%
# NBVAL_CHECK_OUTPUT

longest = max(range(len(eval_examples)), key=lambda e: (len(eval_set.context_offsets[e]), -e))
record = eval_examples[longest]
context_ids = tokenizer(record["context"], add_special_tokens=False)["input_ids"]
question_ids = tokenizer(record["question"], add_special_tokens=False)["input_ids"]
capacity = TRAIN_LENGTH - len(question_ids) - 3  # passage tokens per window
windows, a = [], 0
while True:
    b = min(a + capacity, len(context_ids))
    windows.append((a, b))  # this window holds the passage tokens a .. b-1
    if b == len(context_ids):
        break
    a += DOC_STRIDE

long_set = QADataset([record], tokenizer, max_length=TRAIN_LENGTH, doc_stride=DOC_STRIDE)
assert windows == [f["window"] for f in long_set.features]
first, last = char_span_to_token_span(long_set.context_offsets[0], record["answers"]["answer_start"][0],
                                      record["answers"]["answer_start"][0] + len(record["answers"]["text"][0]))
print(f"question: {record['question']}\nanswer: {record['answers']['text'][0]!r} = passage tokens {first}..{last}")
print(f"passage: {len(context_ids)} tokens; question: {len(question_ids)}; window: {capacity} passage tokens")
for f, (a, b) in zip(long_set.features, windows):
    print(f"window {a:>3}..{b - 1:>3}: start/end positions in the feature "
          f"{f['start_positions']:>3}, {f['end_positions']:>3}")
glue("ch11_train_length", TRAIN_LENGTH, display=False)
glue("ch11_doc_stride", DOC_STRIDE, display=False)

# %% [markdown]
# The answer lies whole in every window whose range covers its tokens, at a position shifted by
# the window's start plus the question; every other window points at `[CLS]`. How often are
# windows needed at all? The figure shows the length of every SQuAD dev passage against the
# room a window leaves, and the windows of the passage above.

# %% mystnb={"image": {"alt": "Left: histogram of the lengths of SQuAD dev passages in WordPieces, mostly 100 to 250, with vertical lines at the passage room left by max_length 128, 192 and 384. Right: the overlapping windows of the longest held-out passage drawn as horizontal bars over the token axis, with the answer's tokens shaded; the windows that hold the whole answer are dark blue."}}
passage_lengths = np.array([len(tokenizer(c, add_special_tokens=False)["input_ids"])
                            for c in dict.fromkeys(r["context"] for r in dev)])
question_length = int(np.median([len(tokenizer(r["question"], add_special_tokens=False)["input_ids"])
                                 for r in dev]))
room = {n: n - question_length - 3 for n in (128, 192, 384)}  # passage tokens beside a median question
over = {n: float((passage_lengths > r).mean()) for n, r in room.items()}
glue("ch11_over_128", 100 * over[128], display=False)
glue("ch11_over_384", 100 * over[384], display=False)

fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [1, 1.2]})
left.hist(passage_lengths, bins=np.arange(0, passage_lengths.max() + 20, 10), color="tab:gray")
for (n, r), color in zip(room.items(), ["tab:red", "tab:orange", "tab:green"]):
    left.axvline(r, color=color, lw=2, label=f"max_length {n}: {100 * over[n]:.0f}% need 2+ windows")
left.set_xlabel("passage length in WordPieces")
left.set_ylabel("number of dev passages")
left.set_title(f"SQuAD v1.1 dev passages (questions: median {question_length} tokens)")
left.legend(fontsize=10)

for w, (a, b) in enumerate(windows):
    holds = long_set.features[w]["start_positions"] > 0
    right.plot([a, b - 1], [w, w], lw=8, solid_capstyle="butt",
               color="tab:blue" if holds else "lightsteelblue")
right.axvspan(first - 0.5, last + 0.5, color="tab:red", alpha=0.3, label="the answer's tokens")
right.set_yticks(range(len(windows)), [f"window {w}" for w in range(len(windows))])
right.invert_yaxis()
right.set_xlabel("passage token index")
right.set_title(f"windows of {capacity} passage tokens, doc_stride {DOC_STRIDE}")
right.legend(loc="lower right", fontsize=10)
fig.tight_layout()
plt.show()


# %% [markdown]
# With windows of 128 tokens, {glue:text}`ch11_over_128:.0f`% of the dev passages need more than one
# window; with BERT's 384, only {glue:text}`ch11_over_384:.1f`% do. Most of the cost of a
# transformer on a CPU is proportional to the number of tokens, so short windows are not cheaper
# for evaluation (the overlaps are read twice); they matter for training, as section 11.8 shows.
#
# ## 11.6 Decoding the best span
#
# At prediction time we have, for every window of a question, a start and an end logit per
# token. The answer is the span $(i, j)$ with the highest score $s_i + e_j$ among the **valid**
# ones:
#
# - $i \le j$: the answer ends after it starts;
# - $j - i + 1 \le$ `max_answer_length` ({glue:text}`ch11_max_answer_length:d` tokens, as in
#   BERT's code): no answer is a whole paragraph;
# - both $i$ and $j$ are **passage** tokens: never `[CLS]`, the question or a `[SEP]`;
# - over **all windows** of the question: the best span of any window wins, and the same
#   characters found in two overlapping windows count once, with their best score.
#
# The $n$ best spans, not just the best, are useful: their scores turned into probabilities say
# how sure the model is, and they are what Google's code writes to `nbest_predictions.json`. A
# plain version that scores every pair, on the windows of the long passage above, with the
# untrained model's logits (the check is that both decoders agree, whatever the logits):

# %%
def plain_best_spans(start_logits, end_logits, offsets, context, n_best=20, max_answer_length=30):
    candidates = []  # (score, window, i, j) for every valid pair of every window
    for w, (starts, ends, spans) in enumerate(zip(start_logits, end_logits, offsets)):
        passage = [t for t, span in enumerate(spans) if span is not None]
        for i in passage:
            for j in passage:
                if i <= j < i + max_answer_length:
                    candidates.append((starts[i].item() + ends[j].item(), w, i, j))
    candidates.sort(key=lambda c: -c[0])  # best first; a stable sort keeps ties in window order
    results, seen = [], set()
    for score, w, i, j in candidates:
        start_char, end_char = offsets[w][i][0], offsets[w][j][1]
        if (start_char, end_char) in seen:  # the same characters from an overlapping window
            continue
        seen.add((start_char, end_char))
        results.append({"text": context[start_char:end_char], "score": score, "window": w})
        if len(results) == n_best:
            break
    return results


long_starts, long_ends = qa_logits(model, long_set)  # one [T_f] tensor per window
long_offsets = [f["offsets"] for f in long_set.features]
plain = plain_best_spans(long_starts, long_ends, long_offsets, record["context"], n_best=5,
                         max_answer_length=MAX_ANSWER_LENGTH)
library = best_spans(long_starts, long_ends, long_offsets, record["context"], n_best=5,
                     max_answer_length=MAX_ANSWER_LENGTH)
assert [p["text"] for p in plain] == [s["text"] for s in library]
torch.testing.assert_close(torch.tensor([p["score"] for p in plain]), torch.tensor([s["score"] for s in library]))
for s in library:
    print(f"{s['score']:7.3f}  window {s['window']}  {s['text'][:70]!r}")
glue("ch11_max_answer_length", MAX_ANSWER_LENGTH, display=False)


# %% [markdown]
# The untrained model's spans are nonsense, but they are valid ones. `best_spans` scores the
# whole table $s_i + e_j$ at once as a `[T, T]` tensor and masks the invalid pairs;
# `decode_answers` and `predict_answers` apply it to every question of a dataset. Google's
# code considers only the 20 best starts and the 20 best ends of each window, which is faster
# for long windows and nearly always gives the same answer; the full table is exact.
#
# ## 11.7 Exact match and F1
#
# SQuAD scores an answer against each gold answer of its question and keeps the best, with two
# measures {cite:p}`rajpurkar2016squad`, both after the official **normalisation**: lower-case,
# delete ASCII punctuation, delete the articles *a*, *an*, *the*, and collapse white space.
#
# - **Exact match (EM):** 1 if the normalised prediction equals a normalised gold answer.
# - **F1:** treat the normalised prediction and gold answer as bags of words; with $c$ words in
#   common, precision $p = c / |\text{prediction}|$, recall $r = c / |\text{gold}|$, and
#   $F_1 = 2pr / (p + r)$. It gives partial credit for a span that is too long or too short.

# %%
# NBVAL_CHECK_OUTPUT

def plain_f1(prediction, gold):
    predicted, wanted = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((collections.Counter(predicted) & collections.Counter(wanted)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(wanted)
    return 2 * precision * recall / (precision + recall)


pairs = [("The Denver Broncos!", "Denver Broncos"), ("in the Denver Broncos' stadium", "Denver Broncos"),
         ("1990s", "the 1990s"), ("Santa Clara, California", "Levi's Stadium")]
for prediction, gold in pairs:
    assert plain_f1(prediction, gold) == squad_f1(prediction, [gold])
    print(f"{prediction!r:>34} vs {gold!r:<18} normalised {normalize_answer(prediction)!r:<28} "
          f"EM {squad_exact_match(prediction, [gold]):.0f}  F1 {squad_f1(prediction, [gold]):.3f}")


# %% [markdown]
# `bertedu.metrics.squad_evaluate(predictions, examples)` averages both over the questions and
# reports percentages, like the official script.
#
# **Baselines.** A score means little alone. Three rules that read the question and the passage
# but learn nothing:
#
# 1. **First sentence:** answer with the passage's first sentence.
# 2. **Best sentence:** the sentence that shares the most (normalised) words with the question;
#    ties go to the earlier sentence.
# 3. **Best sentence, minus the question:** the same sentence with the question's words
#    removed. The answer is rarely made of the question's own words.
#
# Sentences are cut after `.`, `!` or `?` followed by a space and a capital or digit, which is
# crude (it cuts after "U.S. Army") but enough for a baseline.

# %%
def sentences(context):
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9])", context) if s.strip()]


def overlap(text, question_words):
    return len(set(normalize_answer(text).split()) & question_words)


def baseline_answers(examples, rule):
    answers = {}
    for r in examples:
        candidates = sentences(r["context"])
        question_words = set(normalize_answer(r["question"]).split())
        if rule == "first sentence":
            answer = candidates[0]
        else:
            answer = max(candidates, key=lambda s: overlap(s, question_words))  # first of the best
            if rule == "best sentence, minus the question":
                kept = [w for w in answer.split() if normalize_answer(w) not in question_words]
                answer = " ".join(kept) or answer
        answers[r["id"]] = answer
    return answers


RULES = ["first sentence", "best sentence", "best sentence, minus the question"]
baselines = {rule: baseline_answers(eval_examples, rule) for rule in RULES}
baseline_scores = {rule: squad_evaluate(answers, eval_examples) for rule, answers in baselines.items()}
for rule, scores in baseline_scores.items():
    print(f"{rule:<34} EM {scores['exact_match']:5.1f}   F1 {scores['f1']:5.1f}")
best_baseline = max(RULES, key=lambda rule: baseline_scores[rule]["f1"])
glue("ch11_best_baseline", best_baseline, display=False)
glue("ch11_best_baseline_f1", baseline_scores[best_baseline]["f1"], display=False)
glue("ch11_first_sentence_f1", baseline_scores["first sentence"]["f1"], display=False)
glue("ch11_best_sentence_f1", baseline_scores["best sentence"]["f1"], display=False)

# %% [markdown]
# The best rule, {glue:text}`ch11_best_baseline`, reaches an F1 of
# {glue:text}`ch11_best_baseline_f1:.1f` on the held-out questions; exact match stays near zero,
# because a sentence is almost never exactly the answer. F1's partial credit rewards a long
# answer that contains the right words, which is why the baselines' F1 is far from zero. For
# scale (published, on SQuAD's own splits): the SQuAD paper reports a simple baseline at 20% F1,
# a logistic regression with hand-made features at 51.0%, and humans at 86.8%
# {cite:p}`rajpurkar2016squad`.
#
# ## 11.8 Fine-tuning MiniLM on SQuAD questions
#
# The recipe is BERT's (Chapter 7): AdamW, a linear warmup over the first 10% of the steps
# and a linear decay to 0, gradient clipping at 1.0, weight decay 0.01 on the weight matrices.
# The run is short ({glue:text}`ch11_steps:d` updates), so it takes small batches of
# {glue:text}`ch11_batch_size:d` windows and a peak learning rate of {glue:text}`ch11_learning_rate:.0e`,
# much higher than the 5e-5 of BERT's SQuAD runs, which made three passes over the 87,599
# train questions in batches of 32 (published, {cite:t}`devlin2019bert`). Three more choices are forced by the budget of the default run,
# and none is needed with `FULL`:
#
# - **Short training windows** of {glue:text}`ch11_train_length:d` tokens with a document stride of
#   {glue:text}`ch11_doc_stride:d`. A training step costs several times an evaluation per token, so
#   the number of training tokens sets the budget.
# - **One window per question, one that holds the answer.** Google's code trains on every
#   window, and teaches the others to point at `[CLS]`. SQuAD v1.1 always has an answer and
#   decoding never picks `[CLS]`, so those windows teach little that the evaluation asks for.
# - **The word-embedding table is frozen** ({glue:text}`ch11_word_params_m:.1f` million of MiniLM's
#   {glue:text}`ch11_all_params_m:.1f` million parameters). It is the largest tensor, its gradient touches only the few hundred words of a
#   batch, and AdamW would still update all of it at every step.
#
# Evaluation uses BERT's windows (384 tokens, stride 128), so most passages are read whole.
# Along the run we score {glue:text}`ch11_n_curve:d` held-out questions
# {glue:text}`ch11_eval_points:d` times, to see F1 grow with the number of training
# questions; the last evaluation scores all held-out questions.

# %%
train_windows = QADataset(train_examples, tokenizer, max_length=TRAIN_LENGTH, doc_stride=DOC_STRIDE)
if ANSWER_WINDOWS_ONLY:  # the first window of each question that holds its whole answer
    chosen, seen = [], set()
    for f, feature in enumerate(train_windows.features):
        if feature["start_positions"] > 0 and feature["example_index"] not in seen:
            seen.add(feature["example_index"])
            chosen.append(f)
else:
    chosen = list(range(len(train_windows)))
train_set = torch.utils.data.Subset(train_windows, chosen)
train_lengths = [train_windows.lengths[f] for f in chosen]
print(f"{len(train_examples):,} questions -> {len(train_windows):,} windows of at most {TRAIN_LENGTH} tokens; "
      f"we train on {len(train_set):,} of them ({sum(train_lengths):,} tokens)")

curve_examples = random.Random(1).sample(eval_examples, N_CURVE)
curve_set = QADataset(curve_examples, tokenizer, max_length=EVAL_LENGTH, doc_stride=EVAL_STRIDE)
steps = EPOCHS * len(train_set) // BATCH_SIZE // EVAL_POINTS * EVAL_POINTS  # a multiple of EVAL_POINTS
all_predictions = {}


def eval_fn(model, step):
    # called every steps // EVAL_POINTS updates; after the last one, predict every held-out question
    last = step == steps
    predictions = predict_answers(model, eval_set if last else curve_set, max_answer_length=MAX_ANSWER_LENGTH)
    if last:
        all_predictions.update(predictions)
    return squad_evaluate(predictions, curve_examples)  # the curve's questions only


set_seed(0)
model = BertForQuestionAnswering.from_pretrained(bertedu.minilm_path())
model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
glue("ch11_word_params_m", model.bert.embeddings.word_embeddings.weight.numel() / 1e6, display=False)
glue("ch11_all_params_m", sum(p.numel() for p in model.parameters()) / 1e6, display=False)
config = TrainingConfig(max_steps=steps, batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE,
                        warmup_steps=steps // 10, weight_decay=0.01, max_grad_norm=1.0,
                        eval_every=steps // EVAL_POINTS, seed=0, progress_bar=False)
train_cpu = time.process_time()
history = train(model, train_set, config, collate_fn=train_windows.collate,
                batch_fn=LengthGroupedBatches(train_lengths), eval_fn=eval_fn)
train_cpu = time.process_time() - train_cpu
print(f"{steps} steps of {BATCH_SIZE} windows in {train_cpu:.0f} CPU-seconds (evaluations included)")

# Chapter 14 reads long passages with this same model: keep it where chapter 14 looks, under a
# name made from every setting of the run (`shared_run_folder`), so a different run is never reused.
run_settings = {"checkpoint": "all-MiniLM-L6-v2", "train_ids": [r["id"] for r in train_examples],
                "train_length": TRAIN_LENGTH, "doc_stride": DOC_STRIDE, "answer_windows_only": ANSWER_WINDOWS_ONLY,
                "steps": steps, "batch_size": BATCH_SIZE, "learning_rate": LEARNING_RATE, "warmup_steps": steps // 10,
                "weight_decay": 0.01, "max_grad_norm": 1.0, "seed": 0, "frozen": "word_embeddings"}
save_shared_run(model, shared_run_folder("squad-minilm", run_settings),
                {"steps": steps, "losses": history.losses, "chapter": 11})

# %%
final = squad_evaluate(all_predictions, eval_examples)
first_sentence = baseline_scores["first sentence"]
print(f"{'':<36}{'EM':>6}{'F1':>7}   on the {len(eval_examples):,} held-out questions")
for rule, scores in baseline_scores.items():
    print(f"baseline: {rule:<26}{scores['exact_match']:6.1f}{scores['f1']:7.1f}")
print(f"{'MiniLM fine-tuned':<36}{final['exact_match']:6.1f}{final['f1']:7.1f}")

# The chapter's targets: F1 >= 30 on the held-out articles, clearly above every baseline.
assert final["f1"] >= 30.0, final
assert final["f1"] > baseline_scores[best_baseline]["f1"] + 5, (final, baseline_scores)
assert all(scores["exact_match"] < 5 for scores in baseline_scores.values())  # sentences are not answers
glue("ch11_em", final["exact_match"], display=False)
glue("ch11_f1", final["f1"], display=False)
glue("ch11_n_train_windows", len(train_set), display=False)
glue("ch11_n_curve", N_CURVE, display=False)
glue("ch11_eval_points", EVAL_POINTS, display=False)
glue("ch11_steps", steps, display=False)
glue("ch11_batch_size", BATCH_SIZE, display=False)
glue("ch11_learning_rate", LEARNING_RATE, display=False)

# %% [markdown]
# Fine-tuned on {glue:text}`ch11_n_train:,d` questions, MiniLM answers the
# {glue:text}`ch11_n_eval:,d` questions of the 10 held-out articles with an exact match of
# {glue:text}`ch11_em:.1f` and an F1 of {glue:text}`ch11_f1:.1f`, against
# {glue:text}`ch11_best_baseline_f1:.1f` for the best baseline.
#
# **With `FULL`.** The published numbers for the full-size setting (train on the 87,599 train
# questions, score all of dev) are BERT-base's EM 80.8 / F1 88.5 and BERT-large's
# 84.1 / 90.9 (published, {cite:t}`devlin2019bert`, Table 2). MiniLM is a 6-layer,
# 384-wide model with {glue:text}`ch11_all_params_m:.1f` million parameters against BERT-base's 110
# million (published), and this checkpoint was further tuned
# to produce sentence embeddings {cite:p}`reimers2019sentence`. Expect it clearly below
# BERT-base; we know of no published SQuAD v1.1 score for this exact checkpoint, so the `FULL`
# run's number is a measurement, not a reproduction.
#
# How fast does F1 grow with the number of training questions? The curve scores the same
# {glue:text}`ch11_n_curve:d` held-out questions after each quarter of the run:

# %% mystnb={"image": {"alt": "Left: F1 on 200 held-out questions against the number of training questions seen, rising from the first evaluation to the last, with the three baselines as horizontal lines below it. Right: the smoothed training loss falling over the run."}}
curve_steps, curve_f1 = history.metric("f1")
questions_seen = [s * BATCH_SIZE for s in curve_steps]
curve_baselines = {rule: squad_evaluate(answers, curve_examples)["f1"] for rule, answers in baselines.items()}
window = min(20, len(history.losses))
smoothed = np.convolve(history.losses, np.ones(window) / window, mode="valid")

fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
left.plot(questions_seen, curve_f1, "o-", lw=2, color="tab:blue", label="MiniLM fine-tuned")
for (rule, f1), style in zip(curve_baselines.items(), [":", "--", "-."]):
    left.axhline(f1, color="gray", ls=style, label=f"baseline: {rule}")
left.set_xlabel("training questions seen")
left.set_ylabel(f"F1 on {N_CURVE} held-out questions")
left.set_ylim(0, max(max(curve_f1) + 10, 50))
left.set_title("F1 against the number of training questions")
left.legend(fontsize=10, loc="lower right")

right.plot(np.arange(window, len(history.losses) + 1) * BATCH_SIZE, smoothed, color="tab:blue")
right.set_xlabel("training questions seen")
right.set_ylabel(f"training loss (mean of {window} steps)")
right.set_title("(start CE + end CE) / 2")
fig.tight_layout()
plt.show()
assert curve_f1[-1] > curve_f1[0], curve_f1  # more questions, better answers
glue("ch11_curve_first", curve_f1[0], display=False)
glue("ch11_curve_first_questions", questions_seen[0], display=False)
glue("ch11_curve_last", curve_f1[-1], display=False)

# %% [markdown]
# After {glue:text}`ch11_curve_first_questions:,d` questions the model scores an F1 of
# {glue:text}`ch11_curve_first:.1f` on these questions, and {glue:text}`ch11_curve_last:.1f` at the
# end of the run. The learning rate decays to 0 over the run, so an early point is not what a
# shorter run would reach (a shorter run would decay sooner), but the trend is clear: more
# questions, better answers. The full train set has 87,599 questions (published),
# {glue:text}`ch11_train_ratio:.0f` times this run's.
#
# ## 11.9 Reading the answers
#
# The $n$ best spans turned into probabilities (a softmax over their scores, as in Google's
# `nbest_predictions.json`) say how sure the model is. Three held-out questions:

# %%
shown = [eval_examples[i] for i in (0, 7, 30)]
shown_set = QADataset(shown, tokenizer, max_length=EVAL_LENGTH, doc_stride=EVAL_STRIDE)
shown_starts, shown_ends = qa_logits(model, shown_set)
for e, r in enumerate(shown):
    features = [f for f, feature in enumerate(shown_set.features) if feature["example_index"] == e]
    spans = best_spans([shown_starts[f] for f in features], [shown_ends[f] for f in features],
                       [shown_set.features[f]["offsets"] for f in features], r["context"], n_best=3,
                       max_answer_length=MAX_ANSWER_LENGTH)
    probabilities = torch.tensor([s["score"] for s in spans]).softmax(0)
    print(f"Q: {r['question']}\n   gold: {sorted(set(r['answers']['text']))}")
    for s, p in zip(spans, probabilities):
        print(f"   {p:.2f}  {s['text']!r}  F1 {squad_f1(s['text'], r['answers']['text']):.2f}")


# %% [markdown]
# Which questions are hard? The held-out questions, grouped by their question word:

# %%
def question_word(question):
    words = normalize_answer(question).split()
    for i, w in enumerate(words):  # the first question word of the question
        if w == "how" and words[i + 1:i + 2] in (["many"], ["much"]):
            return "how many/much"
        if w in ("what", "which", "who", "whom", "whose", "when", "where", "why", "how"):
            return w
    return "other"


groups = collections.defaultdict(list)
for r in eval_examples:
    groups[question_word(r["question"])].append(r)
rows = []
for word, records in groups.items():
    scores = squad_evaluate(all_predictions, records)
    rows.append((word, len(records), scores["exact_match"], scores["f1"]))
print(f"{'question word':<14}{'questions':>10}{'EM':>7}{'F1':>7}")
for word, n, em, f1 in sorted(rows, key=lambda row: -row[3]):
    print(f"{word:<14}{n:>10}{em:7.1f}{f1:7.1f}")

# %% [markdown]
# And some of the misses, where the prediction shares no word with any gold answer:

# %%
misses = [r for r in eval_examples if squad_f1(all_predictions[r["id"]], r["answers"]["text"]) == 0]
for r in random.Random(0).sample(misses, 5):
    print(f"Q: {r['question']}\n   gold: {r['answers']['text'][0]!r}   predicted: {all_predictions[r['id']]!r}")
glue("ch11_miss_share", 100 * len(misses) / len(eval_examples), display=False)

# %% [markdown]
# {glue:text}`ch11_miss_share:.0f`% of the held-out predictions share no word with any gold
# answer. Read the five above with one question in mind: is the predicted span at least of the
# *type* the question asks for (a date for "when", a person for "who", a number for "how
# many")? A model trained on {glue:text}`ch11_n_train:,d` questions learns what an answer looks like before it
# learns to match the question against the passage precisely; that matching is what more data
# and more steps buy.
#
# ```{admonition} Coming from d2l?
# :class: note
# d2l's BERT chapters {cite:p}`zhang2023dive` fine-tune on SNLI with code, and describe question
# answering in a few paragraphs without code: a score for "start" and one for "end" at every
# passage token. What they leave out is most of this chapter: the windows and the
# document stride for long passages, the character offsets that map answers to tokens and back,
# the length limit and the $n$ best at decoding, and SQuAD's normalised exact match and F1.
# Here all of them are built, checked against the library, and run on real SQuAD questions.
# ```
#
# ## Summary
#
# - **Input:** `[CLS] question [SEP] passage [SEP]`, segment 0 for the question and 1 for the
#   passage, so every passage vector can attend to the question.
# - **Head:** two vectors $S$ and $E$ (one linear layer $H \to 2$) give every token a start and an
#   end logit; the loss is the mean of the start and end cross-entropies.
# - **Characters and tokens:** the tokenizer's offsets turn a gold answer's characters into its
#   first and last token, and a predicted token span back into the passage's own text.
# - **Long passages** are cut into overlapping windows that start `doc_stride` tokens apart; a
#   window without the whole answer points at `[CLS]`.
# - **Decoding:** the best span $s_i + e_j$ with $i \le j$, at most `max_answer_length`
#   tokens, passage tokens only, over all windows, and the $n$ best with their probabilities.
# - **Scores:** SQuAD's EM and F1 after the official normalisation, best over the gold
#   answers. Simple sentence baselines get F1 {glue:text}`ch11_best_baseline_f1:.1f` at most on
#   the held-out articles; MiniLM fine-tuned on {glue:text}`ch11_n_train:,d` questions from other
#   articles gets EM {glue:text}`ch11_em:.1f` / F1 {glue:text}`ch11_f1:.1f` (the published
#   BERT-base, trained on all 87,599 train questions: 80.8 / 88.5 on all of dev).
# - This notebook ran in {glue:text}`ch11_cpu_seconds:.0f` CPU-seconds
#   ({glue:text}`ch11_wall_seconds:.0f` s of wall time).
#
# ## Exercises
#
# The exercises for this chapter are the nbgrader assignment
# `exercises/source/11_question_answering/11_question_answering.ipynb`, with reference
# solutions. `make exercises` writes the student version, without them, to
# `exercises/release/11_question_answering/`; instructors, see the guide "Teaching with this book".

# %%
cpu_seconds, wall_seconds = time.process_time() - CPU_START, time.perf_counter() - WALL_START
print(f"this notebook: {cpu_seconds:.0f} CPU-seconds, {wall_seconds:.0f} s wall")
glue("ch11_cpu_seconds", cpu_seconds, display=False)
glue("ch11_wall_seconds", wall_seconds, display=False)
