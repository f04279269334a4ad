"""Where a view's numbers come from: live models and data, or a finished run folder.

The widgets (:mod:`kdviz.viz.widgets`) hold state and layout only and ask one of these:

- :class:`LiveAttributionSource` computes teacher and student token scores on demand (any IG
  steps, any class view, captum's methods for comparison) with the models where they are (CPU or
  GPU); :class:`RunAttributionSource` replays a run's probe set at each logged training step.
  Both answer :class:`AttributionSource`'s few questions, with NumPy arrays on the CPU.
- :func:`layer_attention_from_run` and :func:`layer_attention_from_models` give a
  :class:`LayerAttentionData`: ALP weights over training, and per example when models are live.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np
import torch

from kdviz.attribution import AttributionSettings, signed_token_scores, token_scores, view_targets
from kdviz.faithfulness import eraser_scores
from kdviz.frozen_attribution import attribute, frozen_token_scores
from kdviz.runs import Run, load_run
from kdviz.tasks import MODEL_INPUTS


@dataclass
class Example:
    """One example as a view shows it.

    Attributes:
        text: the example's text segments.
        label: gold label id (or score).
        tokens: the real tokens (shared by teacher and student).
        inputs: model inputs of this example alone, (1, L) tensors on the CPU ({} for a replayed run).
    """

    text: list[str]
    label: int | float
    tokens: list[str]
    inputs: dict[str, torch.Tensor] = field(default_factory=dict)


def probabilities(logits) -> np.ndarray:
    """Class probabilities (N, C) from logits, or the scores themselves for regression (N, 1)."""
    logits = torch.as_tensor(logits).detach().float().cpu()
    return (torch.softmax(logits, -1) if logits.shape[-1] > 1 else logits).numpy()


class AttributionSource(Protocol):
    """What :class:`~kdviz.viz.attribution_view.AttributionView` asks its source.

    Attributes:
        examples: the examples shown.
        label_names: class names (empty for regression).
        steps_choices: the IG step counts offered (one: fixed by the run).
        view_names: the attribution views to choose from (one: fixed), in index order.
        captum: whether captum's methods can be compared.
        signed: whether signed token scores can be shown.
        signed_meaning: what a signed score's sign says (which class it is taken towards).
        training_steps: the logged training steps to replay, or None for live models.
    """

    examples: list[Example]
    label_names: list[str]
    steps_choices: tuple[int, ...]
    view_names: list[str]
    captum: bool
    signed: bool
    signed_meaning: str
    training_steps: list[int] | None

    def probabilities(self, training_step: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Teacher and student class probabilities (N, C) of every example."""

    def faithfulness(self, index: int, who: str, rationale: np.ndarray) -> dict[str, float] | None:
        """``who``'s comprehensiveness and sufficiency on example ``index`` for a rationale ranked by
        ``rationale`` (L,) scores, or None where it cannot be measured (no live model, regression)."""

    def scores(self, index: int, who: str, view: int, steps: int, method: str = "kdviz",
               training_step: int | None = None, signed: bool = False) -> np.ndarray:
        """Normalised token scores (L,) of example ``index`` for ``who`` (``"teacher"``/``"student"``):
        AD-KD's magnitudes, or with ``signed`` which way each token pushes (the attribution summed over
        hidden dimensions, :func:`~kdviz.attribution.signed_token_scores`; a run records it towards the
        predicted class)."""


