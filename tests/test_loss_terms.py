"""The named loss terms: what each needs, what it computes, what it records."""

import math

import pytest
import torch

from helpers import tiny_bert_config
from kdviz.config import DistillConfig
from kdviz.loss_terms import (CLS_STATES, HIDDEN_STATES, LOGITS, TERMS, TOKEN_SCORES, AttributionTerm,
                              KnowledgeDistillationTerm, LayerProjectionOptions, LayerProjectionTerm, LossContext,
                              ModelOutputs, TaskTerm, attention_spread, student_needs)
from kdviz.losses import attribution_loss, kd_loss, task_loss
from kdviz.recipes import preset


def test_registry_order_and_needs():
    assert list(TERMS) == ["ce", "kd", "attribution", "layer_projection", "pkd", "ckd"]
    assert TaskTerm.teacher_needs == frozenset() and KnowledgeDistillationTerm.teacher_needs == {LOGITS}
    assert AttributionTerm.teacher_needs == AttributionTerm.student_needs == {TOKEN_SCORES}
    assert LayerProjectionTerm.student_needs == {HIDDEN_STATES}
    assert TERMS["pkd"].teacher_needs == TERMS["ckd"].teacher_needs == {CLS_STATES}  # both read [CLS] only
    student, teacher = tiny_bert_config(layers=2), tiny_bert_config(layers=4)
    for representation, needs in (("cls", CLS_STATES), ("tokens", HIDDEN_STATES)):
        options = LayerProjectionOptions(weight=1.0, representation=representation)
        assert LayerProjectionTerm.from_options(options, student, teacher).teacher_needs == {needs}
    assert student_needs(["ce", "kd"]) == frozenset() and student_needs(["kd", "attribution"]) == {TOKEN_SCORES}


@pytest.mark.parametrize("method, terms", [("ft", ["ce"]), ("kd", ["ce", "kd"]), ("pkd", ["ce", "kd", "pkd"]),
                                           ("ckd", ["ce", "kd", "ckd"]), ("skip-mse", ["ce", "kd", "layer_projection"]),
                                           ("adkd", ["ce", "kd", "attribution"]),
                                           ("adkd+alp", ["ce", "kd", "attribution", "layer_projection"])])
def test_active_terms_follow_the_weights(method, terms):
    assert DistillConfig.from_dict(preset(f"{method}/rte")).method_terms == terms


def test_terms_compute_their_losses():
    generator = torch.Generator().manual_seed(0)
    student = ModelOutputs(torch.randn(4, 2, generator=generator), torch.rand(4, 1, 5, generator=generator))
    teacher = ModelOutputs(torch.randn(4, 2, generator=generator), torch.rand(4, 1, 5, generator=generator))
    context = LossContext(torch.tensor([0, 1, 1, 0]), torch.ones(4, 5))
    torch.testing.assert_close(TaskTerm()(student, teacher, context).value, task_loss(student.logits, context.labels))
    torch.testing.assert_close(AttributionTerm("l1")(student, teacher, context).value,
                               attribution_loss(teacher.token_scores, student.token_scores, "l1"))
    kd = KnowledgeDistillationTerm(temperature=3.0)(student, teacher, context)
    torch.testing.assert_close(kd.value, kd_loss(student.logits, teacher.logits, 3.0))
    assert kd.records["temperature"].item() == 3.0


def test_kd_term_anneals_with_the_epoch():
    term = KnowledgeDistillationTerm(temperature=4.0, anneal=True)
    outputs = ModelOutputs(torch.zeros(1, 2))
    temperatures = [term(outputs, outputs, LossContext(torch.tensor([0]), torch.ones(1, 1), epoch, 4)).records[
        "temperature"].item() for epoch in range(4)]
    assert temperatures == [4.0, 3.0, 2.0, 1.0]


def test_layer_projection_term_is_built_from_the_models_and_records_alpha():
    config = DistillConfig.from_dict({**preset("alp/sst2"), "terms": {"layer_projection": {"weight": 1, "variant": "alp-no"}}})
    term = LayerProjectionTerm.from_options(config.terms["layer_projection"], tiny_bert_config(layers=2, hidden=16),
                                            tiny_bert_config(layers=4))
    assert term.projection.width_projection.weight.shape == (32, 16) and term.projection.variant == "alp-no"
    student = ModelOutputs(hidden_states=tuple(torch.randn(3, 5, 16) for _ in range(3)))
    teacher = ModelOutputs(hidden_states=tuple(torch.randn(3, 5, 32) for _ in range(5)))
    out = term(student, teacher, LossContext(torch.zeros(3), torch.ones(3, 5)))
    assert out.records["alpha"].shape == (2, 4) and out.value.requires_grad
    torch.testing.assert_close(out.records["alpha"].sum(-1), torch.ones(2))


def test_attention_spread_of_one_hot_and_uniform_rows():
    one_hot = torch.tensor([[[0.0, 1.0, 0.0, 0.0]]])
    uniform = torch.full((1, 1, 4), 0.25)
    assert attention_spread(one_hot)["alp_entropy"].item() == 0.0
    assert attention_spread(one_hot)["alp_top2_gap"].item() == 1.0
    assert attention_spread(uniform)["alp_entropy"].item() == pytest.approx(math.log(4))
    assert attention_spread(uniform)["alp_top2_gap"].item() == 0.0
    mixed = attention_spread(torch.cat([one_hot, uniform]))  # the mean over examples
    assert mixed["alp_entropy"].item() == pytest.approx(math.log(4) / 2)
    assert mixed["alp_top2_gap"].item() == pytest.approx(0.5)
