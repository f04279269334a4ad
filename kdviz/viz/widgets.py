"""Interactive views built from core ipywidgets only (JupyterLab, Notebook, VS Code, Colab).

``AttributionView``: teacher vs student token attributions, example by example.
``LayerAttentionView``: the ALP weights (student layers x teacher layers), over training or per example.
``AgreementView``: several runs' teacher-student rationale agreement over training.

A view holds state and layout only: its numbers come from a source (:mod:`kdviz.viz.sources`: live
models, or a run folder), its pictures from :mod:`kdviz.viz.render` and :mod:`kdviz.viz.layer_render`.
Each shows a static HTML
rendering where no widget frontend runs (``_repr_html_``).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Iterable

import ipywidgets as widgets
import numpy as np

from kdviz.agreement import token_agreement
from kdviz.captum_bridge import CAPTUM_METHODS
from kdviz.faithfulness import FRACTION
from kdviz.viz.agreement_render import MEASURE_NAMES, agreement_table_html
from kdviz.viz.layer_render import (fitted_scale, layer_attention_figure, layer_attention_history_html,
                                    layer_attention_html, layer_attention_small_multiples)
from kdviz.viz.render import attribution_comparison_html, attribution_figure
from kdviz.viz.sources import (AttributionSource, LayerAttentionData, LiveAttributionSource, RunAttributionSource,
                               layer_attention_from_models, layer_attention_from_run)

CORRECTNESS = ("all", "both right", "both wrong", "teacher right, student wrong", "student right, teacher wrong")
ORDERS = ("data set order", "teacher-student disagreement")
WINDOW_MEAN, OVER_TRAINING = "logging-window mean", "weights over training"  # a run's records
EXAMPLES_MEAN, PER_EXAMPLE = "mean over examples", "per example"  # live models
CAPTUM_CHOICES = ("none", *CAPTUM_METHODS)
# ipywidgets clips a description to its label's box (overflow: hidden), and description_width
# "initial" makes that box exactly as wide as the text, so a letter whose ink starts a hair left of
# its advance ("t", "v", "c") loses its first pixel column. A little left padding keeps it whole.
_LABEL_STYLE = "<style>.kdviz-widget .widget-label { padding-left: 2px; }</style>"


def _view_box(children: list[widgets.Widget]) -> widgets.VBox:
    """Stack a view's rows in one box that carries the views' label style (``_LABEL_STYLE``)."""
    box = widgets.VBox([widgets.HTML(_LABEL_STYLE)] + children)
    box.add_class("kdviz-widget")
    return box


def _wrote(path: Path) -> str:
    """The status line after an export: where the file went."""
    import html

    return f"wrote <code>{html.escape(str(path.resolve()))}</code>"


def _write_png(figure, path: str | Path, status: widgets.HTML) -> Path:
    """Save a view's figure as PNG and say where in its status line."""
    path = Path(path)
    path.write_bytes(_png_bytes(figure))
    status.value = _wrote(path)
    return path


def _write_page(body: str, title: str, path: str | Path, status: widgets.HTML) -> Path:
    """Save a view's HTML as a standalone page (inline CSS, no script) and say where in its status line."""
    path = Path(path)
    path.write_text(f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>kdviz {title}</title></head>'
                    f'<body>{body}</body></html>', encoding="utf-8")
    status.value = _wrote(path)
    return path


def _widget_bundle(widget: widgets.Widget, **kwargs) -> dict:
    """A widget's display data: ipywidgets 8's ``_repr_mimebundle_``, or for 7.x (Colab's) the same
    widget-view entry that 7.x publishes from ``_ipython_display_``."""
    if hasattr(widget, "_repr_mimebundle_"):
        return widget._repr_mimebundle_(**kwargs) or {}
    return {"text/plain": repr(widget), "application/vnd.jupyter.widget-view+json": {
        "version_major": 2, "version_minor": 0, "model_id": widget.model_id}}


def _fit_descriptions(controls: Iterable[widgets.Widget]) -> None:
    """Size each control's description to its text (buttons have no description width to set)."""
    for control in controls:
        if hasattr(control, "style") and hasattr(control.style, "description_width"):
            control.style.description_width = "initial"


