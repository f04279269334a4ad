"""``DistillConfig``: one typed dataclass for a distillation run, checked field by field when it is built.

A config comes from a preset (``METHOD/TASK``, :mod:`kdviz.recipes`), a YAML or JSON file, and
command-line options, in that order of precedence (``kdviz distill``). Every field is checked for
its type and range as soon as the config is built, so a wrong value (``epochs: three``,
``epochs: 0``) stops before any data or model is loaded, naming the field and the fix.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kdviz.attribution import RULES, AttributionSettings, default_views
from kdviz.layer_baselines import PKD_MAPPINGS
from kdviz.loss_terms import TERMS, active_term_names
from kdviz.losses import ATTRIBUTION_DISTANCES
from kdviz.models import STRATEGIES
from kdviz.precision import PRECISIONS, precision_from_bf16
from kdviz.projection import REPRESENTATIONS, SCORES, VARIANTS
from kdviz.recipes import preset, preset_names, scale  # noqa: F401  (preset, preset_names: the documented imports)
from kdviz.reporting import report_to_names
from kdviz.tasks import get_task

VIEWS = ("auto", "gold", "classes")


def _field(default, help: str, *, choices=None, minimum=None, above=None):
    """A config field with its help text and the range its values must lie in."""
    return field(default=default, metadata={"help": help, "choices": choices, "minimum": minimum, "above": above})


@dataclass
class DistillConfig:
    """Everything that defines a distillation run.

    Loss: w_ce*CE + w_kd*KD(T) + beta*attribution + lam*ALP + w_pkd*PKD + w_ckd*CKD (a weight of 0 turns
    a term off; :mod:`kdviz.loss_terms`).

    Raises:
        ValueError: when built with a value of the wrong type or out of range, naming the field.
    """

    task: str = _field("sst2", "GLUE task")
    teacher: str = _field("", "fine-tuned teacher folder or hub id")
    output_dir: str = _field("runs/distill", "run folder")
    data_dir: str | None = _field(None, "GLUE folder (default $KDVIZ_DATA_DIR, else hub)")

    student_layers: int = _field(2, "student depth (from teacher layers)", minimum=1)
    layer_strategy: str = _field("skip", "skip, first or last", choices=STRATEGIES)
    student_layer_indices: list[int] | None = _field(None, "explicit teacher layers")
    student_init: str = _field("teacher", "'teacher' (copy its layers) or a pre-trained model: hub id or folder")

    w_ce: float = _field(1.0, "weight of the cross-entropy (1 - alpha)", minimum=0)
    w_kd: float = _field(0.0, "weight of the KD loss (alpha)", minimum=0)
    temperature: float = _field(1.0, "KD temperature T", above=0)
    anneal_temperature: bool = _field(False, "anneal T linearly to 1")

    beta: float = _field(0.0, "weight of the attribution loss (0 = off)", minimum=0)
    ig_steps: int = _field(1, "IG steps m", minimum=1)
    ig_rule: str = _field("right", "Riemann rule", choices=RULES)
    ig_step_chunk: int | None = _field(None, "IG steps per pass (default all; bounds memory)", minimum=1)
    top_k: int = _field(768, "teacher hidden dims kept (>= hidden: all)", minimum=1)
    views: str = _field("auto", "auto, gold or classes", choices=VIEWS)
    attr_distance: str = _field("mse", "mse, l1 or smooth_l1", choices=ATTRIBUTION_DISTANCES)
    teacher_cache: bool = _field(
        True, "compute the teacher's outputs (training and probe sets) once and read them from the cache")
    cache_dir: str | None = _field(None, "teacher cache folder (default $KDVIZ_CACHE, else ~/.cache/kdviz)")

    lam: float = _field(0.0, "weight of the layer-projection loss (0 = off)", minimum=0)
    alp_variant: str = _field("alp", "alp, alp-no, alp-po, skip, last", choices=VARIANTS)
    alp_representation: str = _field("cls", "cls or tokens", choices=REPRESENTATIONS)
    alp_include_embeddings: bool = _field(False, "match layer 0 too")
    alp_overlap: int = _field(1, "alp-po overlap", minimum=0)
    alp_score: str = _field("sqrt_h", "dot product / sqrt(H) or unscaled (the paper's form)", choices=SCORES)

    w_pkd: float = _field(0.0, "weight of PKD's normalised [CLS] loss (beta in the PKD paper; 0 = off)", minimum=0)
    pkd_mapping: str = _field("skip", "PKD's layer pairs: skip or last", choices=PKD_MAPPINGS)
    w_ckd: float = _field(0.0, "weight of CKD's bucket loss (0 = off)", minimum=0)

    epochs: float = _field(3.0, "training epochs", above=0)
    batch_size: int = _field(32, "per-device batch size", minimum=1)
    learning_rate: float = _field(5e-5, "peak learning rate (linear decay)", above=0)
    max_length: int = _field(128, "tokens per example", minimum=2)
    train_subset: int | None = _field(None, "training examples (seeded draw)", minimum=1)
    eval_subset: int | None = _field(None, "dev examples per split", minimum=1)
    best_metric: str | None = _field(None, "dev metric that picks the best epoch (default: the task's main one)")
    seed: int = _field(42, "random seed", minimum=0)
    data_seed: int | None = _field(None, "seed of the subset draws (default: seed)", minimum=0)
    logging_steps: int = _field(20, "steps between history records", minimum=1)
    probe_size: int = _field(8, "dev examples whose attributions are saved at each logged step (for the views)",
                             minimum=0)
    agreement_size: int = _field(256, "dev examples on which teacher-student rationale agreement is measured at "
                                      "each logged step (0: only on the probe_size examples)", minimum=0)
    precision: str = _field("auto", "auto (bf16 on GPUs that have it, fp16 on older GPUs, fp32 on CPUs), fp32, "
                                    "bf16 or fp16", choices=PRECISIONS)
    report_to: str | list[str] = _field("none", "where the loss terms are also logged: none, all, or any of "
                                                "transformers' integrations (tensorboard, wandb, mlflow...; "
                                                "several comma-separated or as a list)")
    keep_checkpoints: bool = _field(False, "keep the optimiser checkpoints after a finished run (to train on)")
    max_grad_norm: float = _field(1.0, "gradient clipping", above=0)

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for spec in dataclasses.fields(self):
            value = _checked_type(spec.name, getattr(self, spec.name), hints[spec.name])
            _check_range(spec.name, value, spec.metadata)
            setattr(self, spec.name, value)
        task = get_task(self.task)
        self.task = task.name
        report_to_names(self.report_to)
        if self.best_metric is not None and self.best_metric not in task.metrics:
            raise ValueError(f"best_metric={self.best_metric!r} is not a metric of {task.name}: choose from "
                             f"{list(task.metrics)}.")
        if self.ig_rule == "trapezoid" and self.ig_steps < 2:
            raise ValueError(f"ig_rule='trapezoid' needs ig_steps >= 2, got {self.ig_steps}: raise ig_steps or "
                             f"choose another rule.")

    @property
    def selection_metric(self) -> str:
        """The dev metric that picks the best epoch."""
        return self.best_metric or get_task(self.task).main_metric

    @property
    def subset_seed(self) -> int:
        """The seed of the training and dev subset draws."""
        return self.seed if self.data_seed is None else self.data_seed

    @property
    def method_terms(self) -> list[str]:
        """The names of the loss terms that are on (a weight above zero), in the objective's order."""
        return active_term_names(self)

    def attribution_settings(self, num_labels: int) -> AttributionSettings:
        """The teacher's attribution settings of this run (``views="auto"`` resolved for the task).

        Args:
            num_labels: the task's number of model outputs.
        """
        views = default_views(num_labels) if self.views == "auto" else self.views
        return AttributionSettings(views=views, steps=self.ig_steps, rule=self.ig_rule, top_k=self.top_k,
                                   step_chunk=self.ig_step_chunk)

    def validate(self) -> "DistillConfig":
        """Check that the config can run: a teacher where a term needs one, and some loss term on.

        Raises:
            ValueError: naming the field and the fix.
        """
        if not self.teacher and set(self.method_terms) - {"ce"}:
            raise ValueError("A distillation run needs a teacher: --teacher DIR (a fine-tuned classifier folder).")
        if not self.method_terms:
            weights = ", ".join(term.weight_field for term in TERMS.values())
            raise ValueError(f"Every loss weight is zero: set one of {weights}.")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        """Write the config as YAML (``.yaml``/``.yml``) or JSON."""
        path = Path(path)
        text = yaml.safe_dump(self.to_dict(), sort_keys=False) if path.suffix in (".yaml", ".yml") \
            else json.dumps(self.to_dict(), indent=2)
        path.write_text(text)

    @classmethod
    def from_dict(cls, values: dict) -> "DistillConfig":
        """Build a config from field values; unknown fields are refused with the valid ones listed.

        ``bf16: true|false`` (the field before ``precision``, in older run folders) reads as
        ``precision: bf16|fp32``, what it trained in.
        """
        values = dict(values)
        if "bf16" in values:
            values.setdefault("precision", precision_from_bf16(values.pop("bf16")))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown config field(s) {unknown}; valid fields: {sorted(known)}.")
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path) -> "DistillConfig":
        """Read a YAML or JSON config file."""
        return cls.from_dict(read_config_values(path))

    @classmethod
    def from_preset(cls, name: str | dict, *, quick: bool | None = None, **overrides) -> "DistillConfig":
        """A preset ``METHOD/TASK`` at the quick or full scale (:mod:`kdviz.recipes`), ``overrides`` on top.

        Args:
            name: e.g. ``"adkd/sst2"``, or a preset's values (a dict of fields).
            quick: the quick scale (subsets, one epoch); default: ``$KDVIZ_QUICK``.
            **overrides: any field (``teacher=...``, ``student_layers=3``...).

        Returns:
            A config checked by :meth:`validate`.
        """
        size = scale(quick)
        values = {**(preset(name) if isinstance(name, str) else name), "logging_steps": size.logging_steps}
        if size.is_quick:
            values.update(train_subset=size.train_subset, eval_subset=size.eval_subset, epochs=size.student_epochs)
        values.update(overrides)
        return cls.from_dict(values).validate()


