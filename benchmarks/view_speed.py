"""How long AttributionView takes to show another example whose attributions are cached.

    python benchmarks/view_speed.py

Builds the view from the offline teacher and a 2-layer student on real RTE dev pairs truncated to
128 tokens (the longest inputs kdviz shows), fills the attribution cache, then steps through the
examples by setting the slider's value, as a click would, and prints the median and worst
re-render times (HTML heatmaps, agreement scores, filters) and the same for a PNG export.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

from kdviz.data import load_glue
from kdviz.models import OFFLINE_TEACHER, build_student, load_classifier
from kdviz.notebook import accelerator
from kdviz.viz.widgets import AttributionView

DEFAULT_GLUE = Path(__file__).resolve().parents[2] / "shared" / "glue"


def main() -> None:
    teacher, tokenizer = load_classifier(OFFLINE_TEACHER, "rte")
    teacher = teacher.to(accelerator())  # the view moves each batch to the models and its results to the CPU
    student = build_student(teacher, num_layers=2).eval()
    dev = load_glue("rte", os.environ.get("KDVIZ_DATA_DIR", DEFAULT_GLUE), splits=("validation",))["validation"]
    view = AttributionView.from_models(teacher, student, tokenizer, dev, "rte", max_examples=40)
    lengths = [len(e.tokens) for e in view.examples]
    long_ones = [i for i, n in enumerate(lengths) if n == 128]
    for i in long_ones:  # fill the cache
        view.scores(i, "teacher"), view.scores(i, "student")
    slider = view.controls["example"]
    render, export = [], []
    for i in long_ones:
        start = time.perf_counter()
        slider.value = i
        render.append(time.perf_counter() - start)
        start = time.perf_counter()
        view.figure().savefig(os.devnull, format="png")
        export.append(time.perf_counter() - start)
    print(f"{len(long_ones)} RTE dev examples of 128 tokens, attributions cached")
    print(f"step to another example (HTML re-render): median {1000 * statistics.median(render):.1f} ms, "
          f"worst {1000 * max(render):.1f} ms (goal: under 100 ms)")
    print(f"PNG export of the figure:                 median {1000 * statistics.median(export):.1f} ms")


if __name__ == "__main__":
    main()
