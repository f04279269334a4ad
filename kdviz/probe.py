"""The probe set: fixed dev examples on which the student's token scores are followed while it trains.

The teacher's scores are computed once. At step 0 (the untrained student) and at every logged step
the student's are computed over the whole set and compared with the teacher's
(:mod:`kdviz.agreement`: the run's agreement curves, beside a flat student's agreement, their
floor); the first few examples' scores are also saved, with signed scores towards the predicted
class, so a view can replay how the student's rationale moved towards (or away from) the
teacher's. Faithfulness (:mod:`kdviz.faithfulness`) is measured for the teacher, the student before
and after training, and random rationales of the same sizes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from kdviz.agreement import TOP_K, WITH_SPECIAL, mean_agreement, uniform_scores
from kdviz.attribution import AttributionSettings
from kdviz.cache_key import describe_teacher, hash_model
from kdviz.data import tokenize_glue
from kdviz.faithfulness import AOPC_BINS, FRACTION, RANDOM_DRAWS, eraser_curve
from kdviz.frozen_attribution import frozen_token_scores, predicted_class_signed_scores
from kdviz.run_records import ProbeExample, ProbeScores
from kdviz.tasks import MODEL_INPUTS, GlueTask, get_task

_TEACHER_RESULTS: dict[str, tuple] = {}
"""What :meth:`Probe.score_teacher` computed, by teacher and probe set: the runs of one process (a
study, a notebook) that share a teacher and a probe set score it once (its random baseline is the
costliest part of a run's rationale measures); :mod:`kdviz.probe_cache` keeps them across processes."""


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
        baseline_faithfulness: the teacher's and the untrained student's faithfulness, and random
            rationales' (set by :meth:`score_teacher` and :meth:`score_initial_student`).
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
    baseline_faithfulness: dict[str, dict[str, float]] | None = None

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
        inputs = tokenizer.pad({k: encoded[k] for k in MODEL_INPUTS if k in encoded.column_names},
                               return_tensors="pt")
        examples = [ProbeExample(int(row["idx"]), [row[c] for c in task.text_columns], row["label"],
                                 tokenizer.convert_ids_to_tokens(ids))
                    for row, ids in zip(split, encoded["input_ids"])]
        special = torch.isin(inputs["input_ids"], torch.tensor(tokenizer.all_special_ids))
        return cls(examples, dict(inputs), torch.tensor(encoded["label"]), settings,
                   len(examples) if saved is None else min(saved, len(examples)), special)

    @property
    def ordinary(self) -> torch.Tensor:
        """(P, L) True on the real tokens that are not special tokens (the words of a rationale)."""
        return self.inputs["attention_mask"].bool() & ~self.special

    @property
    def lengths(self) -> list[int]:
        """Each example's number of real tokens."""
        return [len(example.tokens) for example in self.examples]

    def scores(self, model: torch.nn.Module, *, teacher: bool = False) -> ProbeScores:
        """The model's token scores (P, V, L) and logits (P, C) on the probe set, and the saved
        examples' signed scores towards the predicted class (S, L) for a classifier, on the CPU.

        Args:
            model: the teacher or the student (a student in train mode is scored in eval mode and
                put back).
            teacher: score with the teacher's top-K (else over all hidden dimensions, as AD-KD
                scores the student).
        """
        settings = self.settings if teacher else self.settings.for_student()
        was_training = model.training
        width = self.inputs["input_ids"].shape[1]
        scores = logits = None
        try:
            for rows, inputs in self._batches():
                result = frozen_token_scores(model.eval(), inputs, self.labels[rows], settings)
                if scores is None:
                    scores = result.scores.new_zeros((len(self.labels), result.scores.shape[1], width)).cpu()
                    logits = result.logits.new_zeros((len(self.labels), result.logits.shape[1])).cpu()
                scores[rows, :, :result.scores.shape[-1]] = result.scores.cpu()
                logits[rows] = result.logits.cpu()
            signed = None
            if model.config.num_labels > 1 and self.saved:
                saved = self._trimmed(torch.arange(self.saved))
                signed = torch.zeros(self.saved, width)
                part = predicted_class_signed_scores(model, saved, settings).cpu()
                signed[:, :part.shape[-1]] = part
        finally:
            model.train(was_training)
        return ProbeScores(scores, logits, signed)

    def _trimmed(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """The inputs of ``rows``, cut to their longest real length."""
        width = int(self.inputs["attention_mask"][rows].sum(-1).max())
        return {name: values[rows, :width] for name, values in self.inputs.items()}

    def _batches(self):
        """``(rows, inputs)`` batches of examples of similar length, each cut to its longest row, so
        that padding costs next to nothing (results go back to their rows: the order is kept)."""
        order = self.inputs["attention_mask"].sum(-1).argsort(descending=True, stable=True)
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            yield rows, self._trimmed(rows)

    def score_teacher(self, teacher: torch.nn.Module, cache=None) -> ProbeScores:
        """Score the teacher once (kept in ``self.teacher``, with its faithfulness and a random
        rationale's for a classifier) and return what is saved of it.

        Args:
            teacher: the frozen teacher.
            cache: a :class:`kdviz.probe_cache.TeacherProbeCache` to read the results from, or to
                keep them in for later runs; None computes them (once per process for a given
                teacher and probe set).
        """
        key = self.teacher_key(teacher)
        stored = cache.read(key) if cache is not None else None
        results = _TEACHER_RESULTS.get(key) or stored or self._teacher_results(teacher)
        if cache is not None and stored is None:
            cache.write(key, *results)
        _TEACHER_RESULTS[key] = results
        self.teacher, self.teacher_faithfulness, random = results
        if random is not None:
            self.baseline_faithfulness = {"teacher_random_rationale": random}
        return self.saved_part(self.teacher)

    def _teacher_results(self, teacher: torch.nn.Module) -> tuple:
        scores = self.scores(teacher, teacher=True)
        signed = None if scores.signed is None else scores.signed.float()
        scores = ProbeScores(scores.scores.float(), scores.logits.float(), signed)  # a bf16 teacher's too
        if teacher.config.num_labels == 1:
            return scores, None, None
        return scores, self.faithfulness(teacher, scores), self.random_faithfulness(teacher)

    def teacher_key(self, teacher: torch.nn.Module) -> str:
        """What decides the teacher's probe results: its weights and description, the probe set's
        inputs and labels, and the attribution settings."""
        settings = self.settings.result_fields()
        digest = hashlib.sha256(f"{hash_model(teacher)}{describe_teacher(teacher)}{settings}{self.saved}".encode())
        for name, values in sorted(self.inputs.items()):
            digest.update(name.encode() + values.contiguous().numpy().tobytes())
        digest.update(self.labels.contiguous().numpy().tobytes())
        return digest.hexdigest()

    def score_initial_student(self, student: torch.nn.Module) -> ProbeScores:
        """The untrained student's scores (step 0); for a classifier, also the faithfulness of its own
        rationale, kept for :meth:`faithfulness_summary` (the "before" of the trained student's)."""
        scores = self.scores(student)
        if self.baseline_faithfulness is not None:
            self.baseline_faithfulness["student_step_0"] = self.faithfulness(student, scores)
        return scores

    def _erased(self, model: torch.nn.Module, ranking: torch.Tensor,
                fractions: tuple[float, ...]) -> dict[str, torch.Tensor]:
        """Per-example comprehensiveness and sufficiency (P, F) of the rationales ``ranking`` gives."""
        was_training = model.training
        parts = {name: torch.zeros(len(self.labels), len(fractions)) for name in ("comprehensiveness", "sufficiency")}
        try:
            for rows, inputs in self._batches():
                width = inputs["input_ids"].shape[1]
                result = eraser_curve(model.eval(), inputs, ranking[rows, :width], self.special[rows, :width],
                                      fractions)
                for name, values in parts.items():
                    values[rows] = result[name]
        finally:
            model.train(was_training)
        return parts

    def _measures(self, model: torch.nn.Module, ranking: torch.Tensor, fraction: float) -> dict[str, float]:
        """The cut at ``fraction`` and the AOPC over :data:`~kdviz.faithfulness.AOPC_BINS`, averaged."""
        fractions = AOPC_BINS if fraction in AOPC_BINS else AOPC_BINS + (fraction,)
        erased = self._erased(model, ranking, fractions)
        cut = fractions.index(fraction)
        bins = [fractions.index(b) for b in AOPC_BINS]
        return {**{name: float(values[:, cut].mean()) for name, values in erased.items()},
                **{f"aopc_{name}": float(values[:, bins].mean()) for name, values in erased.items()}}

    def faithfulness(self, model: torch.nn.Module, scores: ProbeScores, rationale: ProbeScores | None = None,
                     fraction: float = FRACTION) -> dict[str, float]:
        """ERASER's comprehensiveness and sufficiency of a classifier on the probe set, at one cut and as
        AOPC (:func:`kdviz.faithfulness.eraser_curve`), averaged over the examples.

        Args:
            model: the classifier (scored in eval mode, its mode put back).
            scores: its scores on the probe set (they give its predictions' view when every class
                has a view).
            rationale: whose token scores pick the rationale (default: ``scores``, its own).
            fraction: share of each example's ordinary tokens in the rationale of the single cut.

        Returns:
            ``comprehensiveness`` and ``sufficiency`` (at ``fraction``), ``aopc_comprehensiveness``
            and ``aopc_sufficiency`` (mean over the AOPC bins), ``fraction``, ``bins`` and ``examples``.
        """
        rationale = rationale or scores
        views = rationale.scores.shape[1]
        by_class = views > 1 and views == scores.logits.shape[-1]
        # the rationale for the class the model predicts when there is one view per class
        view = scores.logits.argmax(-1) if by_class else torch.zeros(len(scores.logits), dtype=torch.long)
        ranking = rationale.scores[torch.arange(len(view)), view]
        return {**self._measures(model, ranking, fraction), "fraction": fraction, "bins": list(AOPC_BINS),
                "examples": len(self.labels)}

    def random_faithfulness(self, model: torch.nn.Module, draws: int = RANDOM_DRAWS, seed: int = 0,
                            fraction: float = FRACTION) -> dict[str, float]:
        """The baseline a rationale has to beat: :meth:`faithfulness` of random rationales of the same
        sizes, ``draws`` times.

        Args:
            model: the classifier.
            draws: how many random rankings (each a fresh draw of every example's token order).
            seed: the first draw's seed (draw i uses ``seed + i``), so a baseline is reproducible.
            fraction: as :meth:`faithfulness`.

        Returns:
            Each measure's mean over the draws, its standard deviation (``<measure>_sd``), ``draws``,
            ``fraction``, ``bins`` and ``examples``.
        """
        shape = tuple(self.special.shape)
        runs = [self._measures(model, torch.rand(shape, generator=torch.Generator().manual_seed(seed + i)), fraction)
                for i in range(draws)]
        result = {}
        for name in runs[0]:
            values = torch.tensor([run[name] for run in runs], dtype=torch.float64)
            result[name] = float(values.mean())
            result[f"{name}_sd"] = float(values.std()) if draws > 1 else 0.0
        return {**result, "draws": draws, "fraction": fraction, "bins": list(AOPC_BINS), "examples": len(self.labels)}

    def faithfulness_summary(self, student: torch.nn.Module, scores: ProbeScores | None = None) -> dict | None:
        """The teacher's and the student's faithfulness, the student's on the teacher's rationale, and
        the baselines: the untrained student's and random rationales' (None for a regression task).

        Args:
            student: the trained student.
            scores: its probe scores when already computed (else computed here).
        """
        if self.teacher_faithfulness is None:
            return None
        scores = scores or self.scores(student)
        return {"teacher": self.teacher_faithfulness, "student": self.faithfulness(student, scores),
                "student_on_teacher_rationale": self.faithfulness(student, scores, self.teacher),
                **(self.baseline_faithfulness or {}),
                "student_random_rationale": self.random_faithfulness(student)}

    def saved_part(self, scores: ProbeScores) -> ProbeScores:
        """The saved examples' scores, (S, V, L_S) trimmed to their longest, logits (S, C) and signed
        scores (S, L_S)."""
        length = max((len(example.tokens) for example in self.examples[:self.saved]), default=0)
        signed = None if scores.signed is None else scores.signed[:self.saved, :length]
        return ProbeScores(scores.scores[:self.saved, :, :length], scores.logits[:self.saved], signed)

    def agreement(self, student: ProbeScores, k: int = TOP_K) -> dict[str, float]:
        """How far the student's scores agree with the teacher's over every probe example
        (:func:`kdviz.agreement.mean_agreement`; :meth:`score_teacher` first): over the ordinary
        tokens (``cosine``, ``spearman``, ``top_k_overlap``) and over every real token
        (``*_with_special``)."""
        if self.teacher is None:
            raise RuntimeError("Score the teacher first (Probe.score_teacher).")
        words = mean_agreement(self.teacher.scores, student.scores, self.lengths, k, compared=self.ordinary)
        every = mean_agreement(self.teacher.scores, student.scores, self.lengths, k)
        return {**{name: value for name, value in words.items() if name != "examples"},
                **{f"{name}{WITH_SPECIAL}": value for name, value in every.items() if name != "examples"},
                "examples": words["examples"]}

    def uniform_agreement(self, k: int = TOP_K) -> dict[str, float]:
        """:meth:`agreement` of a flat student that scores every real token alike: the floor a trained
        student's agreement has to rise above."""
        if self.teacher is None:
            raise RuntimeError("Score the teacher first (Probe.score_teacher).")
        flat = uniform_scores(self.teacher.scores, self.lengths)
        return self.agreement(ProbeScores(flat, self.teacher.logits), k)
