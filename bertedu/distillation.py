"""Knowledge distillation: train a student on a teacher's soft labels (Hinton et al., 2015).

    loss = soft_weight * T^2 * KL(softmax(teacher / T) || softmax(student / T))
           + (1 - soft_weight) * cross_entropy(student, labels)

T^2 keeps the soft term's gradients the same size whatever T is (chapters 12 and 13).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .heads import IGNORE_INDEX


def soft_targets(teacher_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """The teacher's class probabilities at `temperature`: `[B, C]` logits -> `[B, C]` rows summing to 1."""
    _check_temperature(temperature)
    return torch.softmax(teacher_logits.float() / temperature, dim=-1)


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      labels: torch.Tensor | None = None, temperature: float = 2.0,
                      soft_weight: float = 0.5) -> torch.Tensor:
    """The distillation loss above, averaged over the batch, as a scalar tensor.

    Args:
        student_logits: `[B, C]` (or `[B, T, C]` for token tasks: every position is an example).
        teacher_logits: the same shape; no gradient flows into them (they are detached).
        labels: `[B]` (or `[B, T]`) class ids, -100 = ignored; None: the soft term alone.
        temperature: T > 0; 1 = the plain distributions, higher = softer.
        soft_weight: the soft term's share, in [0, 1]; taken as 1 when `labels` is None.
    """
    _check_temperature(temperature)
    if not 0.0 <= soft_weight <= 1.0:
        raise ValueError(f"soft_weight={soft_weight} must lie in [0, 1] (1 = soft labels only)")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} must have the same shape: the same "
                         "examples, in the same order, over the same classes")
    num_classes = student_logits.size(-1)
    student = student_logits.reshape(-1, num_classes)
    teacher = teacher_logits.detach().reshape(-1, num_classes).to(student.dtype)
    keep = torch.ones(student.size(0), dtype=torch.bool, device=student.device)
    if labels is not None:
        if labels.numel() != student.size(0):
            raise ValueError(f"labels have {labels.numel()} entries but the logits hold "
                             f"{student.size(0)} examples; give one label per example (-100 = ignored)")
        labels = labels.reshape(-1)
        keep = labels != IGNORE_INDEX
    if not keep.any():
        raise ValueError("every label is -100: there is nothing to learn from in this batch")
    log_student = F.log_softmax(student[keep] / temperature, dim=-1)
    log_teacher = F.log_softmax(teacher[keep] / temperature, dim=-1)
    soft = F.kl_div(log_student, log_teacher, reduction="batchmean", log_target=True) * temperature ** 2
    if labels is None:
        return soft
    hard = F.cross_entropy(student[keep], labels[keep])
    return soft_weight * soft + (1.0 - soft_weight) * hard


def distillation_objective(temperature: float = 2.0, soft_weight: float = 0.5) -> Callable[[nn.Module, dict], torch.Tensor]:
    """A `loss_fn(model, batch)` for `training.train`: `distillation_loss` on the student's logits,
    `batch["teacher_logits"]` (e.g. from `compression.WithTeacherLogits`) and `batch["labels"]` if any."""
    # Check the settings now, not at the first training step.
    distillation_loss(torch.zeros(1, 2), torch.zeros(1, 2), None, temperature, soft_weight)

    def loss_fn(model: nn.Module, batch: dict) -> torch.Tensor:
        if "teacher_logits" not in batch:
            raise ValueError("the batch has no teacher_logits: wrap the dataset in WithTeacherLogits")
        inputs = {k: v for k, v in batch.items() if k not in ("labels", "teacher_logits")}
        logits = model(**inputs).logits  # (B, C)
        return distillation_loss(logits, batch["teacher_logits"], batch.get("labels"), temperature, soft_weight)

    return loss_fn


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature={temperature} must be > 0 (1 = unchanged, 2-4 is usual)")
