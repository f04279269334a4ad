"""A distillation run end to end: check inputs, build the student and objective, cache the teacher, train, write.

Orchestration only: the pieces live in :mod:`kdviz.objective` (what is trained),
:mod:`kdviz.distill_trainer` (how), :mod:`kdviz.teacher_cache` and :mod:`kdviz.teacher_outputs`
(what the teacher gives), :mod:`kdviz.callbacks` and :mod:`kdviz.probe` (the history) and
:mod:`kdviz.runs` (where it is written).
"""

from __future__ import annotations

import torch
from transformers import TrainingArguments

from kdviz.cache_store import check_cache_dir
from kdviz.callbacks import RunHistoryCallback
from kdviz.config import DistillConfig
from kdviz.data import load_glue, tokenize_glue
from kdviz.distill_trainer import DistillationTrainer
from kdviz.glue_trainer import glue_trainer_inputs, glue_training_arguments, run_summary, without_progress_output
from kdviz.loss_terms import TOKEN_SCORES, student_needs
from kdviz.models import attention_for, build_student, load_classifier, load_teacher
from kdviz.objective import DistillationModel, DistillationObjective
from kdviz.probe import Probe
from kdviz.probe_cache import TeacherProbeCache
from kdviz.report import write_run_reports
from kdviz.reporting import check_report_to, log_into_folder
from kdviz.run_records import TeacherInfo
from kdviz.runs import RunFolder, check_output_dir
from kdviz.tasks import TOKENIZED_COLUMNS, get_task
from kdviz.teacher_cache import check_padding_side, load_or_build_teacher_cache
from kdviz.teacher_outputs import TeacherOutputSource


def check_tokenizers(teacher_tokenizer, student_tokenizer, teacher, student) -> None:
    """Refuse a teacher and student that do not read the same token ids the same way.

    Raises:
        ValueError: different vocabularies or vocabulary sizes, naming the fix.
    """
    if teacher.config.vocab_size != student.config.vocab_size or \
            teacher_tokenizer.get_vocab() != student_tokenizer.get_vocab():
        raise ValueError(
            f"Teacher and student tokenizers differ (vocabularies of {len(teacher_tokenizer.get_vocab())} and "
            f"{len(student_tokenizer.get_vocab())} tokens; model vocab sizes {teacher.config.vocab_size} and "
            f"{student.config.vocab_size}). Token attributions and KD need the same token ids: choose a student "
            f"with the teacher's tokenizer (e.g. --student-init teacher)."
        )


def check_max_length(max_length: int, **models) -> None:
    """Refuse a ``max_length`` longer than a model's position embeddings.

    Raises:
        ValueError: naming the model, its limit and the fix.
    """
    for name, model in models.items():
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit is not None and max_length > limit:
            raise ValueError(f"max_length={max_length} exceeds the {name}'s {limit} position embeddings: "
                             f"set --max-length {limit} or less.")


def make_student(config: DistillConfig, teacher, teacher_tokenizer):
    """The student (eager attention only when a term trains its attributions) and its tokenizer:
    teacher layers copied, or a separate pre-trained model."""
    attention = attention_for(double_backward=TOKEN_SCORES in student_needs(config.method_terms))
    if config.student_init == "teacher":
        layers = config.student_layer_indices
        student = build_student(teacher, None if layers else config.student_layers,
                                strategy=config.layer_strategy, layers=layers, attention=attention)
        return student, teacher_tokenizer
    student, tokenizer = load_classifier(config.student_init, config.task, attention=attention)
    return student.train(), tokenizer


def training_arguments_for(config: DistillConfig, run_dir, **overrides) -> TrainingArguments:
    """The run's ``TrainingArguments``: AD-KD's optimiser (AdamW, eps 1e-8, no weight decay, no
    warm-up, linear decay, clipping at 1.0), an evaluation and a checkpoint every epoch, the best
    epoch kept by the task's main metric, the config's precision and logger; ``overrides`` replace
    any of these. ``run_dir`` is the run folder (checkpoints and logger files go inside it)."""
    adkd_optimiser = dict(weight_decay=0.0, adam_epsilon=1e-8, warmup_steps=0, lr_scheduler_type="linear",
                          max_grad_norm=config.max_grad_norm)
    return glue_training_arguments(
        RunFolder(run_dir).checkpoints_dir, epochs=config.epochs, batch_size=config.batch_size,
        learning_rate=config.learning_rate, selection_metric=config.selection_metric,
        logging_steps=config.logging_steps, seed=config.seed, precision=config.precision, report_to=config.report_to,
        save_total_limit=2, **{**adkd_optimiser, "label_names": ["labels"], "remove_unused_columns": False,
                               "ddp_find_unused_parameters": False, **overrides})


def _teacher_cache(config: DistillConfig, train, tokenizer, teacher, settings, needs: frozenset[str], write: bool,
                   progress: bool):
    """The teacher's cached outputs on the training set (None when caching is off or nothing is needed)."""
    if not config.teacher_cache:
        return None
    description = {"teacher": config.teacher, "task": config.task, "split": "train", "subset": config.train_subset,
                   "seed": config.subset_seed, "max_length": config.max_length}
    return load_or_build_teacher_cache(teacher, train, tokenizer, needs, settings, description,
                                       cache_dir=config.cache_dir, write=write, progress=progress)


