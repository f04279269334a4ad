"""The kdviz command: precedence of preset, file and options; errors without tracebacks."""

import dataclasses
import subprocess
import sys

import pytest

import kdviz.cli
import kdviz.cli_parsing
import kdviz.config_options
from kdviz.cli import _precision, build_parser, config_from_arguments, main
from kdviz.config import DistillConfig
from kdviz.loss_terms import TERMS


def test_command_line_precedence_preset_then_file_then_options(tmp_path):
    (tmp_path / "run.yaml").write_text("terms: {attribution: {weight: 3.0}}\nepochs: 2\nteacher: from_file\n")
    args = build_parser().parse_args(["distill", "--preset", "adkd/rte", "--config", str(tmp_path / "run.yaml"),
                                      "--epochs", "1", "--kd-anneal", "true", "--student-layer-indices", "0", "5"])
    config = config_from_arguments(args)
    assert config.task == "rte" and config.learning_rate == 2e-5 and config.terms["kd"].weight == 0.9  # preset
    assert config.terms["attribution"].weight == 3.0 and config.teacher == "from_file"  # file
    assert config.epochs == 1.0 and config.terms["kd"].anneal is True  # options
    assert config.student_layer_indices == [0, 5]


def test_each_term_has_its_options_and_the_flat_options_of_0x_still_work_with_a_warning(capsys):
    options = ["distill", "--preset", "alp/rte", "--teacher", "t", "--layer-projection-variant", "alp-no",
               "--kd-temperature", "3", "--pkd-weight", "10", "--pkd-mapping", "last"]
    config = config_from_arguments(build_parser().parse_args(options))
    assert (config.terms["layer_projection"].variant, config.terms["layer_projection"].weight) == ("alp-no", 1.0)
    assert config.terms["kd"].temperature == 3.0 and config.method_terms == ["ce", "kd", "layer_projection", "pkd"]
    assert config.terms["pkd"].mapping == "last"
    old = ["distill", "--preset", "alp/rte", "--teacher", "t", "--alp-variant", "alp-no", "--temperature", "3",
           "--w-pkd", "10", "--pkd-mapping", "last"]
    assert config_from_arguments(build_parser().parse_args(old)) == config
    err = capsys.readouterr().err
    assert "--alp-variant is deprecated and will be removed after 2027-06-30: use --layer-projection-variant" in err
    assert "--w-pkd is deprecated" in err and "use --pkd-weight" in err


