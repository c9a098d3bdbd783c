"""The batching protocol: pad_collate's exact outputs, eval_mode, predict, the batch orders."""
import pytest
import torch
from torch import nn

from bertedu.batching import (LengthGroupedBatches, batch_indices, eval_mode, pad_collate, predict,
                              sorted_batches)


def test_pad_collate_pads_each_key_with_its_own_value():
    items = [{"input_ids": torch.tensor([101, 7, 8, 102]), "token_type_ids": torch.tensor([0, 0, 1, 1]),
              "labels": torch.tensor([-100, 3, 4, -100]), "next_sentence_label": torch.tensor(1)},
             {"input_ids": torch.tensor([101, 102]), "token_type_ids": torch.tensor([0, 0]),
              "labels": torch.tensor([-100, -100]), "next_sentence_label": torch.tensor(0)}]
    batch = pad_collate(items, pad_token_id=5)
    assert list(batch) == ["input_ids", "attention_mask", "token_type_ids", "labels", "next_sentence_label"]
    assert batch["input_ids"].tolist() == [[101, 7, 8, 102], [101, 102, 5, 5]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 1, 1], [0, 0, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 3, 4, -100], [-100, -100, -100, -100]]
    assert batch["next_sentence_label"].tolist() == [1, 0]
    assert all(t.dtype == torch.long for t in batch.values())


def test_pad_collate_gives_every_input_ids_key_its_mask_and_stacks_float_scalars():
    items = [{"input_ids_a": torch.tensor([1, 2, 3]), "input_ids_b": torch.tensor([4]), "labels": torch.tensor(0.5)},
             {"input_ids_a": torch.tensor([6]), "input_ids_b": torch.tensor([7, 8]), "labels": torch.tensor(1.0)}]
    batch = pad_collate(items, pad_token_id=0)
    assert batch["input_ids_a"].tolist() == [[1, 2, 3], [6, 0, 0]]
    assert batch["attention_mask_a"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["input_ids_b"].tolist() == [[4, 0], [7, 8]]
    assert batch["attention_mask_b"].tolist() == [[1, 0], [1, 1]]
    assert batch["labels"].dtype == torch.float32 and batch["labels"].tolist() == [0.5, 1.0]


@pytest.mark.parametrize("key", ["labels", "start_positions"])
def test_pad_collate_needs_a_key_on_all_items_or_none(key):
    with_key = {"input_ids": torch.tensor([1, 2]), key: torch.tensor(1)}
    without = {"input_ids": torch.tensor([3])}
    for items in ([with_key, without], [without, with_key]):
        with pytest.raises(ValueError, match=f"1 of the 2 items have {key}: a batch needs all or none"):
            pad_collate(items, 0)
    with pytest.raises(ValueError, match="empty"):
        pad_collate([], 0)


def test_eval_mode_restores_the_mode_even_after_an_error():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).train()
    with eval_mode(model):
        assert not model.training and not model[1].training and not torch.is_grad_enabled()
    assert model.training and torch.is_grad_enabled()
    with pytest.raises(RuntimeError, match="boom"):
        with eval_mode(model):
            raise RuntimeError("boom")
    assert model.training and model[1].training
    model.eval()
    with eval_mode(model):
        pass
    assert not model.training  # given back in the mode it came in


class TinyDataset:
    def __init__(self, lengths):
        self.items = [{"input_ids": torch.arange(1, n + 1), "labels": torch.tensor(i)} for i, n in enumerate(lengths)]
        self.lengths = list(lengths)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return dict(self.items[i])

    def collate(self, items):
        return pad_collate(items, pad_token_id=0)


class TinyModel(nn.Module):
    """Masked mean of an embedding: padding changes nothing; refuses labels (predict drops them)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 3)
        self.dropout = nn.Dropout(0.5)

    def forward(self, input_ids, attention_mask):
        x = self.dropout(self.embed(input_ids)) * attention_mask[..., None]  # (B, T, 3)
        return x.sum(1) / attention_mask.sum(1, keepdim=True)  # (B, 3)


def test_predict_equals_a_hand_loop_in_dataset_order():
    torch.manual_seed(0)
    model, dataset = TinyModel().train(), TinyDataset([5, 2, 9, 2, 7, 1, 3])
    rows = predict(model, dataset, lambda m, batch: m(**batch), batch_size=3)
    assert model.training  # the mode it came in
    model.eval()
    with torch.no_grad():
        by_hand = [model(item["input_ids"][None], torch.ones(1, len(item["input_ids"]), dtype=torch.long))[0]
                   for item in dataset.items]
    assert len(rows) == 7
    for row, expected in zip(rows, by_hand):
        torch.testing.assert_close(row, expected)


def test_predict_rows_of_a_per_token_output_keep_the_batch_length():
    dataset = TinyDataset([5, 2, 9, 2])
    rows = predict(TinyModel(), dataset, lambda m, batch: batch["input_ids"], batch_size=2)
    assert sorted_batches(dataset.lengths, 2) == [[1, 3], [0, 2]]
    assert [row.tolist() for row in rows] == [[1, 2, 3, 4, 5, 0, 0, 0, 0], [1, 2], [1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2]]


def test_length_grouped_batches_unchanged():
    """Frozen values, computed by the code before it moved here from finetuning.py: the
    batches of a re-run chapter must not move."""
    lengths = [3, 9, 1, 7, 5, 5, 2, 8, 4, 6, 1, 9]
    grouped = LengthGroupedBatches(lengths, pool_batches=2)
    assert [grouped(step, 12, 3, seed=0) for step in range(5)] == [
        ([4, 9, 7], 0), ([3, 1, 11], 0), ([2, 10, 6], 0), ([0, 8, 5], 0), ([9, 3, 7], 1)]
    assert batch_indices(0, 12, 3, seed=0) == ([8, 0, 5], 0)


class Regression(nn.Module):
    """TinyModel's summed output regressed on the labels: a loss for `train`."""

    def __init__(self):
        super().__init__()
        self.model = TinyModel()

    def forward(self, input_ids, attention_mask, labels):
        loss = (self.model(input_ids, attention_mask).sum(-1) - labels).pow(2).mean()
        return type("Output", (), {"loss": loss})


def test_train_defaults_to_the_datasets_collate_and_length_grouped_batches():
    from bertedu.training import TrainingConfig, train

    def losses(dataset, **kwargs):
        torch.manual_seed(0)
        return train(Regression(), dataset, config, **kwargs).losses

    dataset = TinyDataset([5, 2, 9, 2, 7, 1, 3, 4])
    config = TrainingConfig(max_steps=4, batch_size=4, learning_rate=1e-2, progress_bar=False, seed=3)
    grouped = losses(dataset, collate_fn=dataset.collate, batch_fn=LengthGroupedBatches(dataset.lengths))
    assert losses(dataset) == grouped
    assert losses(dataset, batch_fn=batch_indices) != grouped
    random_batches = losses(dataset, batch_fn=batch_indices)
    dataset.lengths = None  # no lengths: random batches, as before
    assert losses(dataset) == random_batches
    with pytest.raises(TypeError, match="no collate method: pass collate_fn"):
        train(Regression(), [{"input_ids": torch.tensor([1])}] * 4, config)
