"""The distillation Trainer: gradient accumulation, the teacher's passes, logging windows."""

import pytest
import torch
from safetensors.torch import load_file

from helpers import tiny_run_config
from kdviz.distill import distill
from kdviz.runs import RunFolder

ONE_SGD_STEP = dict(max_steps=1, optim="sgd", eval_strategy="no", save_strategy="no", load_best_model_at_end=False)


def one_step(tiny_teacher, output, batch_size, accumulation):
    # SGD without clipping: an update that scales with the gradient (Adam's first step would hide a factor)
    config = tiny_run_config(tiny_teacher, output, method="alp", batch_size=batch_size, logging_steps=1,
                             learning_rate=0.5, max_grad_norm=1e6, probe_size=0)
    distill(config, gradient_accumulation_steps=accumulation, **ONE_SGD_STEP)
    run = RunFolder(output)
    return run.loss_terms(), load_file(str(run.student_dir / "model.safetensors"))


def test_gradient_accumulation_matches_one_big_batch(tiny_teacher, tmp_path, real_glue_env):
    big_records, big_weights = one_step(tiny_teacher, tmp_path / "32x1", batch_size=32, accumulation=1)
    small_records, small_weights = one_step(tiny_teacher, tmp_path / "16x2", batch_size=16, accumulation=2)
    assert [r["step"] for r in big_records] == [r["step"] for r in small_records] == [0, 1]
    for big_terms, small_terms in zip(big_records, small_records):  # step 0 averages the step's micro-batches too
        for name in ("loss", "loss_ce", "loss_kd", "loss_layer_projection"):
            assert small_terms[name] == pytest.approx(big_terms[name], rel=1e-5), name
    # one step: the step-0 record ("before") and the step-1 window are the same batch before the same update
    assert small_records[0]["loss"] == pytest.approx(small_records[1]["loss"], rel=1e-6)
    moved = 0.0
    for name, weight in big_weights.items():
        torch.testing.assert_close(small_weights[name], weight, rtol=1e-5, atol=1e-6, msg=name)
    initial = load_file(str(tiny_teacher / "model.safetensors"))
    moved = (big_weights["classifier.weight"] - initial["classifier.weight"]).abs().max().item()
    assert moved > 1e-4  # the step did change the weights compared
