"""GLUE data: the hub's ``nyu-mll/glue`` or a local folder in the original GLUE layout, one schema.

``load_glue`` returns a :class:`datasets.DatasetDict` whose columns, features and integer labels are
the hub's, whichever source it read. ``tokenize_glue`` turns it into model inputs; padding is left
to :class:`transformers.DataCollatorWithPadding` at batch time (dynamic padding).
"""

from __future__ import annotations

import csv
import io
import os
import sys
from pathlib import Path

import datasets
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from kdviz.tasks import GlueTask, get_task

HUB_DATASET = "nyu-mll/glue"
DATA_DIR_ENV = "KDVIZ_DATA_DIR"
DEFAULT_MAX_LENGTH = 128


class GlueDataError(ValueError):
    """A GLUE folder or file that cannot be read as the task expects."""


def hub_features(task: str | GlueTask) -> Features:
    """The features of the hub's ``nyu-mll/glue`` configuration for a task.

    Args:
        task: task name or :class:`GlueTask`.

    Returns:
        The text columns as strings, ``label`` as a ``ClassLabel`` (``float32`` for STS-B) and
        ``idx`` as ``int32``, in the hub's column order.
    """
    task = get_task(task)
    columns = {name: Value("string") for name in task.text_columns}
    columns["label"] = Value("float32") if task.is_regression else ClassLabel(names=list(task.label_names))
    columns["idx"] = Value("int32")
    return Features(columns)


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    """The local GLUE folder to read: ``data_dir``, else ``$KDVIZ_DATA_DIR``, else None (the hub)."""
    chosen = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV) or None
    if chosen is None:
        return None
    path = Path(chosen).expanduser()
    if not path.is_dir():
        source = "data_dir" if data_dir is not None else f"${DATA_DIR_ENV}"
        raise GlueDataError(
            f"GLUE folder {str(path)!r} (from {source}) does not exist. Point it at a folder in the "
            f"original GLUE layout (SST-2/train.tsv, MNLI/dev_matched.tsv, ...) or unset it to use the hub."
        )
    return path


def read_glue_tsv(task: str | GlueTask, path: str | os.PathLike) -> Dataset:
    """Read one split of a task from a TSV file in the original GLUE layout.

    The GLUE files are not CSV: tab separated, no quoting at all, MRPC starts with a UTF-8 BOM,
    CoLA has no header, STS-B labels are float scores, RTE/QNLI/MNLI labels are strings.

    Args:
        task: task name or :class:`GlueTask`.
        path: the TSV file.

    Returns:
        A :class:`datasets.Dataset` with the hub's features (:func:`hub_features`); ``idx`` is the
        row's position in the file.

    Raises:
        GlueDataError: missing file, missing column, a row with too few fields, or an unknown label.
    """
    task = get_task(task)
    path = Path(path)
    if not path.is_file():
        raise GlueDataError(
            f"{task.name}: expected the file {str(path)!r} (original GLUE layout: "
            f"<data_dir>/{task.folder}/<split>.tsv). Check the data folder or download GLUE there."
        )
    layout = task.tsv
    csv.field_size_limit(sys.maxsize)
    rows = list(csv.reader(io.StringIO(_read_utf8(path), newline=""), delimiter="\t", quoting=csv.QUOTE_NONE))
    if layout.has_header:
        header, rows = rows[0], rows[1:]
        wanted = [*layout.columns.values(), layout.label_column]
        missing = [c for c in wanted if c not in header]
        if missing:
            raise GlueDataError(
                f"{path}: column(s) {missing} missing from the header {header}. A {task.folder} file in the "
                f"GLUE layout has the columns {wanted}; check that the file belongs to {task.folder}."
            )
        position = {name: header.index(name) for name in wanted}
    else:
        position = {c: c for c in [*layout.columns.values(), layout.label_column]}
    needed = max(position.values()) + 1
    label_ids = {label: i for i, label in enumerate(task.tsv_labels)}

    columns: dict[str, list] = {name: [] for name in task.text_columns}
    labels: list = []
    for line_number, row in enumerate(rows, start=2 if layout.has_header else 1):
        if not any(row):
            continue
        if len(row) < needed:
            raise GlueDataError(
                f"{path}, line {line_number}: {len(row)} field(s), expected at least {needed}. "
                f"The file may have been saved with CSV quoting; re-export it tab separated without quoting."
            )
        for hub_name, tsv_column in layout.columns.items():
            columns[hub_name].append(row[position[tsv_column]])
        raw_label = row[position[layout.label_column]].strip()
        if task.is_regression:
            labels.append(float(raw_label))
        elif raw_label in label_ids:
            labels.append(label_ids[raw_label])
        else:
            raise GlueDataError(
                f"{path}, line {line_number}: label {raw_label!r} is not one of {list(task.tsv_labels)} "
                f"for {task.name}."
            )
    columns["label"] = labels
    columns["idx"] = list(range(len(labels)))
    return Dataset.from_dict(columns, features=hub_features(task))


