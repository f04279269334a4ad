"""DistillConfig: every field checked for type and range when built; files; presets at a scale."""

import pytest

from kdviz.config import DistillConfig
from kdviz.recipes import QUICK, preset


def test_a_default_config_is_valid_and_round_trips_through_a_dict():
    config = DistillConfig()
    assert DistillConfig.from_dict(config.to_dict()) == config and config.task == "sst2"


@pytest.mark.parametrize("field, value, message", [
    ("epochs", "three", r"epochs='three' has the wrong type: give a number, e.g. epochs: 0.5"),
    ("batch_size", 3.5, r"batch_size=3.5 has the wrong type: give a whole number"),
    ("batch_size", True, r"batch_size=True has the wrong type"),
    ("anneal_temperature", "yes", r"anneal_temperature='yes' has the wrong type: give true or false"),
    ("student_layer_indices", [0, "5"], r"student_layer_indices=\[0, '5'\] has the wrong type: give a list"),
    ("train_subset", "all", r"train_subset='all' has the wrong type: give a whole number \(or null\)"),
    ("teacher", 3, r"teacher=3 has the wrong type: give text"),
])
def test_a_value_of_the_wrong_type_names_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        DistillConfig(**{field: value})


@pytest.mark.parametrize("field, value, message", [
    ("epochs", 0, r"epochs=0.0 is out of range: it must be above 0"),
    ("epochs", -1.5, r"epochs=-1.5 is out of range"),
    ("batch_size", 0, r"batch_size=0 is out of range: it must be 1 or more"),
    ("learning_rate", 0, r"learning_rate=0.0 is out of range"),
    ("beta", -1, r"beta=-1.0 is out of range: it must be 0 or more"),
    ("ig_steps", 0, r"ig_steps=0 is out of range"),
    ("alp_variant", "ckd", r"alp_variant='ckd' is not one of \['alp', 'alp-no', 'alp-po', 'skip', 'last'\]"),
    ("alp_score", "sqrt", r"alp_score='sqrt' is not one of \['sqrt_h', 'unscaled'\]"),
    ("pkd_mapping", "first", r"pkd_mapping='first' is not one of \['skip', 'last'\]"),
    ("w_pkd", -1, r"w_pkd=-1.0 is out of range"),
    ("best_metric", "pearson", r"best_metric='pearson' is not a metric of sst2: choose from \['accuracy'\]"),
    ("views", "all", r"views='all' is not one of"),
    ("task", "sst5", r"Unknown GLUE task 'sst5'"),
])
def test_a_value_out_of_range_names_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        DistillConfig(**{field: value})


def test_ints_widen_to_floats_and_cross_field_checks():
    config = DistillConfig(epochs=3, w_kd=1)
    assert isinstance(config.epochs, float) and config.w_kd == 1.0
    with pytest.raises(ValueError, match="ig_rule='trapezoid' needs ig_steps >= 2"):
        DistillConfig(ig_rule="trapezoid")


def test_run_readiness():
    with pytest.raises(ValueError, match="needs a teacher"):
        DistillConfig(w_kd=0.5).validate()
    with pytest.raises(ValueError, match="Every loss weight is zero"):
        DistillConfig(w_ce=0).validate()
    assert DistillConfig(teacher="t", w_kd=0.5).validate().method_terms == ["ce", "kd"]


def test_unknown_field():
    with pytest.raises(ValueError, match=r"Unknown config field\(s\) \['bta'\]"):
        DistillConfig.from_dict({"bta": 1.0})


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_config_files_round_trip(tmp_path, suffix):
    config = DistillConfig.from_dict({**preset("adkd+alp/mrpc"), "teacher": "t", "student_layer_indices": [0, 5]})
    config.save(tmp_path / f"run{suffix}")
    assert DistillConfig.from_file(tmp_path / f"run{suffix}") == config


def test_config_files_with_bad_values_are_refused(tmp_path):
    (tmp_path / "bad.yaml").write_text("epochs: three\n")
    with pytest.raises(ValueError, match="epochs='three' has the wrong type"):
        DistillConfig.from_file(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- epochs\n")
    with pytest.raises(ValueError, match="must hold a mapping of field: value"):
        DistillConfig.from_file(tmp_path / "list.yaml")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        DistillConfig.from_file(tmp_path / "missing.yaml")


def test_presets_at_the_quick_and_full_scale():
    quick = DistillConfig.from_preset("adkd/rte", quick=True, teacher="t", student_layers=3)
    full = DistillConfig.from_preset("adkd/rte", quick=False, teacher="t")
    assert (quick.train_subset, quick.eval_subset, quick.epochs) == (QUICK.train_subset, QUICK.eval_subset, 1)
    assert quick.student_layers == 3 and quick.beta == full.beta == 10
    assert (full.train_subset, full.epochs, full.learning_rate) == (None, 12, 2e-5)  # the paper's RTE recipe


def test_data_seed_defaults_to_the_seed():
    assert DistillConfig(seed=43).subset_seed == 43
    assert DistillConfig(seed=43, data_seed=42).subset_seed == 42


def test_attribution_settings_resolve_the_views():
    config = DistillConfig(ig_steps=4, ig_rule="middle", top_k=100, ig_step_chunk=2)
    settings = config.attribution_settings(num_labels=2)
    assert (settings.views, settings.steps, settings.rule, settings.top_k, settings.step_chunk) == \
        ("gold", 4, "middle", 100, 2)
    assert config.attribution_settings(num_labels=3).views == "classes"


def test_the_retired_bf16_field_reads_as_the_precision_it_trained_in():
    base = {"task": "sst2", "teacher": "t", "w_kd": 1.0}
    assert DistillConfig.from_dict({**base, "bf16": True}).precision == "bf16"
    assert DistillConfig.from_dict({**base, "bf16": False}).precision == "fp32"
    assert DistillConfig.from_dict(base).precision == "auto"
