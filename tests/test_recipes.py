"""The papers' numbers: presets, teacher recipes, the quick and full scales."""

import pytest

from kdviz.config import DistillConfig
from kdviz.recipes import (METHODS, QUICK, STUDENT_RECIPES, TEACHER_RECIPES, preset, preset_names, quick_mode,
                           scale)


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


def test_methods_switch_their_terms():
    assert preset("ft/rte")["w_kd"] == preset("ft/rte")["beta"] == preset("ft/rte")["lam"] == 0
    assert preset("pkd/rte")["w_pkd"] == 100 and preset("pkd/rte")["lam"] == 0 and preset("pkd/rte")["beta"] == 0
    assert preset("ckd/rte")["w_ckd"] == 1.0 and preset("ckd/rte")["w_pkd"] == 0
    assert preset("skip-mse/rte")["alp_variant"] == "skip" and preset("skip-mse/rte")["lam"] == 1.0
    assert preset("alp-no/rte")["alp_variant"] == "alp-no" and preset("alp-no/rte")["lam"] == 1.0
    both = preset("adkd+alp/rte")
    assert both["beta"] == 10 and both["lam"] == 1.0 and both["alp_variant"] == "alp"
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
    assert (adkd["batch_size"], adkd["epochs"], adkd["learning_rate"], adkd["w_kd"], adkd["temperature"],
            adkd["beta"]) == (32, 6, 5e-5, 0.8, 2, 1)
    assert preset("paper-adkd/stsb")["best_metric"] == "spearman" and preset("paper-adkd/mrpc")["best_metric"] is None
    alp = preset("paper-alp/sst2")
    assert (alp["teacher"], alp["student_layers"], alp["epochs"], alp["batch_size"], alp["alp_score"]) == \
        ("bert-base-uncased", 4, 20, 32, "unscaled")
    assert alp["lam"] == 1000 / 4 and alp["alp_variant"] == "alp"
    with pytest.raises(ValueError, match=r"paper-alp covers the paper's tasks \['sst2', 'mrpc', 'cola', 'qnli', "
                                         r"'rte'\], not 'stsb'"):
        preset("paper-alp/stsb")
