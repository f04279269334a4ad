"""kdviz: distil BERT models on GLUE with AD-KD and ALP-KD, and see what the distillation does.

The main names live at the top level: :class:`DistillConfig` and :func:`preset` for a run,
:func:`load_run` to read one back, the views (:class:`AttributionView`, :class:`LayerAttentionView`,
:class:`AgreementView`), data, tasks and models. (``kdviz.distill.distill`` and
``kdviz.finetune.finetune`` stay in their modules: a function of the same name as its module would
be replaced by the module as soon as the module is imported.) They are imported on first use, so
``import kdviz`` (and the ``kdviz`` command's start) loads no torch, transformers or datasets.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_HOMES = {
    "kdviz.config": ("DistillConfig",),
    "kdviz.data": ("load_glue", "tokenize_glue"),
    "kdviz.models": ("OFFLINE_TEACHER", "build_student", "load_classifier", "load_teacher", "select_layers"),
    "kdviz.recipes": ("preset",),
    "kdviz.runs": ("load_run",),
    "kdviz.tasks": ("TASKS", "compute_metrics", "get_task"),
    "kdviz.viz.widgets": ("AgreementView", "AttributionView", "LayerAttentionView"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "AgreementView", "AttributionView", "DistillConfig", "LayerAttentionView", "OFFLINE_TEACHER", "TASKS",
    "build_student", "compute_metrics", "get_task", "load_classifier", "load_glue", "load_run", "load_teacher",
    "preset", "select_layers", "tokenize_glue",
]

if TYPE_CHECKING:
    from kdviz.config import DistillConfig
    from kdviz.data import load_glue, tokenize_glue
    from kdviz.models import OFFLINE_TEACHER, build_student, load_classifier, load_teacher, select_layers
    from kdviz.recipes import preset
    from kdviz.runs import load_run
    from kdviz.tasks import TASKS, compute_metrics, get_task
    from kdviz.viz.widgets import AgreementView, AttributionView, LayerAttentionView


def __getattr__(name: str):
    if name in _HOME_OF:
        value = getattr(importlib.import_module(_HOME_OF[name]), name)
        globals()[name] = value  # the next lookup is a plain attribute
        return value
    raise AttributeError(f"module 'kdviz' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
