"""The training objective's terms: each one named, weighted by a config field, and saying what it needs.

A term declares what it reads from the teacher (``teacher_needs``) and from the student
(``student_needs``): logits, token scores (AD-KD's normalised attributions), the [CLS] vector of
every layer (``CLS_STATES``) or every token's hidden states (``HIDDEN_STATES``). The
trainer asks the teacher for exactly the union of what the active terms need, and the student runs
its attribution pass only when a term needs its token scores. Adding a term is one class here,
registered with :func:`register_term`, and one entry in :data:`kdviz.recipes.METHOD_PRESETS`;
nothing else changes (the torchdistill pattern).

    total = sum over active terms of  weight * term      (weight = the term's config field, > 0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from kdviz.layer_baselines import CombinatorialDistillation, PatientDistillation
from kdviz.losses import annealed_temperature, attribution_loss, kd_loss, task_loss
from kdviz.projection import LayerProjection

LOGITS, TOKEN_SCORES, CLS_STATES, HIDDEN_STATES = "logits", "token_scores", "cls_states", "hidden_states"


@dataclass
class ModelOutputs:
    """What a model gives the loss terms for one batch; a field is None when no term asked for it.

    Attributes:
        logits: (B, C) logits (B, 1 for STS-B).
        token_scores: (B, V, L) normalised token scores per view (zero on padding).
        hidden_states: ``output_hidden_states``: layers + 1 tensors of shape (B, L, H); from the
            teacher cache, when only ``CLS_STATES`` were asked for, (B, 1, H): the [CLS] position.
    """

    logits: torch.Tensor | None = None
    token_scores: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None

    def to(self, device: torch.device | str) -> "ModelOutputs":
        """The same outputs on ``device``."""
        move = lambda tensor: None if tensor is None else tensor.to(device, non_blocking=True)
        hidden = None if self.hidden_states is None else tuple(move(h) for h in self.hidden_states)
        return ModelOutputs(move(self.logits), move(self.token_scores), hidden)


@dataclass
class LossContext:
    """The rest of what a term may read: the batch's labels and mask, and where training is.

    Attributes:
        labels: (B,) gold labels.
        attention_mask: (B, L), 1 for real tokens.
        epoch: the current epoch, counted from 0.
        num_epochs: the run's number of epochs.
    """

    labels: torch.Tensor
    attention_mask: torch.Tensor
    epoch: float = 0.0
    num_epochs: float = 1.0


@dataclass
class TermOutput:
    """A term's value and what it records for the run's history (averaged over a logging window)."""

    value: torch.Tensor
    records: dict[str, torch.Tensor] = field(default_factory=dict)


class LossTerm(nn.Module):
    """One named term of the objective. Subclasses set the class attributes and :meth:`forward`.

    Attributes:
        name: the term's name in logs (``loss_<name>``).
        weight_field: the :class:`~kdviz.config.DistillConfig` field that holds its weight.
        teacher_needs: what it reads from the teacher (``LOGITS``, ``TOKEN_SCORES``, ``CLS_STATES``,
            ``HIDDEN_STATES``).
        student_needs: what it reads from the student beyond its logits.
    """

    name: ClassVar[str]
    weight_field: ClassVar[str]
    teacher_needs: ClassVar[frozenset[str]] = frozenset()
    student_needs: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def from_config(cls, config, student_config, teacher_config) -> "LossTerm":
        """Build the term for a run (``config``) and its models' Hugging Face configs."""
        return cls()

    def forward(self, student: ModelOutputs, teacher: ModelOutputs, context: LossContext) -> TermOutput:
        raise NotImplementedError


TERMS: dict[str, type[LossTerm]] = {}
"""Every registered term by name, in the order they enter the objective."""


def register_term(term: type[LossTerm]) -> type[LossTerm]:
    """Class decorator: make a term available to every run whose config gives it a weight."""
    TERMS[term.name] = term
    return term


def active_term_names(config) -> list[str]:
    """The names of the terms a config turns on (weight above zero)."""
    return [name for name, term in TERMS.items() if getattr(config, term.weight_field)]


@register_term
class TaskTerm(LossTerm):
    """Cross-entropy on the gold labels (MSE for STS-B)."""

    name, weight_field = "ce", "w_ce"

    def forward(self, student, teacher, context):
        return TermOutput(task_loss(student.logits, context.labels))


@register_term
class KnowledgeDistillationTerm(LossTerm):
    """Hinton KD on the logits at temperature T, optionally annealed linearly to 1 over the epochs.

    Args:
        temperature: T.
        anneal: anneal T from T in the first epoch to 1 in the last.
    """

    name, weight_field = "kd", "w_kd"
    teacher_needs = frozenset({LOGITS})

    def __init__(self, temperature: float = 1.0, anneal: bool = False):
        super().__init__()
        self.temperature, self.anneal = float(temperature), anneal

    @classmethod
    def from_config(cls, config, student_config, teacher_config):
        return cls(config.temperature, config.anneal_temperature)

    def forward(self, student, teacher, context):
        temperature = annealed_temperature(self.temperature, context.epoch, context.num_epochs) if self.anneal \
            else self.temperature
        value = kd_loss(student.logits, teacher.logits, temperature)
        return TermOutput(value, {"temperature": torch.tensor(temperature)})


