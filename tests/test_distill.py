"""A distillation run end to end: the run folder, resume, refusals, MNLI, several processes."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertTokenizer, TrainerCallback

import kdviz.distill
import kdviz.loss_terms
from helpers import REPO, tiny_bert, tiny_bert_config
from helpers import tiny_run_config as tiny_config
from kdviz.cache_store import list_entries
from kdviz.config import DistillConfig
from kdviz.distill import distill, distill_or_resume
from kdviz.distill_trainer import NonFiniteLossError
from kdviz.recipes import preset
from kdviz.runs import RunFolder, load_run


def test_run_folder_round_trip(tiny_teacher, tmp_path, real_glue_env):
    config = tiny_config(tiny_teacher, tmp_path / "run")
    result = distill(config)
    run = load_run(tmp_path / "run")
    assert run.config == config
    assert run.teacher.reference == str(tiny_teacher) and run.teacher.layers == 4
    assert run.metrics["best"]["accuracy"] == result["best"]["accuracy"]
    assert (run.metrics["precision"], run.metrics["device"]) == ("fp32", "cpu")  # precision auto, resolved here
    history = run.metrics["history"]
    assert [h["epoch"] for h in history] == [1.0, 2.0]
    kept = next(h for h in history if h["epoch"] == run.metrics["best_epoch"])
    assert kept["eval_accuracy"] == run.metrics["best"]["accuracy"] == max(h["eval_accuracy"] for h in history)
    assert len({h["eval_loss"] for h in history}) == 2  # each epoch's own evaluation, not the final one
    logged = [r["step"] for r in run.loss_terms]
    assert logged == [0, 2, 4, 6, 8]  # 0: the first batch before any update; 64 examples / 16 per batch = 4 steps an epoch
    for record in run.loss_terms:
        assert {"loss_ce", "loss_kd", "loss_attribution", "loss_layer_projection"} <= set(record)
        assert all(math.isfinite(record[k]) for k in record if k.startswith("loss"))
        assert 0 <= record["alp_entropy"] <= math.log(4) + 1e-6 and 0 <= record["alp_top2_gap"] <= 1
    assert [r.step for r in run.alp_weights] == logged
    alpha = torch.tensor(run.alp_weights[-1].alpha)
    assert alpha.shape == (2, 4)
    torch.testing.assert_close(alpha.sum(-1), torch.ones(2))
    assert sorted(run.probe_student) == logged
    assert run.probe_teacher.scores.shape[:2] == (4, 1) and len(run.probe) == 4
    assert run.probe_student[2].scores.shape == run.probe_teacher.scores.shape
    assert run.probe[0].tokens[0] == "[CLS]"
    student, tokenizer = run.load_student()
    assert student.config.num_hidden_layers == 2
    exported = AutoModelForSequenceClassification.from_pretrained(run.student_dir, attn_implementation="sdpa")
    batch = tokenizer(["a charming film", "tedious"], return_tensors="pt", padding=True)
    with torch.no_grad():
        assert torch.equal(student(**batch).logits, exported.eval()(**batch).logits)
    assert run.folder.metrics_table().startswith("| sst2 |") and run.folder.loss_terms_figure.is_file()
    assert run.folder.layer_attention_figure.is_file()
    assert any(entry.description["teacher"] == str(tiny_teacher) for entry in list_entries())


def test_terms_can_be_switched_off(tiny_teacher, tmp_path, real_glue_env):
    distill(tiny_config(tiny_teacher, tmp_path / "kd", method="kd", epochs=1))
    run = load_run(tmp_path / "kd")
    assert {k for r in run.loss_terms for k in r if k.startswith("loss_")} == {"loss_ce", "loss_kd"}
    assert run.alp_weights == []


def counted_teacher_passes(monkeypatch) -> dict:
    """Counts the teacher's forward passes while a training step runs (``during_training``)."""
    calls = {"during_training": 0, "training": False}
    original = kdviz.distill.load_teacher

    def counted(*args, **kwargs):
        teacher, tokenizer = original(*args, **kwargs)
        teacher.register_forward_hook(
            lambda *a: calls.__setitem__("during_training", calls["during_training"] + calls["training"]))
        return teacher, tokenizer

    monkeypatch.setattr(kdviz.distill, "load_teacher", counted)
    return calls


class TrainingStepWindow(TrainerCallback):
    def __init__(self, calls):
        self.calls = calls

    def on_step_begin(self, *a, **k):
        self.calls["training"] = True

    def on_step_end(self, *a, **k):
        self.calls["training"] = False


