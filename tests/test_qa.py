"""bertedu.qa: SQuAD windows, answer positions through offsets, and best-span decoding.

Hand-made passages with an 16-token vocabulary pin every window and position exactly; the
real SQuAD dev questions check the windows against `transformers.BertTokenizerFast`
(`return_overflowing_tokens` with `stride` = overlap) and the round trip
answer characters -> token positions -> text.
"""
import pytest
import torch
import transformers

from bertedu import BertConfig, BertForQuestionAnswering
from bertedu.data import load_squad
from bertedu.metrics import normalize_answer, squad_evaluate
from bertedu.qa import (QADataset, best_spans, char_span_to_token_span, check_answer, collate_qa, decode_answers,
                        predict_answers, qa_logits)
from bertedu.tokenization import BertTokenizer
from bertedu.training import set_seed

N_SQUAD = 300  # the first 300 dev questions: 14 passages of the first article (Super Bowl 50)
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", ".", "a", "dog", "ran",
         "who", "?"]
CONTEXT = "The cat sat on the mat. A dog ran."
# context tokens: the cat sat on the mat . a dog ran .
#                 0   1   2   3  4   5   6 7 8   9   10


@pytest.fixture(scope="module")
def small_tokenizer():
    return BertTokenizer(vocab=VOCAB)


@pytest.fixture
def small(small_tokenizer):
    """`[CLS] who sat ? [SEP]` + 5 passage tokens + `[SEP]`: three windows, 3 tokens apart."""
    example = {"id": "q1", "context": CONTEXT, "question": "Who sat?",
               "answers": {"text": ["the mat"], "answer_start": [15]}}
    return QADataset([example], small_tokenizer, max_length=11, doc_stride=3)


@pytest.fixture(scope="module")
def tokenizer(minilm_dir):
    return BertTokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def squad(data_dir):
    return load_squad("dev")[:N_SQUAD]


@pytest.fixture(scope="module")
def squad_dataset(squad, tokenizer):
    # Short features, so that many passages need two or three windows.
    return QADataset(squad, tokenizer, max_length=128, doc_stride=64)


# ---------------------------------------------------------------------------------------
# Windows and positions, by hand
# ---------------------------------------------------------------------------------------
def test_windows_start_doc_stride_apart_and_cover_the_passage(small, small_tokenizer):
    tokens = [small_tokenizer.convert_ids_to_tokens(f["input_ids"]) for f in small.features]
    head = ["[CLS]", "who", "sat", "?", "[SEP]"]
    assert tokens == [head + ["the", "cat", "sat", "on", "the", "[SEP]"],
                      head + ["on", "the", "mat", ".", "a", "[SEP]"],
                      head + [".", "a", "dog", "ran", ".", "[SEP]"]]
    assert [f["window"] for f in small.features] == [(0, 5), (3, 8), (6, 11)]
    assert all(f["token_type_ids"] == [0] * 5 + [1] * 6 for f in small.features)
    assert all(f["passage_start"] == 5 and f["example_index"] == 0 for f in small.features)
    assert small.features[1]["offsets"] == [None] * 5 + [(12, 14), (15, 18), (19, 22), (22, 23), (24, 25), None]
    assert small.lengths == [11, 11, 11]


def test_answer_positions_inside_a_window_and_cls_outside(small):
    # "the mat" is context tokens 4-5: whole only in window 1, at feature positions 6-7.
    assert [(f["start_positions"], f["end_positions"]) for f in small.features] == [(0, 0), (6, 7), (0, 0)]
    assert small[1]["start_positions"].item() == 6 and small[1]["end_positions"].item() == 7
    assert [small.answer_positions(f, 15, 22) for f in range(3)] == [(0, 0), (6, 7), (0, 0)]
    assert [small.answer_positions(f, 4, 11) for f in range(3)] == [(6, 7), (0, 0), (0, 0)]  # "cat sat"