def test_cli_lists_tasks_and_presets(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "mnli" in out and "matthews_correlation" in out
    assert main(["distill", "--list-presets"]) == 0
    assert "adkd+alp/sst2" in capsys.readouterr().out.split()


def test_cli_reports_bad_input_without_a_traceback(capsys, tmp_path):
    assert main(["finetune", "--task", "sst3", "--model", "offline-minilm", "--output-dir", str(tmp_path / "x")]) == 2
    assert "Unknown GLUE task 'sst3'" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("epochs: three\n")
    assert main(["distill", "--preset", "kd/sst2", "--config", str(tmp_path / "bad.yaml")]) == 2
    assert "epochs='three' has the wrong type" in capsys.readouterr().err
    assert main(["distill", "--preset", "kd/sst2", "--teacher", "t", "--epochs", "0"]) == 2
    assert "epochs=0.0 is out of range" in capsys.readouterr().err
    (tmp_path / "a_file").write_text("mine")
    assert main(["finetune", "--task", "sst2", "--model", "offline-minilm", "--output-dir",
                 str(tmp_path / "a_file")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err and (tmp_path / "a_file").read_text() == "mine"


def test_precision_option_and_its_bf16_alias(capsys):
    def precision(*options):
        return config_from_arguments(build_parser().parse_args(["distill", "--preset", "kd/rte", *options])).precision

    assert precision() == "auto"
    assert precision("--precision", "fp16") == "fp16"
    assert precision("--bf16", "true") == "bf16" and precision("--bf16", "false") == "fp32"
    assert capsys.readouterr().err.count("kdviz: warning: --bf16 is deprecated") == 2
    tune = build_parser().parse_args(["finetune", "--task", "rte", "--model", "m", "--output-dir", "o",
                                      "--precision", "fp16"])
    assert _precision(tune) == "fp16"


def test_every_command_spells_its_options_alike_and_the_older_spellings_warn(capsys):
    parse = build_parser().parse_args
    tune = parse(["finetune", "--task", "rte", "--model", "m", "--output-dir", "o", "--learning-rate", "1e-4"])
    again = parse(["reproduce", "--paper", "adkd", "--output-dir", "r"])
    capsys.readouterr()
    old_tune = parse(["finetune", "--task", "rte", "--model", "m", "--output", "o", "--lr", "1e-4"])
    old_again = parse(["reproduce", "--paper", "adkd", "--runs", "r"])
    assert (old_tune.output_dir, old_tune.learning_rate, old_again.output_dir) == (tune.output_dir,
                                                                                   tune.learning_rate, again.output_dir)
    messages = capsys.readouterr().err.splitlines()
    assert [message.split()[2] for message in messages] == ["--output", "--lr", "--runs"]
    assert all(message.startswith("kdviz: warning: ") and kdviz.cli_parsing.ALIASES_REMOVED_AFTER in message
               and "use --" in message for message in messages)
    assert "--lr" not in build_parser()._subparsers._group_actions[0].choices["finetune"].format_help()
    assert main(["finetune", "--task", "rte", "--model", "m"]) == 2
    assert "give --output-dir FOLDER" in capsys.readouterr().err


def test_distill_help_groups_every_config_field_and_shows_the_allowed_values(monkeypatch):
    text = build_parser()._subparsers._group_actions[0].choices["distill"].format_help()
    titles = list(kdviz.config_options.OPTION_GROUPS)
    assert all(f"\n{title}:\n" in text for title in titles)
    terms = [f"\nloss term {name}: " for name in TERMS]
    assert text.index("\nstudent:") < min(map(text.index, terms)) < text.index("\nloss terms of your own:")
    assert text.index("\nloss term attribution: AD-KD's attribution loss") < text.index("\n  --attribution-distance") \
        < text.index("\nloss term layer_projection: ALP-KD's layer projection")
    assert "{mse,l1,smooth_l1}" in text and "{skip,first,last}" in text and "{alp,alp-no,alp-po,skip,last}" in text
    assert "--beta" not in text and "--alp-variant" not in text  # the older spellings work, unlisted
    grouped = [name for names in kdviz.config_options.OPTION_GROUPS.values() for name in names]
    assert sorted(grouped + ["terms"]) == sorted(field.name for field in dataclasses.fields(DistillConfig))  # each once
    monkeypatch.setitem(kdviz.config_options.OPTION_GROUPS, "training", ("epochs",))
    with pytest.raises(RuntimeError, match="without an option group"):
        build_parser().parse_args(["distill", "--list-presets"])


def test_the_command_and_the_package_start_without_torch_transformers_or_datasets():
    code = ("import contextlib, io, sys, kdviz, kdviz.cli\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    kdviz.cli.main(['--help'])\n"
            "assert 'distill' in out.getvalue()\n"
            "print(sorted(m for m in ('torch', 'transformers', 'datasets', 'kdviz.config') if m in sys.modules))\n"
            "kdviz.DistillConfig\n"
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["[]", "True"]  # nothing heavy until a name that needs it


def test_a_command_closes_the_process_group_its_run_left_open(tmp_path, capsys):
    import torch.distributed as distributed

    # what Trainer (accelerate) leaves behind in each process of a torchrun run
    distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        assert main(["tasks"]) == 0
        assert not distributed.is_initialized()
    finally:
        if distributed.is_initialized():
            distributed.destroy_process_group()
