"""The probe set: fixed dev examples on which the student's token scores are followed while it trains.

The teacher's scores are computed once. At every logged step the student's are computed over the
whole set and compared with the teacher's (:mod:`kdviz.agreement`: the run's agreement curves);
the first few examples' scores are also saved, so a view can replay how the student's rationale
moved towards (or away from) the teacher's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kdviz.agreement import TOP_K, mean_agreement
from kdviz.attribution import AttributionSettings
from kdviz.data import tokenize_glue
from kdviz.frozen_attribution import frozen_token_scores
from kdviz.runs import ProbeExample, ProbeScores
from kdviz.tasks import GlueTask, get_task

INPUT_COLUMNS = ("input_ids", "token_type_ids", "attention_mask")


@dataclass
class Probe:
    """The probe examples and their padded batch (on the CPU).

    Attributes:
        examples: the examples, with their text and tokens.
        inputs: ``input_ids``, ``attention_mask`` (and ``token_type_ids``), (P, L).
        labels: (P,) gold labels.
        settings: the run's (teacher) attribution settings.
        saved: how many of the examples (the first) have their scores saved for the views.
        batch_size: examples per attribution pass.
        teacher: the teacher's scores (set by :meth:`score_teacher`).
    """

    examples: list[ProbeExample]
    inputs: dict[str, torch.Tensor]
    labels: torch.Tensor
    settings: AttributionSettings
    saved: int
    batch_size: int = 64
    teacher: ProbeScores | None = None

    @classmethod
    def from_split(cls, split, tokenizer, task: str | GlueTask, size: int, settings: AttributionSettings,
                   max_length: int = 128, *, saved: int | None = None) -> "Probe":
        """The first ``size`` examples of a ``load_glue`` dev split.

        Args:
            split: a dev split with the task's text columns, ``label`` and ``idx``.
            tokenizer: the teacher's (and student's) tokenizer.
            task: the task (its text columns).
            size: number of examples (fewer when the split is smaller).
            settings: the teacher's attribution settings.
            max_length: token limit per example.
            saved: how many of them have their scores saved (default: all).
        """
        task = get_task(task)
        split = split.select(range(min(size, len(split))))
        encoded = tokenize_glue(split, tokenizer, task, max_length)
        inputs = tokenizer.pad({k: encoded[k] for k in INPUT_COLUMNS if k in encoded.column_names},
                               return_tensors="pt")
        examples = [ProbeExample(int(row["idx"]), [row[c] for c in task.text_columns], row["label"],
                                 tokenizer.convert_ids_to_tokens(ids))
                    for row, ids in zip(split, encoded["input_ids"])]
        return cls(examples, dict(inputs), torch.tensor(encoded["label"]), settings,
                   len(examples) if saved is None else min(saved, len(examples)))

    def scores(self, model: torch.nn.Module, *, teacher: bool = False) -> ProbeScores:
        """The model's token scores (P, V, L) and logits (P, C) on the probe set, on the CPU.

        Args:
            model: the teacher or the student (a student in train mode is scored in eval mode and
                put back).
            teacher: score with the teacher's top-K (else over all hidden dimensions, as AD-KD
                scores the student).
        """
        settings = self.settings if teacher else self.settings.for_student()
        was_training = model.training
        scores, logits = [], []
        try:
            for start in range(0, len(self.labels), self.batch_size):
                rows = slice(start, start + self.batch_size)
                result = frozen_token_scores(model.eval(), {k: v[rows] for k, v in self.inputs.items()},
                                             self.labels[rows], settings)
                scores.append(result.scores.cpu())
                logits.append(result.logits.cpu())
        finally:
            model.train(was_training)
        return ProbeScores(torch.cat(scores), torch.cat(logits))

    def score_teacher(self, teacher: torch.nn.Module) -> ProbeScores:
        """Score the teacher once (kept in ``self.teacher``) and return what is saved of it."""
        self.teacher = self.scores(teacher, teacher=True)
        return self.saved_part(self.teacher)

    def saved_part(self, scores: ProbeScores) -> ProbeScores:
        """The saved examples' scores, (S, V, L_S) trimmed to their longest, and logits (S, C)."""
        length = max((len(example.tokens) for example in self.examples[:self.saved]), default=0)
        return ProbeScores(scores.scores[:self.saved, :, :length], scores.logits[:self.saved])

    def agreement(self, student: ProbeScores, k: int = TOP_K) -> dict[str, float]:
        """How far the student's scores agree with the teacher's over every probe example
        (:func:`kdviz.agreement.mean_agreement`; :meth:`score_teacher` first)."""
        if self.teacher is None:
            raise RuntimeError("Score the teacher first (Probe.score_teacher).")
        lengths = [len(example.tokens) for example in self.examples]
        return mean_agreement(self.teacher.scores, student.scores, lengths, k)
