"""``DistillConfig``: one typed dataclass for a distillation run, checked field by field when it is built.

A config comes from a preset (``METHOD/TASK``, :mod:`kdviz.recipes`), a YAML or JSON file, and
command-line options, in that order of precedence (``kdviz distill``). Every field is checked for
its type and range as soon as the config is built, so a wrong value (``epochs: three``,
``epochs: 0``) stops before any data or model is loaded, naming the field and the fix.

The loss terms' settings live in one block, each term's options owned by the term
(:mod:`kdviz.loss_terms`)::

    terms:
      kd: {weight: 0.5, temperature: 2.0}
      attribution: {weight: 1.0}
    plugins: [my_terms.py]       # modules or files that register terms of a user's own

The flat fields of kdviz 0.x (``w_kd``, ``temperature``, ``beta``, ``lam``, ``alp_variant``...) are
still read, with a FutureWarning, until :data:`LEGACY_FIELDS_REMOVED_AFTER`: older config files,
presets and run folders keep working.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from kdviz.attribution import RULES, AttributionSettings, default_views
from kdviz.loss_terms import TERMS, TermOptions
from kdviz.models import STRATEGIES
from kdviz.plugins import load_plugins, resolve_plugin_paths
from kdviz.precision import PRECISIONS, precision_from_bf16
from kdviz.recipes import preset, preset_names, scale  # noqa: F401  (preset, preset_names: the documented imports)
from kdviz.reporting import report_to_names
from kdviz.tasks import get_task
from kdviz.typed_fields import check_fields, option as _field

VIEWS = ("auto", "gold", "classes")
LEGACY_FIELDS_REMOVED_AFTER = "2027-06-30"
"""The flat loss-term fields of kdviz 0.x are read (with a FutureWarning) until this date."""
LEGACY_FIELDS = ("w_ce", "w_kd", "temperature", "anneal_temperature", "beta", "attr_distance", "lam", "alp_variant",
                 "alp_representation", "alp_include_embeddings", "alp_overlap", "alp_score", "w_pkd", "pkd_mapping",
                 "w_ckd")
"""The flat fields of kdviz 0.x; each built-in term's ``legacy_fields`` says which option each one became."""


@dataclass
class DistillConfig:
    """Everything that defines a distillation run.

    Loss: the sum over the terms that are on of ``terms.<name>.weight * term`` (CE, KD(T), AD-KD's
    attribution loss, ALP's layer projection, PKD, CKD and any registered term; a weight of 0 turns a
    term off; :mod:`kdviz.loss_terms`).

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

    terms: dict = _field(default_factory=dict, help="each loss term's options by name, e.g. {kd: {weight: 0.5, "
                         "temperature: 2}}; a term left out keeps its defaults (ce: weight 1, every other term off)")
    plugins: list[str] = _field(default_factory=list, help="modules or .py files that register loss terms of "
                                "your own (imported before the terms are read)")

    ig_steps: int = _field(1, "IG steps m", minimum=1)
    ig_rule: str = _field("right", "Riemann rule", choices=RULES)
    ig_step_chunk: int | None = _field(None, "IG steps per pass (default all; bounds memory)", minimum=1)
    top_k: int = _field(768, "teacher hidden dims kept (>= hidden: all)", minimum=1)
    views: str = _field("auto", "auto, gold or classes", choices=VIEWS)
    teacher_cache: bool = _field(
        True, "compute the teacher's outputs (training and probe sets) once and read them from the cache")
    cache_dir: str | None = _field(None, "teacher cache folder (default $KDVIZ_CACHE, else ~/.cache/kdviz)")

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
        check_fields(self)
        load_plugins(self.plugins)
        self.terms = term_options(self.terms)
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
        return [name for name, options in self.terms.items() if options.weight > 0]

    def __getattr__(self, name: str):
        if name in LEGACY_FIELDS:  # kdviz 0.x's flat fields, read from the terms they moved to
            term, option = _legacy_targets()[name]
            _warn_legacy([name])
            return getattr(self.terms[term], option)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

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
            raise ValueError(f"Every loss term's weight is zero: turn one on, e.g. terms: {{ce: {{weight: 1.0}}}} "
                             f"(the terms: {', '.join(self.terms)}).")
        return self

    def to_dict(self) -> dict:
        """The config's values; ``terms`` holds the terms that are on or set away from their defaults."""
        values = dataclasses.asdict(self)
        values["terms"] = {name: values["terms"][name] for name, options in self.terms.items()
                           if options.weight > 0 or options != type(options)()}
        return values

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
        unknown = sorted(set(values) - known - set(LEGACY_FIELDS))
        if unknown:
            raise ValueError(f"Unknown config field(s) {unknown}; valid fields: {sorted(known)}.")
        return cls(**merge_config_values(values))

    @classmethod
    def from_file(cls, path: str | Path) -> "DistillConfig":
        """Read a YAML or JSON config file (its ``plugins`` files relative to the file's folder)."""
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
        scaled = {"logging_steps": size.logging_steps}
        if size.is_quick:
            scaled.update(train_subset=size.train_subset, eval_subset=size.eval_subset, epochs=size.student_epochs)
        values = merge_config_values(preset(name) if isinstance(name, str) else name, scaled, overrides)
        return cls.from_dict(values).validate()


