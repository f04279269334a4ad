"""How far a student's token rationale agrees with its teacher's: cosine, rank correlation, top-k overlap.

The scores compared are the ones AD-KD trains on (normalised token scores over the real tokens);
a run records their agreement on a fixed set of dev examples at every logged step
(``agreement_size``), from step 0 (the untrained student) on, for every method, so that methods can
be compared on it.

Two token sets are compared. The default (``cosine``, ``spearman``, ``top_k_overlap``) is the
example's ordinary tokens, the words a rationale is made of: ``[CLS]`` and ``[SEP]`` sit at fixed
places in every example and take large scores from every model, so keeping them lifts every
student's agreement, a flat one's too, and hides the differences in the words. The same measures
with them (``*_with_special``, all real tokens, what AD-KD's loss sees) are recorded beside.

No measure means much without its floor: :func:`uniform_scores` is a student that scores every
token alike, and its agreement with the teacher is the reference a trained student has to beat.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from scipy.stats import spearmanr

TOP_K = 3
"""Tokens in the top sets compared by ``top_k_overlap``."""
MEASURES = ("cosine", "spearman", "top_k_overlap")
WITH_SPECIAL = "_with_special"
"""Suffix of the measures taken over all real tokens, ``[CLS]`` and ``[SEP]`` included."""


def token_agreement(teacher, student, k: int = TOP_K) -> dict[str, float]:
    """How far two token-score vectors agree.

    Args:
        teacher, student: (L,) scores over the same real tokens.
        k: size of the top sets compared (fewer when there are fewer tokens).

    Returns:
        ``cosine``, ``spearman`` (rank correlation, ties averaged; 0 when one side is constant) and
        ``top_k_overlap`` (the share of the teacher's k highest-scored tokens among the student's k).
    """
    teacher, student = np.asarray(teacher, dtype=float), np.asarray(student, dtype=float)
    norms = np.linalg.norm(teacher) * np.linalg.norm(student)
    cosine = float(teacher @ student / norms) if norms > 0 else 0.0
    if len(teacher) < 2:
        spearman = 1.0
    elif np.ptp(teacher) == 0 or np.ptp(student) == 0:  # no ranking to correlate
        spearman = 0.0
    else:
        spearman = float(spearmanr(teacher, student)[0])
    k = min(k, len(teacher))
    top_teacher = set(np.argsort(-teacher, kind="stable")[:k])
    top_student = set(np.argsort(-student, kind="stable")[:k])
    return {"cosine": cosine, "spearman": spearman,
            "top_k_overlap": len(top_teacher & top_student) / k if k else 1.0}


def mean_agreement(teacher: torch.Tensor, student: torch.Tensor, lengths: Sequence[int],
                   k: int = TOP_K, *, compared: torch.Tensor | None = None) -> dict[str, float]:
    """:func:`token_agreement` averaged over examples and views.

    Args:
        teacher, student: (P, V, L) token scores of P examples (zero beyond each example's tokens).
        lengths: (P,) each example's number of real tokens.
        k: as :func:`token_agreement`.
        compared: (P, L) bool, the positions compared in each example (for example its ordinary
            tokens); default: its ``lengths[i]`` real tokens.

    Returns:
        The mean of each measure, and ``examples`` (P).
    """
    if teacher.shape[:2] != student.shape[:2] or len(lengths) != len(teacher):
        raise ValueError(f"Teacher scores {tuple(teacher.shape)}, student scores {tuple(student.shape)} and "
                         f"{len(lengths)} lengths do not describe the same examples and views.")
    teacher, student = teacher.float().cpu().numpy(), student.float().cpu().numpy()
    positions = [np.arange(length) if compared is None else np.flatnonzero(compared[i, :length].cpu().numpy())
                 for i, length in enumerate(lengths)]
    rows = [token_agreement(teacher[i, view, kept], student[i, view, kept], k)
            for i, kept in enumerate(positions) for view in range(teacher.shape[1])]
    return {**{name: float(np.mean([row[name] for row in rows])) for name in MEASURES}, "examples": len(lengths)}


def uniform_scores(like: torch.Tensor, lengths: Sequence[int]) -> torch.Tensor:
    """A flat student: every real token scored alike (unit norm over each example's real tokens).

    Args:
        like: (P, V, L) scores whose shape and dtype the result takes.
        lengths: (P,) each example's number of real tokens.

    Returns:
        (P, V, L) scores, ``1/sqrt(length)`` on the real tokens, zero beyond.
    """
    flat = torch.zeros_like(like, dtype=torch.float32)
    for i, length in enumerate(lengths):
        flat[i, :, :length] = 1.0 / max(length, 1) ** 0.5
    return flat
