"""The objective (a weighted sum of the active terms) and the one trained module (student + objective)."""

import torch

from helpers import make_batch, tiny_bert
from kdviz.config import DistillConfig, merge_config_values
from kdviz.loss_terms import LOGITS, LossContext, LossTerm, ModelOutputs, TermOutput, register_term
from kdviz.losses import kd_loss, task_loss
from kdviz.objective import DistillationModel, DistillationObjective
from kdviz.recipes import preset


def objective_for(method, student, teacher, **overrides):
    config = DistillConfig.from_dict(merge_config_values(preset(f"{method}/sst2"), overrides))
    return DistillationObjective.from_config(config, student.config, teacher.config)


def test_the_objective_holds_the_active_terms_with_their_weights():
    student, teacher = tiny_bert(layers=2), tiny_bert(layers=4)
    objective = objective_for("adkd+alp", student, teacher)
    assert list(objective.terms) == ["ce", "kd", "attribution", "layer_projection"]
    assert objective.weights == {"ce": 0.2, "kd": 0.8, "attribution": 1.0, "layer_projection": 1.0}
    assert objective.teacher_needs == {"logits", "token_scores", "cls_states"}
    tokens = {"terms": {"layer_projection": {"representation": "tokens"}}}
    assert objective_for("alp", student, teacher, **tokens).teacher_needs == {"logits", "hidden_states"}
    assert objective_for("kd", student, teacher).student_needs == frozenset()


def test_training_loss_is_the_weighted_sum_and_evaluation_the_task_loss():
    student, teacher = tiny_bert(layers=2, seed=1), tiny_bert(layers=4)
    model = DistillationModel(student, objective_for("kd", student, teacher)).train()
    batch, labels = make_batch(True), torch.tensor([1, 0, 1])
    teacher_logits = torch.randn(3, 2)
    out = model(**batch, labels=labels, teacher_outputs=ModelOutputs(logits=teacher_logits))
    logits = student(**batch).logits
    expected = 0.2 * task_loss(logits, labels) + 0.8 * kd_loss(logits, teacher_logits, 2.0)
    torch.testing.assert_close(out.loss, expected)
    assert set(out.terms) == {"ce", "kd"} and out.records["temperature"].item() == 2.0
    evaluated = model.eval()(**batch, labels=labels)
    torch.testing.assert_close(evaluated.loss, task_loss(logits, labels))


def test_the_width_projection_is_a_parameter_of_the_trained_module():
    student, teacher = tiny_bert(layers=2, hidden=16), tiny_bert(layers=4)
    model = DistillationModel(student, objective_for("alp", student, teacher))
    names = {name for name, _ in model.named_parameters()}
    assert "objective.terms.layer_projection.projection.width_projection.weight" in names
    assert any(name.startswith("student.bert.embeddings") for name in names)
    assert "objective.terms.layer_projection.projection.mask" not in model.state_dict()


def test_a_new_term_is_one_registered_class(registry):
    """Registering a class is all it takes: a config's terms block sets its weight and the objective adds it."""

    @register_term
    class LogitNorm(LossTerm):
        name = "logit_norm"
        teacher_needs = frozenset({LOGITS})

        def forward(self, student, teacher, context):
            return TermOutput(student.logits.pow(2).mean())

    student, teacher = tiny_bert(layers=2), tiny_bert(layers=4)
    objective = objective_for("ft", student, teacher, terms={"logit_norm": {"weight": 0.5}})
    assert list(objective.terms) == ["ce", "logit_norm"] and objective.teacher_needs == {LOGITS}
    logits, labels = torch.randn(3, 2), torch.tensor([0, 1, 0])
    out = objective(ModelOutputs(logits), ModelOutputs(), LossContext(labels, torch.ones(3, 4)))
    torch.testing.assert_close(out.loss, task_loss(logits, labels) + 0.5 * logits.pow(2).mean())
