"""Does a model use the tokens its attribution points at? ERASER's comprehensiveness and sufficiency.

DeYoung et al. (ACL 2020): with ``r`` a rationale (here the top ``fraction`` of an example's
ordinary tokens by some token scores) and ``y`` the class the model predicts on the whole input,

- comprehensiveness = p(y | x) - p(y | x without r): high when removing the rationale hurts;
- sufficiency = p(y | x) - p(y | r alone): low when the rationale alone keeps the prediction.

Removing means deleting the tokens (the sequence gets shorter), as ERASER does; ``[CLS]``,
``[SEP]`` and padding always stay. Classification only (a regression output has no class
probability).

One cut (the top 20%) depends on where it falls; ERASER's AOPC ("area over the perturbation
curve") averages each measure over rationales of 1, 5, 10, 20 and 50% of the tokens
(:data:`AOPC_BINS`). Neither number means much alone: a random rationale of the same sizes (a
seeded uniform draw of token scores) is the baseline a rationale has to beat.

How to read a sign: a *negative* comprehensiveness means the model became *more* sure of its
prediction without the rationale (the tokens pointed at were, on balance, pushing against it:
magnitude scores rank influence in either direction); a negative sufficiency means the rationale
alone is more convincing to the model than the whole input.
"""

from __future__ import annotations

import math
from typing import Mapping

import torch

from kdviz.tasks import MODEL_INPUTS

FRACTION = 0.2
"""The rationale's default share of an example's ordinary tokens."""
AOPC_BINS = (0.01, 0.05, 0.1, 0.2, 0.5)
"""ERASER's rationale sizes for AOPC (shares of an example's ordinary tokens)."""
RANDOM_DRAWS = 5
"""Random rationales drawn for the baseline (mean and spread over the draws)."""
NEGATIVE_VALUES = ("A negative comprehensiveness means the model was *more* sure of its prediction once the "
                   "rationale was deleted: those tokens were, on balance, pushing against the predicted class "
                   "(magnitude scores rank influence in either direction). A negative sufficiency means the "
                   "rationale alone convinced the model more than the whole input.")
"""One sentence on how to read a negative value, for reports and views."""


def rationale_mask(scores: torch.Tensor, ordinary: torch.Tensor, fraction: float) -> torch.Tensor:
    """The top ``fraction`` of each example's ordinary tokens by score (at least one).

    Args:
        scores: (B, L) token scores (higher: more important).
        ordinary: (B, L) True for real tokens that are not special tokens.
        fraction: share of the ordinary tokens in the rationale, in (0, 1].

    Returns:
        (B, L) bool, True on the rationale's tokens.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}.")
    ranked = scores.float().masked_fill(~ordinary, -math.inf).argsort(dim=-1, descending=True, stable=True)
    chosen = torch.zeros_like(ordinary)
    for row, count in enumerate(ordinary.sum(-1).tolist()):
        k = max(1, math.ceil(fraction * count)) if count else 0
        chosen[row, ranked[row, :k]] = True
    return chosen


def keep_tokens(inputs: Mapping[str, torch.Tensor], keep: torch.Tensor, pad_token_id: int = 0) -> dict:
    """Delete the tokens ``keep`` leaves out: each row's kept tokens moved left, then padded.

    Args:
        inputs: ``input_ids``, ``attention_mask`` (and ``token_type_ids``), (B, L).
        keep: (B, L) bool; padding positions are dropped whatever it says.
        pad_token_id: the id written into the new padding.

    Returns:
        The same keys, (B, L') with L' the longest kept row.
    """
    keep = keep & inputs["attention_mask"].bool()
    length = int(keep.sum(-1).max())
    result = {}
    for name in MODEL_INPUTS:
        if inputs.get(name) is None:
            continue
        fill = pad_token_id if name == "input_ids" else 0
        rows = [values[kept] for values, kept in zip(inputs[name], keep)]
        result[name] = torch.stack([torch.cat([r, r.new_full((length - len(r),), fill)]) for r in rows])
    return result


@torch.no_grad()
def eraser_curve(model: torch.nn.Module, inputs: Mapping[str, torch.Tensor], scores: torch.Tensor,
                 special: torch.Tensor, fractions: tuple[float, ...] = AOPC_BINS) -> dict[str, torch.Tensor]:
    """Comprehensiveness and sufficiency of rationales of several sizes, per example (one pass on the
    whole input, two per size).

    Args:
        model: a sequence classifier (run as it is: put it in eval mode first).
        inputs: ``input_ids``, ``attention_mask`` (and ``token_type_ids``), (B, L), on any device.
        scores: (B, L) token scores that rank the tokens (the model's own, or another model's).
        special: (B, L) True on special tokens (``[CLS]``, ``[SEP]``), which are never removed.
        fractions: the rationale sizes, as shares of each example's ordinary tokens.

    Returns:
        ``comprehensiveness`` and ``sufficiency`` (B, F), one column per fraction; ``predicted`` (B,)
        the class of the whole input, and ``probability`` (B,) its probability.
    """
    if model.config.num_labels < 2:
        raise ValueError("Comprehensiveness and sufficiency need class probabilities: this model has one output "
                         "(regression).")
    device = next(model.parameters()).device
    inputs = {k: v.to(device) for k, v in inputs.items() if k in MODEL_INPUTS and v is not None}
    special, scores = special.to(device), scores.to(device)
    real = inputs["attention_mask"].bool()
    pad = getattr(model.config, "pad_token_id", None) or 0

    def probabilities(batch):
        return torch.softmax(model(**batch).logits.float(), dim=-1)

    full = probabilities(inputs)
    predicted = full.argmax(-1)
    pick = lambda p: p.gather(1, predicted[:, None])[:, 0]
    probability = pick(full)
    comprehensiveness, sufficiency = [], []
    for fraction in fractions:
        rationale = rationale_mask(scores, real & ~special, fraction)
        comprehensiveness.append(probability - pick(probabilities(keep_tokens(inputs, real & ~rationale, pad))))
        sufficiency.append(probability - pick(probabilities(keep_tokens(inputs, rationale | special, pad))))
    return {"comprehensiveness": torch.stack(comprehensiveness, -1).cpu(),
            "sufficiency": torch.stack(sufficiency, -1).cpu(),
            "predicted": predicted.cpu(), "probability": probability.cpu()}


def eraser_scores(model: torch.nn.Module, inputs: Mapping[str, torch.Tensor], scores: torch.Tensor,
                  special: torch.Tensor, fraction: float = FRACTION) -> dict[str, torch.Tensor]:
    """Comprehensiveness and sufficiency of one rationale size, per example (:func:`eraser_curve`).

    Args:
        model, inputs, scores, special: as :func:`eraser_curve`.
        fraction: share of each example's ordinary tokens in the rationale.

    Returns:
        ``comprehensiveness`` and ``sufficiency`` (B,), ``predicted`` (B,) the class of the whole
        input, and ``probability`` (B,) its probability.
    """
    curve = eraser_curve(model, inputs, scores, special, (fraction,))
    return {**curve, "comprehensiveness": curve["comprehensiveness"][:, 0],
            "sufficiency": curve["sufficiency"][:, 0]}