def test_the_last_window_ends_with_the_passage(small_tokenizer):
    example = {"context": CONTEXT, "question": "Who sat?", "answers": {"text": ["ran"], "answer_start": [30]}}
    ds = QADataset([example], small_tokenizer, max_length=11, doc_stride=5)  # windows [0, 5), [5, 10), [10, 11)
    assert [f["window"] for f in ds.features] == [(0, 5), (5, 10), (10, 11)]
    assert ds.lengths == [11, 11, 7]
    assert [(f["start_positions"], f["end_positions"]) for f in ds.features] == [(0, 0), (9, 9), (0, 0)]
    assert ds.ids == ["0"]  # no id: the example's index
    one = QADataset([example], small_tokenizer, max_length=64, doc_stride=32)  # everything fits in one window
    assert [f["window"] for f in one.features] == [(0, 11)] and one.features[0]["start_positions"] == 14


def test_char_span_to_token_span_takes_whole_tokens():
    offsets = [None, (0, 3), (4, 7), (7, 10), (11, 18), (19, 22), None]  # [CLS] the den ##ver broncos won [SEP]
    assert char_span_to_token_span(offsets, 4, 18) == (2, 4)  # "denver broncos"
    assert char_span_to_token_span(offsets, 5, 9) == (2, 3)  # "enve": inside tokens, the whole tokens
    with pytest.raises(ValueError, match=r"no token overlaps characters \[3, 4\)"):  # only a space
        char_span_to_token_span(offsets, 3, 4)
    with pytest.raises(ValueError, match="no token overlaps"):
        char_span_to_token_span(offsets, 30, 35)


def test_collate_pads_and_stacks_positions(small_tokenizer):
    example = {"context": CONTEXT, "question": "Who sat?", "answers": {"text": ["ran"], "answer_start": [30]}}
    ds = QADataset([example], small_tokenizer, max_length=11, doc_stride=5)
    batch = ds.collate([ds[1], ds[2]])
    assert batch["input_ids"].shape == (2, 11)
    assert batch["input_ids"][1].tolist() == ds.features[2]["input_ids"] + [0] * 4
    assert batch["attention_mask"][1].tolist() == [1] * 7 + [0] * 4
    assert batch["token_type_ids"][1].tolist() == [0] * 5 + [1] * 2 + [0] * 4
    assert batch["start_positions"].tolist() == [9, 0] and batch["end_positions"].tolist() == [9, 0]
    no_answers = QADataset([{"context": CONTEXT, "question": "Who?"}], small_tokenizer, with_answers=False)
    assert "start_positions" not in no_answers.collate([no_answers[0]])


# ---------------------------------------------------------------------------------------
# Decoding, by hand
# ---------------------------------------------------------------------------------------
def window_logits(**values):
    """11 logits of window 1 ([CLS] who sat ? [SEP] on the mat . a [SEP]), 0 except `values`."""
    names = ["cls", "who", "sat", "q", "sep1", "on", "the", "mat", "dot", "a", "sep2"]
    logits = torch.zeros(11)
    for name, value in values.items():
        logits[names.index(name)] = value
    return logits


def decode_window_1(small, start, end, **kwargs):
    return best_spans([start], [end], [small.features[1]["offsets"]], CONTEXT, **kwargs)


def test_decoding_never_picks_cls_question_or_sep(small):
    start = window_logits(cls=20, who=15, sat=15, sep1=15, on=1, the=5)
    end = window_logits(cls=20, q=15, sep2=30, mat=4, the=1)
    best = decode_window_1(small, start, end, n_best=1)
    assert best == [{"text": "the mat", "score": 9.0, "start_char": 15, "end_char": 22, "window": 0,
                     "start": 6, "end": 7}]


def test_decoding_never_ends_before_it_starts(small):
    # The best start (".") comes after the best end ("the"): the pair is not allowed.
    start = window_logits(on=1, dot=10)
    end = window_logits(the=10, a=2)
    spans = decode_window_1(small, start, end, n_best=4)
    assert [(s["text"], s["score"]) for s in spans] == [(". A", 12.0), ("on the", 11.0), ("the", 10.0), (".", 10.0)]
    assert all(s["start"] <= s["end"] for s in spans)


