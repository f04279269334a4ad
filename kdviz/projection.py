"""ALP-KD: each student layer matched to an attention-weighted mix of teacher layers, and its hard-mapped variants.

Layer indexing follows ``output_hidden_states``: index 0 is the embedding output, 1..N the
transformer layers. A student layer ``i`` (1..M) attends over the teacher layers its variant allows::

    alpha_ij = softmax_j(<P h^S_i, h^T_j> / tau)      (masked to the allowed j)
    f_i      = sum_j alpha_ij h^T_j
    L_ALP    = sum_i MSE(P h^S_i, f_i)

where ``P`` is a learned linear map when the widths differ (identity otherwise) and ``tau`` is
the score scale (:data:`SCORES`): ``sqrt_h`` divides by sqrt(teacher hidden size), as the public
re-implementation does; ``unscaled`` (tau = 1) is the paper's formula as we read it. On real states
the first gives near-uniform weights, the second near one-hot weights on the layer with the largest
dot products (``benchmarks/alp_score.py``).
Every variant is the same computation with another mask:

- ``alp``: all teacher layers;
- ``alp-no``: contiguous, non-overlapping buckets of teacher layers, one per student layer;
- ``alp-po``: the same buckets widened by ``overlap`` layers on each side;
- ``skip``: student layer i -> teacher layer i*N/M (12->6: 2, 4, ..., 12; 6->2: 3, 6), raw vectors,
  every student layer (the top one too); PKD as published is :mod:`kdviz.layer_baselines`;
- ``last``: student layer i -> teacher layer N-M+i (12->4: 9, 10, 11, 12), likewise.

With ``include_embeddings`` the embedding outputs (layer 0) join on both sides: student layer 0
is matched to teacher layer 0 in the bucket and PKD variants, and may attend to it in ``alp``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

VARIANTS = ("alp", "alp-no", "alp-po", "skip", "last")
REPRESENTATIONS = ("cls", "tokens")
SCORES = ("sqrt_h", "unscaled")


def check_depths(num_student: int, num_teacher: int) -> None:
    """Refuse a student deeper than its teacher (or without layers), naming both depths."""
    if not 1 <= num_student <= num_teacher:
        raise ValueError(f"Need 1 <= student layers <= teacher layers, got {num_student} and {num_teacher}.")


def width_projection(student_hidden: int, teacher_hidden: int) -> nn.Linear | None:
    """The learned map of student vectors to the teacher's width, or None when the widths agree."""
    return nn.Linear(student_hidden, teacher_hidden) if student_hidden != teacher_hidden else None


def teacher_buckets(num_student: int, num_teacher: int) -> list[range]:
    """Contiguous, non-overlapping 1-based teacher-layer buckets, as even as possible, bigger ones first."""
    check_depths(num_student, num_teacher)
    size, extra = divmod(num_teacher, num_student)
    buckets, start = [], 1
    for i in range(num_student):
        stop = start + size + (1 if i < extra else 0)
        buckets.append(range(start, stop))
        start = stop
    return buckets


