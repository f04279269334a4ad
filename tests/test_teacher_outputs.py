"""The teacher's outputs per batch: exactly what the terms need, from the cache where it has them."""

import torch
from transformers import AutoTokenizer

from helpers import tiny_bert
from kdviz.attribution import AttributionSettings
from kdviz.data import load_glue, tokenize_glue
from kdviz.frozen_attribution import frozen_token_scores
from kdviz.loss_terms import HIDDEN_STATES, LOGITS, TOKEN_SCORES
from kdviz.teacher_cache import compute_teacher_cache
from kdviz.teacher_outputs import TeacherOutputSource


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


def test_live_teacher_gives_only_what_is_needed(glue_dir, offline_teacher_dir):
    tokenizer = AutoTokenizer.from_pretrained(offline_teacher_dir)
    _, inputs, labels, idx = batch_of(glue_dir, tokenizer)
    teacher = tiny_bert()
    calls = counted(teacher)
    source = TeacherOutputSource(teacher, AttributionSettings(top_k=20))
    logits_only = source(inputs, labels, idx, frozenset({LOGITS}))
    assert logits_only.token_scores is None and logits_only.hidden_states is None and len(calls) == 1
    with torch.no_grad():
        torch.testing.assert_close(logits_only.logits, teacher(**inputs).logits)
    calls.clear()
    everything = source(inputs, labels, idx, frozenset({LOGITS, TOKEN_SCORES, HIDDEN_STATES}))
    assert len(calls) == 1  # the attribution pass gives logits and hidden states too (m = 1, right rule)
    expected = frozen_token_scores(teacher, inputs, labels, AttributionSettings(top_k=20))
    torch.testing.assert_close(everything.token_scores, expected.scores)
    assert len(everything.hidden_states) == 5 and not everything.token_scores.requires_grad


def test_cached_teacher_runs_no_pass_for_scores_and_logits(glue_dir, offline_teacher_dir):
    tokenizer = AutoTokenizer.from_pretrained(offline_teacher_dir)
    train, inputs, labels, idx = batch_of(glue_dir, tokenizer)
    teacher, settings = tiny_bert(), AttributionSettings(top_k=20)
    cache = compute_teacher_cache(teacher, train, tokenizer, settings)
    calls = counted(teacher)
    source = TeacherOutputSource(teacher, settings, cache)
    cached = source(inputs, labels, idx, frozenset({LOGITS, TOKEN_SCORES}))
    assert calls == []
    live = TeacherOutputSource(teacher, settings)(inputs, labels, idx, frozenset({LOGITS, TOKEN_SCORES}))
    torch.testing.assert_close(cached.token_scores, live.token_scores, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cached.logits, live.logits, rtol=1e-5, atol=1e-6)
    calls.clear()
    with_hidden = source(inputs, labels, idx, frozenset({LOGITS, TOKEN_SCORES, HIDDEN_STATES}))
    assert len(calls) == 1 and with_hidden.token_scores is not None  # hidden states are not cached (yet)
