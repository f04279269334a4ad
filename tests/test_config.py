import pytest

from kdviz.cli import build_parser, config_from_arguments
from kdviz.config import DistillConfig, preset, preset_names


def test_adkd_presets_carry_the_released_hyperparameters():
    sst2 = preset("adkd/sst2")
    assert (sst2["batch_size"], sst2["epochs"], sst2["learning_rate"]) == (32, 6, 5e-5)
    assert (sst2["w_kd"], sst2["w_ce"], sst2["temperature"], sst2["beta"], sst2["top_k"]) == (0.8, 0.2, 2, 1, 768)
    assert not sst2["anneal_temperature"] and sst2["lam"] == 0
    mnli = preset("adkd/mnli")
    assert (mnli["batch_size"], mnli["epochs"], mnli["beta"], mnli["temperature"], mnli["anneal_temperature"]) == \
        (64, 6, 10, 3, True)
    qqp = preset("adkd/qqp")
    assert (qqp["w_kd"], qqp["w_ce"], qqp["top_k"], qqp["beta"]) == (1.0, 0.0, 734, 50)
    assert preset("adkd/rte")["top_k"] == 700 and preset("adkd/stsb")["top_k"] == 640


def test_method_presets_switch_terms():
    assert DistillConfig.from_dict({**preset("ft/rte")}).method_terms == ["ce"]
    assert DistillConfig.from_dict(preset("kd/rte")).method_terms == ["ce", "kd"]
    assert preset("pkd/rte")["alp_variant"] == "pkd-skip" and preset("pkd/rte")["beta"] == 0
    assert DistillConfig.from_dict(preset("alp/rte")).method_terms == ["ce", "kd", "layer_projection"]
    both = DistillConfig.from_dict(preset("adkd+alp/rte"))
    assert both.method_terms == ["ce", "kd", "attribution", "layer_projection"] and both.alp_variant == "alp"
    assert len(preset_names()) == 7 * 8


def test_unknown_preset_and_field():
    with pytest.raises(ValueError, match="Unknown preset method 'tinybert'"):
        preset("tinybert/sst2")
    with pytest.raises(ValueError, match="Unknown GLUE task"):
        preset("kd/sst5")
    with pytest.raises(ValueError, match=r"Unknown config field\(s\) \['bta'\]"):
        DistillConfig.from_dict({"bta": 1.0})


def test_validation_names_the_field():
    with pytest.raises(ValueError, match="alp_variant='ckd'"):
        DistillConfig(alp_variant="ckd", teacher="t").validate()
    with pytest.raises(ValueError, match="needs a teacher"):
        DistillConfig(w_kd=0.5).validate()


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_config_files_round_trip(tmp_path, suffix):
    config = DistillConfig.from_dict({**preset("adkd+alp/mrpc"), "teacher": "t", "student_layer_indices": [0, 5]})
    config.save(tmp_path / f"run{suffix}")
    assert DistillConfig.from_file(tmp_path / f"run{suffix}") == config


def test_command_line_precedence_preset_then_file_then_options(tmp_path):
    (tmp_path / "run.yaml").write_text("beta: 3.0\nepochs: 2\nteacher: from_file\n")
    args = build_parser().parse_args(["distill", "--preset", "adkd/rte", "--config", str(tmp_path / "run.yaml"),
                                      "--epochs", "1", "--anneal-temperature", "true",
                                      "--student-layer-indices", "0", "5"])
    config = config_from_arguments(args)
    assert config.task == "rte" and config.learning_rate == 2e-5  # preset
    assert config.beta == 3.0 and config.teacher == "from_file"  # file
    assert config.epochs == 1.0 and config.anneal_temperature is True  # options
    assert config.student_layer_indices == [0, 5]
