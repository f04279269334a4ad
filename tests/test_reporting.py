"""report_to: whatever transformers accepts (one name, several, all, none), refused up front when unknown or missing."""

import pytest
import transformers.integrations.integration_utils as integrations

from helpers import tiny_run_config
from kdviz.cli import main
from kdviz.config import DistillConfig
from kdviz.reporting import check_report_to, known_integrations, report_to_names


def test_names_as_transformers_takes_them():
    assert report_to_names("none") == [] and report_to_names([]) == [] and report_to_names("all") == ["all"]
    assert report_to_names("tensorboard, mlflow") == ["tensorboard", "mlflow"]
    assert report_to_names(["tensorboard", "wandb"]) == ["tensorboard", "wandb"]
    assert {"tensorboard", "wandb", "mlflow"} <= set(known_integrations())
    with pytest.raises(ValueError, match=r"\['tensorbored'\] not known to transformers; choose from .*'tensorboard'"):
        report_to_names("tensorbored")
    with pytest.raises(ValueError, match="not known"):
        report_to_names("none,tensorboard")


def test_an_integration_that_is_not_installed_names_its_package(monkeypatch):
    monkeypatch.setattr(integrations, "is_comet_available", lambda: False)
    with pytest.raises(ValueError, match="needs comet_ml, which is not installed: pip install comet-ml"):
        check_report_to(["tensorboard", "comet_ml"])
    assert check_report_to("tensorboard") == ["tensorboard"] and check_report_to("none") == "none"


def test_the_config_takes_a_name_several_or_a_list_and_refuses_the_rest(tiny_teacher, tmp_path):
    for value in ("tensorboard", "tensorboard,wandb", ["tensorboard", "wandb"], "all"):
        assert tiny_run_config(tiny_teacher, tmp_path, report_to=value).report_to == value
    with pytest.raises(ValueError, match="not known to transformers"):
        DistillConfig(teacher="t", report_to="tensorbored")
    with pytest.raises(ValueError, match="report_to=3 has the wrong type: give text or a list of names"):
        DistillConfig(teacher="t", report_to=3)


def test_finetune_logs_to_tensorboard_in_the_teacher_folder(tmp_path, real_glue_env, tiny_teacher):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    output = tmp_path / "teacher"
    assert main(["finetune", "--task", "sst2", "--model", str(tiny_teacher), "--output-dir", str(output),
                 "--train-subset", "32", "--eval-subset", "16", "--epochs", "1", "--batch-size", "8",
                 "--report-to", "tensorboard"]) == 0
    events = EventAccumulator(str(output / "logs")).Reload()
    assert {"eval/accuracy", "eval/loss"} <= set(events.Tags()["scalars"])  # logged each epoch
    assert main(["finetune", "--task", "sst2", "--model", str(tiny_teacher), "--output-dir", str(tmp_path / "t2"),
                 "--report-to", "tensorbored"]) == 2 and not (tmp_path / "t2").exists()