def _png_bytes(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


class AttributionView:
    """Browse teacher vs student token attributions, one example at a time.

    Build it from live models with :meth:`from_models`, or from a run folder with :meth:`from_run`
    (the probe set replayed at any logged training step). The controls live in ``self.controls``;
    ``self.widget`` is the whole view. Changing a control's ``value`` updates ``self.html``.

    Args:
        source: where the scores come from (:class:`~kdviz.viz.sources.AttributionSource`).
    """

    def __init__(self, source: AttributionSource):
        self.source = source
        self.examples, self.label_names = source.examples, source.label_names
        self.teacher_probs, self.student_probs = source.probabilities()
        view_options = [(name, i) for i, name in enumerate(source.view_names)]
        steps = source.steps_choices
        self.controls = {
            "example": widgets.IntSlider(min=0, max=max(len(self.examples) - 1, 0), description="example"),
            "previous": widgets.Button(description="◀ previous"),
            "next": widgets.Button(description="next ▶"),
            "label": widgets.Dropdown(options=["all"] + list(self.label_names), description="gold label"),
            "correctness": widgets.Dropdown(options=CORRECTNESS, description="correct"),
            "order": widgets.Dropdown(options=ORDERS, description="order"),
            "view": widgets.Dropdown(options=view_options, description="view", disabled=len(view_options) == 1),
            "steps": widgets.Dropdown(options=list(steps), value=steps[0], description="IG steps",
                                      disabled=len(steps) == 1),
            "captum": widgets.Dropdown(options=CAPTUM_CHOICES if source.captum else ("none",), description="captum",
                                       disabled=not source.captum),
            "merge_words": widgets.Checkbox(value=False, description="merge word pieces"),
            "signed": widgets.Checkbox(value=source.signed and source.training_steps is not None,
                                       description="signed scores too", disabled=not source.signed),
            "export_png": widgets.Button(description="export PNG"),
            "export_html": widgets.Button(description="export HTML"),
        }
        if source.training_steps:
            self.controls["training_step"] = widgets.SelectionSlider(
                options=source.training_steps, value=source.training_steps[-1], description="training step")
            self.controls["training_step"].observe(lambda change: self._update_probabilities(), names="value")
        _fit_descriptions(self.controls.values())
        self.export_dir = Path(".")
        self.last_export: dict[str, Path] = {}
        self.html = widgets.HTML()
        self.status = widgets.HTML()
        self.order: list[int] = list(range(len(self.examples)))
        for name in ("label", "correctness", "order"):
            self.controls[name].observe(lambda change: self._refilter(), names="value")
        for name in ("example", "view", "steps", "captum", "merge_words", "signed", "training_step"):
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
        return cls(LiveAttributionSource(teacher, student, tokenizer, dataset, task, max_length, top_k))

    @classmethod
    def from_run(cls, run) -> "AttributionView":
        """Replay a run's probe set (a run folder or a loaded run): teacher scores fixed, student scores at
        each logged step."""
        return cls(RunAttributionSource(run))

    def _update_probabilities(self) -> None:
        self.teacher_probs, self.student_probs = self.source.probabilities(self.controls["training_step"].value)
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
        return 1.0 - token_agreement(teacher, student)["cosine"]

    def scores(self, index: int, who: str, method: str = "kdviz", *, signed: bool = False) -> np.ndarray:
        """Token scores (L,) of an example under the current view, IG steps and training step: the
        magnitudes AD-KD transfers, or with ``signed`` which way each token pushes the class."""
        step = self.controls["training_step"].value if "training_step" in self.controls else None
        return self.source.scores(index, who, self.controls["view"].value, self.controls["steps"].value, method,
                                  training_step=step, signed=signed)

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
        agreement = token_agreement(teacher, student)
        name = lambda label: self.label_names[int(label)] if self.label_names else f"{float(label):.2f}"
        predicted = lambda probs: (f"{name(probs[i].argmax())} ({probs[i].max():.2f})" if probs.shape[-1] > 1
                                   else f"{probs[i, 0]:.2f}")
        header = (f"<p><b>#{i}</b> {' ║ '.join(html_lib.escape(t) for t in example.text)}</p>"
                  f"<p>gold: <b>{html_lib.escape(name(example.label))}</b> · teacher: "
                  f"{html_lib.escape(predicted(self.teacher_probs))} · student: "
                  f"{html_lib.escape(predicted(self.student_probs))}</p>"
                  f"<p>agreement: cosine {agreement['cosine']:.3f} · Spearman {agreement['spearman']:.3f} · "
                  f"top-3 overlap {agreement['top_k_overlap']:.2f}</p>")
        header += self._faithfulness_html(teacher, student)
        merge = self.controls["merge_words"].value
        heatmap = attribution_comparison_html(example.tokens, teacher, student, merge_words=merge,
                                              title="magnitudes (what AD-KD transfers)")
        if self.controls["signed"].value:
            heatmap += attribution_comparison_html(
                example.tokens, self.scores(i, "teacher", signed=True), self.scores(i, "student", signed=True),
                merge_words=merge, signed=True, title=f"signed ({self.source.signed_meaning})")
        return f'<div class="kdviz-attribution-view">{header}{heatmap}{self._captum_html()}</div>'

    def _faithfulness_html(self, teacher: np.ndarray, student: np.ndarray) -> str:
        """ERASER's measures for the current example, when the source can compute them."""
        rows = {"teacher": self.source.faithfulness(self.index, "teacher", teacher)}
        if rows["teacher"] is None:
            return ""
        rows["student"] = self.source.faithfulness(self.index, "student", student)
        rows["student on the teacher's tokens"] = self.source.faithfulness(self.index, "student", teacher)
        cells = " · ".join(f"{name} {values['comprehensiveness']:.3f} / {values['sufficiency']:.3f}"
                           for name, values in rows.items())
        return (f'<p title="comprehensiveness: the predicted class loses this much probability without the '
                f'rationale; sufficiency: it loses this much with the rationale alone">faithfulness of the top '
                f'{100 * FRACTION:.0f}% of tokens (comprehensiveness / sufficiency): {cells}</p>')

    def _captum_html(self) -> str:
        method = self.controls["captum"].value
        if method == "none":
            return ""
        example, i = self.examples[self.index], self.index
        signed = self.controls["signed"].value
        teacher = self.scores(i, "teacher", method, signed=signed)
        student = self.scores(i, "student", method, signed=signed)
        return attribution_comparison_html(example.tokens, teacher, student,
                                           title=f"captum {method}{', signed' if signed else ''}",
                                           merge_words=self.controls["merge_words"].value, signed=signed)

    def figure(self):
        """The current example's heatmaps as a matplotlib figure."""
        example, signed = self.examples[self.index], self.controls["signed"].value
        return attribution_figure(example.tokens, self.scores(self.index, "teacher", signed=signed),
                                  self.scores(self.index, "student", signed=signed), title=" ║ ".join(example.text)[:100],
                                  merge_words=self.controls["merge_words"].value, signed=signed)

    def refresh(self) -> None:
        """Re-render the current state into ``self.html``."""
        self.html.value = self.render_html()
        self.status.value = f"{len(self.order)} of {len(self.examples)} examples match"

    def export_png(self, path: str | Path | None = None) -> Path:
        """Write the current view as PNG (default: ``<export_dir>/attribution-<index>.png``)."""
        self.last_export["png"] = _write_png(self.figure(), path or self.export_dir / f"attribution-{self.index}.png",
                                             self.status)
        return self.last_export["png"]

    def export_html(self, path: str | Path | None = None) -> Path:
        """Write the current view as a standalone HTML page (inline CSS, no script)."""
        self.last_export["html"] = _write_page(self.render_html(), "attribution",
                                               path or self.export_dir / f"attribution-{self.index}.html", self.status)
        return self.last_export["html"]

    @property
    def widget(self) -> widgets.Widget:
        """The whole view as one ipywidgets box."""
        c = self.controls
        # rows wrap rather than squeeze: a squeezed control clips its description at the left
        wrap = widgets.Layout(flex_flow="row wrap")
        rows = [widgets.HBox([c["previous"], c["example"], c["next"]], layout=wrap),
                widgets.HBox([c["label"], c["correctness"], c["order"]], layout=wrap),
                widgets.HBox([c["view"], c["steps"], c["captum"], c["merge_words"], c["signed"]], layout=wrap)]
        if "training_step" in c:
            rows.append(c["training_step"])
        rows += [self.status, self.html, widgets.HBox([c["export_png"], c["export_html"]])]
        return _view_box(rows)

    def _repr_mimebundle_(self, **kwargs):
        bundle = _widget_bundle(self.widget, **kwargs)
        bundle["text/html"] = self.render_html()  # shown where no widget frontend runs
        return bundle

    def _repr_html_(self) -> str:
        return self.render_html()


class LayerAttentionView:
    """The ALP weights: each logging window's mean, their course over training, or one example's matrix.

    Build it from a run folder (:meth:`from_run`) or from live objects (:meth:`from_models`). The
    view is an HTML table (``self.html``), so a slider move redraws it at once; matplotlib runs only
    for a PNG export. Colours are fitted to the weights of the current mode.

    Args:
        data: what to show (:class:`~kdviz.viz.sources.LayerAttentionData`).
    """

    def __init__(self, data: LayerAttentionData):
        self.data = data
        self.history, self.student_layers, self.teacher_layers = data.history, data.student_layers, data.teacher_layers
        self.mask, self.per_example, self.variant = data.mask, data.per_example, data.variant
        live = data.per_example is not None
        modes = [EXAMPLES_MEAN if live else WINDOW_MEAN] if data.history else []
        modes += [OVER_TRAINING] if len(data.history) > 1 else []
        modes += [PER_EXAMPLE] if live else []
        if not modes:
            raise ValueError("Nothing to show: no ALP weights were recorded and no live models were given.")
        steps = [step for step, _ in data.history] or [0]
        self.controls = {
            "mode": widgets.ToggleButtons(options=modes, description="show", style={"button_width": "auto"}),
            "training_step": widgets.SelectionSlider(options=steps, value=steps[-1], description="training step"),
            "example": widgets.IntSlider(min=0, max=max(data.num_examples - 1, 0), description="example"),
            "export_png": widgets.Button(description="export PNG"),
            "export_html": widgets.Button(description="export HTML"),
        }
        self.export_dir = Path(".")
        self.html = widgets.HTML()
        self.status = widgets.HTML()
        _fit_descriptions(self.controls.values())
        for name in ("mode", "training_step", "example"):
            self.controls[name].observe(lambda change: self.refresh(), names="value")
        self.controls["export_png"].on_click(lambda _: self.export_png())
        self.controls["export_html"].on_click(lambda _: self.export_html())
        self.refresh()

    @classmethod
    def from_run(cls, run) -> "LayerAttentionView":
        """The run's ALP weights (a run folder or a loaded run), one matrix per logged step."""
        return cls(layer_attention_from_run(run))

    @classmethod
    def from_models(cls, teacher, student, projection, tokenizer, dataset, task, *, max_examples: int = 64,
                    max_length: int = 128) -> "LayerAttentionView":
        """Per-example weights and their data-set average from live teacher, student and projection."""
        return cls(layer_attention_from_models(teacher, student, projection, tokenizer, dataset, task,
                                               max_examples=max_examples, max_length=max_length))

    @property
    def _shown(self) -> tuple[np.ndarray, float, str]:
        """The matrix of the current state, its mode's colour scale and a title."""
        mode = self.controls["mode"].value
        if mode == PER_EXAMPLE:
            index = self.controls["example"].value
            every = [self.per_example(i) for i in range(self.data.num_examples)]
            return every[index], fitted_scale(every), f"{self.variant} weights, example {index}"
        if mode == EXAMPLES_MEAN:
            return self.history[-1][1], fitted_scale([self.history[-1][1]]), \
                f"{self.variant} weights, mean over {self.data.num_examples} examples"
        step = self.controls["training_step"].value
        return (dict(self.history)[step], fitted_scale([alpha for _, alpha in self.history]),
                f"{self.variant} weights, mean of the logging window ending at step {step}")

    def render_html(self) -> str:
        """The current state as standalone HTML (inline CSS, no script)."""
        if self.controls["mode"].value == OVER_TRAINING:
            return layer_attention_history_html(self.history, self.student_layers, self.teacher_layers, mask=self.mask,
                                                title=f"{self.variant} weights over training")
        alpha, scale, title = self._shown
        return layer_attention_html(alpha, self.student_layers, self.teacher_layers, mask=self.mask, scale=scale,
                                    title=title)

    def figure(self):
        """The current state as a matplotlib figure (PNG export)."""
        if self.controls["mode"].value == OVER_TRAINING:
            return layer_attention_small_multiples(self.history, self.student_layers, self.teacher_layers,
                                                   mask=self.mask, title=f"{self.variant} weights over training")
        alpha, scale, title = self._shown
        return layer_attention_figure(alpha, self.student_layers, self.teacher_layers, mask=self.mask, scale=scale,
                                      title=title)

    def refresh(self) -> None:
        """Re-render the current state into ``self.html`` (no matplotlib)."""
        self.html.value = self.render_html()
        mode = self.controls["mode"].value
        self.controls["training_step"].layout.display = None if mode == WINDOW_MEAN else "none"
        self.controls["example"].layout.display = None if mode == PER_EXAMPLE else "none"
        self.status.value = ""

    def export_png(self, path: str | Path | None = None) -> Path:
        """Write the current state as PNG (default: ``<export_dir>/layer-attention.png``)."""
        return _write_png(self.figure(), path or self.export_dir / "layer-attention.png", self.status)

    def export_html(self, path: str | Path | None = None) -> Path:
        """Write the current state as a standalone HTML page (default: ``<export_dir>/layer-attention.html``)."""
        return _write_page(self.render_html(), "layer attention", path or self.export_dir / "layer-attention.html",
                           self.status)

    @property
    def widget(self) -> widgets.Widget:
        """The whole view as one ipywidgets box."""
        c = self.controls
        sliders = [c["example"]] if self.per_example is not None else [c["training_step"]]
        return _view_box([c["mode"], *sliders, self.html, widgets.HBox([c["export_png"], c["export_html"]]),
                          self.status])

    def _repr_mimebundle_(self, **kwargs):
        bundle = _widget_bundle(self.widget, **kwargs)
        bundle["text/html"] = self.render_html()  # shown where no widget frontend runs
        return bundle

    def _repr_html_(self) -> str:
        return self.render_html()


class AgreementView:
    """Several runs' rationale agreement with their teachers over training, side by side.

    Args:
        runs: label -> a run folder or a loaded run (each recorded ``history/agreement.jsonl``).

    Raises:
        ValueError: a run recorded no agreement (``agreement_size`` 0 and ``probe_size`` 0).
    """

    def __init__(self, runs: dict):
        from kdviz.runs import Run, load_run

        loaded = {label: run if isinstance(run, Run) else load_run(run) for label, run in runs.items()}
        missing = [label for label, run in loaded.items() if not run.agreement]
        if missing:
            raise ValueError(f"No agreement recorded by {missing}: those runs had agreement_size and probe_size 0.")
        self.curves = {label: run.agreement for label, run in loaded.items()}
        self.floors = {label: run.agreement_uniform for label, run in loaded.items()}
        self.controls = {
            "measure": widgets.ToggleButtons(options=[(name, key) for key, name in MEASURE_NAMES.items()],
                                             description="measure", style={"button_width": "auto"}),
            "export_png": widgets.Button(description="export PNG"),
            "export_html": widgets.Button(description="export HTML"),
        }
        self.export_dir = Path(".")
        self.html, self.status = widgets.HTML(), widgets.HTML()
        _fit_descriptions(self.controls.values())
        self.controls["measure"].observe(lambda change: self.refresh(), names="value")
        self.controls["export_png"].on_click(lambda _: self.export_png())
        self.controls["export_html"].on_click(lambda _: self.export_html())
        self.refresh()

    def render_html(self) -> str:
        """The table of the chosen measure, one row per run (no script)."""
        measure = self.controls["measure"].value
        return agreement_table_html(self.curves, measure, floors=self.floors,
                                    title=f"teacher-student {MEASURE_NAMES[measure]} of the token scores by step")

    def figure(self):
        """Every measure's curves, one line per run, with step 0 marked and the flat students' agreement
        as dashed references (one line when the runs share it: the same teacher and probe set)."""
        from kdviz.report import agreement_figure

        floors = {label: floor for label, floor in self.floors.items() if floor}
        distinct = {tuple(sorted(floor.items())) for floor in floors.values()}
        references = {"flat student": next(iter(floors.values()))} if len(distinct) == 1 else \
            {f"flat student ({label})": floor for label, floor in floors.items()}
        return agreement_figure(self.curves, title="student vs teacher token scores over training",
                                references=references)

    def refresh(self) -> None:
        """Re-render the current state into ``self.html``."""
        self.html.value = self.render_html()
        self.status.value = ""

    def export_png(self, path: str | Path | None = None) -> Path:
        """Write the curves as PNG (default: ``<export_dir>/agreement.png``)."""
        return _write_png(self.figure(), path or self.export_dir / "agreement.png", self.status)

    def export_html(self, path: str | Path | None = None) -> Path:
        """Write the table as a standalone HTML page (default: ``<export_dir>/agreement.html``)."""
        return _write_page(self.render_html(), "agreement", path or self.export_dir / "agreement.html", self.status)

    @property
    def widget(self) -> widgets.Widget:
        """The whole view as one ipywidgets box."""
        c = self.controls
        return _view_box([c["measure"], self.html, widgets.HBox([c["export_png"], c["export_html"]]), self.status])

    def _repr_mimebundle_(self, **kwargs):
        bundle = _widget_bundle(self.widget, **kwargs)
        bundle["text/html"] = self.render_html()
        return bundle

    def _repr_html_(self) -> str:
        return self.render_html()
