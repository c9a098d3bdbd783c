"""bertedu.compression: students from a teacher's layers, ALBERT-style sharing and factorised
embeddings, int8 quantization, magnitude pruning, the measures, and distillation data."""
import copy

import pytest
import torch
from torch import nn

from bertedu import BertConfig, BertModel
from bertedu.compression import (FactorizedEmbedding, Int8Embedding, WithTeacherLogits, factorize_embeddings,
                                 latency_per_batch, magnitude_prune, parameter_count, quantize_dynamic_int8,
                                 quantize_symmetric, share_layers, size_on_disk, sparsity, student_from_teacher)
from bertedu.distillation import distillation_loss, distillation_objective
from bertedu.finetuning import SequenceClassificationDataset
from bertedu.training import TrainingConfig, set_seed, train

from tiny_classifier import random_batch, tiny_classifier

CONFIG = BertConfig.tiny(vocab_size=100, hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                         intermediate_size=64, num_labels=3)


def classifier(seed=0, config=CONFIG):
    return tiny_classifier(config, seed)


def logits(model, b=None):
    with torch.no_grad():
        return model(**(b or random_batch())).logits


def layer_params(config):
    """Parameters of one encoder block: 4 attention projections, 2 feed-forward, 2 LayerNorms."""
    H, I = config.hidden_size, config.intermediate_size
    return 4 * (H * H + H) + (H * I + I) + (I * H + H) + 2 * 2 * H


# ---------------------------------------------------------------------------------------
# Students
# ---------------------------------------------------------------------------------------
def test_a_student_with_every_layer_is_the_teacher():
    teacher = classifier()
    student = student_from_teacher(teacher, layers=[0, 1, 2, 3])
    torch.testing.assert_close(logits(student), logits(teacher), atol=0, rtol=0)
    assert student.bert.encoder.layer[0] is not teacher.bert.encoder.layer[0]  # a copy


def test_a_student_runs_the_kept_layers_in_order():
    teacher = classifier()
    student = student_from_teacher(teacher, layers=[1, 3])
    assert student.config.num_hidden_layers == 2 and student.bert.config.num_hidden_layers == 2
    assert teacher.config.num_hidden_layers == 4  # the teacher's config is untouched
    assert len(teacher.bert.encoder.layer) == 4
    b = random_batch()
    with torch.no_grad():
        x = teacher.bert.embeddings(b["input_ids"], torch.zeros_like(b["input_ids"]))
        mask = (1.0 - b["attention_mask"][:, None, None, :].float()) * torch.finfo(torch.float32).min
        for i in (1, 3):
            x, _ = teacher.bert.encoder.layer[i](x, mask)
        expected = teacher.classifier(teacher.bert.pooler(x))
    torch.testing.assert_close(logits(student, b), expected)
    layer = layer_params(CONFIG)
    assert parameter_count(teacher) - parameter_count(student) == 2 * layer


def test_a_student_of_a_bare_encoder():
    set_seed(0)
    encoder = BertModel(CONFIG)
    student = student_from_teacher(encoder, [0])
    assert isinstance(student, BertModel) and len(student.encoder.layer) == 1


@pytest.mark.parametrize("layers, message", [([], "non-empty"), ([0, 4], "does not exist"),
                                             ([-1], "does not exist"), ([2, 1], "increasing"),
                                             ([1, 1], "increasing"), ("01", "non-empty"),
                                             ([0.0], "does not exist")])
def test_student_refuses_bad_layers(layers, message):
    with pytest.raises(ValueError, match=message):
        student_from_teacher(classifier(), layers)


def test_student_refuses_a_model_without_an_encoder():
    with pytest.raises(ValueError, match="BertModel"):
        student_from_teacher(nn.Linear(3, 3), [0])


# ---------------------------------------------------------------------------------------
# ALBERT: shared layers, factorised embeddings
# ---------------------------------------------------------------------------------------
def test_shared_layers_equal_a_plain_model_whose_layers_all_have_the_same_weights():
    model = classifier()
    shared = share_layers(model, source=2)
    plain = copy.deepcopy(model)
    for layer in plain.bert.encoder.layer:
        layer.load_state_dict(model.bert.encoder.layer[2].state_dict())
    torch.testing.assert_close(logits(shared), logits(plain), atol=0, rtol=0)
    assert parameter_count(model) - parameter_count(shared) == 3 * layer_params(CONFIG)
    assert all(layer is shared.bert.encoder.layer[0] for layer in shared.bert.encoder.layer)
    assert len(model.bert.encoder.layer) == 4 and model.bert.encoder.layer[0] is not model.bert.encoder.layer[1]


