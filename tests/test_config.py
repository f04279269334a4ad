"""DistillConfig: every field checked for type and range when built; the terms block and kdviz 0.x's flat
fields; files; presets at a scale."""

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
    ("student_layer_indices", [0, "5"], r"student_layer_indices=\[0, '5'\] has the wrong type: give a list"),
    ("train_subset", "all", r"train_subset='all' has the wrong type: give a whole number \(or null\)"),
    ("teacher", 3, r"teacher=3 has the wrong type: give text"),
])
def test_a_value_of_the_wrong_type_names_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        DistillConfig(**{field: value})


@pytest.mark.parametrize("term, values, message", [
    ("kd", {"anneal": "yes"}, r"terms.kd.anneal='yes' has the wrong type: give true or false"),
    ("attribution", {"weight": -1}, r"terms.attribution.weight=-1.0 is out of range: it must be 0 or more"),
    ("layer_projection", {"variant": "ckd"},
     r"terms.layer_projection.variant='ckd' is not one of \['alp', 'alp-no', 'alp-po', 'skip', 'last'\]"),
    ("layer_projection", {"score": "sqrt"}, r"terms.layer_projection.score='sqrt' is not one of \['sqrt_h', 'unscaled'\]"),
    ("pkd", {"mapping": "first"}, r"terms.pkd.mapping='first' is not one of \['skip', 'last'\]"),
    ("pkd", {"weight": -1}, r"terms.pkd.weight=-1.0 is out of range"),
    ("kd", {"temperature": 0}, r"terms.kd.temperature=0.0 is out of range: it must be above 0"),
    ("kd", {"temp": 2}, r"Unknown option\(s\) \['temp'\] of loss term 'kd': its options are \['weight', 'temperature', "
                        r"'anneal'\]"),
    ("kd", 0.5, r"terms.kd must be a mapping of option: value, e.g. terms: \{kd: \{weight: 0.5\}\}"),
    ("toy", {"weight": 1}, r"Unknown loss term\(s\) \['toy'\] in terms: the registered ones are \['ce', 'kd', "
                           r".*listed in plugins"),
])
def test_a_term_option_of_the_wrong_type_or_range_names_the_term_and_option(term, values, message):
    with pytest.raises(ValueError, match=message):
        DistillConfig(terms={term: values})


def test_a_term_left_out_keeps_its_defaults_and_to_dict_keeps_what_is_on_or_set():
    config = DistillConfig(teacher="t", terms={"kd": {"weight": 0.5, "temperature": 2}, "pkd": {"mapping": "last"}})
    assert config.method_terms == ["ce", "kd"] and config.terms["ce"].weight == 1.0
    assert config.terms["kd"].temperature == 2.0 and config.terms["attribution"].weight == 0.0
    assert config.to_dict()["terms"] == {"ce": {"weight": 1.0}, "kd": {"weight": 0.5, "temperature": 2.0, "anneal": False},
                                         "pkd": {"weight": 0.0, "mapping": "last"}}
    assert DistillConfig.from_dict(config.to_dict()) == config


