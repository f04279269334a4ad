"""``AttributionView``: teacher vs student token attributions, example by example, live or replayed
from a run folder at any logged training step."""

from __future__ import annotations

from pathlib import Path

import ipywidgets as widgets
import numpy as np

from kdviz.agreement import token_agreement
from kdviz.captum_bridge import CAPTUM_METHODS
from kdviz.faithfulness import FRACTION
from kdviz.viz.render import attribution_comparison_html, attribution_figure
from kdviz.viz.sources import AttributionSource, LiveAttributionSource, RunAttributionSource
from kdviz.viz.view_base import View

CORRECTNESS = ("all", "both right", "both wrong", "teacher right, student wrong", "student right, teacher wrong")
ORDERS = ("data set order", "teacher-student disagreement")
CAPTUM_CHOICES = ("none", *CAPTUM_METHODS)


class AttributionView(View):
    """Browse teacher vs student token attributions, one example at a time.

    Build it from live models with :meth:`from_models`, or from a run folder with :meth:`from_run`
    (the probe set replayed at any logged training step). The controls live in ``self.controls``;
    ``self.widget`` is the whole view. Changing a control's ``value`` updates ``self.html``.

    Args:
        source: where the scores come from (:class:`~kdviz.viz.sources.AttributionSource`).
    """

    export_name = "attribution"

    def __init__(self, source: AttributionSource):
        self.source = source
        self.examples, self.label_names = source.examples, source.label_names
        self.teacher_probs, self.student_probs = source.probabilities()
        view_options = [(name, i) for i, name in enumerate(source.view_names)]
        steps = source.steps_choices
        controls = {
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
        }
        if source.training_steps:
            controls["training_step"] = widgets.SelectionSlider(
                options=source.training_steps, value=source.training_steps[-1], description="training step")
            controls["training_step"].observe(lambda change: self._update_probabilities(), names="value")
        self._start(controls)
        self.last_export: dict[str, Path] = {}
        self.order: list[int] = list(range(len(self.examples)))
        for name in ("label", "correctness", "order"):
            self.controls[name].observe(lambda change: self._refilter(), names="value")
        for name in ("example", "view", "steps", "captum", "merge_words", "signed", "training_step"):
            if name in self.controls:
                self.controls[name].observe(lambda change: self.refresh(), names="value")
        self.controls["previous"].on_click(lambda _: self.step(-1))
        self.controls["next"].on_click(lambda _: self.step(1))
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

    def _export_stem(self) -> str:
        return f"attribution-{self.index}"

    def export_png(self, path: str | Path | None = None) -> Path:
        """Write the current view as PNG (default: ``<export_dir>/attribution-<index>.png``)."""
        self.last_export["png"] = super().export_png(path)
        return self.last_export["png"]

    def export_html(self, path: str | Path | None = None) -> Path:
        """Write the current view as a standalone HTML page (inline CSS, no script)."""
        self.last_export["html"] = super().export_html(path)
        return self.last_export["html"]

    def _rows(self) -> list[widgets.Widget]:
        c = self.controls
        # rows wrap rather than squeeze: a squeezed control clips its description at the left
        wrap = widgets.Layout(flex_flow="row wrap")
        rows = [widgets.HBox([c["previous"], c["example"], c["next"]], layout=wrap),
                widgets.HBox([c["label"], c["correctness"], c["order"]], layout=wrap),
                widgets.HBox([c["view"], c["steps"], c["captum"], c["merge_words"], c["signed"]], layout=wrap)]
        if "training_step" in c:
            rows.append(c["training_step"])
        return rows + [self.status, self.html, self._export_buttons()]
