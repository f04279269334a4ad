"""What only the notebooks need: the install cell, the parameters, the runtime line, a preset run read back."""

import json
import os
import re
import subprocess
import sys

import pytest

import kdviz
import kdviz.recipes
from helpers import REPO
from kdviz.notebook import (HOSTED_GPU_METADATA, INSTALL_SOURCE, distill_run, install_cell, notebook_quick,
                            prepare_runs_dir, runtime_summary, write_install_cells)
from kdviz.runs import Run


def test_runtime_summary_names_the_device_versions_and_the_scale(monkeypatch):
    monkeypatch.delenv("KDVIZ_QUICK", raising=False)
    summary = runtime_summary()
    assert summary.startswith("kdviz on CPU") and "torch" in summary and "transformers" in summary
    assert "QUICK = True (no GPU)" in summary and "KDVIZ_QUICK=0) forces the full recipe" in summary
    monkeypatch.setenv("KDVIZ_QUICK", "0")
    assert "QUICK = False (KDVIZ_QUICK is set): the full recipe" in runtime_summary()


@pytest.mark.parametrize("value, expected", [(None, True), ("0", False), ("no", False), ("1", True)])
def test_a_cpu_kernel_defaults_to_quick_mode_unless_told(monkeypatch, value, expected):
    import torch

    if value is None:
        monkeypatch.delenv("KDVIZ_QUICK", raising=False)
    else:
        monkeypatch.setenv("KDVIZ_QUICK", value)
    assert notebook_quick() is expected
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU kernel: the full recipe unless told
    assert notebook_quick() is (expected if value is not None else False)


@pytest.mark.parametrize("path", sorted((REPO / "notebooks").glob("*.ipynb")), ids=lambda path: path.stem)
def test_every_notebook_asks_a_hosted_kernel_for_a_gpu(path):
    metadata = json.loads(path.read_text())["metadata"]
    assert {key: metadata.get(key) for key in HOSTED_GPU_METADATA} == HOSTED_GPU_METADATA


def test_distill_run_runs_a_preset_at_the_quick_scale_and_reads_it_back(tiny_teacher, tmp_path, real_glue_env):
    run = distill_run("kd", "sst2", tiny_teacher, tmp_path / "run", quick=True, train_subset=32, eval_subset=16,
                      top_k=20, probe_size=2)
    assert isinstance(run, Run) and run.config.train_subset == 32 and run.config.epochs == 1.0
    assert run.metrics["train_examples"] == 32 and len(run.probe) == 2
    assert not run.folder.checkpoints_dir.exists()
    modified = (run.path / "metrics.json").stat().st_mtime_ns
    again = distill_run("kd", "sst2", tiny_teacher, tmp_path / "run", quick=True, train_subset=32, eval_subset=16,
                        top_k=20, probe_size=2)  # a rerun cell: the finished run of the same config is read back
    assert (run.path / "metrics.json").stat().st_mtime_ns == modified and again.metrics == run.metrics


def test_a_notebook_run_prints_one_line_per_epoch(tiny_teacher, tmp_path, real_glue_env, capsys):
    distill_run("kd", "sst2", tiny_teacher, tmp_path / "run", quick=True, train_subset=32, eval_subset=16, top_k=20,
                probe_size=0, agreement_size=0, epochs=2, logging_steps=1)
    lines = [line for line in capsys.readouterr().out.splitlines() if "epoch" in line and "elapsed" in line]
    assert len(lines) == 2, lines
    assert re.fullmatch(r"sst2 ce\+kd: epoch 1/2: training loss [0-9.]+, dev accuracy [0-9.]+, \d+ s elapsed, "
                        r"about \d+ s left", lines[0]), lines[0]
    assert lines[1].startswith("sst2 ce+kd: epoch 2/2:") and lines[1].endswith("about 0 s left")


def test_runs_on_google_drive_need_colab(tmp_path):
    assert prepare_runs_dir(tmp_path / "runs") == tmp_path / "runs" and (tmp_path / "runs").is_dir()
    with pytest.raises(ValueError, match="only a Colab kernel mounts"):
        prepare_runs_dir("/content/drive/MyDrive/kdviz-runs")


NOTEBOOKS = sorted((REPO / "notebooks").glob("0*.ipynb"))  # the checkout's, also when kdviz is an installed wheel


def code_cells(path):
    return ["".join(cell["source"]) for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_every_notebook_installs_the_one_pinned_core_source(path):
    first = code_cells(path)[0]
    assert first == install_cell(), "run `python -m kdviz.notebook` to rewrite the install cells"
    assert f'os.environ.get("KDVIZ_INSTALL_SOURCE") or {INSTALL_SOURCE!r}' in first and "[notebooks]" not in first
    assert re.search(r"@v\d+\.\d+\.\d+['\"]", first) or not INSTALL_SOURCE.startswith("kdviz @ git+")  # pinned


@pytest.fixture
def bare_python(tmp_path_factory):
    """A fresh virtual environment with nothing but pip: no kdviz, no torch."""
    folder = tmp_path_factory.mktemp("bare")
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    return folder / "bin" / "python"


def run_install_cell(python, source: str, **env):
    """The install cell's Python (up to its %matplotlib magic) run by ``python`` with KDVIZ_INSTALL_SOURCE set."""
    code = install_cell().split("%matplotlib inline")[0]
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=python.parent,  # not the checkout
                          env={**os.environ, "KDVIZ_INSTALL_SOURCE": source, **env})


