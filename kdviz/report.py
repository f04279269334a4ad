"""Reports of runs and studies: markdown metrics tables, a run's reports (drawn by
:mod:`kdviz.viz.history_figures` and :mod:`kdviz.viz.layer_render`), the papers' reference table."""

from __future__ import annotations

from kdviz.recipes import ALP_KD_GLUE_AVERAGE, SIX_LAYER_REFERENCE
from kdviz.runs import RunFolder, TeacherFolder
from kdviz.tasks import GlueTask, get_task
from kdviz.viz.history_figures import agreement_figure, write_figure, write_loss_terms_figure


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
            title=f"{config.terms['layer_projection'].variant} weights, mean of the last logging window (step {weights[-1].step})")
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
