"""PKD as published (pairing, normalisation) and CKD (buckets, shapes, gradients)."""

import pytest
import torch
import torch.nn.functional as F

from kdviz.layer_baselines import CombinatorialDistillation, PatientDistillation, pkd_layer_pairs


def hidden_states(batch, length, layers, hidden, seed):
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, length, hidden, generator=generator) for _ in range(layers + 1))


def test_pkd_pairs_intermediate_layers_and_leaves_the_top_one_to_kd():
    assert pkd_layer_pairs(6, 12, "skip") == [(1, 2), (2, 4), (3, 6), (4, 8), (5, 10)]
    assert pkd_layer_pairs(6, 12, "last") == [(1, 7), (2, 8), (3, 9), (4, 10), (5, 11)]
    assert pkd_layer_pairs(3, 6, "skip") == [(1, 2), (2, 4)]
    assert pkd_layer_pairs(1, 6, "skip") == []
    with pytest.raises(ValueError, match="Unknown PKD mapping 'first'"):
        pkd_layer_pairs(2, 6, "first")


def test_pkd_is_zero_for_identical_directions_of_different_norms():
    teacher = hidden_states(3, 4, 12, 8, 0)
    student = [None] * 7
    for s, t in pkd_layer_pairs(6, 12):
        student[s] = teacher[t] * (1.0 + 4.0 * s)  # same directions, other lengths
    student[0], student[6] = torch.randn(3, 4, 8), torch.randn(3, 4, 8)  # the top layer is not matched
    assert PatientDistillation(6, 12, 8, 8)(student, teacher).item() == pytest.approx(0.0, abs=1e-12)


def test_pkd_is_the_mean_squared_difference_of_normalised_cls_vectors():
    teacher, student = hidden_states(3, 4, 6, 8, 0), hidden_states(3, 4, 3, 8, 1)
    loss = PatientDistillation(3, 6, 8, 8)(student, teacher)
    expected = torch.stack([
        (F.normalize(student[s][:, 0], dim=-1) - F.normalize(teacher[t][:, 0], dim=-1)).pow(2).mean()
        for s, t in [(1, 2), (2, 4)]]).mean()
    torch.testing.assert_close(loss, expected)


def test_pkd_trains_a_width_projection_for_a_narrower_student_and_no_teacher_gradient():
    teacher = tuple(t.requires_grad_() for t in hidden_states(2, 3, 4, 16, 0))
    student = tuple(s.requires_grad_() for s in hidden_states(2, 3, 2, 8, 1))
    patient = PatientDistillation(2, 4, 8, 16)
    patient(student, teacher).backward()
    assert patient.width_projection.weight.grad.abs().sum() > 0
    assert student[1].grad.abs().sum() > 0 and student[2].grad is None  # the top layer is KD's
    assert all(t.grad is None for t in teacher)


def test_ckd_maps_each_bucket_of_concatenated_teacher_layers_to_its_student_layer():
    combinatorial = CombinatorialDistillation(4, 6, 8, 16)
    assert combinatorial.buckets == [[1, 2], [3, 4], [5], [6]]
    assert [m.in_features for m in combinatorial.bucket_maps] == [32, 32, 16, 16]
    assert {m.out_features for m in combinatorial.bucket_maps} == {8}
    teacher, student = hidden_states(2, 3, 6, 16, 0), hidden_states(2, 3, 4, 8, 1)
    expected = sum(
        F.mse_loss(student[i + 1][:, 0], m(torch.cat([teacher[t][:, 0] for t in bucket], dim=-1)))
        for i, (bucket, m) in enumerate(zip(combinatorial.buckets, combinatorial.bucket_maps)))
    torch.testing.assert_close(combinatorial(student, teacher), expected)


def test_ckd_gradients_reach_the_student_and_the_bucket_maps_not_the_teacher():
    teacher = tuple(t.requires_grad_() for t in hidden_states(2, 3, 4, 16, 0))
    student = tuple(s.requires_grad_() for s in hidden_states(2, 3, 2, 8, 1))
    combinatorial = CombinatorialDistillation(2, 4, 8, 16)
    combinatorial(student, teacher).backward()
    assert all(m.weight.grad.abs().sum() > 0 for m in combinatorial.bucket_maps)
    assert student[1].grad.abs().sum() > 0 and student[2].grad.abs().sum() > 0
    assert all(t.grad is None for t in teacher)
