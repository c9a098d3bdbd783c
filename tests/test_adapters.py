"""bertedu.adapters: Houlsby bottleneck adapters, what trains in each fine-tuning mode, and
per-task files that hold only the trained tensors."""
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from bertedu import BertConfig, BertForQuestionAnswering, BertForSequenceClassification, BertModel
from bertedu.adapters import (Adapter, AdaptedOutput, add_adapters, load_trainable, mark_trainable,
                              save_trainable, stored_bytes, trainable_and_total_parameters,
                              trainable_state_dict)
from bertedu.training import TrainingConfig, set_seed, train

from tiny_classifier import random_batch, tiny_classifier

CONFIG = BertConfig.tiny(vocab_size=100, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                         num_labels=3)
H, L, M = CONFIG.hidden_size, CONFIG.num_hidden_layers, 8


def classifier(seed=0):
    return tiny_classifier(CONFIG, seed)


def test_adapter_is_the_bottleneck_formula():
    torch.manual_seed(0)
    adapter = Adapter(H, M, init_std=0.1)
    h = torch.randn(2, 5, H)
    expected = h + F.linear(F.gelu(F.linear(h, adapter.down.weight, adapter.down.bias)),
                            adapter.up.weight, adapter.up.bias)
    torch.testing.assert_close(adapter(h), expected)
    assert sum(p.numel() for p in adapter.parameters()) == 2 * M * H + M + H


