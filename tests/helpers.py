"""Helpers the tests share: paths, tiny random BERTs, a small padded batch, a run's config."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification

REPO = Path(__file__).resolve().parents[1]
SHARED_GLUE = Path(os.environ.get("KDVIZ_DATA_DIR") or REPO.parent / "shared" / "glue")


def tiny_bert_config(num_labels: int = 2, layers: int = 4, hidden: int = 32, **overrides) -> BertConfig:
    """A tiny random BERT config with the bert-base-uncased vocabulary size."""
    values = dict(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                  intermediate_size=37, max_position_embeddings=128, num_labels=num_labels,
                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    values.update(overrides)
    return BertConfig(**values)


def tiny_bert(num_labels: int = 2, layers: int = 4, hidden: int = 32, seed: int = 0, **overrides):
    """A tiny random ``BertForSequenceClassification`` with eager attention, in eval mode.

    Biases and LayerNorm shifts are random too (Hugging Face initialises them to zero): with zero
    biases the network is nearly invariant to the scale of its embedding output, which would make
    Integrated Gradients degenerate.
    """
    torch.manual_seed(seed)
    config = tiny_bert_config(num_labels, layers, hidden, initializer_range=0.2, **overrides)
    model = BertForSequenceClassification._from_config(config, attn_implementation="eager").eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):
                parameter.normal_(0.0, 0.2)
    return model


def make_batch(pairs: bool, seed: int = 0) -> dict[str, torch.Tensor]:
    """Three random examples of 9 tokens (the first padded after 6, the third after 8), one or two segments."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 2000, (3, 9), generator=generator)
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0  # padding
    mask[2, 8:] = 0
    ids[mask == 0] = 0
    types = torch.zeros_like(ids)
    if pairs:
        types[:, 4:] = 1
        types[mask == 0] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def tiny_run_config(teacher, output, method="adkd+alp", task="sst2", **overrides):
    """A preset run shrunk to seconds: 64 training and 32 dev examples, batch 16, two epochs."""
    from kdviz.config import DistillConfig, merge_config_values
    from kdviz.recipes import preset

    shrunk = dict(teacher=str(teacher), output_dir=str(output), train_subset=64, eval_subset=32, epochs=2,
                  batch_size=16, logging_steps=2, probe_size=4, student_layers=2, top_k=20)
    return DistillConfig.from_dict(merge_config_values(preset(f"{method}/{task}"), shrunk, overrides))


def is_png(data: bytes) -> bool:
    """Whether ``data`` is a PNG image with a non-zero width."""
    import struct

    return data[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", data[16:24])[0] > 0


def in_mount_namespace(script: str, **kwargs):
    """Run a shell script in a mount namespace of its own (``unshare -rm``), where it may mount a small
    tmpfs or a read-only bind mount that vanish with it. Returns the ``CompletedProcess``."""
    import shutil
    import subprocess

    import pytest

    if shutil.which("unshare") is None:
        pytest.skip("needs util-linux's unshare (a mount namespace for a small or read-only file system)")
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"this kernel refuses a user mount namespace: {probe.stderr.decode().strip()}")
    return subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, **kwargs)