def read_config_values(path: str | Path) -> dict:
    """The fields set in a YAML or JSON config file, as a dict.

    Raises:
        FileNotFoundError: no such file; ValueError: a file that is not a mapping of fields.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Config file {str(path)!r} does not exist.")
    text = path.read_text()
    values = (yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)) or {}
    if not isinstance(values, dict):
        raise ValueError(f"Config file {str(path)!r} must hold a mapping of field: value, not a {type(values).__name__}.")
    return values


_KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


def _fits(value, kind) -> bool:
    if typing.get_origin(kind) is list:
        return isinstance(value, (list, tuple)) and all(_fits(item, typing.get_args(kind)[0]) for item in value)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


def _coerced(value, kind):
    if typing.get_origin(kind) is list:
        return [_coerced(item, typing.get_args(kind)[0]) for item in value]
    return float(value) if kind is float else value


def _described(kind) -> str:
    if typing.get_origin(kind) is list:
        return {int: "a list of whole numbers", str: "a list of names"}[typing.get_args(kind)[0]]
    return _KINDS[kind]


def _checked_type(name: str, value, annotation):
    """``value`` if it fits ``annotation`` (ints widened to floats), else a ValueError naming the field."""
    allowed = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    if value is None and type(None) in allowed:
        return None
    kinds = [kind for kind in allowed if kind is not type(None)]
    for kind in kinds:
        if _fits(value, kind):
            return _coerced(value, kind)
    optional = " (or null)" if type(None) in allowed else ""
    raise ValueError(f"Config field {name}={value!r} has the wrong type: give "
                     f"{' or '.join(_described(kind) for kind in kinds)}{optional}, e.g. {name}: {_example(kinds[0])}.")


def _example(kind) -> str:
    return {bool: "true", int: "3", float: "0.5", str: "a name"}.get(kind, "[0, 5]")


def _check_range(name: str, value, metadata) -> None:
    if value is None:
        return
    choices, minimum, above = metadata.get("choices"), metadata.get("minimum"), metadata.get("above")
    if choices is not None and value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {list(choices)}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={value!r} is out of range: it must be {minimum} or more.")
    if above is not None and value <= above:
        raise ValueError(f"{name}={value!r} is out of range: it must be above {above}.")
