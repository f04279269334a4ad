"""Dataclass fields that carry their help text and allowed range, and the check that enforces them.

:class:`kdviz.config.DistillConfig` and every loss term's options (:class:`kdviz.loss_terms.TermOptions`)
are built from these fields, so a wrong value (``epochs: three``, ``temperature: 0``) stops as soon
as the config is built, naming the field and the fix.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import field


def option(default=dataclasses.MISSING, help: str = "", *, default_factory=dataclasses.MISSING, choices=None,
           minimum=None, above=None):
    """A dataclass field with its help text and the range its values must lie in.

    Args:
        default: the value when none is given (or ``default_factory`` for a list or dict).
        help: one line for ``--help`` and the documentation.
        choices: the allowed values, if only some are.
        minimum: the smallest allowed value; above: a bound the value must exceed.
    """
    return field(default=default, default_factory=default_factory,
                 metadata={"help": help, "choices": choices, "minimum": minimum, "above": above})


def check_fields(instance, prefix: str = "") -> None:
    """Check every field of a dataclass ``instance`` for its type and range, widening ints to floats in place.

    Args:
        instance: a dataclass built with :func:`option` fields (a field without metadata is type-checked only).
        prefix: put before each field's name in the messages (``"terms.kd."``).

    Raises:
        ValueError: naming the field, what it must be and an example.
    """
    hints = typing.get_type_hints(type(instance))
    for spec in dataclasses.fields(instance):
        name = prefix + spec.name
        value = checked_type(name, getattr(instance, spec.name), hints[spec.name])
        check_range(name, value, spec.metadata)
        setattr(instance, spec.name, value)


_KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


def _fits(value, kind) -> bool:
    if typing.get_origin(kind) is list:
        return isinstance(value, (list, tuple)) and all(_fits(item, typing.get_args(kind)[0]) for item in value)
    if typing.get_origin(kind) is dict:
        return isinstance(value, dict)
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
    if typing.get_origin(kind) is dict:
        return "a mapping"
    return _KINDS[kind]


def _example(kind) -> str:
    return {bool: "true", int: "3", float: "0.5", str: "a name"}.get(kind, "[0, 5]")


def checked_type(name: str, value, annotation):
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


def check_range(name: str, value, metadata) -> None:
    """Raise a ValueError naming ``name`` when ``value`` is not among its choices or out of its range."""
    if value is None:
        return
    choices, minimum, above = metadata.get("choices"), metadata.get("minimum"), metadata.get("above")
    if choices is not None and value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {list(choices)}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={value!r} is out of range: it must be {minimum} or more.")
    if above is not None and value <= above:
        raise ValueError(f"{name}={value!r} is out of range: it must be above {above}.")
