"""bertedu.pairs: mean pooling, bi-encoder cosine scores, the majority baseline, and the
bi-encoder trained as regression (Sentence-BERT's objective).

The reference for the sentence vectors is sentence-transformers itself, loading the same
all-MiniLM-L6-v2 folder (its modules.json: Transformer -> mean Pooling -> Normalize), and
its `CosineSimilarityLoss` for the regression objective.
"""
import pytest
import torch

from bertedu import BertConfig, BertModel
from bertedu.data import load_stsb
from bertedu.finetuning import predict_logits
from bertedu.pairs import (BiEncoderForSimilarity, SentencePairDataset, cosine_scores, embed_sentences,
                           majority_baseline_scores)
from bertedu.pooling import mean_pool
from bertedu.tokenization import BertTokenizer
from bertedu.training import TrainingConfig, train


@pytest.fixture(scope="module")
def tokenizer(minilm_dir):
    return BertTokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    return BertModel.from_pretrained(minilm_dir).eval()


def test_mean_pool_averages_the_real_tokens_only():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]],
                           [[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]])  # (2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert mean_pool(hidden, mask).tolist() == [[2.0, 3.0], [7.0, 8.0]]


def test_mean_pool_does_not_change_with_padding(minilm, tokenizer):
    alone = tokenizer(["A dog runs."], return_tensors="pt")
    padded = tokenizer(["A dog runs.", "A much longer sentence that forces padding on the first one."],
                       padding=True, return_tensors="pt")
    with torch.no_grad():
        v_alone = mean_pool(minilm(**alone).last_hidden_state, alone["attention_mask"])[0]
        v_padded = mean_pool(minilm(**padded).last_hidden_state, padded["attention_mask"])[0]
    torch.testing.assert_close(v_alone, v_padded, atol=1e-5, rtol=1e-4)


def test_mean_pool_rejects_bad_shapes_and_empty_rows():
    hidden = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError, match=r"\[B, T\] of the same B and T"):
        mean_pool(hidden, torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"must be \[B, T, H\]"):
        mean_pool(torch.zeros(2, 3), torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"rows \[1\] of attention_mask are all 0"):
        mean_pool(hidden, torch.tensor([[1, 1, 0], [0, 0, 0]]))


def test_embeddings_equal_sentence_transformers(minilm, tokenizer, minilm_dir, data_dir):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    reference = sentence_transformers.SentenceTransformer(str(minilm_dir), device="cpu")
    records = load_stsb("dev")[:24]
    sentences = [r["sentence1"] for r in records] + [r["sentence2"] for r in records]
    ours = embed_sentences(minilm, tokenizer, sentences, batch_size=7)
    theirs = torch.as_tensor(reference.encode(sentences, batch_size=7, normalize_embeddings=False))
    # all-MiniLM-L6-v2 ends with a Normalize module: its vectors are ours, scaled to length 1
    torch.testing.assert_close(torch.nn.functional.normalize(ours, dim=-1), theirs, atol=1e-5, rtol=1e-4)
    cosines = cosine_scores(minilm, tokenizer, sentences[:24], sentences[24:])
    torch.testing.assert_close(cosines, (theirs[:24] * theirs[24:]).sum(-1), atol=1e-5, rtol=1e-4)


def test_embed_sentences_keeps_the_order_and_encodes_duplicates_once(tokenizer):
    torch.manual_seed(0)
    model = BertModel(BertConfig.tiny(vocab_size=tokenizer.vocab_size)).train()
    calls = []
    model.register_forward_hook(lambda module, args, kwargs_out: calls.append(1))
    sentences = ["b b b b", "a", "b b b b", "c c"]
    vectors = embed_sentences(model, tokenizer, sentences, batch_size=1)
    assert vectors.shape == (4, model.config.hidden_size)
    assert len(calls) == 3  # three distinct sentences, one per batch
    torch.testing.assert_close(vectors[0], vectors[2])
    assert model.training  # given back in the mode it came in
    one = embed_sentences(model, tokenizer, ["c c"])
    torch.testing.assert_close(one[0], vectors[3], atol=1e-5, rtol=1e-4)