class LiveAttributionSource:
    """Teacher and student token scores computed on demand, cached per question.

    Args:
        teacher, student: sequence classifiers (put in eval mode; left on their device).
        tokenizer: their tokenizer.
        dataset: a ``load_glue`` split.
        task: the task (its text columns and labels).
        max_length: token limit per example.
        top_k: the teacher's top-K hidden dimensions (None: all).
    """

    steps_choices = (1, 8, 32)
    captum = signed = True
    signed_meaning = "positive: towards the view's class, negative: against it"
    training_steps = None

    def __init__(self, teacher, student, tokenizer, dataset, task, max_length: int = 128, top_k: int | None = None):
        from kdviz.data import tokenize_glue
        from kdviz.tasks import get_task

        self.models = {"teacher": teacher.eval(), "student": student.eval()}
        self.tokenizer, self.task, self.top_k = tokenizer, get_task(task), top_k
        self.label_names = list(self.task.label_names)
        self.view_names = self.label_names or ["gold (squared error)"]
        encoded = tokenize_glue(dataset, tokenizer, self.task, max_length)
        self.examples = [
            Example([raw[c] for c in self.task.text_columns], raw["label"], tokenizer.convert_ids_to_tokens(row["input_ids"]),
                    {k: torch.tensor([row[k]]) for k in MODEL_INPUTS if k in row})
            for row, raw in zip(encoded, dataset)]
        self._probabilities = tuple(self._all_probabilities(name) for name in ("teacher", "student"))
        self._cache: dict[tuple, np.ndarray] = {}

    def _all_probabilities(self, who: str) -> np.ndarray:
        from transformers import DataCollatorWithPadding

        model, collate = self.models[who], DataCollatorWithPadding(self.tokenizer)
        device = next(model.parameters()).device
        logits = []
        with torch.no_grad():
            for start in range(0, len(self.examples), 64):
                batch = collate([{k: v[0].tolist() for k, v in e.inputs.items()} for e in self.examples[start:start + 64]])
                logits.append(model(**{k: v.to(device) for k, v in batch.items()}).logits.cpu())
        return probabilities(torch.cat(logits))

    def probabilities(self, training_step=None):
        return self._probabilities

    def _target(self, index: int, view: int) -> tuple[str | int, torch.Tensor | None]:
        """The view as kdviz's IG takes it: a class index, or the gold score's squared error (STS-B)."""
        if self.task.is_regression:
            return "gold", torch.tensor([float(self.examples[index].label)])
        return view, None

    def scores(self, index, who, view, steps, method="kdviz", training_step=None, signed=False):
        key = (index, who, view, steps, method, signed)
        if key not in self._cache:
            model, inputs = self.models[who], self.examples[index].inputs
            views, labels = self._target(index, view)
            if method == "kdviz" and not signed:
                settings = AttributionSettings(views=views, steps=steps, top_k=self.top_k if who == "teacher" else None)
                values = frozen_token_scores(model, inputs, labels, settings).scores[0, 0]
            elif method == "kdviz":
                device = next(model.parameters()).device
                attribution = attribute(model, {k: v.to(device) for k, v in inputs.items()},
                                        None if labels is None else labels.to(device),
                                        AttributionSettings(views=views, steps=steps))
                values = signed_token_scores(attribution.attributions, attribution.attention_mask)[0, 0]
            else:
                values = self._captum_scores(model, inputs, views, labels, method, steps, signed)
            self._cache[key] = values.cpu().numpy()
        return self._cache[key]

    def faithfulness(self, index, who, rationale):
        model = self.models[who]
        if model.config.num_labels < 2:
            return None
        inputs = self.examples[index].inputs
        special = torch.isin(inputs["input_ids"], torch.tensor(self.tokenizer.all_special_ids))
        result = eraser_scores(model, inputs, torch.as_tensor(rationale)[None], special)
        return {name: float(result[name][0]) for name in ("comprehensiveness", "sufficiency")}

    @staticmethod
    def _captum_scores(model, inputs, views, labels, method, steps, signed) -> torch.Tensor:
        from kdviz.captum_bridge import captum_embedding_attributions

        device = next(model.parameters()).device
        inputs = {k: v.to(device) for k, v in inputs.items()}
        labels = None if labels is None else labels.to(device)

        def target(logits):  # the same target as kdviz's own view; captum expands the batch to N copies
            gold = None if labels is None else labels.expand(len(logits))
            return view_targets(logits.unsqueeze(0), gold, views)[0]

        raw = captum_embedding_attributions(model, inputs["input_ids"], inputs["attention_mask"],
                                            inputs.get("token_type_ids"), target, method=method, steps=max(steps, 2))
        summary = signed_token_scores if signed else token_scores
        return summary(raw.detach().unsqueeze(1), inputs["attention_mask"])[0, 0]


class RunAttributionSource:
    """A run's probe set replayed: the teacher's scores fixed, the student's at each logged step.

    Args:
        run: a run folder or a loaded :class:`~kdviz.runs.Run`.

    Raises:
        ValueError: the run recorded no probe attributions (``probe_size`` 0).
    """

    captum = False  # a run records kdviz's scores only
    signed_meaning = "positive: towards the predicted class, negative: against it"

    def __init__(self, run: Run | str):
        self.run = load_run(run) if not isinstance(run, Run) else run
        if not self.run.probe_student:
            raise ValueError(f"{self.run.path} has no probe attributions (was probe_size 0?).")
        self.training_steps = sorted(self.run.probe_student)
        self.label_names = list(self.run.teacher.label_names) if self.run.teacher else []
        self.examples = [Example(p.text, p.label, p.tokens) for p in self.run.probe]
        self.signed = self.run.probe_teacher is not None and self.run.probe_teacher.signed is not None
        self.steps_choices = (self.run.config.ig_steps,)
        views = self.run.config.attribution_settings(max(len(self.label_names), 1)).views
        self.view_names = self.label_names if views == "classes" else \
            ["gold label"] if views == "gold" else [self.label_names[views]]

    def probabilities(self, training_step=None):
        step = training_step or self.training_steps[-1]
        return probabilities(self.run.probe_teacher.logits), probabilities(self.run.probe_student[step].logits)

    def faithfulness(self, index, who, rationale):
        return None  # the run's metrics hold the probe set's averages; single examples need the models

    def scores(self, index, who, view, steps, method="kdviz", training_step=None, signed=False):
        recorded = self.run.probe_teacher if who == "teacher" else \
            self.run.probe_student[training_step or self.training_steps[-1]]
        length = len(self.examples[index].tokens)
        if signed:
            if recorded.signed is None:
                raise ValueError(f"{self.run.path} recorded no signed scores (a run of kdviz 0.1, or a regression).")
            return recorded.signed[index, :length].cpu().numpy()
        return recorded.scores[index, view, :length].cpu().numpy()