@pytest.mark.parametrize("method, overrides", [
    ("ft", {}), ("kd", {}), ("pkd", {}), ("ckd", {}), ("alp", {}), ("alp", {"terms": {"layer_projection": {"representation": "tokens"}}}),
    ("adkd", {}), ("adkd+alp", {}), ("adkd+alp", {"views": "classes"})])
def test_the_teacher_runs_no_pass_during_training_with_the_cache(tiny_teacher, tmp_path, real_glue_env, monkeypatch,
                                                                 method, overrides):
    calls = counted_teacher_passes(monkeypatch)
    distill(tiny_config(tiny_teacher, tmp_path / "run", method=method, epochs=1, **overrides),
            callbacks=[TrainingStepWindow(calls)])
    assert calls["during_training"] == 0


def test_without_the_cache_the_teacher_runs_every_step(tiny_teacher, tmp_path, real_glue_env, monkeypatch):
    calls = counted_teacher_passes(monkeypatch)
    distill(tiny_config(tiny_teacher, tmp_path / "live", method="adkd+alp", epochs=1, teacher_cache=False),
            callbacks=[TrainingStepWindow(calls)])
    assert calls["during_training"] == 4  # one teacher pass per step (it gives scores and hidden states)


def test_runs_of_several_methods_share_one_cache_entry(tiny_teacher, tmp_path, real_glue_env, monkeypatch):
    cache = tmp_path / "cache"
    for method in ("kd", "alp", "adkd", "adkd+alp"):
        distill(tiny_config(tiny_teacher, tmp_path / method, method=method, epochs=1, cache_dir=str(cache)))
    entry, probe = sorted(list_entries(cache), key=lambda entry: entry.path.parent.name != "teacher")
    assert entry.path.parent.name == "teacher" and probe.path.parent.name == "probe"  # the probe set's: one too
    assert entry.description["task"] == "sst2" and entry.description["subset"] == 64
    assert entry.parts == sorted(["outputs", "cls_states", entry.parts[-1]]) and entry.parts[-1].startswith("scores-")


class Interrupt(TrainerCallback):
    def __init__(self, at_step):
        self.at_step = at_step

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.at_step:
            raise KeyboardInterrupt


def test_interrupted_then_resumed_run_ends_like_an_uninterrupted_one(tiny_teacher, tmp_path, real_glue_env):
    whole = distill(tiny_config(tiny_teacher, tmp_path / "whole", epochs=3))
    config = tiny_config(tiny_teacher, tmp_path / "cut", epochs=3)
    with pytest.raises(KeyboardInterrupt):
        distill(config, callbacks=[Interrupt(at_step=6)])  # in epoch 2, after the epoch-1 checkpoint
    assert (tmp_path / "cut" / "checkpoints" / "checkpoint-4").is_dir()
    other = tiny_config(tiny_teacher, tmp_path / "cut", epochs=3, seed=7)
    assert RunFolder(config.output_dir).can_resume(config) and not RunFolder(config.output_dir).can_resume(other)
    with pytest.raises(ValueError, match="another config than the one it was started with"):
        distill(other, resume=True)
    resumed = distill_or_resume(config)  # what notebooks and studies call: resumes, does not start over
    assert resumed["best"]["accuracy"] == whole["best"]["accuracy"]
    assert resumed["best"]["loss"] == pytest.approx(whole["best"]["loss"], rel=1e-5)
    assert [r["step"] for r in load_run(tmp_path / "cut").loss_terms] == [0, 2, 4, 6, 8, 10, 12]
    assert not (tmp_path / "cut" / "checkpoints").exists()  # a finished run drops its optimiser checkpoints


def test_keep_checkpoints_keeps_them(tiny_teacher, tmp_path, real_glue_env):
    distill(tiny_config(tiny_teacher, tmp_path / "kept", method="kd", epochs=1, keep_checkpoints=True))
    assert RunFolder(tmp_path / "kept").has_checkpoint()


def test_non_finite_loss_stops_with_the_term_and_step(tiny_teacher, tmp_path, real_glue_env, monkeypatch):
    real_kd = kdviz.loss_terms.kd_loss
    state = {"calls": 0}

    def breaks_in_epoch_two(*args, **kwargs):
        state["calls"] += 1
        value = real_kd(*args, **kwargs)
        return value * float("nan") if state["calls"] > 5 else value

    monkeypatch.setattr(kdviz.loss_terms, "kd_loss", breaks_in_epoch_two)
    with pytest.raises(NonFiniteLossError, match=r"training step 6: kd=nan"):
        distill(tiny_config(tiny_teacher, tmp_path / "nan", method="kd"))
    assert (tmp_path / "nan" / "checkpoints" / "checkpoint-4" / "model.safetensors").is_file()


