"""The two helpers only the tutorial notebooks need: the runtime line, and a preset run read back.

Everything else a notebook calls is library code in its own module: the quick switch and the
papers' numbers in :mod:`kdviz.recipes`, fine-tuned teachers in :mod:`kdviz.finetune`
(:func:`~kdviz.finetune.teacher_for`), configs in :mod:`kdviz.config`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from kdviz.config import DistillConfig
from kdviz.distill import distill
from kdviz.precision import describe_precision
from kdviz.runs import Run, load_run


def runtime_summary(precision: str = "auto") -> str:
    """One line naming the device the notebook trains on, the precision it trains in and the versions.

    Args:
        precision: the runs' ``precision`` setting (:mod:`kdviz.precision`).
    """
    import transformers

    if torch.cuda.is_available():
        device = f"GPU {torch.cuda.get_device_name(0)} ({describe_precision(precision)})"
    else:
        device = (f"CPU ({torch.get_num_threads()} threads, {describe_precision(precision)}): quick mode or a GPU "
                  f"kernel for full runs")
    return f"kdviz on {device}; torch {torch.__version__}, transformers {transformers.__version__}"


def distill_run(method: str, task: str, teacher: str, output_dir: str | Path, *, quick: bool | None = None,
                data_dir: str | None = None, **overrides) -> Run:
    """Distil with the preset ``METHOD/TASK`` at the notebook's scale (replacing ``output_dir``) and read it back.

    Args:
        method: a method preset (``kdviz.recipes.METHODS``): ``ft``, ``kd``, ``pkd``, ``ckd``, ``alp``, ``adkd``...
        task: GLUE task name.
        teacher: a fine-tuned teacher folder (see :func:`kdviz.finetune.teacher_for`).
        output_dir: the run folder.
        quick: the quick scale (default: ``KDVIZ_QUICK``).
        data_dir: local GLUE folder (default ``$KDVIZ_DATA_DIR``, else the hub).
        **overrides: any :class:`~kdviz.config.DistillConfig` field (``student_layers=3``...).

    Returns:
        The finished run (:class:`~kdviz.runs.Run`).
    """
    config = DistillConfig.from_preset(f"{method}/{task}", quick=quick, teacher=str(teacher),
                                       output_dir=str(output_dir), data_dir=data_dir, **overrides)
    distill(config, overwrite=True)
    return load_run(output_dir)
