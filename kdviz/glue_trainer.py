"""What every ``transformers.Trainer`` kdviz runs shares: metrics, MNLI's two dev sets, loss scaling, the summary."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from transformers import EvalPrediction, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer import DEFAULT_PROGRESS_CALLBACK  # the notebook one in a notebook (needs IPython)
from transformers.trainer_callback import PrinterCallback

from kdviz.precision import precision_arguments
from kdviz.reporting import check_report_to
from kdviz.tasks import GlueTask, compute_metrics, get_task


def trainer_metrics(task: str | GlueTask):
    """A ``compute_metrics`` function for ``Trainer`` that scores with the task's metrics.

    Args:
        task: task name or :class:`GlueTask`.

    Returns:
        A callable taking an ``EvalPrediction`` (logits of shape (N, C), labels (N,)) and returning
        the task's metrics.
    """
    task = get_task(task)

    def score(prediction: EvalPrediction) -> dict[str, float]:
        logits = prediction.predictions
        logits = logits[0] if isinstance(logits, tuple) else logits
        return compute_metrics(task, logits, prediction.label_ids)

    return score


class GlueTrainer(Trainer):
    """A ``Trainer`` that also reports the task's metrics averaged over several dev sets.

    With a dict of evaluation sets (MNLI matched and mismatched), ``Trainer`` reports
    ``eval_<split>_<metric>`` per set; this adds ``eval_<metric>``, their mean, so
    ``metric_for_best_model`` names the same key for every task.

    Every loss kdviz trains is a batch mean (the sequence classifiers' own loss included, which
    ignores ``num_items_in_batch``), so the ``Trainer`` must divide it by the gradient-accumulation
    steps itself: ``loss_is_scaled_for_ga = False`` says so. Without it, a model whose ``forward``
    takes ``**kwargs`` would make the ``Trainer`` assume the loss is already scaled, and
    ``gradient_accumulation_steps=k`` would multiply the optimised and logged loss by k.

    Args:
        glue_task: the task (gives the main metric); other arguments as ``Trainer``.
    """

    loss_is_scaled_for_ga = False

    def __init__(self, *args, glue_task: str | GlueTask, **kwargs):
        super().__init__(*args, **kwargs)
        self.glue_task = get_task(glue_task)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        datasets = eval_dataset if eval_dataset is not None else self.eval_dataset
        if isinstance(datasets, dict):
            means = {}
            for metric in self.glue_task.metrics:
                values = [metrics[f"{metric_key_prefix}_{name}_{metric}"] for name in datasets]
                means[f"{metric_key_prefix}_{metric}"] = sum(values) / len(values)
            metrics.update(means)
            self.log(means)
        return metrics


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


class EpochLineCallback(TrainerCallback):
    """One printed line per evaluation while training (each epoch): the last logged training loss, the
    dev score the best epoch is chosen by, the time elapsed and an estimate of the time left (from
    the steps done so far), so that a long run in a notebook is not silent.

    Args:
        label: printed first (the run's name), or nothing.
    """

    def __init__(self, label: str = ""):
        self.label, self.loss, self.training = label, None, False
        self.start, self.done_at_start = 0.0, 0  # the clock and the step count when training (re)started

    def on_train_begin(self, args, state, control, **kwargs):
        self.start, self.training, self.done_at_start = time.monotonic(), True, state.global_step

    def on_train_end(self, args, state, control, **kwargs):
        self.training = False  # the final evaluation of the kept model prints nothing more

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            self.loss = logs["loss"]
        metric = f"eval_{args.metric_for_best_model}"
        if not (self.training and state.is_world_process_zero and metric in logs):
            return
        elapsed = time.monotonic() - self.start
        done = (state.global_step - self.done_at_start) / max(state.max_steps - self.done_at_start, 1)
        left = elapsed * (1 - done) / done if done > 0 else float("nan")
        loss = f"training loss {self.loss:.4f}, " if self.loss is not None else ""
        print(f"{self.label + ': ' if self.label else ''}epoch {state.epoch:.0f}/{args.num_train_epochs:g}: {loss}"
              f"dev {args.metric_for_best_model} {100 * logs[metric]:.2f}, {_minutes(elapsed)} elapsed, "
              f"about {_minutes(left)} left", flush=True)


def without_progress_output(trainer: Trainer, label: str = "") -> Trainer:
    """Replace the ``Trainer``'s progress bars, notebook tables and printed logs by one line per epoch
    (:class:`EpochLineCallback`; the run folder keeps the whole history).

    Args:
        trainer: the trainer.
        label: the run's name, printed at the start of each line.
    """
    for callback in (PrinterCallback, DEFAULT_PROGRESS_CALLBACK):
        trainer.remove_callback(callback)
    trainer.add_callback(EpochLineCallback(label))
    return trainer


def epoch_history(log_history: list[dict]) -> list[dict]:
    """The evaluation records of ``trainer.state.log_history``, one per evaluation, merged by step.

    Returns:
        A list of dicts with ``epoch``, ``step`` and the ``eval_*`` values.
    """
    merged: dict[int, dict] = {}
    for record in log_history:
        if any(key.startswith("eval_") for key in record):
            entry = merged.setdefault(record["step"], {"epoch": record.get("epoch"), "step": record["step"]})
            entry.update({k: v for k, v in record.items() if k.startswith("eval_")})
    return [merged[step] for step in sorted(merged)]


def glue_training_arguments(checkpoints_dir: str | Path, *, epochs: float, batch_size: int, learning_rate: float,
                            selection_metric: str, logging_steps: int, seed: int, precision: str,
                            report_to: str | list[str], save_total_limit: int, **overrides) -> TrainingArguments:
    """The ``TrainingArguments`` every kdviz training (fine-tuning and distillation) shares: an
    evaluation and a checkpoint every epoch, the best epoch kept by ``selection_metric``, dev batches
    of 64, the precision's autocast, and the GPU when there is one.

    Args:
        checkpoints_dir: where the epoch checkpoints go.
        epochs, batch_size, learning_rate, logging_steps, seed: as ``TrainingArguments`` takes them.
        selection_metric: the dev metric that picks the best epoch (higher is better).
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16`` (:mod:`kdviz.precision`).
        report_to: where training also logs (:mod:`kdviz.reporting`, checked against what is installed).
        save_total_limit: checkpoints kept (the best one among them).
        **overrides: any other ``TrainingArguments`` field, or one of the above's.

    Returns:
        The ``TrainingArguments``.
    """
    cuda = torch.cuda.is_available()
    defaults = dict(
        output_dir=str(checkpoints_dir), num_train_epochs=epochs, per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=64, learning_rate=learning_rate, eval_strategy="epoch", save_strategy="epoch",
        save_total_limit=save_total_limit, load_best_model_at_end=True, metric_for_best_model=selection_metric,
        greater_is_better=True, logging_steps=logging_steps, seed=seed, report_to=check_report_to(report_to),
        dataloader_pin_memory=cuda,
        use_cpu=not cuda,  # without it, torchrun on CPUs would not set up gloo DDP
        **precision_arguments(precision))
    return TrainingArguments(**{**defaults, **overrides})


def glue_trainer_inputs(encoded, task: str | GlueTask) -> dict:
    """The ``Trainer`` arguments every GLUE run shares: data sets, metrics and the task.

    Args:
        encoded: tokenised ``DatasetDict`` with ``train`` and the task's validation splits.
        task: task name or :class:`GlueTask`.

    Returns:
        Keyword arguments for :class:`GlueTrainer` (``train_dataset``, ``eval_dataset`` (a dict
        for MNLI's two dev sets), ``compute_metrics``, ``glue_task``).
    """
    task = get_task(task)
    dev = {split: encoded[split] for split in task.validation_splits}
    return {"train_dataset": encoded["train"], "eval_dataset": dev if len(dev) > 1 else dev[task.validation_splits[0]],
            "compute_metrics": trainer_metrics(task), "glue_task": task}


def trained_precision(trainer: Trainer) -> str:
    """What the training really ran in: ``"bf16"`` or ``"fp16"`` where the accelerator autocast, else ``"fp32"``."""
    accelerator = trainer.accelerator
    return accelerator.mixed_precision if accelerator.native_amp and accelerator.mixed_precision != "no" else "fp32"


def run_summary(trainer: Trainer, task: str | GlueTask, **extra) -> dict:
    """Evaluate the kept (best) model and report: sizes, one record per epoch, the best metrics.

    Args:
        trainer: the trainer after ``train()`` with ``load_best_model_at_end``.
        task: the task.
        **extra: further fields to put first (``model``, ``method_terms``...).

    Returns:
        A JSON-ready dict; ``best`` holds the kept model's metrics and ``best_epoch`` its epoch;
        ``precision`` and ``device`` say what the training actually ran in and on.
    """
    task = get_task(task)
    args = trainer.args
    history = epoch_history(trainer.state.log_history)  # before the final evaluation adds its own record
    best = trainer.evaluate()
    best_epoch = next((h["epoch"] for h in history if h["step"] == trainer.state.best_global_step), None)
    dev = trainer.eval_dataset if isinstance(trainer.eval_dataset, dict) else {task.validation_splits[0]:
                                                                               trainer.eval_dataset}
    return {
        "task": task.name,
        **extra,
        "main_metric": task.main_metric,
        "train_examples": len(trainer.train_dataset),
        "dev_examples": {split: len(ds) for split, ds in dev.items()},
        "history": history,
        "best_epoch": best_epoch,
        "best": {k.removeprefix("eval_"): v for k, v in best.items() if k != "epoch"},
        "best_checkpoint": Path(trainer.state.best_model_checkpoint or "").name or None,
        "precision": trained_precision(trainer),
        "device": torch.cuda.get_device_name(args.device) if args.device.type == "cuda" else args.device.type,
    }