def test_tokenizer_mismatch_is_refused_before_training(tiny_teacher, tmp_path, real_glue_env):
    other = tmp_path / "other_student"
    vocab = other / "vocab.txt"
    other.mkdir()
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "film"]) + "\n")
    BertTokenizer(str(vocab)).save_pretrained(other)
    tiny_bert(num_labels=2, layers=2, vocab_size=8).save_pretrained(other)
    config = tiny_config(tiny_teacher, tmp_path / "run", student_init=str(other))
    with pytest.raises(ValueError, match="tokenizers differ"):
        distill(config)
    assert not (tmp_path / "run").exists()


def test_max_length_beyond_the_position_embeddings_is_refused_before_training(tiny_teacher, tmp_path,
                                                                            real_glue_env):
    short = tmp_path / "short_teacher"
    tiny_bert(num_labels=2, layers=2, max_position_embeddings=64).save_pretrained(short)
    AutoTokenizer.from_pretrained(tiny_teacher).save_pretrained(short)
    with pytest.raises(ValueError, match=r"max_length=128 exceeds the teacher's 64 position embeddings: "
                                         r"set --max-length 64 or less"):
        distill(tiny_config(short, tmp_path / "run", max_length=128))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_existing_run_folder_is_kept(tiny_teacher, tmp_path, real_glue_env):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--overwrite"):
        distill(tiny_config(tiny_teacher, tmp_path / "run"))
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"


def test_mnli_multi_view_and_matched_plus_mismatched_selection(tmp_path, fixture_glue_dir, offline_teacher_dir):
    teacher = tmp_path / "mnli_teacher"
    tiny_bert(num_labels=3, layers=2).save_pretrained(teacher)
    AutoTokenizer.from_pretrained(offline_teacher_dir).save_pretrained(teacher)
    config = tiny_config(teacher, tmp_path / "run", method="adkd+alp", task="mnli", data_dir=str(fixture_glue_dir),
                         student_layers=1, batch_size=2, epochs=1, probe_size=2, logging_steps=1)
    result = distill(config)
    best = result["best"]
    assert best["accuracy"] == pytest.approx(
        (best["validation_matched_accuracy"] + best["validation_mismatched_accuracy"]) / 2)
    run = load_run(tmp_path / "run")
    assert run.probe_teacher.scores.shape[1] == 3  # one view per class
    assert run.config.terms["kd"].temperature == 3 and run.loss_terms[0]["temperature"] == 3  # annealed from T = 3


@pytest.mark.slow
def test_two_process_run_matches_one_process(sst2_teacher, tmp_path, glue_dir):
    common = ["--preset", "adkd+alp/sst2", "--teacher", str(sst2_teacher["dir"]), "--data-dir", str(glue_dir),
              "--train-subset", "512", "--epochs", "1", "--logging-steps", "8", "--probe-size", "0",
              "--agreement-size", "0"]  # the probe's measures are process 0's alone and not compared here
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]  # free port
    for command, batch, name in (([sys.executable], "32", "one"), (launcher, "16", "two")):
        done = subprocess.run([*command, "-m", "kdviz", "distill", *common, "--batch-size", batch,
                               "--output-dir", str(tmp_path / name)], env=env, cwd=REPO, capture_output=True, text=True)
        assert done.returncode == 0, f"{name} process(es) failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())["best"]["accuracy"]
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())["best"]["accuracy"]
    print(f"\n2-process vs 1-process dev accuracy (global batch 32): {two:.4f} vs {one:.4f}")
    assert abs(one - two) <= 0.02


def test_narrower_student_trains_a_width_projection_saved_with_the_run(tiny_teacher, tmp_path, real_glue_env):
    from safetensors.torch import load_file

    student = tmp_path / "narrow_student"
    tiny_bert(num_labels=2, layers=2, hidden=16, seed=3).save_pretrained(student)
    AutoTokenizer.from_pretrained(tiny_teacher).save_pretrained(student)
    config = tiny_config(tiny_teacher, tmp_path / "run", method="alp", student_init=str(student), epochs=1,
                         keep_checkpoints=True)
    shapes = []

    class OptimisedShapes(TrainerCallback):
        def on_train_end(self, args, state, control, optimizer=None, **kwargs):
            shapes.extend(tuple(p.shape) for group in optimizer.param_groups for p in group["params"])

    distill(config, callbacks=[OptimisedShapes()])
    assert (32, 16) in shapes  # the width projection is trained with the student
    run = RunFolder(tmp_path / "run")
    trained = run.load_objective()["terms.layer_projection.projection.width_projection.weight"]
    assert trained.shape == (32, 16)
    checkpoint = load_file(str(next(run.checkpoints_dir.glob("checkpoint-*")) / "model.safetensors"))
    assert "objective.terms.layer_projection.projection.width_projection.weight" in checkpoint  # resumable
    exported = AutoModelForSequenceClassification.from_pretrained(run.student_dir)
    assert exported.config.hidden_size == 16  # the projection is not part of the student


