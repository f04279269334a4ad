"""``LayerAttentionView``: ALP's weights over teacher layers (student layers x teacher layers), each
logging window's mean, their course over training, or one example's matrix."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from kdviz.viz.layer_render import (fitted_scale, layer_attention_figure, layer_attention_history_html,
                                    layer_attention_html, layer_attention_small_multiples)
from kdviz.viz.sources import LayerAttentionData, layer_attention_from_models, layer_attention_from_run
from kdviz.viz.view_base import View

WINDOW_MEAN, OVER_TRAINING = "logging-window mean", "weights over training"  # a run's records
EXAMPLES_MEAN, PER_EXAMPLE = "mean over examples", "per example"  # live models


class LayerAttentionView(View):
    """The ALP weights: each logging window's mean, their course over training, or one example's matrix.

    Build it from a run folder (:meth:`from_run`) or from live objects (:meth:`from_models`). The
    view is an HTML table (``self.html``), so a slider move redraws it at once; matplotlib runs only
    for a PNG export. Colours are fitted to the weights of the current mode.

    Args:
        data: what to show (:class:`~kdviz.viz.sources.LayerAttentionData`).
    """

    export_name = "layer attention"

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
        self._start({
            "mode": widgets.ToggleButtons(options=modes, description="show", style={"button_width": "auto"}),
            "training_step": widgets.SelectionSlider(options=steps, value=steps[-1], description="training step"),
            "example": widgets.IntSlider(min=0, max=max(data.num_examples - 1, 0), description="example"),
        })
        for name in ("mode", "training_step", "example"):
            self.controls[name].observe(lambda change: self.refresh(), names="value")
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

    def _rows(self) -> list[widgets.Widget]:
        c = self.controls
        sliders = [c["example"]] if self.per_example is not None else [c["training_step"]]
        return [c["mode"], *sliders, self.html, self._export_buttons(), self.status]
