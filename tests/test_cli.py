"""The kdviz command: precedence of preset, file and options; errors without tracebacks."""

import dataclasses
import subprocess
import sys

import pytest

import kdviz.cli
import kdviz.cli_parsing
from kdviz.cli import _precision, build_parser, config_from_arguments, main
from kdviz.config import DistillConfig


def test_command_line_precedence_preset_then_file_then_options(tmp_path):
    (tmp_path / "run.yaml").write_text("beta: 3.0\nepochs: 2\nteacher: from_file\n")
    args = build_parser().parse_args(["distill", "--preset", "adkd/rte", "--config", str(tmp_path / "run.yaml"),
                                      "--epochs", "1", "--anneal-temperature", "true",
                                      "--student-layer-indices", "0", "5"])
    config = config_from_arguments(args)
    assert config.task == "rte" and config.learning_rate == 2e-5  # preset
    assert config.beta == 3.0 and config.teacher == "from_file"  # file
    assert config.epochs == 1.0 and config.anneal_temperature is True  # options
    assert config.student_layer_indices == [0, 5]


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
    titles = list(kdviz.cli.OPTION_GROUPS)
    assert all(f"\n{title}:\n" in text for title in titles)
    assert text.index("AD-KD: attribution loss:") < text.index("\n  --ig-steps") < text.index("ALP-KD: layer projection:")
    assert "{mse,l1,smooth_l1}" in text and "{skip,first,last}" in text
    grouped = [name for names in kdviz.cli.OPTION_GROUPS.values() for name in names]
    assert sorted(grouped) == sorted(field.name for field in dataclasses.fields(DistillConfig))  # each once
    monkeypatch.setitem(kdviz.cli.OPTION_GROUPS, "training", ("epochs",))
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
