import pytest
import torch

from kdviz.projection import LayerProjection, layer_mask


def hidden_states(batch, length, layers, hidden, seed, requires_grad=False):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, length, hidden, generator=generator, requires_grad=requires_grad)
            for _ in range(layers + 1)]


def allowed(mask):
    """Allowed teacher columns per student row, as 1-based layer lists (no embeddings)."""
    return [[j + 1 for j in row.nonzero().flatten().tolist()] for row in mask]


@pytest.mark.parametrize("teacher,student,expected", [
    (12, 6, [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12]]),
    (12, 4, [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]),
    (12, 2, [list(range(1, 7)), list(range(7, 13))]),
    (6, 3, [[1, 2], [3, 4], [5, 6]]),
    (6, 2, [[1, 2, 3], [4, 5, 6]]),
    (6, 1, [[1, 2, 3, 4, 5, 6]]),
])
def test_bucket_masks(teacher, student, expected):
    assert allowed(layer_mask("alp-no", student, teacher)) == expected
    widened = allowed(layer_mask("alp-po", student, teacher, overlap=1))
    for bucket, wide in zip(expected, widened):
        assert wide == list(range(max(1, bucket[0] - 1), min(teacher, bucket[-1] + 1) + 1))
    # the buckets' alpha is exactly zero outside them, and rows sum to one
    projection = LayerProjection(student, teacher, 16, 16, variant="alp-no")
    out = projection(hidden_states(3, 5, student, 16, 0), hidden_states(3, 5, teacher, 16, 1))
    outside = ~layer_mask("alp-no", student, teacher)
    assert torch.all(out.alpha[:, outside] == 0)
    torch.testing.assert_close(out.alpha.sum(-1), torch.ones(3, student))


def test_hard_skip_and_last_masks():
    assert allowed(layer_mask("skip", 6, 12)) == [[2], [4], [6], [8], [10], [12]]
    assert allowed(layer_mask("skip", 2, 6)) == [[3], [6]]
    assert allowed(layer_mask("last", 4, 12)) == [[9], [10], [11], [12]]


def test_embeddings_join_on_both_sides():
    mask = layer_mask("skip", 2, 6, include_embeddings=True)
    assert mask.shape == (3, 7)
    assert [row.nonzero().flatten().tolist() for row in mask] == [[0], [3], [6]]
    full = layer_mask("alp", 2, 6, include_embeddings=True)
    assert full[1:].all() and full[0].tolist() == [True] + [False] * 6
    projection = LayerProjection(2, 6, 8, 8, variant="alp", include_embeddings=True)
    assert projection.student_layers == [0, 1, 2] and projection.teacher_layers == list(range(7))


@pytest.mark.parametrize("variant", ["alp", "alp-no", "alp-po", "skip", "last"])
@pytest.mark.parametrize("representation", ["cls", "tokens"])
def test_rows_sum_to_one(variant, representation):
    projection = LayerProjection(3, 6, 16, 16, variant=variant, representation=representation)
    mask = torch.ones(4, 7)
    mask[1, 4:] = 0
    out = projection(hidden_states(4, 7, 3, 16, 0), hidden_states(4, 7, 6, 16, 1), mask)
    assert out.alpha.shape == (4, 3, 6)
    torch.testing.assert_close(out.alpha.sum(-1), torch.ones(4, 3))
    assert torch.isfinite(out.loss)


def test_attention_concentrates_on_the_layer_the_student_copies():
    teacher = hidden_states(2, 4, 6, 32, 1)
    student = hidden_states(2, 4, 2, 32, 0)
    student[1] = 10 * teacher[4].clone()
    student[2] = 10 * teacher[2].clone()
    out = LayerProjection(2, 6, 32, 32)(student, teacher)
    assert out.alpha[:, 0].argmax(-1).tolist() == [3, 3]  # column 3 = teacher layer 4
    assert out.alpha[:, 1].argmax(-1).tolist() == [1, 1]
    assert torch.all(out.alpha[:, 0, 3] > 0.99)