def probe_rationales(runs: dict[str, Run], index: int, *, signed: bool = False) -> tuple[list[str], dict]:
    """One probe example's rationales in several runs of the same teacher: the teacher's, then each
    run's student at its last logged step, for a heatmap (:func:`kdviz.viz.render.token_heatmap_html`).

    Args:
        runs: label -> a loaded run; every run recorded the same probe set with the same teacher.
        index: the probe example.
        signed: the signed scores towards the predicted class instead of the magnitudes (view 0).

    Returns:
        ``(tokens, rows)``: the example's tokens and ``{"teacher": (L,), label: (L,) ...}``.

    Raises:
        ValueError: the runs' probe sets or teachers' scores differ.
    """
    first = next(iter(runs.values()))
    tokens = first.probe[index].tokens

    def row(scores):
        values = scores.signed[index] if signed else scores.scores[index, 0]
        return values[:len(tokens)].numpy()

    rows = {"teacher": row(first.probe_teacher)}
    for label, run in runs.items():
        if run.probe[index].tokens != tokens or not np.allclose(row(run.probe_teacher), rows["teacher"], atol=1e-5):
            raise ValueError(f"Run {label!r} recorded another probe set or teacher than {next(iter(runs))!r}.")
        rows[label] = row(run.probe_student[max(run.probe_student)])
    return tokens, rows


@dataclass
class LayerAttentionData:
    """What :class:`~kdviz.viz.layer_view.LayerAttentionView` shows.

    Attributes:
        history: (step, (M, N) alpha) per logged step, the data-set mean of its window.
        student_layers, teacher_layers: ``hidden_states`` indices of the rows and columns.
        mask: (M, N) the pairs the variant allows.
        variant: the layer-projection variant's name.
        per_example: index -> (M, N) alpha of one example, when models are live.
        num_examples: how many examples ``per_example`` takes.
    """

    history: list[tuple[int, np.ndarray]]
    student_layers: list[int]
    teacher_layers: list[int]
    mask: np.ndarray | None
    variant: str
    per_example: Callable[[int], np.ndarray] | None = None
    num_examples: int = 0


def layer_attention_from_run(run: Run | str) -> LayerAttentionData:
    """A run's ALP weights, one matrix per logged step (averaged over its logging window).

    Raises:
        ValueError: the run was trained without the layer-projection loss.
    """
    from kdviz.projection import layer_indices, layer_mask

    run = load_run(run) if not isinstance(run, Run) else run
    if not run.alp_weights:
        raise ValueError(f"{run.path} recorded no ALP weights: it was trained without the layer-projection loss.")
    options = run.config.terms["layer_projection"]
    alpha = np.asarray(run.alp_weights[-1].alpha)
    embeddings = options.include_embeddings
    students, teachers = alpha.shape[0] - int(embeddings), alpha.shape[1] - int(embeddings)
    mask = layer_mask(options.variant, students, teachers, include_embeddings=embeddings,
                      overlap=options.overlap).cpu().numpy()
    return LayerAttentionData([(w.step, np.asarray(w.alpha)) for w in run.alp_weights],
                              layer_indices(students, embeddings), layer_indices(teachers, embeddings), mask,
                              options.variant)


def layer_attention_from_models(teacher, student, projection, tokenizer, dataset, task, *, max_examples: int = 64,
                                max_length: int = 128) -> LayerAttentionData:
    """Per-example ALP weights and their data-set mean from live teacher, student and projection.

    Args:
        teacher, student: the models (left on their device).
        projection: a :class:`~kdviz.projection.LayerProjection` (on the student's device).
        tokenizer, dataset, task: the examples (the first ``max_examples`` rows of a split).
    """
    from transformers import DataCollatorWithPadding

    from kdviz.data import tokenize_glue

    dataset = dataset.select(range(min(max_examples, len(dataset))))
    encoded = tokenize_glue(dataset, tokenizer, task, max_length)
    batch = DataCollatorWithPadding(tokenizer)([{k: row[k] for k in MODEL_INPUTS if k in row} for row in encoded])

    def hidden_states(model):
        device = next(model.parameters()).device
        with torch.no_grad():
            return model.eval()(**{k: v.to(device) for k, v in batch.items()}, output_hidden_states=True).hidden_states

    student_device = next(student.parameters()).device
    with torch.no_grad():
        teacher_states = tuple(h.to(student_device) for h in hidden_states(teacher))
        alpha = projection(hidden_states(student), teacher_states,
                           batch["attention_mask"].to(student_device)).alpha.cpu().numpy()
    return LayerAttentionData([(0, alpha.mean(0))], projection.student_layers, projection.teacher_layers,
                              projection.mask.cpu().numpy(), projection.variant, lambda i: alpha[i], len(alpha))
