"""``DistillConfig`` as ``kdviz distill`` options, and the options back into a config.

Every config field is one option in a titled group of ``distill --help``; every registered loss term
gets a group of its own with one option per term option (``--kd-temperature 2``,
``--layer-projection-variant alp-no``). The flat options of kdviz 0.x (``--w-kd``, ``--beta``,
``--alp-variant``...) still work, with a warning naming the new one. A term registered by a plugin
has its options set in the config file's ``terms`` block.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import typing
from pathlib import Path

from kdviz.cli_parsing import add_older_spelling, boolean

OPTION_GROUPS = {  # distill --help: the DistillConfig fields by what they set (the terms' groups follow "student")
    "data, teacher and run folder": ("task", "teacher", "output_dir", "data_dir", "train_subset", "eval_subset",
                                     "data_seed", "max_length"),
    "student": ("student_layers", "layer_strategy", "student_layer_indices", "student_init"),
    "loss terms of your own": ("plugins",),
    "attribution settings (AD-KD's Integrated Gradients; the probe and the views use them too)":
        ("ig_steps", "ig_rule", "ig_step_chunk", "top_k", "views"),
    "teacher cache": ("teacher_cache", "cache_dir"),
    "training": ("epochs", "batch_size", "learning_rate", "max_grad_norm", "seed", "precision", "best_metric"),
    "history, logging and output": ("logging_steps", "probe_size", "agreement_size", "report_to",
                                    "keep_checkpoints"),
}
BUILT_FROM_TERMS = ("terms",)
"""Config fields set through the per-term groups, not an option of their own."""
_TERM_DEST = "term:{}:{}"


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per DistillConfig field in :data:`OPTION_GROUPS` and per option of each registered loss
    term, with its allowed values; unset options leave the preset's (and the config file's) value.

    Raises:
        RuntimeError: a DistillConfig field without a group (a field added without its option).
    """
    from kdviz.config import DistillConfig
    from kdviz.loss_terms import TERMS

    fields = {field.name: field for field in dataclasses.fields(DistillConfig)}
    ungrouped = set(fields) - {name for names in OPTION_GROUPS.values() for name in names} - set(BUILT_FROM_TERMS)
    if ungrouped:
        raise RuntimeError(f"DistillConfig fields without an option group in kdviz.config_options.OPTION_GROUPS: "
                           f"{ungrouped}")
    hints = typing.get_type_hints(DistillConfig)
    for title, names in OPTION_GROUPS.items():
        group = parser.add_argument_group(title)
        for name in names:
            _add_option(group, "--" + name.replace("_", "-"), name, hints[name], fields[name].metadata)
        if title == "student":
            for term_name, term in TERMS.items():
                _add_term_group(parser, term_name, term)


def _add_term_group(parser: argparse.ArgumentParser, name: str, term) -> None:
    group = parser.add_argument_group(f"loss term {name}: {_summary(term)}")
    hints = typing.get_type_hints(term.options)
    for spec in dataclasses.fields(term.options):
        option = f"--{name}-{spec.name}".replace("_", "-")
        _add_option(group, option, _TERM_DEST.format(name, spec.name), hints[spec.name], spec.metadata,
                    metavar=spec.name.upper())
    for old, new in term.legacy_fields.items():
        old_option, new_option = "--" + old.replace("_", "-"), f"--{name}-{new}".replace("_", "-")
        if old_option != new_option:  # --pkd-mapping kept its spelling
            add_older_spelling(parser, old_option, new_option, _TERM_DEST.format(name, new), type=_converter(hints[new]))


def _summary(term) -> str:
    """The first paragraph of a term's docstring, without its cross-references and markup."""
    first = " ".join((term.__doc__ or "").strip().split("\n\n")[0].split())
    return re.split(r" \((?:see |:)", first)[0].replace("``", "").rstrip(".")


def _converter(annotation):
    kinds = [kind for kind in typing.get_args(annotation) or (annotation,) if kind is not type(None)]
    kind = kinds[0]
    return boolean if kind is bool else kind if kind in (int, float, str) else str


def _add_option(group, option: str, dest: str, annotation, metadata, metavar: str | None = None) -> None:
    help_text, choices = metadata.get("help", ""), metadata.get("choices")
    kinds = [kind for kind in typing.get_args(annotation) or (annotation,) if kind is not type(None)]
    if typing.get_origin(kinds[0]) is list:
        item = typing.get_args(kinds[0])[0]
        group.add_argument(option, dest=dest, type=item, nargs="+", metavar=metavar, help=help_text)
    elif kinds[0] is bool:
        group.add_argument(option, dest=dest, type=boolean, metavar="BOOL", help=help_text)
    else:
        group.add_argument(option, dest=dest, type=_converter(annotation), choices=choices,
                           metavar=None if choices else metavar, help=help_text)


def option_values(args: argparse.Namespace) -> dict:
    """The config values the command line gives (fields, and a ``terms`` block from the term options)."""
    from kdviz.config import DistillConfig
    from kdviz.plugins import resolve_plugin_paths

    fields = {field.name for field in dataclasses.fields(DistillConfig)}
    values = {name: value for name, value in vars(args).items() if name in fields and value is not None}
    if values.get("plugins"):  # kept absolute in the run folder, which may be read from elsewhere
        values["plugins"] = resolve_plugin_paths(values["plugins"], Path.cwd())
    for dest, value in vars(args).items():
        if dest.startswith("term:") and value is not None:
            _, term, option = dest.split(":")
            values.setdefault("terms", {}).setdefault(term, {})[option] = value
    return values
