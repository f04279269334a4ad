"""Reproduce a paper's own setup (``kdviz reproduce --paper adkd|alp``) and compare with its numbers.

Each paper's setup comes from :mod:`kdviz.recipes` (``paper-adkd``, ``paper-alp``): teachers, students,
hyperparameters and best-epoch metrics. The runs go through :func:`kdviz.study.run_study`, so a
reproduction cut off at any point continues where it stopped; fine-tuned teachers are reused.
It needs the hub and a GPU for the papers' bert-base models; offline, local folders stand in for
the released teacher and the pre-trained student (``teachers=``, ``student_init=``).

- ``adkd``: the 6-layer AD-KD student of each task against the paper's reported dev score.
- ``alp``: ALP and its baselines (KD, PKD, CKD) at 6, 4 and 2 student layers; the paper reports GLUE
  averages over its tasks, so ALP's average is compared once every one of its tasks has run.
"""

from __future__ import annotations

import shutil
import statistics
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from kdviz.config import DistillConfig
from kdviz.finetune import teacher_for
from kdviz.models import load_classifier, reorder_labels
from kdviz.recipes import (ADKD_TEACHER_LABEL_ORDER, ALP_KD_GLUE_AVERAGE, ALP_STUDENT_DEPTHS, PAPER_TASKS,
                           SIX_LAYER_REFERENCE, paper_alp, preset, reference_metric, released_teacher)
from kdviz.study import StudyRun, grid, run_study
from kdviz.tasks import get_task

PAPERS = ("adkd", "alp")
ADKD_REFERENCE_ROW = "AD-KD, 6 layers (as reported)"
ALP_BASELINES = ("kd", "pkd", "ckd")


@dataclass(frozen=True)
class Comparison:
    """One line of the comparison with a paper.

    Attributes:
        what: the row, e.g. ``"rte (accuracy)"`` or ``"4-layer GLUE average (alp)"``.
        ours: our mean score (x100) over seeds, or None when not run yet.
        paper: the paper's number.
        runs: how many runs the mean is over.
        verdict: ``"pass"`` (ours >= paper - tolerance), ``"fail"`` or why there is no verdict.
    """

    what: str
    ours: float | None
    paper: float
    runs: int
    verdict: str


def paper_preset(paper: str, run: StudyRun) -> dict:
    """The config values of one run of a paper's reproduction (its setup for the run's method and depth)."""
    if paper == "adkd":
        return preset(f"paper-adkd/{run.task}")
    return paper_alp(run.task, run.student_layers, run.method)


def plan_for(paper: str, tasks: list[str], seeds: list[int]) -> list[StudyRun]:
    """Every run of a paper's reproduction."""
    if paper == "adkd":
        return grid(tasks, ["adkd"], [6], seeds)
    return grid(tasks, ["alp", *ALP_BASELINES], ALP_STUDENT_DEPTHS, seeds)


def released_teacher_in_task_order(task: str, teacher: str, runs_dir: Path) -> str:
    """The AD-KD release's teacher with its outputs in the task's label order (a local copy where they differ).

    Args:
        task: GLUE task name.
        teacher: the released teacher (hub id or folder).
        runs_dir: the reproduction's folder; the reordered copy goes to ``teachers/<task>-released``.

    Returns:
        ``teacher`` itself when its order is the task's, else the copy's folder (made once).
    """
    order = ADKD_TEACHER_LABEL_ORDER.get(task)
    if order is None:
        return teacher
    folder = runs_dir / "teachers" / f"{task}-released"
    if not folder.is_dir():
        model, tokenizer = load_classifier(teacher, task, require_classifier=True)
        partial = folder.with_name(folder.name + ".partial")  # renamed when complete: a cut-off copy is redone
        shutil.rmtree(partial, ignore_errors=True)
        reorder_labels(model, order, task).save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        partial.rename(folder)
    return str(folder)


def reported_metric(config: DistillConfig) -> str:
    """The metric a reproduction row records: the one the papers' table reports for the task."""
    return reference_metric(config.task)


