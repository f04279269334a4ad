"""Reports: metrics tables, loss figures, the papers' reference table, a finished run's reports."""

import torch

from helpers import is_png, tiny_bert
from kdviz.config import DistillConfig
from kdviz.objective import DistillationObjective
from kdviz.recipes import preset
from kdviz.report import (format_metrics_table, reference_table, write_loss_figure, write_loss_terms_figure,
                          write_run_reports)
from kdviz.runs import LayerWeights, RunFolder, TeacherFolder, TeacherInfo


def test_metrics_table_puts_the_main_metric_first_in_percent():
    table = format_metrics_table({"teacher": {"accuracy": 0.81, "f1": 0.875}, "student": {"accuracy": 0.7, "f1": 0.8}},
                                 "mrpc")
    assert table.splitlines() == ["| mrpc | f1 | accuracy |", "|---|---|---|", "| teacher | 87.50 | 81.00 |",
                                  "| student | 80.00 | 70.00 |"]


def test_reference_table_has_the_papers_rows_for_the_tasks_asked():
    table = reference_table(["sst2", "rte"])
    assert "| AD-KD, 6 layers (as reported) | 91.9 | 70.9 |" in table
    assert "| 2-layer students | 67.08 | 66.10 |" in table


def test_loss_figures_are_pngs(tmp_path):
    history = [{"step": 10, "loss": 0.7}, {"step": 20, "loss": 0.5}, {"step": 20, "eval_accuracy": 0.8}]
    assert is_png(write_loss_figure(tmp_path / "a" / "loss.png", history, "fine-tuning").read_bytes())
    records = [{"step": 2, "loss_ce": 0.7, "loss_kd": 0.5}, {"step": 4, "loss_ce": 0.6, "loss_kd": 0.4}]
    figure = write_loss_terms_figure(tmp_path / "terms.png", records, "terms")
    assert is_png(figure.read_bytes())


def test_run_reports_hold_the_teacher_row_and_the_figures(tmp_path):
    teacher = TeacherFolder(tmp_path / "teacher")
    teacher.write_metrics({"best": {"accuracy": 0.9}}, "")
    config = DistillConfig.from_dict({**preset("alp/sst2"), "teacher": str(teacher.path)})
    run = RunFolder(tmp_path / "run")
    run.write_header(config, TeacherInfo(str(teacher.path), ["negative", "positive"], 4, 32))
    for step in (2, 4):
        run.append_loss_terms({"step": step, "loss_ce": 0.5, "loss_kd": 0.4, "loss_layer_projection": 0.1})
        run.append_layer_weights(LayerWeights(step, torch.full((2, 4), 0.25).tolist()))
    objective = DistillationObjective.from_config(config, tiny_bert(layers=2).config, tiny_bert(layers=4).config)
    write_run_reports(run, config, {"best": {"accuracy": 0.8}}, objective)
    assert run.metrics_table().splitlines()[2:] == ["| teacher (4 layers) | 90.00 |",
                                                    "| student (ce+kd+layer_projection) | 80.00 |"]
    assert is_png(run.loss_terms_figure.read_bytes()) and is_png(run.layer_attention_figure.read_bytes())
    assert run.load().metrics == {"best": {"accuracy": 0.8}}
