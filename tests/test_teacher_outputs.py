"""The teacher's outputs per batch: exactly what the terms need; every loss term on cached outputs as on live ones."""

import pytest
import torch
from transformers import AutoTokenizer

from helpers import tiny_bert
from kdviz.attribution import AttributionSettings
from kdviz.config import DistillConfig, merge_config_values
from kdviz.data import load_glue, tokenize_glue
from kdviz.frozen_attribution import frozen_token_scores
from kdviz.loss_terms import CLS_STATES, HIDDEN_STATES, LOGITS, TOKEN_SCORES, LossContext
from kdviz.models import build_student
from kdviz.objective import DistillationModel, DistillationObjective
from kdviz.recipes import preset
from kdviz.teacher_cache import load_or_build_teacher_cache
from kdviz.teacher_outputs import TeacherOutputSource

CACHED_TERM_TOLERANCE = 2e-3
"""Relative difference allowed between a loss term on cached (float16-stored) teacher outputs and on
live ones: float16 keeps a relative error of 2**-11 per value, and a term's value is a sum of many."""


def counted(model):
    calls = []
    model.register_forward_hook(lambda *args: calls.append(1))
    return calls


def batch_of(glue_dir, tokenizer, size=6):
    train = tokenize_glue(load_glue("sst2", glue_dir, splits=("train",), train_subset=size, seed=3), tokenizer,
                          "sst2")["train"]
    padded = tokenizer.pad({k: train[k] for k in ("input_ids", "token_type_ids", "attention_mask")},
                           return_tensors="pt")
    return train, dict(padded), torch.tensor(train["label"]), torch.tensor(train["idx"])


@pytest.fixture(scope="module")
def tokenizer(offline_teacher_dir):
    return AutoTokenizer.from_pretrained(offline_teacher_dir)


def test_live_teacher_gives_only_what_is_needed(glue_dir, tokenizer):
    _, inputs, labels, idx = batch_of(glue_dir, tokenizer)
    teacher = tiny_bert()
    calls = counted(teacher)
    source = TeacherOutputSource(teacher, AttributionSettings(top_k=20))
    assert source.runs_teacher
    logits_only = source(inputs, labels, idx, frozenset({LOGITS}))
    assert logits_only.token_scores is None and logits_only.hidden_states is None and len(calls) == 1
    with torch.no_grad():
        torch.testing.assert_close(logits_only.logits, teacher(**inputs).logits)
    calls.clear()
    everything = source(inputs, labels, idx, frozenset({LOGITS, TOKEN_SCORES, CLS_STATES}))
    assert len(calls) == 1  # the attribution pass gives logits and hidden states too (m = 1, right rule)
    expected = frozen_token_scores(teacher, inputs, labels, AttributionSettings(top_k=20))
    torch.testing.assert_close(everything.token_scores, expected.scores)
    assert len(everything.hidden_states) == 5 and not everything.token_scores.requires_grad


def test_a_cached_source_runs_no_pass_and_refuses_what_its_cache_lacks(tmp_path, glue_dir, tokenizer):
    train, inputs, labels, idx = batch_of(glue_dir, tokenizer)
    teacher, settings = tiny_bert(), AttributionSettings(top_k=20)
    needs = frozenset({LOGITS, TOKEN_SCORES, CLS_STATES})
    cache = load_or_build_teacher_cache(teacher, train, tokenizer, needs, settings, {}, cache_dir=tmp_path,
                                        progress=False)
    calls = counted(teacher)
    source = TeacherOutputSource(teacher, settings, cache)
    cached = source(inputs, labels, idx, needs)
    assert calls == [] and not source.runs_teacher and cached.hidden_states[0].shape[1] == 1
    with pytest.raises(ValueError, match="holds no \\['hidden_states'\\]"):
        source(inputs, labels, idx, frozenset({HIDDEN_STATES}))
    with pytest.raises(ValueError, match="no 'idx' column"):
        source(inputs, labels, None, needs)


@pytest.mark.parametrize("method, overrides", [
    ("kd", {}), ("pkd", {}), ("ckd", {}), ("alp", {}), ("alp", {"terms": {"layer_projection": {"representation": "tokens"}}}),
    ("adkd+alp", {}), ("adkd", {"views": "classes", "ig_steps": 2})])
def test_every_loss_term_on_cached_outputs_equals_the_live_teachers(tmp_path, glue_dir, tokenizer, method,
                                                                    overrides):
    train, inputs, labels, idx = batch_of(glue_dir, tokenizer, size=8)
    teacher = tiny_bert(num_labels=2, layers=4)
    config = DistillConfig.from_dict(merge_config_values(preset(f"{method}/sst2"), {"top_k": 20}, overrides))
    student = build_student(teacher, 2)
    objective = DistillationObjective.from_config(config, student.config, teacher.config)
    model = DistillationModel(student, objective, config.attribution_settings(2)).eval()
    settings = config.attribution_settings(2)
    cache = load_or_build_teacher_cache(teacher, train, tokenizer, objective.teacher_needs, settings, {},
                                        cache_dir=tmp_path, progress=False)
    student_outputs = model.student_outputs(inputs, labels)
    context = LossContext(labels, inputs["attention_mask"])
    values = {}
    for name, source in (("cached", TeacherOutputSource(teacher, settings, cache)),
                         ("live", TeacherOutputSource(teacher, settings))):
        values[name] = objective(student_outputs, source(inputs, labels, idx, objective.teacher_needs), context).terms
    assert values["cached"].keys() == values["live"].keys() and len(values["live"]) >= 2
    for term, live in values["live"].items():
        torch.testing.assert_close(values["cached"][term], live, rtol=CACHED_TERM_TOLERANCE, atol=1e-7, msg=term)
