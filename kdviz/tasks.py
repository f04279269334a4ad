"""The GLUE task registry: text columns, labels, metrics and the metric that picks the best epoch.

One :class:`GlueTask` per task, keyed by the hub's configuration name (``"sst2"``, ``"mnli"``, ...).
Column names and label orders follow the hub's ``nyu-mll/glue`` data set, so a data set loaded
from the hub and one read from a local GLUE folder look the same to everything downstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

MODEL_INPUTS = ("input_ids", "token_type_ids", "attention_mask")
"""What a BERT classifier reads of a tokenized example, for every task (``token_type_ids`` may be absent)."""
TOKENIZED_COLUMNS = MODEL_INPUTS + ("label", "idx")
"""The columns a tokenized split keeps: the model's inputs, the gold label and the example's GLUE index."""


@dataclass(frozen=True)
class TsvLayout:
    """How one split of a task is laid out in the original GLUE download.

    Attributes:
        has_header: whether the first line names the columns (CoLA has no header).
        columns: hub column name -> the TSV's column (a header name, or an integer
            position when there is no header).
        label_column: the TSV's label column (header name or position).
    """

    has_header: bool
    columns: dict[str, str | int]
    label_column: str | int


@dataclass(frozen=True)
class GlueTask:
    """Everything kdviz needs to know about one GLUE task.

    Attributes:
        name: the hub configuration name (``"sst2"``).
        folder: the folder name in the original GLUE layout (``"SST-2"``).
        text_columns: one or two hub column names holding the text.
        label_names: class names in the hub's integer order; empty for regression.
        tsv_labels: the label strings the GLUE TSV uses, in the hub's integer order.
        metrics: names of the metrics reported for the task.
        main_metric: the metric that picks the best epoch.
        dev_splits: TSV file stem per hub validation split name.
        tsv: the TSV layout of the train and dev files.
        test_splits: TSV file stem per hub test split name (unlabelled; a header in every task).
        test_id_column: the test files' example id column (GLUE's submission ``index``).
    """

    name: str
    folder: str
    text_columns: tuple[str, ...]
    label_names: tuple[str, ...]
    tsv_labels: tuple[str, ...]
    metrics: tuple[str, ...]
    main_metric: str
    tsv: TsvLayout
    dev_splits: dict[str, str] = field(default_factory=lambda: {"validation": "dev"})
    test_splits: dict[str, str] = field(default_factory=lambda: {"test": "test"})
    test_id_column: str = "index"

    @property
    def is_regression(self) -> bool:
        """True for STS-B, whose label is a float score in [0, 5]."""
        return not self.label_names

    @property
    def num_labels(self) -> int:
        """Number of model outputs: the class count, or 1 for regression."""
        return len(self.label_names) or 1

    @property
    def validation_splits(self) -> tuple[str, ...]:
        """The hub's names of the splits used for evaluation."""
        return tuple(self.dev_splits)

    @property
    def test_text_columns(self) -> dict[str, str]:
        """Hub text column -> the test TSV's header name (CoLA's test file, unlike its others, has a header)."""
        if not self.tsv.has_header:
            return {column: column for column in self.text_columns}
        return dict(self.tsv.columns)


def _glue(name: str, folder: str, text_columns: tuple[str, ...], label_names: tuple[str, ...], *,
          tsv_labels: tuple[str, ...] = ("0", "1"), metrics: tuple[str, ...] = ("accuracy",), main: str | None = None,
          columns: dict[str, str | int] | None = None, label_column: str | int = "label", header: bool = True,
          dev_splits: dict[str, str] | None = None, test_splits: dict[str, str] | None = None,
          test_id_column: str = "index") -> GlueTask:
    """A registry entry; by default the TSV names its columns as the hub does and labels are 0/1."""
    layout = TsvLayout(header, columns or {column: column for column in text_columns}, label_column)
    return GlueTask(name, folder, text_columns, label_names, tsv_labels, metrics, main or metrics[0], layout,
                    dev_splits or {"validation": "dev"}, test_splits or {"test": "test"}, test_id_column)


_PAIR = ("sentence1", "sentence2")
_NLI = ("entailment", "not_entailment")

