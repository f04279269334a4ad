"""One dataclass for a distillation run, its YAML/JSON/command-line loading, and the papers' presets.

A preset is ``METHOD/TASK`` (``adkd/sst2``): the method fixes which loss terms are on (``ft``,
``kd``, ``pkd``, ``alp``, ``alp-no``, ``adkd``, ``adkd+alp``), the task brings the AD-KD paper's
released student hyperparameters (batch, epochs, learning rate, alpha, T, beta, K, annealing;
``../shared/METHODS.md``). ALP-KD's setting is the [CLS] representation, all teacher layers,
dot products scaled by sqrt(hidden) and batch 32.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kdviz.tasks import TASKS, get_task


@dataclass
class DistillConfig:
    """Everything that defines a distillation run. Loss: w_ce*CE + w_kd*KD(T) + beta*attr + lam*ALP."""

    task: str = field(default="sst2", metadata={"help": "GLUE task"})
    teacher: str = field(default="", metadata={"help": "fine-tuned teacher folder or hub id"})
    output_dir: str = field(default="runs/distill", metadata={"help": "run folder"})
    data_dir: str | None = field(default=None, metadata={"help": "GLUE folder (default $KDVIZ_DATA_DIR, else hub)"})

    student_layers: int = field(default=2, metadata={"help": "student depth (from teacher layers)"})
    layer_strategy: str = field(default="skip", metadata={"help": "skip, first or last"})
    student_layer_indices: list[int] | None = field(default=None, metadata={"help": "explicit teacher layers"})
    student_init: str = field(default="teacher", metadata={"help": "'teacher' (copy its layers) or a model"})

    w_ce: float = field(default=1.0, metadata={"help": "weight of the cross-entropy (1 - alpha)"})
    w_kd: float = field(default=0.0, metadata={"help": "weight of the KD loss (alpha)"})
    temperature: float = field(default=1.0, metadata={"help": "KD temperature T"})
    anneal_temperature: bool = field(default=False, metadata={"help": "anneal T linearly to 1"})

    beta: float = field(default=0.0, metadata={"help": "weight of the attribution loss (0 = off)"})
    ig_steps: int = field(default=1, metadata={"help": "IG steps m"})
    ig_rule: str = field(default="right", metadata={"help": "Riemann rule"})
    top_k: int = field(default=768, metadata={"help": "teacher hidden dims kept (>= hidden: all)"})
    views: str = field(default="auto", metadata={"help": "auto, gold or classes"})
    attr_distance: str = field(default="mse", metadata={"help": "mse, l1 or smooth_l1"})
    teacher_cache: bool = field(default=True, metadata={"help": "compute teacher outputs once"})

    lam: float = field(default=0.0, metadata={"help": "weight of the layer-projection loss (0 = off)"})
    alp_variant: str = field(default="alp", metadata={"help": "alp, alp-no, alp-po, pkd-skip, pkd-last"})
    alp_representation: str = field(default="cls", metadata={"help": "cls or tokens"})
    alp_include_embeddings: bool = field(default=False, metadata={"help": "match layer 0 too"})
    alp_overlap: int = field(default=1, metadata={"help": "alp-po overlap"})
    alp_temperature: float | None = field(default=None, metadata={"help": "default sqrt(hidden)"})

    epochs: float = field(default=3.0, metadata={"help": "training epochs"})
    batch_size: int = field(default=32, metadata={"help": "per-device batch size"})
    learning_rate: float = field(default=5e-5, metadata={"help": "peak learning rate (linear decay)"})
    max_length: int = field(default=128, metadata={"help": "tokens per example"})
    train_subset: int | None = field(default=None, metadata={"help": "training examples (seeded draw)"})
    eval_subset: int | None = field(default=None, metadata={"help": "dev examples per split"})
    seed: int = field(default=42, metadata={"help": "random seed"})
    data_seed: int | None = field(default=None, metadata={"help": "seed of the subset draws (default: seed)"})
    logging_steps: int = field(default=20, metadata={"help": "steps between history records"})
    probe_size: int = field(default=8, metadata={"help": "dev examples whose attributions are recorded"})
    bf16: bool = field(default=False, metadata={"help": "bf16 autocast (GPUs)"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping"})

    @property
    def subset_seed(self) -> int:
        """The seed of the training and dev subset draws."""
        return self.seed if self.data_seed is None else self.data_seed

    @property
    def method_terms(self) -> list[str]:
        """The loss terms that are on."""
        return [name for name, weight in (("ce", self.w_ce), ("kd", self.w_kd), ("attribution", self.beta),
                                          ("layer_projection", self.lam)) if weight]

    def validate(self) -> "DistillConfig":
        """Check names and ranges; raise ``ValueError`` naming the field and the fix."""
        from kdviz.attribution import RULES
        from kdviz.losses import ATTRIBUTION_DISTANCES
        from kdviz.models import STRATEGIES
        from kdviz.projection import REPRESENTATIONS, VARIANTS

        self.task = get_task(self.task).name
        choices = {"layer_strategy": STRATEGIES, "ig_rule": RULES, "attr_distance": ATTRIBUTION_DISTANCES,
                   "alp_variant": VARIANTS, "alp_representation": REPRESENTATIONS,
                   "views": ("auto", "gold", "classes")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r} is not one of {list(allowed)}.")
        if not self.teacher and (self.w_kd or self.beta or self.lam):
            raise ValueError("A distillation run needs a teacher: --teacher DIR (a fine-tuned classifier folder).")
        if not self.method_terms:
            raise ValueError("Every loss weight is zero: set w_ce, w_kd, beta or lam.")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        """Write the resolved config as YAML (``.yaml``/``.yml``) or JSON."""
        path = Path(path)
        text = yaml.safe_dump(self.to_dict(), sort_keys=False) if path.suffix in (".yaml", ".yml") \
            else json.dumps(self.to_dict(), indent=2)
        path.write_text(text)

    @classmethod
    def from_dict(cls, values: dict) -> "DistillConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown config field(s) {unknown}; valid fields: {sorted(known)}.")
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path) -> "DistillConfig":
        """Read a YAML or JSON config file."""
        return cls.from_dict(read_config_values(path))


def read_config_values(path: str | Path) -> dict:
    """The fields set in a YAML or JSON config file, as a dict.

    Raises:
        FileNotFoundError: no such file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Config file {str(path)!r} does not exist.")
    text = path.read_text()
    return (yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)) or {}


