"""The device-to-precision choice, with the GPU's capabilities mocked."""

import pytest
import torch

from kdviz.precision import describe_precision, precision_arguments, resolve_precision


def fake_gpu(monkeypatch, capability, name="Fake GPU"):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)


@pytest.mark.parametrize("capability, expected", [((7, 5), "fp16"), ((7, 0), "fp16"), ((8, 0), "bf16"),
                                                  ((8, 9), "bf16"), ((9, 0), "bf16")],
                         ids=["T4", "V100", "A100", "L4", "H100"])
def test_auto_picks_bf16_on_ampere_and_later_else_fp16(monkeypatch, capability, expected):
    fake_gpu(monkeypatch, capability)
    assert resolve_precision("auto") == expected
    arguments = precision_arguments("auto")
    assert arguments["bf16"] == (expected == "bf16") and arguments["fp16"] == (expected == "fp16")
    assert arguments["tf32"] is (True if capability >= (8, 0) else None)


def test_auto_is_fp32_on_a_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_precision("auto") == "fp32"
    assert precision_arguments("auto") == {"bf16": False, "fp16": False, "tf32": None}
    assert describe_precision("auto") == "fp32"
    assert resolve_precision("bf16") == "bf16"  # asked for explicitly: CPU autocast


def test_explicit_choices_are_kept_and_bf16_refused_on_an_old_gpu(monkeypatch):
    fake_gpu(monkeypatch, (7, 5), "Tesla T4")
    assert resolve_precision("fp32") == "fp32"
    assert resolve_precision("fp16") == "fp16"
    assert describe_precision("auto") == "fp16 autocast + loss scaling"
    with pytest.raises(ValueError, match="Tesla T4.*precision='fp16'"):
        resolve_precision("bf16")
    with pytest.raises(ValueError, match="not one of"):
        resolve_precision("half")


def test_runtime_summary_names_the_precision_used(monkeypatch):
    from kdviz.notebook import runtime_summary

    fake_gpu(monkeypatch, (7, 5), "Tesla T4")
    assert "Tesla T4" in runtime_summary() and "fp16 autocast + loss scaling" in runtime_summary()
    fake_gpu(monkeypatch, (8, 0), "NVIDIA A100")
    assert "bf16 autocast, TF32 matmuls" in runtime_summary()


def test_fp16_is_refused_on_a_cpu_before_any_work(monkeypatch, tmp_path, capsys):
    from kdviz.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="fp16.*needs a CUDA GPU.*'fp32' or 'auto'"):
        resolve_precision("fp16")
    assert main(["distill", "--preset", "kd/sst2", "--teacher", "t", "--precision", "fp16", "--output-dir",
                 str(tmp_path / "run")]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err and not (tmp_path / "run").exists()


@pytest.mark.parametrize("asked, ran", [({"fp16": True}, "fp32"), ({"bf16": True}, "bf16"), ({}, "fp32")])
def test_the_record_says_what_the_training_ran_in(tmp_path, asked, ran):
    """Even a Trainer asked for fp16 on a CPU directly (past kdviz's check) is recorded as the fp32 it runs."""
    from transformers import Trainer, TrainingArguments

    from helpers import tiny_bert
    from kdviz.glue_trainer import trained_precision

    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", **asked)
    assert trained_precision(Trainer(model=tiny_bert(), args=args)) == ran
