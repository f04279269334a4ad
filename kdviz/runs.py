"""The run folder and the teacher folder: the only code that knows their file names and layout.

Training writes a run folder through :class:`RunFolder`; views and reports read it back with
:func:`load_run`, which returns typed objects. A fine-tuned teacher's folder is a
``save_pretrained`` folder plus kdviz's metrics (:class:`TeacherFolder`)::

    <run>/
      config.yaml                 the DistillConfig
      teacher.json                the teacher's reference, label names, depth and width
      student/                    best student (save_pretrained + tokenizer)
      objective.safetensors       trained parameters of the loss terms (the ALP width projection), when any
      metrics.json                metrics per evaluation and of the best student
      metrics.md                  the best metrics as a markdown table (the teacher's row too)
      history/loss_terms.jsonl    one line per logged step: step, epoch, each loss term (ALP: entropy, top-2 gap)
      history/alp_weights.jsonl   one line per logged step: alpha averaged over the logging window
      history/agreement.jsonl     one line per logged step, from step 0 (the untrained student): the student's
                                  agreement with the teacher's token scores on the probe set (agreement_size dev
                                  examples): cosine, Spearman, top-k, over the words and with [CLS]/[SEP]
      history/agreement_uniform.json  the same measures for a flat student (every token alike): their floor
      history/probe.json          the saved probe examples (probe_size): dev idx, text, tokens, label
      history/probe_teacher.safetensors      teacher token scores (and signed scores) of the saved probe
                                             examples (fixed)
      history/probe_student/step-<N>.safetensors  their student token scores (and signed scores) at step N
      figures/                    PNG figures
      checkpoints/                Trainer checkpoints (resume); removed when the run finishes unless
                                  keep_checkpoints is set
      logs/                       the logger's files (report_to: tensorboard)

    <teacher>/
      config.json, model.safetensors, tokenizer files   (save_pretrained)
      metrics.json, metrics.md    the fine-tuning history and the best dev metrics
      finetune_settings.json      what the fine-tuning was started with (task, model, recipe, seed...)
      figures/training_loss.png
      checkpoints/                while fine-tuning only (an interrupted fine-tuning resumes from them)
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file, save_file

from kdviz.config import DistillConfig
from kdviz.run_records import (LayerWeights, ProbeExample, ProbeScores, TeacherInfo, append_jsonl, read_json,
                                read_jsonl, write_json)

METRICS = "metrics.json"
METRICS_TABLE = "metrics.md"
FIGURES = "figures"
CHECKPOINTS = "checkpoints"
_STEP_FILE = "step-{}.safetensors"


class OutputExistsError(FileExistsError):
    """The output folder already holds work that a new run would overwrite, or is a file."""


def check_output_dir(output_dir: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse an output path that is a file, or a non-empty folder unless ``overwrite`` is set.

    Returns:
        The output folder as a :class:`Path` (not created yet).

    Raises:
        OutputExistsError: naming the path and the fix; nothing is changed.
    """
    path = Path(output_dir)
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"Output path {str(path)!r} is a file, not a folder; nothing was changed. Choose "
                                f"a folder path (it is created) or move the file away.")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"Output folder {str(path)!r} is not empty; nothing was changed. Choose another folder or pass "
            f"--overwrite (overwrite=True) to replace it."
        )
    return path


