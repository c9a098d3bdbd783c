"""Sliding-window + global attention (bertedu.long_attention): the banded form equals full
attention with the mask, and equals full attention outright when the window covers the input."""
import pytest
import torch

from bertedu import BertConfig, BertForQuestionAnswering, BertModel
from bertedu.long_attention import (attention_score_count, extend_position_embeddings, long_squad_examples,
                                    masked_attention, question_global_mask, sliding_window_attention,
                                    sliding_window_encode, sliding_window_mask, sliding_window_qa_logits)
from bertedu.model import scaled_dot_product_attention
from bertedu.qa import QADataset, check_answer, qa_logits
from bertedu.tokenization import BertTokenizer


def qkv(B=2, A=3, T=37, D=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, A, T, D, generator=g) for _ in range(3)]


# ---------------------------------------------------------------------------------------
# The mask
# ---------------------------------------------------------------------------------------
def test_mask_is_the_band_plus_global_rows_and_columns():
    allowed = sliding_window_mask(5, 1, torch.tensor([1, 0, 0, 0, 0]))
    assert allowed.dtype == torch.bool
    assert allowed.int().tolist() == [[1, 1, 1, 1, 1],
                                      [1, 1, 1, 0, 0],
                                      [1, 1, 1, 1, 0],
                                      [1, 0, 1, 1, 1],
                                      [1, 0, 0, 1, 1]]
    assert sliding_window_mask(4, 2).int().tolist() == [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1], [0, 1, 1, 1]]
    assert sliding_window_mask(6, 5).all()  # a window that covers the sequence keeps every pair


def test_mask_with_one_global_row_per_sequence():
    is_global = torch.zeros(2, 6, dtype=torch.bool)
    is_global[0, 0] = is_global[1, 3] = True
    allowed = sliding_window_mask(6, 1, is_global)
    assert allowed.shape == (2, 6, 6)
    assert allowed[0, 0].all() and allowed[0, :, 0].all() and not allowed[0, 3, 0 + 5]
    assert allowed[1, 3].all() and allowed[1, :, 3].all() and not allowed[1, 0, 5]


@pytest.mark.parametrize("bad", [dict(seq_len=0, window=1), dict(seq_len=4, window=0), dict(seq_len=4, window=1.5),
                                 dict(seq_len=4, window=1, global_mask=torch.zeros(5))])
def test_mask_refuses_bad_arguments(bad):
    with pytest.raises(ValueError):
        sliding_window_mask(**bad)


# ---------------------------------------------------------------------------------------
# The banded implementation
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("window", [1, 2, 3, 5, 8, 12, 36, 50])
def test_banded_equals_full_attention_with_the_mask(window):
    q, k, v = qkv()
    B, A, T, D = q.shape
    keep = torch.ones(B, T, dtype=torch.long)
    keep[1, 30:] = 0  # the second sequence is padded
    is_global = torch.zeros(B, T, dtype=torch.bool)
    is_global[0, [0, 5, 20]] = True  # three global tokens in one row, two in the other
    is_global[1, [0, 1]] = True
    expected = masked_attention(q, k, v, sliding_window_mask(T, window, is_global), keep)
    got = sliding_window_attention(q, k, v, window, is_global, keep)
    real = keep.bool()[:, None, :, None].expand_as(got)  # rows of padding queries are not compared
    torch.testing.assert_close(got[real], expected[real])


@pytest.mark.parametrize("window", [1, 4, 7])
def test_banded_without_global_tokens_or_padding(window):
    q, k, v = qkv(B=1, A=2, T=20, D=4, seed=1)
    torch.testing.assert_close(sliding_window_attention(q, k, v, window),
                               masked_attention(q, k, v, sliding_window_mask(20, window)))


@pytest.mark.parametrize("T", [1, 5, 16, 33])
def test_a_window_that_covers_the_sequence_is_full_attention(T):
    q, k, v = qkv(B=2, A=2, T=T, D=8, seed=T)
    full, _ = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(sliding_window_attention(q, k, v, window=max(T - 1, 1)), full)
    is_global = torch.zeros(2, T, dtype=torch.bool)
    is_global[:, 0] = True  # global tokens change nothing when every pair is kept already
    torch.testing.assert_close(sliding_window_attention(q, k, v, window=T, global_mask=is_global), full)


def test_gradients_equal_full_attention_with_the_mask():
    q, k, v = (x.requires_grad_() for x in qkv(B=1, A=2, T=19, D=4, seed=3))
    is_global = torch.zeros(1, 19, dtype=torch.bool)
    is_global[0, 2] = True
    sliding_window_attention(q, k, v, 3, is_global).square().sum().backward()
    got = [x.grad.clone() for x in (q, k, v)]
    for x in (q, k, v):
        x.grad = None
    masked_attention(q, k, v, sliding_window_mask(19, 3, is_global)).square().sum().backward()
    for g, x in zip(got, (q, k, v)):
        torch.testing.assert_close(g, x.grad)