@pytest.mark.parametrize("method, trained_shapes", [("pkd", {(32, 16)}), ("ckd", {(16, 64)})])
def test_a_pretrained_narrower_encoder_is_a_student_for_pkd_and_ckd(method, trained_shapes, tiny_teacher, tmp_path,
                                                                    real_glue_env):
    from transformers import BertModel

    encoder = tmp_path / "pretrained_student"  # a base encoder (no classifier head), half the teacher's width
    torch.manual_seed(5)
    BertModel(tiny_bert_config(layers=2, hidden=16)).save_pretrained(encoder)
    AutoTokenizer.from_pretrained(tiny_teacher).save_pretrained(encoder)
    config = tiny_config(tiny_teacher, tmp_path / "run", method=method, student_init=str(encoder), epochs=1)
    shapes = []

    class OptimisedShapes(TrainerCallback):
        def on_train_end(self, args, state, control, optimizer=None, **kwargs):
            shapes.extend(tuple(p.shape) for group in optimizer.param_groups for p in group["params"])

    distill(config, callbacks=[OptimisedShapes()])
    assert trained_shapes <= set(shapes)  # PKD's width map (16 -> 32), CKD's bucket maps (2 x 32 -> 16)
    records = load_run(tmp_path / "run").loss_terms
    assert all(math.isfinite(r[f"loss_{method}"]) for r in records) and any(r[f"loss_{method}"] > 0 for r in records)


def test_paper_presets_pick_the_released_best_epoch_metric(tmp_path):
    stsb = DistillConfig.from_preset("paper-adkd/stsb", quick=False)
    assert kdviz.distill.training_arguments_for(stsb, tmp_path).metric_for_best_model == "spearman"
    qqp = DistillConfig.from_preset("paper-adkd/qqp", quick=False)
    assert kdviz.distill.training_arguments_for(qqp, tmp_path).metric_for_best_model == "accuracy"
    assert DistillConfig.from_preset("paper-adkd/cola", quick=False).selection_metric == "matthews_correlation"


def test_training_arguments_keep_the_recipe_and_take_overrides(tmp_path):
    config = DistillConfig.from_dict({**preset("adkd/rte"), "teacher": "t"})
    recipe = kdviz.distill.training_arguments_for(config, tmp_path)
    assert (recipe.eval_strategy, recipe.weight_decay, recipe.max_grad_norm) == ("epoch", 0.0, 1.0)
    assert recipe.learning_rate == config.learning_rate and recipe.metric_for_best_model == "accuracy"
    timing = kdviz.distill.training_arguments_for(config, tmp_path, max_steps=3, eval_strategy="no",
                                                  save_strategy="no", load_best_model_at_end=False)
    assert (timing.eval_strategy, timing.max_steps, timing.learning_rate) == ("no", 3, config.learning_rate)


def test_data_seed_fixes_the_training_subset_across_seeds(tiny_teacher, tmp_path, real_glue_env):
    drawn = {}

    class TrainingIdx(TrainerCallback):
        def __init__(self, seed):
            self.seed = seed

        def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
            drawn[self.seed] = sorted(train_dataloader.dataset["idx"])

    for seed in (42, 43):
        distill(tiny_config(tiny_teacher, tmp_path / f"seed{seed}", method="kd", epochs=1, seed=seed, data_seed=42,
                            probe_size=0), callbacks=[TrainingIdx(seed)])
    assert len(drawn[42]) == 64 and drawn[42] == drawn[43]


def run_two_processes(tiny_teacher, student, glue_dir, folder, **overrides):
    """A ``torchrun`` distillation with two gloo processes; each process's weights at the start and end."""
    from safetensors.torch import load_file

    weights = folder / "weights"
    weights.mkdir(parents=True)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(REPO / "tests" / "distributed_worker.py"), str(tiny_teacher), str(student), str(glue_dir),
                           str(folder / "run"), str(weights), json.dumps(overrides)],
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, f"torchrun failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return {(rank, when): load_file(str(weights / f"rank{rank}-{when}.safetensors"))
            for rank in (0, 1) for when in ("begin", "end")}


