"""bertedu.finetuning: classification/regression datasets, dynamic padding, length-grouped
batches (a drop-in for training.batch_indices) and batched prediction.

The reference for the padded batches is `transformers.BertTokenizerFast(..., padding=True)`.
"""
import math

import pytest
import torch
import transformers

from bertedu import BertConfig, BertForSequenceClassification
from bertedu import training
from bertedu.data import load_mrpc, load_sst2, load_stsb
from bertedu.finetuning import (LengthGroupedBatches, SequenceClassificationDataset, collate_classification,
                                pad_sequences, padding_fraction, predict_logits, sorted_batches)
from bertedu.tokenization import BertTokenizer
from bertedu.training import TrainingConfig, batch_indices, set_seed, steps_per_epoch


@pytest.fixture(scope="module")
def tokenizer(minilm_dir):
    return BertTokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def hf_tokenizer(minilm_dir):
    return transformers.BertTokenizerFast.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def sst2_dev(tokenizer, data_dir):
    return SequenceClassificationDataset.from_records(load_sst2("dev"), tokenizer)


def tiny_classifier(num_labels=2, seed=0, vocab_size=30522):
    set_seed(seed)
    return BertForSequenceClassification(BertConfig.tiny(
        vocab_size=vocab_size, hidden_size=32, num_attention_heads=2, intermediate_size=64, num_labels=num_labels))


# ---------------------------------------------------------------------------------------
# Datasets and dynamic padding
# ---------------------------------------------------------------------------------------
def test_pad_sequences_pads_on_the_right_to_the_longest():
    out = pad_sequences([[5, 6, 7], torch.tensor([8]), []], padding_value=-1)
    assert out.dtype == torch.long
    assert out.tolist() == [[5, 6, 7], [8, -1, -1], [-1, -1, -1]]


@pytest.mark.parametrize("bad", [["ab"], [[1, [2]]], [[1.5, 2.0]], [torch.ones(2, 2, dtype=torch.long)]])
def test_pad_sequences_refuses_what_is_not_a_flat_list_of_integer_ids(bad):
    # [1.5, 2.0] used to become [1, 2] without a word
    with pytest.raises(TypeError, match=r"sequences\[0\] must be a flat list \(or 1-D tensor\) of integer token ids"):
        pad_sequences(bad, padding_value=0)


def test_items_are_the_tokenizer_encodings_with_their_labels(tokenizer):
    ds = SequenceClassificationDataset(tokenizer, ["a fine film", "dull"], labels=[1, 0])
    assert len(ds) == 2 and ds.lengths == [5, 3]
    assert ds[0]["input_ids"].tolist() == tokenizer("a fine film")["input_ids"]
    assert ds[1]["input_ids"].tolist() == [tokenizer.cls_token_id, tokenizer.vocab["dull"], tokenizer.sep_token_id]
    assert ds[1]["token_type_ids"].tolist() == [0, 0, 0]
    assert ds[0]["labels"].dtype == torch.long and ds[0]["labels"].item() == 1


def test_pairs_get_segment_b_and_regression_gets_float_targets(tokenizer):
    ds = SequenceClassificationDataset(tokenizer, ["a cat", "hi"], labels=[4.25, 0], text_pairs=["the cat sat", "yo"],
                                       num_labels=1)
    enc = tokenizer("a cat", "the cat sat")
    assert ds[0]["input_ids"].tolist() == enc["input_ids"]
    assert ds[0]["token_type_ids"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert ds[0]["labels"].dtype == torch.float32 and ds[0]["labels"].item() == 4.25
    assert ds[1]["labels"].item() == 0.0


def test_collate_pads_each_batch_to_its_own_longest(tokenizer):
    ds = SequenceClassificationDataset(tokenizer, ["a fine film", "dull", "ok ok"], labels=[1, 0, 1])
    batch = ds.collate([ds[1], ds[2]])  # lengths 3 and 4: padded to 4, not to max_length=128
    dull, ok = tokenizer.vocab["dull"], tokenizer.vocab["ok"]
    cls, sep, pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    assert batch["input_ids"].tolist() == [[cls, dull, sep, pad], [cls, ok, ok, sep]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 0], [0, 0, 0, 0]]
    assert batch["labels"].tolist() == [0, 1]
    unlabelled = SequenceClassificationDataset(tokenizer, ["x", "y z"])
    assert "labels" not in unlabelled[0] and sorted(unlabelled.collate([unlabelled[0]])) == [
        "attention_mask", "input_ids", "token_type_ids"]


