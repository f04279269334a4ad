"""What the frozen teacher gives the loss terms for a batch: read from the teacher cache, or computed.

:class:`TeacherOutputSource` is asked for exactly what the active terms need
(``DistillationObjective.teacher_needs``): logits and token scores come from the teacher cache when
the run has one (looked up by each example's ``idx``); anything else the teacher computes on the
spot, in one pass (its attribution pass also gives its logits and hidden states).
"""

from __future__ import annotations

import torch

from kdviz.attribution import AttributionSettings
from kdviz.frozen_attribution import frozen_token_scores
from kdviz.loss_terms import HIDDEN_STATES, LOGITS, TOKEN_SCORES, ModelOutputs
from kdviz.teacher_cache import TeacherCache


class TeacherOutputSource:
    """The teacher's outputs per training batch.

    Args:
        teacher: the frozen teacher (eval mode, no gradients on its weights).
        settings: its attribution settings (views, steps, rule, top-K).
        cache: cached logits and token scores per training ``idx``; None runs the teacher every step.
    """

    def __init__(self, teacher: torch.nn.Module, settings: AttributionSettings, cache: TeacherCache | None = None):
        self.teacher, self.settings, self.cache = teacher.eval().requires_grad_(False), settings, cache

    def __call__(self, inputs: dict, labels: torch.Tensor, idx: torch.Tensor | None,
                 needs: frozenset[str]) -> ModelOutputs:
        """The teacher's outputs for one batch.

        Args:
            inputs: ``input_ids``, ``attention_mask`` (B, L), optionally ``token_type_ids``.
            labels: (B,) gold labels (the gold view's target).
            idx: (B,) the examples' ``idx`` (the cache's key); None when the batch has none.
            needs: what to return (``LOGITS``, ``TOKEN_SCORES``, ``HIDDEN_STATES``).

        Returns:
            :class:`~kdviz.loss_terms.ModelOutputs` on the batch's device; fields not needed may be None.
        """
        outputs = ModelOutputs()
        mask = inputs["attention_mask"]
        if self.cache is not None and idx is not None and needs & {LOGITS, TOKEN_SCORES}:
            logits, scores = self.cache.lookup(idx, mask.shape[1])
            outputs = ModelOutputs(logits.to(mask.device), scores.to(mask.device))
        elif TOKEN_SCORES in needs:
            result = frozen_token_scores(self.teacher, inputs, labels, self.settings,
                                         output_hidden_states=HIDDEN_STATES in needs)
            outputs = ModelOutputs(result.logits, result.scores, result.hidden_states)
        if (LOGITS in needs and outputs.logits is None) or (HIDDEN_STATES in needs and outputs.hidden_states is None):
            with torch.no_grad():
                out = self.teacher(**inputs, output_hidden_states=HIDDEN_STATES in needs)
            outputs = ModelOutputs(out.logits if outputs.logits is None else outputs.logits, outputs.token_scores,
                                   out.hidden_states if HIDDEN_STATES in needs else None)
        return outputs