def test_loss_is_zero_when_student_equals_its_target():
    teacher = hidden_states(2, 4, 6, 16, 1)
    student = [teacher[0], teacher[3], teacher[6]]
    assert LayerProjection(2, 6, 16, 16, variant="skip")(student, teacher).loss.item() == 0.0
    same = [teacher[1]] * 7  # every teacher layer alike: any mix is that layer
    assert LayerProjection(2, 6, 16, 16)([same[0]] * 3, same).loss.item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("score, scale", [("sqrt_h", 8 ** 0.5), ("unscaled", 1.0)])
def test_loss_matches_the_formula(score, scale):
    teacher = hidden_states(3, 5, 4, 8, 1)
    student = hidden_states(3, 5, 2, 8, 0)
    out = LayerProjection(2, 4, 8, 8, score=score)(student, teacher)
    t = torch.stack([teacher[j][:, 0] for j in range(1, 5)], 1)
    expected = 0
    for i in (1, 2):
        s = student[i][:, 0]
        alpha = torch.softmax(torch.einsum("bh,bnh->bn", s, t) / scale, -1)
        expected = expected + torch.nn.functional.mse_loss(s, torch.einsum("bn,bnh->bh", alpha, t))
    torch.testing.assert_close(out.loss, expected)


def test_token_representation_ignores_padding():
    teacher = hidden_states(2, 6, 4, 8, 1)
    student = hidden_states(2, 6, 2, 8, 0)
    mask = torch.ones(2, 6)
    mask[0, 3:] = 0
    projection = LayerProjection(2, 4, 8, 8, representation="tokens")
    before = projection(student, teacher, mask)
    changed = [s.clone() for s in student]
    for s in changed:
        s[0, 3:] = 100.0  # padding positions: must not matter
    after = projection(changed, teacher, mask)
    torch.testing.assert_close(before.loss, after.loss)
    torch.testing.assert_close(before.alpha, after.alpha)
    with pytest.raises(ValueError, match="attention mask"):
        projection(student, teacher)


def test_gradients_reach_student_and_projection_never_teacher():
    teacher = hidden_states(2, 4, 6, 24, 1, requires_grad=True)
    student = hidden_states(2, 4, 2, 16, 0, requires_grad=True)
    projection = LayerProjection(2, 6, 16, 24)
    projection(student, teacher).loss.backward()
    assert student[1].grad is not None and student[1].grad.abs().sum() > 0
    assert projection.width_projection.weight.grad.abs().sum() > 0
    assert all(t.grad is None for t in teacher)


def test_width_projection_trains_on_a_toy_problem():
    torch.manual_seed(0)
    mixing = torch.randn(16, 32)
    student = [torch.randn(64, 1, 16) for _ in range(3)]
    noise = [torch.randn(64, 1, 32) for _ in range(4)]
    # skip 6 -> 2 pairs student layers 1, 2 with teacher layers 3, 6: those are linear maps of them
    teacher = [student[0] @ mixing, noise[0], noise[1], student[1] @ mixing, noise[2], noise[3], student[2] @ mixing]
    projection = LayerProjection(2, 6, 16, 32, variant="skip")
    optimiser = torch.optim.Adam(projection.parameters(), lr=1e-2)
    start = projection(student, teacher).loss.item()
    for _ in range(200):
        optimiser.zero_grad()
        loss = projection(student, teacher).loss
        loss.backward()
        optimiser.step()
    assert loss.item() < start / 10, (start, loss.item())
    assert "width_projection.weight" in projection.state_dict() and "mask" not in projection.state_dict()


def test_bf16_autocast_close_to_float32():
    teacher = hidden_states(4, 6, 6, 32, 1)
    student = hidden_states(4, 6, 3, 32, 0)
    projection = LayerProjection(3, 6, 32, 32)
    exact = projection(student, teacher)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = projection(student, teacher)
    assert mixed.loss.dtype == torch.float32
    torch.testing.assert_close(mixed.alpha.sum(-1), torch.ones(4, 3))
    torch.testing.assert_close(mixed.loss, exact.loss, rtol=2e-2, atol=1e-3)


def test_bad_variant_and_depths():
    with pytest.raises(ValueError, match="alp-no"):
        layer_mask("ckd", 2, 6)
    with pytest.raises(ValueError, match="student layers <= teacher layers"):
        layer_mask("alp", 7, 6)
