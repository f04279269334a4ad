"""The kdviz command: precedence of preset, file and options; errors without tracebacks."""

from kdviz.cli import _precision, build_parser, config_from_arguments, main


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
    assert main(["finetune", "--task", "sst3", "--model", "offline-minilm", "--output", str(tmp_path / "x")]) == 2
    assert "Unknown GLUE task 'sst3'" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("epochs: three\n")
    assert main(["distill", "--preset", "kd/sst2", "--config", str(tmp_path / "bad.yaml")]) == 2
    assert "epochs='three' has the wrong type" in capsys.readouterr().err
    assert main(["distill", "--preset", "kd/sst2", "--teacher", "t", "--epochs", "0"]) == 2
    assert "epochs=0.0 is out of range" in capsys.readouterr().err
    (tmp_path / "a_file").write_text("mine")
    assert main(["finetune", "--task", "sst2", "--model", "offline-minilm", "--output", str(tmp_path / "a_file")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err and (tmp_path / "a_file").read_text() == "mine"


def test_precision_option_and_its_bf16_alias():
    def precision(*options):
        return config_from_arguments(build_parser().parse_args(["distill", "--preset", "kd/rte", *options])).precision

    assert precision() == "auto"
    assert precision("--precision", "fp16") == "fp16"
    assert precision("--bf16", "true") == "bf16" and precision("--bf16", "false") == "fp32"
    tune = build_parser().parse_args(["finetune", "--task", "rte", "--model", "m", "--output", "o", "--bf16", "true"])
    assert _precision(tune) == "bf16"
