"""The distillation objective (a weighted sum of named terms) and the one module that is trained.

:class:`DistillationModel` holds the student *and* the objective, whose terms may have trained
parameters of their own (ALP's width projection). Being one module, the ``Trainer`` optimises,
checkpoints, resumes and wraps (DDP) all of them together, so under several processes the
projection's gradients are averaged like the student's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from kdviz.attribution import AttributionSettings, integrated_gradients, token_scores
from kdviz.loss_terms import HIDDEN_STATES, TERMS, TOKEN_SCORES, LossContext, LossTerm, ModelOutputs
from kdviz.losses import task_loss


@dataclass
class ObjectiveOutput:
    """The total loss, each term's value (unweighted) and what the terms recorded."""

    loss: torch.Tensor
    terms: dict[str, torch.Tensor]
    records: dict[str, torch.Tensor]


class DistillationObjective(nn.Module):
    """``sum_t weight_t * term_t`` over the active terms.

    Args:
        terms: name -> :class:`~kdviz.loss_terms.LossTerm`.
        weights: name -> weight (above zero).
    """

    def __init__(self, terms: Mapping[str, LossTerm], weights: Mapping[str, float]):
        super().__init__()
        self.terms = nn.ModuleDict(terms)
        self.weights = dict(weights)

    @classmethod
    def from_config(cls, config, student_config, teacher_config) -> "DistillationObjective":
        """Every term ``config`` turns on (``terms.<name>.weight`` above zero), built from its options."""
        names = config.method_terms
        return cls({name: TERMS[name].from_options(config.terms[name], student_config, teacher_config)
                    for name in names},
                   {name: config.terms[name].weight for name in names})

    @property
    def teacher_needs(self) -> frozenset[str]:
        """What the active terms read from the teacher."""
        return frozenset().union(*(term.teacher_needs for term in self.terms.values()))

    @property
    def student_needs(self) -> frozenset[str]:
        """What the active terms read from the student beyond its logits."""
        return frozenset().union(*(term.student_needs for term in self.terms.values()))

    def term(self, name: str) -> LossTerm | None:
        """The active term called ``name``, or None."""
        return self.terms[name] if name in self.terms else None

    def forward(self, student: ModelOutputs, teacher: ModelOutputs, context: LossContext) -> ObjectiveOutput:
        values, records = {}, {}
        for name, term in self.terms.items():
            output = term(student, teacher, context)
            values[name] = output.value
            records.update(output.records)
        loss = sum(self.weights[name] * value for name, value in values.items())
        return ObjectiveOutput(loss, values, records)


@dataclass
class DistillationOutput:
    """What :class:`DistillationModel` returns on a training batch."""

    loss: torch.Tensor
    logits: torch.Tensor
    terms: dict[str, torch.Tensor]
    records: dict[str, torch.Tensor]


class DistillationModel(nn.Module):
    """The trained module: a student and the objective it is trained with.

    Args:
        student: a BERT-family sequence classifier (eager attention when it is attributed).
        objective: the :class:`DistillationObjective`.
        attribution: the student's attribution settings (views, steps, rule, step chunk; no top-K).
    """

    def __init__(self, student: nn.Module, objective: DistillationObjective,
                 attribution: AttributionSettings = AttributionSettings()):
        super().__init__()
        self.student = student
        self.objective = objective
        self.attribution = attribution.for_student()

    def student_outputs(self, inputs: dict, labels: torch.Tensor) -> ModelOutputs:
        """The student's logits, and the token scores and hidden states the objective needs.

        Args:
            inputs: ``input_ids``, ``attention_mask`` (B, L) and optionally ``token_type_ids``.
            labels: (B,) gold labels (the gold view's target).
        """
        needs = self.objective.student_needs
        hidden = HIDDEN_STATES in needs
        if TOKEN_SCORES in needs:  # one batched pass gives the attributions, logits and hidden states
            result = integrated_gradients(self.student, inputs, labels, self.attribution, create_graph=True,
                                          output_hidden_states=hidden)
            return ModelOutputs(result.logits, token_scores(result.attributions, inputs["attention_mask"]),
                                result.hidden_states)
        out = self.student(**inputs, output_hidden_states=hidden)
        return ModelOutputs(out.logits, None, out.hidden_states if hidden else None)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, teacher_outputs: ModelOutputs | None = None,
                epoch: float = 0.0, num_epochs: float = 1.0):
        """Training (with ``teacher_outputs``): the objective's loss. Otherwise the student's task loss.

        Args:
            input_ids, attention_mask, token_type_ids: (B, L) model inputs.
            labels: (B,) gold labels.
            teacher_outputs: what the teacher gives the active terms (see ``objective.teacher_needs``).
            epoch, num_epochs: where training is (the KD temperature's schedule).

        Returns:
            A :class:`DistillationOutput` when training, else a ``SequenceClassifierOutput``.
        """
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        if teacher_outputs is None:
            logits = self.student(**inputs).logits
            return SequenceClassifierOutput(loss=None if labels is None else task_loss(logits, labels), logits=logits)
        student = self.student_outputs(inputs, labels)
        output = self.objective(student, teacher_outputs, LossContext(labels, attention_mask, epoch, num_epochs))
        return DistillationOutput(output.loss, student.logits, output.terms, output.records)