@pytest.mark.parametrize("loader, keys", [(load_sst2, ("sentence", None)), (load_mrpc, ("sentence1", "sentence2"))])
def test_batches_equal_transformers_padding_on_real_data(tokenizer, hf_tokenizer, data_dir, loader, keys):
    records = loader("dev")[:96]
    ds = SequenceClassificationDataset.from_records(records, tokenizer, *keys, max_length=48)
    texts = [r[keys[0]] for r in records]
    pairs = None if keys[1] is None else [r[keys[1]] for r in records]
    for start in range(0, 96, 32):
        ours = ds.collate([ds[i] for i in range(start, start + 32)])
        theirs = hf_tokenizer(texts[start:start + 32], None if pairs is None else pairs[start:start + 32],
                              padding=True, truncation=True, max_length=48, return_tensors="pt")
        for key in ("input_ids", "token_type_ids", "attention_mask"):
            assert torch.equal(ours[key], theirs[key]), key
        assert ours["labels"].tolist() == [r["label"] for r in records[start:start + 32]]
    assert max(ds.lengths) == 48  # some MRPC/SST-2 inputs were long enough to be cut


def test_from_records_reads_stsb_as_regression(tokenizer, data_dir):
    records = load_stsb("dev")[:10]
    ds = SequenceClassificationDataset.from_records(records, tokenizer, "sentence1", "sentence2", "score",
                                                    num_labels=1)
    assert [ds[i]["labels"].item() for i in range(10)] == pytest.approx([r["score"] for r in records])


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(labels=[0, 2]), ValueError, r"labels\[1\] = 2 is out of range.*\[0, 2\)"),
    (dict(labels=[-1, 0]), ValueError, r"labels\[0\] = -1 is out of range"),
    (dict(labels=[0, 5], num_labels=3), ValueError, r"labels\[1\] = 5 is out of range.*\[0, 3\)"),
    (dict(labels=[0, 1.0]), TypeError, r"labels\[1\] = 1.0 is a float.*num_labels=1"),
    (dict(labels=[0, True]), TypeError, r"labels\[1\] is the bool"),
    (dict(labels=[0, None]), ValueError, r"labels\[1\] is None"),
    (dict(labels=[0.5, float("nan")], num_labels=1), ValueError, r"labels\[1\] = nan.*finite"),
    (dict(labels=[0.5, "3"], num_labels=1), ValueError, r"labels\[1\] = '3'"),
    (dict(labels=[0]), ValueError, "labels has 1 items but texts has 2"),
    (dict(text_pairs=["only one"]), ValueError, "text_pairs has 1 items but texts has 2"),
    (dict(num_labels=0), ValueError, "num_labels must be a positive int"),
])
def test_bad_labels_and_lengths_are_refused(tokenizer, kwargs, error, message):
    with pytest.raises(error, match=message):
        SequenceClassificationDataset(tokenizer, ["first text", "second text"], **kwargs)


def test_empty_and_malformed_inputs_are_refused(tokenizer):
    with pytest.raises(ValueError, match="texts is empty"):
        SequenceClassificationDataset(tokenizer, [])
    with pytest.raises(TypeError, match="texts must be a list of strings"):
        SequenceClassificationDataset(tokenizer, "one string")
    with pytest.raises(ValueError, match="records is empty"):
        SequenceClassificationDataset.from_records([], tokenizer)
    with pytest.raises(ValueError, match=r"no key 'sentence'.*\['label', 'text'\]"):
        SequenceClassificationDataset.from_records([{"text": "hi", "label": 0}], tokenizer)
    with pytest.raises(ValueError, match="cannot collate an empty list"):
        collate_classification([], 0)
    with pytest.raises(ValueError, match="1 of the 2 items have labels"):
        collate_classification([{"input_ids": torch.tensor([1]), "token_type_ids": torch.tensor([0]),
                                 "labels": torch.tensor(0)},
                                {"input_ids": torch.tensor([1]), "token_type_ids": torch.tensor([0])}], 0)


# ---------------------------------------------------------------------------------------
# Length-grouped batches
# ---------------------------------------------------------------------------------------
def test_length_grouped_epochs_cover_the_examples_batch_indices_covers(sst2_dev):
    N, B, seed = len(sst2_dev), 16, 3
    grouped = LengthGroupedBatches(sst2_dev.lengths, pool_batches=10)
    per_epoch = steps_per_epoch(N, B)  # 872 // 16 = 54, 8 examples left out per epoch
    assert per_epoch == 54
    for epoch in range(3):
        ours, theirs = [], []
        for k in range(per_epoch):
            indices, e = grouped(epoch * per_epoch + k, N, B, seed)
            assert e == epoch and len(indices) == B
            ours += indices
            theirs += batch_indices(epoch * per_epoch + k, N, B, seed)[0]
        assert len(set(ours)) == per_epoch * B  # no example twice in an epoch
        assert sorted(ours) == sorted(theirs)  # and the same ones as batch_indices (same left out)


