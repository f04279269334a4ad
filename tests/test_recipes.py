"""The papers' numbers: presets, teacher recipes, the quick and full scales."""

import pytest

from kdviz.config import DistillConfig
from kdviz.recipes import (METHODS, QUICK, STUDENT_RECIPES, TEACHER_RECIPES, preset, preset_names, quick_mode,
                           scale)


def terms(name):
    """A preset's loss terms, every one resolved (weights of terms left out: their defaults)."""
    return DistillConfig.from_dict(preset(name)).terms


def test_adkd_presets_carry_the_released_hyperparameters():
    sst2, sst2_terms = preset("adkd/sst2"), terms("adkd/sst2")
    assert (sst2["batch_size"], sst2["epochs"], sst2["learning_rate"], sst2["top_k"]) == (32, 6, 5e-5, 768)
    assert (sst2_terms["kd"].weight, sst2_terms["ce"].weight, sst2_terms["kd"].temperature,
            sst2_terms["attribution"].weight) == (0.8, 0.2, 2, 1)
    assert not sst2_terms["kd"].anneal and sst2_terms["layer_projection"].weight == 0
    mnli = terms("adkd/mnli")
    assert preset("adkd/mnli")["batch_size"] == 64 and preset("adkd/mnli")["epochs"] == 6
    assert (mnli["attribution"].weight, mnli["kd"].temperature, mnli["kd"].anneal) == (10, 3, True)
    qqp = terms("adkd/qqp")
    assert (qqp["kd"].weight, qqp["ce"].weight, preset("adkd/qqp")["top_k"], qqp["attribution"].weight) == \
        (1.0, 0.0, 734, 50)
    assert preset("adkd/rte")["top_k"] == 700 and preset("adkd/stsb")["top_k"] == 640


def test_methods_switch_their_terms():
    weights = lambda name: {term: options.weight for term, options in terms(name).items()}
    assert weights("ft/rte") == {"ce": 1.0, "kd": 0, "attribution": 0, "layer_projection": 0, "pkd": 0, "ckd": 0}
    assert weights("pkd/rte")["pkd"] == 100 and weights("pkd/rte")["layer_projection"] == weights("pkd/rte")["attribution"] == 0
    assert weights("ckd/rte")["ckd"] == 1.0 and weights("ckd/rte")["pkd"] == 0
    assert terms("skip-mse/rte")["layer_projection"].variant == "skip" and weights("skip-mse/rte")["layer_projection"] == 1
    assert terms("alp-no/rte")["layer_projection"].variant == "alp-no" and weights("alp-no/rte")["layer_projection"] == 1
    both = terms("adkd+alp/rte")
    assert (both["attribution"].weight, both["layer_projection"].weight, both["layer_projection"].variant) == \
        (10, 1.0, "alp")
    assert METHODS == ("ft", "kd", "pkd", "ckd", "skip-mse", "alp", "alp-no", "adkd", "adkd+alp")
    assert len(preset_names()) == 9 * 8 + 8 + 5 and preset("kd") == preset("kd/sst2")


def test_unknown_preset():
    with pytest.raises(ValueError, match="Unknown preset method 'tinybert'"):
        preset("tinybert/sst2")
    with pytest.raises(ValueError, match="Unknown GLUE task"):
        preset("kd/sst5")
    with pytest.raises(ValueError, match="No recipe for 'wnli'"):
        preset("kd/wnli")


def test_teacher_recipes_cover_every_student_recipe():
    assert set(STUDENT_RECIPES) <= set(TEACHER_RECIPES)
    assert (TEACHER_RECIPES["stsb"].batch_size, TEACHER_RECIPES["rte"].learning_rate) == (4, 5e-5)


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("YES", True), ("0", False), ("", False)])
def test_quick_mode_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("KDVIZ_QUICK", value)
    assert quick_mode() is expected
    assert quick_mode(default=True) is (value != "0")  # only an explicit 0/false/no overrides a default of True
    assert (scale() is QUICK) is expected
    assert scale(quick=True).is_quick and not scale(quick=False).is_quick


def test_every_listed_preset_loads_and_validates_offline(capsys):
    from kdviz.cli import main

    assert main(["distill", "--list-presets"]) == 0
    listed = capsys.readouterr().out.split()
    assert listed == preset_names()
    assert {"pkd/sst2", "ckd/rte", "paper-adkd/stsb", "paper-alp/cola"} <= set(listed)
    for name in listed:
        teacher = {} if name.startswith("paper-") else {"teacher": "teachers/t"}
        config = DistillConfig.from_preset(name, quick=False, **teacher)  # validate() runs; no model is loaded
        assert config.task == name.split("/")[1]


def test_paper_presets_follow_the_papers():
    adkd = preset("paper-adkd/sst2")
    assert adkd["teacher"] == "Brucewsy/AD-KD_bert_base_uncased_sst-2"
    assert adkd["student_init"] == "google/bert_uncased_L-6_H-768_A-12" and adkd["ig_steps"] == 1
    adkd_terms = terms("paper-adkd/sst2")
    assert (adkd["batch_size"], adkd["epochs"], adkd["learning_rate"], adkd_terms["kd"].weight,
            adkd_terms["kd"].temperature, adkd_terms["attribution"].weight) == (32, 6, 5e-5, 0.8, 2, 1)
    assert preset("paper-adkd/stsb")["best_metric"] == "spearman" and preset("paper-adkd/mrpc")["best_metric"] is None
    alp = preset("paper-alp/sst2")
    projection = terms("paper-alp/sst2")["layer_projection"]
    assert (alp["teacher"], alp["student_layers"], alp["epochs"], alp["batch_size"], projection.score) == \
        ("bert-base-uncased", 4, 20, 32, "unscaled")
    assert projection.weight == 1000 / 4 and projection.variant == "alp"
    with pytest.raises(ValueError, match=r"paper-alp covers the paper's tasks \['sst2', 'mrpc', 'cola', 'qnli', "
                                         r"'rte'\], not 'stsb'"):
        preset("paper-alp/stsb")
