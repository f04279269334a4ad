"""Teacher fine-tuning: a real run on SST-2, refusals before any work, teachers fine-tuned once."""

import pytest

import kdviz.finetune
from kdviz.finetune import finetune, teacher_for
from kdviz.recipes import QUICK
from kdviz.runs import OutputExistsError, TeacherFolder


@pytest.mark.slow
def test_offline_teacher_fine_tuned_on_2000_sst2_examples_beats_75_percent(sst2_teacher):
    result = sst2_teacher["result"]
    folder = sst2_teacher["dir"]
    assert result["train_examples"] == 2000 and result["dev_examples"] == {"validation": 872}
    assert result["best"]["accuracy"] >= 0.75, result["best"]
    saved = TeacherFolder(folder).read_metrics()
    assert saved["best"]["accuracy"] == result["best"]["accuracy"]
    assert len(saved["history"]) == 1 and saved["history"][0]["eval_accuracy"] == result["best"]["accuracy"]
    assert saved["best_epoch"] == 1.0
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (folder / name).is_file(), name
    assert TeacherFolder(folder).metrics_table().startswith("| sst2 |") and TeacherFolder(folder).training_loss_figure.is_file()
    assert not TeacherFolder(folder).checkpoints_dir.exists()


def test_existing_output_is_kept(tmp_path, real_glue_env):
    (tmp_path / "keep.txt").write_text("earlier work")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        finetune("sst2", "offline-minilm", tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "earlier work"


def test_missing_model_is_reported_before_training(tmp_path, real_glue_env):
    with pytest.raises(ValueError, match="does not exist"):
        finetune("sst2", str(tmp_path / "missing_model"), tmp_path / "out", train_subset=10)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option", [{"epochs": 0}, {"learning_rate": -1e-5}, {"train_subset": 0}])
def test_ranges_are_checked_before_anything_is_loaded(tmp_path, option):
    with pytest.raises(ValueError, match="is out of range: it must be above 0"):
        finetune("sst2", str(tmp_path / "no_model"), tmp_path / "out", **option)
    assert not (tmp_path / "out").exists()


def test_a_fine_tuned_teacher_is_used_as_it_is_and_a_base_model_is_fine_tuned_once(tiny_teacher, tmp_path,
                                                                                     monkeypatch):
    assert teacher_for("sst2", str(tiny_teacher), runs_dir=tmp_path) == str(tiny_teacher)
    calls = []

    def fake_finetune(task, model, folder, **kwargs):
        calls.append((task, model, kwargs["train_subset"]))
        TeacherFolder(folder).write_metrics({}, "")

    monkeypatch.setattr(kdviz.finetune, "finetune", fake_finetune)
    first = teacher_for("sst2", "offline-minilm", runs_dir=tmp_path, quick=True)
    again = teacher_for("sst2", "offline-minilm", runs_dir=tmp_path, quick=True)
    assert first == again == str(tmp_path / "teachers" / "sst2-offline-minilm-quick")
    assert calls == [("sst2", "offline-minilm", QUICK.train_subset)]