def test_length_grouped_batches_depend_on_the_step_alone(sst2_dev):
    N, B = len(sst2_dev), 16
    in_order = [LengthGroupedBatches(sst2_dev.lengths)(step, N, B, 0) for step in range(120)]
    fresh = LengthGroupedBatches(sst2_dev.lengths)  # a resumed run: new object, steps out of order
    for step in [119, 3, 60, 0, 54, 53]:
        assert fresh(step, N, B, 0) == in_order[step]
    assert in_order[0] != in_order[54]  # epochs differ
    assert LengthGroupedBatches(sst2_dev.lengths)(0, N, B, 1) != in_order[0]  # seeds differ


def test_length_grouped_batches_cut_the_padding(sst2_dev):
    lengths, N, B = sst2_dev.lengths, len(sst2_dev), 16
    per_epoch = steps_per_epoch(N, B)
    random_batches = [batch_indices(step, N, B, 0)[0] for step in range(per_epoch)]
    random_padding = padding_fraction(lengths, random_batches)
    grouped_padding = {}
    for pool_batches in (10, 100):  # 100 > 54 batches per epoch: one pool, the whole epoch sorted
        grouped = LengthGroupedBatches(lengths, pool_batches)
        grouped_padding[pool_batches] = padding_fraction(lengths, [grouped(step, N, B, 0)[0]
                                                                   for step in range(per_epoch)])
    print(f"SST-2 dev, batches of {B}: {random_padding:.1%} padding at random, "
          f"{grouped_padding[10]:.1%} in pools of 10 batches, {grouped_padding[100]:.1%} in one pool")
    assert random_padding > 0.3  # SST-2 lengths vary from 3 to 55 tokens
    assert grouped_padding[10] < random_padding / 3
    assert grouped_padding[100] < grouped_padding[10] / 3


def test_one_pool_per_epoch_sorts_the_whole_epoch():
    lengths = [7, 3, 9, 1, 4, 4, 8, 2, 6, 5]
    grouped = LengthGroupedBatches(lengths, pool_batches=100)
    batches = grouped.epoch_batches(epoch=0, batch_size=3, seed=0)
    kept = sorted(lengths[i] for i in batch_indices(0, 10, 3, 0)[0] + batch_indices(1, 10, 3, 0)[0]
                  + batch_indices(2, 10, 3, 0)[0])
    # The 9 kept lengths in sorted order, cut into 3 batches; only the batch order is random.
    assert sorted(sorted(lengths[i] for i in batch) for batch in batches) == [kept[0:3], kept[3:6], kept[6:9]]


def test_length_grouped_batches_refuse_another_dataset_and_bad_settings():
    grouped = LengthGroupedBatches([3, 4, 5, 6])
    with pytest.raises(ValueError, match="built for 4 lengths, but the dataset has 5"):
        grouped(0, 5, 2, 0)
    with pytest.raises(ValueError, match="fewer than batch_size"):
        grouped(0, 4, 8, 0)
    with pytest.raises(ValueError, match="lengths is empty"):
        LengthGroupedBatches([])
    with pytest.raises(ValueError, match="pool_batches must be a positive int"):
        LengthGroupedBatches([1], pool_batches=0)


def test_sorted_batches_and_padding_fraction_exact():
    assert sorted_batches([5, 2, 9, 2], batch_size=2) == [[1, 3], [0, 2]]
    assert sorted_batches([5, 2, 9], batch_size=2) == [[1, 0], [2]]
    assert padding_fraction([5, 2, 9, 2], [[0, 1], [2, 3]]) == 1 - 18 / 28
    assert padding_fraction([5, 2, 9, 2], [[1, 3], [0, 2]]) == 1 - 18 / 22
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        sorted_batches([1, 2], 0)


