"""Integrated Gradients on the embedding output: captum as the oracle, completeness, the student's loss."""

import pytest
import torch

from helpers import make_batch, tiny_bert
from kdviz.attribution import (AttributionSettings, embedding_output_replaced, integrated_gradients, riemann_rule,
                               token_scores)
from kdviz.captum_bridge import captum_embedding_attributions
from kdviz.frozen_attribution import attribute, predicted_class_signed_scores
from kdviz.losses import attribution_loss


def ig(views="gold", steps=1, rule="right", step_chunk=None):
    return AttributionSettings(views=views, steps=steps, rule=rule, step_chunk=step_chunk)


def unpacked(pairs):
    batch = make_batch(pairs)
    return batch, batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]


def captum(model, ids, mask, types, target, steps, rule="right"):
    return captum_embedding_attributions(model, ids, mask, types, target, steps=steps, rule=rule)


@pytest.mark.parametrize("pairs", [False, True])
@pytest.mark.parametrize("steps", [4, 32])  # captum's IG needs m > 1; m = 1 is checked below
@pytest.mark.parametrize("rule", ["right", "left", "middle", "trapezoid"])
def test_equal_to_captum_layer_integrated_gradients(pairs, steps, rule):
    model = tiny_bert(num_labels=3).double()
    batch, ids, mask, types = unpacked(pairs)
    ours = attribute(model, batch, settings=ig("classes", steps, rule)).attributions
    for c in range(3):
        theirs = captum(model, ids, mask, types, lambda z: -torch.log_softmax(z, -1)[:, c], steps, rule)
        if rule == "trapezoid":
            theirs = theirs * steps / (steps - 1)  # captum's trapezoid weights sum to (m-1)/m, ours to 1
        error = (ours[:, c] - theirs).norm() / theirs.norm()
        assert error < 1e-5, (c, error.item())
    assert torch.all(ours[0, :, 6:] == 0)  # padding gets exactly zero


@pytest.mark.parametrize("pairs", [False, True])
def test_one_step_equals_captum_layer_gradient_x_activation(pairs):
    model = tiny_bert(num_labels=3).double()
    batch, ids, mask, types = unpacked(pairs)
    ours = attribute(model, batch, settings=ig("classes")).attributions
    for c in range(3):
        theirs = captum_embedding_attributions(model, ids, mask, types, lambda z: -torch.log_softmax(z, -1)[:, c],
                                               method="input_x_gradient")
        assert ((ours[:, c] - theirs).norm() / theirs.norm()) < 1e-5