def compare(paper: str, rows: list[dict], tasks: list[str], tolerance: float) -> list[Comparison]:
    """Our scores against the paper's.

    Args:
        paper: ``"adkd"`` or ``"alp"``.
        rows: the reproduction's CSV rows (:func:`kdviz.study.run_study`).
        tasks: the tasks asked for.
        tolerance: points below the paper's number that still pass.

    Returns:
        One :class:`Comparison` per task (``adkd``) or per student depth and method (``alp``).
    """
    def mean_of(method: str, task: str, depth: int) -> tuple[float | None, int]:
        scores = [float(r["score"]) for r in rows
                  if (r["method"], r["task"], int(r["student_layers"])) == (method, task, depth)]
        return (statistics.fmean(scores) if scores else None), len(scores)

    def verdict(ours: float | None, reference: float) -> str:
        if ours is None:
            return "not run"
        return "pass" if ours >= reference - tolerance else "fail"

    lines = []
    if paper == "adkd":
        for task in tasks:
            ours, n = mean_of("adkd", task, 6)
            reference = SIX_LAYER_REFERENCE[ADKD_REFERENCE_ROW][task]
            lines.append(Comparison(f"{task} ({reference_metric(task)})", ours, reference, n, verdict(ours, reference)))
        return lines
    paper_tasks = PAPER_TASKS["paper-alp"]
    for depth, reference in ALP_KD_GLUE_AVERAGE.items():
        for method, paper_value in (("alp", reference["alp"]), *((m, reference["best baseline"])
                                                                  for m in ALP_BASELINES)):
            means = [mean_of(method, task, depth) for task in paper_tasks]
            if any(score is None for score, _ in means):
                missing = [t for t, (score, _) in zip(paper_tasks, means) if score is None]
                ours = None
                why = f"n/a: the paper averages {', '.join(paper_tasks)}; not run: {', '.join(missing)}"
            else:
                ours = statistics.fmean(score for score, _ in means)
                why = verdict(ours, paper_value) if method == "alp" else "baseline"
            lines.append(Comparison(f"{depth}-layer GLUE average ({method})", ours, paper_value,
                                    sum(n for _, n in means), why))
    return lines


def comparison_table(lines: list[Comparison], tolerance: float) -> str:
    """The comparison as markdown, with the tolerance stated."""
    table = [f"Pass: our mean >= the paper's number - {tolerance:g} points.", "",
             "| row | ours | paper | runs | verdict |", "|---|---|---|---|---|"]
    for line in lines:
        ours = "" if line.ours is None else f"{line.ours:.2f}"
        table.append(f"| {line.what} | {ours} | {line.paper:.2f} | {line.runs} | {line.verdict} |")
    return "\n".join(table) + "\n"


def reproduce_paper(paper: str, tasks: list[str] | None = None, *, runs_dir: str | Path | None = None,
                    seeds: list[int] = (42,), teachers: dict[str, str] | None = None,
                    student_init: str | None = None, data_dir: str | None = None, tolerance: float = 1.0,
                    **overrides) -> str:
    """Run (or continue) a paper's reproduction and return the comparison table.

    Args:
        paper: ``"adkd"`` or ``"alp"``.
        tasks: GLUE tasks (default: every task the paper reports).
        runs_dir: where teachers, runs, ``results.csv`` and ``comparison.md`` go
            (default ``runs/reproduce-<paper>``).
        seeds: student seeds.
        teachers: task -> teacher (a fine-tuned folder, or a model to fine-tune with the paper's
            teacher recipe); default: the paper's (the AD-KD release's teachers, bert-base-uncased for ALP).
        student_init: replaces the AD-KD student (``google/bert_uncased_L-6_H-768_A-12``): a hub id or folder.
        data_dir: local GLUE folder (default ``$KDVIZ_DATA_DIR``, else the hub).
        tolerance: points below the paper's number that still pass.
        **overrides: :class:`~kdviz.config.DistillConfig` fields for every run (``train_subset``, ``epochs``...;
            ``report_to`` applies to the teachers' fine-tuning too).

    Returns:
        The markdown comparison table (also written to ``comparison.md``).

    Raises:
        ValueError: an unknown paper or a task the paper does not report, before anything runs.
    """
    if paper not in PAPERS:
        raise ValueError(f"Unknown paper {paper!r}; choose from {PAPERS}.")
    paper_tasks = PAPER_TASKS[f"paper-{paper}"]
    tasks = [get_task(t).name for t in (tasks or paper_tasks)]
    unknown = [t for t in tasks if t not in paper_tasks]
    if unknown:
        raise ValueError(f"The {paper} paper does not report {unknown}; its tasks are {list(paper_tasks)}.")
    runs_dir = Path(runs_dir or f"runs/reproduce-{paper}")
    plan = plan_for(paper, tasks, list(seeds))
    if student_init is not None:
        overrides["student_init"] = student_init

    preset_for = partial(paper_preset, paper)
    for run in plan:  # every config checked before any teacher is fine-tuned or any run starts
        DistillConfig.from_preset(preset_for(run), quick=False, output_dir=str(runs_dir), data_dir=data_dir,
                                  student_layers=run.student_layers, **overrides)
    chosen = {task: (teachers or {}).get(task) or preset(f"paper-{paper}/{task}")["teacher"] for task in tasks}
    if paper == "adkd":
        chosen = {task: released_teacher_in_task_order(task, model, runs_dir) if model == released_teacher(task)
                  else model for task, model in chosen.items()}
    fine_tuned = {task: teacher_for(task, model, runs_dir=runs_dir, quick=False, data_dir=data_dir,
                                    report_to=overrides.get("report_to", "none"))
                  for task, model in chosen.items()}
    rows = run_study(plan, fine_tuned, runs_dir / "results.csv", runs_dir, quick=False, data_dir=data_dir,
                     preset_for=preset_for, score_metric=reported_metric, **overrides)
    table = comparison_table(compare(paper, rows, tasks, tolerance), tolerance)
    (runs_dir / "comparison.md").write_text(table)
    return table