def test_train_draws_the_length_grouped_batches():
    """The drop-in works inside `training.train`, gradient accumulation included; it is
    `train`'s default for a dataset with `lengths`."""
    tokenizer = BertTokenizer(vocab=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "word"])
    texts = [" ".join(["word"] * n) for n in [1, 9, 2, 8, 3, 7, 1, 9, 2, 8, 3, 7]]
    ds = SequenceClassificationDataset(tokenizer, texts, labels=[n % 2 for n in range(12)])
    grouped = LengthGroupedBatches(ds.lengths)
    seen = []  # the lengths of every micro-batch train collates

    def collate(items):
        seen.append(sorted(len(item["input_ids"]) for item in items))
        return ds.collate(items)

    config = TrainingConfig(max_steps=6, batch_size=4, gradient_accumulation_steps=2, learning_rate=1e-3,
                            progress_bar=False, seed=5)
    training.train(tiny_classifier(vocab_size=6), ds, config, collate_fn=collate)  # the default batch_fn
    expected, global_batches = [], []
    for step in range(6):
        indices = grouped(step, 12, 4, 5)[0]
        expected += [sorted(ds.lengths[i] for i in indices[m::2]) for m in range(2)]
        global_batches.append(sorted(ds.lengths[i] for i in indices))
    assert seen == expected
    # The 12 lengths sorted and cut in three: each epoch (3 steps) draws these, in some order.
    thirds = [[3, 3, 4, 4], [5, 5, 9, 9], [10, 10, 11, 11]]
    assert sorted(global_batches[:3]) == thirds and sorted(global_batches[3:]) == thirds


# ---------------------------------------------------------------------------------------
# Prediction
# ---------------------------------------------------------------------------------------
def test_predict_logits_equals_one_example_at_a_time_in_dataset_order(tokenizer, data_dir):
    model = tiny_classifier(num_labels=3).train()
    subset = SequenceClassificationDataset.from_records(load_sst2("dev")[:40], tokenizer)
    assert subset.lengths != sorted(subset.lengths)  # so the length-sorted batches reorder
    logits = predict_logits(model, subset, batch_size=16, mixed_precision=False)
    assert logits.shape == (40, 3) and model.training  # the mode it came in is restored
    model.eval()
    with torch.no_grad():
        one_by_one = torch.cat([model(subset[i]["input_ids"][None], subset[i]["token_type_ids"][None]).logits
                                for i in range(40)])
    assert (logits - one_by_one).abs().max().item() < 1e-5  # padding and reordering change nothing


def test_predict_logits_of_a_regression_head(tokenizer):
    ds = SequenceClassificationDataset(tokenizer, ["a b", "c"], labels=[0.5, 2.0], text_pairs=["d", "e f g"],
                                       num_labels=1)
    model = tiny_classifier(num_labels=1)
    logits = predict_logits(model, ds, mixed_precision=False)
    assert logits.shape == (2, 1)
    batch = ds.collate([ds[0], ds[1]])
    loss = model.eval()(**batch).loss  # eval: no dropout, as in predict_logits
    assert math.isclose(loss.item(), ((logits[:, 0] - torch.tensor([0.5, 2.0])) ** 2).mean().item(), rel_tol=1e-5)


# ---------------------------------------------------------------------------------------
# Error analysis and baselines
# ---------------------------------------------------------------------------------------
def test_majority_class_counts_and_breaks_ties_by_the_smaller_id():
    from bertedu.finetuning import majority_class
    assert majority_class([0, 1, 1, 2, 1]) == 1
    assert majority_class(torch.tensor([2, 2, 0, 0])) == 0
    assert majority_class([3]) == 3
    with pytest.raises(ValueError, match="labels is empty"):
        majority_class([])


def test_confident_mistakes_are_the_wrong_predictions_surest_first():
    from bertedu.finetuning import confident_mistakes
    logits = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 0.0], [0.0, 5.0], [0.0, 1.0]])
    labels = [1, 0, 0, 1, 0]  # rows 0, 1 and 4 are wrong
    mistakes = confident_mistakes(logits, labels, k=2)
    assert [m["index"] for m in mistakes] == [1, 0]
    assert mistakes[0] == {"index": 1, "label": 0, "predicted": 1,
                           "confidence": pytest.approx(1 / (1 + math.exp(-3.0)))}
    assert [m["index"] for m in confident_mistakes(logits, labels, k=10)] == [1, 0, 4]
    assert confident_mistakes(logits, [0, 1, 0, 1, 1], k=3) == []  # no mistakes at all
    assert confident_mistakes(logits, labels, k=0) == []


@pytest.mark.parametrize("logits, labels, k, message", [
    (torch.zeros(3), [0, 0, 0], 1, "2-D tensor"),
    (torch.zeros(3, 2), [0, 1], 1, "labels has 2 items but logits has 3 rows"),
    (torch.zeros(2, 2), [0, 2], 1, r"class ids in \[0, 2\)"),
    (torch.zeros(2, 2), [0, -1], 1, r"class ids in \[0, 2\)"),
    (torch.zeros(2, 2), [0, 1], -1, "k must be an int"),
])
def test_confident_mistakes_refuse_bad_input(logits, labels, k, message):
    from bertedu.finetuning import confident_mistakes
    with pytest.raises(ValueError, match=message):
        confident_mistakes(logits, labels, k=k)
