"""Reports of runs and studies: markdown metrics tables, loss figures, the papers' reference table."""

from __future__ import annotations

from pathlib import Path

from kdviz.recipes import ALP_KD_GLUE_AVERAGE, SIX_LAYER_REFERENCE
from kdviz.runs import RunFolder, TeacherFolder
from kdviz.tasks import GlueTask, get_task


def format_metrics_table(rows: dict[str, dict[str, float]], task: str | GlueTask) -> str:
    """A markdown table of the task's metrics (in percent), one row per model.

    Args:
        rows: row name -> metrics dict (keys as :func:`kdviz.tasks.compute_metrics` returns).
        task: the task (gives the columns; the main metric first).

    Returns:
        The table as markdown text.
    """
    task = get_task(task)
    columns = [task.main_metric] + [m for m in task.metrics if m != task.main_metric]
    lines = [f"| {task.name} | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name, metrics in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{100 * metrics[c]:.2f}" for c in columns) + " |")
    return "\n".join(lines) + "\n"


def format_faithfulness_table(faithfulness: dict[str, dict[str, float]]) -> str:
    """A markdown table of comprehensiveness and sufficiency (``result["faithfulness"]`` of a run).

    Args:
        faithfulness: row (``teacher``, ``student``, ``student_on_teacher_rationale``) -> its
            ``comprehensiveness``, ``sufficiency``, ``fraction`` and ``examples``.
    """
    first = next(iter(faithfulness.values()))
    lines = [f"| rationale: top {100 * first['fraction']:.0f}% of tokens, {first['examples']} dev examples "
             "| comprehensiveness (higher: uses them) | sufficiency (lower: they suffice) |", "|---|---|---|"]
    for name, values in faithfulness.items():
        lines.append(f"| {name.replace('_', ' ')} | {values['comprehensiveness']:.4f} | {values['sufficiency']:.4f} |")
    return "\n".join(lines) + "\n"


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
    """Plot each logged loss term (``loss_<term>``) against the training step, one panel per term.

    Args:
        path: PNG file to write (its folder is created).
        records: the run's loss-term records (:meth:`kdviz.runs.RunFolder.loss_terms`).
        title: figure title.

    Returns:
        ``path``.
    """
    from matplotlib.figure import Figure

    names = sorted({k for r in records for k in r if k.startswith("loss_")})
    figure = Figure(figsize=(3.2 * max(len(names), 1), 2.8), dpi=100)
    for i, name in enumerate(names, start=1):
        axes = figure.add_subplot(1, len(names), i)
        points = [(r["step"], r[name]) for r in records if name in r]
        axes.plot([p[0] for p in points], [p[1] for p in points], marker=".")
        axes.set_title(name.removeprefix("loss_"))
        axes.set_xlabel("step")
        axes.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def agreement_figure(curves: dict[str, list[dict]], title: str | None = None):
    """The student's agreement with the teacher's token scores over training, one panel per measure.

    Args:
        curves: line label (a run, a method) -> its agreement records (``Run.agreement``: dicts with
            ``step`` and each of :data:`kdviz.agreement.MEASURES`).
        title: figure title.

    Returns:
        A matplotlib ``Figure`` with three panels (cosine, Spearman, top-k overlap), each y-axis fitted
        to its values, one line per label.
    """
    from matplotlib.figure import Figure

    from kdviz.agreement import MEASURES, TOP_K

    figure = Figure(figsize=(10, 3), dpi=100, layout="constrained")
    panels = figure.subplots(1, len(MEASURES), sharex=True)
    for axes, measure in zip(panels, MEASURES):
        for label, records in curves.items():
            axes.plot([r["step"] for r in records], [r[measure] for r in records], marker=".", label=label)
        axes.set_title({"top_k_overlap": f"top-{TOP_K} overlap"}.get(measure, measure))
        axes.set_xlabel("training step")
        axes.margins(y=0.2)  # fitted to the values: agreement moves by hundredths, a 0-1 axis would hide it
        axes.grid(alpha=0.3)
    panels[0].set_ylabel("teacher-student agreement")
    panels[-1].legend(fontsize=8)
    if title:
        figure.suptitle(title)
    return figure


def write_figure(path: Path, figure) -> Path:
    """Save a matplotlib figure as PNG (its folder is created) and return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def write_run_reports(run: RunFolder, config, result: dict, objective) -> None:
    """A finished run's metrics (JSON and a table with the teacher's row when its folder has kdviz
    metrics) and figures: the loss terms, the rationale agreement, and the last window's layer-attention
    weights.

    Args:
        run: the run folder.
        config: the run's :class:`~kdviz.config.DistillConfig`.
        result: the run's summary (:func:`kdviz.glue_trainer.run_summary`).
        objective: the trained :class:`~kdviz.objective.DistillationObjective`.
    """
    from kdviz.viz.layer_render import layer_attention_figure

    task = get_task(config.task)
    rows = {}
    teacher = TeacherFolder(config.teacher).read_metrics()
    if teacher is not None:
        rows[f"teacher ({run.teacher_info().layers} layers)"] = teacher["best"]
    rows[f"student ({'+'.join(config.method_terms)})"] = result["best"]
    table = format_metrics_table(rows, task)
    if result.get("faithfulness"):
        table += "\n" + format_faithfulness_table(result["faithfulness"])
    run.write_metrics(result, table)
    write_loss_terms_figure(run.loss_terms_figure, run.loss_terms(), title=f"{task.name}: distillation loss terms")
    agreement = run.agreement()
    if agreement:
        write_figure(run.agreement_figure, agreement_figure(
            {"+".join(config.method_terms): agreement},
            title=f"{task.name}: student vs teacher token scores on {agreement[-1]['examples']} dev examples"))
    weights, term = run.layer_weights(), objective.term("layer_projection")
    if weights and term is not None:
        projection = term.projection
        figure = layer_attention_figure(
            weights[-1].alpha, projection.student_layers, projection.teacher_layers, mask=projection.mask.cpu().numpy(),
            title=f"{config.alp_variant} weights, mean of the last logging window (step {weights[-1].step})")
        write_figure(run.layer_attention_figure, figure)


def reference_table(tasks: list[str]) -> str:
    """The papers' six-layer reference rows for ``tasks`` and ALP-KD's GLUE averages, as markdown."""
    lines = ["| paper row | " + " | ".join(tasks) + " |", "|---|" + "---|" * len(tasks)]
    for name, scores in SIX_LAYER_REFERENCE.items():
        lines.append(f"| {name} | " + " | ".join(f"{scores[t]:.1f}" if t in scores else "" for t in tasks) + " |")
    lines.append("")
    lines.append("| ALP-KD, GLUE average | ALP | best baseline |")
    lines.append("|---|---|---|")
    for depth, scores in ALP_KD_GLUE_AVERAGE.items():
        lines.append(f"| {depth}-layer students | {scores['alp']:.2f} | {scores['best baseline']:.2f} |")
    return "\n".join(lines) + "\n"
