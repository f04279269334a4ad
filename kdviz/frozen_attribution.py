"""Attributions of a model that is not being trained: for display and saving, and as token scores.

:func:`frozen_token_scores` is the one function that turns a frozen model's Integrated Gradients
into AD-KD's normalised token scores: the teacher cache, the live teacher, the probe set recorded
during training and the views all call it. :func:`attribute` keeps the raw (B, V, L, H)
attributions with their tokens and targets, for notebooks and for saving.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from kdviz.attribution import (AttributionSettings, integrated_gradients, model_inputs, signed_token_scores,
                               token_scores, view_names, view_targets)


@dataclass
class Attribution:
    """Integrated-Gradients attributions of a batch, with what is needed to show or reuse them.

    Attributes:
        attributions: (B, V, L, H) attribution of each example, view, token and hidden dimension.
        input_ids: (B, L) token ids.
        attention_mask: (B, L), 1 for real tokens.
        logits: (B, C) the model's logits on the unscaled input.
        targets: (B, V) each view's target value on the unscaled input (None for the gold view
            without labels).
        views: the V view names.
        steps: m; ``rule``: the Riemann rule.
        tokens: optional token strings per example (for views and saving).
    """

    attributions: torch.Tensor
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    logits: torch.Tensor
    targets: torch.Tensor | None
    views: list[str]
    steps: int
    rule: str
    tokens: list[list[str]] | None = field(default=None)

    def token_scores(self, top_k: int | None = None) -> torch.Tensor:
        """Normalised per-token scores, see :func:`token_scores`. Returns (B, V, L)."""
        return token_scores(self.attributions, self.attention_mask, top_k)

    def save(self, path: str | Path) -> None:
        """Write the tensors as safetensors and the rest as its metadata."""
        tensors = {name: getattr(self, name).detach().contiguous().cpu()
                   for name in ("attributions", "input_ids", "attention_mask", "logits", "targets")
                   if getattr(self, name) is not None}
        metadata = {"views": json.dumps(self.views), "steps": str(self.steps), "rule": self.rule,
                    "tokens": json.dumps(self.tokens)}
        save_file(tensors, str(path), metadata=metadata)

    @classmethod
    def load(cls, path: str | Path) -> "Attribution":
        """Read an :class:`Attribution` written by :meth:`save`."""
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata()
        tensors = {"targets": None, **load_file(str(path))}
        return cls(**tensors, views=json.loads(metadata["views"]), steps=int(metadata["steps"]),
                   rule=metadata["rule"], tokens=json.loads(metadata["tokens"]))


def attribute(
    model: torch.nn.Module,
    inputs: Mapping[str, torch.Tensor | None],
    labels: torch.Tensor | None = None,
    settings: AttributionSettings = AttributionSettings(),
    *,
    tokenizer=None,
) -> Attribution:
    """Attributions of a frozen model for display and saving, with tokens and targets (no graph kept).

    Args:
        model, inputs, labels, settings: as :func:`integrated_gradients`.
        tokenizer: when given, the result carries the token strings.

    Returns:
        An :class:`Attribution`; ``attributions`` has shape (B, V, L, H).
    """
    result = integrated_gradients(model, inputs, labels, settings)
    logits = result.logits.detach()
    names = view_names(settings.views, model.config.num_labels)
    targets = None
    if settings.views != "gold" or labels is not None:
        targets = view_targets(logits.unsqueeze(0).expand(len(names), -1, -1), labels, settings.views).T
    tokens = None
    if tokenizer is not None:
        tokens = [tokenizer.convert_ids_to_tokens(ids[mask.bool()].tolist())
                  for ids, mask in zip(inputs["input_ids"], inputs["attention_mask"])]
    return Attribution(result.attributions.detach(), inputs["input_ids"], inputs["attention_mask"], logits, targets,
                       names, settings.steps, settings.rule, tokens)


@dataclass
class TokenScores:
    """What a frozen model's attribution gives per example.

    Attributes:
        scores: (B, V, L) normalised token scores (zero on padding).
        logits: (B, C) the model's logits on the unscaled input.
        hidden_states: its hidden states when requested, else None.
    """

    scores: torch.Tensor
    logits: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None


def frozen_token_scores(
    model: torch.nn.Module,
    inputs: Mapping[str, torch.Tensor | None],
    labels: torch.Tensor | None,
    settings: AttributionSettings,
    *,
    output_hidden_states: bool = False,
) -> TokenScores:
    """Token scores of a model that is not being trained: the teacher (cache, live), the probe, the views.

    The batch is moved to the model's device and the results stay there (call ``.cpu()`` to
    bring them back); nothing keeps a graph.

    Args:
        model: a BERT-family sequence classifier (its train/eval mode is left as it is).
        inputs: ``input_ids``, ``attention_mask`` and optionally ``token_type_ids``, (B, L).
        labels: (B,) gold labels (needed for the ``"gold"`` view).
        settings: views, steps, rule, step chunk and top-K (``settings.for_student()`` for a student).
        output_hidden_states: also return the hidden states at the unscaled input.

    Returns:
        :class:`TokenScores` with scores (B, V, L) and logits (B, C).
    """
    device = next(model.parameters()).device
    inputs = {name: None if value is None else value.to(device) for name, value in model_inputs(inputs).items()}
    labels = None if labels is None else labels.to(device)
    result = integrated_gradients(model, inputs, labels, settings, output_hidden_states=output_hidden_states)
    hidden = tuple(h.detach() for h in result.hidden_states) if output_hidden_states else None
    scores = token_scores(result.attributions, inputs["attention_mask"], settings.top_k)
    return TokenScores(scores.detach(), result.logits.detach(), hidden)




def predicted_class_signed_scores(model: torch.nn.Module, inputs: Mapping[str, torch.Tensor | None],
                                  settings: AttributionSettings) -> torch.Tensor:
    """Which way each token pushes the class a frozen classifier predicts (:func:`signed_token_scores`
    of that class's view).

    Args:
        model: a BERT-family sequence classifier with at least two classes.
        inputs: ``input_ids``, ``attention_mask`` and optionally ``token_type_ids``, (B, L), any device.
        settings: the IG steps and rule (the views are every class's; top-K does not apply).

    Returns:
        (B, L) signed scores on the model's device: positive towards the predicted class, negative
        against it, zero on padding.
    """
    if model.config.num_labels < 2:
        raise ValueError("Signed scores towards the predicted class need a classifier (this model has one output).")
    device = next(model.parameters()).device
    inputs = {name: None if value is None else value.to(device) for name, value in model_inputs(inputs).items()}
    per_class = integrated_gradients(model, inputs, None, replace(settings, views="classes", top_k=None))
    predicted = per_class.logits.argmax(-1)
    signed = signed_token_scores(per_class.attributions, inputs["attention_mask"])  # (B, C, L)
    return signed[torch.arange(len(predicted), device=device), predicted].detach()
