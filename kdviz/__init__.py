"""kdviz: distil BERT models on GLUE with AD-KD and ALP-KD, and see what the distillation does."""

from kdviz.data import load_glue, tokenize_glue
from kdviz.models import OFFLINE_TEACHER, build_student, load_classifier, load_teacher, select_layers
from kdviz.tasks import TASKS, compute_metrics, get_task

__version__ = "0.1.0"

__all__ = [
    "OFFLINE_TEACHER", "TASKS", "build_student", "compute_metrics", "get_task", "load_classifier",
    "load_glue", "load_teacher", "select_layers", "tokenize_glue",
]
