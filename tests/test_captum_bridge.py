"""captum's layer methods on the embedding output from kdviz's zero baseline (the IG oracle is in test_attribution)."""

import pytest
import torch

from helpers import make_batch, tiny_bert
from kdviz.captum_bridge import captum_embedding_attributions


def test_captum_deeplift_runs_on_the_embedding_output():
    model = tiny_bert(num_labels=2).double()
    ids, mask, types = make_batch(True).values()
    result = captum_embedding_attributions(model, ids, mask, types, lambda z: z[:, 1], method="deeplift")
    assert result.shape == (3, 9, 32) and torch.isfinite(result).all() and result.abs().sum() > 0


def test_the_gate_makes_the_baseline_layer_output_zero():
    """IG's completeness from the zero baseline: the attributions sum to F(x) - F(0) (many steps)."""
    from kdviz.attribution import embedding_output_replaced

    model = tiny_bert(num_labels=2).double()
    ids, mask, types = make_batch(False).values()
    target = lambda logits: logits[:, 1]  # noqa: E731
    total = captum_embedding_attributions(model, ids, mask, types, target, steps=256, rule="middle").sum(dim=(1, 2))
    with torch.no_grad():
        at_input = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits[:, 1]
        with embedding_output_replaced(model, torch.zeros(3, 9, 32, dtype=torch.float64)):
            at_zero = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits[:, 1]
    torch.testing.assert_close(total, at_input - at_zero, rtol=1e-4, atol=1e-4)


def test_unknown_method_is_refused():
    model = tiny_bert(num_labels=2)
    ids, mask, types = make_batch(False).values()
    with pytest.raises(ValueError, match="Unknown captum method 'saliency'"):
        captum_embedding_attributions(model, ids, mask, types, lambda z: z[:, 0], method="saliency")


def test_occlusion_is_the_output_change_when_one_token_is_set_to_the_baseline():
    from kdviz.attribution import embedding_output_replaced

    model = tiny_bert(num_labels=2).double()
    ids, mask, types = make_batch(False).values()
    ids, mask, types = ids[:1], mask[:1], types[:1]
    target = lambda logits: logits[:, 1]  # noqa: E731
    result = captum_embedding_attributions(model, ids, mask, types, target, method="occlusion")
    with torch.no_grad():
        embedded = model.base_model.embeddings(input_ids=ids, token_type_ids=types)
        full = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits[0, 1]
        occluded = embedded.clone()
        occluded[0, 3] = 0
        with embedding_output_replaced(model, occluded):
            without_token_3 = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits[0, 1]
    torch.testing.assert_close(result[0, 3], (full - without_token_3).expand(32), check_dtype=False)  # each dimension


def test_shapley_values_sum_to_the_output_change_from_the_baseline():
    """Efficiency: every sampled permutation's marginal contributions add up to F(x) - F(0) exactly."""
    from kdviz.attribution import embedding_output_replaced

    model = tiny_bert(num_labels=2).double()
    ids, mask, types = make_batch(False).values()
    ids, mask, types = ids[:1], mask[:1], types[:1]
    target = lambda logits: logits[:, 1]  # noqa: E731
    result = captum_embedding_attributions(model, ids, mask, types, target, method="shapley_value_sampling", samples=4)
    torch.testing.assert_close(result[0, :, :1].expand(-1, 32), result[0])  # one value per token
    with torch.no_grad():
        full = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits[0, 1]
        with embedding_output_replaced(model, torch.zeros(1, 9, 32, dtype=torch.float64)):
            baseline = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits[0, 1]
    torch.testing.assert_close(result[0, :, 0].sum(), full - baseline, check_dtype=False)