def merge_config_values(*layers: Mapping) -> dict:
    """Config values from several sources, later ones first (preset, file, options): plain fields are
    replaced; the ``terms`` blocks are merged term by term and option by option, after any flat field
    of kdviz 0.x in a layer has been moved into its block (with a FutureWarning).

    Args:
        *layers: mappings of config fields, lowest precedence first.

    Returns:
        One mapping of config fields.
    """
    merged: dict = {}
    for layer in layers:
        layer = dict(layer)
        legacy = {name: layer.pop(name) for name in LEGACY_FIELDS if layer.get(name) is not None}
        terms = terms_with_legacy_fields(layer.pop("terms", None) or {}, legacy)
        merged.update(layer)
        for name, options in terms.items():
            merged.setdefault("terms", {})[name] = {**merged.get("terms", {}).get(name, {}), **options}
    return merged


def terms_with_legacy_fields(terms: Mapping, legacy: Mapping) -> dict[str, dict]:
    """A ``terms`` block (options as mappings) with kdviz 0.x's flat fields moved into it.

    Raises:
        ValueError: a flat field and the block set one option to two values.
    """
    block = {name: dataclasses.asdict(values) if isinstance(values, TermOptions) else values
             for name, values in dict(terms).items()}
    if legacy:
        _warn_legacy(list(legacy))
    for field_name, value in legacy.items():
        term, option = _legacy_targets()[field_name]
        if not isinstance(block.get(term, {}), Mapping):
            continue  # term_options names the bad block
        options = block[term] = dict(block.get(term, {}))
        if option in options and options[option] != value:
            raise ValueError(f"{field_name}={value!r} and terms.{term}.{option}={options[option]!r} disagree: "
                             f"keep terms.{term}.{option} only.")
        options[option] = value
    return block


def term_options(terms: Mapping) -> dict[str, TermOptions]:
    """Every registered term's checked options, from a ``terms`` block (a term left out keeps its defaults).

    Raises:
        ValueError: an unknown term or option, a block that is not a mapping, or a value of the wrong
            type or out of range (naming ``terms.<term>.<option>``).
    """
    unknown = sorted(set(terms) - set(TERMS))
    if unknown:
        raise ValueError(f"Unknown loss term(s) {unknown} in terms: the registered ones are {list(TERMS)}. A term "
                         f"of your own is registered by a module or .py file listed in plugins.")
    resolved = {}
    for name, term in TERMS.items():
        values = terms.get(name) or {}
        if isinstance(values, TermOptions):
            values = dataclasses.asdict(values)
        if not isinstance(values, Mapping):
            raise ValueError(f"terms.{name} must be a mapping of option: value, e.g. terms: {{{name}: {{weight: 0.5}}}}; "
                             f"got {values!r}.")
        allowed = [spec.name for spec in dataclasses.fields(term.options)]
        wrong = sorted(set(values) - set(allowed))
        if wrong:
            raise ValueError(f"Unknown option(s) {wrong} of loss term {name!r}: its options are {allowed}.")
        resolved[name] = term.options(**values).checked(name)
    return resolved


def _legacy_targets() -> dict[str, tuple[str, str]]:
    """kdviz 0.x's flat field -> (term, option), from the terms' ``legacy_fields``."""
    return {field_name: (name, option) for name, term in TERMS.items()
            for field_name, option in term.legacy_fields.items()}


def _warn_legacy(names: list[str]) -> None:
    moved = ", ".join(f"{name} -> terms.{'.'.join(_legacy_targets()[name])}" for name in names)
    warnings.warn(f"The flat loss-term fields are deprecated and read until {LEGACY_FIELDS_REMOVED_AFTER}: "
                  f"{moved}.", FutureWarning, stacklevel=4)


def _accept_legacy_keywords(init):
    """``DistillConfig(beta=1.0)``, kdviz 0.x's flat keywords, moved into ``terms`` (with a FutureWarning)."""
    @functools.wraps(init)
    def accepting(self, *args, **values):
        legacy = {name: values.pop(name) for name in LEGACY_FIELDS if name in values}
        if legacy:
            values["terms"] = terms_with_legacy_fields(values.get("terms") or {}, legacy)
        init(self, *args, **values)
    return accepting


DistillConfig.__init__ = _accept_legacy_keywords(DistillConfig.__init__)


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
    if isinstance(values.get("plugins"), list):
        values["plugins"] = resolve_plugin_paths(values["plugins"], path.parent)
    return values
