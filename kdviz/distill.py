"""Run a distillation end to end: check inputs, build the student, cache the teacher, train, write the run folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import TrainerCallback, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from kdviz import runs
from kdviz.attribution import attribute
from kdviz.config import DistillConfig
from kdviz.data import load_glue, tokenize_glue
from kdviz.finetune import check_output_dir
from kdviz.models import build_student, load_classifier, load_teacher
from kdviz.projection import LayerProjection
from kdviz.report import write_figure, write_loss_terms_figure, write_metrics_table
from kdviz.viz.render import layer_attention_figure
from kdviz.tasks import get_task
from kdviz.teacher_cache import TeacherAttributionSettings, load_or_compute_teacher_cache
from kdviz.trainer import DistillationTrainer, ProjectionCheckpointCallback, resolve_views
from kdviz.training import glue_trainer_inputs, run_summary

MODEL_COLUMNS = ("input_ids", "token_type_ids", "attention_mask", "label", "idx")


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


def make_student(config: DistillConfig, teacher, teacher_tokenizer):
    """The student: teacher layers copied, or a separate pre-trained model; plus its tokenizer."""
    if config.student_init == "teacher":
        layers = config.student_layer_indices
        student = build_student(teacher, None if layers else config.student_layers,
                                strategy=config.layer_strategy, layers=layers)
        return student, teacher_tokenizer
    student, tokenizer = load_classifier(config.student_init, config.task)
    return student.train(), tokenizer


class RunHistoryCallback(TrainerCallback):
    """Writes the run's history at each logged step: loss terms, ALP weights, probe attributions."""

    def __init__(self, run_dir: Path, probe_batch: dict, config: DistillConfig, views: str):
        self.run_dir, self.probe_batch, self.config, self.views = run_dir, probe_batch, config, views
        self.trainer: DistillationTrainer | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step > 0:  # resumed: drop what was written after the checkpoint
            for name in (runs.LOSS_TERMS, runs.ALP_WEIGHTS):
                path = self.run_dir / name
                kept = [r for r in runs.read_jsonl(path) if r["step"] <= state.global_step]
                path.write_text("".join(json.dumps(r) + "\n" for r in kept))
            for file in (self.run_dir / runs.PROBE_STUDENT).glob("step-*.safetensors"):
                if int(file.stem.split("-")[1]) > state.global_step:
                    file.unlink()

    def on_log(self, args, state, control, logs=None, model=None, **kwargs):
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        record = {"step": state.global_step, "epoch": state.epoch,
                  **{k: v for k, v in logs.items() if k.startswith("loss") or k in ("learning_rate", "temperature")}}
        runs.append_jsonl(self.run_dir / runs.LOSS_TERMS, record)
        if self.trainer is not None and self.trainer.window_alpha is not None:
            runs.append_jsonl(self.run_dir / runs.ALP_WEIGHTS,
                              {"step": state.global_step, "alpha": self.trainer.window_alpha.tolist()})
        if model is not None and self.config.probe_size:
            was_training = model.training
            probe = attribute(model.eval(), **self.probe_batch, views=self.views, steps=self.config.ig_steps,
                              rule=self.config.ig_rule)
            model.train(was_training)
            runs.save_probe_scores(self.run_dir / runs.PROBE_STUDENT / f"step-{state.global_step}.safetensors",
                                   probe.token_scores(), probe.logits)


def _probe(config, data, tokenizer, teacher, views, device, run_dir: Path) -> dict:
    """Fix the probe set (the first dev examples), record the teacher's view of it, return its batch."""
    task = get_task(config.task)
    split = data[task.validation_splits[0]].select(range(min(config.probe_size, len(data[task.validation_splits[0]]))))
    encoded = tokenize_glue(split, tokenizer, task, config.max_length)
    batch = tokenizer.pad({k: encoded[k] for k in ("input_ids", "token_type_ids", "attention_mask")
                           if k in encoded.column_names}, return_tensors="pt")
    batch = {k: v.to(device) for k, v in batch.items()}
    batch["labels"] = torch.tensor(encoded["label"], device=device)
    teacher_view = attribute(teacher, **batch, views=views, steps=config.ig_steps, rule=config.ig_rule,
                             tokenizer=tokenizer)
    runs.save_probe_scores(run_dir / runs.PROBE_TEACHER, teacher_view.token_scores(config.top_k),
                           teacher_view.logits)
    probe = [{"idx": int(row["idx"]), "text": [row[c] for c in task.text_columns], "label": row["label"],
              "tokens": tokens} for row, tokens in zip(split, teacher_view.tokens)]
    (run_dir / runs.PROBE).write_text(json.dumps(probe, indent=1))
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
            "token_type_ids": batch.get("token_type_ids"), "labels": batch["labels"]}


