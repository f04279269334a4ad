"""A comparison study: methods x tasks x student depths x seeds, one CSV row per finished run.

The CSV is the study's only state: a run whose row is there is never run again, so a study cut off
at any point continues where it stopped (``benchmarks/reproduce.py``, the "reproduce the papers"
notebook). A run that was cut off mid-training starts over.
"""

from __future__ import annotations

import csv
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kdviz.config import DistillConfig
from kdviz.distill import distill_or_resume
from kdviz.runs import RunFolder
from kdviz.tasks import get_task

FIELDS = ("task", "method", "student_layers", "seed", "train_examples", "epochs", "metric", "score",
          "best_epoch", "wall_s", "cosine_step_0", "cosine", "cosine_flat", "spearman_step_0", "spearman",
          "spearman_flat", "aopc_comprehensiveness", "aopc_comprehensiveness_random", "aopc_sufficiency",
          "aopc_sufficiency_random")
"""A row: the run, its dev score, and its rationale measures on the probe set (empty when the run
recorded none): agreement with the teacher over the words at step 0, for the kept student and for a
flat student; the kept student's AOPC and a random rationale's (mean over the draws)."""


@dataclass(frozen=True)
class StudyRun:
    """One cell of the study grid."""

    task: str
    method: str
    student_layers: int
    seed: int

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.task, self.method, str(self.student_layers), str(self.seed)

    @property
    def folder(self) -> str:
        return f"{self.task}/{self.method.replace('+', '_')}-{self.student_layers}l-seed{self.seed}"


def grid(tasks, methods, depths, seeds) -> list[StudyRun]:
    """Every combination: task-major (one task's runs share its teacher), then by depth, then
    seed-major, so a study cut off early has every method's first seeds rather than every seed of
    the first methods."""
    return [StudyRun(task, method, int(depth), int(seed))
            for task in tasks for depth in depths for seed in seeds for method in methods]


