"""The papers' comparison on real GLUE data with the offline teacher: resumable, one CSV row per run.

    KDVIZ_DATA_DIR=../shared/glue python benchmarks/reproduce.py            # everything, hours on a CPU
    python benchmarks/reproduce.py --part main --tasks rte                   # one slice
    python benchmarks/reproduce.py --tasks cola --data-dir /path/to/glue    # any GLUE-format folder

1. Teachers: the offline MiniLM (6 layers, 384 wide) fine-tuned per task (3 epochs, lr 5e-5,
   batch 32, best dev epoch), on SST-2's seeded 4,000-sentence subset and on the full MRPC and
   RTE training sets.
2. Main table: 2-layer students initialised from teacher layers 3 and 6 (PKD's skip choice) with
   every method preset (ft, kd, pkd, ckd, skip-mse, alp, alp-no, adkd, adkd+alp), seeds 42, 43, 44
   (the seed sets the head, dropout and data order; the SST-2 subset is the same draw, seed 42, for
   all). ``pkd`` (as published) and ``ckd`` were added later and run on SST-2 only:
   ``--tasks sst2 --part main --methods pkd ckd``.
3. Depth sweep: 3- and 1-layer students for kd, alp, adkd+alp, seed 42.

Students use the task's preset (the AD-KD paper's released hyperparameters; ALP weight 1, see
``benchmarks/alp_weight.py``) with the epochs cut to ``--epochs`` (default 3; the papers use
6-12). Each finished run appends a row to ``<out>.csv``; rerunning skips the rows already there,
so the study can be spread over several sittings. ``benchmarks/report_reproduce.py`` turns the
CSV into the tables and plots of BENCHMARKS.md. On a machine with a GPU the same command runs
there (``--precision``: auto picks bf16 or fp16 by GPU).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from kdviz.finetune import finetune
from kdviz.recipes import METHODS
from kdviz.runs import TeacherFolder
from kdviz.study import grid, majority_class_score, run_study

DEPTH_METHODS = ("kd", "alp", "adkd+alp")
SUBSETS = {"sst2": 4000}  # training examples per task; tasks not listed use the full training set


def fine_tuned_teacher(task: str, folder: Path, data_dir: str | None, subset: int | None, seed: int = 42) -> str:
    """The offline teacher fine-tuned on ``task`` (reused when ``folder`` holds a finished one)."""
    if not TeacherFolder(folder).is_finished:
        finetune(task, "offline-minilm", folder, data_dir=data_dir, train_subset=subset, epochs=3,
                 learning_rate=5e-5, batch_size=32, seed=seed, overwrite=True)
    return str(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["sst2", "mrpc", "rte"])
    parser.add_argument("--part", choices=("main", "depth", "all"), default="all")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), help="methods of the main table")
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44])
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("KDVIZ_DATA_DIR"))
    parser.add_argument("--out", default="benchmarks/results/reproduce")
    parser.add_argument("--runs", default="runs/reproduce")
    parser.add_argument("--precision", default="auto", help="auto, fp32, bf16 or fp16 (kdviz.precision)")
    args = parser.parse_args()

    runs = Path(args.runs)
    teachers = {task: fine_tuned_teacher(task, runs / "teachers" / task, args.data_dir, SUBSETS.get(task))
                for task in args.tasks}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    teachers_file = out.with_name(out.name + "_teachers.json")  # every task studied so far, not just these
    teacher_scores = json.loads(teachers_file.read_text()) if teachers_file.is_file() else {}
    for task, folder in teachers.items():
        result = TeacherFolder(folder).read_metrics()
        teacher_scores[task] = {"best": result["best"], "train_examples": result.get("train_examples"),
                                "majority_class": majority_class_score(task, args.data_dir,
                                                                       train_subset=SUBSETS.get(task))}
    teachers_file.write_text(json.dumps(teacher_scores, indent=2))

    plan = []
    if args.part in ("main", "all"):
        plan += grid(args.tasks, args.methods, [2], args.seeds)
    if args.part in ("depth", "all"):
        plan += grid(args.tasks, DEPTH_METHODS, [3, 1], args.seeds[:1])
    rows = run_study(plan, teachers, out.with_suffix(".csv"), runs, quick=False, data_dir=args.data_dir,
                     train_subset=SUBSETS, data_seed=42, epochs=args.epochs, logging_steps=50, precision=args.precision)
    print(f"{len(rows)} runs in {out.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