def training_arguments_for(config: DistillConfig, checkpoints: Path, **overrides) -> TrainingArguments:
    """The run's ``TrainingArguments``: AD-KD's optimiser (AdamW, eps 1e-8, no weight decay, no
    warm-up, linear decay, clipping at 1.0), an evaluation and a checkpoint every epoch, the best
    epoch kept by the task's main metric; ``overrides`` replace any of these."""
    defaults = dict(
        output_dir=str(checkpoints),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=64,
        learning_rate=config.learning_rate,
        weight_decay=0.0,
        adam_epsilon=1e-8,
        warmup_steps=0,
        lr_scheduler_type="linear",
        max_grad_norm=config.max_grad_norm,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model=get_task(config.task).main_metric,
        greater_is_better=True,
        logging_steps=config.logging_steps,
        seed=config.seed,
        bf16=config.bf16,
        remove_unused_columns=False,
        report_to="none",
        dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=not torch.cuda.is_available(),  # without it, torchrun on CPUs would not set up gloo DDP
        ddp_find_unused_parameters=False,
    )
    return TrainingArguments(**{**defaults, **overrides})


def _prepare_data(config: DistillConfig, data, tokenizer, teacher, run_dir: Path, device):
    """Tokenise the splits and, for the attribution loss, load or compute the teacher cache."""
    task = get_task(config.task)
    encoded = tokenize_glue(data, tokenizer, task, config.max_length)
    encoded = encoded.select_columns([c for c in MODEL_COLUMNS if c in encoded["train"].column_names])
    if not (config.beta and config.teacher_cache):
        return encoded, None
    settings = TeacherAttributionSettings(views=resolve_views(config, task.num_labels), steps=config.ig_steps,
                                          rule=config.ig_rule, top_k=config.top_k)
    description = {"task": task.name, "split": "train", "subset": config.train_subset, "seed": config.subset_seed,
                   "max_length": config.max_length}
    cache = load_or_compute_teacher_cache(run_dir / runs.TEACHER_CACHE, teacher.to(device), encoded["train"],
                                          tokenizer, settings, description)
    return encoded, cache


def _write_run_header(config: DistillConfig, teacher, run_dir: Path, replace: bool) -> None:
    if run_dir.exists() and replace:
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config.save(run_dir / runs.CONFIG)
    task = get_task(config.task)
    (run_dir / runs.TEACHER).write_text(json.dumps(
        {"reference": str(config.teacher), "label_names": list(task.label_names),
         "layers": teacher.config.num_hidden_layers, "hidden_size": teacher.config.hidden_size}, indent=2))


