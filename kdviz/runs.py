"""The run folder: the one place that knows its layout. Training writes it; views read it.

    <run>/
      config.yaml                 resolved DistillConfig
      teacher.json                the teacher's reference and label names
      student/                    best student (save_pretrained + tokenizer)
      layer_projection.safetensors  ALP width projection, when there is one (not part of the student)
      metrics.json                metrics per evaluation and of the best student
      metrics.md                  the best metrics as a markdown table
      history/loss_terms.jsonl    one line per logged step: step, epoch, each loss term
      history/alp_weights.jsonl   one line per logged step: alpha averaged over the logging window
      history/probe.json          the probe set: dev idx, text, tokens, label
      history/probe_teacher.safetensors      teacher token scores of the probe set (fixed)
      history/probe_student/step-<N>.safetensors  student token scores of the probe set at step N
      figures/                    PNG figures
      checkpoints/                Trainer checkpoints (resume)
      teacher_cache/              the teacher's cached logits and token scores
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

CONFIG = "config.yaml"
TEACHER = "teacher.json"
STUDENT = "student"
PROJECTION = "layer_projection.safetensors"
METRICS = "metrics.json"
METRICS_TABLE = "metrics.md"
HISTORY = "history"
LOSS_TERMS = f"{HISTORY}/loss_terms.jsonl"
ALP_WEIGHTS = f"{HISTORY}/alp_weights.jsonl"
PROBE = f"{HISTORY}/probe.json"
PROBE_TEACHER = f"{HISTORY}/probe_teacher.safetensors"
PROBE_STUDENT = f"{HISTORY}/probe_student"
FIGURES = "figures"
CHECKPOINTS = "checkpoints"
TEACHER_CACHE = "teacher_cache"


def append_jsonl(path: Path, record: dict) -> None:
    """Append one JSON line (the folder is created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        handle.write(json.dumps(record) + "\n")


def read_jsonl(path: Path) -> list[dict]:
    """All records of a JSON-lines file, or [] when it does not exist."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def save_probe_scores(path: Path, scores: torch.Tensor, logits: torch.Tensor) -> None:
    """Write probe token scores (P, V, L) and logits (P, C)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"scores": scores.detach().float().cpu().contiguous(), "logits": logits.detach().float().cpu()},
              str(path))


def save_projection(projection: torch.nn.Module, path: Path) -> None:
    """Write the ALP width projection's weights; nothing when it has none (equal widths)."""
    state = projection.state_dict()
    if state:
        save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(path))


@dataclass
class Run:
    """A finished (or running) distillation run, read back from its folder.

    Attributes:
        path: the folder.
        config: the resolved config as a dict.
        teacher: the teacher reference (``{"reference": ..., "label_names": [...]}``).
        metrics: ``metrics.json`` (per-evaluation history and ``best``).
        loss_terms: one dict per logged step.
        alp_weights: one dict per logged step with ``step`` and ``alpha`` (student x teacher layers).
        probe: the probe examples (``idx``, ``text``, ``tokens``, ``label``).
        probe_teacher: teacher scores (P, V, L) and logits.
        probe_student: step -> student scores (P, V, L) and logits.
    """

    path: Path
    config: dict
    teacher: dict
    metrics: dict
    loss_terms: list[dict] = field(default_factory=list)
    alp_weights: list[dict] = field(default_factory=list)
    probe: list[dict] = field(default_factory=list)
    probe_teacher: dict[str, torch.Tensor] | None = None
    probe_student: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)

    @property
    def student_dir(self) -> Path:
        return self.path / STUDENT

    def load_student(self):
        """The best student and its tokenizer (eager attention)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model = AutoModelForSequenceClassification.from_pretrained(self.student_dir, attn_implementation="eager")
        return model.eval(), AutoTokenizer.from_pretrained(self.student_dir)


def load_run(path: str | Path) -> Run:
    """Read a run folder written by ``kdviz distill``.

    Args:
        path: the run folder.

    Returns:
        A :class:`Run`.

    Raises:
        FileNotFoundError: when the folder has no ``config.yaml`` (not a run folder).
    """
    import yaml

    path = Path(path)
    if not (path / CONFIG).is_file():
        raise FileNotFoundError(f"{str(path)!r} is not a kdviz run folder (no {CONFIG}).")
    probe_student = {}
    for file in sorted((path / PROBE_STUDENT).glob("step-*.safetensors")):
        probe_student[int(file.stem.split("-")[1])] = load_file(str(file))
    metrics_file = path / METRICS
    return Run(
        path=path,
        config=yaml.safe_load((path / CONFIG).read_text()),
        teacher=json.loads((path / TEACHER).read_text()) if (path / TEACHER).is_file() else {},
        metrics=json.loads(metrics_file.read_text()) if metrics_file.is_file() else {},
        loss_terms=read_jsonl(path / LOSS_TERMS),
        alp_weights=read_jsonl(path / ALP_WEIGHTS),
        probe=json.loads((path / PROBE).read_text()) if (path / PROBE).is_file() else [],
        probe_teacher=load_file(str(path / PROBE_TEACHER)) if (path / PROBE_TEACHER).is_file() else None,
        probe_student=dict(sorted(probe_student.items())),
    )