def test_the_install_cell_installs_from_a_local_wheel_in_a_bare_environment(bare_python, tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(tmp_path)],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("kdviz-*.whl")
    done = run_install_cell(bare_python, str(wheel), PIP_NO_DEPS="1")  # kdviz alone: not the multi-GB torch here
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert f"Installing kdviz from {wheel}" in done.stdout and "kdviz installed" in done.stdout
    shown = subprocess.run([str(bare_python), "-m", "pip", "show", "kdviz"], capture_output=True, text=True).stdout
    assert f"Version: {kdviz.__version__}" in shown


def test_the_install_cell_shows_pips_reason_and_the_fix(bare_python, tmp_path):
    missing = tmp_path / "nowhere" / "kdviz-9.9.9-py3-none-any.whl"
    done = run_install_cell(bare_python, str(missing))
    assert done.returncode == 1
    assert f"pip could not install kdviz from {str(missing)!r}; pip said:" in done.stderr
    assert "does not exist" in done.stderr or "No such file" in done.stderr  # pip's own words
    assert "point KDVIZ_INSTALL_SOURCE at one that exists" in done.stderr


def test_install_cells_are_rewritten_from_the_constant(tmp_path):
    copy = tmp_path / NOTEBOOKS[0].name
    copy.write_text(NOTEBOOKS[0].read_text().replace(INSTALL_SOURCE, "kdviz @ git+https://example.org/old@v0"))
    assert write_install_cells(tmp_path) == [copy] and code_cells(copy)[0] == install_cell()
    assert write_install_cells(tmp_path) == []


@pytest.mark.parametrize("quick", [True, False])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_the_parameters_cell_drives_every_helper(path, quick, tmp_path, monkeypatch, real_glue_env):
    """Papermill's way: a cell injected after the parameters cell sets QUICK (KDVIZ_QUICK unset)."""
    import kdviz.finetune
    import kdviz.notebook
    import kdviz.study

    monkeypatch.delenv("KDVIZ_QUICK", raising=False)
    calls = []

    def recorder(name, result):
        return lambda *args, **kwargs: calls.append((name, kwargs)) or result

    monkeypatch.setattr(kdviz.finetune, "teacher_for", recorder("teacher_for", str(tmp_path / "teacher")))
    monkeypatch.setattr(kdviz.notebook, "distill_run", recorder("distill_run", None))
    monkeypatch.setattr(kdviz.notebook, "ensure_offline_teacher", recorder("ensure_offline_teacher", None))
    monkeypatch.setattr(kdviz.study, "run_study", recorder("run_study", []))
    cells = code_cells(path)
    namespace = {"notebook_quick": kdviz.notebook.notebook_quick}
    parameters = next(i for i, cell in enumerate(cells) if cell.startswith("# Parameters"))
    exec(cells[parameters], namespace)
    exec(f"QUICK = {quick}\nRUNS = {str(tmp_path / 'runs')!r}", namespace)  # papermill's injected cell
    for cell in cells[parameters + 1:]:
        try:
            exec(cell, namespace)
        except Exception:  # noqa: BLE001  a cell that goes on to use a recorded helper's dummy result
            pass
    helpers = [(name, kwargs) for name, kwargs in calls if name != "ensure_offline_teacher"]
    assert "teacher_for" in [name for name, _ in helpers], "the notebook fine-tunes no teacher"
    assert all(kwargs.get("quick") is quick for name, kwargs in helpers), helpers
    assert ("ensure_offline_teacher", {}) in calls if quick else not any(n == "ensure_offline_teacher" for n, _ in calls)


def test_the_figure_stamp_follows_the_drawing_code(tmp_path, monkeypatch):
    import shutil

    import kdviz.viz.stamp as stamp

    before = stamp.drawing_code_digest()
    assert re.fullmatch(r"[a-p]{12}", before)  # letters only: nbval's number sanitiser leaves it whole
    copy = tmp_path / "kdviz"
    for name in stamp.DRAWING_CODE:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "kdviz" / name, copy / name)
    monkeypatch.setattr(stamp, "_PACKAGE", copy)
    assert stamp.drawing_code_digest() == before
    with open(copy / "viz" / "render.py", "a") as handle:
        handle.write("\n# a changed drawing function\n")
    assert stamp.drawing_code_digest() != before


@pytest.mark.parametrize("path", sorted((REPO / "notebooks").glob("*.ipynb")), ids=lambda path: path.stem)
def test_committed_figures_were_drawn_by_the_committed_code(path):
    """Each notebook prints the stamp of the drawing code after its figures; nbval compares that output on a run,
    this compares the committed one without running anything."""
    from kdviz.viz.stamp import STAMP_PREFIX, figure_stamp

    cells = json.loads(path.read_text())["cells"]
    printed = ["".join(output.get("text", "")) for cell in cells if cell["cell_type"] == "code"
               and "figure_stamp()" in "".join(cell["source"]) for output in cell.get("outputs", [])]
    assert printed, f"{path.name} prints no figure stamp"
    assert all(text.startswith(STAMP_PREFIX) for text in printed)
    assert printed == [figure_stamp() + "\n"] * len(printed), (
        f"{path.name}'s figures were drawn by other drawing code than this checkout's: run the notebook again "
        f"(docs/notebooks.md: remaking the outputs)")
