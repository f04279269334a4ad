"""Interactive views built from core ipywidgets only (JupyterLab, Notebook, VS Code, Colab).

``AttributionView``: teacher vs student token attributions, example by example.
``LayerAttentionView``: the ALP weights (student layers x teacher layers), over training or per example.

Each view keeps its state in plain attributes, renders through :mod:`kdviz.viz.render`, and
shows a static HTML rendering where no widget frontend runs (``_repr_html_``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import ipywidgets as widgets
import numpy as np
import torch

from kdviz.viz.render import (agreement_scores, attribution_comparison_html, attribution_figure,
                              layer_attention_figure, layer_attention_small_multiples)

CORRECTNESS = ("all", "both right", "both wrong", "teacher right, student wrong", "student right, teacher wrong")
ORDERS = ("data set order", "teacher-student disagreement")
CAPTUM_CHOICES = ("none", "input_x_gradient", "integrated_gradients", "deeplift")
# ipywidgets clips a description to its label's box (overflow: hidden), and description_width
# "initial" makes that box exactly as wide as the text, so a letter whose ink starts a hair left of
# its advance ("t", "v", "c") loses its first pixel column. A little left padding keeps it whole.
_LABEL_STYLE = "<style>.kdviz-widget .widget-label { padding-left: 2px; }</style>"


def _view_box(children: list[widgets.Widget]) -> widgets.VBox:
    """Stack a view's rows in one box that carries the views' label style (``_LABEL_STYLE``)."""
    box = widgets.VBox([widgets.HTML(_LABEL_STYLE)] + children)
    box.add_class("kdviz-widget")
    return box


def _fit_descriptions(controls: Iterable[widgets.Widget]) -> None:
    """Size each control's description to its text (buttons have no description width to set)."""
    for control in controls:
        if hasattr(control, "style") and hasattr(control.style, "description_width"):
            control.style.description_width = "initial"


@dataclass
class Example:
    """One example as a view shows it.

    Attributes:
        text: the example's text segments.
        label: gold label id (or score).
        tokens: the real tokens (shared by teacher and student).
        batch: model inputs of this example alone, (1, L) tensors.
    """

    text: list[str]
    label: int | float
    tokens: list[str]
    batch: dict[str, torch.Tensor]


def _probabilities(logits) -> np.ndarray:
    """Class probabilities (N, C) from logits, or the scores themselves for regression (N, 1)."""
    logits = torch.as_tensor(logits).float()
    return (torch.softmax(logits, -1) if logits.shape[-1] > 1 else logits).numpy()


