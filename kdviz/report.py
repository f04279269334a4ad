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


FAITHFULNESS_ROWS = {
    "teacher": "teacher",
    "teacher_random_rationale": "teacher, random rationale",
    "student_step_0": "student at step 0",
    "student": "student",
    "student_on_teacher_rationale": "student, teacher's rationale",
    "student_random_rationale": "student, random rationale",
}
"""Faithfulness rows in reading order: each model's own rationale beside a random one of the same sizes."""


def _with_spread(values: dict[str, float], name: str) -> str:
    spread = values.get(f"{name}_sd")
    return f"{values[name]:.4f}" + (f" ± {spread:.4f}" if spread is not None else "")


def format_faithfulness_table(faithfulness: dict[str, dict[str, float]]) -> str:
    """A markdown table of comprehensiveness and sufficiency (``result["faithfulness"]`` of a run): the
    single cut and ERASER's AOPC, each model's rationale above a random one's (mean ± standard
    deviation over the draws), and one sentence on how to read a negative value.

    Args:
        faithfulness: row (``teacher``, ``student``, ``student_on_teacher_rationale``, the baselines
            ``*_random_rationale`` and ``student_step_0``) -> its ``comprehensiveness``,
            ``sufficiency``, ``aopc_comprehensiveness``, ``aopc_sufficiency`` (absent in runs of
            kdviz 0.1), ``fraction`` and ``examples``.
    """
    from kdviz.faithfulness import AOPC_BINS, NEGATIVE_VALUES

    first = next(iter(faithfulness.values()))
    aopc = "aopc_comprehensiveness" in first
    cut = f"top {100 * first['fraction']:.0f}%"
    columns = [f"comprehensiveness, {cut} (higher: uses them)", f"sufficiency, {cut} (lower: they suffice)"]
    names = ["comprehensiveness", "sufficiency"]
    if aopc:
        columns += ["AOPC comprehensiveness", "AOPC sufficiency"]
        names += ["aopc_comprehensiveness", "aopc_sufficiency"]
    lines = [f"| rationale ({first['examples']} dev examples) | " + " | ".join(columns) + " |",
             "|---|" + "---|" * len(columns)]
    order = [key for key in FAITHFULNESS_ROWS if key in faithfulness] + \
        [key for key in faithfulness if key not in FAITHFULNESS_ROWS]
    for key in order:
        label = FAITHFULNESS_ROWS.get(key, key.replace("_", " "))
        lines.append(f"| {label} | " + " | ".join(_with_spread(faithfulness[key], name) for name in names) + " |")
    notes = []
    if aopc:
        notes.append(f"AOPC: the mean over rationales of {', '.join(f'{100 * b:g}' for b in AOPC_BINS)}% of the "
                     f"tokens (ERASER). A random rationale's row is the mean ± standard deviation over "
                     f"{next((v['draws'] for v in faithfulness.values() if 'draws' in v), 0)} draws: a rationale is "
                     f"faithful as far as it beats it.")
    notes.append(NEGATIVE_VALUES)
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


def format_agreement_table(agreement: dict[str, dict[str, float] | None]) -> str:
    """A markdown table of the student's rationale agreement with the teacher: a flat student (the
    floor), the student at step 0 and the kept student, over the words and with ``[CLS]``/``[SEP]``.

    Args:
        agreement: ``result["agreement"]`` of a run: ``uniform``, ``step_0`` and ``student``, each a
            :meth:`kdviz.probe.Probe.agreement` dict (``step_0`` None when not recorded).
    """
    from kdviz.agreement import MEASURES, TOP_K, WITH_SPECIAL

    names = {"cosine": "cosine", "spearman": "Spearman", "top_k_overlap": f"top-{TOP_K} overlap"}
    rows = {"flat student (every token alike)": agreement.get("uniform"), "student at step 0": agreement.get("step_0"),
            "student": agreement.get("student")}
    examples = next(row["examples"] for row in rows.values() if row)
    columns = [names[m] for m in MEASURES] + [f"{names[m]}, with [CLS]/[SEP]" for m in MEASURES]
    lines = [f"| agreement with the teacher ({examples} dev examples) | " + " | ".join(columns) + " |",
             "|---|" + "---|" * len(columns)]
    for label, row in rows.items():
        if row:
            keys = list(MEASURES) + [f"{m}{WITH_SPECIAL}" for m in MEASURES]
            lines.append(f"| {label} | " + " | ".join(f"{row[k]:.4f}" if k in row else "" for k in keys) + " |")
    return "\n".join(lines) + "\n"


def comparison_table(runs: dict) -> str:
    """Several runs of one teacher side by side, as markdown: the dev score, the rationale agreement
    with the teacher over the words (step 0, the kept student, a flat student) and the AOPC of the
    student's own rationale beside a random one's.

    Args:
        runs: label -> a loaded :class:`~kdviz.runs.Run` (each recorded a probe set).

    Returns:
        The table; a cell is empty where a run did not record that measure.
    """
    def value(mapping, *keys, digits=4, scale=1.0):
        for key in keys:
            mapping = (mapping or {}).get(key)
        return "" if mapping is None else f"{scale * mapping:.{digits}f}"

    first = next(iter(runs.values()))
    metric = first.config.selection_metric
    lines = [f"| student | dev {metric} | cosine, step 0 | cosine | cosine, flat student | Spearman, step 0 | Spearman "
             "| AOPC comprehensiveness | random rationale | AOPC sufficiency | random rationale |",
             "|---|" + "---|" * 10]
    for label, run in runs.items():
        agreement, faithfulness = run.metrics.get("agreement"), run.metrics.get("faithfulness")
        lines.append(" | ".join([
            f"| {label}", value(run.metrics, "best", metric, digits=2, scale=100),
            value(agreement, "step_0", "cosine"), value(agreement, "student", "cosine"),
            value(agreement, "uniform", "cosine"), value(agreement, "step_0", "spearman"),
            value(agreement, "student", "spearman"),
            value(faithfulness, "student", "aopc_comprehensiveness"),
            value(faithfulness, "student_random_rationale", "aopc_comprehensiveness"),
            value(faithfulness, "student", "aopc_sufficiency"),
            value(faithfulness, "student_random_rationale", "aopc_sufficiency")]) + " |")
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
    if result.get("agreement"):
        table += "\n" + format_agreement_table(result["agreement"])
    if result.get("faithfulness"):
        table += "\n" + format_faithfulness_table(result["faithfulness"])
    run.write_metrics(result, table)
    write_loss_terms_figure(run.loss_terms_figure, run.loss_terms(), title=f"{task.name}: distillation loss terms")
    agreement = run.agreement()
    if agreement:
        uniform = run.agreement_uniform()
        write_figure(run.agreement_figure, agreement_figure(
            {"+".join(config.method_terms): agreement},
            title=f"{task.name}: student vs teacher token scores on {agreement[-1]['examples']} dev examples",
            references={"flat student": uniform} if uniform else None))
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
