"""bertedu.distillation: the soft-label loss against its definition, written out by hand."""
import pytest
import torch
import torch.nn.functional as F

from bertedu.distillation import distillation_loss, soft_targets


def by_hand(student, teacher, labels, temperature, soft_weight):
    p = torch.softmax(teacher / temperature, -1)
    log_q = torch.log_softmax(student / temperature, -1)
    kl = (p * (p.log() - log_q)).sum(-1).mean() * temperature ** 2
    return soft_weight * kl + (1 - soft_weight) * F.cross_entropy(student, labels)


def test_matches_the_definition():
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(8, 3, generator=g), torch.randn(8, 3, generator=g)
    labels = torch.randint(0, 3, (8,), generator=g)
    for temperature, weight in [(1.0, 0.5), (2.0, 0.9), (4.0, 0.0), (3.0, 1.0)]:
        torch.testing.assert_close(distillation_loss(student, teacher, labels, temperature, weight),
                                   by_hand(student, teacher, labels, temperature, weight))


def test_zero_when_the_student_copies_the_teacher_and_no_labels():
    logits = torch.randn(5, 4)
    assert distillation_loss(logits.clone(), logits).item() == pytest.approx(0.0, abs=1e-6)
    # adding a constant to every logit leaves the softmax, so the loss, unchanged
    assert distillation_loss(logits + 1.0, logits).item() == pytest.approx(0.0, abs=1e-6)
    assert distillation_loss(logits * 2, logits).item() > 1e-3


def test_gradient_reaches_the_student_only():
    student = torch.randn(4, 2, requires_grad=True)
    teacher = torch.randn(4, 2, requires_grad=True)
    distillation_loss(student, teacher, torch.tensor([0, 1, 1, 0])).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None


def test_ignored_labels_and_token_shapes():
    g = torch.Generator().manual_seed(1)
    student, teacher = torch.randn(2, 5, 3, generator=g), torch.randn(2, 5, 3, generator=g)
    labels = torch.randint(0, 3, (2, 5), generator=g)
    labels[0, 3:] = -100
    keep = labels.reshape(-1) != -100
    expected = by_hand(student.reshape(-1, 3)[keep], teacher.reshape(-1, 3)[keep],
                       labels.reshape(-1)[keep], 2.0, 0.5)
    torch.testing.assert_close(distillation_loss(student, teacher, labels), expected)


def test_soft_targets_sum_to_one_and_soften():
    logits = torch.tensor([[4.0, 0.0]])
    assert soft_targets(logits).sum().item() == pytest.approx(1.0)
    assert soft_targets(logits, 4.0)[0, 0] < soft_targets(logits, 1.0)[0, 0]


@pytest.mark.parametrize("kwargs, message", [
    ({"temperature": 0.0}, "temperature"),
    ({"soft_weight": 1.5}, "soft_weight"),
    ({"teacher_logits": torch.zeros(3, 3)}, "same shape"),
    ({"labels": torch.zeros(5, dtype=torch.long)}, "one label per example"),
    ({"labels": torch.full((4,), -100)}, "nothing to learn"),
])
def test_bad_input_says_what_to_fix(kwargs, message):
    args = {"student_logits": torch.zeros(4, 3), "teacher_logits": torch.zeros(4, 3)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        distillation_loss(**args)