def test_padding_is_never_global_and_never_read():
    q, k, v = qkv(B=1, A=1, T=10, D=4, seed=4)
    keep = torch.tensor([[1] * 8 + [0, 0]])
    marked = torch.zeros(1, 10, dtype=torch.bool)
    marked[0, 9] = True  # a "global" padding token is ignored
    plain = sliding_window_attention(q, k, v, 2, key_padding_mask=keep)
    torch.testing.assert_close(sliding_window_attention(q, k, v, 2, marked, keep)[:, :, :8], plain[:, :, :8])
    v2 = v.clone()
    v2[:, :, 8:] = 1e3  # changing what padding holds changes no real token's output
    torch.testing.assert_close(sliding_window_attention(q, k, v2, 2, None, keep)[:, :, :8], plain[:, :, :8])


def test_banded_attention_refuses_bad_shapes():
    q, k, v = qkv(B=1, A=1, T=6, D=4)
    with pytest.raises(ValueError, match="window"):
        sliding_window_attention(q, k, v, 0)
    with pytest.raises(ValueError, match="B, A, T, D"):
        sliding_window_attention(q[0], k[0], v[0], 2)
    with pytest.raises(ValueError, match="B, A, T, D"):
        sliding_window_attention(q, k[:, :, :5], v, 2)
    with pytest.raises(ValueError, match="global_mask"):
        sliding_window_attention(q, k, v, 2, global_mask=torch.zeros(1, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="key_padding_mask"):
        sliding_window_attention(q, k, v, 2, key_padding_mask=torch.ones(2, 6))
    with pytest.raises(ValueError, match="allowed"):
        masked_attention(q, k, v, torch.ones(5, 5, dtype=torch.bool))


def test_score_counts():
    assert attention_score_count(4096) == 4096 * 4096
    assert attention_score_count(1024, window=128) == 8 * 128 * 384
    assert attention_score_count(1000, window=128) == 8 * 128 * 384  # padded to whole blocks
    assert attention_score_count(2048, window=128) == 2 * attention_score_count(1024, window=128)  # linear
    assert attention_score_count(1024, window=128, n_global=10) == 8 * 128 * 384 + 2 * 1024 * 10
    with pytest.raises(ValueError):
        attention_score_count(0)
    with pytest.raises(ValueError):
        attention_score_count(10, window=2, n_global=11)


# ---------------------------------------------------------------------------------------
# A real model
# ---------------------------------------------------------------------------------------
def tiny_bert(seed=0, **overrides):
    torch.manual_seed(seed)
    return BertModel(BertConfig.tiny(vocab_size=100, max_position_embeddings=16, **overrides)).eval()


def test_extend_position_embeddings_copies_the_table_end_to_end():
    bert = tiny_bert()
    old = bert.embeddings.position_embeddings.weight.detach().clone()  # (16, H)
    ids = torch.randint(1, 100, (2, 12))
    before = bert(ids).last_hidden_state
    assert extend_position_embeddings(bert, 40) is bert
    new = bert.embeddings.position_embeddings.weight
    assert new.shape == (40, old.shape[1]) and bert.config.max_position_embeddings == 40
    for p in (0, 15, 16, 31, 32, 39):
        torch.testing.assert_close(new[p], old[p % 16])
    torch.testing.assert_close(bert(ids).last_hidden_state, before)  # short inputs: unchanged
    assert bert(torch.randint(1, 100, (1, 40))).last_hidden_state.shape == (1, 40, 128)
    with pytest.raises(ValueError, match="larger"):
        extend_position_embeddings(bert, 40)
    with pytest.raises(TypeError, match="model.bert"):
        extend_position_embeddings(BertForQuestionAnswering(bert.config), 80)


def test_windowed_encoder_equals_the_model_when_the_window_covers_the_input():
    bert = tiny_bert(seed=1)
    ids = torch.randint(1, 100, (2, 14))
    types = torch.zeros_like(ids)
    types[:, 7:] = 1
    mask = torch.ones_like(ids)
    mask[1, 10:] = 0
    expected = bert(ids, types, mask).last_hidden_state
    got = sliding_window_encode(bert, ids, types, mask, window=13)
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real])
    got = sliding_window_encode(bert, ids, types, mask, question_global_mask(types, mask), window=20)
    torch.testing.assert_close(got[real], expected[real])


def test_windowed_encoder_equals_full_attention_with_the_mask_in_every_layer():
    bert = tiny_bert(seed=2)
    ids = torch.randint(1, 100, (1, 16))
    is_global = torch.zeros_like(ids, dtype=torch.bool)
    is_global[0, :2] = True
    allowed = sliding_window_mask(16, 3, is_global)  # (1, T, T)
    additive = (~allowed[:, None]).float() * torch.finfo(torch.float32).min  # (1, 1, T, T)
    x = bert.embeddings(ids, torch.zeros_like(ids))
    bert.set_attention_implementation(False)
    for layer in bert.encoder.layer:  # the library's layer, given the mask as an additive mask
        x, _ = layer(x, additive)
    torch.testing.assert_close(sliding_window_encode(bert, ids, global_attention_mask=is_global, window=3), x)


