"""The distillation losses as pure functions of tensors: task loss, KD, its temperature schedule, AD-KD.

:mod:`kdviz.loss_terms` wraps each in a named, weighted term of the training objective.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ATTRIBUTION_DISTANCES = ("mse", "l1", "smooth_l1")


def task_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The supervised loss on the gold labels: cross-entropy, or MSE for a single output (STS-B).

    Args:
        logits: (B, C) class logits, or (B, 1) scores.
        labels: (B,) class ids, or float scores.

    Returns:
        Scalar batch mean.
    """
    if logits.shape[-1] == 1:
        return F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype))
    return F.cross_entropy(logits, labels)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Hinton KD as in the AD-KD release: soft cross-entropy at temperature T, batch mean, no T^2.

    Args:
        student_logits: (B, C); for regression (B, 1).
        teacher_logits: (B, C) or (B, 1), without gradient.
        temperature: T.

    Returns:
        Scalar: ``-sum_c softmax(z_t/T)_c log_softmax(z_s/T)_c`` averaged over the batch, or
        ``MSE(z_s/T, z_t/T)`` for a single output (STS-B).
    """
    teacher_logits = teacher_logits.detach().to(student_logits.dtype)
    if student_logits.shape[-1] == 1:
        return F.mse_loss(student_logits / temperature, teacher_logits / temperature)
    soft_targets = torch.softmax(teacher_logits / temperature, dim=-1)
    return -(soft_targets * torch.log_softmax(student_logits / temperature, dim=-1)).sum(dim=-1).mean()


def annealed_temperature(temperature: float, epoch: float, num_epochs: float) -> float:
    """Temperature annealed linearly from T in the first epoch to 1 in the last.

    Args:
        temperature: T at epoch 0.
        epoch: the current epoch, counted from 0 (fractions allowed).
        num_epochs: number of epochs E.

    Returns:
        ``T - (T - 1) * epoch / (E - 1)``, clamped to [1, T]; T itself when E <= 1.
    """
    if num_epochs <= 1:
        return float(temperature)
    value = temperature - (temperature - 1.0) * epoch / (num_epochs - 1)
    return float(min(max(value, 1.0), temperature)) if temperature >= 1 else float(temperature)


def attribution_loss(
    teacher_scores: torch.Tensor,
    student_scores: torch.Tensor,
    distance: str = "mse",
) -> torch.Tensor:
    """AD-KD's attribution loss between normalised token-score vectors, views summed.

    Args:
        teacher_scores: (B, V, L) normalised teacher scores (zero on padding), no gradient.
        student_scores: (B, V, L) normalised student scores (zero on padding).
        distance: ``"mse"`` (the paper's squared error), ``"l1"`` or ``"smooth_l1"``.

    Returns:
        Scalar: for each view, the distance summed over tokens and examples and divided by the
        number of non-zero teacher scores (the real tokens); summed over views.
    """
    teacher_scores = teacher_scores.detach().to(student_scores.dtype)
    if distance == "mse":
        per_element = (teacher_scores - student_scores).pow(2)
    elif distance == "l1":
        per_element = (teacher_scores - student_scores).abs()
    elif distance == "smooth_l1":
        per_element = F.smooth_l1_loss(student_scores, teacher_scores, reduction="none")
    else:
        raise ValueError(f"Unknown attribution distance {distance!r}; choose from {ATTRIBUTION_DISTANCES}.")
    per_view = per_element.sum(dim=(0, 2))  # (V,)
    real_tokens = (teacher_scores != 0).sum(dim=(0, 2)).clamp_min(1)
    return (per_view / real_tokens).sum()