def _png_bytes(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


class _AttributionSource:
    """Live models: computes teacher and student token scores on demand and caches them."""

    def __init__(self, teacher, student, tokenizer, dataset, task, max_length: int = 128, top_k: int | None = None):
        from kdviz.data import tokenize_glue
        from kdviz.tasks import get_task

        self.teacher, self.student, self.tokenizer = teacher.eval(), student.eval(), tokenizer
        self.task = get_task(task)
        self.top_k = top_k
        encoded = tokenize_glue(dataset, tokenizer, self.task, max_length)
        self.examples = []
        for row, raw in zip(encoded, dataset):
            batch = {k: torch.tensor([row[k]]) for k in ("input_ids", "token_type_ids", "attention_mask") if k in row}
            self.examples.append(Example([raw[c] for c in self.task.text_columns], raw["label"],
                                         tokenizer.convert_ids_to_tokens(row["input_ids"]), batch))
        self.teacher_probs, self.student_probs = self._probabilities()
        self._cache: dict[tuple, np.ndarray] = {}

    def _probabilities(self) -> tuple[np.ndarray, np.ndarray]:
        from transformers import DataCollatorWithPadding

        collate = DataCollatorWithPadding(self.tokenizer)
        outputs = {"teacher": [], "student": []}
        with torch.no_grad():
            for start in range(0, len(self.examples), 64):
                chunk = [{k: v[0].tolist() for k, v in e.batch.items()} for e in self.examples[start:start + 64]]
                batch = collate(chunk)
                for name, model in (("teacher", self.teacher), ("student", self.student)):
                    outputs[name].append(model(**batch).logits)
        return tuple(_probabilities(torch.cat(outputs[name])) for name in ("teacher", "student"))

    def scores(self, index: int, who: str, view: int, steps: int, method: str = "kdviz") -> np.ndarray:
        """Normalised token scores (L,) of one example, view (class) and method; cached."""
        key = (index, who, view, steps, method)
        if key not in self._cache:
            from kdviz.attribution import attribute, token_scores

            model = self.teacher if who == "teacher" else self.student
            batch = self.examples[index].batch
            mask = batch["attention_mask"]
            if method == "kdviz":
                regression = model.config.num_labels == 1  # attribute the score's squared error instead
                result = attribute(model, batch["input_ids"], mask, batch.get("token_type_ids"),
                                   torch.tensor([float(self.examples[index].label)]) if regression else None,
                                   views="gold" if regression else view, steps=steps)
                top_k = self.top_k if who == "teacher" else None
                values = result.token_scores(top_k)[0, 0]
            else:
                from kdviz.captum_bridge import captum_embedding_attributions

                target = lambda logits: -torch.log_softmax(logits, -1)[:, view]
                raw = captum_embedding_attributions(model, batch["input_ids"], mask, batch.get("token_type_ids"),
                                                    target, method=method, steps=max(steps, 2))
                values = token_scores(raw.detach().unsqueeze(1), mask)[0, 0]
            self._cache[key] = values.detach().numpy()
        return self._cache[key]


class AttributionView:
    """Browse teacher vs student token attributions, one example at a time.

    Build it from live models with :meth:`from_models`, or from a run folder with :meth:`from_run`
    (the probe set replayed at any logged training step). The controls live in ``self.controls``;
    ``self.widget`` is the whole view. Changing a control's ``value`` updates ``self.html``.
    """

    def __init__(self, *, examples: list[Example], label_names: list[str], teacher_probs: np.ndarray,
                 student_probs: np.ndarray, scores: Callable[..., np.ndarray], steps_choices=(1, 8, 32),
                 training_steps: list[int] | None = None, captum: bool = True):
        self.examples, self.label_names = examples, label_names
        self.teacher_probs, self.student_probs = teacher_probs, student_probs
        self._scores = scores
        self.training_steps = training_steps
        view_options = [(name, i) for i, name in enumerate(label_names)] or [("score", 0)]
        self.controls = {
            "example": widgets.IntSlider(min=0, max=max(len(examples) - 1, 0), description="example"),
            "previous": widgets.Button(description="◀ previous"),
            "next": widgets.Button(description="next ▶"),
            "label": widgets.Dropdown(options=["all"] + list(label_names), description="gold label"),
            "correctness": widgets.Dropdown(options=CORRECTNESS, description="correct"),
            "order": widgets.Dropdown(options=ORDERS, description="order"),
            "view": widgets.Dropdown(options=view_options, description="view (class)"),
            "steps": widgets.Dropdown(options=list(steps_choices), value=steps_choices[0], description="IG steps"),
            "captum": widgets.Dropdown(options=CAPTUM_CHOICES if captum else ("none",), description="captum"),
            "merge_words": widgets.Checkbox(value=False, description="merge word pieces"),
            "export_png": widgets.Button(description="export PNG"),
            "export_html": widgets.Button(description="export HTML"),
        }
        if training_steps:
            self.controls["training_step"] = widgets.SelectionSlider(
                options=training_steps, value=training_steps[-1], description="training step")
        _fit_descriptions(self.controls.values())
        self.export_dir = Path(".")
        self.last_export: dict[str, Path] = {}
        self.html = widgets.HTML()
        self.captum_html = widgets.HTML()
        self.status = widgets.HTML()
        self.order: list[int] = list(range(len(examples)))
        for name in ("label", "correctness", "order"):
            self.controls[name].observe(lambda change: self._refilter(), names="value")
        for name in ("example", "view", "steps", "captum", "merge_words", "training_step"):
            if name in self.controls:
                self.controls[name].observe(lambda change: self.refresh(), names="value")
        self.controls["previous"].on_click(lambda _: self.step(-1))
        self.controls["next"].on_click(lambda _: self.step(1))
        self.controls["export_png"].on_click(lambda _: self.export_png())
        self.controls["export_html"].on_click(lambda _: self.export_html())
        self._refilter()

    @classmethod
    def from_models(cls, teacher, student, tokenizer, dataset, task, *, max_examples: int = 200,
                    top_k: int | None = None, max_length: int = 128) -> "AttributionView":
        """A view over the first ``max_examples`` rows of a ``load_glue`` split, attributions computed lazily."""
        dataset = dataset.select(range(min(max_examples, len(dataset))))
        source = _AttributionSource(teacher, student, tokenizer, dataset, task, max_length, top_k)
        view = cls(examples=source.examples, label_names=list(source.task.label_names),
                   teacher_probs=source.teacher_probs, student_probs=source.student_probs,
                   scores=lambda index, who, view, steps, method, training_step=None:
                   source.scores(index, who, view, steps, method))
        view.source = source
        return view

    @classmethod
    def from_run(cls, run) -> "AttributionView":
        """Replay a run's probe set: teacher scores fixed, student scores at each logged step."""
        from kdviz.runs import load_run

        run = load_run(run) if not hasattr(run, "probe_student") else run
        if not run.probe_student:
            raise ValueError(f"{run.path} has no probe attributions (was probe_size 0?).")
        steps = sorted(run.probe_student)
        label_names = list(run.teacher.get("label_names", []))
        examples = [Example(p["text"], p["label"], p["tokens"], {}) for p in run.probe]

        def scores(index, who, view, ig_steps, method, training_step=None):
            source = run.probe_teacher if who == "teacher" else run.probe_student[training_step or steps[-1]]
            length = len(examples[index].tokens)
            view = min(view, source["scores"].shape[1] - 1)
            return source["scores"][index, view, :length].numpy()

        view = cls(examples=examples, label_names=label_names,
                   teacher_probs=_probabilities(run.probe_teacher["logits"]),
                   student_probs=_probabilities(run.probe_student[steps[-1]]["logits"]), scores=scores,
                   steps_choices=(int(run.config.get("ig_steps", 1)),), training_steps=steps, captum=False)
        view._run = run
        # what training recorded is fixed: one IG setting, and one view unless per-class views were recorded
        view.controls["steps"].disabled = view.controls["captum"].disabled = True
        view.controls["view"].disabled = run.probe_teacher["scores"].shape[1] == 1
        view.controls["training_step"].observe(lambda change: view._update_student_probs(), names="value")
        return view

    def _update_student_probs(self) -> None:
        self.student_probs = _probabilities(self._run.probe_student[self.controls["training_step"].value]["logits"])
        self._refilter()

    # state -------------------------------------------------------------------------------------
    @property
    def index(self) -> int:
        """The data set position of the example shown."""
        return self.order[self.controls["example"].value] if self.order else -1

    def _predictions(self, probs: np.ndarray) -> np.ndarray:
        return probs.argmax(-1) if probs.shape[-1] > 1 else probs[:, 0]

    def _refilter(self) -> None:
        labels = np.array([e.label for e in self.examples])
        keep = np.ones(len(self.examples), dtype=bool)
        if self.controls["label"].value != "all":
            keep &= labels == self.label_names.index(self.controls["label"].value)
        if self.label_names:
            teacher_right = self._predictions(self.teacher_probs) == labels
            student_right = self._predictions(self.student_probs) == labels
            choice = self.controls["correctness"].value
            keep &= {"all": np.ones_like(keep), "both right": teacher_right & student_right,
                     "both wrong": ~teacher_right & ~student_right,
                     "teacher right, student wrong": teacher_right & ~student_right,
                     "student right, teacher wrong": ~teacher_right & student_right}[choice]
        order = list(np.flatnonzero(keep))
        if self.controls["order"].value == ORDERS[1]:
            order.sort(key=lambda i: -self.disagreement(i))
        self.order = [int(i) for i in order]
        slider = self.controls["example"]
        slider.max = max(len(self.order) - 1, 0)
        slider.value = min(slider.value, slider.max)
        self.refresh()

    def disagreement(self, index: int) -> float:
        """1 - cosine between teacher and student scores of an example (current view and steps)."""
        teacher, student = self.scores(index, "teacher"), self.scores(index, "student")
        return 1.0 - agreement_scores(teacher, student)["cosine"]

    def scores(self, index: int, who: str, method: str = "kdviz") -> np.ndarray:
        """Token scores of an example under the current view, IG steps and training step."""
        step = self.controls["training_step"].value if "training_step" in self.controls else None
        return self._scores(index, who, self.controls["view"].value, self.controls["steps"].value, method,
                            training_step=step)

    def step(self, offset: int) -> None:
        """Move the example slider by ``offset`` (the previous/next buttons)."""
        slider = self.controls["example"]
        slider.value = int(np.clip(slider.value + offset, 0, slider.max))

    # rendering ---------------------------------------------------------------------------------
    def render_html(self) -> str:
        """The current example as standalone HTML: text, label, predictions, heatmaps, agreement."""
        import html as html_lib

        if self.index < 0:
            return "<p>No example matches the filters.</p>"
        example, i = self.examples[self.index], self.index
        teacher, student = self.scores(i, "teacher"), self.scores(i, "student")
        agreement = agreement_scores(teacher, student)
        name = lambda label: self.label_names[int(label)] if self.label_names else f"{float(label):.2f}"
        predicted = lambda probs: (f"{name(probs[i].argmax())} ({probs[i].max():.2f})" if probs.shape[-1] > 1
                                   else f"{probs[i, 0]:.2f}")
        header = (f"<p><b>#{i}</b> {' ║ '.join(html_lib.escape(t) for t in example.text)}</p>"
                  f"<p>gold: <b>{html_lib.escape(name(example.label))}</b> · teacher: "
                  f"{html_lib.escape(predicted(self.teacher_probs))} · student: "
                  f"{html_lib.escape(predicted(self.student_probs))}</p>"
                  f"<p>agreement: cosine {agreement['cosine']:.3f} · Spearman {agreement['spearman']:.3f} · "
                  f"top-3 overlap {agreement['top_k_overlap']:.2f}</p>")
        heatmap = attribution_comparison_html(example.tokens, teacher, student,
                                              merge_words=self.controls["merge_words"].value)
        return f'<div class="kdviz-attribution-view">{header}{heatmap}{self._captum_html()}</div>'

    def _captum_html(self) -> str:
        method = self.controls["captum"].value
        if method == "none":
            return ""
        example, i = self.examples[self.index], self.index
        teacher, student = self.scores(i, "teacher", method), self.scores(i, "student", method)
        return attribution_comparison_html(example.tokens, teacher, student, title=f"captum {method}",
                                           merge_words=self.controls["merge_words"].value)

    def figure(self):
        """The current example's heatmaps as a matplotlib figure."""
        example = self.examples[self.index]
        return attribution_figure(example.tokens, self.scores(self.index, "teacher"),
                                  self.scores(self.index, "student"), title=" ║ ".join(example.text)[:100],
                                  merge_words=self.controls["merge_words"].value)

    def refresh(self) -> None:
        """Re-render the current state into ``self.html``."""
        self.html.value = self.render_html()
        self.status.value = f"{len(self.order)} of {len(self.examples)} examples match"

    def export_png(self, path: str | Path | None = None) -> Path:
        """Write the current view as PNG (default: ``<export_dir>/attribution-<index>.png``)."""
        path = Path(path or self.export_dir / f"attribution-{self.index}.png")
        path.write_bytes(_png_bytes(self.figure()))
        self.last_export["png"] = path
        return path

    def export_html(self, path: str | Path | None = None) -> Path:
        """Write the current view as a standalone HTML page (inline CSS, no script)."""
        path = Path(path or self.export_dir / f"attribution-{self.index}.html")
        path.write_text(f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>kdviz attribution</title></head>'
                        f'<body>{self.render_html()}</body></html>', encoding="utf-8")
        self.last_export["html"] = path
        return path

    @property
    def widget(self) -> widgets.Widget:
        """The whole view as one ipywidgets box."""
        c = self.controls
        # rows wrap rather than squeeze: a squeezed control clips its description at the left
        wrap = widgets.Layout(flex_flow="row wrap")
        rows = [widgets.HBox([c["previous"], c["example"], c["next"]], layout=wrap),
                widgets.HBox([c["label"], c["correctness"], c["order"]], layout=wrap),
                widgets.HBox([c["view"], c["steps"], c["captum"], c["merge_words"]], layout=wrap)]
        if "training_step" in c:
            rows.append(c["training_step"])
        rows += [self.status, self.html, widgets.HBox([c["export_png"], c["export_html"]])]
        return _view_box(rows)

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs) or {}
        bundle["text/html"] = self.render_html()  # shown where no widget frontend runs
        return bundle

    def _repr_html_(self) -> str:
        return self.render_html()


