"""Fine-tune a teacher on a GLUE task with ``transformers.Trainer``, keeping the best dev epoch."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import TrainingArguments, set_seed

from kdviz.data import DEFAULT_MAX_LENGTH, load_glue, tokenize_glue
from kdviz.models import load_classifier
from kdviz.report import write_loss_figure, write_metrics_table
from kdviz.tasks import GlueTask, get_task
from kdviz.training import GlueTrainer, glue_trainer_inputs, run_summary

METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class TeacherRecipe:
    """Batch size, epochs and learning rate of the AD-KD paper's bert-base teachers."""

    batch_size: int
    epochs: int
    learning_rate: float


TEACHER_RECIPES = {
    "cola": TeacherRecipe(8, 5, 2e-5), "mnli": TeacherRecipe(32, 5, 2e-5), "mrpc": TeacherRecipe(8, 5, 5e-5),
    "qnli": TeacherRecipe(32, 5, 2e-5), "qqp": TeacherRecipe(32, 5, 3e-5), "rte": TeacherRecipe(16, 4, 5e-5),
    "sst2": TeacherRecipe(32, 5, 2e-5), "stsb": TeacherRecipe(4, 4, 3e-5), "wnli": TeacherRecipe(16, 4, 2e-5),
}


class OutputExistsError(FileExistsError):
    """The output folder already holds work that a new run would overwrite."""


def check_output_dir(output_dir: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse to write into a non-empty folder unless ``overwrite`` is set.

    Returns:
        The output folder as a :class:`Path` (not created yet).
    """
    path = Path(output_dir)
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"Output folder {str(path)!r} is not empty; nothing was changed. Choose another folder or pass "
            f"--overwrite (overwrite=True) to replace it."
        )
    return path


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
    overwrite: bool = False,
    **training_arguments,
) -> dict:
    """Fine-tune ``model`` on ``task`` and save the best dev epoch as a teacher.

    Every input is checked (task, data, model, label count, output folder) before training starts.
    Unset hyperparameters take the AD-KD paper's teacher recipe for the task (``TEACHER_RECIPES``).

    Args:
        task: GLUE task name.
        model: ``"offline-minilm"``, a local folder or a hub id.
        output_dir: where the model, tokenizer, ``metrics.json``, ``metrics.md`` and the loss
            figure are written.
        data_dir: local GLUE folder (default ``$KDVIZ_DATA_DIR``, else the hub).
        train_subset: number of training examples to draw (seeded); default all.
        eval_subset: number of dev examples per dev split; default all.
        epochs: training epochs.
        learning_rate: peak learning rate (linear decay, AdamW).
        batch_size: training batch size per device.
        max_length: token limit per example.
        seed: seed of the subset draw, the new head's initialisation and the data order.
        overwrite: replace a non-empty ``output_dir``.
        **training_arguments: passed on to ``transformers.TrainingArguments``.

    Returns:
        The dict written to ``metrics.json``: ``task``, ``model``, ``history`` (one entry per
        epoch), ``best`` (metrics of the kept model) and the sizes of the data used.
    """
    task = get_task(task)
    output = check_output_dir(output_dir, overwrite)
    recipe = TEACHER_RECIPES[task.name]
    data = load_glue(task, data_dir, train_subset=train_subset, eval_subset=eval_subset, seed=seed)
    set_seed(seed)  # the new classification head is drawn here, before the Trainer seeds anything
    network, tokenizer = load_classifier(model, task)
    encoded = tokenize_glue(data, tokenizer, task, max_length)

    if output.exists() and overwrite:
        shutil.rmtree(output)
    checkpoints = output / "checkpoints"
    args = TrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=epochs if epochs is not None else recipe.epochs,
        learning_rate=learning_rate if learning_rate is not None else recipe.learning_rate,
        per_device_train_batch_size=batch_size or recipe.batch_size,
        per_device_eval_batch_size=64,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=1,
        load_best_model_at_end=True,
        metric_for_best_model=task.main_metric,
        greater_is_better=True,
        logging_steps=10,
        seed=seed,
        report_to="none",
        dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=not torch.cuda.is_available(),
        **training_arguments,
    )
    trainer = GlueTrainer(
        model=network.train(),
        args=args,
        processing_class=tokenizer,
        **glue_trainer_inputs(encoded, task),
    )
    trainer.train()
    trainer.save_model(str(output))
    result = run_summary(trainer, task, model=str(model))
    (output / METRICS_FILE).write_text(json.dumps(result, indent=2))
    write_metrics_table(output / "metrics.md", {f"teacher ({model})": result["best"]}, task)
    write_loss_figure(output / "figures" / "training_loss.png", trainer.state.log_history, title=f"{task.name}: fine-tuning")
    shutil.rmtree(checkpoints, ignore_errors=True)
    return result
