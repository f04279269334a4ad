"""The training objective's terms: each one named, with its own options, and saying what it needs.

A term owns its settings: a small dataclass of options (:class:`TermOptions`: its ``weight`` and its
own hyperparameters), which a config sets as ``terms: {kd: {weight: 0.5, temperature: 2}}`` and
checks when it is built. A term declares what it reads from the teacher (``teacher_needs``) and from
the student (``student_needs``): logits, token scores (AD-KD's normalised attributions), the [CLS]
vector of every layer (``CLS_STATES``) or every token's hidden states (``HIDDEN_STATES``). The
trainer asks the teacher for exactly the union of what the active terms need, and the student runs
its attribution pass (with an attention implementation that allows a double backward) only when a
term needs its token scores. Adding a term is one class registered with :func:`register_term`, in
kdviz or in a user's module named in a config's ``plugins`` (the torchdistill pattern).

    total = sum over active terms of  weight * term      (weight = terms.<name>.weight, > 0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Iterable

import torch
from torch import nn

from kdviz.layer_baselines import PKD_MAPPINGS, CombinatorialDistillation, PatientDistillation
from kdviz.losses import ATTRIBUTION_DISTANCES, annealed_temperature, attribution_loss, kd_loss, task_loss
from kdviz.projection import REPRESENTATIONS, SCORES, VARIANTS, LayerProjection
from kdviz.typed_fields import check_fields, option

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


@dataclass
class TermOptions:
    """A term's settings in a config (``terms: {<name>: {weight: ..., ...}}``): its weight, and in a
    subclass its own hyperparameters, each an :func:`kdviz.typed_fields.option` checked when built.

    Attributes:
        weight: the term's weight in the objective (0: off).
    """

    weight: float = option(0.0, "weight in the objective (0 = off)", minimum=0)

    def checked(self, term: str) -> "TermOptions":
        """These options with every field checked (errors name ``terms.<term>.<field>``)."""
        check_fields(self, f"terms.{term}.")
        return self


class LossTerm(nn.Module):
    """One named term of the objective. Subclasses set the class attributes and :meth:`forward`.

    Attributes:
        name: the term's name in configs (``terms: {<name>: ...}``) and logs (``loss_<name>``).
        options: its :class:`TermOptions` dataclass (the weight and its own hyperparameters).
        legacy_fields: the flat :class:`~kdviz.config.DistillConfig` fields of kdviz 0.x that set its
            options (field -> option), still read with a deprecation warning.
        teacher_needs: what it reads from the teacher (``LOGITS``, ``TOKEN_SCORES``, ``CLS_STATES``,
            ``HIDDEN_STATES``).
        student_needs: what it reads from the student beyond its logits.
    """

    name: ClassVar[str]
    options: ClassVar[type[TermOptions]] = TermOptions
    legacy_fields: ClassVar[dict[str, str]] = {}
    teacher_needs: ClassVar[frozenset[str]] = frozenset()
    student_needs: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def from_options(cls, options: TermOptions, student_config, teacher_config) -> "LossTerm":
        """Build the term from its options and the models' Hugging Face configs."""
        return cls()

    def forward(self, student: ModelOutputs, teacher: ModelOutputs, context: LossContext) -> TermOutput:
        raise NotImplementedError


TERMS: dict[str, type[LossTerm]] = {}
"""Every registered term by name, in the order they enter the objective."""


def register_term(term: type[LossTerm]) -> type[LossTerm]:
    """Class decorator: make a term available to every config that gives it a weight.

    Raises:
        ValueError: another class already registered under the term's name, or options that are not a
            :class:`TermOptions` dataclass.
    """
    known = TERMS.get(term.name)
    same_class = known is not None and (known.__module__, known.__qualname__) == (term.__module__, term.__qualname__)
    if known is not None and not same_class:  # the same class again: its module was imported anew
        raise ValueError(f"Two loss terms are called {term.name!r} ({known.__module__}.{known.__qualname__} and "
                         f"{term.__module__}.{term.__qualname__}): give the new one another name.")
    if not (isinstance(term.options, type) and issubclass(term.options, TermOptions)):
        raise ValueError(f"{term.__qualname__}.options must be a TermOptions dataclass, got {term.options!r}.")
    TERMS[term.name] = term
    return term


def student_needs(names: Iterable[str]) -> frozenset[str]:
    """What the named terms read from the student beyond its logits (before any term is built: the
    student's attention implementation depends on it)."""
    return frozenset().union(*(TERMS[name].student_needs for name in names))


@dataclass
class TaskOptions(TermOptions):
    weight: float = option(1.0, "weight of the cross-entropy (1 - alpha; 0 = off)", minimum=0)