class TrainedFolder:
    """What a teacher folder and a run folder share: checkpoints while training, metrics written last.

    Args:
        path: the folder (it need not exist yet).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def logs_dir(self) -> Path:
        """The logger's files (``report_to``: TensorBoard event files)."""
        return self.path / "logs"

    def has_checkpoint(self) -> bool:
        return any(self.checkpoints_dir.glob("checkpoint-*"))

    def remove_checkpoints(self) -> None:
        """Delete the optimiser checkpoints (a finished training keeps its best model without them)."""
        shutil.rmtree(self.checkpoints_dir, ignore_errors=True)

    @property
    def is_finished(self) -> bool:
        """Whether a training finished here (its metrics are written last)."""
        return (self.path / METRICS).is_file()

    def read_metrics(self) -> dict | None:
        """The training's result (``history``, ``best``...), or None for a folder kdviz did not write."""
        return read_json(self.path / METRICS)

    def write_metrics(self, result: dict, table: str) -> None:
        """Write the result as JSON and its best metrics as a markdown table."""
        write_json(self.path / METRICS, result)
        (self.path / METRICS_TABLE).write_text(table)

    def metrics_table(self) -> str:
        """The markdown table of the best dev metrics."""
        return (self.path / METRICS_TABLE).read_text()

    def _can_resume(self, started_alike: bool) -> bool:
        """Whether a cut-off training left a checkpoint to continue from, ``started_alike`` the same settings."""
        return not self.is_finished and self.has_checkpoint() and started_alike


class TeacherFolder(TrainedFolder):
    """A fine-tuned teacher's folder: ``save_pretrained`` files plus kdviz's metrics and figure."""

    SETTINGS = "finetune_settings.json"

    @property
    def training_loss_figure(self) -> Path:
        return self.path / FIGURES / "training_loss.png"

    def write_settings(self, settings: dict) -> None:
        """Record what the fine-tuning was started with (written before training)."""
        write_json(self.path / self.SETTINGS, settings)

    def can_resume(self, settings: dict) -> bool:
        """Whether a cut-off fine-tuning with ``settings`` left a checkpoint here to continue from."""
        return self._can_resume(read_json(self.path / self.SETTINGS) == settings)