def test_decoding_respects_max_answer_length(small):
    start = window_logits(on=5)
    end = window_logits(a=5, mat=3)
    assert decode_window_1(small, start, end, n_best=1)[0]["text"] == "on the mat. A"  # 5 tokens
    assert decode_window_1(small, start, end, n_best=1, max_answer_length=3)[0]["text"] == "on the mat"
    assert decode_window_1(small, start, end, n_best=1, max_answer_length=1)[0]["text"] == "on"
    assert all(s["end"] - s["start"] < 2 for s in decode_window_1(small, start, end, n_best=20, max_answer_length=2))


def test_decoding_takes_the_best_span_over_all_windows_once(small):
    starts, ends = [torch.zeros(11) for _ in range(3)], [torch.zeros(11) for _ in range(3)]
    starts[0][9], ends[0][9] = 3, 3  # window 0, position 9: context token 4, "the" (15-18)
    starts[1][6], ends[1][6] = 2, 2  # window 1, position 6: the same "the", a lower score
    starts[2][7], ends[2][7] = 4, 4  # window 2, position 7: context token 8, "dog"
    offsets = [f["offsets"] for f in small.features]
    spans = best_spans(starts, ends, offsets, CONTEXT, n_best=5)
    assert [(s["text"], s["score"], s["window"]) for s in spans[:2]] == [("dog", 8.0, 2), ("the", 6.0, 0)]
    assert [(s["start_char"], s["end_char"]) for s in spans].count((15, 18)) == 1  # overlap counted once
    assert [s["score"] for s in spans] == sorted((s["score"] for s in spans), reverse=True) and len(spans) == 5
    assert decode_answers(small, starts, ends) == {"q1": "dog"}


def test_decoding_refuses_mismatched_inputs(small):
    offsets = [f["offsets"] for f in small.features]
    with pytest.raises(ValueError, match="one start, end and offsets entry per window: got 2, 3 and 3"):
        best_spans([torch.zeros(11)] * 2, [torch.zeros(11)] * 3, offsets, CONTEXT)
    with pytest.raises(ValueError, match=r"window 0: start_logits \(12,\).*cut off the padding"):
        best_spans([torch.zeros(12)], [torch.zeros(12)], offsets[:1], CONTEXT)
    with pytest.raises(ValueError, match="n_best must be a positive int"):
        best_spans([torch.zeros(11)], [torch.zeros(11)], offsets[:1], CONTEXT, n_best=0)
    with pytest.raises(ValueError, match="the dataset has 3 features but there are 2 start"):
        decode_answers(small, [torch.zeros(11)] * 2, [torch.zeros(11)] * 2)


# ---------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("answers, error, message", [
    ({"text": ["mat"], "answer_start": [40]}, ValueError, r"answer_start=40 runs to character 43, outside the "
                                                          "context of 34 characters"),
    ({"text": ["mat"], "answer_start": [-1]}, ValueError, "outside the context"),
    ({"text": ["mat"], "answer_start": [4]}, ValueError, r"the answer is 'mat' but context\[4:7\] is 'cat'"),
    ({"text": ["the mat", "dog"], "answer_start": [15, 0]}, ValueError, r"answer 1: the answer is 'dog'"),
    ({"text": ["  "], "answer_start": [3]}, ValueError, "must be a non-empty string"),
    ({"text": ["mat"], "answer_start": ["19"]}, TypeError, "answer_start must be an int"),
    ({"text": [], "answer_start": []}, ValueError, "give at least one answer"),
    ({"text": ["mat"], "answer_start": [19, 20]}, ValueError, "1 texts and 2 answer_starts"),
    (None, ValueError, "has no answers"),
])
def test_answers_outside_or_unlike_the_passage_are_refused(small_tokenizer, answers, error, message):
    example = {"id": "bad", "context": CONTEXT, "question": "Where?"}
    if answers is not None:
        example["answers"] = answers
    with pytest.raises(error, match=message) as caught:
        QADataset([example], small_tokenizer)
    assert "'bad'" in str(caught.value)  # the message names the example