class LayerAttentionView:
    """The ALP weights: a data-set average over logged training steps, or one example's matrix.

    Build it from a run folder (:meth:`from_run`) or from live objects (:meth:`from_models`).
    ``self.image`` holds the PNG of the current state.
    """

    def __init__(self, *, history: list[tuple[int, np.ndarray]], student_layers, teacher_layers, mask=None,
                 per_example: Callable[[int], np.ndarray] | None = None, num_examples: int = 0, variant: str = "alp"):
        self.history, self.student_layers, self.teacher_layers = history, list(student_layers), list(teacher_layers)
        self.mask, self.per_example, self.variant = mask, per_example, variant
        modes = ["average over training"] if history else []
        modes += ["per example"] if per_example is not None else []
        modes += ["small multiples"] if len(history) > 1 else []
        if not modes:
            raise ValueError("Nothing to show: no ALP weights were recorded and no live models were given.")
        steps = [step for step, _ in history] or [0]
        self.controls = {
            "mode": widgets.ToggleButtons(options=modes, description="show",
                                         style={"button_width": "auto"}),
            "training_step": widgets.SelectionSlider(options=steps, value=steps[-1], description="training step"),
            "example": widgets.IntSlider(min=0, max=max(num_examples - 1, 0), description="example"),
        }
        self.image = widgets.Image(format="png")
        self.image.add_class("kdviz-layer-attention")  # a stable hook for browser tests and page styles
        _fit_descriptions(self.controls.values())
        for control in self.controls.values():
            control.observe(lambda change: self.refresh(), names="value")
        self.refresh()

    @classmethod
    def from_run(cls, run) -> "LayerAttentionView":
        """The run's ALP weights, one matrix per logged step (averaged over its logging window)."""
        from kdviz.projection import layer_indices, layer_mask
        from kdviz.runs import load_run

        run = load_run(run) if not hasattr(run, "alp_weights") else run
        if not run.alp_weights:
            raise ValueError(f"{run.path} recorded no ALP weights: it was trained without the layer-projection loss.")
        config = run.config
        alpha = np.asarray(run.alp_weights[-1]["alpha"])
        embeddings = bool(config.get("alp_include_embeddings"))
        students = alpha.shape[0] - int(embeddings)
        teachers = alpha.shape[1] - int(embeddings)
        mask = layer_mask(config["alp_variant"], students, teachers, include_embeddings=embeddings,
                          overlap=config.get("alp_overlap", 1)).numpy()
        history = [(r["step"], np.asarray(r["alpha"])) for r in run.alp_weights]
        return cls(history=history, student_layers=layer_indices(students, embeddings),
                   teacher_layers=layer_indices(teachers, embeddings), mask=mask, variant=config["alp_variant"])

    @classmethod
    def from_models(cls, teacher, student, projection, tokenizer, dataset, task, *, max_examples: int = 64,
                    max_length: int = 128) -> "LayerAttentionView":
        """Per-example weights and their data-set average from live teacher, student and projection."""
        from transformers import DataCollatorWithPadding

        from kdviz.data import tokenize_glue

        dataset = dataset.select(range(min(max_examples, len(dataset))))
        encoded = tokenize_glue(dataset, tokenizer, task, max_length)
        rows = [{k: row[k] for k in ("input_ids", "token_type_ids", "attention_mask") if k in row} for row in encoded]
        batch = DataCollatorWithPadding(tokenizer)(rows)
        with torch.no_grad():
            out_s = student.eval()(**batch, output_hidden_states=True)
            out_t = teacher.eval()(**batch, output_hidden_states=True)
            alpha = projection(out_s.hidden_states, out_t.hidden_states, batch["attention_mask"]).alpha.numpy()
        return cls(history=[(0, alpha.mean(0))], student_layers=projection.student_layers,
                   teacher_layers=projection.teacher_layers, mask=projection.mask.numpy(),
                   per_example=lambda i: alpha[i], num_examples=len(alpha), variant=projection.variant)

    def figure(self):
        """The figure of the current state."""
        mode = self.controls["mode"].value
        if mode == "small multiples":
            return layer_attention_small_multiples(self.history, self.student_layers, self.teacher_layers,
                                                   mask=self.mask, title=f"{self.variant} weights over training")
        if mode == "per example":
            index = self.controls["example"].value
            return layer_attention_figure(self.per_example(index), self.student_layers, self.teacher_layers,
                                          mask=self.mask, title=f"{self.variant} weights, example {index}")
        step = self.controls["training_step"].value
        alpha = dict(self.history)[step]
        return layer_attention_figure(alpha, self.student_layers, self.teacher_layers, mask=self.mask,
                                      title=f"{self.variant} weights, data-set mean at step {step}")

    def refresh(self) -> None:
        """Re-render the current state into ``self.image``."""
        self.image.value = _png_bytes(self.figure())

    def export_png(self, path: str | Path) -> Path:
        """Write the current figure as PNG."""
        path = Path(path)
        path.write_bytes(self.image.value)
        return path

    @property
    def widget(self) -> widgets.Widget:
        """The whole view as one ipywidgets box."""
        c = self.controls
        shown = [c["mode"]] + ([c["training_step"]] if self.history else []) + \
            ([c["example"]] if self.per_example is not None else [])
        return _view_box(shown + [self.image])

    def _repr_mimebundle_(self, **kwargs):
        import base64

        bundle = self.widget._repr_mimebundle_(**kwargs) or {}
        bundle["image/png"] = base64.b64encode(self.image.value).decode()
        return bundle

    def _repr_png_(self) -> bytes:
        return self.image.value
