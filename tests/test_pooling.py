"""bertedu.pooling: the pooling choices and `PooledClassifier`, external features and extra
columns, each against a plain computation or a bertedu head; and `heads.MultiTaskClassifier`,
the auxiliary MLM loss on top of a `PooledClassifier`."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from bertedu import BertForSequenceClassification
from bertedu.finetuning import SequenceClassificationDataset
from bertedu.heads import IGNORE_INDEX, MultiTaskClassifier
from bertedu.pooling import ColumnsDataset, PooledClassifier, lexicon_features, pool, pooled_size
from bertedu.pretraining import mask_tokens
from tiny_vocab_bert import TEXTS, pretrained, small_tokenizer, tiny_config


@pytest.fixture
def tokenizer():
    return small_tokenizer()


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
    with pytest.raises(TypeError, match=r"texts must be a list of strings .*wrap a single sentence"):
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
