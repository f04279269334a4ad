"""Attributions of frozen models: the saved result type, and the one token-score function everything uses."""

import torch

from helpers import make_batch, tiny_bert
from kdviz.attribution import AttributionSettings, integrated_gradients, token_scores
from kdviz.frozen_attribution import Attribution, attribute, frozen_token_scores


def test_result_saves_and_loads(tmp_path):
    model = tiny_bert(num_labels=3)
    result = attribute(model, make_batch(True), settings=AttributionSettings(views="classes", steps=2))
    result.tokens = [["[CLS]", "<b>"], ["a"], ["b"]]
    result.save(tmp_path / "a.safetensors")
    loaded = Attribution.load(tmp_path / "a.safetensors")
    torch.testing.assert_close(loaded.attributions, result.attributions)
    torch.testing.assert_close(loaded.targets, result.targets)
    assert loaded.views == ["class 0", "class 1", "class 2"] and loaded.tokens == result.tokens
    assert (loaded.steps, loaded.rule) == (2, "right")


def test_frozen_token_scores_apply_top_k_and_keep_no_graph():
    model = tiny_bert(num_labels=2).train()  # a student being trained is scored as it is, mode untouched
    batch, labels = make_batch(True), torch.tensor([1, 0, 1])
    settings = AttributionSettings(views="gold", steps=3, top_k=5)
    result = frozen_token_scores(model, batch, labels, settings, output_hidden_states=True)
    raw = integrated_gradients(model, batch, labels, settings).attributions
    torch.testing.assert_close(result.scores, token_scores(raw, batch["attention_mask"], top_k=5))
    assert not result.scores.requires_grad and not result.logits.requires_grad
    assert len(result.hidden_states) == 5 and model.training
    student = frozen_token_scores(model, batch, labels, settings.for_student())
    torch.testing.assert_close(student.scores, token_scores(raw, batch["attention_mask"]))
    assert not torch.allclose(student.scores, result.scores)  # K = 5 of 32 dimensions changes the scores


def test_settings_result_fields_leave_out_the_step_chunk():
    settings = AttributionSettings(views="classes", steps=8, rule="middle", top_k=7, step_chunk=2)
    assert settings.result_fields() == {"views": "classes", "steps": 8, "rule": "middle", "top_k": 7}
    assert settings.for_student().top_k is None and settings.for_student().step_chunk == 2