@dataclass
class KnowledgeDistillationOptions(TermOptions):
    temperature: float = option(1.0, "KD temperature T", above=0)
    anneal: bool = option(False, "anneal T linearly to 1 over the epochs")


@dataclass
class AttributionOptions(TermOptions):
    distance: str = option("mse", "distance between normalised attributions", choices=ATTRIBUTION_DISTANCES)


@dataclass
class LayerProjectionOptions(TermOptions):
    variant: str = option("alp", "alp, alp-no, alp-po, skip or last", choices=VARIANTS)
    representation: str = option("cls", "[CLS] vectors or every token's", choices=REPRESENTATIONS)
    include_embeddings: bool = option(False, "match layer 0 (the embeddings) too")
    overlap: int = option(1, "alp-po overlap", minimum=0)
    score: str = option("sqrt_h", "dot product / sqrt(H) or unscaled (the paper's form)", choices=SCORES)


@dataclass
class PatientOptions(TermOptions):
    mapping: str = option("skip", "PKD's layer pairs: skip or last", choices=PKD_MAPPINGS)


@register_term
class TaskTerm(LossTerm):
    """Cross-entropy on the gold labels (MSE for STS-B)."""

    name, options, legacy_fields = "ce", TaskOptions, {"w_ce": "weight"}

    def forward(self, student, teacher, context):
        return TermOutput(task_loss(student.logits, context.labels))


@register_term
class KnowledgeDistillationTerm(LossTerm):
    """Hinton KD on the logits at temperature T, optionally annealed linearly to 1 over the epochs.

    Args:
        temperature: T.
        anneal: anneal T from T in the first epoch to 1 in the last.
    """

    name, options = "kd", KnowledgeDistillationOptions
    legacy_fields = {"w_kd": "weight", "temperature": "temperature", "anneal_temperature": "anneal"}
    teacher_needs = frozenset({LOGITS})

    def __init__(self, temperature: float = 1.0, anneal: bool = False):
        super().__init__()
        self.temperature, self.anneal = float(temperature), anneal

    @classmethod
    def from_options(cls, options, student_config, teacher_config):
        return cls(options.temperature, options.anneal)

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

    name, options, legacy_fields = "attribution", AttributionOptions, {"beta": "weight", "attr_distance": "distance"}
    teacher_needs = frozenset({TOKEN_SCORES})
    student_needs = frozenset({TOKEN_SCORES})

    def __init__(self, distance: str = "mse"):
        super().__init__()
        self.distance = distance

    @classmethod
    def from_options(cls, options, student_config, teacher_config):
        return cls(options.distance)

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

    name, options = "layer_projection", LayerProjectionOptions
    legacy_fields = {"lam": "weight", "alp_variant": "variant", "alp_representation": "representation",
                     "alp_include_embeddings": "include_embeddings", "alp_overlap": "overlap", "alp_score": "score"}
    student_needs = frozenset({HIDDEN_STATES})

    def __init__(self, projection: LayerProjection):
        super().__init__()
        self.projection = projection

    @property
    def teacher_needs(self) -> frozenset[str]:
        """The teacher's [CLS] vectors, or every token's for ``representation="tokens"``."""
        return frozenset({CLS_STATES if self.projection.representation == "cls" else HIDDEN_STATES})

    @classmethod
    def from_options(cls, options, student_config, teacher_config):
        return cls(LayerProjection(
            student_config.num_hidden_layers, teacher_config.num_hidden_layers, student_config.hidden_size,
            teacher_config.hidden_size, variant=options.variant, representation=options.representation,
            include_embeddings=options.include_embeddings, overlap=options.overlap, score=options.score))

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

    name, options, legacy_fields = "pkd", PatientOptions, {"w_pkd": "weight", "pkd_mapping": "mapping"}

    @classmethod
    def from_options(cls, options, student_config, teacher_config):
        return cls(PatientDistillation(student_config.num_hidden_layers, teacher_config.num_hidden_layers,
                                       student_config.hidden_size, teacher_config.hidden_size, options.mapping))


@register_term
class CombinatorialDistillationTerm(LayerMatchingTerm):
    """CKD: each student layer matched to a learned map of its bucket of concatenated teacher layers
    (see :class:`kdviz.layer_baselines.CombinatorialDistillation`)."""

    name, legacy_fields = "ckd", {"w_ckd": "weight"}

    @classmethod
    def from_options(cls, options, student_config, teacher_config):
        return cls(CombinatorialDistillation(student_config.num_hidden_layers, teacher_config.num_hidden_layers,
                                             student_config.hidden_size, teacher_config.hidden_size))