def test_bad_settings_and_empty_inputs_are_refused(small_tokenizer):
    example = {"context": CONTEXT, "question": "Who sat?", "answers": {"text": ["ran"], "answer_start": [30]}}
    with pytest.raises(ValueError, match="doc_stride=6 exceeds the 5 passage tokens of a window"):
        QADataset([example], small_tokenizer, max_length=11, doc_stride=6)
    with pytest.raises(ValueError, match="max_length=6 leaves no room for the passage"):
        QADataset([example], small_tokenizer, max_length=6, doc_stride=1)
    with pytest.raises(ValueError, match="examples is empty"):
        QADataset([], small_tokenizer)
    with pytest.raises(ValueError, match="context is empty"):
        QADataset([{**example, "context": " "}], small_tokenizer)
    with pytest.raises(ValueError, match="question is empty"):
        QADataset([{**example, "question": ""}], small_tokenizer)
    with pytest.raises(ValueError, match="has no 'question'"):
        QADataset([{"context": CONTEXT}], small_tokenizer)
    with pytest.raises(ValueError, match="doc_stride must be a positive int"):
        QADataset([example], small_tokenizer, doc_stride=0)
    with pytest.raises(ValueError, match="two examples share an id"):
        QADataset([{**example, "id": "x"}, {**example, "id": "x"}], small_tokenizer, max_length=11, doc_stride=5)
    with pytest.raises(TypeError, match=r"examples\[0\] is a str"):
        QADataset(["What?"], small_tokenizer)
    with pytest.raises(ValueError, match="cannot collate an empty list"):
        collate_qa([], 0)
    assert check_answer(CONTEXT, "ran", 30) == (30, 33)


# ---------------------------------------------------------------------------------------
# Real SQuAD dev questions
# ---------------------------------------------------------------------------------------
def test_windows_equal_transformers_overflowing_tokens(squad, squad_dataset, minilm_dir):
    hf = transformers.BertTokenizerFast.from_pretrained(minilm_dir)
    by_example = {}
    for feature in squad_dataset.features:
        by_example.setdefault(feature["example_index"], []).append(feature)
    assert sum(len(features) > 1 for features in by_example.values()) > 100  # windows are exercised
    for e, example in enumerate(squad):
        features = by_example[e]
        window = 128 - features[0]["passage_start"] - 1  # passage tokens of a full window
        theirs = hf(example["question"], example["context"], truncation="only_second", max_length=128,
                    stride=window - 64, return_overflowing_tokens=True, return_offsets_mapping=True)
        assert len(theirs["input_ids"]) == len(features), e
        for w, feature in enumerate(features):
            assert feature["input_ids"] == theirs["input_ids"][w], (e, w)
            assert feature["token_type_ids"] == theirs["token_type_ids"][w], (e, w)
            expected = [tuple(span) if sequence == 1 else None
                        for span, sequence in zip(theirs["offset_mapping"][w], theirs.sequence_ids(w))]
            assert feature["offsets"] == expected, (e, w)


