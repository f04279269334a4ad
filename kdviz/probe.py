"""The probe set: a few fixed dev examples whose token scores are recorded while the student trains.

The teacher's scores of the probe set are recorded once; the student's at every logged step, so a
view can replay how the student's rationale moved towards (or away from) the teacher's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

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
    """

    examples: list[ProbeExample]
    inputs: dict[str, torch.Tensor]
    labels: torch.Tensor
    settings: AttributionSettings

    @classmethod
    def from_split(cls, split, tokenizer, task: str | GlueTask, size: int, settings: AttributionSettings,
                   max_length: int = 128) -> "Probe":
        """The first ``size`` examples of a ``load_glue`` dev split.

        Args:
            split: a dev split with the task's text columns, ``label`` and ``idx``.
            tokenizer: the teacher's (and student's) tokenizer.
            task: the task (its text columns).
            size: number of examples (fewer when the split is smaller).
            settings: the teacher's attribution settings.
            max_length: token limit per example.
        """
        task = get_task(task)
        split = split.select(range(min(size, len(split))))
        encoded = tokenize_glue(split, tokenizer, task, max_length)
        inputs = tokenizer.pad({k: encoded[k] for k in INPUT_COLUMNS if k in encoded.column_names},
                               return_tensors="pt")
        examples = [ProbeExample(int(row["idx"]), [row[c] for c in task.text_columns], row["label"],
                                 tokenizer.convert_ids_to_tokens(ids))
                    for row, ids in zip(split, encoded["input_ids"])]
        return cls(examples, dict(inputs), torch.tensor(encoded["label"]), settings)

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
        try:
            result = frozen_token_scores(model.eval(), self.inputs, self.labels, settings)
        finally:
            model.train(was_training)
        return ProbeScores(result.scores.cpu(), result.logits.cpu())
