"""Every number kdviz takes from the papers, and the scales the notebooks run them at.

- :data:`STUDENT_RECIPES`: the AD-KD authors' released student hyperparameters per task (batch,
  epochs, learning rate, alpha, T, beta, top-K, annealing);
- :data:`TEACHER_RECIPES`: their bert-base teachers' fine-tuning recipes;
- :func:`preset`: a method (which loss terms are on, ``METHOD_PRESETS``) on top of a task's recipe;
- :data:`PAPER_PRESETS`: each paper's own full setup (teacher, student, hyperparameters, best-epoch
  metric), ``paper-adkd/TASK`` and ``paper-alp/TASK``;
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
"""lambda for the layer-projection loss in kdviz's own presets. kdviz's L_ALP is the *sum* over student
layers of a per-dimension MSE of raw [CLS] vectors (about 0.1 at the start for the offline teacher,
beside a cross-entropy of 0.7). The public re-implementation weights ``mu * mean over student layers``
of the same MSE with mu = 500 to 1000, which is lambda = mu / M here (M student layers; neither
normalises the vectors). Measured on SST-2 with the offline teacher and a 2-layer student
(``benchmarks/alp_weight.py``): lambda 10 scores within seed noise of 1, lambda 100 (mu = 200) 3.6
points below it, so the re-implementation's weights are not used offline; the ``paper-alp`` presets
use them."""

PKD_WEIGHT = 100.0
"""beta of PKD's patient loss: the middle of the PKD paper's grid {10, 100, 500, 1000}, not searched
here. The loss is a mean over dimensions of normalised vectors (as the PKD release computes it)."""

CKD_WEIGHT = ALP_WEIGHT
"""CKD's loss has the scale of ALP's (a sum over student layers of a per-dimension MSE of [CLS]
vectors), so it takes the same weight."""


def _kd(recipe: StudentRecipe) -> dict:
    return {"ce": {"weight": round(1.0 - recipe.alpha, 6)},
            "kd": {"weight": recipe.alpha, "temperature": recipe.temperature, "anneal": recipe.anneal}}


def _layer_term(variant: str) -> dict:
    return {"layer_projection": {"weight": ALP_WEIGHT, "variant": variant}}


METHOD_PRESETS = {
    "ft": lambda recipe: {},
    "kd": _kd,
    "pkd": lambda recipe: {**_kd(recipe), "pkd": {"weight": PKD_WEIGHT, "mapping": "skip"}},
    "ckd": lambda recipe: {**_kd(recipe), "ckd": {"weight": CKD_WEIGHT}},
    "skip-mse": lambda recipe: {**_kd(recipe), **_layer_term("skip")},
    "alp": lambda recipe: {**_kd(recipe), **_layer_term("alp")},
    "alp-no": lambda recipe: {**_kd(recipe), **_layer_term("alp-no")},
    "adkd": lambda recipe: {**_kd(recipe), "attribution": {"weight": recipe.beta}},
    "adkd+alp": lambda recipe: {**_kd(recipe), "attribution": {"weight": recipe.beta}, **_layer_term("alp")},
}
"""Method -> the ``terms`` block that switches its loss terms on, given the task's recipe. A term not
in the block keeps its defaults: off, except the cross-entropy (weight 1; ``ft`` is it alone).
``pkd`` is PKD as published (intermediate layers, normalised [CLS], weight beta); ``skip-mse`` is
the hard skip mapping of every student layer (the top one too) on raw [CLS] vectors, kdviz's first
"pkd"."""

METHODS = tuple(METHOD_PRESETS)

def _recipe_for(task: str) -> tuple[str, StudentRecipe]:
    task = get_task(task or "sst2").name
    if task not in STUDENT_RECIPES:
        raise ValueError(f"No recipe for {task!r}; presets cover {sorted(STUDENT_RECIPES)}.")
    return task, STUDENT_RECIPES[task]


def _method_values(method: str, task: str) -> dict:
    task, recipe = _recipe_for(task)
    values = {"task": task, "batch_size": recipe.batch_size, "epochs": recipe.epochs,
              "learning_rate": recipe.learning_rate, "top_k": recipe.top_k, "terms": METHOD_PRESETS[method](recipe)}
    return values


# ---- the papers' own setups ----------------------------------------------------------------------
ADKD_STUDENT = "google/bert_uncased_L-6_H-768_A-12"
"""The AD-KD release's student: Turc et al.'s pre-trained 6-layer, 768-wide BERT."""

ADKD_RELEASED_TEACHER = "Brucewsy/AD-KD_bert_base_uncased_{task}"
"""The AD-KD authors' fine-tuned bert-base teachers on the hub; ``{task}`` is the release's task name
(:data:`ADKD_TASK_NAMES`)."""

ADKD_TASK_NAMES = {"sst2": "sst-2", "stsb": "sts-b"}
"""The release's names of the tasks whose names differ from kdviz's (``sst-2``, ``sts-b``)."""

ADKD_TEACHER_LABEL_ORDER = {"mnli": ("contradiction", "entailment", "neutral")}
"""The released teachers' output order where it differs from kdviz's (the old ``transformers`` GLUE
processors' MNLI order); :func:`kdviz.models.reorder_labels` puts them in the task's order."""

ADKD_BEST_METRICS = {"qqp": "accuracy", "stsb": "spearman"}
"""Where the release picks the best epoch by another metric than kdviz's main one (CoLA MCC, MRPC F1
and MNLI matched + mismatched accuracy are the main ones already)."""

ALP_TEACHER = "bert-base-uncased"
"""ALP-KD's teacher: bert-base-uncased, fine-tuned per task with :data:`TEACHER_RECIPES`."""

