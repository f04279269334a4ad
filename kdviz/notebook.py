"""What the tutorial notebooks share: the quick switch, the runtime line, teachers and runs by name.

Every notebook has one ``parameters`` cell and calls these, so a notebook cell stays one line of
intent. ``KDVIZ_QUICK=1`` in the environment (CI, a CPU) shrinks data and epochs and swaps the hub
teacher for the offline one while every cell still runs; without it the notebooks run the papers'
full recipes (a GPU kernel and the hub).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from kdviz.config import DistillConfig, preset
from kdviz.finetune import METRICS_FILE, finetune
from kdviz.models import is_sequence_classifier, load_model_config
from kdviz.runs import Run, load_run

QUICK_ENV = "KDVIZ_QUICK"


@dataclass(frozen=True)
class Scale:
    """How much data and training a notebook run uses; ``None`` means the recipe's full value."""

    train_subset: int | None = None
    eval_subset: int | None = None
    teacher_epochs: float | None = None
    teacher_learning_rate: float | None = None
    student_epochs: float | None = None
    logging_steps: int = 50

    @property
    def is_quick(self) -> bool:
        return self != FULL


FULL = Scale()
# Quick mode: a teacher that learns something in one pass over 1,000 examples, students on the same
# examples, dev scored on 200; every logging window is a handful of steps so the figures have points.
QUICK = Scale(train_subset=1000, eval_subset=200, teacher_epochs=1, teacher_learning_rate=1e-4,
              student_epochs=1, logging_steps=4)


def quick_mode() -> bool:
    """Whether ``KDVIZ_QUICK`` asks for the quick mode (``1``, ``true``, ``yes``)."""
    return os.environ.get(QUICK_ENV, "").strip().lower() in ("1", "true", "yes")


def scale(quick: bool | None = None) -> Scale:
    """:data:`QUICK` in quick mode, else :data:`FULL` (``quick=None`` reads ``KDVIZ_QUICK``)."""
    return QUICK if (quick_mode() if quick is None else quick) else FULL


def runtime_summary() -> str:
    """One line naming the device the notebook trains on and the library versions."""
    import transformers

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        device = f"GPU {name} ({'bf16' if torch.cuda.is_bf16_supported() else 'fp32 only'})"
    else:
        device = f"CPU ({torch.get_num_threads()} threads): use KDVIZ_QUICK=1 or a GPU kernel for full runs"
    return f"kdviz on {device}; torch {torch.__version__}, transformers {transformers.__version__}"


def _slug(reference: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", reference.strip("/.")).strip("-").lower()


def is_finetuned(reference: str, task: str) -> bool:
    """Whether ``reference`` is already a classifier for ``task`` (a teacher to use as it is)."""
    _, config = load_model_config(reference, task)
    return is_sequence_classifier(config)


def teacher_for(task: str, model: str, *, runs_dir: str | Path = "runs", quick: bool | None = None,
                data_dir: str | None = None, seed: int = 42) -> str:
    """A fine-tuned teacher for ``task``: ``model`` itself when it already is one, else fine-tuned once.

    The fine-tuned teacher goes to ``RUNS_DIR/teachers/<task>-<model>[-quick]`` and is reused by
    every later call (and notebook) that asks for the same task, model and scale.

    Args:
        task: GLUE task name.
        model: a fine-tuned teacher folder, a hub id to fine-tune (``"bert-base-uncased"``) or
            ``"offline-minilm"``.
        runs_dir: where fine-tuned teachers are kept.
        quick: quick scale (default: ``KDVIZ_QUICK``).
        data_dir: local GLUE folder (default ``$KDVIZ_DATA_DIR``, else the hub).
        seed: the fine-tuning seed.

    Returns:
        The teacher's folder (or ``model`` unchanged when it is already fine-tuned on ``task``).
    """
    if is_finetuned(model, task):
        return model
    size = scale(quick)
    folder = Path(runs_dir) / "teachers" / f"{task}-{_slug(model)}{'-quick' if size.is_quick else ''}"
    if not (folder / METRICS_FILE).is_file():
        finetune(task, model, folder, data_dir=data_dir, train_subset=size.train_subset,
                 eval_subset=size.eval_subset, epochs=size.teacher_epochs,
                 learning_rate=size.teacher_learning_rate, seed=seed, overwrite=True)
    return str(folder)


def run_config(method: str, task: str, teacher: str, output_dir: str | Path, *, quick: bool | None = None,
               data_dir: str | None = None, **overrides) -> DistillConfig:
    """The preset ``METHOD/TASK`` at the notebook's scale, with ``overrides`` on top.

    Args:
        method: ``ft``, ``kd``, ``pkd``, ``alp``, ``alp-no``, ``adkd`` or ``adkd+alp``.
        task: GLUE task name.
        teacher: a fine-tuned teacher folder (see :func:`teacher_for`).
        output_dir: the run folder.
        quick: quick scale (default: ``KDVIZ_QUICK``).
        data_dir: local GLUE folder (default ``$KDVIZ_DATA_DIR``, else the hub).
        **overrides: any :class:`~kdviz.config.DistillConfig` field (``student_layers=3``...).

    Returns:
        A validated :class:`~kdviz.config.DistillConfig`.
    """
    size = scale(quick)
    values = {**preset(f"{method}/{task}"), "teacher": str(teacher), "output_dir": str(output_dir),
              "data_dir": data_dir, "logging_steps": size.logging_steps}
    if size.is_quick:
        values.update(train_subset=size.train_subset, eval_subset=size.eval_subset, epochs=size.student_epochs)
    values.update(overrides)
    return DistillConfig.from_dict(values).validate()


def distill_run(method: str, task: str, teacher: str, output_dir: str | Path, *, quick: bool | None = None,
                data_dir: str | None = None, **overrides) -> Run:
    """Run :func:`kdviz.distill.distill` on :func:`run_config` (replacing ``output_dir``) and read it back.

    Returns:
        The finished run (:class:`~kdviz.runs.Run`).
    """
    from kdviz.distill import distill

    config = run_config(method, task, teacher, output_dir, quick=quick, data_dir=data_dir, **overrides)
    distill(config, overwrite=True)
    return load_run(output_dir)


def teacher_depth(teacher: str) -> int:
    """Number of encoder layers of a teacher folder or hub id (students are sized from it)."""
    from transformers import AutoConfig

    from kdviz.models import resolve_model_reference

    return AutoConfig.from_pretrained(resolve_model_reference(teacher)).num_hidden_layers