TASKS: dict[str, GlueTask] = {task.name: task for task in (
    _glue("cola", "CoLA", ("sentence",), ("unacceptable", "acceptable"), metrics=("matthews_correlation",),
          header=False, columns={"sentence": 3}, label_column=1),
    _glue("sst2", "SST-2", ("sentence",), ("negative", "positive")),
    _glue("mrpc", "MRPC", _PAIR, ("not_equivalent", "equivalent"), metrics=("f1", "accuracy"),
          columns={"sentence1": "#1 String", "sentence2": "#2 String"}, label_column="Quality"),
    _glue("stsb", "STS-B", _PAIR, (), tsv_labels=(), metrics=("pearson", "spearman"), label_column="score"),
    _glue("qqp", "QQP", ("question1", "question2"), ("not_duplicate", "duplicate"), metrics=("f1", "accuracy"),
          main="accuracy", label_column="is_duplicate", test_id_column="id"),
    _glue("mnli", "MNLI", ("premise", "hypothesis"), ("entailment", "neutral", "contradiction"),
          tsv_labels=("entailment", "neutral", "contradiction"), label_column="gold_label",
          columns={"premise": "sentence1", "hypothesis": "sentence2"},
          dev_splits={"validation_matched": "dev_matched", "validation_mismatched": "dev_mismatched"},
          test_splits={"test_matched": "test_matched", "test_mismatched": "test_mismatched"}),
    _glue("qnli", "QNLI", ("question", "sentence"), _NLI, tsv_labels=_NLI),
    _glue("rte", "RTE", _PAIR, _NLI, tsv_labels=_NLI),
    _glue("wnli", "WNLI", _PAIR, ("not_entailment", "entailment")),
)}


def _normalise(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


_ALIASES = {_normalise(t.folder): t.name for t in TASKS.values()} | {t.name: t.name for t in TASKS.values()}


def get_task(name: str | GlueTask) -> GlueTask:
    """Look a task up by its hub name or GLUE folder name, in any case (``"SST-2"``, ``"sst2"``).

    Args:
        name: the task's name, or a :class:`GlueTask` (returned as it is).

    Returns:
        The task's :class:`GlueTask`.

    Raises:
        ValueError: for an unknown name; the message lists the valid ones.
    """
    if isinstance(name, GlueTask):
        return name
    key = _ALIASES.get(_normalise(str(name)))
    if key is None:
        raise ValueError(f"Unknown GLUE task {name!r}. Valid tasks: {', '.join(TASKS)}.")
    return TASKS[key]


def compute_metrics(task: str | GlueTask, predictions, labels) -> dict[str, float]:
    """Score predictions with the task's metrics (scikit-learn and scipy).

    Args:
        task: task name or :class:`GlueTask`.
        predictions: shape (N,) class ids, or (N, C) logits (argmax is taken); for STS-B,
            (N,) or (N, 1) scores.
        labels: shape (N,) gold class ids or gold scores.

    Returns:
        A dict from metric name (``"accuracy"``, ``"f1"``, ``"matthews_correlation"``,
        ``"pearson"``, ``"spearman"``) to a float.
    """
    task = get_task(task)
    predictions = np.asarray(predictions)
    labels = np.asarray(labels)
    if task.is_regression:
        predictions = predictions.reshape(-1).astype(np.float64)
        labels = labels.reshape(-1).astype(np.float64)
    elif predictions.ndim == 2:
        predictions = predictions.argmax(axis=-1)
    scorers = {
        "accuracy": lambda: accuracy_score(labels, predictions),
        "f1": lambda: f1_score(labels, predictions),
        "matthews_correlation": lambda: matthews_corrcoef(labels, predictions),
        "pearson": lambda: pearsonr(predictions, labels)[0],
        "spearman": lambda: spearmanr(predictions, labels)[0],
    }
    return {name: float(scorers[name]()) for name in task.metrics}


def format_task_table() -> str:
    """A plain-text table of the registry, one task a line (used by ``kdviz tasks``)."""
    rows = [("task", "folder", "text columns", "labels", "metrics (main first)")]
    for t in TASKS.values():
        labels = "regression [0, 5]" if t.is_regression else "/".join(t.label_names)
        metrics = [t.main_metric] + [m for m in t.metrics if m != t.main_metric]
        rows.append((t.name, t.folder, ", ".join(t.text_columns), labels, ", ".join(metrics)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)
