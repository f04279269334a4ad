"""Integrated Gradients on the embedding-block output of a BERT-family classifier (AD-KD, section 1).

The attributed tensor is the output of ``model.base_model.embeddings`` (``hidden_states[0]``), the
baseline is zero. For scales ``alpha_k`` and weights ``w_k`` of a Riemann rule::

    a = E * sum_k w_k * dF/dX |_{X = alpha_k E}

With the released code's right rule and ``m = 1`` this is gradient x input. All ``m`` scaled copies
of a batch go through the network in one batched pass (optionally in chunks of steps), and every
view's gradient is taken through that same pass (one forward pass, one dropout mask, as the
released code does for MNLI's per-class views). With ``create_graph=True`` the result stays
differentiable with respect to every model parameter, embeddings included, which is what the
student's attribution loss needs; there, chunks of steps bound the memory by recomputation (see
``AttributionSettings.step_chunk``).

Targets ("views"), always the example's own value so that each example's gradient is its own:

- ``"gold"``: the loss on the gold label (cross-entropy, or squared error for regression);
- ``"classes"``: one view per class c, ``-log softmax(z)[c]``;
- an ``int`` c: the single view of class c.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace

import torch
import torch.utils.checkpoint

RULES = ("right", "left", "middle", "trapezoid")


def riemann_rule(steps: int, rule: str = "right") -> tuple[torch.Tensor, torch.Tensor]:
    """Scales and weights of a Riemann rule for the path integral from 0 to 1.

    Args:
        steps: m, the number of scaled copies.
        rule: ``"right"`` (k/m, the released code), ``"left"`` ((k-1)/m), ``"middle"``
            ((k-1/2)/m), or ``"trapezoid"`` (m points from 0 to 1, end weights halved; the weights
            sum to 1, where captum's ``riemann_trapezoid`` weights sum to (m-1)/m).

    Returns:
        ``(alphas, weights)``, each of shape (m,), float64.
    """
    if rule not in RULES:
        raise ValueError(f"Unknown Riemann rule {rule!r}; choose from {RULES}.")
    if steps < 1 or (rule == "trapezoid" and steps < 2):
        raise ValueError(f"{rule} rule needs at least {2 if rule == 'trapezoid' else 1} step(s), got {steps}.")
    k = torch.arange(1, steps + 1, dtype=torch.float64)
    weights = torch.full((steps,), 1.0 / steps, dtype=torch.float64)
    if rule == "right":
        alphas = k / steps
    elif rule == "left":
        alphas = (k - 1) / steps
    elif rule == "middle":
        alphas = (k - 0.5) / steps
    else:
        alphas = torch.linspace(0, 1, steps, dtype=torch.float64)
        weights = torch.full((steps,), 1.0 / (steps - 1), dtype=torch.float64)
        weights[0] = weights[-1] = 0.5 / (steps - 1)
    return alphas, weights


def view_names(views: str | int, num_labels: int) -> list[str]:
    """Names of the views a ``views`` setting stands for: ``["gold"]``, ``["class 0", ...]`` or ``["class c"]``."""
    if views == "gold":
        return ["gold"]
    if views == "classes":
        if num_labels < 2:
            raise ValueError("Per-class views need a classifier; a regression task has only the 'gold' view.")
        return [f"class {c}" for c in range(num_labels)]
    if isinstance(views, int) and 0 <= views < num_labels:
        return [f"class {views}"]
    raise ValueError(f"views must be 'gold', 'classes' or a class index below {num_labels}, got {views!r}.")


def default_views(num_labels: int) -> str:
    """AD-KD's choice: the gold-label loss for binary and regression tasks, per-class views above two classes."""
    return "classes" if num_labels > 2 else "gold"


def view_targets(logits: torch.Tensor, labels: torch.Tensor | None, views: str | int) -> torch.Tensor:
    """Each example's target value for each view.

    Args:
        logits: (..., V, N, C) logits; slice v along the view axis is scored for view v.
        labels: (N,) gold labels (class ids, or float scores when C == 1); needed for ``"gold"``.
        views: ``"gold"``, ``"classes"`` (V == C) or a class index (V == 1).

    Returns:
        (..., V, N) target values F (lower is better for every view).
    """
    if views == "gold":
        if labels is None:
            raise ValueError("The 'gold' view needs the gold labels.")
        if logits.shape[-1] == 1:
            return (logits[..., 0] - labels.to(logits.dtype)).pow(2)
        index = labels.view(-1, 1).expand(*logits.shape[:-1], 1)
        return -torch.log_softmax(logits, dim=-1).gather(-1, index).squeeze(-1)
    negative_log_probs = -torch.log_softmax(logits, dim=-1)
    if views == "classes":
        return negative_log_probs.diagonal(dim1=-3, dim2=-1).movedim(-1, -2)
    return negative_log_probs[..., views]


def check_double_backward(model: torch.nn.Module) -> None:
    """Refuse a model whose attention kernel has no double backward (SDPA, flash attention).

    Raises:
        ValueError: naming the kernel and the fix (load with ``attn_implementation="eager"``).
    """
    kernel = getattr(getattr(model, "config", None), "_attn_implementation", "eager")
    if kernel not in (None, "eager"):
        raise ValueError(
            f"The model runs the fused attention kernel {kernel!r}, which has no double backward, so the "
            f"attribution loss cannot train it. Load it with attn_implementation='eager' (kdviz's loaders and "
            f"build_student do) or call model.set_attn_implementation('eager')."
        )


@contextmanager
def embedding_output_replaced(model: torch.nn.Module, replacement: torch.Tensor):
    """Within the block, the model's embedding block returns ``replacement`` instead of its output."""
    handle = model.base_model.embeddings.register_forward_hook(lambda module, args, output: replacement)
    try:
        yield
    finally:
        handle.remove()


def _repeat(tensor: torch.Tensor | None, times: int) -> torch.Tensor | None:
    return None if tensor is None else tensor.repeat(times, *([1] * (tensor.dim() - 1)))


@dataclass(frozen=True)
class AttributionSettings:
    """How token attributions are computed: one object, built once from a run's config.

    Attributes:
        views: ``"gold"``, ``"classes"`` or a class index (see the module docstring).
        steps: IG steps m (1 = gradient x input).
        rule: Riemann rule, see :func:`riemann_rule`.
        top_k: hidden dimensions kept per token before the norm (the teacher's K); None keeps all.
        step_chunk: at most this many steps per pass, to bound memory (all at once by default).
            Without dropout (eval mode, or dropout 0) it changes how the work is split, not the
            result: attributions, logits and every gradient equal the unchunked ones to float
            round-off (tested). With dropout on, each chunk's pass draws its own dropout masks where
            one pass draws one set for all steps, so the values differ as between two draws of the
            masks. On a trained student (``create_graph``) each chunk's double-backward graph is
            rebuilt during the loss's backward pass, one chunk at a time, with the same dropout
            masks (activation recomputation: memory of one chunk instead of m steps, for about one
            more pass per chunk). As without chunks, the logits and hidden states for the other
            terms come from the pass that holds the unscaled input (the last step of the right and
            trapezoid rules; one more forward pass for the others).
    """

    views: str | int = "gold"
    steps: int = 1
    rule: str = "right"
    top_k: int | None = None
    step_chunk: int | None = None

    def for_student(self) -> "AttributionSettings":
        """The same settings without top-K: AD-KD scores the student over all hidden dimensions."""
        return replace(self, top_k=None)

    def result_fields(self) -> dict:
        """The settings that change the scores (a teacher cache's key): all but ``step_chunk``."""
        return {"views": self.views, "steps": self.steps, "rule": self.rule, "top_k": self.top_k}


@dataclass
class IntegratedGradientsOutput:
    """Attributions of a batch plus the model outputs at the unscaled input.

    With the right rule, the last scaled copy is the unscaled input, so its logits and hidden
    states serve the other losses and the model runs one forward pass in all.

    Attributes:
        attributions: (B, V, L, H), differentiable when ``create_graph`` was set.
        logits: (B, C) at the unscaled input (or from an extra pass for other rules).
        hidden_states: the hidden states at the unscaled input when requested, else None.
    """

    attributions: torch.Tensor
    logits: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None


def model_inputs(inputs: Mapping[str, torch.Tensor | None]) -> dict[str, torch.Tensor | None]:
    """The model inputs of a batch: ``input_ids``, ``attention_mask`` and ``token_type_ids`` (None when absent)."""
    return {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"],
            "token_type_ids": inputs.get("token_type_ids")}


def integrated_gradients(
    model: torch.nn.Module,
    inputs: Mapping[str, torch.Tensor | None],
    labels: torch.Tensor | None = None,
    settings: AttributionSettings = AttributionSettings(),
    *,
    create_graph: bool = False,
    output_hidden_states: bool = False,
) -> IntegratedGradientsOutput:
    """IG of each view's target with respect to the embedding-block output, all steps batched.

    Args:
        model: a BERT-family ``...ForSequenceClassification`` model (its ``base_model.embeddings``
            is the attributed block). Its train/eval mode is left as it is.
        inputs: ``input_ids`` and ``attention_mask`` (B, L), optionally ``token_type_ids`` (B, L);
            padded positions get zero attribution.
        labels: (B,) gold labels, for the ``"gold"`` view.
        settings: views, steps, rule and step chunk (``top_k`` is not used here).
        create_graph: keep the attributions differentiable (the student side). Requires eager
            attention; the embedding output is not detached, so the loss reaches the embeddings.
        output_hidden_states: also return the hidden states at the unscaled input.

    Returns:
        An :class:`IntegratedGradientsOutput` with attributions of shape (B, V, L, H).
    """
    if create_graph:
        check_double_backward(model)
    inputs = model_inputs(inputs)
    alphas, weights = riemann_rule(settings.steps, settings.rule)
    num_views = len(view_names(settings.views, model.config.num_labels))
    embedded = model.base_model.embeddings(input_ids=inputs["input_ids"],
                                           token_type_ids=inputs["token_type_ids"])  # (B, L, H)
    if not create_graph:
        embedded = embedded.detach()
    alphas, weights = alphas.to(embedded), weights.to(embedded)
    chunk = settings.step_chunk or settings.steps
    total = torch.zeros_like(embedded).unsqueeze(1).repeat(1, num_views, 1, 1)  # (B, V, L, H)
    logits_at_input = hidden_at_input = None
    per_chunk = functools.partial(_weighted_gradients, model, inputs, labels=labels, views=settings.views,
                                  num_views=num_views)

    for start in range(0, settings.steps, chunk):
        scale, weight = alphas[start:start + chunk], weights[start:start + chunk]
        at_input = start + chunk >= settings.steps and bool(scale[-1] == 1)  # the unscaled input is a step: reuse it
        keep_hidden = output_hidden_states and at_input
        if create_graph and chunk < settings.steps:
            # bounded memory: the checkpoint drops what the chunk's double-backward graph saves and
            # recomputes it during the loss's backward pass, one chunk at a time, with the same dropout
            # masks; non-reentrant, so that DDP sees each parameter's gradient once per step. The last
            # chunk also returns its logits (and hidden states) at the unscaled input: no extra pass
            def recomputed(embedded, scale=scale, weight=weight, at_input=at_input, keep_hidden=keep_hidden):
                grads, logits, hidden = per_chunk(embedded, scale=scale, weight=weight, create_graph=True,
                                                  output_hidden_states=keep_hidden)
                return (grads, logits[-1], *(hidden or ())) if at_input else grads

            outputs = torch.utils.checkpoint.checkpoint(recomputed, embedded, use_reentrant=False)
            if at_input:
                grads, logits_at_input, *hidden = outputs
                hidden_at_input = tuple(hidden) if keep_hidden else None
            else:
                grads = outputs
            total = total + grads
            continue
        grads, logits, hidden = per_chunk(embedded, scale=scale, weight=weight, create_graph=create_graph,
                                          output_hidden_states=keep_hidden)
        total = total + grads
        if at_input:
            logits_at_input, hidden_at_input = logits[-1], hidden
    if logits_at_input is None:
        out = model(**inputs, output_hidden_states=output_hidden_states)
        logits_at_input, hidden_at_input = out.logits, (out.hidden_states if output_hidden_states else None)
    attributions = total * embedded.unsqueeze(1)
    return IntegratedGradientsOutput(attributions, logits_at_input, hidden_at_input)


def _weighted_gradients(model, inputs, embedded, labels, views, num_views: int, scale: torch.Tensor,
                        weight: torch.Tensor, create_graph: bool, output_hidden_states: bool):
    """One chunk of S steps: ``sum_k w_k dF_v/dX`` at ``X = alpha_k E`` for every view v, from one forward pass.

    Returns:
        ``(grads, logits, hidden)``: (B, V, L, H) weighted gradients, (S, B, C) logits per step, and the
        hidden states of the chunk's last step when ``output_hidden_states`` (else None).
    """
    copies, batch = scale.numel(), embedded.shape[0]
    with torch.enable_grad():
        # (S, B, L, H) scaled embedding outputs, flattened to one batch of S*B examples; every view
        # is a target of this one forward pass (one dropout mask, as in the released code)
        scaled = scale.view(-1, 1, 1, 1) * embedded.unsqueeze(0)
        if not create_graph:
            scaled = scaled.detach().requires_grad_(True)
        flat = scaled.reshape(copies * batch, *embedded.shape[1:])
        with embedding_output_replaced(model, flat):
            out = model(**{name: _repeat(value, copies) for name, value in inputs.items()},
                        output_hidden_states=output_hidden_states)
        logits = out.logits.view(copies, batch, -1)
        targets = view_targets(logits.unsqueeze(1).expand(-1, num_views, -1, -1), labels, views)  # (S, V, B)
        grads = torch.stack([  # (S, V, B, L, H): one gradient per view through the shared graph
            torch.autograd.grad(targets[:, v].sum(), flat, create_graph=create_graph,
                                retain_graph=create_graph or v < num_views - 1)[0].view(copies, *embedded.shape)
            for v in range(num_views)], dim=1)
    hidden = None
    if output_hidden_states:
        hidden = tuple(h.view(copies, batch, *h.shape[1:])[-1] for h in out.hidden_states)
    return torch.einsum("s,svblh->bvlh", weight, grads), logits, hidden


def token_scores(attributions: torch.Tensor, attention_mask: torch.Tensor, top_k: int | None = None) -> torch.Tensor:
    """One score per token: L2 norm of |a| over the top-K hidden dimensions, L2-normalised over real tokens.

    The teacher side uses ``top_k`` (K = H keeps every dimension); the student side passes None.

    Args:
        attributions: (..., L, H), for example (B, V, L, H).
        attention_mask: (B, L); padding scores are exactly zero.
        top_k: keep the K largest |a| per token before the norm; None for all.

    Returns:
        (..., L) scores with unit L2 norm over each example's real tokens.
    """
    magnitude = attributions.abs()
    if top_k is not None and top_k < magnitude.shape[-1]:
        magnitude = magnitude.topk(top_k, dim=-1).values
    mask = attention_mask.to(magnitude.dtype)
    mask = mask.view(mask.shape[0], *([1] * (magnitude.dim() - 3)), mask.shape[-1])
    # sum of squares, masked first: a zero vector's norm has no usable gradient
    squares = magnitude.pow(2).sum(dim=-1) * mask
    per_token = torch.where(squares > 0, squares, torch.ones_like(squares)).sqrt() * (squares > 0)
    return per_token / per_token.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(per_token.dtype).tiny)


def signed_token_scores(attributions: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """One signed score per token: which way it pushes the view's class, for display (AD-KD trains on
    :func:`token_scores`, the magnitudes).

    The attribution is summed over the hidden dimensions (captum's usual summary) and negated: a
    view's target is ``-log p(class)`` (lower is better), so a token whose attribution lowers it
    pushes *towards* the class and gets a positive score.

    Args:
        attributions: (..., L, H), for example (B, V, L, H).
        attention_mask: (B, L); padding scores are exactly zero.

    Returns:
        (..., L) scores with unit L2 norm over each example's real tokens: positive towards the view's
        class (or, for a regression's gold view, towards the gold score), negative against it.
    """
    mask = attention_mask.to(attributions.dtype)
    mask = mask.view(mask.shape[0], *([1] * (attributions.dim() - 3)), mask.shape[-1])
    support = -attributions.sum(dim=-1) * mask
    return support / support.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(support.dtype).tiny)
