"""bertedu.downstream: MLM-only further pretraining, layer-wise rates, pooling choices, external
features and the auxiliary MLM loss, each against a plain computation or a bertedu head."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from bertedu import BertConfig, BertForMaskedLM, BertForPreTraining, BertForSequenceClassification
from bertedu.downstream import (ColumnsDataset, MaskedLMDataset, MultiTaskClassifier, PooledClassifier,
                                layer_depth, layerwise_lr_groups, lexicon_features, masked_lm_accuracy,
                                mlm_loss, pool, pooled_size, token_importance,
                                label_association)
from bertedu.finetuning import SequenceClassificationDataset
from bertedu.pretraining import IGNORE_INDEX, mask_tokens
from bertedu.tokenization import BertTokenizer

WORDS = "a good bad film movie plot dull fun not very".split()
TEXTS = ["a good film", "a very dull movie", "not fun", "a plot", "good good film very bad plot"]


@pytest.fixture
def tokenizer():
    return BertTokenizer(vocab=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS)


def tiny_config(tokenizer, **overrides):
    return BertConfig.tiny(vocab_size=tokenizer.vocab_size, hidden_size=16, num_attention_heads=2,
                           intermediate_size=32, max_position_embeddings=16, hidden_dropout_prob=0.0,
                           attention_probs_dropout_prob=0.0, **overrides)


def pretrained(tokenizer, seed=0):
    torch.manual_seed(seed)
    return BertForPreTraining(tiny_config(tokenizer)).eval()


# ---------------------------------------------------------------------------------------
# MaskedLMDataset, mlm_loss, masked_lm_accuracy
# ---------------------------------------------------------------------------------------
def test_static_masks_stay_dynamic_masks_change_per_epoch(tokenizer):
    static = MaskedLMDataset(tokenizer, TEXTS * 20, masking="static", seed=1)
    dynamic = MaskedLMDataset(tokenizer, TEXTS * 20, masking="dynamic", seed=1)
    first = [static[i]["labels"] for i in range(len(static))]
    static.set_epoch(3)
    assert all(torch.equal(a, static[i]["labels"]) for i, a in enumerate(first))
    epoch0 = [dynamic[i]["input_ids"] for i in range(len(dynamic))]
    assert all(torch.equal(a, dynamic[i]["input_ids"]) for i, a in enumerate(epoch0))  # same epoch, same mask
    dynamic.set_epoch(1)
    assert any(not torch.equal(a, dynamic[i]["input_ids"]) for i, a in enumerate(epoch0))
    dynamic.set_epoch(0)
    assert all(torch.equal(a, dynamic[i]["labels"]) for i, a in enumerate(first))  # epoch 0 = the static masks


def test_masked_lm_items_and_batches(tokenizer):
    data = MaskedLMDataset(tokenizer, TEXTS, masking="static")
    item = data[4]
    ids = tokenizer(TEXTS[4])["input_ids"]
    assert item["labels"][0] == IGNORE_INDEX and item["labels"][-1] == IGNORE_INDEX  # never [CLS] / [SEP]
    chosen = item["labels"] != IGNORE_INDEX
    assert int(chosen.sum()) == max(1, round(0.15 * (len(ids) - 2)))
    assert item["labels"][chosen].tolist() == [ids[i] for i in chosen.nonzero().flatten().tolist()]
    batch = data.collate([data[i] for i in range(5)])
    T = max(data.lengths)
    assert {k: tuple(v.shape) for k, v in batch.items()} == {k: (5, T) for k in
                                                            ("input_ids", "token_type_ids", "attention_mask", "labels")}
    assert batch["attention_mask"].sum(1).tolist() == data.lengths
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()


def test_mlm_loss_equals_the_heads_loss(tokenizer):
    model = pretrained(tokenizer)
    data = MaskedLMDataset(tokenizer, TEXTS, masking="static")
    batch = data.collate([data[i] for i in range(5)])
    assert_close(mlm_loss(model, batch), model(**batch).loss)  # BertForPreTraining, MLM labels only
    masked_lm = BertForMaskedLM(model.config)
    masked_lm.load_state_dict(model.state_dict(), strict=False)
    assert_close(mlm_loss(masked_lm, batch), masked_lm(**batch).loss)


def test_masked_lm_accuracy_counts_only_mask_positions(tokenizer):
    model = pretrained(tokenizer)
    data = MaskedLMDataset(tokenizer, TEXTS * 4, masking="static", probability=0.5)
    batch = data.collate([data[i] for i in range(len(data))])
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits  # (B, T, V)
    shown = (batch["labels"] != IGNORE_INDEX) & (batch["input_ids"] == tokenizer.mask_token_id)
    expected = (logits.argmax(-1)[shown] == batch["labels"][shown]).float().mean().item()
    assert masked_lm_accuracy(model, data, batch_size=3) == pytest.approx(expected)


def test_selective_masks_choose_the_most_important_tokens(tokenizer):
    ids = [tokenizer(t)["input_ids"] for t in TEXTS]
    importance = [torch.arange(len(row), dtype=torch.float) for row in ids]  # later tokens matter more
    for scores in importance:
        scores[-1] = 100.0                                                   # [SEP] is never eligible
    data = MaskedLMDataset(tokenizer, TEXTS, masking="selective", importance=importance, seed=3)
    for i, row in enumerate(ids):
        n = len(row) - 2
        k = max(1, round(0.15 * n))
        chosen = (data[i]["labels"] != IGNORE_INDEX).nonzero().flatten().tolist()
        assert chosen == list(range(len(row) - 1 - k, len(row) - 1)), (i, chosen)  # the k last inner tokens
    data.set_epoch(2)                                                        # selective masks are fixed
    assert all(torch.equal(data[i]["labels"], MaskedLMDataset(tokenizer, TEXTS, masking="selective",
                                                             importance=importance, seed=3)[i]["labels"])
               for i in range(len(TEXTS)))


def test_mask_tokens_without_priority_is_unchanged_and_ties_are_random(tokenizer):
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")["input_ids"]
    plain = mask_tokens(batch, tokenizer, 0.5, torch.Generator().manual_seed(0))
    flat = mask_tokens(batch, tokenizer, 0.5, torch.Generator().manual_seed(0), priority=torch.zeros(batch.shape))
    assert torch.equal(plain[1], flat[1])  # equal priorities: the same random choice as without


def test_token_importance_is_the_confidence_lost_by_deleting_a_piece(tokenizer):
    torch.manual_seed(0)
    model = PooledClassifier(pretrained(tokenizer).bert, pooling="mean").eval()
    text = TEXTS[2]
    scores = token_importance(model, tokenizer, [text, TEXTS[0]], batch_size=4)[0]
    ids = tokenizer(text)["input_ids"]
    assert scores.shape == (len(ids),) and scores[0] == 0 and scores[-1] == 0
    with torch.no_grad():
        full = model(input_ids=torch.tensor([ids])).logits.softmax(-1)[0]
        label = int(full.argmax())
        for i in range(1, len(ids) - 1):
            without = model(input_ids=torch.tensor([ids[:i] + ids[i + 1:]])).logits.softmax(-1)[0]
            assert scores[i].item() == pytest.approx((full[label] - without[label]).item(), abs=1e-5)
    with pytest.raises(ValueError, match="exactly when masking='selective'"):
        MaskedLMDataset(tokenizer, TEXTS, masking="selective")
    with pytest.raises(ValueError, match="one score per WordPiece"):
        MaskedLMDataset(tokenizer, TEXTS, masking="selective", importance=[torch.zeros(2)] * len(TEXTS))


def test_label_association_is_the_smoothed_log_count_ratio(tokenizer):
    texts, labels = ["good good film", "bad film", "bad plot"], [1, 0, 0]
    scores = label_association(tokenizer, texts, labels, smoothing=1.0)
    V = tokenizer.vocab_size
    good, bad, film = tokenizer.convert_tokens_to_ids(["good", "film", "bad"])[0], \
        tokenizer.convert_tokens_to_ids(["bad"])[0], tokenizer.convert_tokens_to_ids(["film"])[0]
    positive_total, negative_total = 3 + V, 4 + V                 # tokens per class + smoothing
    expected_good = abs(math.log((2 + 1) / positive_total) - math.log(1 / negative_total))
    expected_film = abs(math.log((1 + 1) / positive_total) - math.log((1 + 1) / negative_total))
    assert scores[good].item() == pytest.approx(expected_good, rel=1e-5)
    assert scores[film].item() == pytest.approx(expected_film, rel=1e-5)
    assert scores[bad] > scores[film] and scores[tokenizer.cls_token_id] == 0
    with pytest.raises(ValueError, match="0 or 1"):
        label_association(tokenizer, texts, [2, 0, 0])
    with pytest.raises(ValueError, match="as many labels"):
        label_association(tokenizer, texts, [1])


def test_mlm_pieces_refuse_bad_input(tokenizer):
    with pytest.raises(ValueError, match="'static', 'dynamic' or 'selective'"):
        MaskedLMDataset(tokenizer, TEXTS, masking="sometimes")
    with pytest.raises(ValueError, match="non-empty list"):
        MaskedLMDataset(tokenizer, [])
    with pytest.raises(ValueError, match=r"probability must be in \(0, 1\]"):
        MaskedLMDataset(tokenizer, TEXTS, probability=0.0)
    with pytest.raises(ValueError, match="masking='static'"):
        masked_lm_accuracy(pretrained(tokenizer), MaskedLMDataset(tokenizer, TEXTS))
    data = MaskedLMDataset(tokenizer, TEXTS, masking="static")
    batch = data.collate([data[0]])
    with pytest.raises(ValueError, match="needs labels"):
        mlm_loss(pretrained(tokenizer), {k: v for k, v in batch.items() if k != "labels"})
    with pytest.raises(ValueError, match="every label is -100"):
        mlm_loss(pretrained(tokenizer), {**batch, "labels": torch.full_like(batch["labels"], IGNORE_INDEX)})


# ---------------------------------------------------------------------------------------
# Layer-wise learning-rate decay
# ---------------------------------------------------------------------------------------
def test_layer_depths_and_rates(tokenizer):
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config(tokenizer, num_hidden_layers=3))
    assert layer_depth("bert.embeddings.word_embeddings.weight", 3) == 0
    assert layer_depth("bert.encoder.layer.0.attention.self.query.weight", 3) == 1
    assert layer_depth("bert.encoder.layer.2.output.dense.bias", 3) == 3
    assert layer_depth("bert.pooler.dense.weight", 3) == 4
    assert layer_depth("classifier.weight", 3) == 4
    groups = layerwise_lr_groups(model, 1e-3, 0.5)
    assert [g["depth"] for g in groups] == [0, 1, 2, 3, 4]
    assert [g["lr"] for g in groups] == pytest.approx([1e-3 / 16, 1e-3 / 8, 1e-3 / 4, 1e-3 / 2, 1e-3])
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in groups[4]["params"]} == {"bert.pooler.dense.weight", "bert.pooler.dense.bias",
                                                           "classifier.weight", "classifier.bias"}
    assert sum(len(g["params"]) for g in groups) == len(names)
    assert all(g["lr"] == 1e-3 for g in layerwise_lr_groups(model, 1e-3, 1.0))  # decay 1: one rate
    wrapped = PooledClassifier(model.bert)  # its .config is the encoder's
    assert len(layerwise_lr_groups(wrapped, 1e-3, 0.9)) == 5


def test_layerwise_groups_refuse_bad_input(tokenizer):
    model = BertForSequenceClassification(tiny_config(tokenizer))
    for decay in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"decay must be in \(0, 1\]"):
            layerwise_lr_groups(model, 1e-3, decay)
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        layerwise_lr_groups(model, 0.0, 0.9)
    with pytest.raises(ValueError, match="pass num_layers"):
        layerwise_lr_groups(torch.nn.Linear(2, 2), 1e-3, 0.9)
    with pytest.raises(ValueError, match="names block 5"):
        layer_depth("bert.encoder.layer.5.output.dense.bias", 2)


# ---------------------------------------------------------------------------------------
# Pooling and the classifier
# ---------------------------------------------------------------------------------------
def test_pooling_by_hand_and_padding_does_not_change_it(tokenizer):
    model = pretrained(tokenizer)
    short = tokenizer(["a good film"], return_tensors="pt")
    padded = tokenizer(["a good film", "a very dull movie with a plot"], padding=True, return_tensors="pt")
    with torch.no_grad():
        one = model.bert(**short, output_hidden_states=True).hidden_states
        two = model.bert(**padded, output_hidden_states=True).hidden_states
    n = short["input_ids"].size(1)
    assert_close(pool(one, short["attention_mask"], "cls"), one[-1][:, 0])
    assert_close(pool(one, short["attention_mask"], "mean"), one[-1].mean(1))
    assert_close(pool(two, padded["attention_mask"], "mean")[:1], one[-1][:, :n].mean(1), rtol=1e-4, atol=1e-5)
    layers = pool(two, padded["attention_mask"], "cls_layers")
    L, H = model.config.num_hidden_layers, model.config.hidden_size
    assert layers.shape == (2, L * H) == (2, pooled_size(H, L, "cls_layers"))
    assert_close(layers[:, -H:], two[-1][:, 0])
    assert_close(layers[:, :H], two[1][:, 0])
    with pytest.raises(ValueError, match="pooling must be one of"):
        pool(one, short["attention_mask"], "max")
    with pytest.raises(ValueError, match="pooling must be one of"):
        pooled_size(H, L, "first")


def test_pooler_classifier_equals_bert_for_sequence_classification(tokenizer):
    base = pretrained(tokenizer)
    ours = PooledClassifier(copy.deepcopy(base.bert), num_labels=3, pooling="pooler").eval()
    reference = BertForSequenceClassification(tiny_config(tokenizer, num_labels=3)).eval()
    reference.bert.load_state_dict(base.bert.state_dict())
    reference.classifier.load_state_dict(ours.classifier.state_dict())
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    labels = torch.tensor([0, 1, 2, 1, 0])
    mine, theirs = ours(**batch, labels=labels), reference(**batch, labels=labels)
    assert_close(mine.logits, theirs.logits)
    assert_close(mine.loss, theirs.loss)


@pytest.mark.parametrize("pooling", ["cls", "mean", "cls_layers"])
def test_other_poolings_feed_the_linear_layer(tokenizer, pooling):
    base = pretrained(tokenizer)
    model = PooledClassifier(base.bert, pooling=pooling).eval()
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = base.bert(**batch, output_hidden_states=True).hidden_states
        expected = model.classifier(pool(hidden, batch["attention_mask"], pooling))
        assert_close(model(**batch).logits, expected)


def test_external_features_are_concatenated(tokenizer):
    base = pretrained(tokenizer)
    model = PooledClassifier(base.bert, pooling="pooler", num_features=2).eval()
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    features = torch.randn(5, 2)
    with torch.no_grad():
        pooled = base.bert(**batch).pooler_output
        expected = torch.cat([pooled, features], -1) @ model.classifier.weight.T + model.classifier.bias
        assert_close(model(**batch, features=features).logits, expected)
    assert model.classifier.weight.shape == (2, base.config.hidden_size + 2)
    with pytest.raises(ValueError, match="takes 2 external features per example, got none"):
        model(**batch)
    with pytest.raises(ValueError, match=r"shape \[B, F\] = \[5, 2\]"):
        model(**batch, features=torch.zeros(5, 3))
    with pytest.raises(ValueError, match="takes 0 external features"):
        PooledClassifier(base.bert)(**batch, features=features)


def test_classifier_refuses_bad_settings(tokenizer):
    bert = pretrained(tokenizer).bert
    with pytest.raises(ValueError, match="num_labels must be an int >= 2"):
        PooledClassifier(bert, num_labels=1)
    with pytest.raises(ValueError, match="num_features must be an int >= 0"):
        PooledClassifier(bert, num_features=-1)
    with pytest.raises(ValueError, match="pooling must be one of"):
        PooledClassifier(bert, pooling="max")
    from bertedu import BertModel
    with pytest.raises(ValueError, match="needs a BertModel with its pooler"):
        PooledClassifier(BertModel(tiny_config(tokenizer), add_pooling_layer=False), pooling="pooler")


# ---------------------------------------------------------------------------------------
# The auxiliary MLM loss
# ---------------------------------------------------------------------------------------
def test_multitask_loss_is_classification_plus_weighted_mlm(tokenizer):
    base = pretrained(tokenizer)
    classifier = PooledClassifier(copy.deepcopy(base.bert), dropout=0.0)  # no random draws before the mask
    model = MultiTaskClassifier(classifier, copy.deepcopy(base.cls.predictions), tokenizer, mlm_weight=0.3)
    assert model.mlm_head.decoder.weight is classifier.bert.embeddings.word_embeddings.weight
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    labels = torch.tensor([1, 0, 0, 1, 1])
    model.eval()
    assert_close(model(**batch, labels=labels).loss, classifier(**batch, labels=labels).loss)
    model.train()
    torch.manual_seed(7)
    got = model(**batch, labels=labels).loss
    torch.manual_seed(7)
    masked, mlm_labels = mask_tokens(batch["input_ids"], tokenizer)
    hidden = classifier.bert(masked, batch["token_type_ids"], batch["attention_mask"]).last_hidden_state
    chosen = mlm_labels != IGNORE_INDEX
    mlm = F.cross_entropy(base.cls.predictions(hidden[chosen]), mlm_labels[chosen])
    assert_close(got, classifier(**batch, labels=labels).loss + 0.3 * mlm)
    with pytest.raises(ValueError, match="mlm_weight must be > 0"):
        MultiTaskClassifier(classifier, copy.deepcopy(base.cls.predictions), tokenizer, mlm_weight=0.0)


# ---------------------------------------------------------------------------------------
# External features and extra columns
# ---------------------------------------------------------------------------------------
def test_lexicon_features():
    got = lexicon_features(["a good good film", "not a bad film , never"], ["good"], ["bad"])
    expected = torch.tensor([[2, 0, 0, math.log(5)], [0, 1, 2, math.log(7)]], dtype=torch.float32)
    assert_close(got, expected)
    with pytest.raises(ValueError, match="in both lexicons"):
        lexicon_features(["a"], ["good"], ["good"])
    with pytest.raises(ValueError, match="non-empty list"):
        lexicon_features("a good film", ["good"], ["bad"])
    with pytest.raises(ValueError, match="at least one positive and one negative"):
        lexicon_features(["a"], [], ["bad"])


def test_columns_travel_with_the_examples(tokenizer):
    data = SequenceClassificationDataset(tokenizer, TEXTS, labels=[1, 0, 0, 1, 1])
    features = torch.arange(10, dtype=torch.float32).reshape(5, 2)
    teacher = torch.randn(5, 2)
    wrapped = ColumnsDataset(data, features=features, teacher_logits=teacher)
    assert len(wrapped) == 5 and wrapped.lengths == data.lengths
    batch = wrapped.collate([wrapped[i] for i in (3, 1)])
    assert_close(batch["features"], features[[3, 1]])
    assert_close(batch["teacher_logits"], teacher[[3, 1]])
    assert batch["labels"].tolist() == [1, 0]
    assert batch["input_ids"].shape == data.collate([data[3], data[1]])["input_ids"].shape
    with pytest.raises(ValueError, match="has 4 rows but the dataset has 5"):
        ColumnsDataset(data, features=features[:4])
    with pytest.raises(ValueError, match="at least one column"):
        ColumnsDataset(data)
