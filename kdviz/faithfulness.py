"""Does a model use the tokens its attribution points at? ERASER's comprehensiveness and sufficiency.

DeYoung et al. (ACL 2020): with ``r`` a rationale (here the top ``fraction`` of an example's
ordinary tokens by some token scores) and ``y`` the class the model predicts on the whole input,

- comprehensiveness = p(y | x) - p(y | x without r): high when removing the rationale hurts;
- sufficiency = p(y | x) - p(y | r alone): low when the rationale alone keeps the prediction.

Removing means deleting the tokens (the sequence gets shorter), as ERASER does; ``[CLS]``,
``[SEP]`` and padding always stay. Classification only (a regression output has no class
probability).
"""

from __future__ import annotations

import math
from typing import Mapping

import torch

MODEL_INPUTS = ("input_ids", "token_type_ids", "attention_mask")
FRACTION = 0.2
"""The rationale's default share of an example's ordinary tokens."""


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
def eraser_scores(model: torch.nn.Module, inputs: Mapping[str, torch.Tensor], scores: torch.Tensor,
                  special: torch.Tensor, fraction: float = FRACTION) -> dict[str, torch.Tensor]:
    """Comprehensiveness and sufficiency of a rationale, per example.

    Args:
        model: a sequence classifier (run as it is: put it in eval mode first).
        inputs: ``input_ids``, ``attention_mask`` (and ``token_type_ids``), (B, L), on any device.
        scores: (B, L) token scores that rank the tokens (the model's own, or another model's).
        special: (B, L) True on special tokens (``[CLS]``, ``[SEP]``), which are never removed.
        fraction: share of each example's ordinary tokens in the rationale.

    Returns:
        ``comprehensiveness`` and ``sufficiency`` (B,), ``predicted`` (B,) the class of the whole
        input, and ``probability`` (B,) its probability.
    """
    if model.config.num_labels < 2:
        raise ValueError("Comprehensiveness and sufficiency need class probabilities: this model has one output "
                         "(regression).")
    device = next(model.parameters()).device
    inputs = {k: v.to(device) for k, v in inputs.items() if k in MODEL_INPUTS and v is not None}
    special, scores = special.to(device), scores.to(device)
    real = inputs["attention_mask"].bool()
    rationale = rationale_mask(scores, real & ~special, fraction)
    pad = getattr(model.config, "pad_token_id", None) or 0

    def probabilities(batch):
        return torch.softmax(model(**batch).logits.float(), dim=-1)

    full = probabilities(inputs)
    predicted = full.argmax(-1)
    pick = lambda p: p.gather(1, predicted[:, None])[:, 0]
    without = pick(probabilities(keep_tokens(inputs, real & ~rationale, pad)))
    alone = pick(probabilities(keep_tokens(inputs, rationale | special, pad)))
    probability = pick(full)
    return {"comprehensiveness": (probability - without).cpu(), "sufficiency": (probability - alone).cpu(),
            "predicted": predicted.cpu(), "probability": probability.cpu()}
