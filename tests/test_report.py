"""Reports: metrics tables, the papers' reference table, a finished run's reports."""

import pytest
import torch

from helpers import is_png, tiny_bert
from kdviz.config import DistillConfig
from kdviz.objective import DistillationObjective
from kdviz.recipes import preset
from kdviz.report import comparison_table, format_metrics_table, reference_table, write_run_reports
from kdviz.run_records import LayerWeights, ProbeExample, ProbeScores, TeacherInfo
from kdviz.runs import Run, RunFolder, TeacherFolder


def test_metrics_table_puts_the_main_metric_first_in_percent():
    table = format_metrics_table({"teacher": {"accuracy": 0.81, "f1": 0.875}, "student": {"accuracy": 0.7, "f1": 0.8}},
                                 "mrpc")
    assert table.splitlines() == ["| mrpc | f1 | accuracy |", "|---|---|---|", "| teacher | 87.50 | 81.00 |",
                                  "| student | 80.00 | 70.00 |"]


def test_reference_table_has_the_papers_rows_for_the_tasks_asked():
    table = reference_table(["sst2", "rte"])
    assert "| AD-KD, 6 layers (as reported) | 91.9 | 70.9 |" in table
    assert "| 2-layer students | 67.08 | 66.10 |" in table


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


def _fake_run(label, kept_scores, cosine):
    config = DistillConfig.from_dict({**preset(f"{label}/sst2"), "teacher": "t"})
    tokens = ["[CLS]", "a", "b", "[SEP]"]
    teacher = ProbeScores(torch.tensor([[[0.1, 0.7, 0.7, 0.1]]]), torch.zeros(1, 2), torch.tensor([[0.0, 1.0, -1.0, 0.0]]))
    student = ProbeScores(torch.tensor([[kept_scores]]), torch.zeros(1, 2), torch.tensor([[0.0, 0.5, 0.5, 0.0]]))
    metrics = {"best": {"accuracy": 0.8}, "agreement": {"step_0": {"cosine": 0.5, "spearman": 0.1},
                                                        "student": {"cosine": cosine, "spearman": 0.3},
                                                        "uniform": {"cosine": 0.6, "spearman": 0.0}},
               "faithfulness": {"student": {"aopc_comprehensiveness": 0.2, "aopc_sufficiency": 0.1},
                                "student_random_rationale": {"aopc_comprehensiveness": 0.05, "aopc_sufficiency": 0.3}}}
    return Run(folder=None, config=config, teacher=None, metrics=metrics, probe=[ProbeExample(0, ["a b"], 1, tokens)],
               probe_teacher=teacher, probe_student={0: student, 8: student})


def test_comparison_table_and_rationale_rows_of_runs_of_one_teacher():
    from kdviz.viz.sources import probe_rationales

    runs = {"kd": _fake_run("kd", [0.5, 0.5, 0.5, 0.5], 0.7), "adkd": _fake_run("adkd", [0.1, 0.6, 0.7, 0.1], 0.9)}
    lines = comparison_table(runs).splitlines()
    assert lines[2] == "| kd | 80.00 | 0.5000 | 0.7000 | 0.6000 | 0.1000 | 0.3000 | 0.2000 | 0.0500 | 0.1000 | 0.3000 |"
    assert lines[3].startswith("| adkd | 80.00 | 0.5000 | 0.9000 |")
    tokens, rows = probe_rationales(runs, 0)
    assert tokens == ["[CLS]", "a", "b", "[SEP]"] and list(rows) == ["teacher", "kd", "adkd"]
    assert rows["adkd"].tolist() == torch.tensor([0.1, 0.6, 0.7, 0.1]).tolist()
    _, signed = probe_rationales(runs, 0, signed=True)
    assert signed["teacher"].tolist() == [0.0, 1.0, -1.0, 0.0]
    runs["adkd"].probe_teacher = ProbeScores(torch.ones(1, 1, 4), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="another probe set or teacher"):
        probe_rationales(runs, 0)
