"""Sharing a student: the exported folder loads with transformers and its model card states the run's metrics."""

from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import kdviz.export
from helpers import tiny_run_config
from kdviz.cli import main
from kdviz.distill import distill
from kdviz.export import export_run, model_card, push_to_hub
from kdviz.runs import load_run


@pytest.fixture(scope="module")
def finished_run(tiny_teacher, tmp_path_factory, glue_dir):
    folder = tmp_path_factory.mktemp("export") / "run"
    distill(tiny_run_config(tiny_teacher, folder, epochs=1, data_dir=str(glue_dir), agreement_size=16))
    return load_run(folder)


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_the_exported_student_loads_and_its_card_states_the_run(finished_run, tmp_path):
    folder = export_run(finished_run.path, tmp_path / "shared")
    assert (folder / "model.safetensors").is_file() and not list(folder.glob("*.bin"))
    exported = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    assert exported.config.id2label == {0: "negative", 1: "positive"}
    student, _ = finished_run.load_student()
    batch = AutoTokenizer.from_pretrained(folder)(["a charming film", "tedious"], return_tensors="pt", padding=True)
    with torch.no_grad():
        torch.testing.assert_close(exported(**batch).logits, student(**batch).logits)
    card = (folder / "README.md").read_text()
    metadata = front_matter(card)
    (result,) = metadata["model-index"][0]["results"]
    assert result["dataset"]["config"] == "sst2" and result["dataset"]["type"] == "nyu-mll/glue"
    assert result["metrics"][0]["value"] == round(100 * finished_run.metrics["best"]["accuracy"], 2)
    assert metadata["pipeline_tag"] == "text-classification" and "attribution" in metadata["tags"]
    agreement = finished_run.agreement[-1]
    assert f"{agreement['cosine']:.4f}" in card and f"{agreement['spearman']:.4f}" in card
    student_faithfulness = finished_run.metrics["faithfulness"]["student"]
    assert f"{student_faithfulness['comprehensiveness']:.4f}" in card
    assert str(finished_run.teacher.reference) not in card  # no local paths in a card to share
    assert "terms:\n  ce:\n    weight: " in card and "  attribution:\n    weight: " in card and "AD-KD" in card \
        and "ALP-KD" in card


def test_export_refuses_unfinished_runs_overlapping_and_non_empty_folders(finished_run, tmp_path):
    (tmp_path / "not_a_run").mkdir()
    with pytest.raises(FileNotFoundError):
        export_run(tmp_path / "not_a_run", tmp_path / "out")
    with pytest.raises(ValueError, match="apart from the run"):
        export_run(finished_run.path, finished_run.path / "inside", overwrite=True)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("kept")
    with pytest.raises(FileExistsError, match="not empty"):
        export_run(finished_run.path, tmp_path / "full")
    assert (tmp_path / "full" / "mine.txt").read_text() == "kept"


def test_push_to_hub_uploads_the_folder_with_the_hub_client(finished_run, tmp_path, monkeypatch, capsys):
    """The hub cannot be reached here: the client is replaced by one that records its calls."""
    calls = []

    class RecordingApi:
        def __init__(self, token=None):
            calls.append(("token", token))

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))

        def upload_folder(self, folder_path, repo_id, **kwargs):
            calls.append(("upload_folder", folder_path, repo_id, sorted(p.name for p in Path(folder_path).iterdir())))
            return type("Commit", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/abc"})()

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    assert main(["export", str(finished_run.path), "--output-dir", str(tmp_path / "out"), "--push-to-hub",
                 "someone/tiny-student", "--private"]) == 0
    assert "https://huggingface.co/someone/tiny-student/commit/abc" in capsys.readouterr().out
    assert calls[1] == ("create_repo", "someone/tiny-student", {"private": True, "exist_ok": True,
                                                                  "repo_type": "model"})
    assert calls[2][2] == "someone/tiny-student" and {"README.md", "config.json", "model.safetensors"} <= set(calls[2][3])
    with pytest.raises(FileNotFoundError, match="not an exported student"):
        push_to_hub(tmp_path, "someone/x")


def test_the_card_names_a_hub_teacher_as_its_base_model(finished_run, monkeypatch):
    monkeypatch.setattr(finished_run.teacher, "reference", "someone/bert-base-sst2")
    assert front_matter(model_card(finished_run))["base_model"] == "someone/bert-base-sst2"
    assert kdviz.export.teacher_name("/a/local/teacher") == "teacher (a local folder)"
