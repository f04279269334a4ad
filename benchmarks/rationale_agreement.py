"""Does AD-KD make the student's rationale closer to the teacher's than KD does? Paired, per seed, over training.

    KDVIZ_DATA_DIR=../shared/glue python benchmarks/strong_teacher_study.py     # the runs (runs/strong_teacher)
    python benchmarks/rationale_agreement.py                                     # their curves

Reads the strong-teacher study's run folders (``<runs>/<task>/<method>-<L>l-seed<S>``): every run
records its student's agreement with the teacher's token scores on ``agreement_size`` dev examples
(256 by default) at step 0 and each logged step. Prints, for the last logged step, each run's
cosine, Spearman and top-k overlap, then each method's difference from KD on the same seed (same
head, dropout and data order) and on how many seeds it is positive; writes a figure of the curves
(mean over seeds) with a flat student's agreement (the floor) and each method minus KD.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np

from kdviz.agreement import MEASURES
from kdviz.viz.history_figures import agreement_figure, write_figure
from kdviz.runs import load_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="runs/strong_teacher", help="the study's runs folder")
    parser.add_argument("--task", default="sst2")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--methods", nargs="+", default=["kd", "adkd", "adkd+alp", "alp", "pkd", "ft"])
    parser.add_argument("--baseline", default="kd")
    parser.add_argument("--figure", default="benchmarks/results/agreement_sst2.png")
    args = parser.parse_args()

    curves: dict[tuple[str, int], list[dict]] = {}
    floor = None
    for method in args.methods:
        for folder in sorted(Path(args.runs, args.task).glob(f"{method.replace('+', '_')}-{args.layers}l-seed*")):
            run = load_run(folder)
            if run.agreement and run.metrics:
                curves[method, run.config.seed] = run.agreement
                floor = floor or run.agreement_uniform
    if not curves:
        raise SystemExit(f"No finished run with agreement curves under {Path(args.runs, args.task)}.")
    seeds = sorted({seed for _, seed in curves})
    examples = {records[-1]["examples"] for records in curves.values()}
    print(f"{args.task}, {args.layers}-layer students, agreement with the teacher's token scores on "
          f"{'/'.join(map(str, examples))} dev examples at the last logged step "
          f"({'/'.join(map(str, sorted({r[-1]['step'] for r in curves.values()})))})\n")
    print(f"{'method':<10}{'seed':>6}" + "".join(f"{m:>15}" for m in MEASURES))
    for (method, seed), records in curves.items():
        print(f"{method:<10}{seed:>6}" + "".join(f"{records[-1][m]:>15.4f}" for m in MEASURES))

    print(f"\npaired with {args.baseline} on the same seed: mean difference (per seed) [seeds where positive]")
    for method in args.methods:
        if method == args.baseline:
            continue
        paired = [seed for seed in seeds if (method, seed) in curves and (args.baseline, seed) in curves]
        if not paired:
            continue
        cells = []
        for measure in MEASURES:
            differences = [curves[method, s][-1][measure] - curves[args.baseline, s][-1][measure] for s in paired]
            cells.append(f"{statistics.mean(differences):+.4f} ({', '.join(f'{d:+.4f}' for d in differences)}) "
                         f"[{sum(d > 0 for d in differences)} of {len(differences)}]")
        print(f"{method:<10}" + " | ".join(f"{m}: {c}" for m, c in zip(MEASURES, cells)))

    mean_curves = {}
    for method in args.methods:
        runs = [records for (m, _), records in curves.items() if m == method]
        steps = sorted(set.intersection(*({r["step"] for r in records} for records in runs))) if runs else []
        mean_curves[f"{method} ({len(runs)} seeds)"] = [
            {"step": step, **{m: float(np.mean([next(r[m] for r in records if r["step"] == step) for records in runs]))
                              for m in MEASURES}} for step in steps]
    baseline = next((label for label in mean_curves if label.startswith(f"{args.baseline} (")), None)
    figure = agreement_figure({k: v for k, v in mean_curves.items() if v},
                              title=f"{args.task}: student vs teacher token scores, mean over seeds",
                              references={"flat student": floor} if floor else None, baseline=baseline,
                              note=f"Seeds {', '.join(map(str, seeds))}; each seed's run paired with {args.baseline} "
                                   f"on the same seed in the printed table.")
    print(f"\nfigure: {write_figure(Path(args.figure), figure)}")


if __name__ == "__main__":
    main()
