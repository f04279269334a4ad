"""What a run folder records, as typed objects: the teacher's description, the probe set's examples and
token scores, and ALP's layer weights (:class:`kdviz.runs.RunFolder` writes and reads them), and the
JSON and JSON-lines files they are kept in."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass
class TeacherInfo:
    """What a run records of its teacher (``teacher.json``)."""

    reference: str
    label_names: list[str]
    layers: int
    hidden_size: int


@dataclass
class ProbeExample:
    """One dev example of the probe set whose attributions are recorded during training."""

    idx: int
    text: list[str]
    label: int | float
    tokens: list[str]


@dataclass
class ProbeScores:
    """Token scores (P, V, L) and logits (P, C) of the probe set, on the CPU, and for a classifier the
    signed scores (P, L): positive towards the predicted class, negative against it."""

    scores: torch.Tensor
    logits: torch.Tensor
    signed: torch.Tensor | None = None


@dataclass
class LayerWeights:
    """The ALP weights (student layers x teacher layers) averaged over one logging window."""

    step: int
    alpha: list[list[float]]


def write_json(path: Path, value) -> None:
    """Write ``value`` as indented JSON, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2))


def read_json(path: Path, default=None):
    """The JSON value in ``path``, or ``default`` when there is no such file."""
    return json.loads(path.read_text()) if path.is_file() else default


def append_jsonl(path: Path, record: dict) -> None:
    """Append one record as a line of JSON (a history file), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        handle.write(json.dumps(record) + "\n")


def read_jsonl(path: Path) -> list[dict]:
    """Every record of a JSON-lines file (none when it does not exist)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