def test_gold_answers_round_trip_through_token_positions(squad, squad_dataset):
    """Every gold answer -> its token positions in each window that holds it -> the text
    between those tokens' offsets. It comes back character for character exactly when the
    answer starts and ends on token boundaries; otherwise whole tokens stretch it.

    The stretched ones are annotation slips: e.g. the answer "8" (others: "eight") whose
    answer_start points into the score "20–18", so the span is the "8" of "18".
    """
    answers = fits = exact = same_normalized = 0
    stretched = []
    by_example = {}
    for f, feature in enumerate(squad_dataset.features):
        by_example.setdefault(feature["example_index"], []).append(f)
    for e, example in enumerate(squad):
        context = example["context"]
        for text, start in zip(example["answers"]["text"], example["answers"]["answer_start"]):
            start_char, end_char = check_answer(context, text, start)
            answers += 1
            found = False
            for f in by_example[e]:
                s, t = squad_dataset.answer_positions(f, start_char, end_char)
                if (s, t) == (0, 0):
                    continue
                found = True
                offsets = squad_dataset.features[f]["offsets"]
                back = context[offsets[s][0]:offsets[t][1]]
                on_boundaries = offsets[s][0] == start_char and offsets[t][1] == end_char
                assert (back == text) == on_boundaries, (example["id"], text, back)
                assert text in back  # whole tokens can only add characters around it
                exact += back == text
                same_normalized += normalize_answer(back) == normalize_answer(text)
                if back != text:
                    stretched.append((text, back))
            fits += found
    pairs = exact + len(stretched)
    print(f"\n{answers} gold answers of {N_SQUAD} questions, {fits} inside a window; over {pairs} "
          f"(answer, window) pairs: {exact / pairs:.2%} exact, {same_normalized / pairs:.2%} equal after "
          f"normalize_answer; stretched: {sorted(set(stretched))[:8]}")
    assert fits == answers  # a 64-token overlap holds every answer whole in some window
    assert exact / pairs > 0.98  # 1,067 of 1,084; the other 17 cut a word (9 distinct slips)
    assert same_normalized >= exact


def test_gold_positions_decode_to_the_gold_text(squad, squad_dataset):
    """Logits that peak at the first answer's positions (in every window that holds it)
    decode, over all windows, to exactly that answer's recovered text."""
    starts = [torch.zeros(n) for n in squad_dataset.lengths]
    ends = [torch.zeros(n) for n in squad_dataset.lengths]
    for f, feature in enumerate(squad_dataset.features):
        if feature["start_positions"] > 0:
            starts[f][feature["start_positions"]] = 10.0
            ends[f][feature["end_positions"]] = 10.0
    predictions = decode_answers(squad_dataset, starts, ends)
    assert len(predictions) == N_SQUAD
    aligned = 0  # questions whose first answer starts and ends on token boundaries
    for e, example in enumerate(squad):
        text, start = example["answers"]["text"][0], example["answers"]["answer_start"][0]
        offsets = squad_dataset.context_offsets[e]
        first, last = char_span_to_token_span(offsets, start, start + len(text))
        assert predictions[example["id"]] == example["context"][offsets[first][0]:offsets[last][1]]
        aligned += predictions[example["id"]] == text
    scores = squad_evaluate(predictions, squad)
    print(f"\ngold positions decoded: EM {scores['exact_match']:.2f}, F1 {scores['f1']:.2f}; "
          f"{aligned} of {N_SQUAD} first answers on token boundaries")
    assert aligned > 0.95 * N_SQUAD  # 290: the slips of the round-trip test hit 10 first answers
    assert scores["exact_match"] >= 100 * aligned / N_SQUAD  # each of those is an exact match


def test_qa_logits_and_predictions_of_a_model(squad, tokenizer):
    set_seed(0)
    model = BertForQuestionAnswering(BertConfig.tiny(hidden_size=32, num_attention_heads=2, intermediate_size=64))
    ds = QADataset(squad[:6], tokenizer, max_length=96, doc_stride=48)
    assert len(ds) > 6  # some questions have two windows
    starts, ends = qa_logits(model, ds, batch_size=5, mixed_precision=False)
    assert [len(s) for s in starts] == ds.lengths and [len(s) for s in ends] == ds.lengths
    model.eval()
    with torch.no_grad():
        for f in range(len(ds)):
            out = model(ds[f]["input_ids"][None], ds[f]["token_type_ids"][None])
            assert (out.start_logits[0] - starts[f]).abs().max().item() < 1e-5
            assert (out.end_logits[0] - ends[f]).abs().max().item() < 1e-5
    predictions = predict_answers(model, ds, batch_size=5, mixed_precision=False)
    assert sorted(predictions) == sorted(example["id"] for example in squad[:6])
    assert all(predictions[example["id"]] in example["context"] for example in squad[:6])
    loss = model(**ds.collate([ds[f] for f in range(4)])).loss
    assert torch.isfinite(loss)
