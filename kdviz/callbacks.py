"""The run's history, written through :class:`~kdviz.runs.RunFolder` by process 0 only."""

from __future__ import annotations

from transformers import TrainerCallback

from kdviz.probe import Probe
from kdviz.run_records import LayerWeights
from kdviz.runs import RunFolder


class RunHistoryCallback(TrainerCallback):
    """At each logged step: the total loss, learning rate and what the terms logged (each term, the KD
    temperature, the ALP weights' entropy and top-2 gap), the ALP weights of the window, the student's
    agreement with the teacher on the probe set and the saved probe examples' student scores.

    The same at step 0, before the first update: the untrained student's probe scores, agreement and
    faithfulness (when training starts), a flat student's agreement (the floor), and the loss terms
    and ALP weights of the first step's batch (:attr:`~kdviz.distill_trainer.DistillationTrainer.initial_scalars`,
    written when the first step ends).

    Only process 0 writes or deletes anything; on resume it first drops what was written after the
    checkpoint.

    Args:
        run: the run folder.
        trainer: the :class:`~kdviz.distill_trainer.DistillationTrainer` (its window records).
        probe: the probe set, or None to record no attributions.
    """

    def __init__(self, run: RunFolder, trainer, probe: Probe | None = None):
        self.run, self.trainer, self.probe = run, trainer, probe

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        if state.global_step > 0:  # resumed
            self.run.truncate_history(state.global_step)
        elif self.probe is not None:
            self.run.write_agreement_uniform(self.probe.uniform_agreement())
            self._record_probe(0, 0.0, self.probe.score_initial_student(self.trainer.model.student))

    def on_step_end(self, args, state, control, **kwargs):
        if not (state.is_world_process_zero and state.global_step == 1 and self.trainer.initial_scalars):
            return
        self.run.append_loss_terms({"step": 0, "epoch": 0.0, **self.trainer.initial_scalars})
        alpha = self.trainer.initial_records.get("alpha")
        if alpha is not None:
            self.run.append_layer_weights(LayerWeights(0, alpha.tolist()))

    def _record_probe(self, step: int, epoch: float, scores) -> None:
        if self.probe.saved:
            self.run.write_probe_student(step, self.probe.saved_part(scores))
        self.run.append_agreement({"step": step, "epoch": epoch, **self.probe.agreement(scores)})

    def on_log(self, args, state, control, logs=None, model=None, **kwargs):
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        self.run.append_loss_terms({"step": state.global_step, "epoch": state.epoch,
                                    **{k: logs[k] for k in ("loss", "learning_rate") if k in logs},
                                    **self.trainer.window_scalars})
        alpha = self.trainer.window_records.get("alpha")
        if alpha is not None:
            self.run.append_layer_weights(LayerWeights(state.global_step, alpha.tolist()))
        if self.probe is not None:
            self._record_probe(state.global_step, state.epoch, self.probe.scores(self.trainer.model.student))
