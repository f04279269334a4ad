"""``AgreementView``: several runs' teacher-student rationale agreement over training, side by side."""

from __future__ import annotations

import ipywidgets as widgets

from kdviz.viz.agreement_render import MEASURE_NAMES, agreement_table_html
from kdviz.viz.history_figures import agreement_figure
from kdviz.viz.view_base import View


class AgreementView(View):
    """Several runs' rationale agreement with their teachers over training, side by side.

    Args:
        runs: label -> a run folder or a loaded run (each recorded ``history/agreement.jsonl``).

    Raises:
        ValueError: a run recorded no agreement (``agreement_size`` 0 and ``probe_size`` 0).
    """

    export_name = "agreement"

    def __init__(self, runs: dict):
        from kdviz.runs import Run, load_run

        loaded = {label: run if isinstance(run, Run) else load_run(run) for label, run in runs.items()}
        missing = [label for label, run in loaded.items() if not run.agreement]
        if missing:
            raise ValueError(f"No agreement recorded by {missing}: those runs had agreement_size and probe_size 0.")
        self.curves = {label: run.agreement for label, run in loaded.items()}
        self.floors = {label: run.agreement_uniform for label, run in loaded.items()}
        self._start({"measure": widgets.ToggleButtons(options=[(name, key) for key, name in MEASURE_NAMES.items()],
                                                      description="measure", style={"button_width": "auto"})})
        self.controls["measure"].observe(lambda change: self.refresh(), names="value")
        self.refresh()

    def render_html(self) -> str:
        """The table of the chosen measure, one row per run (no script)."""
        measure = self.controls["measure"].value
        return agreement_table_html(self.curves, measure, floors=self.floors,
                                    title=f"teacher-student {MEASURE_NAMES[measure]} of the token scores by step")

    def figure(self):
        """Every measure's curves, one line per run, with step 0 marked and the flat students' agreement
        as dashed references (one line when the runs share it: the same teacher and probe set)."""
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

    def _rows(self) -> list[widgets.Widget]:
        return [self.controls["measure"], self.html, self._export_buttons(), self.status]