def test_shared_layers_can_run_more_times_and_train_as_one():
    shared = share_layers(classifier(), num_layers=6)
    assert shared.config.num_hidden_layers == 6 and len(shared.bert.encoder.layer) == 6
    assert parameter_count(shared) == parameter_count(classifier()) - 3 * layer_params(CONFIG)
    # every use adds to the one gradient
    shared.train()
    out = shared(**random_batch(), labels=torch.tensor([0, 1, 2, 0]))
    out.loss.backward()
    assert shared.bert.encoder.layer[5].intermediate.dense.weight.grad is not None
    # the file stores the block once
    assert size_on_disk(shared) < size_on_disk(classifier()) - 2 * layer_params(CONFIG) * 4


@pytest.mark.parametrize("kwargs, message", [({"num_layers": 0}, "positive"), ({"source": 4}, "not a block"),
                                             ({"num_layers": 2.0}, "positive")])
def test_share_layers_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        share_layers(classifier(), **kwargs)


def test_factorised_embeddings_with_full_size_are_the_plain_table():
    model = classifier()
    H = CONFIG.hidden_size
    full = factorize_embeddings(model, embedding_size=H)
    assert isinstance(full.bert.embeddings.word_embeddings, FactorizedEmbedding)
    torch.testing.assert_close(logits(full), logits(model), atol=1e-4, rtol=1e-4)
    # with an identity projection and the table copied, exactly the plain model
    exact = factorize_embeddings(model, embedding_size=H)
    with torch.no_grad():
        exact.bert.embeddings.word_embeddings.table.weight.copy_(model.bert.embeddings.word_embeddings.weight)
        exact.bert.embeddings.word_embeddings.projection.weight.copy_(torch.eye(H))
    torch.testing.assert_close(logits(exact), logits(model), atol=0, rtol=0)


def test_factorised_embeddings_count_and_best_approximation():
    model = classifier()
    V, H, E = CONFIG.vocab_size, CONFIG.hidden_size, 8
    small = factorize_embeddings(model, E)
    assert parameter_count(model) - parameter_count(small) == V * H - (V * E + E * H)
    emb = small.bert.embeddings.word_embeddings
    approx = emb.table.weight @ emb.projection.weight.T  # (V, H)
    W = model.bert.embeddings.word_embeddings.weight
    S = torch.linalg.svdvals(W)
    # Eckart-Young: the error of the best rank-E approximation is the norm of the other singular values
    torch.testing.assert_close(torch.linalg.norm(W - approx), S[E:].norm(), atol=1e-4, rtol=1e-4)
    assert emb.weight.shape == (V, E)
    rand = factorize_embeddings(model, E, init="random")
    assert rand.bert.embeddings.word_embeddings.table.weight[0].abs().sum() == 0  # the [PAD] row


def test_albert_base_has_albert_base_parameters():
    """ALBERT-base (E = 128, one shared block) has about 12M parameters (Lan et al., table 1)."""
    with torch.device("meta"):
        bert = BertModel(BertConfig.base())
        albert = factorize_embeddings(share_layers(bert), 128, init="random")
    assert parameter_count(bert) == 109_482_240
    V, H, E = 30522, 768, 128
    assert parameter_count(albert) == 109_482_240 - 11 * layer_params(BertConfig.base()) - V * H + V * E + E * H
    assert 11_500_000 < parameter_count(albert) < 12_500_000


@pytest.mark.parametrize("kwargs, message", [({"embedding_size": 0}, "embedding_size"),
                                             ({"embedding_size": 33}, "embedding_size"),
                                             ({"embedding_size": 8, "init": "zeros"}, "init")])
def test_factorize_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        factorize_embeddings(classifier(), **kwargs)


def test_factorize_refuses_twice():
    with pytest.raises(ValueError, match="once"):
        factorize_embeddings(factorize_embeddings(classifier(), 8), 4)


# ---------------------------------------------------------------------------------------
# Quantization
# ---------------------------------------------------------------------------------------
def test_quantize_symmetric_matches_pytorch_int8_weights():
    model = classifier()
    quantized = quantize_dynamic_int8(model)
    dense = model.bert.encoder.layer[0].intermediate.dense
    q, scale = quantize_symmetric(dense.weight)
    theirs = quantized.bert.encoder.layer[0].intermediate.dense.weight()
    assert torch.equal(q, theirs.int_repr())
    torch.testing.assert_close(scale, torch.tensor(theirs.q_scale(), dtype=torch.float32))
    assert (q.float() * scale - dense.weight).abs().max() <= scale / 2 + 1e-7


