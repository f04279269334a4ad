"""The layer-matching baselines ALP-KD is compared with: PKD (Sun et al., 2019) and CKD (Wu et al., 2020).

Layer indexing follows ``output_hidden_states`` (0 = embeddings, 1..N the transformer layers);
both read each layer's [CLS] vector, as the papers do.

- **PKD** pairs the student's M - 1 intermediate layers with teacher layers and leaves the top
  layer to KD on the logits. ``skip``: student layer i -> teacher layer i*N/M (12 -> 6: 2, 4, 6, 8,
  10); ``last``: the teacher's M - 1 layers below its top one (12 -> 6: 7..11). The [CLS] vectors
  are L2-normalised before the squared error, averaged over examples, layers and dimensions as in
  the PKD release (``F.mse_loss`` of the normalised vectors), so the paper's beta in {10, 100, 500,
  1000} applies as it is.
- **CKD** splits the teacher's layers into M contiguous buckets (as ALP-NO does), concatenates the
  [CLS] vectors of each bucket, maps them with a learned linear layer per bucket to the student's
  width and matches student layer i to bucket i by MSE (mean over dimensions, sum over layers, as
  ALP's term).

A student narrower than the teacher gets a learned linear map to the teacher's width for PKD;
CKD's bucket maps already land in the student's width.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from kdviz.projection import check_depths, stack_layers, teacher_buckets, width_projection

PKD_MAPPINGS = ("skip", "last")


def pkd_layer_pairs(num_student: int, num_teacher: int, mapping: str = "skip") -> list[tuple[int, int]]:
    """PKD's (student layer, teacher layer) pairs, as ``hidden_states`` indices.

    Args:
        num_student: M, student transformer layers.
        num_teacher: N, teacher transformer layers (N >= M).
        mapping: ``"skip"`` or ``"last"``.

    Returns:
        M - 1 pairs for student layers 1..M-1 (empty for a 1-layer student: PKD is then plain KD).
    """
    if mapping not in PKD_MAPPINGS:
        raise ValueError(f"Unknown PKD mapping {mapping!r}; choose from {PKD_MAPPINGS}.")
    check_depths(num_student, num_teacher)
    if mapping == "skip":
        return [(i, i * num_teacher // num_student) for i in range(1, num_student)]
    return [(i, num_teacher - num_student + i) for i in range(1, num_student)]


class PatientDistillation(nn.Module):
    """PKD's patient loss between normalised [CLS] vectors of paired layers.

    Args:
        num_student_layers: M.
        num_teacher_layers: N.
        student_hidden: student hidden size.
        teacher_hidden: teacher hidden size (a learned map brings a narrower student to it).
        mapping: ``"skip"`` or ``"last"`` (see :func:`pkd_layer_pairs`).
    """

    def __init__(self, num_student_layers: int, num_teacher_layers: int, student_hidden: int, teacher_hidden: int,
                 mapping: str = "skip"):
        super().__init__()
        self.pairs = pkd_layer_pairs(num_student_layers, num_teacher_layers, mapping)
        self.width_projection = width_projection(student_hidden, teacher_hidden)

    def forward(self, student_hidden_states: Sequence[torch.Tensor],
                teacher_hidden_states: Sequence[torch.Tensor]) -> torch.Tensor:
        """The patient loss.

        Args:
            student_hidden_states: M + 1 tensors of shape (B, L, H_s).
            teacher_hidden_states: N + 1 tensors of shape (B, L, H_t), or (B, 1, H_t): only [CLS] is
                read; used without gradients.

        Returns:
            A scalar: the mean squared difference of the normalised (B, M - 1, H_t) [CLS] vectors
            (zero when there are no pairs).
        """
        if not self.pairs:
            return student_hidden_states[-1].new_zeros(()).float()
        student = stack_layers(student_hidden_states, [s for s, _ in self.pairs])
        with torch.no_grad():
            teacher = stack_layers(teacher_hidden_states, [t for _, t in self.pairs])
        if self.width_projection is not None:
            student = self.width_projection(student)
        return F.mse_loss(F.normalize(student.float(), dim=-1), F.normalize(teacher.float(), dim=-1))


class CombinatorialDistillation(nn.Module):
    """CKD: each student layer matched to a learned linear map of its bucket's concatenated teacher layers.

    Args:
        num_student_layers: M.
        num_teacher_layers: N (split into M contiguous buckets, bigger ones first).
        student_hidden: student hidden size (the maps' output width).
        teacher_hidden: teacher hidden size.
    """

    def __init__(self, num_student_layers: int, num_teacher_layers: int, student_hidden: int, teacher_hidden: int):
        super().__init__()
        self.buckets = [list(bucket) for bucket in teacher_buckets(num_student_layers, num_teacher_layers)]
        self.bucket_maps = nn.ModuleList(
            nn.Linear(len(bucket) * teacher_hidden, student_hidden) for bucket in self.buckets)

    def forward(self, student_hidden_states: Sequence[torch.Tensor],
                teacher_hidden_states: Sequence[torch.Tensor]) -> torch.Tensor:
        """The combinatorial loss.

        Args:
            student_hidden_states: M + 1 tensors of shape (B, L, H_s).
            teacher_hidden_states: N + 1 tensors of shape (B, L, H_t), or (B, 1, H_t): only [CLS] is
                read; no gradient reaches the teacher.

        Returns:
            A scalar: sum over student layers of the MSE (mean over examples and dimensions)
            between the student's [CLS] vector and its bucket's mapped (B, H_s) combination.
        """
        loss = 0.0
        for layer, (bucket, bucket_map) in enumerate(zip(self.buckets, self.bucket_maps), start=1):
            with torch.no_grad():
                combined = torch.cat([teacher_hidden_states[t][:, 0] for t in bucket], dim=-1)
            target = bucket_map(combined.to(bucket_map.weight.dtype))
            loss = loss + F.mse_loss(student_hidden_states[layer][:, 0].float(), target.float())
        return loss
