"""Where the views' numbers come from: live models (any task, captum included) and replayed run folders."""

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from helpers import tiny_bert, tiny_run_config
from kdviz.attribution import AttributionSettings
from kdviz.data import load_glue
from kdviz.distill import distill
from kdviz.frozen_attribution import frozen_token_scores
from kdviz.runs import load_run
from kdviz.viz.sources import LiveAttributionSource, RunAttributionSource, layer_attention_from_run


@pytest.fixture(scope="module")
def stsb_source(fixture_glue_dir, offline_teacher_dir):
    tokenizer = AutoTokenizer.from_pretrained(offline_teacher_dir)
    dev = load_glue("stsb", fixture_glue_dir, splits=("validation",))["validation"]
    teacher, student = tiny_bert(num_labels=1, seed=1), tiny_bert(num_labels=1, layers=2, seed=2)
    return LiveAttributionSource(teacher, student, tokenizer, dev, "stsb")


@pytest.mark.parametrize("method", ["input_x_gradient", "integrated_gradients", "deeplift"])
def test_captum_rows_of_a_regression_task_attribute_the_gold_view(stsb_source, method):
    """STS-B has one output: captum gets kdviz's gold view (the score's squared error), not a softmax."""
    scores = stsb_source.scores(0, "teacher", 0, 1, method)
    assert np.isfinite(scores).all() and np.linalg.norm(scores) == pytest.approx(1.0, abs=1e-5)
    if method == "input_x_gradient":  # the same quantity as kdviz's IG with one step
        np.testing.assert_allclose(scores, stsb_source.scores(0, "teacher", 0, 1), atol=1e-5)


def test_live_scores_match_the_frozen_token_scores_of_each_model(stsb_source):
    example = stsb_source.examples[1]
    label = torch.tensor([float(example.label)])
    expected = frozen_token_scores(stsb_source.models["student"], example.inputs, label,
                                   AttributionSettings(views="gold", steps=8)).scores[0, 0].numpy()
    np.testing.assert_allclose(stsb_source.scores(1, "student", 0, 8), expected, rtol=1e-6)
    teacher_probs, student_probs = stsb_source.probabilities()
    assert teacher_probs.shape == student_probs.shape == (2, 1)  # regression: the scores themselves
    assert stsb_source.view_names == ["gold (squared error)"] and stsb_source.training_steps is None


def test_a_run_source_replays_the_probe_set(tiny_teacher, tmp_path, real_glue_env):
    distill(tiny_run_config(tiny_teacher, tmp_path / "run", epochs=1, logging_steps=1, probe_size=3))
    run = load_run(tmp_path / "run")
    source = RunAttributionSource(run)
    assert source.training_steps == [0, 1, 2, 3, 4] and source.view_names == ["gold label"] and not source.captum
    length = len(run.probe[2].tokens)
    np.testing.assert_array_equal(source.scores(2, "student", 0, 1, training_step=2),
                                  run.probe_student[2].scores[2, 0, :length].numpy())
    assert source.signed
    signed = source.scores(2, "teacher", 0, 1, signed=True)
    np.testing.assert_array_equal(signed, run.probe_teacher.signed[2, :length].numpy())
    assert (signed > 0).any() and (signed < 0).any() and np.linalg.norm(signed) == pytest.approx(1.0, abs=1e-5)
    _, student_probs = source.probabilities(training_step=1)
    np.testing.assert_allclose(student_probs, torch.softmax(run.probe_student[1].logits, -1).numpy())
    data = layer_attention_from_run(run)
    assert [step for step, _ in data.history] == [0, 1, 2, 3, 4] and data.mask.shape == (2, 4)  # 0: before training


def test_a_run_without_probe_or_alp_is_refused_with_the_reason(tiny_teacher, tmp_path, real_glue_env):
    distill(tiny_run_config(tiny_teacher, tmp_path / "kd", method="kd", epochs=1, probe_size=0))
    with pytest.raises(ValueError, match="no probe attributions"):
        RunAttributionSource(tmp_path / "kd")
    with pytest.raises(ValueError, match="no ALP weights"):
        layer_attention_from_run(tmp_path / "kd")