def distill(config: DistillConfig, *, resume: bool = False, overwrite: bool = False, callbacks=(),
            progress: bool = True, **training_arguments) -> dict:
    """Distil a student from a teacher as ``config`` says and write the run folder.

    Every input is checked (task, data, teacher, label count, tokenizers, output folder) before the
    teacher cache or training starts. The teacher's outputs that the loss terms need are read from
    the shared teacher cache (computed on first use), so the teacher runs no pass during training.
    Under ``torchrun`` every process trains; process 0 alone checks and writes the run folder, and
    computes the teacher cache before the others read it.

    Args:
        config: the run.
        resume: continue from the last checkpoint in the run's checkpoints folder (the run must have
            been started with the same config; :meth:`~kdviz.runs.RunFolder.can_resume` tells).
        overwrite: replace a non-empty output folder.
        callbacks: extra ``TrainerCallback`` objects.
        progress: show progress bars and the ``Trainer``'s logs (notebooks turn them off).
        **training_arguments: passed on to ``transformers.TrainingArguments``.

    Returns:
        The dict written to the run's metrics (per-evaluation history and ``best``).
    """
    config.validate()
    check_report_to(config.report_to)
    if config.teacher_cache:
        check_cache_dir(config.cache_dir)
    task = get_task(config.task)
    run = RunFolder(config.output_dir)
    args = training_arguments_for(config, run.path, **training_arguments)
    main_process = args.process_index == 0
    if resume and not run.has_checkpoint():
        raise FileNotFoundError(f"Nothing to resume: no checkpoint in {str(run.checkpoints_dir)!r}.")
    if resume and not run.holds(config):
        raise ValueError(f"Cannot resume {str(run.path)!r} with another config than the one it was started with "
                         f"({run.CONFIG} there): give the same settings, or --overwrite to start over.")
    if not resume and main_process:
        check_output_dir(run.path, overwrite)
    data = load_glue(task, config.data_dir, train_subset=config.train_subset, eval_subset=config.eval_subset,
                     seed=config.subset_seed)
    teacher, tokenizer = load_teacher(config.teacher, task)
    check_padding_side(tokenizer)
    torch.manual_seed(config.seed)
    student, student_tokenizer = make_student(config, teacher, tokenizer)
    check_tokenizers(tokenizer, student_tokenizer, teacher, student)
    check_max_length(config.max_length, teacher=teacher, student=student)
    settings = config.attribution_settings(task.num_labels)
    model = DistillationModel(student, DistillationObjective.from_config(config, student.config, teacher.config),
                              settings)

    with args.main_process_first(desc="tokenisation, teacher cache and run folder"):
        encoded = tokenize_glue(data, tokenizer, task, config.max_length)
        encoded = encoded.select_columns([c for c in TOKENIZED_COLUMNS if c in encoded["train"].column_names])
        # before the run folder is replaced: a cache that cannot be built loses nothing already written
        cache = _teacher_cache(config, encoded["train"], tokenizer, teacher.to(args.device), settings,
                               model.objective.teacher_needs, write=main_process, progress=progress)
        if main_process:
            run.write_header(config, TeacherInfo(str(config.teacher), list(task.label_names),
                                                 teacher.config.num_hidden_layers, teacher.config.hidden_size),
                             replace=overwrite and not resume)

    trainer = DistillationTrainer(model=model, args=args, processing_class=tokenizer,
                                  teacher_outputs=TeacherOutputSource(teacher, settings, cache),
                                  **glue_trainer_inputs(encoded, task))
    probe = None
    if (config.probe_size or config.agreement_size) and main_process:
        probe = Probe.from_split(data[task.validation_splits[0]], tokenizer, task,
                                 max(config.probe_size, config.agreement_size), settings, config.max_length,
                                 saved=config.probe_size)
        probe_cache = TeacherProbeCache(config.cache_dir, {
            "teacher": config.teacher, "task": config.task, "split": task.validation_splits[0],
            "subset": len(probe.examples), "max_length": config.max_length}) if config.teacher_cache else None
        run.write_probe(probe.examples[:probe.saved], probe.score_teacher(teacher, probe_cache))
    if cache is not None or not model.objective.teacher_needs:
        teacher.cpu()  # it runs no pass during training: the accelerator's memory goes to the student
    trainer.add_callback(RunHistoryCallback(run, trainer, probe))
    log_into_folder(trainer, run.logs_dir)
    if not progress:
        without_progress_output(trainer, label=f"{task.name} {'+'.join(config.method_terms)}")
    for callback in callbacks:
        trainer.add_callback(callback)

    trainer.train(resume_from_checkpoint=True if resume else None)
    if main_process:
        run.save_student(model.student, tokenizer)
        run.save_objective(model.objective)
    result = run_summary(trainer, task, method_terms=config.method_terms)
    if probe is not None:
        kept = probe.scores(model.student)
        step_0 = next((record for record in run.agreement() if record["step"] == 0), None)
        result["agreement"] = {"uniform": probe.uniform_agreement(), "step_0": step_0, "student": probe.agreement(kept)}
        result["faithfulness"] = probe.faithfulness_summary(model.student, kept)
    if main_process:
        write_run_reports(run, config, result, model.objective)
        if not config.keep_checkpoints:
            run.remove_checkpoints()
    return result


def distill_or_resume(config: DistillConfig, **kwargs) -> dict:
    """:func:`distill`, continuing a cut-off run of the same config in ``config.output_dir`` instead of
    starting over (a disconnected notebook kernel, a preempted job); any other folder content is replaced.

    Args:
        config: the run.
        **kwargs: passed on to :func:`distill` (``callbacks``, training arguments).

    Returns:
        As :func:`distill`.
    """
    if RunFolder(config.output_dir).can_resume(config):
        return distill(config, resume=True, **kwargs)
    return distill(config, overwrite=True, **kwargs)
