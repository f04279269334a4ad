"""``DistillationTrainer``: ``transformers.Trainer`` with a loss of named, weighted terms.

    total = w_ce * CE + w_kd * KD(T) + beta * attribution + lam * layer_projection

Only ``compute_loss`` (and the optimiser, to train the ALP width projection with the student) is
overridden; checkpoints, resume, best-epoch selection, mixed precision and several processes are
the ``Trainer``'s. Each term's mean over a logging window is logged as ``loss_<term>``; the
window's mean ALP weights are kept for the history callback.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import TrainerCallback
from transformers.modeling_outputs import SequenceClassifierOutput

from kdviz.attribution import default_views, integrated_gradients, token_scores
from kdviz.config import DistillConfig
from kdviz.losses import annealed_temperature, attribution_loss, kd_loss
from kdviz.projection import LayerProjection
from kdviz.runs import PROJECTION, save_projection
from kdviz.teacher_cache import TeacherCache
from kdviz.training import GlueTrainer


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; training stops keeping the last good checkpoint."""


def task_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the gold labels, or MSE for a single output (STS-B)."""
    if logits.shape[-1] == 1:
        return F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype))
    return F.cross_entropy(logits, labels)


def resolve_views(config: DistillConfig, num_labels: int) -> str:
    """``auto`` -> the gold-label view for binary/regression, per-class views above two classes."""
    return default_views(num_labels) if config.views == "auto" else config.views


class DistillationTrainer(GlueTrainer):
    """A ``Trainer`` for a student distilled from a frozen teacher.

    Args:
        teacher: the fine-tuned teacher (frozen, eval mode, eager attention).
        config: the run's :class:`DistillConfig` (weights, temperature, IG and ALP settings).
        teacher_cache: cached teacher logits and token scores per training ``idx``; without it,
            the teacher runs every step.
        projection: the :class:`LayerProjection` when ``config.lam > 0``.
        *args, **kwargs: as ``transformers.Trainer`` (with ``glue_task``).
    """

    def __init__(self, *args, teacher, config: DistillConfig, teacher_cache: TeacherCache | None = None,
                 projection: LayerProjection | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.teacher = teacher.eval().requires_grad_(False).to(self.args.device)
        self.config = config
        self.teacher_cache = teacher_cache
        self.projection = projection.to(self.args.device) if projection is not None else None
        self.views = resolve_views(config, teacher.config.num_labels)
        self._term_sums: dict[str, torch.Tensor] = {}
        self._term_count = 0
        self._alpha_sum: torch.Tensor | None = None
        self._alpha_count = 0
        self.window_alpha: torch.Tensor | None = None  # mean ALP weights of the last logging window

    def create_optimizer(self, model=None):
        """The ``Trainer``'s optimiser, plus a group for the ALP width projection when there is one."""
        optimizer = super().create_optimizer(model)
        parameters = list(self.projection.parameters()) if self.projection is not None else []
        in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
        if parameters and id(parameters[0]) not in in_optimizer:
            optimizer.add_param_group({"params": parameters, "weight_decay": 0.0})
        return optimizer

    def current_temperature(self) -> float:
        """T, annealed linearly over the epochs when the config asks for it."""
        if not self.config.anneal_temperature:
            return self.config.temperature
        epoch = math.floor(self.state.epoch or 0.0)
        return annealed_temperature(self.config.temperature, epoch, self.args.num_train_epochs)

    def _teacher_outputs(self, inputs: dict, need_scores: bool, need_hidden: bool):
        """Teacher logits, token scores (B, V, L) and hidden states, from the cache where possible."""
        logits = scores = hidden = None
        mask = inputs["attention_mask"]
        if self.teacher_cache is not None and inputs.get("idx") is not None:
            logits, scores = self.teacher_cache.lookup(inputs["idx"], mask.shape[1])
            logits, scores = logits.to(mask.device), scores.to(mask.device)
        elif need_scores:
            result = integrated_gradients(self.teacher, inputs["input_ids"], mask, inputs.get("token_type_ids"),
                                          inputs["labels"], views=self.views, steps=self.config.ig_steps,
                                          rule=self.config.ig_rule, output_hidden_states=need_hidden)
            logits = result.logits.detach()
            scores = token_scores(result.attributions, mask, self.config.top_k).detach()
            hidden = tuple(h.detach() for h in result.hidden_states) if need_hidden else None
        if logits is None or (need_hidden and hidden is None):
            with torch.no_grad():
                out = self.teacher(input_ids=inputs["input_ids"], attention_mask=mask,
                                   token_type_ids=inputs.get("token_type_ids"), output_hidden_states=need_hidden)
            logits = out.logits if logits is None else logits
            hidden = out.hidden_states if need_hidden else None
        return logits, scores, hidden

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        idx = inputs.pop("idx", None)
        if not model.training:  # evaluation: the task loss of the student alone
            outputs = model(**inputs)
            loss = task_loss(outputs.logits, labels)
            return (loss, outputs) if return_outputs else loss

        config, mask = self.config, inputs["attention_mask"]
        need_scores, need_hidden = config.beta > 0, config.lam > 0
        teacher_logits, teacher_scores, teacher_hidden = self._teacher_outputs(
            {**inputs, "labels": labels, "idx": idx}, need_scores, need_hidden)

        terms: dict[str, torch.Tensor] = {}
        if need_scores:
            result = integrated_gradients(model, inputs["input_ids"], mask, inputs.get("token_type_ids"), labels,
                                          views=self.views, steps=config.ig_steps, rule=config.ig_rule,
                                          create_graph=True, output_hidden_states=need_hidden)
            logits, hidden = result.logits, result.hidden_states
            terms["attribution"] = attribution_loss(teacher_scores, token_scores(result.attributions, mask),
                                                    config.attr_distance)
        else:
            outputs = model(**inputs, output_hidden_states=need_hidden)
            logits, hidden = outputs.logits, outputs.hidden_states
        if config.w_ce:
            terms["ce"] = task_loss(logits, labels)
        if config.w_kd:
            terms["kd"] = kd_loss(logits, teacher_logits, self.current_temperature())
        if need_hidden:
            projected = self.projection(hidden, teacher_hidden, mask)
            terms["layer_projection"] = projected.loss
            self._record_alpha(projected.alpha)
        weights = {"ce": config.w_ce, "kd": config.w_kd, "attribution": config.beta, "layer_projection": config.lam}
        loss = sum(weights[name] * value for name, value in terms.items())
        self._check_finite(terms, loss)
        self._record_terms(terms)
        if return_outputs:
            return loss, SequenceClassifierOutput(loss=loss, logits=logits)
        return loss

    def _check_finite(self, terms: dict[str, torch.Tensor], loss: torch.Tensor) -> None:
        if torch.isfinite(loss):
            return
        bad = [f"{name}={value.item():.4g}" for name, value in terms.items() if not torch.isfinite(value)]
        checkpoint = self.state.best_model_checkpoint or "the last checkpoint in the run's checkpoints/ folder"
        raise NonFiniteLossError(
            f"Non-finite loss at training step {self.state.global_step + 1}: {', '.join(bad) or 'total'}. "
            f"Training stopped; the last good checkpoint is kept ({checkpoint}). Lower the learning rate or that "
            f"term's weight, or turn off bf16.")

    def _record_terms(self, terms: dict[str, torch.Tensor]) -> None:
        for name, value in terms.items():  # no .item() here: that would wait for the GPU every step
            self._term_sums[name] = self._term_sums.get(name, 0.0) + value.detach().float()
        self._term_count += 1

    def _record_alpha(self, alpha: torch.Tensor) -> None:
        batch_mean = alpha.detach().float().mean(dim=0)
        self._alpha_sum = batch_mean if self._alpha_sum is None else self._alpha_sum + batch_mean
        self._alpha_count += 1

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._term_count:
            logs.update({f"loss_{name}": total.item() / self._term_count for name, total in self._term_sums.items()})
            self._term_sums, self._term_count = {}, 0
            if self._alpha_count:
                self.window_alpha = (self._alpha_sum / self._alpha_count).cpu()
                self._alpha_sum, self._alpha_count = None, 0
            logs["temperature"] = self.current_temperature()
        super().log(logs, start_time)


class ProjectionCheckpointCallback(TrainerCallback):
    """Saves the ALP width projection into every checkpoint, next to the student's weights."""

    def __init__(self, projection: LayerProjection):
        self.projection = projection

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir() and state.is_world_process_zero:
            save_projection(self.projection, folder / PROJECTION)