class RunFolder(TrainedFolder):
    """A distillation run's folder: every file name and the layout live here."""

    CONFIG, TEACHER, STUDENT, OBJECTIVE = "config.yaml", "teacher.json", "student", "objective.safetensors"
    LOSS_TERMS, ALP_WEIGHTS, AGREEMENT = "history/loss_terms.jsonl", "history/alp_weights.jsonl", \
        "history/agreement.jsonl"
    AGREEMENT_UNIFORM = "history/agreement_uniform.json"
    PROBE, PROBE_TEACHER, PROBE_STUDENT = "history/probe.json", "history/probe_teacher.safetensors", \
        "history/probe_student"
    LARGE = (CHECKPOINTS, STUDENT)
    """The parts that hold model weights: a study that only needs the scores drops them."""

    @property
    def student_dir(self) -> Path:
        return self.path / self.STUDENT

    def read_config(self) -> DistillConfig | None:
        """The config the run was started with, or None for a folder without one."""
        path = self.path / self.CONFIG
        return DistillConfig.from_dict(yaml.safe_load(path.read_text())) if path.is_file() else None

    def holds(self, config: DistillConfig) -> bool:
        """Whether this folder was started with ``config`` (fields that do not change the training aside:
        ``report_to``, ``keep_checkpoints``, ``cache_dir``)."""
        saved = self.read_config()
        ignored = ("report_to", "keep_checkpoints", "cache_dir")
        return saved is not None and all(getattr(saved, name) == getattr(config, name)
                                         for name in config.to_dict() if name not in ignored)

    def can_resume(self, config: DistillConfig) -> bool:
        """Whether a cut-off run of ``config`` left a checkpoint here to continue from."""
        return self._can_resume(self.holds(config))

    @property
    def loss_terms_figure(self) -> Path:
        return self.path / FIGURES / "loss_terms.png"

    @property
    def agreement_figure(self) -> Path:
        return self.path / FIGURES / "agreement.png"

    @property
    def layer_attention_figure(self) -> Path:
        """The last logging window's ALP weights (runs with the layer-projection term)."""
        return self.path / FIGURES / "layer_attention.png"

    # writing (process 0 only) ------------------------------------------------------------------
    def write_header(self, config: DistillConfig, teacher: TeacherInfo, *, replace: bool = False) -> None:
        """Create the folder (emptied first with ``replace``) with the config and the teacher's info."""
        if replace and self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        config.save(self.path / self.CONFIG)
        write_json(self.path / self.TEACHER, asdict(teacher))

    def append_loss_terms(self, record: dict) -> None:
        append_jsonl(self.path / self.LOSS_TERMS, record)

    def append_layer_weights(self, weights: LayerWeights) -> None:
        append_jsonl(self.path / self.ALP_WEIGHTS, asdict(weights))

    def append_agreement(self, record: dict) -> None:
        """One logged step's teacher-student agreement on the probe set (``step``, ``cosine``...)."""
        append_jsonl(self.path / self.AGREEMENT, record)

    def write_agreement_uniform(self, record: dict) -> None:
        """A flat student's agreement with the teacher on the probe set (the curves' floor)."""
        write_json(self.path / self.AGREEMENT_UNIFORM, record)

    def write_probe(self, examples: list[ProbeExample], teacher: ProbeScores) -> None:
        write_json(self.path / self.PROBE, [asdict(example) for example in examples])
        self._save_scores(self.path / self.PROBE_TEACHER, teacher)

    def write_probe_student(self, step: int, scores: ProbeScores) -> None:
        self._save_scores(self.path / self.PROBE_STUDENT / _STEP_FILE.format(step), scores)

    @staticmethod
    def _save_scores(path: Path, scores: ProbeScores) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {name: value.detach().float().cpu().contiguous() for name, value in vars(scores).items()
                   if value is not None}
        save_file(tensors, str(path))

    def truncate_history(self, step: int) -> None:
        """Drop every history record written after ``step`` (a run resumed from that checkpoint)."""
        for name in (self.LOSS_TERMS, self.ALP_WEIGHTS, self.AGREEMENT):
            path = self.path / name
            if path.is_file():
                kept = [record for record in read_jsonl(path) if record["step"] <= step]
                path.write_text("".join(json.dumps(record) + "\n" for record in kept))
        for logged, file in self._probe_student_files().items():
            if logged > step:
                file.unlink()

    def save_student(self, student, tokenizer) -> None:
        student.save_pretrained(self.student_dir)
        tokenizer.save_pretrained(self.student_dir)

    def save_objective(self, objective: torch.nn.Module) -> None:
        """Write the loss terms' trained parameters; nothing when they have none."""
        state = {name: value.detach().cpu().contiguous() for name, value in objective.state_dict().items()}
        if state:
            save_file(state, str(self.path / self.OBJECTIVE))

    def load_objective(self) -> dict[str, torch.Tensor]:
        """The loss terms' trained parameters ({} when the run has none)."""
        path = self.path / self.OBJECTIVE
        return load_file(str(path)) if path.is_file() else {}

    def remove_large_parts(self) -> None:
        """Delete the student and checkpoints (the scores, history and figures stay)."""
        for name in self.LARGE:
            shutil.rmtree(self.path / name, ignore_errors=True)

    # reading -----------------------------------------------------------------------------------
    def _probe_student_files(self) -> dict[int, Path]:
        files = (self.path / self.PROBE_STUDENT).glob(_STEP_FILE.format("*"))
        return {int(file.name.removeprefix("step-").removesuffix(".safetensors")): file for file in files}

    def loss_terms(self) -> list[dict]:
        return read_jsonl(self.path / self.LOSS_TERMS)

    def agreement(self) -> list[dict]:
        return read_jsonl(self.path / self.AGREEMENT)

    def agreement_uniform(self) -> dict | None:
        return read_json(self.path / self.AGREEMENT_UNIFORM)

    def layer_weights(self) -> list[LayerWeights]:
        return [LayerWeights(**record) for record in read_jsonl(self.path / self.ALP_WEIGHTS)]

    def teacher_info(self) -> TeacherInfo | None:
        teacher = read_json(self.path / self.TEACHER)
        return TeacherInfo(**teacher) if teacher else None

    def load(self) -> "Run":
        """Read the folder back (see :func:`load_run`)."""
        if not (self.path / self.CONFIG).is_file():
            raise FileNotFoundError(f"{str(self.path)!r} is not a kdviz run folder (no {self.CONFIG}).")
        probe_teacher = self.path / self.PROBE_TEACHER
        return Run(
            folder=self,
            config=self.read_config(),
            teacher=self.teacher_info(),
            metrics=self.read_metrics() or {},
            loss_terms=self.loss_terms(),
            alp_weights=self.layer_weights(),
            agreement=self.agreement(),
            agreement_uniform=self.agreement_uniform(),
            probe=[ProbeExample(**example) for example in read_json(self.path / self.PROBE, [])],
            probe_teacher=ProbeScores(**load_file(str(probe_teacher))) if probe_teacher.is_file() else None,
            probe_student={step: ProbeScores(**load_file(str(file)))
                           for step, file in sorted(self._probe_student_files().items())},
        )