def test_the_flat_fields_of_kdviz_0x_are_read_into_the_terms_with_a_deprecation_warning():
    flat = {"teacher": "t", "w_ce": 0.2, "w_kd": 0.8, "temperature": 2, "anneal_temperature": True, "beta": 10,
            "attr_distance": "l1", "lam": 1.0, "alp_variant": "alp-no", "alp_representation": "tokens",
            "alp_include_embeddings": True, "alp_overlap": 2, "alp_score": "unscaled", "w_pkd": 100,
            "pkd_mapping": "last", "w_ckd": 1.0}
    with pytest.warns(FutureWarning, match=r"deprecated and read until 2027-06-30: w_ce -> terms.ce.weight, "
                                           r"w_kd -> terms.kd.weight, temperature -> terms.kd.temperature"):
        old = DistillConfig.from_dict(flat)
    new = DistillConfig(teacher="t", terms={
        "ce": {"weight": 0.2}, "kd": {"weight": 0.8, "temperature": 2, "anneal": True},
        "attribution": {"weight": 10, "distance": "l1"},
        "layer_projection": {"weight": 1.0, "variant": "alp-no", "representation": "tokens", "include_embeddings": True,
                             "overlap": 2, "score": "unscaled"},
        "pkd": {"weight": 100, "mapping": "last"}, "ckd": {"weight": 1.0}})
    assert old == new
    with pytest.warns(FutureWarning, match="beta -> terms.attribution.weight"):
        assert DistillConfig(teacher="t", beta=10, attr_distance="l1").terms["attribution"] == new.terms["attribution"]
    with pytest.warns(FutureWarning, match="alp_variant -> terms.layer_projection.variant"):
        assert old.alp_variant == "alp-no"  # reading a flat field too
    with pytest.raises(ValueError, match=r"w_kd=0.3 and terms.kd.weight=0.8 disagree: keep terms.kd.weight only"), \
            pytest.warns(FutureWarning):
        DistillConfig(teacher="t", w_kd=0.3, terms={"kd": {"weight": 0.8}})
    with pytest.raises(AttributeError, match="no attribute 'bta'"):
        old.bta


def test_a_later_layer_overrides_one_option_of_a_term_and_keeps_the_others():
    from kdviz.config import merge_config_values

    merged = merge_config_values(preset("adkd/sst2"), {"terms": {"kd": {"temperature": 4}}}, {"epochs": 2})
    config = DistillConfig.from_dict({**merged, "teacher": "t"})
    assert (config.terms["kd"].weight, config.terms["kd"].temperature, config.epochs) == (0.8, 4.0, 2.0)
    with pytest.warns(FutureWarning):  # a flat field in a later layer beats the preset's block
        assert DistillConfig.from_dict({**merge_config_values(preset("adkd/sst2"), {"beta": 3}), "teacher": "t"}) \
            .terms["attribution"].weight == 3.0


@pytest.mark.parametrize("field, value, message", [
    ("epochs", 0, r"epochs=0.0 is out of range: it must be above 0"),
    ("epochs", -1.5, r"epochs=-1.5 is out of range"),
    ("batch_size", 0, r"batch_size=0 is out of range: it must be 1 or more"),
    ("learning_rate", 0, r"learning_rate=0.0 is out of range"),
    ("ig_steps", 0, r"ig_steps=0 is out of range"),
    ("best_metric", "pearson", r"best_metric='pearson' is not a metric of sst2: choose from \['accuracy'\]"),
    ("views", "all", r"views='all' is not one of"),
    ("task", "sst5", r"Unknown GLUE task 'sst5'"),
])
def test_a_value_out_of_range_names_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        DistillConfig(**{field: value})


def test_ints_widen_to_floats_and_cross_field_checks():
    config = DistillConfig(epochs=3, terms={"kd": {"weight": 1}})
    assert isinstance(config.epochs, float) and config.terms["kd"].weight == 1.0
    assert isinstance(config.terms["kd"].weight, float)
    with pytest.raises(ValueError, match="ig_rule='trapezoid' needs ig_steps >= 2"):
        DistillConfig(ig_rule="trapezoid")


def test_run_readiness():
    with pytest.raises(ValueError, match="needs a teacher"):
        DistillConfig(terms={"kd": {"weight": 0.5}}).validate()
    with pytest.raises(ValueError, match="Every loss term's weight is zero: turn one on"):
        DistillConfig(terms={"ce": {"weight": 0}}).validate()
    assert DistillConfig(teacher="t", terms={"kd": {"weight": 0.5}}).validate().method_terms == ["ce", "kd"]


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
    assert quick.student_layers == 3 and quick.terms["attribution"].weight == full.terms["attribution"].weight == 10
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
    base = {"task": "sst2", "teacher": "t", "terms": {"kd": {"weight": 1.0}}}
    assert DistillConfig.from_dict({**base, "bf16": True}).precision == "bf16"
    assert DistillConfig.from_dict({**base, "bf16": False}).precision == "fp32"
    assert DistillConfig.from_dict(base).precision == "auto"
