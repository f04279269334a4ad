"""Teacher fine-tuning: a real run on SST-2, refusals before any work, teachers fine-tuned once."""

import pytest
from transformers import TrainerCallback

import kdviz.finetune
from kdviz.finetune import finetune, resolved_settings, teacher_for
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
        assert kwargs["resume"] is False and kwargs["overwrite"] is True
        TeacherFolder(folder).write_metrics({}, "")

    monkeypatch.setattr(kdviz.finetune, "finetune", fake_finetune)
    first = teacher_for("sst2", "offline-minilm", runs_dir=tmp_path, quick=True)
    again = teacher_for("sst2", "offline-minilm", runs_dir=tmp_path, quick=True)
    assert first == again == str(tmp_path / "teachers" / "sst2-offline-minilm-quick")
    assert calls == [("sst2", "offline-minilm", QUICK.train_subset)]


class CutOffAfterFirstCheckpoint(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        raise KeyboardInterrupt  # the kernel disconnects right after the epoch-1 checkpoint


def test_cut_off_fine_tuning_resumes_and_ends_like_an_uninterrupted_one(tiny_teacher, tmp_path, real_glue_env):
    options = dict(train_subset=64, eval_subset=32, epochs=2, batch_size=16, learning_rate=1e-3, disable_tqdm=True)
    whole = finetune("rte", str(tiny_teacher), tmp_path / "whole", **options)
    with pytest.raises(KeyboardInterrupt):
        finetune("rte", str(tiny_teacher), tmp_path / "cut", callbacks=[CutOffAfterFirstCheckpoint()], **options)
    cut = TeacherFolder(tmp_path / "cut")
    assert not cut.is_finished and cut.can_resume(resolved_settings("rte", str(tiny_teacher), **{
        k: v for k, v in options.items() if k != "disable_tqdm"}))
    assert not cut.can_resume(resolved_settings("rte", str(tiny_teacher), seed=7))
    resumed = finetune("rte", str(tiny_teacher), tmp_path / "cut", resume=True, **options)
    assert [e["step"] for e in resumed["history"]] == [e["step"] for e in whole["history"]] == [4, 8]
    assert resumed["best"]["loss"] == pytest.approx(whole["best"]["loss"], rel=1e-5)
    assert resumed["best"]["accuracy"] == whole["best"]["accuracy"]
    assert cut.is_finished and not cut.checkpoints_dir.exists()
    with pytest.raises(FileNotFoundError, match="Nothing to resume"):
        finetune("rte", str(tiny_teacher), tmp_path / "cut", resume=True, **options)


def test_teacher_for_resumes_a_cut_off_fine_tuning(tiny_teacher, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(kdviz.finetune, "finetune", lambda *a, **kw: calls.append(kw) or
                        TeacherFolder(a[2]).write_metrics({}, ""))
    folder = TeacherFolder(tmp_path / "teachers" / "rte-offline-minilm-quick")
    folder.write_settings(resolved_settings("rte", "offline-minilm", train_subset=QUICK.train_subset,
                                            eval_subset=QUICK.eval_subset, epochs=QUICK.teacher_epochs,
                                            learning_rate=QUICK.teacher_learning_rate))
    (folder.checkpoints_dir / "checkpoint-32").mkdir(parents=True)
    teacher_for("rte", "offline-minilm", runs_dir=tmp_path, quick=True)
    assert calls[-1]["resume"] is True and calls[-1]["overwrite"] is False