def test_windowed_encoder_checks_its_inputs():
    bert = tiny_bert()
    with pytest.raises(ValueError, match="max_position_embeddings"):
        sliding_window_encode(bert, torch.ones(1, 20, dtype=torch.long), window=4)
    with pytest.raises(ValueError, match="global_attention_mask"):
        sliding_window_encode(bert, torch.ones(1, 8, dtype=torch.long),
                              global_attention_mask=torch.zeros(1, 7, dtype=torch.bool), window=4)
    with pytest.raises(TypeError, match="model.bert"):
        sliding_window_encode(BertForQuestionAnswering(bert.config), torch.ones(1, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="window"):
        sliding_window_encode(bert, torch.ones(1, 8, dtype=torch.long), window=0)


def test_real_minilm_windowed_equals_full_when_the_window_covers_the_input(minilm_dir):
    tokenizer = BertTokenizer.from_pretrained(minilm_dir)
    bert = BertModel.from_pretrained(minilm_dir).eval()
    batch = tokenizer(["Longformer reads long documents.", "Attention cost grows with the square of the length "
                       "of the input, so long inputs are cut or read with a window."],
                      padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = bert(**batch).last_hidden_state
        T = batch["input_ids"].size(1)
        got = sliding_window_encode(bert, batch["input_ids"], batch["token_type_ids"], batch["attention_mask"],
                                    window=T - 1)
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(got[real], expected[real], atol=1e-5, rtol=1e-4)


def test_question_global_mask():
    types = torch.tensor([[0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]])
    assert question_global_mask(types, mask).int().tolist() == [[1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0]]
    with pytest.raises(ValueError, match="attention_mask"):
        question_global_mask(types, mask[:, :5])


# ---------------------------------------------------------------------------------------
# Long-input question answering
# ---------------------------------------------------------------------------------------
def squad_record(k):
    context = f"Paragraph {k} says fact {k} is number {k * 11} and more words follow here."
    answer = str(k * 11)
    return {"id": f"q{k}", "title": "cats" if k < 4 else "dogs", "question": f"what is fact {k}?",
            "context": context, "answers": {"text": [answer], "answer_start": [context.index(answer)]}}


RECORDS = [squad_record(k) for k in range(6)]  # two articles: four paragraphs on cats, two on dogs


def test_long_examples_keep_the_answer_and_stay_in_the_article(minilm_dir):
    tokenizer = BertTokenizer.from_pretrained(minilm_dir)
    longs = long_squad_examples(RECORDS, tokenizer, min_tokens=40, seed=0)
    assert [r["id"] for r in longs] == [r["id"] for r in RECORDS]
    for short, long in zip(RECORDS, longs):
        assert short["context"] in long["context"] and long["question"] == short["question"]
        for text, start in zip(long["answers"]["text"], long["answers"]["answer_start"]):
            check_answer(long["context"], text, start)
            assert long["context"].index(short["context"]) + short["answers"]["answer_start"][0] == start
        kept = long["context"].split("\n\n")
        assert len(kept) == len(set(kept))
        assert all(p in [r["context"] for r in RECORDS if r["title"] == short["title"]] for p in kept)
    assert len(tokenizer(longs[0]["context"], add_special_tokens=False)["input_ids"]) >= 40
    assert longs == long_squad_examples(RECORDS, tokenizer, min_tokens=40, seed=0)  # seeded
    with pytest.raises(ValueError, match="min_tokens"):
        long_squad_examples(RECORDS, tokenizer, min_tokens=0)
    with pytest.raises(ValueError, match="title"):
        long_squad_examples([{"id": "x", "context": "a", "answers": {}}], tokenizer, min_tokens=5)


def test_windowed_qa_logits_equal_qa_logits_when_the_window_covers_the_input(minilm_dir):
    tokenizer = BertTokenizer.from_pretrained(minilm_dir)
    torch.manual_seed(0)
    model = BertForQuestionAnswering.from_pretrained(minilm_dir)
    dataset = QADataset(long_squad_examples(RECORDS, tokenizer, min_tokens=40), tokenizer, max_length=128,
                        doc_stride=64)
    expected_start, expected_end = qa_logits(model, dataset, batch_size=4, mixed_precision=False)
    got_start, got_end = sliding_window_qa_logits(model, dataset, window=max(dataset.lengths), batch_size=4,
                                                  mixed_precision=False)
    for a, b, c, d in zip(got_start, expected_start, got_end, expected_end):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(c, d, atol=1e-4, rtol=1e-4)