def test_quantize_symmetric_per_row():
    w = torch.tensor([[1.0, -2.0, 0.5], [0.0, 0.0, 0.0], [10.0, 1.0, -10.0]])
    q, scale = quantize_symmetric(w, dim=0)
    assert q.dtype == torch.int8 and scale.shape == (3,)
    assert q[0].abs().max() >= 127 and q[2].abs().max() >= 127  # each row's extreme uses the whole range
    assert q[0, 2] == 32 and q[2, 1] == 13  # round(0.5 / (2 / 127.5)) and round(1 / (10 / 127.5))
    assert torch.equal(q[1], torch.zeros(3, dtype=torch.int8))
    with pytest.raises(ValueError, match="floating-point"):
        quantize_symmetric(torch.ones(2, 2, dtype=torch.long))


def test_int8_model_is_close_smaller_and_has_the_same_weights():
    model = classifier()
    for embeddings in (False, True):
        quantized = quantize_dynamic_int8(model, embeddings=embeddings)
        torch.testing.assert_close(logits(quantized), logits(model), atol=0.05, rtol=0)
        assert parameter_count(quantized) == parameter_count(model)
        assert not quantized.training
    assert isinstance(quantized.bert.embeddings.word_embeddings, Int8Embedding)
    assert size_on_disk(quantize_dynamic_int8(model, embeddings=True)) < size_on_disk(quantize_dynamic_int8(model))
    assert isinstance(model.bert.encoder.layer[0].intermediate.dense, nn.Linear)  # original untouched


def test_int8_embedding_reads_rows():
    emb = nn.Embedding(10, 6)
    int8 = Int8Embedding(emb)
    ids = torch.tensor([[1, 2], [9, 0]])
    q, scale = quantize_symmetric(emb.weight, dim=0)
    torch.testing.assert_close(int8(ids), (q.float() * scale[:, None])[ids])
    torch.testing.assert_close(int8(ids), emb(ids), atol=float(scale.max()) / 2 + 1e-6, rtol=0)


def test_quantize_refuses_non_float32():
    with pytest.raises(ValueError, match="float32"):
        quantize_dynamic_int8(classifier().double())


# ---------------------------------------------------------------------------------------
# Pruning
# ---------------------------------------------------------------------------------------
def test_pruning_nothing_changes_nothing():
    model = classifier()
    pruned = magnitude_prune(model, 0.0)
    torch.testing.assert_close(logits(pruned), logits(model), atol=0, rtol=0)
    assert sparsity(pruned) == sparsity(model) == 0.0


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_pruning_zeros_the_smallest_encoder_weights(scope):
    model = classifier()
    pruned = magnitude_prune(model, 0.5, scope=scope)
    assert abs(sparsity(pruned) - 0.5) < 1e-3
    assert sparsity(model) == 0.0  # the input is not changed
    before = model.bert.encoder.layer[1].attention.self.query.weight
    after = pruned.bert.encoder.layer[1].attention.self.query.weight
    kept = after != 0
    assert torch.equal(after[kept], before[kept])  # survivors keep their values
    if scope == "layer":
        assert abs(kept.float().mean().item() - 0.5) < 1e-3
        assert before[~kept].abs().max() <= before[kept].abs().min()
    # only the encoder blocks: embeddings and head keep every weight
    assert torch.equal(pruned.classifier.weight, model.classifier.weight)
    assert torch.equal(pruned.bert.embeddings.word_embeddings.weight, model.bert.embeddings.word_embeddings.weight)
    assert not any("weight_orig" in name for name in pruned.state_dict())  # pruning made permanent


def test_global_pruning_uses_one_threshold():
    model = classifier()
    pruned = magnitude_prune(model, 0.3)
    weights = torch.cat([m.weight.flatten() for m in model.bert.encoder.modules() if isinstance(m, nn.Linear)])
    kept = torch.cat([m.weight.flatten() for m in pruned.bert.encoder.modules() if isinstance(m, nn.Linear)]) != 0
    assert weights[~kept].abs().max() <= weights[kept].abs().min()


