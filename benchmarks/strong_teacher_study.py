"""SST-2 with the strong offline teacher: what each method does to a student's accuracy and reasoning.

    KDVIZ_DATA_DIR=../shared/glue python benchmarks/strong_teacher_study.py              # runs, then the tables
    python benchmarks/strong_teacher_study.py --report                                   # the tables only
    KDVIZ_DATA_DIR=../shared/glue python benchmarks/strong_teacher_study.py --methods kd adkd --seeds 42 \
        --ig-steps 8 --out benchmarks/results/strong_teacher_m8                          # AD-KD with m = 8

The teacher is ``../shared/teachers/sst2-minilm`` (the offline MiniLM fine-tuned by ``kdviz
finetune`` on all of SST-2: 89.22 dev accuracy), used in place. Students: 2 layers built from
teacher layers 3 and 6, each method's SST-2 preset (the AD-KD paper's released hyperparameters),
3 epochs on one seeded 8,000-sentence transfer set (the same draw for every run), scored on the
full dev set (872 sentences) after every epoch, the best epoch kept; seeds 42, 43 and 44 (the
head, dropout and data order). Every run records, on 256 dev sentences, its rationale agreement
with the teacher over the words at step 0 and for the kept student, a flat student's (the floor),
and ERASER's AOPC with a random rationale's.

Each finished run appends a row to ``<out>.csv``; rerunning skips the rows already there. The
report pairs every method with ``kd`` on the same seed (differences, and on how many seeds they
are positive): a difference smaller than the seed spread is not a finding.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from kdviz.runs import TeacherFolder
from kdviz.study import grid, majority_class_score, paired_differences, read_rows, run_study, summarise

TEACHER = Path(__file__).resolve().parents[2] / "shared" / "teachers" / "sst2-minilm"
METHODS = ("ft", "kd", "pkd", "alp", "adkd", "adkd+alp")
TRANSFER_SET = 8000
COLUMNS = {  # column -> (heading, digits)
    "score": ("dev accuracy", 2),
    "cosine_step_0": ("cosine, step 0", 4), "cosine": ("cosine", 4), "cosine_flat": ("cosine, flat student", 4),
    "spearman_step_0": ("Spearman, step 0", 4), "spearman": ("Spearman", 4),
    "spearman_flat": ("Spearman, flat student", 4),
    "aopc_comprehensiveness": ("AOPC comprehensiveness", 4),
    "aopc_comprehensiveness_random": ("random rationale", 4),
    "aopc_sufficiency": ("AOPC sufficiency", 4), "aopc_sufficiency_random": ("random rationale", 4),
}


def cell(entry: dict | None, digits: int, signed: bool = False) -> str:
    """``mean ± sd`` of a :func:`summarise` entry (``[k of n]`` above zero for differences)."""
    if entry is None:
        return ""
    sign = "+" if signed else ""
    text = f"{entry['mean']:{sign}.{digits}f} ± {entry['std']:.{digits}f}"
    return text + (f" [{entry['above_zero']} of {entry['n']}]" if signed else f" ({entry['n']})")


def table(rows: list[dict], columns: list[str], paired: bool) -> str:
    """One row per method, one column per measure: means, or differences from ``kd`` on the same seed."""
    by_column = {}
    for column in columns:
        source = paired_differences(rows, "kd", column) if paired else rows
        by_column[column] = {entry["method"]: entry for entry in summarise(source, column)}
    methods = list(dict.fromkeys(row["method"] for row in rows if not (paired and row["method"] == "kd")))
    heads = [COLUMNS[c][0] + (" - kd" if paired else "") for c in columns]
    lines = ["| method | " + " | ".join(heads) + " |", "|---|" + "---|" * len(columns)]
    for method in methods:
        lines.append(f"| {method} | " + " | ".join(cell(by_column[c].get(method), COLUMNS[c][1], paired)
                                                   for c in columns) + " |")
    return "\n".join(lines) + "\n"


def report(rows: list[dict], teacher: Path, data_dir: str | None) -> str:
    """The study's tables as markdown: the teacher and majority class first, then each measure."""
    best = (TeacherFolder(teacher).read_metrics() or {}).get("best", {})
    majority = majority_class_score("sst2", data_dir, train_subset=TRANSFER_SET)
    accuracy = ["score"]
    agreement = ["cosine_step_0", "cosine", "cosine_flat", "spearman_step_0", "spearman", "spearman_flat"]
    faithfulness = ["aopc_comprehensiveness", "aopc_comprehensiveness_random", "aopc_sufficiency",
                    "aopc_sufficiency_random"]
    parts = [f"Teacher {teacher.name}: dev accuracy {100 * best.get('accuracy', float('nan')):.2f}; majority class "
             f"{majority:.2f}. Means ± standard deviation over seeds (runs):\n",
             table(rows, accuracy, paired=False), "Paired with kd on the same seed (mean difference ± sd, "
             "[seeds where positive of seeds]):\n", table(rows, accuracy, paired=True),
             "Rationale agreement with the teacher over the words (256 dev sentences):\n",
             table(rows, agreement, paired=False), table(rows, ["cosine", "spearman"], paired=True),
             "Faithfulness of the student's own rationale (AOPC over 1/5/10/20/50% of the tokens; random: 5 draws):\n",
             table(rows, faithfulness, paired=False),
             table(rows, ["aopc_comprehensiveness", "aopc_sufficiency"], paired=True)]
    return "\n".join(parts)


def check_teacher(folder: Path) -> None:
    """Stop with the fix when ``folder`` holds no finished ``kdviz finetune`` teacher."""
    if not TeacherFolder(folder).is_finished:
        raise SystemExit(f"No fine-tuned teacher in {folder}: pass --teacher with a `kdviz finetune` folder "
                         f"(../shared/teachers/sst2-minilm beside the project).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", type=Path, default=TEACHER)
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44])
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--ig-steps", type=int, default=None, help="IG steps m for every run (default: the preset's)")
    parser.add_argument("--data-dir", default=os.environ.get("KDVIZ_DATA_DIR"))
    parser.add_argument("--out", default="benchmarks/results/strong_teacher")
    parser.add_argument("--runs", default="runs/strong_teacher")
    parser.add_argument("--report", action="store_true", help="print the tables of the runs done, run nothing")
    args = parser.parse_args()

    check_teacher(args.teacher)
    csv_path = Path(args.out).with_suffix(".csv")
    if not args.report:
        overrides = {"ig_steps": args.ig_steps} if args.ig_steps else {}
        run_study(grid(["sst2"], args.methods, [2], args.seeds), {"sst2": str(args.teacher)}, csv_path, args.runs,
                  quick=False, data_dir=args.data_dir, progress=False, epochs=args.epochs,
                  train_subset=TRANSFER_SET, data_seed=42, **overrides)
    text = report(read_rows(csv_path), args.teacher, args.data_dir)
    Path(args.out).with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