@register_term
class AttributionTerm(LossTerm):
    """AD-KD's attribution loss between the teacher's and the student's normalised token scores.

    Args:
        distance: ``"mse"`` (the paper), ``"l1"`` or ``"smooth_l1"``.
    """

    name, weight_field = "attribution", "beta"
    teacher_needs = frozenset({TOKEN_SCORES})
    student_needs = frozenset({TOKEN_SCORES})

    def __init__(self, distance: str = "mse"):
        super().__init__()
        self.distance = distance

    @classmethod
    def from_config(cls, config, student_config, teacher_config):
        return cls(config.attr_distance)

    def forward(self, student, teacher, context):
        return TermOutput(attribution_loss(teacher.token_scores, student.token_scores, self.distance))


@register_term
class LayerProjectionTerm(LossTerm):
    """ALP-KD's layer projection and its bucket and hard-mapped variants (:class:`kdviz.projection.LayerProjection`).

    Its width projection (when student and teacher widths differ) is trained with the student. It
    records the batch's mean attention over teacher layers as ``alpha`` (student x teacher layers),
    and how peaked it is: ``alp_entropy`` (nats, mean over examples and student layers) and
    ``alp_top2_gap`` (the largest weight minus the second largest, likewise).
    """

    name, weight_field = "layer_projection", "lam"
    student_needs = frozenset({HIDDEN_STATES})

    def __init__(self, projection: LayerProjection):
        super().__init__()
        self.projection = projection

    @property
    def teacher_needs(self) -> frozenset[str]:
        """The teacher's [CLS] vectors, or every token's for ``representation="tokens"``."""
        return frozenset({CLS_STATES if self.projection.representation == "cls" else HIDDEN_STATES})

    @classmethod
    def from_config(cls, config, student_config, teacher_config):
        return cls(LayerProjection(
            student_config.num_hidden_layers, teacher_config.num_hidden_layers, student_config.hidden_size,
            teacher_config.hidden_size, variant=config.alp_variant, representation=config.alp_representation,
            include_embeddings=config.alp_include_embeddings, overlap=config.alp_overlap, score=config.alp_score))

    def forward(self, student, teacher, context):
        out = self.projection(student.hidden_states, teacher.hidden_states, context.attention_mask)
        alpha = out.alpha.detach().float()
        return TermOutput(out.loss, {"alpha": alpha.mean(dim=0), **attention_spread(alpha)})


def attention_spread(alpha: torch.Tensor) -> dict[str, torch.Tensor]:
    """How spread attention weights are.

    Args:
        alpha: (..., N) rows of weights that sum to 1 (zeros where a layer is masked out).

    Returns:
        ``alp_entropy``: the mean row entropy in nats (0 = one-hot, log N = uniform);
        ``alp_top2_gap``: the mean of each row's largest minus second largest weight (1 = one-hot).
    """
    entropy = -torch.special.xlogy(alpha, alpha).sum(dim=-1)
    top = alpha.topk(min(2, alpha.shape[-1]), dim=-1).values
    gap = top[..., 0] - (top[..., 1] if top.shape[-1] > 1 else 0.0)
    return {"alp_entropy": entropy.mean(), "alp_top2_gap": gap.mean()}


class LayerMatchingTerm(LossTerm):
    """A term that matches student layers to teacher layers with a module of :mod:`kdviz.layer_baselines`
    (both read the teacher's [CLS] vectors only).

    Args:
        matcher: called with the student's and the teacher's ``hidden_states``; returns the loss.
    """

    teacher_needs = frozenset({CLS_STATES})
    student_needs = frozenset({HIDDEN_STATES})

    def __init__(self, matcher: nn.Module):
        super().__init__()
        self.matcher = matcher

    def forward(self, student, teacher, context):
        return TermOutput(self.matcher(student.hidden_states, teacher.hidden_states))


@register_term
class PatientDistillationTerm(LayerMatchingTerm):
    """PKD as published: normalised [CLS] vectors of the student's M - 1 intermediate layers matched to
    the teacher's ``skip`` or ``last`` layers (see :class:`kdviz.layer_baselines.PatientDistillation`)."""

    name, weight_field = "pkd", "w_pkd"

    @classmethod
    def from_config(cls, config, student_config, teacher_config):
        return cls(PatientDistillation(student_config.num_hidden_layers, teacher_config.num_hidden_layers,
                                       student_config.hidden_size, teacher_config.hidden_size, config.pkd_mapping))


@register_term
class CombinatorialDistillationTerm(LayerMatchingTerm):
    """CKD: each student layer matched to a learned map of its bucket of concatenated teacher layers
    (see :class:`kdviz.layer_baselines.CombinatorialDistillation`)."""

    name, weight_field = "ckd", "w_ckd"

    @classmethod
    def from_config(cls, config, student_config, teacher_config):
        return cls(CombinatorialDistillation(student_config.num_hidden_layers, teacher_config.num_hidden_layers,
                                             student_config.hidden_size, teacher_config.hidden_size))
