"""What the frozen teacher gives the loss terms for a batch: read from the teacher cache, or computed live.

:class:`TeacherOutputSource` is asked for exactly what the active terms need
(``DistillationObjective.teacher_needs``). With a teacher cache (the default) every answer is read
from it by each example's ``idx`` and the teacher runs no forward pass during training; without
one (``teacher_cache: false``) the teacher computes them on the spot, in one pass (its attribution
pass also gives its logits and hidden states).
"""

from __future__ import annotations

import torch

from kdviz.attribution import AttributionSettings
from kdviz.frozen_attribution import frozen_token_scores
from kdviz.loss_terms import CLS_STATES, HIDDEN_STATES, TOKEN_SCORES, ModelOutputs
from kdviz.teacher_cache import TeacherCache


def live_teacher_outputs(teacher: torch.nn.Module, inputs: dict, labels: torch.Tensor,
                         settings: AttributionSettings, needs: frozenset[str]) -> ModelOutputs:
    """The teacher's outputs for one batch, computed now in one pass.

    Args:
        teacher: the frozen teacher, on the batch's device.
        inputs: ``input_ids``, ``attention_mask`` (B, L), optionally ``token_type_ids``.
        labels: (B,) gold labels (the gold view's target).
        settings: its attribution settings (views, steps, rule, top-K).
        needs: what to return.

    Returns:
        :class:`~kdviz.loss_terms.ModelOutputs` with logits, and token scores (B, V, L) and hidden
        states (layers + 1 tensors of shape (B, L, H)) when needed.
    """
    hidden = bool(needs & {CLS_STATES, HIDDEN_STATES})
    if TOKEN_SCORES in needs:
        result = frozen_token_scores(teacher, inputs, labels, settings, output_hidden_states=hidden)
        return ModelOutputs(result.logits, result.scores, result.hidden_states)
    with torch.no_grad():
        out = teacher(**inputs, output_hidden_states=hidden)
    return ModelOutputs(out.logits, None, out.hidden_states if hidden else None)


class TeacherOutputSource:
    """The teacher's outputs per training batch.

    Args:
        teacher: the frozen teacher (eval mode, no gradients on its weights).
        settings: its attribution settings (views, steps, rule, top-K).
        cache: the teacher's cached outputs per training ``idx``; None runs the teacher every step.
    """

    def __init__(self, teacher: torch.nn.Module, settings: AttributionSettings, cache: TeacherCache | None = None):
        self.teacher, self.settings, self.cache = teacher.eval().requires_grad_(False), settings, cache

    @property
    def runs_teacher(self) -> bool:
        """Whether the teacher itself runs during training (no cache)."""
        return self.cache is None

    def __call__(self, inputs: dict, labels: torch.Tensor, idx: torch.Tensor | None,
                 needs: frozenset[str]) -> ModelOutputs:
        """The teacher's outputs for one batch.

        Args:
            inputs: ``input_ids``, ``attention_mask`` (B, L), optionally ``token_type_ids``.
            labels: (B,) gold labels (the gold view's target).
            idx: (B,) the examples' ``idx`` (the cache's key); None when the batch has none.
            needs: what to return (``LOGITS``, ``TOKEN_SCORES``, ``CLS_STATES``, ``HIDDEN_STATES``).

        Returns:
            :class:`~kdviz.loss_terms.ModelOutputs` on the batch's device; fields not needed may be None.

        Raises:
            ValueError: a cached source asked for what its cache lacks, or a batch without ``idx``.
        """
        mask = inputs["attention_mask"]
        if not needs:
            return ModelOutputs()
        if self.cache is None:
            return live_teacher_outputs(self.teacher, inputs, labels, self.settings, needs)
        if idx is None:
            raise ValueError("The teacher cache is read by each example's 'idx'; this batch has no 'idx' column.")
        if missing := needs - self.cache.provides:
            raise ValueError(f"The teacher cache holds no {sorted(missing)}: build it with these needs.")
        return self.cache.lookup(idx, mask).to(mask.device)