ALP_EPOCHS = {"sst2": 20, "mrpc": 20, "cola": 10, "qnli": 10, "rte": 5}
"""ALP-KD's student epochs per task as the public re-implementation reads the paper (batch 32)."""

ALP_LEARNING_RATE = 5e-5
ALP_MU = 1000.0
"""The re-implementation's ALP weight mu (weight of the mean over student layers); lambda = mu / M."""

ALP_STUDENT_DEPTHS = (6, 4, 2)


def released_teacher(task: str) -> str:
    """The hub id of the AD-KD authors' fine-tuned teacher for ``task``."""
    name = get_task(task).name
    return ADKD_RELEASED_TEACHER.format(task=ADKD_TASK_NAMES.get(name, name))


def _paper_adkd(task: str) -> dict:
    return {**_method_values("adkd", task), "teacher": released_teacher(task), "student_init": ADKD_STUDENT,
            "student_layers": 6, "ig_steps": 1, "max_length": 128, "best_metric": ADKD_BEST_METRICS.get(task)}


def paper_alp(task: str, student_layers: int = 4, method: str = "alp") -> dict:
    """ALP-KD's setup for a task and student depth: ``alp`` itself, or a baseline (``kd``, ``pkd``,
    ``ckd``) with the same teacher, student, batch, epochs and learning rate.

    Returns:
        A dict of :class:`kdviz.config.DistillConfig` fields.
    """
    values = _method_values(method, task)
    values.update(teacher=ALP_TEACHER, student_init="teacher", layer_strategy="skip", student_layers=student_layers,
                  batch_size=32, epochs=ALP_EPOCHS[task], learning_rate=ALP_LEARNING_RATE, max_length=128)
    if method == "alp":
        values["terms"]["layer_projection"].update(weight=ALP_MU / student_layers, score="unscaled")
    return values


PAPER_PRESETS = {"paper-adkd": _paper_adkd, "paper-alp": paper_alp}
"""Each paper's full setup for a task (GPU kernels with the hub). ``paper-adkd``: the released teacher,
the pre-trained 6-layer student, the released hyperparameters and best-epoch metrics. ``paper-alp``: a
bert-base teacher (fine-tuned first when it is not one: ``kdviz reproduce``), a 4-layer student
copied from the teacher's skip layers (``student_layers`` 6 and 2 too), batch 32, the paper's epochs,
the re-implementation's weight mu = 1000 (lambda = mu / M) and the unscaled score of the paper's
formula."""

PAPER_TASKS = {"paper-adkd": tuple(STUDENT_RECIPES), "paper-alp": tuple(ALP_EPOCHS)}


def preset(name: str) -> dict:
    """Config values of a preset ``METHOD/TASK`` (or ``METHOD`` alone, with SST-2's recipe).

    Args:
        name: e.g. ``"adkd/sst2"``, ``"alp/rte"``, ``"ft/mrpc"``, ``"paper-adkd/stsb"``.

    Returns:
        A dict of :class:`kdviz.config.DistillConfig` fields.

    Raises:
        ValueError: an unknown method or task, naming the valid ones.
    """
    method, _, task = name.partition("/")
    if method in PAPER_PRESETS:
        task = get_task(task or "sst2").name
        if task not in PAPER_TASKS[method]:
            raise ValueError(f"{method} covers the paper's tasks {list(PAPER_TASKS[method])}, not {task!r}.")
        return PAPER_PRESETS[method](task)
    if method not in METHOD_PRESETS:
        raise ValueError(f"Unknown preset method {method!r}; choose from {METHODS + tuple(PAPER_PRESETS)} "
                         f"(as METHOD/TASK).")
    return _method_values(method, task)


def preset_names() -> list[str]:
    """Every ``METHOD/TASK`` preset, the papers' own setups last."""
    names = [f"{method}/{task}" for method in METHODS for task in STUDENT_RECIPES if task in TASKS]
    return names + [f"{paper}/{task}" for paper, tasks in PAPER_TASKS.items() for task in tasks]


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


def quick_mode(default: bool | None = False) -> bool | None:
    """Whether ``KDVIZ_QUICK`` asks for the quick mode: ``1``, ``true``, ``yes`` do, ``0``, ``false``,
    ``no`` ask for the full scale; ``default`` when it is unset (or anything else)."""
    value = os.environ.get(QUICK_ENV, "").strip().lower()
    return True if value in ("1", "true", "yes") else False if value in ("0", "false", "no") else default


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
"""6-layer students of a BERT-base teacher: the metrics of :func:`reference_metric` (MRPC F1, QQP
accuracy, MNLI-m accuracy, STS-B Pearson, CoLA Matthews correlation). Offline runs with a 6-layer
MiniLM teacher are not expected to reach them."""

_REFERENCE_METRICS = {"qqp": "accuracy", "mnli": "validation_matched_accuracy"}


def reference_metric(task: str) -> str:
    """The metric :data:`SIX_LAYER_REFERENCE` reports for ``task`` (a key of kdviz's dev metrics)."""
    return _REFERENCE_METRICS.get(task, get_task(task).main_metric)


ALP_KD_GLUE_AVERAGE: dict[int, dict[str, float]] = {
    4: {"alp": 77.01, "best baseline": 76.44},
    2: {"alp": 67.08, "best baseline": 66.1},
}
"""ALP-KD's GLUE averages against its best baseline, by student depth."""
