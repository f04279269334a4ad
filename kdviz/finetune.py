"""Fine-tune a teacher on a GLUE task with ``transformers.Trainer``, keeping the best dev epoch.

:func:`finetune` trains one; :func:`teacher_for` returns a fine-tuned teacher for a task, training
it only when no finished one is kept under that name (the notebooks, the study and the benchmarks
share teachers this way).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from transformers import set_seed

from kdviz.data import DEFAULT_MAX_LENGTH, load_glue, tokenize_glue
from kdviz.glue_trainer import (GlueTrainer, glue_trainer_inputs, glue_training_arguments, run_summary,
                                without_progress_output)
from kdviz.models import is_finetuned, load_classifier
from kdviz.precision import precision_arguments
from kdviz.recipes import TEACHER_RECIPES, scale
from kdviz.report import format_metrics_table
from kdviz.viz.history_figures import write_loss_figure
from kdviz.reporting import check_report_to, log_into_folder
from kdviz.runs import TeacherFolder, check_output_dir
from kdviz.tasks import GlueTask, get_task


def _check_positive(**values) -> None:
    for name, value in values.items():
        if value is not None and not value > 0:
            raise ValueError(f"{name}={value!r} is out of range: it must be above 0.")


def resolved_settings(task: str | GlueTask, model: str, *, data_dir=None, train_subset: int | None = None,
                      eval_subset: int | None = None, epochs: float | None = None, learning_rate: float | None = None,
                      batch_size: int | None = None, max_length: int = DEFAULT_MAX_LENGTH, seed: int = 42,
                      precision: str = "auto") -> dict:
    """What defines a fine-tuning (arguments as :func:`finetune`), unset values from the task's recipe.

    A teacher folder records them when fine-tuning starts, so a cut-off fine-tuning resumes only
    with the same settings.
    """
    task = get_task(task)
    recipe = TEACHER_RECIPES[task.name]
    return {"task": task.name, "model": str(model), "data_dir": None if data_dir is None else str(data_dir),
            "train_subset": train_subset, "eval_subset": eval_subset,
            "epochs": float(epochs if epochs is not None else recipe.epochs),
            "learning_rate": float(learning_rate if learning_rate is not None else recipe.learning_rate),
            "batch_size": batch_size or recipe.batch_size, "max_length": max_length, "seed": seed,
            "precision": precision}


def finetune(
    task: str | GlueTask,
    model: str,
    output_dir: str | os.PathLike,
    *,
    data_dir: str | os.PathLike | None = None,
    train_subset: int | None = None,
    eval_subset: int | None = None,
    epochs: float | None = None,
    learning_rate: float | None = None,
    batch_size: int | None = None,
    max_length: int = DEFAULT_MAX_LENGTH,
    seed: int = 42,
    precision: str = "auto",
    report_to: str | list[str] = "none",
    overwrite: bool = False,
    resume: bool = False,
    callbacks=(),
    progress: bool = True,
    **training_arguments,
) -> dict:
    """Fine-tune ``model`` on ``task`` and save the best dev epoch as a teacher.

    Every input is checked (task, ranges, data, model, label count, output folder) before training
    starts. Unset hyperparameters take the AD-KD paper's teacher recipe for the task
    (:data:`kdviz.recipes.TEACHER_RECIPES`).

    Args:
        task: GLUE task name.
        model: ``"offline-minilm"``, a local folder or a hub id.
        output_dir: the teacher folder (:class:`kdviz.runs.TeacherFolder`): the model, tokenizer,
            metrics and the loss figure.
        data_dir: local GLUE folder (default ``$KDVIZ_DATA_DIR``, else the hub).
        train_subset: number of training examples to draw (seeded); default all.
        eval_subset: number of dev examples per dev split; default all.
        epochs: training epochs.
        learning_rate: peak learning rate (linear decay, AdamW).
        batch_size: training batch size per device.
        max_length: token limit per example.
        seed: seed of the subset draw, the new head's initialisation and the data order.
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16`` (:mod:`kdviz.precision`).
        report_to: where the training also logs (:mod:`kdviz.reporting`: ``"none"``, ``"all"``,
            ``"tensorboard"``, ``"wandb"``... or a list); TensorBoard writes into ``<output_dir>/logs``.
        overwrite: replace a non-empty ``output_dir``.
        resume: continue a cut-off fine-tuning of the same settings from its last checkpoint in
            ``output_dir`` (:meth:`~kdviz.runs.TeacherFolder.can_resume` tells whether there is one).
        callbacks: extra ``TrainerCallback`` objects.
        progress: show the ``Trainer``'s progress bar and logs (notebooks turn them off).
        **training_arguments: passed on to ``transformers.TrainingArguments``.

    Returns:
        The metrics written to the folder: ``task``, ``model``, ``history`` (one entry per
        epoch), ``best`` (metrics of the kept model) and the sizes of the data used.
    """
    task = get_task(task)
    _check_positive(epochs=epochs, learning_rate=learning_rate, batch_size=batch_size, train_subset=train_subset,
                    eval_subset=eval_subset, max_length=max_length)
    settings = resolved_settings(task, model, data_dir=data_dir, train_subset=train_subset, eval_subset=eval_subset,
                                 epochs=epochs, learning_rate=learning_rate, batch_size=batch_size,
                                 max_length=max_length, seed=seed, precision=precision)
    folder = TeacherFolder(output_dir)
    if resume and not folder.can_resume(settings):
        raise FileNotFoundError(f"Nothing to resume in {str(folder.path)!r}: no checkpoint of a fine-tuning with "
                                f"these settings. Start over with overwrite=True (--overwrite).")
    if not resume:
        check_output_dir(output_dir, overwrite)
    precision_arguments(precision)  # a precision or logger this machine lacks stops here, before any data is loaded
    report_to = check_report_to(report_to)
    data = load_glue(task, data_dir, train_subset=train_subset, eval_subset=eval_subset, seed=seed)
    set_seed(seed)  # the new classification head is drawn here, before the Trainer seeds anything
    network, tokenizer = load_classifier(model, task)
    encoded = tokenize_glue(data, tokenizer, task, max_length)

    if overwrite and not resume and folder.path.exists():
        shutil.rmtree(folder.path)
    folder.write_settings(settings)
    args = glue_training_arguments(
        folder.checkpoints_dir, epochs=settings["epochs"], batch_size=settings["batch_size"],
        learning_rate=settings["learning_rate"], selection_metric=task.main_metric, logging_steps=10, seed=seed,
        precision=precision, report_to=report_to, save_total_limit=1, **training_arguments)
    trainer = GlueTrainer(model=network.train(), args=args, processing_class=tokenizer, callbacks=list(callbacks),
                          **glue_trainer_inputs(encoded, task))
    log_into_folder(trainer, folder.logs_dir)
    if not progress:
        without_progress_output(trainer, label=f"teacher {task.name}")
    trainer.train(resume_from_checkpoint=True if resume else None)
    trainer.save_model(str(folder.path))
    result = run_summary(trainer, task, model=str(model))
    folder.write_metrics(result, format_metrics_table({f"teacher ({model})": result["best"]}, task))
    write_loss_figure(folder.training_loss_figure, trainer.state.log_history, title=f"{task.name}: fine-tuning")
    folder.remove_checkpoints()
    return result


def _slug(reference: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", reference.strip("/.")).strip("-").lower()


def teacher_for(task: str, model: str, *, runs_dir: str | Path = "runs", quick: bool | None = None,
                data_dir: str | None = None, seed: int = 42, precision: str = "auto",
                report_to: str | list[str] = "none", progress: bool = True) -> str:
    """A fine-tuned teacher for ``task``: ``model`` itself when it already is one, else fine-tuned once.

    The fine-tuned teacher goes to ``RUNS_DIR/teachers/<task>-<model>[-quick]`` and is reused by
    every later call (and notebook) that asks for the same task, model and scale. A fine-tuning cut
    off before it finished (a disconnected kernel) continues from its last epoch checkpoint.

    Args:
        task: GLUE task name.
        model: a fine-tuned teacher folder, a hub id to fine-tune (``"bert-base-uncased"``) or
            ``"offline-minilm"``.
        runs_dir: where fine-tuned teachers are kept.
        quick: the quick scale of :mod:`kdviz.recipes` (default: ``KDVIZ_QUICK``).
        data_dir: local GLUE folder (default ``$KDVIZ_DATA_DIR``, else the hub).
        seed: the fine-tuning seed.
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16`` (:mod:`kdviz.precision`).
        report_to: where the fine-tuning also logs (:mod:`kdviz.reporting`).
        progress: show the fine-tuning's progress bar and logs.

    Returns:
        The teacher's folder (or ``model`` unchanged when it is already fine-tuned on ``task``).
    """
    if is_finetuned(model, task):
        return model
    size = scale(quick)
    folder = Path(runs_dir) / "teachers" / f"{task}-{_slug(model)}{'-quick' if size.is_quick else ''}"
    teacher = TeacherFolder(folder)
    if not teacher.is_finished:
        settings = dict(data_dir=data_dir, train_subset=size.train_subset, eval_subset=size.eval_subset,
                        epochs=size.teacher_epochs, learning_rate=size.teacher_learning_rate, seed=seed,
                        precision=precision)
        resume = teacher.can_resume(resolved_settings(task, model, **settings))
        finetune(task, model, folder, overwrite=not resume, resume=resume, report_to=report_to, progress=progress,
                 **settings)
    return str(folder)