def layer_mask(
    variant: str, num_student: int, num_teacher: int, *, include_embeddings: bool = False, overlap: int = 1
) -> torch.Tensor:
    """Which teacher layers each student layer may attend to.

    Args:
        variant: one of :data:`VARIANTS`.
        num_student: M, student transformer layers.
        num_teacher: N, teacher transformer layers (N >= M).
        include_embeddings: add layer 0 (the embedding output) on both sides.
        overlap: for ``alp-po``, how many layers each bucket reaches into its neighbours on each side.

    Returns:
        Bool tensor of shape (M', N'): rows are student layers, columns teacher layers, with
        M' = M + 1 and N' = N + 1 (layer 0 first) when ``include_embeddings``, else M and N
        (layers 1..M and 1..N).
    """
    if variant not in VARIANTS:
        raise ValueError(f"Unknown layer-projection variant {variant!r}; choose from {VARIANTS}.")
    check_depths(num_student, num_teacher)
    mask = torch.zeros(num_student + 1, num_teacher + 1, dtype=torch.bool)  # index 0 = embeddings
    if variant == "alp":
        mask[1:, 1:] = True
        mask[1:, 0] = include_embeddings
    elif variant in ("alp-no", "alp-po"):
        widen = overlap if variant == "alp-po" else 0
        if widen < 0:
            raise ValueError(f"overlap must be >= 0, got {overlap}.")
        for i, bucket in enumerate(teacher_buckets(num_student, num_teacher), start=1):
            mask[i, max(1, bucket.start - widen):min(num_teacher, bucket.stop - 1 + widen) + 1] = True
    elif variant == "skip":
        for i in range(1, num_student + 1):
            mask[i, i * num_teacher // num_student] = True
    else:  # last
        for i in range(1, num_student + 1):
            mask[i, num_teacher - num_student + i] = True
    mask[0, 0] = True
    return mask if include_embeddings else mask[1:, 1:]


def layer_indices(num_layers: int, include_embeddings: bool) -> list[int]:
    """The ``hidden_states`` indices a mask's rows or columns stand for (see :func:`layer_mask`)."""
    return list(range(0 if include_embeddings else 1, num_layers + 1))


def stack_layers(
    hidden_states: Sequence[torch.Tensor], layers: Sequence[int], representation: str = "cls"
) -> torch.Tensor:
    """Stack the chosen ``hidden_states`` layers.

    Args:
        hidden_states: ``output_hidden_states``, tensors of shape (B, L, H).
        layers: the indices to stack.
        representation: ``"cls"`` or ``"tokens"``.

    Returns:
        (B, K, H) of [CLS] vectors, or (B, L, K, H) of every token, K = len(layers).
    """
    if representation == "cls":
        return torch.stack([hidden_states[i][:, 0] for i in layers], dim=1)
    return torch.stack([hidden_states[i] for i in layers], dim=2)


@dataclass
class LayerProjectionOutput:
    """What :class:`LayerProjection` returns.

    Attributes:
        loss: scalar, sum over student layers of the MSE to their projected targets.
        alpha: (B, M', N') attention of each student layer over the teacher layers (rows sum to 1;
            for ``tokens`` the mean over each example's real tokens).
        student_layers: the ``hidden_states`` indices of the rows.
        teacher_layers: the ``hidden_states`` indices of the columns.
    """

    loss: torch.Tensor
    alpha: torch.Tensor
    student_layers: list[int]
    teacher_layers: list[int]


class LayerProjection(nn.Module):
    """ALP-KD layer projection and its bucket and PKD variants, as a loss module.

    The only parameters are the width projection (present when the hidden sizes differ); they
    train with the student and belong to the run, not to the exported student.

    Args:
        num_student_layers: M.
        num_teacher_layers: N.
        student_hidden: student hidden size.
        teacher_hidden: teacher hidden size.
        variant: see :data:`VARIANTS`.
        representation: ``"cls"`` (the [CLS] vector of each layer, the paper's setting) or
            ``"tokens"`` (every real token; per-token attention; masked mean of per-token losses).
        include_embeddings: add the embedding outputs (layer 0) on both sides.
        overlap: ``alp-po`` bucket overlap.
        score: the dot products' scale, ``"sqrt_h"`` or ``"unscaled"`` (see :data:`SCORES`).
    """

    def __init__(
        self,
        num_student_layers: int,
        num_teacher_layers: int,
        student_hidden: int,
        teacher_hidden: int,
        *,
        variant: str = "alp",
        representation: str = "cls",
        include_embeddings: bool = False,
        overlap: int = 1,
        score: str = "sqrt_h",
    ):
        super().__init__()
        if representation not in REPRESENTATIONS:
            raise ValueError(f"Unknown representation {representation!r}; choose from {REPRESENTATIONS}.")
        self.variant = variant
        self.representation = representation
        self.include_embeddings = include_embeddings
        if score not in SCORES:
            raise ValueError(f"Unknown ALP score {score!r}; choose from {SCORES}.")
        self.score = score
        self.temperature = math.sqrt(teacher_hidden) if score == "sqrt_h" else 1.0
        self.register_buffer(
            "mask",
            layer_mask(variant, num_student_layers, num_teacher_layers,
                       include_embeddings=include_embeddings, overlap=overlap),
            persistent=False,
        )
        self.student_layers = layer_indices(num_student_layers, include_embeddings)
        self.teacher_layers = layer_indices(num_teacher_layers, include_embeddings)
        self.width_projection = width_projection(student_hidden, teacher_hidden)

    def forward(
        self,
        student_hidden_states: Sequence[torch.Tensor],
        teacher_hidden_states: Sequence[torch.Tensor],
        attention_mask: torch.Tensor | None = None,
    ) -> LayerProjectionOutput:
        """Project the teacher's layers onto each student layer and measure the distance.

        Args:
            student_hidden_states: M + 1 tensors of shape (B, L, H_s), ``output_hidden_states``.
            teacher_hidden_states: N + 1 tensors of shape (B, L, H_t) (or (B, 1, H_t) for the ``"cls"``
                representation, which reads position 0 only); used without gradients.
            attention_mask: (B, L), 1 for real tokens; needed for ``tokens``.

        Returns:
            A :class:`LayerProjectionOutput`.
        """
        student = stack_layers(student_hidden_states, self.student_layers, self.representation)
        with torch.no_grad():
            teacher = stack_layers(teacher_hidden_states, self.teacher_layers, self.representation)
        if self.width_projection is not None:
            student = self.width_projection(student)
        # (..., M, H) x (..., N, H) -> (..., M, N); masked softmax over teacher layers
        scores = student @ teacher.transpose(-1, -2) / self.temperature
        scores = scores.float().masked_fill(~self.mask, float("-inf"))
        alpha = torch.softmax(scores, dim=-1)
        target = (alpha.to(teacher.dtype) @ teacher)
        per_layer = (student.float() - target.float()).pow(2).mean(dim=-1)  # (B, M) or (B, L, M)

        if self.representation == "cls":
            return LayerProjectionOutput(per_layer.mean(dim=0).sum(), alpha, self.student_layers, self.teacher_layers)
        if attention_mask is None:
            raise ValueError("representation='tokens' needs the attention mask to leave out padding.")
        real = attention_mask.to(per_layer.dtype)[..., None]  # (B, L, 1)
        loss = ((per_layer * real).sum(dim=(0, 1)) / real.sum()).sum()
        alpha_mean = (alpha * real[..., None]).sum(dim=1) / real.sum(dim=1)[..., None]
        return LayerProjectionOutput(loss, alpha_mean, self.student_layers, self.teacher_layers)