def read_glue_test_tsv(task: str | GlueTask, path: str | os.PathLike) -> Dataset:
    """Read a test split of a task from a TSV file in the original GLUE layout (no labels).

    Args:
        task: task name or :class:`GlueTask`.
        path: the TSV file (``test.tsv``; MNLI ``test_matched.tsv`` and ``test_mismatched.tsv``).

    Returns:
        A :class:`datasets.Dataset` with the hub's features; ``label`` is -1 (as in the hub's test
        splits) and ``idx`` is the file's example id (``index``; QQP ``id``), which GLUE's
        submission files name each prediction by.

    Raises:
        GlueDataError: missing file, missing column, or a row with too few fields.
    """
    task = get_task(task)
    path = Path(path)
    if not path.is_file():
        raise GlueDataError(f"{task.name}: expected the test file {str(path)!r} (original GLUE layout: "
                            f"<data_dir>/{task.folder}/{next(iter(task.test_splits.values()))}.tsv).")
    csv.field_size_limit(sys.maxsize)
    rows = list(csv.reader(io.StringIO(_read_utf8(path), newline=""), delimiter="\t", quoting=csv.QUOTE_NONE))
    header, rows = rows[0], [row for row in rows[1:] if any(row)]
    wanted = [task.test_id_column, *task.test_text_columns.values()]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise GlueDataError(f"{path}: column(s) {missing} missing from the header {header}. A {task.folder} test "
                            f"file in the GLUE layout has the columns {wanted}.")
    position = {name: header.index(name) for name in wanted}
    for line_number, row in enumerate(rows, start=2):
        if len(row) <= max(position.values()):
            raise GlueDataError(f"{path}, line {line_number}: {len(row)} field(s), expected at least "
                                f"{max(position.values()) + 1}.")
    columns = {hub: [row[position[tsv]] for row in rows] for hub, tsv in task.test_text_columns.items()}
    columns["label"] = [-1.0 if task.is_regression else -1] * len(rows)
    columns["idx"] = [int(row[position[task.test_id_column]]) for row in rows]
    return Dataset.from_dict(columns, features=hub_features(task))