# The AD-KD paper's released student hyperparameters (../shared/METHODS.md).
@dataclass(frozen=True)
class TaskRecipe:
    batch_size: int
    epochs: int
    learning_rate: float
    alpha: float
    temperature: float
    beta: float
    top_k: int
    anneal: bool


TASK_RECIPES = {
    "cola": TaskRecipe(32, 10, 4e-5, 0.9, 1, 1, 768, False),
    "mnli": TaskRecipe(64, 6, 4e-5, 0.8, 3, 10, 768, True),
    "mrpc": TaskRecipe(16, 10, 3e-5, 0.9, 4, 10, 768, True),
    "qnli": TaskRecipe(32, 6, 4e-5, 0.9, 3, 100, 768, False),
    "qqp": TaskRecipe(32, 8, 4e-5, 1.0, 4, 50, 734, True),
    "rte": TaskRecipe(16, 12, 2e-5, 0.9, 2, 10, 700, False),
    "sst2": TaskRecipe(32, 6, 5e-5, 0.8, 2, 1, 768, False),
    "stsb": TaskRecipe(16, 8, 5e-5, 0.8, 3, 1, 640, False),
}

ALP_WEIGHT = 1.0
"""lambda for the layer-projection loss. L_ALP here is a plain per-dimension MSE of unnormalised
[CLS] vectors (about 0.1 at the start for the offline teacher, beside a cross-entropy of 0.7); the
weights of 100 to 1000 of public re-implementations go with normalised vectors and, with gradient
clipping at 1.0, would shrink every other term's step a hundredfold. Measured on SST-2 with the
offline teacher (``benchmarks/alp_weight.py``): lambda 10 scores within seed noise of 1, lambda 100
3.6 points below it."""

METHODS = ("ft", "kd", "pkd", "alp", "alp-no", "adkd", "adkd+alp")


def preset(name: str) -> dict:
    """Config values of a preset ``METHOD/TASK`` (or ``METHOD`` alone, with SST-2's recipe).

    Args:
        name: e.g. ``"adkd/sst2"``, ``"alp/rte"``, ``"ft/mrpc"``.

    Returns:
        A dict of :class:`DistillConfig` fields.
    """
    method, _, task = name.partition("/")
    if method not in METHODS:
        raise ValueError(f"Unknown preset method {method!r}; choose from {METHODS} (as METHOD/TASK).")
    task = get_task(task or "sst2").name
    if task not in TASK_RECIPES:
        raise ValueError(f"No recipe for {task!r}; presets cover {sorted(TASK_RECIPES)}.")
    recipe = TASK_RECIPES[task]
    values = {"task": task, "batch_size": recipe.batch_size, "epochs": recipe.epochs,
              "learning_rate": recipe.learning_rate, "top_k": recipe.top_k,
              "w_ce": 1.0, "w_kd": 0.0, "beta": 0.0, "lam": 0.0}
    if method != "ft":
        values.update(w_ce=round(1.0 - recipe.alpha, 6), w_kd=recipe.alpha, temperature=recipe.temperature,
                      anneal_temperature=recipe.anneal)
    if method.startswith("adkd"):
        values["beta"] = recipe.beta
    if method in ("pkd", "alp", "alp-no", "adkd+alp"):
        values.update(lam=ALP_WEIGHT, alp_variant={"pkd": "pkd-skip", "alp-no": "alp-no"}.get(method, "alp"))
    return values


def preset_names() -> list[str]:
    """Every ``METHOD/TASK`` preset."""
    return [f"{method}/{task}" for method in METHODS for task in TASK_RECIPES if task in TASKS]
