"""GLUE test-set predictions of a run's student, in the benchmark's submission format.

GLUE's server takes one TSV per task, named as its leaderboard names them (``SST-2.tsv``,
``MNLI-m.tsv`` and ``MNLI-mm.tsv``...), with a header ``index<TAB>prediction`` and one line per
test example: the example's id from the test file, and the prediction as the task's own files
write labels (``entailment``/``not_entailment`` for RTE and QNLI, MNLI's three names, ``0``/``1``
for the binary tasks, a score in [0, 5] for STS-B).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from transformers import DataCollatorWithPadding

from kdviz.attribution import model_inputs
from kdviz.data import load_glue, tokenize_glue
from kdviz.runs import load_run
from kdviz.tasks import TOKENIZED_COLUMNS, GlueTask, get_task

SUBMISSION_NAMES = {"test_matched": "MNLI-m", "test_mismatched": "MNLI-mm"}
"""GLUE's file names where they are not the task's folder name."""


def submission_file(task: GlueTask, split: str) -> str:
    """The file GLUE's server expects for a test split: ``SST-2.tsv``, ``MNLI-m.tsv``..."""
    return f"{SUBMISSION_NAMES.get(split, task.folder)}.tsv"


def prediction_text(task: GlueTask, output: torch.Tensor) -> str:
    """One prediction as GLUE writes labels: the class's label in the task's files, or a score in [0, 5].

    Args:
        task: the task.
        output: (C,) logits of one example, or (1,) a regression score.
    """
    if task.is_regression:
        return f"{float(output[0].clamp(0.0, 5.0)):.3f}"
    return task.tsv_labels[int(output.argmax())]


@torch.no_grad()
def predict_split(model, tokenizer, dataset, task: GlueTask, *, max_length: int,
                  batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's outputs on a split, in its order.

    Args:
        model: a sequence classifier (eval mode).
        tokenizer: its tokenizer.
        dataset: the split as :func:`~kdviz.data.load_glue` gives it.
        task: the task (its text columns).
        max_length: the token limit the run trained with.
        batch_size: examples per forward pass.

    Returns:
        ``(idx, outputs)``: the examples' ids (N,) and the model's outputs (N, C), on the CPU.
    """
    encoded = tokenize_glue(dataset, tokenizer, task, max_length)
    encoded = encoded.select_columns([c for c in TOKENIZED_COLUMNS if c in encoded.column_names])
    loader = DataLoader(encoded, batch_size=batch_size, collate_fn=DataCollatorWithPadding(tokenizer))
    device = next(model.parameters()).device
    idx, outputs = [], []
    for batch in loader:
        idx.append(batch["idx"])
        inputs = {name: None if value is None else value.to(device) for name, value in model_inputs(batch).items()}
        outputs.append(model(**inputs).logits.float().cpu())
    return torch.cat(idx), torch.cat(outputs)


def write_submission(run_dir: str | os.PathLike, *, split: str = "test", data_dir: str | os.PathLike | None = None,
                     output_dir: str | os.PathLike | None = None, batch_size: int = 64) -> list[Path]:
    """Write a run's test-set predictions as GLUE submission files.

    Args:
        run_dir: a finished run folder (its best student is used).
        split: ``"test"`` for every test split of the task (MNLI: matched and mismatched), or one
            test split's hub name (``"test_matched"``).
        data_dir: local GLUE folder holding the test files (default ``$KDVIZ_DATA_DIR``, else the hub).
        output_dir: where the files go (default ``<run>/submission``).
        batch_size: examples per forward pass.

    Returns:
        The files written.

    Raises:
        ValueError: a split that is not a test split of the task. FileNotFoundError: not a
            finished run, or a missing test file (:class:`~kdviz.data.GlueDataError`).
    """
    run = load_run(run_dir)
    task = get_task(run.config.task)
    splits = list(task.test_splits) if split == "test" else [split]
    if any(name not in task.test_splits for name in splits):
        raise ValueError(f"{split!r} is not a test split of {task.name}: use 'test' or one of {list(task.test_splits)}.")
    if not (run.student_dir / "config.json").is_file():
        raise FileNotFoundError(f"{str(run.path)!r} holds no trained student: finish the run first.")
    data = load_glue(task, data_dir, splits=tuple(splits))
    model, tokenizer = run.load_student()
    output = Path(output_dir) if output_dir is not None else run.path / "submission"
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for name in splits:
        idx, outputs = predict_split(model, tokenizer, data[name], task, max_length=run.config.max_length,
                                     batch_size=batch_size)
        lines = ["index\tprediction"] + [f"{int(i)}\t{prediction_text(task, row)}" for i, row in zip(idx, outputs)]
        path = output / submission_file(task, name)
        path.write_text("\n".join(lines) + "\n")
        written.append(path)
    return written
