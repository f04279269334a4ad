"""captum methods on the embedding-block output, from the same zero baseline kdviz's IG uses.

captum's layer methods take their baseline at the *inputs* (token ids) and push it through the
layer, so the layer's baseline output is the embedding of some ids, never zero. A gate input that
multiplies the embedding output (1 for the input, 0 for the baseline) makes the baseline layer
output exactly zero, so ``LayerIntegratedGradients(forward, model.base_model.embeddings)`` then
computes the same quantity as :func:`kdviz.attribution.integrated_gradients`. Used as a test
oracle, in the benchmarks, and for the comparison methods of the views (first order only: captum
is not for the training loss). Occlusion and Shapley value sampling perturb the same tensor (each
token's embedding output set to the same zero baseline) and take no gradient: a genuinely
different second opinion.
"""

from __future__ import annotations

from typing import Callable

import torch
from captum.attr import (LayerDeepLift, LayerGradientXActivation, LayerIntegratedGradients, Occlusion,
                         ShapleyValueSampling)

GRADIENT_METHODS = ("integrated_gradients", "input_x_gradient", "deeplift")
PERTURBATION_METHODS = ("occlusion", "shapley_value_sampling")
"""Methods that never take a gradient: each token's embedding output is replaced by the zero baseline."""
CAPTUM_METHODS = GRADIENT_METHODS + PERTURBATION_METHODS


def captum_embedding_attributions(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    token_type_ids: torch.Tensor | None,
    target: Callable[[torch.Tensor], torch.Tensor],
    *,
    method: str = "integrated_gradients",
    steps: int = 50,
    rule: str = "right",
    samples: int = 25,
) -> torch.Tensor:
    """Attribute ``target(logits)`` to the embedding-block output with a captum layer method.

    Args:
        model: a BERT-family sequence classifier.
        input_ids, attention_mask, token_type_ids: (B, L) tensors.
        target: maps logits (N, C) to one value per example (N,), e.g. ``-log p_c``.
        method: ``"integrated_gradients"`` (``LayerIntegratedGradients``, zero baseline),
            ``"input_x_gradient"`` (``LayerGradientXActivation``), ``"deeplift"``
            (``LayerDeepLift``, zero baseline), or a perturbation method with tokens as features and
            the zero embedding output as their baseline: ``"occlusion"`` (``Occlusion``, one token
            at a time) or ``"shapley_value_sampling"`` (``ShapleyValueSampling``).
        steps: IG steps (captum needs at least 2).
        rule: Riemann rule for IG: ``right``, ``left``, ``middle`` or ``trapezoid`` (captum's
            trapezoid weights sum to (m-1)/m).
        samples: permutations sampled by Shapley value sampling.

    Returns:
        (B, L, H) attributions (a perturbation method gives every hidden dimension of a token the
        token's value).
    """
    if method not in CAPTUM_METHODS:
        raise ValueError(f"Unknown captum method {method!r}; choose from {CAPTUM_METHODS}.")
    embeddings = model.base_model.embeddings
    if method in PERTURBATION_METHODS:
        return _perturbation_attributions(model, input_ids, attention_mask, token_type_ids, target, method, samples)
    if method == "input_x_gradient":
        def forward(ids, mask, types):
            return target(model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits)

        return LayerGradientXActivation(forward, embeddings).attribute(
            input_ids, additional_forward_args=(attention_mask, token_type_ids))

    gate = {}
    handle = embeddings.register_forward_hook(lambda module, args, output: output * gate["value"])
    try:
        def gated_forward(gate_value, ids, mask, types):
            gate["value"] = gate_value.view(-1, 1, 1).to(next(model.parameters()).dtype)
            return target(model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits)

        ones = torch.ones(len(input_ids), dtype=next(model.parameters()).dtype, device=input_ids.device)
        arguments = (input_ids, attention_mask, token_type_ids)
        if method == "integrated_gradients":
            return LayerIntegratedGradients(gated_forward, embeddings).attribute(
                ones, baselines=torch.zeros_like(ones), additional_forward_args=arguments, n_steps=steps,
                method=f"riemann_{rule}")
        return LayerDeepLift(_ForwardModule(gated_forward), embeddings).attribute(
            ones, baselines=torch.zeros_like(ones), additional_forward_args=arguments)
    finally:
        handle.remove()


@torch.no_grad()
def _perturbation_attributions(model, input_ids, attention_mask, token_type_ids, target, method: str,
                               samples: int) -> torch.Tensor:
    """Occlusion or Shapley value sampling over the tokens of the embedding-block output."""
    from kdviz.attribution import embedding_output_replaced

    embedded = model.base_model.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)

    def forward(values, ids, mask, types):
        with embedding_output_replaced(model, values):
            return target(model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits)

    arguments = (input_ids, attention_mask, token_type_ids)
    if method == "occlusion":
        return Occlusion(forward).attribute(embedded, sliding_window_shapes=(1, embedded.shape[-1]), baselines=0.0,
                                            additional_forward_args=arguments, perturbations_per_eval=16)
    tokens = torch.arange(embedded.shape[1], device=embedded.device).view(1, -1, 1).expand_as(embedded).contiguous()
    return ShapleyValueSampling(forward).attribute(embedded, baselines=0.0, feature_mask=tokens, n_samples=samples,
                                                   additional_forward_args=arguments, perturbations_per_eval=16)


class _ForwardModule(torch.nn.Module):
    """captum's DeepLift wants a module; this wraps a forward function."""

    def __init__(self, forward):
        super().__init__()
        self._forward = forward

    def forward(self, *args):
        return self._forward(*args)