def test_cosine_scores_of_identical_sentences_are_one(minilm, tokenizer):
    scores = cosine_scores(minilm, tokenizer, ["A man is playing a guitar.", "A cat sleeps."],
                           ["A man is playing a guitar.", "The stock market fell sharply."])
    assert scores.shape == (2,)
    assert abs(scores[0].item() - 1.0) < 1e-5
    assert scores[1].item() < 0.3


def test_cosine_scores_reject_bad_input(minilm, tokenizer):
    with pytest.raises(ValueError, match="sentences_a has 2 sentences but sentences_b has 1"):
        cosine_scores(minilm, tokenizer, ["a", "b"], ["c"])
    with pytest.raises(TypeError, match="must be a list of strings"):
        cosine_scores(minilm, tokenizer, "a sentence", "another")
    with pytest.raises(ValueError, match="sentences_a is empty"):
        cosine_scores(minilm, tokenizer, [], [])
    with pytest.raises(TypeError, match=r"sentences\[1\] is a int"):
        embed_sentences(minilm, tokenizer, ["fine", 3])
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        embed_sentences(minilm, tokenizer, ["fine"], batch_size=0)


def test_majority_baseline_scores():
    result = majority_baseline_scores([1, 1, 0, 1], [0, 1, 1])
    assert result["label"] == 1 and result["predictions"] == [1, 1, 1]
    assert result["accuracy"] == pytest.approx(2 / 3)
    assert majority_baseline_scores([0, 1], [1])["label"] == 0  # a tie goes to the smaller id
    with pytest.raises(ValueError, match="at least one"):
        majority_baseline_scores([], [1])
    with pytest.raises(ValueError, match="contains None"):
        majority_baseline_scores([None, None], [1])


# ---------------------------------------------------------------------------------------
# The bi-encoder trained as regression (SentencePairDataset, BiEncoderForSimilarity)
# ---------------------------------------------------------------------------------------
def test_sentence_pair_dataset_tokenizes_each_side_alone_and_pads_each_side(tokenizer):
    ds = SentencePairDataset(tokenizer, ["a dog runs .", "hi"], ["a dog is running in the park .", "hello there"],
                             labels=[0.9, 0.5])
    assert ds[0]["input_ids_a"].tolist() == tokenizer("a dog runs .")["input_ids"]
    assert ds[0]["input_ids_b"].tolist() == tokenizer("a dog is running in the park .")["input_ids"]
    assert ds.lengths == [len(ds[0]["input_ids_a"]) + len(ds[0]["input_ids_b"]),
                          len(ds[1]["input_ids_a"]) + len(ds[1]["input_ids_b"])]
    batch = ds.collate([ds[0], ds[1]])
    assert sorted(batch) == ["attention_mask_a", "attention_mask_b", "input_ids_a", "input_ids_b", "labels"]
    assert batch["input_ids_a"].shape == (2, 6) and batch["input_ids_b"].shape == (2, 10)
    assert batch["attention_mask_a"][1].tolist() == [1, 1, 1, 0, 0, 0]
    assert batch["input_ids_a"][1, 3:].tolist() == [tokenizer.pad_token_id] * 3
    assert batch["labels"].dtype == torch.float32 and batch["labels"].tolist() == pytest.approx([0.9, 0.5])
    unlabelled = SentencePairDataset(tokenizer, ["a"], ["b"])
    assert "labels" not in unlabelled.collate([unlabelled[0]])
    cut = SentencePairDataset(tokenizer, ["one two three four five six"], ["x"], max_length=4)
    assert len(cut[0]["input_ids_a"]) == 4