def read_rows(csv_path: str | Path) -> list[dict]:
    """The finished runs recorded in ``csv_path`` (empty when it does not exist yet)."""
    path = Path(csv_path)
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def append_row(csv_path: Path, row: dict, fields=FIELDS) -> None:
    """Append one row to a CSV, writing the header first when the file is new; a file started with
    fewer columns (an older kdviz) keeps its own, and the row's other values are left out."""
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    new_file = not csv_path.is_file()
    if not new_file:
        with open(csv_path, newline="") as handle:
            fields = next(csv.reader(handle), None) or fields
    with open(csv_path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        if new_file:
            writer.writeheader()
        writer.writerow(row)


def rationale_measures(result: dict) -> dict[str, float]:
    """The rationale columns of a study row (:data:`FIELDS`) from a run's summary; {} when the run
    recorded no probe set."""
    agreement, faithfulness = result.get("agreement") or {}, result.get("faithfulness") or {}
    row = {}
    for measure in ("cosine", "spearman"):
        for suffix, key in (("_step_0", "step_0"), ("", "student"), ("_flat", "uniform")):
            if agreement.get(key):
                row[f"{measure}{suffix}"] = round(agreement[key][measure], 4)
    for measure in ("aopc_comprehensiveness", "aopc_sufficiency"):
        for suffix, key in (("", "student"), ("_random", "student_random_rationale")):
            if measure in faithfulness.get(key, {}):
                row[f"{measure}{suffix}"] = round(faithfulness[key][measure], 4)
    return row


def run_study(plan: list[StudyRun], teachers: dict[str, str], csv_path: str | Path, runs_dir: str | Path, *,
              quick: bool | None = None, data_dir: str | None = None, keep_models: bool = False,
              preset_for: Callable[[StudyRun], str | dict] | None = None,
              score_metric: Callable[[DistillConfig], str] | None = None, progress: bool = True,
              **overrides) -> list[dict]:
    """Run every planned run that ``csv_path`` does not list yet, appending a row as each finishes.

    Args:
        plan: the runs (see :func:`grid`).
        teachers: task -> fine-tuned teacher folder (see :func:`kdviz.finetune.teacher_for`).
        csv_path: the study's CSV (created when missing).
        runs_dir: run folders go to ``RUNS_DIR/<task>/<method>-<L>l-seed<S>``.
        quick: the quick scale of :mod:`kdviz.recipes` (default: ``KDVIZ_QUICK``).
        data_dir: local GLUE folder (default ``$KDVIZ_DATA_DIR``, else the hub).
        keep_models: keep each run's student and checkpoints (large); by default only
            the metrics, history and figures stay.
        preset_for: a run's preset name or config values (default ``"METHOD/TASK"``), e.g. a paper's setup.
        score_metric: the metric a row records for a config (default: the task's main metric).
        progress: show each run's progress bars and logs (a line per finished run is printed anyway).
        **overrides: :class:`~kdviz.config.DistillConfig` fields for every run (``epochs=3``...).
            ``train_subset`` may be a dict task -> size (``None`` = the full training set).

    Returns:
        Every row of the CSV, the earlier ones included.
    """
    csv_path = Path(csv_path)
    done = {tuple(row[name] for name in ("task", "method", "student_layers", "seed")) for row in read_rows(csv_path)}
    missing = sorted({run.task for run in plan} - set(teachers))
    if missing:
        raise ValueError(f"No teacher for task(s) {missing}: pass teachers={{task: folder}} for every planned task.")
    todo = [run for run in plan if run.key not in done]
    durations: list[float] = []
    for number, run in enumerate(todo, start=1):
        values = dict(overrides)
        if isinstance(values.get("train_subset"), dict):
            values["train_subset"] = values["train_subset"].get(run.task)
        output = RunFolder(Path(runs_dir) / run.folder)
        config = DistillConfig.from_preset(preset_for(run) if preset_for else f"{run.method}/{run.task}", quick=quick,
                                           teacher=teachers[run.task], output_dir=str(output.path),
                                           data_dir=data_dir, student_layers=run.student_layers, seed=run.seed,
                                           **values)
        metric = score_metric(config) if score_metric else get_task(run.task).main_metric
        start = time.perf_counter()
        result = distill_or_resume(config, progress=progress)
        durations.append(time.perf_counter() - start)
        append_row(csv_path, {
            "task": run.task, "method": run.method, "student_layers": run.student_layers, "seed": run.seed,
            "train_examples": result["train_examples"], "epochs": config.epochs, "metric": metric,
            "score": round(100 * result["best"][metric], 2), "best_epoch": result["best_epoch"],
            "wall_s": round(durations[-1], 1), **rationale_measures(result)})
        if not keep_models:
            output.remove_large_parts()
        print(progress_line(number, len(todo), run, 100 * result["best"][metric], metric, durations), flush=True)
    return read_rows(csv_path)


def progress_line(number: int, total: int, run: StudyRun, score: float, metric: str, durations: list[float]) -> str:
    """One line per finished run: ``run k of N``, its score and time, and the estimated time left.

    Args:
        number, total: this run's place among the runs still to do when the study (re)started.
        run: the run; score: its best dev ``metric`` (x100).
        durations: wall seconds of the runs finished since the study (re)started, this one last.
    """
    left = (total - number) * sum(durations) / len(durations)
    estimate = f", about {_minutes(left)} left" if number < total else ", done"
    return (f"run {number} of {total}: {run.task} {run.method} {run.student_layers}-layer seed {run.seed}: "
            f"{metric} {score:.2f} in {_minutes(durations[-1])}{estimate}")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def summarise(rows: list[dict], column: str = "score") -> list[dict]:
    """Mean and sample standard deviation of a column (the score by default) per (task, method,
    student depth); rows without a value in that column are left out.

    Returns:
        One dict per cell: ``task, method, student_layers, n, mean, std, above_zero`` (how many
        scores are positive: for :func:`paired_differences`, the seeds a method is ahead of the
        baseline) and ``wall_s`` (the fastest run's wall time: other work on the machine only ever
        makes a run slower), in the order the cells first appear.
    """
    cells: dict[tuple, list[dict]] = {}
    for row in rows:
        if row.get(column) not in (None, ""):
            cells.setdefault((row["task"], row["method"], int(row["student_layers"])), []).append(row)
    summary = []
    for (task, method, depth), members in cells.items():
        scores = [float(m[column]) for m in members]
        summary.append({"task": task, "method": method, "student_layers": depth, "n": len(scores),
                        "mean": statistics.fmean(scores), "std": statistics.stdev(scores) if len(scores) > 1 else 0.0,
                        "above_zero": sum(score > 0 for score in scores),
                        "wall_s": min(float(m["wall_s"]) for m in members)})
    return summary


def majority_class_score(task: str, data_dir: str | None = None, *, train_subset: int | None = None,
                         seed: int = 42) -> float | None:
    """The floor a student must beat: the dev score of always predicting the training set's most
    frequent label.

    Args:
        task: GLUE task name.
        data_dir: local GLUE folder (default ``$KDVIZ_DATA_DIR``, else the hub).
        train_subset: count labels on this seeded subset of the training set (as the study trains).
        seed: the subset's seed.

    Returns:
        The task's main metric x100 on its (first) validation split; ``None`` for a regression task.
    """
    task = get_task(task)
    if task.is_regression:
        return None
    from kdviz.data import load_glue
    from kdviz.tasks import compute_metrics

    dev_split = task.validation_splits[0]
    data = load_glue(task, data_dir, splits=("train", dev_split), train_subset=train_subset, seed=seed)
    majority = Counter(data["train"]["label"]).most_common(1)[0][0]
    labels = data[dev_split]["label"]
    return 100 * compute_metrics(task, [majority] * len(labels), labels)[task.main_metric]


def paired_differences(rows: list[dict], baseline: str = "kd", column: str = "score") -> list[dict]:
    """Each run's score (or another column) minus the ``baseline`` method's on the same task, depth
    and seed.

    Runs with the same seed share the head's initialisation, dropout and data order, so the
    difference removes much of the seed-to-seed spread that a comparison of means keeps.

    Args:
        rows: CSV rows (see :func:`run_study`).
        baseline: the method subtracted.

    Returns:
        Rows in the CSV's shape whose ``score`` is the difference (points), for every run whose
        baseline run exists (the baseline's own rows left out): :func:`summarise` and
        :func:`summary_table` take them as they are.
    """
    reference = {(r["task"], str(r["student_layers"]), str(r["seed"])): float(r[column])
                 for r in rows if r["method"] == baseline and r.get(column) not in (None, "")}
    differences = []
    for row in rows:
        key = (row["task"], str(row["student_layers"]), str(row["seed"]))
        if row["method"] != baseline and key in reference and row.get(column) not in (None, ""):
            differences.append({**row, column: float(row[column]) - reference[key]})
    return differences


def summary_table(rows: list[dict], teacher_scores: dict[str, float] | None = None, *,
                  value: Callable[[dict], str] | None = None,
                  reference_rows: dict[str, dict[str, float]] | None = None) -> str:
    """A markdown table: one row per method and depth, one column per task.

    Args:
        rows: CSV rows (see :func:`run_study`).
        teacher_scores: task -> the teacher's score (x100) for a first row.
        reference_rows: more rows before the runs' own, name -> {task: score (x100)}, e.g. a
            ``"majority class"`` row from :func:`majority_class_score`.
        value: what a cell shows, given its :func:`summarise` entry; by default the score as
            ``mean ± std (n)`` (``mean (1)`` for a single run), with the metric named in the column heads.
    """
    summary = summarise(rows)
    tasks = list(dict.fromkeys(cell["task"] for cell in summary))
    heads = tasks if value else [f"{t} ({get_task(t).main_metric})" for t in tasks]
    value = value or _score_cell
    lines = ["| method | layers | " + " | ".join(heads) + " |", "|---|---|" + "---|" * len(tasks)]
    references = {"teacher": teacher_scores or {}, **(reference_rows or {})}
    for name, scores in references.items():
        if scores:
            lines.append(f"| {name} | | " + " | ".join(
                f"{scores[t]:.2f}" if scores.get(t) is not None else "" for t in tasks) + " |")
    by_cell = {(c["method"], c["student_layers"], c["task"]): c for c in summary}
    for method, depth in dict.fromkeys((c["method"], c["student_layers"]) for c in summary):
        cells = [by_cell.get((method, depth, task)) for task in tasks]
        lines.append(f"| {method} | {depth} | " + " | ".join("" if c is None else value(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _score_cell(cell: dict) -> str:
    if cell["n"] == 1:
        return f"{cell['mean']:.2f} (1)"
    return f"{cell['mean']:.2f} ± {cell['std']:.2f} ({cell['n']})"
