"""Make the screenshots in docs/ from a finished run on real SST-2 data.

    python docs/make_screenshots.py RUN_DIR [--out docs]

RUN_DIR is an ``adkd+alp`` run folder (for example runs/demo/student from ``make demo``). Writes:

- attribution_view.png: the AttributionView's rendering (its exported standalone HTML) of real
  SST-2 dev sentences, teacher vs distilled student, photographed by headless Chromium;
- attribution_figure.png: the same example as the view's PNG export (matplotlib);
- layer_attention_view.png: the LayerAttentionView's table (its exported HTML) at the last logged
  step; layer_attention_over_training.png: its PNG export of the weights over training.

Needs Debian's chromium for the first one (apt-get install chromium).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path

from kdviz.data import load_glue
from kdviz.models import load_teacher
from kdviz.runs import load_run
from kdviz.viz.widgets import AttributionView, LayerAttentionView

DEFAULT_GLUE = Path(__file__).resolve().parents[2] / "shared" / "glue"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def photograph(html_file: Path, png: Path, width: int = 1100, height: int = 420) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
                        f"--window-size={width},{height}", html_file.resolve().as_uri()],
                       check=True, capture_output=True, timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--out", default="docs")
    parser.add_argument("--example", type=int, default=1, help="dev example to show")
    args = parser.parse_args()
    out = Path(args.out)
    run = load_run(args.run)
    teacher, tokenizer = load_teacher(run.teacher.reference, run.config.task)
    student, _ = run.load_student()
    dev = load_glue(run.config.task, os.environ.get("KDVIZ_DATA_DIR", DEFAULT_GLUE),
                    splits=("validation",))["validation"]
    view = AttributionView.from_models(teacher, student, tokenizer, dev, run.config.task, max_examples=16,
                                       top_k=run.config.top_k)
    view.controls["example"].value = args.example
    with tempfile.TemporaryDirectory() as folder:
        page = view.export_html(Path(folder) / "view.html")
        photograph(page, out / "attribution_view.png")
    view.export_png(out / "attribution_figure.png")

    layers = LayerAttentionView.from_run(run)
    with tempfile.TemporaryDirectory() as folder:
        photograph(layers.export_html(Path(folder) / "layers.html"), out / "layer_attention_view.png", height=300)
    layers.controls["mode"].value = "weights over training"
    layers.export_png(out / "layer_attention_over_training.png")
    print(f"wrote {sorted(p.name for p in out.glob('*.png'))} from {run.path}")


if __name__ == "__main__":
    main()
