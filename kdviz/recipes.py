"""Every number kdviz takes from the papers, and the scales the notebooks run them at.

- :data:`STUDENT_RECIPES`: the AD-KD authors' released student hyperparameters per task (batch,
  epochs, learning rate, alpha, T, beta, top-K, annealing);
- :data:`TEACHER_RECIPES`: their bert-base teachers' fine-tuning recipes;
- :func:`preset`: a method (which loss terms are on, ``METHOD_PRESETS``) on top of a task's recipe;
- :data:`QUICK` and :data:`FULL`: how much data and training a notebook run uses;
- :data:`SIX_LAYER_REFERENCE` and :data:`ALP_KD_GLUE_AVERAGE`: the papers' GLUE dev scores.

The study (:mod:`kdviz.study`) and the notebooks (:mod:`kdviz.notebook`) both read these; nothing
here imports the rest of kdviz except the task registry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from kdviz.tasks import TASKS, get_task


@dataclass(frozen=True)
class StudentRecipe:
    """The AD-KD release's student hyperparameters for one task.

    Attributes:
        batch_size, epochs, learning_rate: AdamW (eps 1e-8, no weight decay or warm-up, linear decay).
        alpha: weight of the KD loss; the cross-entropy gets ``1 - alpha``.
        temperature: KD temperature T.
        beta: weight of the attribution loss.
        top_k: teacher hidden dimensions kept per token (for 768-wide teachers).
        anneal: anneal T linearly to 1 over the epochs.
    """

    batch_size: int
    epochs: int
    learning_rate: float
    alpha: float
    temperature: float
    beta: float
    top_k: int
    anneal: bool


STUDENT_RECIPES: dict[str, StudentRecipe] = {
    "cola": StudentRecipe(32, 10, 4e-5, 0.9, 1, 1, 768, False),
    "mnli": StudentRecipe(64, 6, 4e-5, 0.8, 3, 10, 768, True),
    "mrpc": StudentRecipe(16, 10, 3e-5, 0.9, 4, 10, 768, True),
    "qnli": StudentRecipe(32, 6, 4e-5, 0.9, 3, 100, 768, False),
    "qqp": StudentRecipe(32, 8, 4e-5, 1.0, 4, 50, 734, True),
    "rte": StudentRecipe(16, 12, 2e-5, 0.9, 2, 10, 700, False),
    "sst2": StudentRecipe(32, 6, 5e-5, 0.8, 2, 1, 768, False),
    "stsb": StudentRecipe(16, 8, 5e-5, 0.8, 3, 1, 640, False),
}


@dataclass(frozen=True)
class TeacherRecipe:
    """Batch size, epochs and learning rate of the AD-KD paper's fine-tuned bert-base teachers."""

    batch_size: int
    epochs: int
    learning_rate: float


TEACHER_RECIPES: dict[str, TeacherRecipe] = {
    "cola": TeacherRecipe(8, 5, 2e-5), "mnli": TeacherRecipe(32, 5, 2e-5), "mrpc": TeacherRecipe(8, 5, 5e-5),
    "qnli": TeacherRecipe(32, 5, 2e-5), "qqp": TeacherRecipe(32, 5, 3e-5), "rte": TeacherRecipe(16, 4, 5e-5),
    "sst2": TeacherRecipe(32, 5, 2e-5), "stsb": TeacherRecipe(4, 4, 3e-5), "wnli": TeacherRecipe(16, 4, 2e-5),
}

ALP_WEIGHT = 1.0
"""lambda for the layer-projection loss. L_ALP here is a plain per-dimension MSE of unnormalised
[CLS] vectors (about 0.1 at the start for the offline teacher, beside a cross-entropy of 0.7); the
weights of 100 to 1000 of public re-implementations would, with gradient clipping at 1.0, shrink
every other term's step a hundredfold. Measured on SST-2 with the offline teacher
(``benchmarks/alp_weight.py``): lambda 10 scores within seed noise of 1, lambda 100 3.6 points
below it."""


def _kd(recipe: StudentRecipe) -> dict:
    return {"w_ce": round(1.0 - recipe.alpha, 6), "w_kd": recipe.alpha, "temperature": recipe.temperature,
            "anneal_temperature": recipe.anneal}


