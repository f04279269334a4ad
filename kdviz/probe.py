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
from kdviz.faithfulness import FRACTION, eraser_scores
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
        special: (P, L) True on special tokens (never part of a rationale).
        batch_size: examples per attribution pass.
        teacher: the teacher's scores (set by :meth:`score_teacher`).
        teacher_faithfulness: the teacher's comprehensiveness and sufficiency (set by
            :meth:`score_teacher` for a classification task).
    """

    examples: list[ProbeExample]
    inputs: dict[str, torch.Tensor]
    labels: torch.Tensor
    settings: AttributionSettings
    saved: int
    special: torch.Tensor
    batch_size: int = 64
    teacher: ProbeScores | None = None
    teacher_faithfulness: dict[str, float] | None = None

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
        special = torch.isin(inputs["input_ids"], torch.tensor(tokenizer.all_special_ids))
        return cls(examples, dict(inputs), torch.tensor(encoded["label"]), settings,
                   len(examples) if saved is None else min(saved, len(examples)), special)

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
        """Score the teacher once (kept in ``self.teacher``, with its faithfulness for a classifier)
        and return what is saved of it."""
        self.teacher = self.scores(teacher, teacher=True)
        if teacher.config.num_labels > 1:
            self.teacher_faithfulness = self.faithfulness(teacher, self.teacher)
        return self.saved_part(self.teacher)

    def faithfulness(self, model: torch.nn.Module, scores: ProbeScores, rationale: ProbeScores | None = None,
                     fraction: float = FRACTION) -> dict[str, float]:
        """ERASER's comprehensiveness and sufficiency of a classifier on the probe set, averaged
        (:func:`kdviz.faithfulness.eraser_scores`).

        Args:
            model: the classifier (scored in eval mode, its mode put back).
            scores: its scores on the probe set (they give its predictions' view when every class
                has a view).
            rationale: whose token scores pick the rationale (default: ``scores``, its own).
            fraction: share of each example's ordinary tokens in the rationale.

        Returns:
            ``comprehensiveness``, ``sufficiency``, ``fraction`` and ``examples``.
        """
        rationale = rationale or scores
        views = rationale.scores.shape[1]
        by_class = views > 1 and views == scores.logits.shape[-1]
        # the rationale for the class the model predicts when there is one view per class
        view = scores.logits.argmax(-1) if by_class else torch.zeros(len(scores.logits), dtype=torch.long)
        ranking = rationale.scores[torch.arange(len(view)), view]
        was_training = model.training
        totals = {"comprehensiveness": 0.0, "sufficiency": 0.0}
        try:
            for start in range(0, len(self.labels), self.batch_size):
                rows = slice(start, start + self.batch_size)
                result = eraser_scores(model.eval(), {k: v[rows] for k, v in self.inputs.items()},
                                       ranking[rows], self.special[rows], fraction)
                for name in totals:
                    totals[name] += float(result[name].sum())
        finally:
            model.train(was_training)
        count = len(self.labels)
        return {**{name: total / count for name, total in totals.items()}, "fraction": fraction, "examples": count}

    def faithfulness_summary(self, student: torch.nn.Module) -> dict | None:
        """The teacher's and the student's faithfulness, and the student's on the teacher's rationale
        (None for a regression task)."""
        if self.teacher_faithfulness is None:
            return None
        scores = self.scores(student)
        return {"teacher": self.teacher_faithfulness, "student": self.faithfulness(student, scores),
                "student_on_teacher_rationale": self.faithfulness(student, scores, self.teacher)}

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