def test_gold_view_equals_captum_on_the_loss():
    model = tiny_bert(num_labels=2).double()
    batch, ids, mask, types = unpacked(True)
    labels = torch.tensor([1, 0, 1])
    ours = attribute(model, batch, labels, ig("gold", 8)).attributions[:, 0]
    loss = lambda z: torch.nn.functional.cross_entropy(z, labels.repeat(len(z) // 3), reduction="none")
    theirs = captum(model, ids, mask, types, loss, 8)
    assert ((ours - theirs).norm() / theirs.norm()) < 1e-5


def test_completeness_converges(capsys):
    model = tiny_bert(num_labels=3).double()
    batch, ids, mask, types = unpacked(True)
    with torch.no_grad():
        full = -torch.log_softmax(model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits, -1)[:, 1]
        zero = torch.zeros(3, 9, 32, dtype=torch.float64)
        from kdviz.attribution import embedding_output_replaced
        with embedding_output_replaced(model, zero):
            at_zero = -torch.log_softmax(model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits,
                                         -1)[:, 1]
    deltas = []
    for steps in (1, 4, 16, 64, 256):
        total = attribute(model, batch, settings=ig(1, steps, "middle")).attributions.sum(dim=(1, 2, 3))
        deltas.append((total - (full - at_zero)).abs().max().item())
    with capsys.disabled():
        print("\ncompleteness |sum(a) - (F(x) - F(0))|, middle rule, m = 1, 4, 16, 64, 256:",
              ", ".join(f"{d:.2e}" for d in deltas))
    assert deltas[-1] < 1e-4 and deltas[-1] < deltas[0] / 100
    assert all(later <= earlier * 1.01 for earlier, later in zip(deltas[1:], deltas[2:]))


def test_step_chunks_give_the_same_result():
    model = tiny_bert(num_labels=3).double()
    batch, ids, mask, types = unpacked(False)
    whole = attribute(model, batch, settings=ig("classes", 8)).attributions
    chunked = attribute(model, batch, settings=ig("classes", 8, step_chunk=3)).attributions
    torch.testing.assert_close(whole, chunked)


def student_gradients(model, batch, labels, teacher, settings, hidden=False):
    """The attribution loss (plus a hidden-state term when ``hidden``) and every parameter's gradient."""
    model.zero_grad()
    result = integrated_gradients(model, batch, labels, settings, create_graph=True, output_hidden_states=hidden)
    loss = attribution_loss(teacher, token_scores(result.attributions, batch["attention_mask"]))
    loss = loss + result.logits.pow(2).mean() + (result.hidden_states[-1].pow(2).mean() if hidden else 0)
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("rule", ["right", "middle"])
def test_chunked_student_steps_recompute_to_the_same_loss_and_gradients(rule):
    model = tiny_bert(num_labels=3).double()
    batch, ids, mask, types = unpacked(True)
    labels = torch.tensor([0, 2, 1])
    teacher = token_scores(torch.rand(3, 3, 9, 32, dtype=torch.float64), mask)
    whole_loss, whole = student_gradients(model, batch, labels, teacher, ig("classes", 4, rule), hidden=True)
    chunk_loss, chunked = student_gradients(model, batch, labels, teacher, ig("classes", 4, rule, step_chunk=1),
                                            hidden=True)
    torch.testing.assert_close(chunk_loss, whole_loss)
    assert chunked.keys() == whole.keys() and len(whole) > 10
    for name in whole:
        torch.testing.assert_close(chunked[name], whole[name], msg=name)


def test_chunked_student_steps_replay_the_dropout_masks():
    """The recomputation replays each chunk's dropout masks, and the logits for the other terms come from
    the last chunk's pass (the one that holds the unscaled input), not from a pass of their own."""
    model = tiny_bert(num_labels=2, hidden_dropout_prob=0.3).double().train()
    batch, ids, mask, types = unpacked(True)
    labels = torch.tensor([0, 1, 1])
    teacher = token_scores(torch.rand(3, 1, 9, 32, dtype=torch.float64), mask)
    settings = ig("gold", 4, step_chunk=2)
    torch.manual_seed(0)
    loss, recomputed = student_gradients(model, batch, labels, teacher, settings)
    # the same function with the graph kept (no recomputation) under the same random draws
    torch.manual_seed(0)
    model.zero_grad()
    embedded = model.bert.embeddings(input_ids=ids, token_type_ids=types)
    alphas, weights = riemann_rule(4)
    total = 0
    for start in (0, 2):
        scale = alphas[start:start + 2].to(embedded)
        flat = (scale.view(-1, 1, 1, 1) * embedded.unsqueeze(0)).reshape(-1, *embedded.shape[1:])
        with embedding_output_replaced(model, flat):
            logits = model(input_ids=ids.repeat(2, 1), attention_mask=mask.repeat(2, 1),
                           token_type_ids=types.repeat(2, 1)).logits
        targets = torch.nn.functional.cross_entropy(logits, labels.repeat(2), reduction="sum")
        (grad,) = torch.autograd.grad(targets, flat, create_graph=True)
        total = total + torch.einsum("s,sblh->blh", weights[start:start + 2].to(grad), grad.view(2, *embedded.shape))
    logits_at_input = logits.view(2, 3, -1)[-1]  # the last chunk's last step: alpha = 1
    kept = attribution_loss(teacher, token_scores((total * embedded).unsqueeze(1), mask))
    kept = kept + logits_at_input.pow(2).mean()
    kept.backward()
    torch.testing.assert_close(loss, kept.detach())
    for name, parameter in model.named_parameters():
        if parameter.grad is not None:
            torch.testing.assert_close(recomputed[name], parameter.grad, msg=name)


def test_token_scores_top_k_norm_and_padding():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(2, 1, 5, 8, dtype=torch.float64, generator=generator)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    a[0, :, 3:] = 0
    scores = token_scores(a, mask, top_k=3)
    expected = a.abs().topk(3, dim=-1).values.norm(dim=-1)
    expected = expected / expected.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(scores, expected)
    assert torch.all(scores[0, 0, 3:] == 0)
    torch.testing.assert_close(scores.norm(dim=-1), torch.ones(2, 1, dtype=torch.float64))
    full = token_scores(a, mask)
    torch.testing.assert_close(full, a.norm(dim=-1) / a.norm(dim=-1).norm(dim=-1, keepdim=True))


def test_signed_scores_point_towards_the_predicted_class():
    """With one step (gradient x input) a token's signed score is E . d log p(predicted) / dE, summed over the hidden
    dimensions and normalised: positive when the token raises the predicted class's probability."""
    model = tiny_bert(num_labels=3, layers=2, seed=7).eval()
    batch = make_batch(pairs=False, seed=3)
    signed = predicted_class_signed_scores(model, batch, AttributionSettings(steps=1))
    embedded = model.base_model.embeddings(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"])
    embedded = embedded.detach().requires_grad_()
    with embedding_output_replaced(model, embedded):
        logits = model(**batch).logits
    predicted = logits.argmax(-1)
    log_p = torch.log_softmax(logits, -1).gather(1, predicted[:, None]).sum()
    gradient, = torch.autograd.grad(log_p, embedded)
    expected = (embedded * gradient).sum(-1) * batch["attention_mask"]
    expected = expected / expected.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(signed, expected.detach(), atol=1e-5, rtol=1e-4)
    assert (signed > 0).any() and (signed < 0).any()
    assert torch.all(signed[batch["attention_mask"] == 0] == 0)


def student_attribution_loss(model, ids, mask, types, labels, teacher_scores, steps=2):
    result = integrated_gradients(model, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}, labels,
                                  ig("gold", steps), create_graph=True)
    return attribution_loss(teacher_scores, token_scores(result.attributions, mask))


def test_gradcheck_of_the_attribution_loss_with_respect_to_student_parameters():
    model = tiny_bert(num_labels=2, layers=1, hidden=8, intermediate_size=8).double()
    batch, ids, mask, types = unpacked(True)
    ids, mask, types = ids[:2, :7], mask[:2, :7], types[:2, :7]
    labels = torch.tensor([1, 0])
    teacher_scores = token_scores(torch.rand(2, 1, 7, 8, dtype=torch.float64), mask)
    checked = {
        "word_embeddings": model.bert.embeddings.word_embeddings.weight,
        "embedding_layer_norm": model.bert.embeddings.LayerNorm.weight,
        "query": model.bert.encoder.layer[0].attention.self.query.weight,
        "ffn": model.bert.encoder.layer[0].output.dense.weight,
    }
    for name, parameter in checked.items():
        original = parameter.detach().clone()
        rows = original[:1] if name != "word_embeddings" else original[ids[0, :3]]

        def loss_of(values, parameter=parameter, name=name, original=original):
            patched = original.clone()
            if name == "word_embeddings":
                patched[ids[0, :3]] = values
            else:
                patched[:1] = values
            with torch.nn.utils.stateless._reparametrize_module(model, {_param_name(model, parameter): patched}):
                return student_attribution_loss(model, ids, mask, types, labels, teacher_scores)

        assert torch.autograd.gradcheck(loss_of, (rows.clone().requires_grad_(True),), eps=1e-6, atol=1e-5), name


def _param_name(model, parameter):
    return next(name for name, p in model.named_parameters() if p is parameter)


def test_attribution_loss_trains_every_student_parameter():
    model = tiny_bert(num_labels=2).double().train()
    batch, ids, mask, types = unpacked(True)
    teacher_scores = token_scores(torch.rand(3, 1, 9, 32, dtype=torch.float64), mask)
    student_attribution_loss(model, ids, mask, types, torch.tensor([1, 0, 1]), teacher_scores).backward()
    untouched = [name for name, p in model.named_parameters()
                 if p.grad is None or p.grad.abs().sum() == 0]
    # the pooler and classifier bias have no second-order path into d(loss)/d(embedding)
    assert set(untouched) <= {"classifier.bias", "bert.embeddings.token_type_embeddings.weight"}, untouched
    assert model.bert.embeddings.word_embeddings.weight.grad.abs().sum() > 0


def test_three_class_multi_view_loss_is_the_sum_of_single_views():
    model = tiny_bert(num_labels=3).double()
    batch, ids, mask, types = unpacked(True)
    teacher = token_scores(torch.rand(3, 3, 9, 32, dtype=torch.float64), mask)
    multi = integrated_gradients(model, batch, settings=ig("classes", 2), create_graph=True)
    total = attribution_loss(teacher, token_scores(multi.attributions, mask))
    singles = 0
    for c in range(3):
        single = integrated_gradients(model, batch, settings=ig(c, 2), create_graph=True)
        singles = singles + attribution_loss(teacher[:, c:c + 1], token_scores(single.attributions, mask))
    torch.testing.assert_close(total, singles)


def test_per_class_views_share_one_forward_pass():
    model = tiny_bert(num_labels=3).double()
    batch, ids, mask, types = unpacked(True)
    passes = []
    handle = model.bert.encoder.register_forward_hook(lambda module, args, output: passes.append(len(args[0])))
    integrated_gradients(model, batch, settings=ig("classes", 2), create_graph=True)
    handle.remove()
    assert passes == [2 * len(ids)]  # m scaled copies of the batch, not m x 3 views


def test_two_class_normalised_views_are_identical():
    model = tiny_bert(num_labels=2).double()
    batch, ids, mask, types = unpacked(True)
    scores = attribute(model, batch, settings=ig("classes")).token_scores()
    torch.testing.assert_close(scores[:, 0], scores[:, 1])
    gold = attribute(model, batch, torch.tensor([0, 1, 1])).token_scores()
    torch.testing.assert_close(gold[:, 0], scores[:, 0])


def test_fused_attention_is_refused_for_the_student_side():
    model = tiny_bert(num_labels=2)
    model.set_attn_implementation("sdpa")
    batch, ids, mask, types = unpacked(False)
    with pytest.raises(ValueError, match="attn_implementation='eager'"):
        integrated_gradients(model, batch, settings=ig(0), create_graph=True)
    attribute(model, batch, settings=ig(0))  # first order is fine


def test_right_rule_reuses_the_unscaled_pass():
    model = tiny_bert(num_labels=2).double()
    batch, ids, mask, types = unpacked(True)
    result = integrated_gradients(model, batch, settings=ig("classes", 4), output_hidden_states=True)
    with torch.no_grad():
        plain = model(input_ids=ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True)
    torch.testing.assert_close(result.logits, plain.logits)
    assert len(result.hidden_states) == len(plain.hidden_states)
    torch.testing.assert_close(result.hidden_states[-1], plain.hidden_states[-1])


def test_riemann_weights_sum_to_one():
    for rule in ("right", "left", "middle", "trapezoid"):
        alphas, weights = riemann_rule(5, rule)
        assert weights.sum().item() == pytest.approx(1.0)
        assert 0 <= alphas.min() and alphas.max() <= 1
    assert riemann_rule(4, "right")[0].tolist() == [0.25, 0.5, 0.75, 1.0]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_attribution_loss_under_autocast_matches_float32(dtype):
    """The stated tolerances (half-precision autocast, as ``precision=bf16|fp16`` trains): 2% relative
    on the loss, 0.02 absolute on normalised token scores, 5% relative (L2) on the double-backward
    gradient of the word embeddings. bf16 keeps 8 mantissa bits, fp16 11: fp16 is the closer one."""
    model = tiny_bert(num_labels=2, layers=2).train()
    batch, ids, mask, types = unpacked(True)
    labels = torch.tensor([1, 0, 1])
    teacher = token_scores(torch.rand(3, 1, 9, 32, generator=torch.Generator().manual_seed(1)), mask)

    def scores_loss_and_gradient():
        model.zero_grad()
        result = integrated_gradients(model, batch, labels, create_graph=True)
        scores = token_scores(result.attributions, mask)
        loss = attribution_loss(teacher, scores)
        loss.backward()  # the double backward runs under autocast too
        return scores, loss, model.bert.embeddings.word_embeddings.weight.grad.clone()

    exact_scores, exact, exact_gradient = scores_loss_and_gradient()
    with torch.autocast("cpu", dtype=dtype):
        mixed_scores, mixed, mixed_gradient = scores_loss_and_gradient()
    assert mixed_scores.dtype == torch.float32 or mixed_scores.dtype == dtype
    assert abs(mixed.item() - exact.item()) <= 0.02 * exact.item()
    assert (mixed_scores.float() - exact_scores).abs().max() < 0.02
    assert exact_gradient.abs().sum() > 0
    assert (mixed_gradient - exact_gradient).norm() <= 0.05 * exact_gradient.norm()