def test_near_identity_adapters_leave_the_output_unchanged(minilm_dir):
    """The real checkpoint, adapted with the default near-identity start, computes what it did."""
    plain = BertModel.from_pretrained(minilm_dir)
    ids = torch.tensor([[101, 2023, 3185, 2001, 2307, 999, 102], [101, 2025, 2204, 102, 0, 0, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        before = plain(ids, attention_mask=mask)
        # the default start (std 1e-3): every output within a few thousandths (outputs are O(1))
        adapted = add_adapters(BertModel.from_pretrained(minilm_dir), bottleneck_size=64)
        after = adapted(ids, attention_mask=mask)
        torch.testing.assert_close(after.last_hidden_state, before.last_hidden_state, atol=5e-3, rtol=0)
        torch.testing.assert_close(after.pooler_output, before.pooler_output, atol=5e-3, rtol=0)
        # the change shrinks with init_std squared (two small matrices in a row): 1e-5 -> float
        # noise (the extra additions reorder the sums: up to about 6e-5 was seen on O(1) outputs)
        exact = add_adapters(BertModel.from_pretrained(minilm_dir), bottleneck_size=64, init_std=1e-5)
        torch.testing.assert_close(exact(ids, attention_mask=mask).last_hidden_state,
                                   before.last_hidden_state, atol=2e-4, rtol=0)
    # and the adapters are really in the path: large weights change the output
    for module in adapted.modules():
        if isinstance(module, Adapter):
            torch.nn.init.normal_(module.up.weight, std=0.5)
    with torch.no_grad():
        changed = adapted(ids, attention_mask=mask).last_hidden_state
    assert (changed - before.last_hidden_state).abs().max() > 0.1


def test_adapters_sit_before_the_residual_and_layernorm():
    model = add_adapters(classifier(), bottleneck_size=M, init_std=0.2)
    block = model.bert.encoder.layer[0]
    assert isinstance(block.attention.output, AdaptedOutput) and isinstance(block.output, AdaptedOutput)
    out = block.attention.output
    h, x = torch.randn(2, 5, H), torch.randn(2, 5, H)
    expected = out.LayerNorm(x + out.adapter(out.dense(h)))  # eval mode: dropout is the identity
    torch.testing.assert_close(out(h, x), expected)
    # the pretrained tensors keep their names; the adapters are new names beside them
    names = set(model.state_dict())
    assert "bert.encoder.layer.0.attention.output.dense.weight" in names
    assert "bert.encoder.layer.0.output.LayerNorm.bias" in names
    assert "bert.encoder.layer.1.attention.output.adapter.down.weight" in names
    assert "bert.encoder.layer.1.output.adapter.up.bias" in names
    assert sum(".adapter." in n for n in names) == L * 2 * 4  # 2 adapters x (2 weights + 2 biases)


def test_adapters_keep_the_device_dtype_and_mode():
    model = classifier().double().train()
    add_adapters(model, bottleneck_size=M)
    adapters = [m for m in model.modules() if isinstance(m, Adapter)]
    assert len(adapters) == 2 * L
    assert all(a.down.weight.dtype == torch.float64 and a.training for a in adapters)
    model(**random_batch())  # runs in float64 without a dtype error


def test_each_mode_trains_exactly_its_parameters():
    model = add_adapters(classifier(), bottleneck_size=M)
    total = sum(p.numel() for p in model.parameters())

    full = mark_trainable(model, "full")
    assert len(full) == len(list(model.parameters())) and trainable_and_total_parameters(model) == (total, total)

    head = set(mark_trainable(model, "head"))
    assert head == {"bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight", "classifier.bias"}
    assert trainable_and_total_parameters(model) == (H * H + H + H * 3 + 3, total)

    trained = set(mark_trainable(model, "adapters"))
    layernorms = {n for n in trained if "LayerNorm" in n}
    adapters = {n for n in trained if ".adapter." in n}
    assert trained == head | layernorms | adapters
    assert len(layernorms) == 2 * (1 + 2 * L)  # embeddings + two per block, weight and bias
    assert len(adapters) == 4 * 2 * L
    expected = (H * H + H + H * 3 + 3) + 2 * H * (1 + 2 * L) + 2 * L * (2 * M * H + M + H)
    assert trainable_and_total_parameters(model) == (expected, total)
    for name, p in model.named_parameters():
        assert p.requires_grad == (name in trained), name


def test_only_the_marked_parameters_change_in_training():
    model = add_adapters(classifier(), bottleneck_size=M)
    trained = set(mark_trainable(model, "adapters"))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    data = [{"input_ids": torch.randint(1, 100, (6,)), "labels": torch.tensor(i % 3)} for i in range(8)]

    def collate(items):
        return {"input_ids": torch.stack([i["input_ids"] for i in items]),
                "labels": torch.stack([i["labels"] for i in items])}

    train(model, data, TrainingConfig(max_steps=3, batch_size=4, learning_rate=1e-2, progress_bar=False,
                                      device="cpu"), collate_fn=collate)
    for name, p in model.named_parameters():
        moved = not torch.equal(p.detach(), before[name])
        assert moved == (name in trained), f"{name}: changed={moved}, trainable={name in trained}"


def test_save_and_load_round_trip_only_the_task_tensors(tmp_path):
    set_seed(0)
    base = BertForSequenceClassification(CONFIG)
    base_state = {n: t.clone() for n, t in base.state_dict().items()}

    tuned = BertForSequenceClassification(CONFIG)
    tuned.load_state_dict(base_state)
    add_adapters(tuned, bottleneck_size=M, init_std=0.05)
    mark_trainable(tuned, "adapters")
    with torch.no_grad():  # stand-in for training: move every trainable tensor
        for p in tuned.parameters():
            if p.requires_grad:
                p.add_(0.01 * torch.randn_like(p))
    path = save_trainable(tuned, tmp_path / "task.safetensors")
    saved = trainable_state_dict(tuned)
    assert stored_bytes(tuned) == sum(t.numel() * 4 for t in saved.values())
    assert 0 < path.stat().st_size - stored_bytes(tuned) < 10_000  # the tensors plus a header
    assert stored_bytes(tuned) < 0.5 * sum(t.numel() * 4 for t in base_state.values())

    # a fresh copy of the base model + adapters + the task file = the tuned model
    fresh = BertForSequenceClassification(CONFIG)
    fresh.load_state_dict(base_state)
    add_adapters(fresh, bottleneck_size=M)
    loaded = load_trainable(fresh, path)
    assert loaded == sorted(saved)
    tuned.eval(), fresh.eval()
    with torch.no_grad():
        torch.testing.assert_close(fresh(**random_batch()).logits, tuned(**random_batch()).logits, rtol=0, atol=0)


def test_head_only_file_loads_into_a_plain_model(tmp_path):
    tuned = classifier()
    mark_trainable(tuned, "head")
    with torch.no_grad():
        tuned.classifier.weight.add_(1.0)
    path = save_trainable(tuned, tmp_path / "head.safetensors")
    fresh = classifier()  # the same base weights (same seed)
    assert load_trainable(fresh, path) == sorted(["bert.pooler.dense.weight", "bert.pooler.dense.bias",
                                                  "classifier.weight", "classifier.bias"])
    with torch.no_grad():
        torch.testing.assert_close(fresh(**random_batch()).logits, tuned(**random_batch()).logits)


# ---------------------------------------------------------------------------------------
# Bad input


def test_bad_arguments_get_clear_errors():
    with pytest.raises(ValueError, match="bottleneck_size must be a positive int"):
        Adapter(H, 0)
    with pytest.raises(ValueError, match="bottleneck_size must be a positive int"):
        add_adapters(classifier(), bottleneck_size=8.5)
    with pytest.raises(ValueError, match="init_std must be >= 0"):
        Adapter(H, M, init_std=-1.0)
    with pytest.raises(ValueError, match="hidden_act"):
        Adapter(H, M, hidden_act="swish")
    with pytest.raises(ValueError, match="has no BertLayer"):
        add_adapters(torch.nn.Linear(3, 3))
    model = add_adapters(classifier(), bottleneck_size=M)
    with pytest.raises(ValueError, match="already has adapters"):
        add_adapters(model)
    with pytest.raises(ValueError, match="mode must be one of"):
        mark_trainable(model, "lora")
    with pytest.raises(ValueError, match="call add_adapters"):
        mark_trainable(classifier(), "adapters")
    frozen = classifier()
    for p in frozen.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="call mark_trainable"):
        stored_bytes(frozen)


def test_loading_refuses_mismatched_files_and_changes_nothing(tmp_path):
    tuned = add_adapters(classifier(), bottleneck_size=M)
    mark_trainable(tuned, "adapters")
    path = save_trainable(tuned, tmp_path / "task.safetensors")

    with pytest.raises(FileNotFoundError, match="no task file"):
        load_trainable(classifier(), tmp_path / "missing.safetensors")
    plain = classifier(seed=5)
    before = {n: t.clone() for n, t in plain.state_dict().items()}
    with pytest.raises(ValueError, match="call add_adapters"):
        load_trainable(plain, path)
    other = add_adapters(classifier(seed=5), bottleneck_size=2 * M)
    with pytest.raises(ValueError, match="another bottleneck size"):
        load_trainable(other, path)
    three_way = dataclasses.replace(CONFIG, num_labels=5)
    with pytest.raises(ValueError, match="number of labels"):
        load_trainable(add_adapters(BertForSequenceClassification(three_way), bottleneck_size=M), path)
    with pytest.raises(ValueError, match="lacks"):  # a QA model has no classifier
        load_trainable(add_adapters(BertForQuestionAnswering(CONFIG), bottleneck_size=M), path)
    assert all(torch.equal(t, before[n]) for n, t in plain.state_dict().items())  # refused: untouched
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="truncated"):
        load_trainable(tuned, broken)
