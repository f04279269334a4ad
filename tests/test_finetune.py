import json

import pytest

from kdviz.cli import main
from kdviz.finetune import OutputExistsError, finetune


@pytest.mark.slow
def test_offline_teacher_fine_tuned_on_2000_sst2_examples_beats_75_percent(sst2_teacher):
    result = sst2_teacher["result"]
    folder = sst2_teacher["dir"]
    assert result["train_examples"] == 2000 and result["dev_examples"] == {"validation": 872}
    assert result["best"]["accuracy"] >= 0.75, result["best"]
    saved = json.loads((folder / "metrics.json").read_text())
    assert saved["best"]["accuracy"] == result["best"]["accuracy"]
    assert len(saved["history"]) == 1 and saved["history"][0]["eval_accuracy"] == result["best"]["accuracy"]
    assert saved["best_epoch"] == 1.0
    for name in ("config.json", "model.safetensors", "tokenizer.json", "metrics.md", "figures/training_loss.png"):
        assert (folder / name).is_file(), name
    assert not (folder / "checkpoints").exists()


def test_cli_lists_tasks(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "mnli" in out and "matthews_correlation" in out


def test_cli_reports_unknown_task_without_a_traceback(capsys, tmp_path):
    assert main(["finetune", "--task", "sst3", "--model", "offline-minilm", "--output", str(tmp_path / "x")]) == 2
    assert "Unknown GLUE task 'sst3'" in capsys.readouterr().err


def test_existing_output_is_kept(tmp_path, real_glue_env):
    (tmp_path / "keep.txt").write_text("earlier work")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        finetune("sst2", "offline-minilm", tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "earlier work"


def test_missing_model_is_reported_before_training(tmp_path, real_glue_env):
    with pytest.raises(ValueError, match="does not exist"):
        finetune("sst2", str(tmp_path / "missing_model"), tmp_path / "out", train_subset=10)
    assert not (tmp_path / "out").exists()
