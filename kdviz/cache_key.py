"""The teacher cache's keys: everything that decides what a frozen teacher computes, hashed.

An entry's key (:func:`cache_key`) hashes the teacher's weights, its model class and config (label
names and paths aside), its attention implementation, the installed torch and transformers
versions, the tokenised data and a description of where it came from, and the entry format. The
token scores' part name (:func:`scores_part`) adds the attribution settings and a digest of the
attribution code, so changed code never reads scores computed by the old one.
"""

from __future__ import annotations

import hashlib
import inspect
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401 (pa.compute)
import torch
import transformers

import kdviz.attribution
import kdviz.frozen_attribution
from kdviz.attribution import AttributionSettings
from kdviz.tasks import TOKENIZED_COLUMNS

FORMAT = 3
"""The layout of an entry's parts; a new layout gives new keys."""


def hash_model(model: torch.nn.Module) -> str:
    """SHA-256 of a model's state dict: names, dtypes, shapes and every byte of every tensor."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def hash_dataset(dataset) -> str:
    """SHA-256 of a tokenised data set's model inputs, labels and ``idx``, row by row in order (read
    as Arrow buffers: a second for MNLI's size, not minutes through Python lists)."""
    digest = hashlib.sha256()
    table = dataset.with_format("arrow")
    for name in TOKENIZED_COLUMNS:
        if name not in dataset.column_names:
            continue
        values = table[name].combine_chunks()
        if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
            digest.update(pa.compute.list_value_length(values).to_numpy().astype(np.int64).tobytes())
            values = values.flatten()
        digest.update(name.encode())
        digest.update(values.to_numpy(zero_copy_only=False).astype(np.float64).tobytes())
    return digest.hexdigest()


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


CONFIG_FIELDS_IGNORED = frozenset({"_name_or_path", "name_or_path", "id2label", "label2id", "architectures",
                                   "transformers_version", "_commit_hash", "finetuning_task", "dtype", "torch_dtype"})
"""Config fields that do not change what the model computes: names, paths and label names (the
number of labels stays in the key), the version that saved it, and the dtype (the weights' hash
holds their dtype)."""


def describe_teacher(teacher: torch.nn.Module) -> dict:
    """Everything besides its weights that decides a teacher's outputs: model class, config (label
    names and paths aside), attention implementation, and the torch and transformers versions."""
    config = {name: value for name, value in teacher.config.to_dict().items() if name not in CONFIG_FIELDS_IGNORED}
    return {"class": f"{type(teacher).__module__}.{type(teacher).__qualname__}", "config": config,
            "num_labels": teacher.config.num_labels,
            "attention": getattr(teacher.config, "_attn_implementation", None),
            "torch": torch.__version__.split("+")[0], "transformers": transformers.__version__}


def cache_key(teacher: torch.nn.Module, dataset, description: dict) -> str:
    """The key of the cache entry for this teacher and tokenised data (``description``: where it came from).

    It hashes the teacher's weights and :func:`describe_teacher`, the tokenised data, ``description``
    and the entry format, so that any change to what the teacher computes gives another entry.
    """
    return _digest({"teacher": hash_model(teacher), "architecture": describe_teacher(teacher),
                    "data": hash_dataset(dataset), "description": description, "format": FORMAT})


def code_digest(modules) -> str:
    """A digest of the modules' source: results computed by changed code get another key (kdviz's
    version where the source is not installed)."""
    try:
        return _digest([inspect.getsource(module) for module in modules])
    except (OSError, TypeError):
        return _digest(kdviz.__version__)


def scores_part(settings: AttributionSettings) -> str:
    """The name of the part that holds token scores for these attribution settings (and this
    version of the attribution code)."""
    code = code_digest((kdviz.attribution, kdviz.frozen_attribution))
    return f"scores-{_digest({**settings.result_fields(), 'code': code})[:12]}"
