"""The papers' numbers: presets, teacher recipes, the quick and full scales."""

import pytest

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
    assert (scale() is QUICK) is expected
    assert scale(quick=True).is_quick and not scale(quick=False).is_quick
