"""How much the ALP weight lambda matters: the ``alp`` preset on SST-2 with lambda = 1, 10, 100.

    KDVIZ_DATA_DIR=../shared/glue python benchmarks/alp_weight.py      # about 5 min a run on 2 CPU cores

Same setting as the strong-teacher study (``benchmarks/strong_teacher_study.py``: the MiniLM fine-tuned
on all of SST-2 in ``../shared/teachers/sst2-minilm``, a 2-layer student from teacher layers 3 and 6,
its seeded 8,000-sentence transfer set, 3 epochs, seed 42); only ``lam`` changes, so the ``lam = 1``
row repeats the study's ``alp`` seed-42 run. Each
weight's run appends its row to ``benchmarks/results/alp_weight/lam<W>.csv`` (rerunning skips the
finished ones), and ``benchmarks/results/alp_weight.md`` gets one line per weight: the dev score
and the last logged value of each loss term, so the ALP term's share of the loss can be read
beside its effect on the score.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from kdviz.runs import RunFolder
from kdviz.study import grid, read_rows, run_study
from strong_teacher_study import TEACHER, TRANSFER_SET, check_teacher

TASK = "sst2"
PLAN = grid([TASK], ["alp"], [2], [42])  # the one run each weight repeats


def report(weights: list[float], out: Path, runs: Path) -> str:
    """A markdown table, one line per finished weight: score and the last logged loss terms."""
    lines = ["| lambda | accuracy | CE | KD | ALP (raw) | lambda x ALP / total loss |", "|---|---|---|---|---|---|"]
    for weight in sorted(weights):
        rows = read_rows(out / f"lam{weight:g}.csv")
        if not rows:
            continue
        row = rows[0]
        terms = RunFolder(runs / f"lam{weight:g}" / PLAN[0].folder).loss_terms()[-1]  # raw, unweighted terms
        share = weight * terms["loss_layer_projection"] / terms["loss"]
        lines.append(f"| {weight:g} | {float(row['score']):.2f} | {terms['loss_ce']:.3f} | {terms['loss_kd']:.3f} "
                     f"| {terms['loss_layer_projection']:.4f} | {share:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", nargs="+", type=float, default=[1.0, 10.0, 100.0])
    parser.add_argument("--data-dir", default=os.environ.get("KDVIZ_DATA_DIR"))
    parser.add_argument("--teacher", type=Path, default=TEACHER, help="the strong-teacher study's teacher folder")
    parser.add_argument("--out", default="benchmarks/results/alp_weight")
    parser.add_argument("--runs", default="runs/alp_weight")
    args = parser.parse_args()

    check_teacher(args.teacher)
    out, runs = Path(args.out), Path(args.runs)
    for weight in args.weights:
        run_study(PLAN, {TASK: str(args.teacher)}, out / f"lam{weight:g}.csv", runs / f"lam{weight:g}",
                  quick=False, data_dir=args.data_dir, progress=False, train_subset=TRANSFER_SET,
                  data_seed=42, epochs=3, terms={"layer_projection": {"weight": weight}})
        out.with_suffix(".md").write_text(report(args.weights, out, runs))
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