def distill(config: DistillConfig, *, resume: bool = False, overwrite: bool = False, callbacks=(),
            **training_arguments) -> dict:
    """Distil a student from a teacher as ``config`` says and write the run folder.

    Every input is checked (task, data, teacher, label count, tokenizers, output folder) before the
    teacher cache or training starts. Under ``torchrun`` every process trains; process 0 alone
    checks and writes the run folder, and computes the teacher cache before the others read it.

    Args:
        config: the run.
        resume: continue from the last checkpoint in ``<output_dir>/checkpoints``.
        overwrite: replace a non-empty output folder.
        callbacks: extra ``TrainerCallback`` objects.
        **training_arguments: passed on to ``transformers.TrainingArguments``.

    Returns:
        The dict written to ``metrics.json`` (per-evaluation history and ``best``).
    """
    config.validate()
    task = get_task(config.task)
    run_dir = Path(config.output_dir)
    checkpoints = run_dir / runs.CHECKPOINTS
    args = training_arguments_for(config, checkpoints, **training_arguments)
    main_process = args.process_index == 0
    if resume and not any(checkpoints.glob("checkpoint-*")):
        raise FileNotFoundError(f"Nothing to resume: no checkpoint in {str(checkpoints)!r}.")
    if not resume and main_process:
        check_output_dir(run_dir, overwrite)
    data = load_glue(task, config.data_dir, train_subset=config.train_subset, eval_subset=config.eval_subset,
                     seed=config.subset_seed)
    teacher, tokenizer = load_teacher(config.teacher, task)
    torch.manual_seed(config.seed)
    student, student_tokenizer = make_student(config, teacher, tokenizer)
    check_tokenizers(tokenizer, student_tokenizer, teacher, student)
    projection = None
    if config.lam:
        projection = LayerProjection(
            student.config.num_hidden_layers, teacher.config.num_hidden_layers, student.config.hidden_size,
            teacher.config.hidden_size, variant=config.alp_variant, representation=config.alp_representation,
            include_embeddings=config.alp_include_embeddings, overlap=config.alp_overlap,
            temperature=config.alp_temperature)
        if resume:
            _load_projection(projection, checkpoints)

    with args.main_process_first(desc="run folder, tokenisation and teacher cache"):
        if main_process:
            _write_run_header(config, teacher, run_dir, replace=overwrite and not resume)
        encoded, cache = _prepare_data(config, data, tokenizer, teacher, run_dir, args.device)

    views = resolve_views(config, task.num_labels)
    trainer = DistillationTrainer(
        model=student,
        args=args,
        processing_class=tokenizer,
        **glue_trainer_inputs(encoded, task),
        teacher=teacher,
        config=config,
        teacher_cache=cache,
        projection=projection,
    )
    history = RunHistoryCallback(run_dir, {}, config, views)
    history.trainer = trainer
    trainer.add_callback(history)
    if projection is not None:
        trainer.add_callback(ProjectionCheckpointCallback(projection))
    for callback in callbacks:
        trainer.add_callback(callback)
    if config.probe_size and main_process:
        history.probe_batch = _probe(config, data, tokenizer, trainer.teacher, views, args.device, run_dir)

    trainer.train(resume_from_checkpoint=True if resume else None)
    if trainer.is_world_process_zero():
        trainer.save_model(str(run_dir / runs.STUDENT))
        if projection is not None:
            runs.save_projection(projection, run_dir / runs.PROJECTION)
    result = run_summary(trainer, task, method_terms=config.method_terms)
    if trainer.is_world_process_zero():
        _write_reports(config, result, run_dir, projection)
    return result


def _write_reports(config: DistillConfig, result: dict, run_dir: Path, projection) -> None:
    """metrics.json, metrics.md (the teacher's row too when its folder has kdviz metrics) and figures."""
    task = get_task(config.task)
    (run_dir / runs.METRICS).write_text(json.dumps(result, indent=2))
    rows = {}
    teacher_metrics = Path(config.teacher) / "metrics.json"
    if teacher_metrics.is_file():
        rows[f"teacher ({json.loads((run_dir / runs.TEACHER).read_text())['layers']} layers)"] = \
            json.loads(teacher_metrics.read_text())["best"]
    rows[f"student ({'+'.join(config.method_terms)})"] = result["best"]
    write_metrics_table(run_dir / runs.METRICS_TABLE, rows, task)
    figures = run_dir / runs.FIGURES
    write_loss_terms_figure(figures / "loss_terms.png", runs.read_jsonl(run_dir / runs.LOSS_TERMS),
                            title=f"{task.name}: distillation loss terms")
    weights = runs.read_jsonl(run_dir / runs.ALP_WEIGHTS)
    if weights and projection is not None:
        figure = layer_attention_figure(
            weights[-1]["alpha"], projection.student_layers, projection.teacher_layers, mask=projection.mask.numpy(),
            title=f"{config.alp_variant} weights, mean of the last logging window (step {weights[-1]['step']})")
        write_figure(figures / "layer_attention.png", figure)


def _load_projection(projection: LayerProjection, checkpoints: Path) -> None:
    """Put back the width projection saved in the last checkpoint (when there is one)."""
    last = get_last_checkpoint(str(checkpoints))
    file = Path(last) / runs.PROJECTION if last else None
    if file is not None and file.is_file():
        projection.load_state_dict(load_file(str(file)), strict=False)
