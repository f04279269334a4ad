"""Tables and the depth plot of the reproduction study, from the files ``reproduce.py`` wrote.

    python benchmarks/report_reproduce.py        # reads benchmarks/results/reproduce.csv (+ _teachers.json)

Prints markdown (main table with the teacher's and the majority class's rows, each method's
paired difference to kd and to pkd, depth sweep on one seed, wall time of the fastest run per
cell, the papers' numbers) and writes it to ``<csv stem>.md``; draws score vs student depth per
method and task to ``<csv stem>_depth.png``. Cells still missing from a study that is under way are left empty.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from kdviz.report import reference_table  # noqa: E402
from kdviz.study import paired_differences, read_rows, summarise, summary_table  # noqa: E402

MAIN_DEPTH = 2
PAIRED_BASELINES = ("kd", "pkd")  # the AD-KD paper's baseline, and PKD as published (a baseline of ALP-KD)


def reference_scores(path: Path) -> tuple[dict[str, float], dict[str, float | None]]:
    """task -> the fine-tuned teacher's best dev score (x100), and task -> the majority-class dev
    score (x100), from ``reproduce.py``'s teachers file."""
    if not path.is_file():
        return {}, {}
    from kdviz.tasks import get_task

    teachers = json.loads(path.read_text())
    return ({task: 100 * entry["best"][get_task(task).main_metric] for task, entry in teachers.items()},
            {task: entry.get("majority_class") for task, entry in teachers.items()})


def wall_time_table(rows: list[dict]) -> str:
    """Wall time of the fastest run (minutes) per method and depth, one column per task."""
    return summary_table(rows, value=lambda cell: f"{cell['wall_s'] / 60:.1f}")


def paired_table(rows: list[dict], baseline: str = "kd") -> str:
    """Each method's score minus ``baseline``'s on the same seed, in points: mean ± std (seeds, and on
    how many of them the method is ahead)."""
    def cell(c: dict) -> str:
        if c["n"] == 1:
            return f"{c['mean']:+.2f} (1)"
        return f"{c['mean']:+.2f} ± {c['std']:.2f} ({c['n']}, {c['above_zero']} ahead)"

    differences = paired_differences(rows, baseline)
    return summary_table(differences, value=cell) if differences else "(no paired run yet)\n"


def depth_table(rows: list[dict], teacher: dict[str, float], floor: dict[str, dict[str, float]]) -> str:
    """The methods run at other depths than the main table's, on the seeds of those runs only, so
    that every depth of a method shares its head initialisation and data order."""
    swept = [row for row in rows if int(row["student_layers"]) != MAIN_DEPTH]
    if not swept:
        return "(no run yet)\n"
    methods, seeds = {row["method"] for row in swept}, {row["seed"] for row in swept}
    same_seed = sorted((row for row in rows if row["method"] in methods and row["seed"] in seeds),
                       key=lambda row: int(row["student_layers"]))
    return summary_table(same_seed, teacher, reference_rows=floor)


def depth_figure(rows: list[dict], path: Path, teacher: dict[str, float],
                 majority: dict[str, float | None]) -> Path | None:
    """Score vs student depth, one panel per task, one line per method (a lone point while a method
    has one depth); a cell of several seeds is drawn at its mean with a bar of one std.

    The y range fits the students and the teacher: a majority-class floor far below them would
    squeeze every line flat, so it is then named in the panel instead of drawn."""
    summary = summarise(rows)
    tasks = list(dict.fromkeys(cell["task"] for cell in summary))
    if not tasks:
        return None
    methods = list(dict.fromkeys(cell["method"] for cell in summary))
    colours = {method: f"C{i % 10}" for i, method in enumerate(methods)}  # one colour per method in every panel
    figure, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks) + 1.6, 3.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        cells = [c for c in summary if c["task"] == task]
        for method in dict.fromkeys(c["method"] for c in cells):
            points = sorted((c["student_layers"], c["mean"], c["std"]) for c in cells if c["method"] == method)
            depths, means, stds = zip(*points)
            ax.errorbar(depths, means, yerr=stds, marker="o", capsize=3, color=colours[method], label=method)
        if task in teacher:
            ax.axhline(teacher[task], color="black", linestyle="--", label="teacher (6 layers)")
        low = min([c["mean"] - c["std"] for c in cells] + [teacher.get(task, float("inf"))])
        high = max([c["mean"] + c["std"] for c in cells] + [teacher.get(task, float("-inf"))])
        floor = majority.get(task)
        if floor is not None and floor >= low - (high - low):
            ax.axhline(floor, color="grey", linestyle=":", label="majority class")
        elif floor is not None:
            ax.text(0.98, 0.03, f"majority class: {floor:.2f} (below)", transform=ax.transAxes,
                    fontsize=8, color="grey", ha="right")
        ax.set_title(task)
        ax.set_xlabel("student layers")
        ax.set_xticks(sorted({c["student_layers"] for c in cells}))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("dev score (x100)")
    legend = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    figure.legend(legend.values(), legend.keys(), loc="center right", fontsize=8)
    figure.tight_layout(rect=(0, 0, 1 - 1.5 / figure.get_figwidth(), 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def report(csv_path: Path) -> str:
    """The study's markdown report (and its depth figure next to the CSV)."""
    rows = read_rows(csv_path)
    if not rows:
        raise SystemExit(f"{csv_path} has no finished runs yet: run benchmarks/reproduce.py first.")
    scores, majority = reference_scores(csv_path.with_name(csv_path.stem + "_teachers.json"))
    floor = {"majority class": majority}
    main = [row for row in rows if int(row["student_layers"]) == MAIN_DEPTH]
    tasks = list(dict.fromkeys(row["task"] for row in rows))
    parts = [f"Main table: {MAIN_DEPTH}-layer students, dev score x100, mean ± sample std (runs)\n",
             summary_table(main, scores, reference_rows=floor) if main else "(no run yet)\n",
             *(part for baseline in PAIRED_BASELINES for part in (
                 f"\nPaired with {baseline}: score minus {baseline}'s on the same task and seed, mean ± sample std"
                 f" (seeds, how many of them ahead of {baseline})\n", paired_table(main, baseline))),
             "\nDepth sweep: the swept methods at every depth on the sweep's seed (its 2-layer cells are that"
             " seed's main-table runs), dev score x100\n",
             depth_table(rows, scores, floor),
             "\nWall time per run (minutes; the fastest seed of each cell)\n", wall_time_table(rows),
             "\nThe papers (BERT-base teachers; for reference, not comparable to the offline teacher)\n",
             reference_table(tasks)]
    figure = depth_figure(rows, csv_path.with_name(csv_path.stem + "_depth.png"), scores, majority)
    if figure is not None:
        parts.append(f"\nFigure: {figure}\n")
    return "".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, default=Path("benchmarks/results/reproduce.csv"))
    args = parser.parse_args()
    text = report(args.csv)
    args.csv.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