def _layer_term(variant: str) -> dict:
    return {"lam": ALP_WEIGHT, "alp_variant": variant}


METHOD_PRESETS = {
    "ft": lambda recipe: {},
    "kd": _kd,
    "pkd": lambda recipe: {**_kd(recipe), **_layer_term("pkd-skip")},
    "alp": lambda recipe: {**_kd(recipe), **_layer_term("alp")},
    "alp-no": lambda recipe: {**_kd(recipe), **_layer_term("alp-no")},
    "adkd": lambda recipe: {**_kd(recipe), "beta": recipe.beta},
    "adkd+alp": lambda recipe: {**_kd(recipe), "beta": recipe.beta, **_layer_term("alp")},
}
"""Method -> the config values that switch its loss terms on, given the task's recipe. A method not
listed sets a term's weight to 0 (off); the cross-entropy alone (``ft``) is the default."""

METHODS = tuple(METHOD_PRESETS)


def preset(name: str) -> dict:
    """Config values of a preset ``METHOD/TASK`` (or ``METHOD`` alone, with SST-2's recipe).

    Args:
        name: e.g. ``"adkd/sst2"``, ``"alp/rte"``, ``"ft/mrpc"``.

    Returns:
        A dict of :class:`kdviz.config.DistillConfig` fields.

    Raises:
        ValueError: an unknown method or task, naming the valid ones.
    """
    method, _, task = name.partition("/")
    if method not in METHOD_PRESETS:
        raise ValueError(f"Unknown preset method {method!r}; choose from {METHODS} (as METHOD/TASK).")
    task = get_task(task or "sst2").name
    if task not in STUDENT_RECIPES:
        raise ValueError(f"No recipe for {task!r}; presets cover {sorted(STUDENT_RECIPES)}.")
    recipe = STUDENT_RECIPES[task]
    values = {"task": task, "batch_size": recipe.batch_size, "epochs": recipe.epochs,
              "learning_rate": recipe.learning_rate, "top_k": recipe.top_k,
              "w_ce": 1.0, "w_kd": 0.0, "beta": 0.0, "lam": 0.0}
    values.update(METHOD_PRESETS[method](recipe))
    return values


def preset_names() -> list[str]:
    """Every ``METHOD/TASK`` preset."""
    return [f"{method}/{task}" for method in METHODS for task in STUDENT_RECIPES if task in TASKS]


# ---- scales -----------------------------------------------------------------------------------
QUICK_ENV = "KDVIZ_QUICK"


@dataclass(frozen=True)
class Scale:
    """How much data and training a run uses; ``None`` means the recipe's full value."""

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


# ---- the papers' scores (GLUE dev, x100) ------------------------------------------------------
SIX_LAYER_REFERENCE: dict[str, dict[str, float]] = {
    "BERT-base teacher (DistilBERT paper)": {
        "cola": 56.3, "mnli": 84.7, "sst2": 92.7, "qnli": 91.8, "mrpc": 88.6, "qqp": 89.6, "rte": 69.3, "stsb": 89.0},
    "DistilBERT-6": {
        "cola": 51.3, "mnli": 82.1, "sst2": 91.3, "qnli": 89.2, "mrpc": 87.5, "qqp": 88.5, "rte": 59.9, "stsb": 86.9},
    "AD-KD, 6 layers (as reported)": {
        "cola": 58.3, "mnli": 83.4, "sst2": 91.9, "qnli": 91.2, "mrpc": 91.2, "qqp": 91.4, "rte": 70.9, "stsb": 89.2},
}
"""6-layer students of a BERT-base teacher: MRPC is F1, QQP accuracy, STS-B Pearson, CoLA Matthews
correlation. Offline runs with a 6-layer MiniLM teacher are not expected to reach them."""

ALP_KD_GLUE_AVERAGE: dict[str, dict[str, float]] = {
    "4-layer students": {"alp": 77.01, "best baseline": 76.44},
    "2-layer students": {"alp": 67.08, "best baseline": 66.1},
}
"""ALP-KD's GLUE averages against its best baseline."""