@dataclass
class Run:
    """A finished (or running) distillation run, read back from its folder.

    Attributes:
        folder: the :class:`RunFolder` (``run.path`` is its path).
        config: the run's :class:`~kdviz.config.DistillConfig`.
        teacher: the teacher's reference, label names, depth and width.
        metrics: ``metrics.json`` (per-evaluation ``history``, ``best``, ``best_epoch``...).
        loss_terms: one dict per logged step (``step``, ``epoch``, ``loss_<term>``...).
        alp_weights: one :class:`LayerWeights` per logged step.
        agreement: one dict per logged step from step 0: the student's agreement with the teacher on the
            probe set (``step``, ``epoch``, ``cosine``, ``spearman``, ``top_k_overlap``, the same
            ``*_with_special``, ``examples``).
        agreement_uniform: the same measures for a flat student (their floor), or None (older runs).
        probe: the probe examples.
        probe_teacher: the teacher's probe scores (P, V, L) and logits.
        probe_student: logged step -> the student's probe scores and logits.
    """

    folder: RunFolder
    config: DistillConfig
    teacher: TeacherInfo | None
    metrics: dict
    loss_terms: list[dict] = field(default_factory=list)
    alp_weights: list[LayerWeights] = field(default_factory=list)
    agreement: list[dict] = field(default_factory=list)
    agreement_uniform: dict | None = None
    probe: list[ProbeExample] = field(default_factory=list)
    probe_teacher: ProbeScores | None = None
    probe_student: dict[int, ProbeScores] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.folder.path

    @property
    def student_dir(self) -> Path:
        return self.folder.student_dir

    def load_objective(self, teacher_config):
        """The run's loss terms with their trained parameters (ALP's projection, CKD's maps), on the CPU.

        Args:
            teacher_config: the teacher's ``config`` (the terms' shapes depend on it).

        Returns:
            A :class:`~kdviz.objective.DistillationObjective` in eval mode.
        """
        from transformers import AutoConfig

        from kdviz.objective import DistillationObjective

        objective = DistillationObjective.from_config(self.config, AutoConfig.from_pretrained(self.student_dir),
                                                      teacher_config)
        objective.load_state_dict(self.folder.load_objective())
        return objective.eval()

    def load_student(self):
        """The best student and its tokenizer (fused attention: the views need first-order gradients), in eval mode."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model = AutoModelForSequenceClassification.from_pretrained(self.student_dir, attn_implementation="sdpa")
        return model.eval(), AutoTokenizer.from_pretrained(self.student_dir)


def load_run(path: str | os.PathLike) -> Run:
    """Read a run folder written by ``kdviz distill``.

    Args:
        path: the run folder.

    Returns:
        A :class:`Run`.

    Raises:
        FileNotFoundError: when the folder has no config (not a run folder).
    """
    return RunFolder(path).load()