@pytest.mark.parametrize("amount, scope, message", [(1.0, "global", r"\[0, 1\)"), (-0.1, "global", r"\[0, 1\)"),
                                                    (True, "global", "fraction"), (0.5, "rows", "scope")])
def test_pruning_refuses_bad_arguments(amount, scope, message):
    with pytest.raises(ValueError, match=message):
        magnitude_prune(classifier(), amount, scope)


# ---------------------------------------------------------------------------------------
# Measures
# ---------------------------------------------------------------------------------------
def test_parameter_count_counts_shared_tensors_once():
    model = classifier()
    assert parameter_count(model) == sum(p.numel() for p in model.parameters())
    V, H = CONFIG.vocab_size, CONFIG.hidden_size
    embeddings = V * H + CONFIG.max_position_embeddings * H + 2 * H + 2 * H
    head = H * H + H + H * 3 + 3
    assert parameter_count(model) == embeddings + 4 * layer_params(CONFIG) + head


def test_size_on_disk_is_about_four_bytes_per_weight():
    model = classifier()
    size = size_on_disk(model)
    assert 4 * parameter_count(model) < size < 4 * parameter_count(model) + 100_000


def test_latency_is_positive_and_refuses_bad_input():
    model = classifier().train()
    seconds = latency_per_batch(model, {**random_batch(), "labels": torch.zeros(4, dtype=torch.long)}, repeats=2)
    assert seconds > 0 and model.training  # mode given back
    with pytest.raises(ValueError, match="repeats"):
        latency_per_batch(model, random_batch(), repeats=0)
    with pytest.raises(ValueError, match="input_ids"):
        latency_per_batch(model, {"x": 1})


# ---------------------------------------------------------------------------------------
# Distillation data
# ---------------------------------------------------------------------------------------
class TinyTokenizer:
    pad_token_id = 0

    def __call__(self, texts, pairs=None, truncation=True, max_length=128):
        ids = [[2] + [3 + len(w) % 90 for w in t.split()] + [1] for t in texts]
        return {"input_ids": ids, "token_type_ids": [[0] * len(i) for i in ids]}


def distill_data():
    texts = ["a b c", "dd", "eee f", "g", "hh ii jj kk", "l m"]
    dataset = SequenceClassificationDataset(TinyTokenizer(), texts, [0, 1, 2, 0, 1, 2], num_labels=3)
    teacher = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    return dataset, teacher


def test_with_teacher_logits_collates_and_the_objective_is_the_distillation_loss():
    dataset, teacher = distill_data()
    data = WithTeacherLogits(dataset, teacher)
    assert len(data) == 6 and data.lengths == dataset.lengths
    b = data.collate([data[i] for i in (0, 4)])
    assert b["input_ids"].shape == (2, 6) and torch.equal(b["teacher_logits"], teacher[[0, 4]])
    model = classifier()
    loss = distillation_objective(temperature=3.0, soft_weight=0.7)(model, b)
    inputs = {k: b[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
    expected = distillation_loss(model(**inputs).logits, b["teacher_logits"], b["labels"], 3.0, 0.7)
    torch.testing.assert_close(loss, expected)


def test_distillation_trains_a_student_toward_the_teacher():
    dataset, teacher = distill_data()
    data = WithTeacherLogits(dataset, teacher * 3)
    student = student_from_teacher(classifier(), [0])
    loss_fn = distillation_objective(temperature=1.0, soft_weight=1.0)
    before = loss_fn(student.eval(), data.collate([data[i] for i in range(6)])).item()
    train(student, data, TrainingConfig(max_steps=60, batch_size=6, learning_rate=3e-3, progress_bar=False),
          collate_fn=data.collate, loss_fn=loss_fn)
    after = loss_fn(student.eval(), data.collate([data[i] for i in range(6)])).item()
    assert after < before / 2


def test_distillation_data_refuses_bad_input():
    dataset, teacher = distill_data()
    with pytest.raises(ValueError, match="5 rows but the dataset has 6"):
        WithTeacherLogits(dataset, teacher[:5])
    with pytest.raises(ValueError, match="num_classes"):
        WithTeacherLogits(dataset, teacher[:, 0])
    with pytest.raises(ValueError, match="temperature"):
        distillation_objective(temperature=0.0)
    with pytest.raises(ValueError, match="soft_weight"):
        distillation_objective(soft_weight=1.5)
    with pytest.raises(ValueError, match="teacher_logits"):
        distillation_objective()(classifier(), dataset.collate([dataset[0]]))
