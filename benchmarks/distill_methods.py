"""Every method preset on real SST-2 data with the offline teacher: one row per finished run.

    python benchmarks/distill_methods.py --out benchmarks/results/sst2_methods

1. Fine-tunes the offline MiniLM teacher (6 layers, 384 wide) on a seeded SST-2 training subset.
2. Distils 2-layer students (teacher layers 3 and 6, PKD's skip choice) with the presets
   ft, kd, pkd, alp, adkd and adkd+alp for SST-2 (the papers' hyperparameters, epochs cut to
   --epochs), on the same subset, and scores each on the full 872-example dev set.
3. Writes <out>.csv (one row per run, appended as runs finish: rerunning skips finished runs) and
   <out>.md, a table beside the majority-class baseline.

Reads $KDVIZ_DATA_DIR (default ../shared/glue). Runs are kept under --runs.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

from kdviz.config import DistillConfig, preset
from kdviz.distill import distill
from kdviz.finetune import finetune
from kdviz.study import append_row

METHODS = ("ft", "kd", "pkd", "alp", "adkd", "adkd+alp")
FIELDS = ("method", "student_layers", "seed", "train_examples", "epochs", "accuracy", "best_epoch", "wall_s")


def finished(csv_path: Path) -> dict[tuple, dict]:
    if not csv_path.is_file():
        return {}
    with open(csv_path) as handle:
        return {(r["method"], r["student_layers"], r["seed"]): r for r in csv.DictReader(handle)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results/sst2_methods")
    parser.add_argument("--runs", default="runs/sst2_methods")
    parser.add_argument("--train-subset", type=int, default=4000)
    parser.add_argument("--teacher-epochs", type=float, default=1)
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    args = parser.parse_args()
    data_dir = os.environ.get("KDVIZ_DATA_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "glue"))
    runs, out = Path(args.runs), Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    teacher_dir = runs / "teacher"
    if not (teacher_dir / "metrics.json").is_file():
        finetune("sst2", "offline-minilm", teacher_dir, data_dir=data_dir, train_subset=args.train_subset,
                 epochs=args.teacher_epochs, learning_rate=1e-4, seed=args.seed, overwrite=True)
    import json

    teacher_accuracy = json.loads((teacher_dir / "metrics.json").read_text())["best"]["accuracy"]

    csv_path = out.with_suffix(".csv")
    done = finished(csv_path)
    for method in args.methods:
        key = (method, "2", str(args.seed))
        if key in done:
            continue
        values = preset(f"{method}/sst2")
        values.update(teacher=str(teacher_dir), output_dir=str(runs / method.replace("+", "_")), data_dir=data_dir,
                      student_layers=2, train_subset=args.train_subset, epochs=args.epochs, seed=args.seed,
                      logging_steps=25)
        start = time.perf_counter()
        result = distill(DistillConfig.from_dict(values), overwrite=True)
        row = {"method": method, "student_layers": 2, "seed": args.seed, "train_examples": result["train_examples"],
               "epochs": args.epochs, "accuracy": round(100 * result["best"]["accuracy"], 2),
               "best_epoch": result["best_epoch"], "wall_s": round(time.perf_counter() - start)}
        append_row(csv_path, row, FIELDS)
        done[key] = {k: str(v) for k, v in row.items()}

    lines = ["| model | SST-2 dev accuracy | wall time (s) |", "|---|---|---|",
             "| majority class (positive, 444/872) | 50.92 | |",
             f"| teacher: offline MiniLM, 6 layers, fine-tuned | {100 * teacher_accuracy:.2f} | |"]
    for method in METHODS:
        row = done.get((method, "2", str(args.seed)))
        if row:
            lines.append(f"| 2-layer student, {method} | {float(row['accuracy']):.2f} | {row['wall_s']} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