def test_two_processes_average_the_width_projection_too(tiny_teacher, tmp_path, glue_dir):
    """The projection is part of the DDP-wrapped module: both processes end with the same weights."""
    student = tmp_path / "narrow_student"
    tiny_bert(num_labels=2, layers=2, hidden=16, seed=3).save_pretrained(student)
    AutoTokenizer.from_pretrained(tiny_teacher).save_pretrained(student)
    weights = run_two_processes(tiny_teacher, student, glue_dir, tmp_path)
    rank0, rank1, start = weights[0, "end"], weights[1, "end"], weights[0, "begin"]
    name = "objective.terms.layer_projection.projection.width_projection.weight"
    assert rank0[name].shape == (32, 16) and not torch.equal(rank0[name], start[name])  # trained
    for key in rank0:
        torch.testing.assert_close(rank0[key], rank1[key], rtol=0, atol=0, msg=key)
    assert [r["step"] for r in RunFolder(tmp_path / "run").loss_terms()] == [0, 1, 2, 3, 4]  # 64 / (2 x 8) per step


def test_two_processes_train_chunked_ig_steps_to_the_unchunked_weights(tiny_teacher, tmp_path, glue_dir):
    """Chunked IG steps recompute in a reentrant backward: under DDP (two gloo processes) they train,
    both processes agree, and the weights equal those of the same run without chunks."""
    student = tmp_path / "student"
    tiny_bert(num_labels=2, layers=2, seed=3).save_pretrained(student)  # no dropout: chunks change nothing
    AutoTokenizer.from_pretrained(tiny_teacher).save_pretrained(student)
    runs = {chunk: run_two_processes(tiny_teacher, student, glue_dir, tmp_path / str(chunk), preset="adkd/sst2",
                                     ig_steps=2, ig_step_chunk=chunk, top_k=20)
            for chunk in (1, None)}
    chunked, whole = runs[1], runs[None]
    name = "student.bert.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(chunked[0, "end"][name], chunked[0, "begin"][name])  # trained
    for key in chunked[0, "end"]:
        torch.testing.assert_close(chunked[0, "end"][key], chunked[1, "end"][key], rtol=0, atol=0, msg=key)
        if not key.endswith("attention.self.key.bias"):  # its gradient is zero up to round-off, which Adam scales up
            torch.testing.assert_close(chunked[0, "end"][key], whole[0, "end"][key], rtol=1e-5, atol=1e-6, msg=key)


def test_tensorboard_receives_every_loss_term(tiny_teacher, tmp_path, real_glue_env):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = tiny_config(tiny_teacher, tmp_path / "tb", method="adkd+alp", epochs=1, report_to="tensorboard")
    distill(config)
    run = RunFolder(tmp_path / "tb")
    events = EventAccumulator(str(run.logs_dir)).Reload()
    logged = {tag: [event.value for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    for term in config.method_terms:
        assert len(logged[f"train/loss_{term}"]) == 2, sorted(logged)  # 4 steps, a record every 2
    recorded = [record["loss_kd"] for record in load_run(run.path).loss_terms if record["step"] > 0]
    assert logged["train/loss_kd"] == pytest.approx(recorded)  # the same values as the run's own history (step 0
    # is the run's own "before", not a logged window)
    assert "eval/accuracy" in logged


def test_a_logger_that_is_not_installed_is_refused_before_any_work(tiny_teacher, tmp_path, monkeypatch):
    import transformers.integrations.integration_utils as integrations

    monkeypatch.setattr(integrations, "is_wandb_available", lambda: False)
    with pytest.raises(ValueError, match="needs wandb, which is not installed: pip install wandb"):
        distill(tiny_config(tiny_teacher, tmp_path / "wandb", report_to="wandb"))
    assert not (tmp_path / "wandb").exists()


@pytest.mark.parametrize("method, kernel", [("kd", "sdpa"), ("alp", "sdpa"), ("adkd", "eager")])
def test_students_run_eager_attention_only_when_their_attributions_are_trained(tiny_teacher, tmp_path, method,
                                                                             kernel):
    from kdviz.models import load_teacher

    teacher, tokenizer = load_teacher(tiny_teacher, "sst2")
    student, _ = kdviz.distill.make_student(tiny_config(tiny_teacher, tmp_path, method=method), teacher, tokenizer)
    assert student.config._attn_implementation == kernel
