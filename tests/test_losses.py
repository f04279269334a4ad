"""The pure loss functions against hand-computed values."""

import math

import pytest
import torch

from kdviz.losses import annealed_temperature, attribution_loss, kd_loss, task_loss


def test_kd_loss_is_the_soft_cross_entropy_at_temperature_t():
    student = torch.tensor([[1.0, 2.0], [0.0, -1.0]], requires_grad=True)
    teacher = torch.tensor([[2.0, 1.0], [3.0, 0.0]])
    value = kd_loss(student, teacher, temperature=2.0)
    expected = 0.0
    for s, t in zip(student.tolist(), teacher.tolist()):
        p = [math.exp(x / 2) / sum(math.exp(y / 2) for y in t) for x in t]
        log_q = [x / 2 - math.log(sum(math.exp(y / 2) for y in s)) for x in s]
        expected += -sum(pi * qi for pi, qi in zip(p, log_q)) / 2
    assert value.item() == pytest.approx(expected, rel=1e-6)  # batch mean, no T^2 factor
    value.backward()
    assert student.grad.abs().sum() > 0


def test_kd_loss_for_a_single_output_is_the_mse_of_scaled_scores():
    student, teacher = torch.tensor([[1.0], [3.0]]), torch.tensor([[2.0], [2.0]])
    assert kd_loss(student, teacher, temperature=2.0).item() == pytest.approx(((0.5 - 1) ** 2 + (1.5 - 1) ** 2) / 2)


def test_teacher_logits_get_no_gradient():
    teacher = torch.tensor([[2.0, 1.0]], requires_grad=True)
    kd_loss(torch.tensor([[1.0, 2.0]], requires_grad=True), teacher).backward()
    assert teacher.grad is None


@pytest.mark.parametrize("epoch, expected", [(0, 4.0), (3, 3.0), (4.5, 2.5), (9, 1.0), (12, 1.0)])
def test_temperature_anneals_linearly_from_t_to_one(epoch, expected):
    assert annealed_temperature(4.0, epoch, 10) == pytest.approx(expected)


def test_temperature_schedule_edge_cases():
    assert annealed_temperature(3.0, 0, 1) == 3.0  # one epoch: nothing to anneal
    assert annealed_temperature(0.5, 2, 5) == 0.5  # below 1 it is left alone


def test_task_loss_is_cross_entropy_or_mse():
    logits, labels = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0])
    expected = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(1))) / 2
    assert task_loss(logits, labels).item() == pytest.approx(expected, rel=1e-6)
    scores = torch.tensor([[1.0], [4.0]])
    assert task_loss(scores, torch.tensor([2.0, 4.0])).item() == pytest.approx(0.5)


def test_attribution_loss_sums_over_tokens_and_divides_by_real_tokens():
    teacher = torch.tensor([[[0.6, 0.8, 0.0]], [[1.0, 0.0, 0.0]]])  # (B=2, V=1, L=3): 3 real tokens in all
    student = torch.tensor([[[0.8, 0.6, 0.0]], [[0.0, 1.0, 0.0]]])
    squared = (0.2 ** 2 + 0.2 ** 2 + 1 + 1) / 3
    assert attribution_loss(teacher, student).item() == pytest.approx(squared)
    assert attribution_loss(teacher, student, "l1").item() == pytest.approx((0.2 + 0.2 + 1 + 1) / 3)
    smooth = (0.5 * 0.2 ** 2 * 2 + 0.5 * 2) / 3  # beta 1: 0.5 d^2 below 1, |d| - 0.5 from 1
    assert attribution_loss(teacher, student, "smooth_l1").item() == pytest.approx(smooth)
    with pytest.raises(ValueError, match="Unknown attribution distance 'cosine'"):
        attribution_loss(teacher, student, "cosine")


def test_attribution_views_are_summed():
    teacher = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # two views
    student = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]])
    assert attribution_loss(teacher, student).item() == pytest.approx(2 / 1 + 0)
