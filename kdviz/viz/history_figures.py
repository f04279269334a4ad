"""Figures of a run's history: the training loss, each loss term, and the rationale agreement over
training; and writing a figure as PNG. Used by the run reports (:mod:`kdviz.report`), the notebooks
and :class:`~kdviz.viz.agreement_view.AgreementView`.
"""

from __future__ import annotations

from pathlib import Path


def write_loss_figure(path: Path, log_history: list[dict], title: str) -> Path:
    """Plot the training loss (and dev main metric when logged) from ``Trainer.state.log_history``.

    Args:
        path: PNG file to write (its folder is created).
        log_history: ``trainer.state.log_history``.
        title: figure title.

    Returns:
        ``path``.
    """
    from matplotlib.figure import Figure

    steps = [r["step"] for r in log_history if "loss" in r]
    losses = [r["loss"] for r in log_history if "loss" in r]
    figure = Figure(figsize=(5, 3), dpi=100)
    axes = figure.add_subplot()
    axes.plot(steps, losses, marker=".")
    axes.set_xlabel("training step")
    axes.set_ylabel("training loss")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def write_loss_terms_figure(path: Path, records: list[dict], title: str) -> Path:
    """Write :func:`loss_terms_figure` as a PNG at ``path`` (its folder is created) and return ``path``."""
    return write_figure(path, loss_terms_figure(records, title))


def loss_terms_figure(records: list[dict], title: str):
    """Each logged loss term (``loss_<term>``) against the training step, one panel per term, each
    axis from zero with the first and last values and their relative change in the panel's title.

    Args:
        records: the run's loss-term records (:meth:`kdviz.runs.RunFolder.loss_terms`; step 0 is the
            first batch before any update).
        title: figure title.

    Returns:
        A matplotlib ``Figure``.
    """
    from matplotlib.figure import Figure

    names = sorted({k for r in records for k in r if k.startswith("loss_")})
    figure = Figure(figsize=(3.2 * max(len(names), 1), 2.8), dpi=100)
    for i, name in enumerate(names, start=1):
        axes = figure.add_subplot(1, len(names), i)
        points = [(r["step"], r[name]) for r in records if name in r]
        axes.plot([p[0] for p in points], [p[1] for p in points], marker=".")
        first, last = points[0][1], points[-1][1]
        change = f", {(last - first) / abs(first):+.1%}" if first else ""
        # from zero: an autoscaled axis makes a change of a fraction of a percent look like a collapse
        axes.set_ylim(bottom=min(0.0, min(p[1] for p in points)), top=max(p[1] for p in points) * 1.1 or None)
        axes.set_title(f"{name.removeprefix('loss_')}: {first:.3g} → {last:.3g}{change}", fontsize=9)
        axes.set_xlabel("step")
        axes.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def agreement_figure(curves: dict[str, list[dict]], title: str | None = None,
                     references: dict[str, dict] | None = None, *, baseline: str | None = None,
                     note: str | None = None):
    """The student's agreement with the teacher's token scores over training, one panel per measure.

    Args:
        curves: line label (a run, a method) -> its agreement records (``Run.agreement``: dicts with
            ``step`` and each of :data:`kdviz.agreement.MEASURES`; a step-0 record is the untrained
            student, drawn as an open marker).
        title: figure title.
        references: label -> a record with the same measures, drawn as a dashed horizontal line (for
            example a flat student's agreement, ``Run.agreement_uniform``: the floor).
        baseline: a label of ``curves``: adds a row of panels with every other curve minus this one
            at the steps both logged (the gap is what a comparison reads, not the levels).
        note: a line under the figure (for example how many seeds it rests on).

    Returns:
        A matplotlib ``Figure`` with three panels (cosine, Spearman, top-k overlap), each y-axis fitted
        to its values and references, one line per label, the legend below the panels; with
        ``baseline``, a second row of difference panels.
    """
    from matplotlib.figure import Figure

    from kdviz.agreement import MEASURES, TOP_K

    rows = 2 if baseline else 1
    figure = Figure(figsize=(10, 3.4 + 2.4 * (rows - 1)), dpi=100, layout="constrained")
    grid = figure.subplots(rows, len(MEASURES), sharex=True, squeeze=False,
                           gridspec_kw={"height_ratios": [3, 2][:rows]})
    panels = grid[0]
    if baseline:
        _draw_differences(grid[1], curves, baseline)
    for axes, measure in zip(panels, MEASURES):
        for label, records in curves.items():
            line, = axes.plot([r["step"] for r in records], [r[measure] for r in records], marker=".", label=label)
            start = [r for r in records if r["step"] == 0]
            if start:
                axes.plot([0], [start[0][measure]], marker="o", markersize=7, fillstyle="none", linestyle="none",
                          color=line.get_color())
        for (label, reference), style in zip((references or {}).items(), ("--", ":", "-.")):
            axes.axhline(reference[measure], color="0.35", linestyle=style, linewidth=1, label=label)
        axes.set_title({"top_k_overlap": f"top-{TOP_K} overlap"}.get(measure, measure))
        axes.set_xlabel("" if baseline else "training step")
        axes.margins(y=0.2)  # fitted to the values: agreement moves by hundredths, a 0-1 axis would hide it
        axes.grid(alpha=0.3)
    panels[0].set_ylabel("teacher-student agreement")
    handles, labels = panels[0].get_legend_handles_labels()
    if handles:  # below the panels: a legend inside would cover the lines
        labels = [f"{label} (○: step 0)" if any(r["step"] == 0 for r in curves.get(label, ())) else label
                  for label in labels]
        figure.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), fontsize=8, frameon=False)
    if title or note:  # the note under the title: below the panels the legend takes the room
        figure.suptitle("\n".join(filter(None, (title, note))), fontsize=10)
    return figure


def _draw_differences(panels, curves: dict[str, list[dict]], baseline: str) -> None:
    """Each curve minus ``baseline``'s at the steps both logged, one panel per measure, a line at zero."""
    from kdviz.agreement import MEASURES

    if baseline not in curves:
        raise ValueError(f"baseline {baseline!r} is not one of the curves {list(curves)}.")
    reference = {r["step"]: r for r in curves[baseline]}
    colours = [f"C{i}" for i in range(len(curves))]
    for axes, measure in zip(panels, MEASURES):
        for colour, (label, records) in zip(colours, curves.items()):
            if label == baseline:
                continue
            shared = [r for r in records if r["step"] in reference]
            axes.plot([r["step"] for r in shared], [r[measure] - reference[r["step"]][measure] for r in shared],
                      marker=".", color=colour, label=f"{label} - {baseline}")
        axes.axhline(0, color="0.35", linewidth=1)
        axes.set_xlabel("training step")
        axes.grid(alpha=0.3)
    panels[0].set_ylabel(f"minus {baseline}")


def write_figure(path: Path, figure) -> Path:
    """Save a matplotlib figure as PNG (its folder is created) and return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