def test_sentence_pair_dataset_rejects_bad_input(tokenizer):
    with pytest.raises(ValueError, match="sentences_a has 2 sentences but sentences_b has 1"):
        SentencePairDataset(tokenizer, ["a", "b"], ["c"])
    with pytest.raises(ValueError, match="labels has 1 items but there are 2 pairs"):
        SentencePairDataset(tokenizer, ["a", "b"], ["c", "d"], labels=[0.5])
    with pytest.raises(ValueError, match=r"labels\[1\] = nan"):
        SentencePairDataset(tokenizer, ["a", "b"], ["c", "d"], labels=[0.5, float("nan")])
    with pytest.raises(ValueError, match=r"labels\[0\] = None"):
        SentencePairDataset(tokenizer, ["a"], ["c"], labels=[None])
    with pytest.raises(TypeError, match="must be a list of strings"):
        SentencePairDataset(tokenizer, "a", "b")
    ds = SentencePairDataset(tokenizer, ["a"], ["b"], labels=[1.0])
    with pytest.raises(ValueError, match="empty list"):
        ds.collate([])


def test_bi_encoder_starts_as_the_zero_shot_scorer(minilm_dir, tokenizer, data_dir):
    records = load_stsb("dev")[:10]
    a, b = [r["sentence1"] for r in records], [r["sentence2"] for r in records]
    model = BiEncoderForSimilarity.from_pretrained(minilm_dir).eval()
    ds = SentencePairDataset(tokenizer, a, b)
    logits = predict_logits(model, ds, batch_size=4, mixed_precision=False)  # fp32, as cosine_scores
    assert logits.shape == (10, 1)
    torch.testing.assert_close(logits[:, 0], cosine_scores(model.bert, tokenizer, a, b), atol=1e-5, rtol=1e-4)


def test_bi_encoder_loss_equals_sentence_transformers_cosine_similarity_loss(minilm_dir, tokenizer, data_dir):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    records = load_stsb("train")[:6]
    a, b = [r["sentence1"] for r in records], [r["sentence2"] for r in records]
    labels = [r["score"] / 5 for r in records]
    model = BiEncoderForSimilarity.from_pretrained(minilm_dir).eval()
    ds = SentencePairDataset(tokenizer, a, b, labels=labels)
    ours = model(**ds.collate([ds[i] for i in range(len(ds))]))
    reference = sentence_transformers.SentenceTransformer(str(minilm_dir), device="cpu").eval()
    try:  # sentence-transformers >= 5.x keeps the losses per model kind
        from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss
    except ImportError:
        from sentence_transformers.losses import CosineSimilarityLoss
    loss_fn = CosineSimilarityLoss(reference)
    features = [reference.tokenize(a), reference.tokenize(b)]
    with torch.no_grad():
        theirs = loss_fn(features, torch.tensor(labels))
    torch.testing.assert_close(ours.loss.detach(), theirs, atol=1e-6, rtol=1e-4)
    # the Normalize module of the reference does not change a cosine
    manual = torch.mean((ours.logits[:, 0] - torch.tensor(labels)) ** 2)
    torch.testing.assert_close(ours.loss, manual)


def test_bi_encoder_training_lowers_the_loss_and_checks_labels(tokenizer):
    torch.manual_seed(0)
    model = BiEncoderForSimilarity(BertModel(BertConfig.tiny(vocab_size=tokenizer.vocab_size)))
    ds = SentencePairDataset(tokenizer, ["a cat", "the stock market", "a dog runs", "rain falls"] * 2,
                             ["a kitten", "a cat", "a dog is running", "the stock market"] * 2,
                             labels=[0.9, 0.0, 1.0, 0.1] * 2)
    config = TrainingConfig(max_steps=30, batch_size=8, learning_rate=1e-3, progress_bar=False)
    history = train(model, ds, config, collate_fn=ds.collate)
    assert history.losses[-1] < history.losses[0] / 2
    batch = ds.collate([ds[0], ds[1]])
    batch["labels"] = torch.zeros(3)
    with pytest.raises(ValueError, match=r"labels has shape \(3,\), expected \(2,\)"):
        model(**batch)
