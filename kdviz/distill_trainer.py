"""``DistillationTrainer``: a ``transformers.Trainer`` that trains a :class:`~kdviz.objective.DistillationModel`.

Only ``compute_loss`` and ``log`` are overridden: the teacher gives what the objective's terms need,
the model computes the weighted sum, and each term's mean over a logging window is logged as
``loss_<term>``. Checkpoints, resume, best-epoch selection, mixed precision and several processes
are the ``Trainer``'s own.
"""

from __future__ import annotations

import math

import torch

from kdviz.glue_trainer import GlueTrainer
from kdviz.tasks import MODEL_INPUTS
from kdviz.teacher_outputs import TeacherOutputSource


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; training stops keeping the last good checkpoint."""


class DistillationTrainer(GlueTrainer):
    """A ``Trainer`` for a student distilled from a frozen teacher.

    Args:
        model: the :class:`~kdviz.objective.DistillationModel` (student and objective).
        teacher_outputs: where the teacher's outputs come from (cache or live teacher).
        *args, **kwargs: as :class:`~kdviz.glue_trainer.GlueTrainer`.

    Attributes:
        window_scalars: each term's value (``loss_<term>``) and scalar record (``temperature``,
            ``alp_entropy``...), averaged over the last logging window; they are also logged.
        window_records: the non-scalar records averaged over the last logging window (for example
            ``alpha``, the mean ALP weights).
        initial_scalars, initial_records: the same for the first step of a run started from step 0,
            computed before the first update (the loss terms' "before"; every micro-batch of the
            step under gradient accumulation); empty until then, or on resume.
    """

    def __init__(self, *args, teacher_outputs: TeacherOutputSource, **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher_outputs = teacher_outputs
        if teacher_outputs.runs_teacher:
            teacher_outputs.teacher.to(self.args.device)
        self._sums: dict[str, torch.Tensor] = {}
        self._count = 0
        self.window_scalars: dict[str, float] = {}
        self.window_records: dict[str, torch.Tensor] = {}
        self._initial_sums: dict[str, torch.Tensor] = {}
        self._initial_count = 0

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        idx = inputs.pop("idx", None)
        if not model.training:  # evaluation: the student's task loss alone
            outputs = model(**inputs)
            return (outputs.loss, outputs) if return_outputs else outputs.loss
        labels = inputs["labels"]
        model_inputs = {k: inputs.get(k) for k in MODEL_INPUTS}
        teacher = self.teacher_outputs(model_inputs, labels, idx, self.model.objective.teacher_needs)
        output = model(**inputs, teacher_outputs=teacher, epoch=math.floor(self.state.epoch or 0.0),
                       num_epochs=self.args.num_train_epochs)
        self._check_finite(output.terms, output.loss)
        values = {f"loss_{name}": value for name, value in output.terms.items()} | output.records
        if self.state.global_step == 0:  # the micro-batches of the first step, before any update
            self._initial_count += 1
            for name, value in ({"loss": output.loss} | values).items():
                value = value.detach().float()
                self._initial_sums[name] = self._initial_sums[name] + value if name in self._initial_sums else value
        self._record(values)
        return (output.loss, output) if return_outputs else output.loss

    @property
    def initial_scalars(self) -> dict[str, float]:
        return {name: (total / self._initial_count).item() for name, total in self._initial_sums.items()
                if total.dim() == 0}

    @property
    def initial_records(self) -> dict[str, torch.Tensor]:
        return {name: (total / self._initial_count).cpu() for name, total in self._initial_sums.items()
                if total.dim() > 0}

    def _check_finite(self, terms: dict[str, torch.Tensor], loss: torch.Tensor) -> None:
        if torch.isfinite(loss):
            return
        bad = [f"{name}={value.item():.4g}" for name, value in terms.items() if not torch.isfinite(value)]
        checkpoint = self.state.best_model_checkpoint or "the last checkpoint in the run's checkpoints folder"
        raise NonFiniteLossError(
            f"Non-finite loss at training step {self.state.global_step + 1}: {', '.join(bad) or 'total'}. "
            f"Training stopped; the last good checkpoint is kept ({checkpoint}). Lower the learning rate or that "
            f"term's weight, or turn off bf16.")

    def _record(self, values: dict[str, torch.Tensor]) -> None:
        for name, value in values.items():  # no .item() here: that would wait for the GPU every step
            value = value.detach().float()
            self._sums[name] = self._sums[name] + value if name in self._sums else value
        self._count += 1

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._count:
            means = {name: total / self._count for name, total in self._sums.items()}
            self.window_scalars = {name: mean.item() for name, mean in means.items() if mean.dim() == 0}
            logs.update(self.window_scalars)
            self.window_records = {name: mean.cpu() for name, mean in means.items() if mean.dim() > 0}
            self._sums, self._count = {}, 0
        super().log(logs, start_time)