def _read_utf8(path: Path) -> str:
    """The file's text (a UTF-8 BOM, as MRPC's, dropped), or an error naming the line that is not UTF-8."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise GlueDataError(
            f"{path}, line {line}: byte {raw[error.start]:#04x} is not UTF-8 ({error.reason}). The GLUE files are "
            f"UTF-8: re-save the file as UTF-8 (for example iconv -f latin1 -t utf-8)."
        ) from None


def _load_local(task: GlueTask, data_dir: Path, splits: tuple[str, ...]) -> DatasetDict:
    task_dir = data_dir / task.folder
    if not task_dir.is_dir():
        raise GlueDataError(
            f"{task.name}: no folder {str(task_dir)!r}. The GLUE layout keeps each task in its own folder "
            f"({task.folder}/train.tsv, {task.folder}/{next(iter(task.dev_splits.values()))}.tsv)."
        )
    stems = {"train": "train", **task.dev_splits}
    return DatasetDict({split: read_glue_test_tsv(task, task_dir / f"{task.test_splits[split]}.tsv")
                        if split in task.test_splits else read_glue_tsv(task, task_dir / f"{stems[split]}.tsv")
                        for split in splits})


def _load_hub(task: GlueTask, splits: tuple[str, ...]) -> DatasetDict:
    try:
        loaded = datasets.load_dataset(HUB_DATASET, task.name)
    except Exception as error:  # the hub raises many kinds of connection errors
        raise GlueDataError(
            f"Could not load {HUB_DATASET}/{task.name} from the Hugging Face hub ({type(error).__name__}: "
            f"{error}). Offline? Pass data_dir=... or set ${DATA_DIR_ENV} to a folder in the original "
            f"GLUE layout."
        ) from error
    return DatasetDict({split: loaded[split] for split in splits})


def _subset(dataset: Dataset, size: int | None, seed: int) -> Dataset:
    if size is None or size >= len(dataset):
        return dataset
    if size <= 0:
        raise ValueError(f"A subset size must be positive, got {size}.")
    return dataset.shuffle(seed=seed).select(range(size))


def load_glue(
    task: str | GlueTask,
    data_dir: str | os.PathLike | None = None,
    *,
    splits: tuple[str, ...] | None = None,
    train_subset: int | None = None,
    eval_subset: int | None = None,
    seed: int = 42,
) -> DatasetDict:
    """Load a GLUE task with the hub's schema, from a local GLUE folder or the hub.

    Args:
        task: task name (``"sst2"``, ``"SST-2"``, ...) or :class:`GlueTask`.
        data_dir: a folder in the original GLUE layout. Default: ``$KDVIZ_DATA_DIR``; when neither
            is set, the hub's ``nyu-mll/glue``.
        splits: hub split names to load. Default: ``train`` and the task's validation split(s)
            (``validation``; MNLI ``validation_matched`` and ``validation_mismatched``); the test
            split(s) (``test``; MNLI ``test_matched`` and ``test_mismatched``) when asked for.
        train_subset: keep this many training examples, drawn with ``seed``.
        eval_subset: keep this many examples of each validation split, drawn with ``seed``.
        seed: seed of the subset draws.

    Returns:
        A :class:`datasets.DatasetDict` keyed by split, with columns as in :func:`hub_features`.

    Raises:
        ValueError: unknown task or split; :class:`GlueDataError` for an unreadable folder or file.
    """
    task = get_task(task)
    default = ("train", *task.validation_splits)
    known = (*default, *task.test_splits)
    splits = tuple(splits) if splits is not None else default
    unknown = [s for s in splits if s not in known]
    if unknown:
        raise ValueError(f"{task.name} has no split(s) {unknown}; choose from {list(known)}.")
    local_dir = resolve_data_dir(data_dir)
    loaded = _load_local(task, local_dir, splits) if local_dir else _load_hub(task, splits)
    return DatasetDict({
        split: _subset(ds, train_subset if split == "train" else eval_subset, seed)
        for split, ds in loaded.items()
    })


def tokenize_glue(
    dataset: DatasetDict | Dataset,
    tokenizer,
    task: str | GlueTask,
    max_length: int = DEFAULT_MAX_LENGTH,
) -> DatasetDict | Dataset:
    """Tokenise single sentences or sentence pairs, truncated to ``max_length`` and not padded.

    Padding happens per batch (``transformers.DataCollatorWithPadding``), so short batches stay short.

    Args:
        dataset: output of :func:`load_glue`, or one of its splits.
        tokenizer: a Hugging Face tokenizer.
        task: task name or :class:`GlueTask` (gives the text columns).
        max_length: longest sequence in tokens, special tokens included.

    Returns:
        The same splits with ``input_ids``, ``attention_mask`` (and ``token_type_ids`` where the
        tokenizer makes them), ``label`` and ``idx``; the text columns are removed.
    """
    task = get_task(task)

    def encode(batch):
        texts = [batch[column] for column in task.text_columns]
        return tokenizer(*texts, truncation=True, max_length=max_length)

    return dataset.map(encode, batched=True, remove_columns=list(task.text_columns), desc="Tokenising")
