"""``kdviz reproduce``: the papers' setups end to end with local stand-ins for the hub, and the comparison."""

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertModel

from helpers import tiny_bert, tiny_bert_config
from kdviz.cli import main
from kdviz.recipes import ALP_MU, PAPER_TASKS
from kdviz.reproduce import compare, paper_preset, plan_for, reproduce_paper
from kdviz.study import StudyRun, read_rows


@pytest.fixture
def stand_ins(tmp_path, offline_teacher_dir):
    """A "released teacher" for RTE (a tiny classifier) and a "pre-trained small student" (a narrower encoder)."""
    tokenizer = AutoTokenizer.from_pretrained(offline_teacher_dir)
    teacher, student = tmp_path / "released_rte_teacher", tmp_path / "pretrained_student"
    tiny_bert(num_labels=2, layers=4, hidden=32).save_pretrained(teacher)
    torch.manual_seed(1)
    BertModel(tiny_bert_config(layers=2, hidden=16)).save_pretrained(student)
    for folder in (teacher, student):
        tokenizer.save_pretrained(folder)
    return teacher, student


def test_reproduce_adkd_runs_end_to_end_and_prints_the_comparison(stand_ins, tmp_path, glue_dir, capsys):
    teacher, student = stand_ins
    command = ["reproduce", "--paper", "adkd", "--tasks", "rte", "--teacher", f"rte={teacher}", "--student-init",
               str(student), "--data-dir", str(glue_dir), "--train-subset", "32", "--eval-subset", "16",
               "--epochs", "1", "--output-dir", str(tmp_path / "repro")]
    assert main(command) == 0
    printed = capsys.readouterr().out
    assert "| rte (accuracy) |" in printed and "| 70.90 | 1 |" in printed  # the paper's RTE score, one run
    assert "Pass: our mean >= the paper's number - 1 points." in printed
    rows = read_rows(tmp_path / "repro" / "results.csv")
    assert [(r["task"], r["method"], r["student_layers"], r["metric"]) for r in rows] == \
        [("rte", "adkd", "6", "accuracy")]
    assert (tmp_path / "repro" / "comparison.md").read_text() in printed
    assert main(command) == 0  # resumes: nothing left to run, the same single row
    assert len(read_rows(tmp_path / "repro" / "results.csv")) == 1


def test_bad_reproduction_requests_stop_before_anything_runs(tmp_path, capsys):
    assert main(["reproduce", "--paper", "alp", "--tasks", "stsb", "--output-dir", str(tmp_path / "r")]) == 2
    assert "does not report ['stsb']; its tasks are ['sst2', 'mrpc', 'cola', 'qnli', 'rte']" in capsys.readouterr().err
    assert main(["reproduce", "--paper", "adkd", "--teacher", "rte", "--output-dir", str(tmp_path / "r")]) == 2
    assert "expected TASK=TEACHER, got 'rte'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="Unknown paper 'tinybert'"):
        reproduce_paper("tinybert")
    assert not (tmp_path / "r").exists()


def test_alp_reproduction_plans_the_paper_and_its_baselines():
    plan = plan_for("alp", ["rte"], [42])
    methods_and_depths = {(m, d) for m in ("alp", "kd", "pkd", "ckd") for d in (6, 4, 2)}
    assert {(r.method, r.student_layers) for r in plan} == methods_and_depths
    alp = paper_preset("alp", StudyRun("rte", "alp", 2, 42))
    projection = alp["terms"]["layer_projection"]
    assert projection["weight"] == ALP_MU / 2 and projection["score"] == "unscaled" and alp["epochs"] == 5
    pkd = paper_preset("alp", StudyRun("rte", "pkd", 4, 42))
    assert pkd["terms"]["pkd"]["weight"] > 0 and "layer_projection" not in pkd["terms"]
    assert (pkd["epochs"], pkd["batch_size"], pkd["teacher"]) == \
        (5, 32, "bert-base-uncased")


def _rows(method, depth, scores):
    return [{"task": task, "method": method, "student_layers": str(depth), "seed": "42", "score": str(score)}
            for task, score in scores.items()]


def test_alp_comparison_needs_every_paper_task_and_applies_the_tolerance():
    tasks = PAPER_TASKS["paper-alp"]
    partial = compare("alp", _rows("alp", 4, {"rte": 70.0}), ["rte"], tolerance=1.0)
    four = next(line for line in partial if line.what == "4-layer GLUE average (alp)")
    assert four.ours is None and four.verdict.startswith("n/a: the paper averages sst2, mrpc, cola, qnli, rte")
    just_within = compare("alp", _rows("alp", 4, dict.fromkeys(tasks, 76.01)), list(tasks), tolerance=1.0)
    assert next(line for line in just_within if line.what == "4-layer GLUE average (alp)").verdict == "pass"
    below = compare("alp", _rows("alp", 4, dict.fromkeys(tasks, 75.99)), list(tasks), tolerance=1.0)
    assert next(line for line in below if line.what == "4-layer GLUE average (alp)").verdict == "fail"


def test_the_released_mnli_teacher_is_copied_once_in_the_tasks_label_order(tmp_path, offline_teacher_dir):
    from kdviz.reproduce import released_teacher_in_task_order

    released = tmp_path / "released_mnli"
    tiny_bert(num_labels=3, layers=1).save_pretrained(released)
    AutoTokenizer.from_pretrained(offline_teacher_dir).save_pretrained(released)
    assert released_teacher_in_task_order("rte", str(released), tmp_path) == str(released)  # same order: as it is
    copy = released_teacher_in_task_order("mnli", str(released), tmp_path)
    assert copy == str(tmp_path / "teachers" / "mnli-released")
    original = tiny_bert(num_labels=3, layers=1)
    reordered = AutoModelForSequenceClassification.from_pretrained(copy)
    torch.testing.assert_close(reordered.classifier.bias, original.classifier.bias[[1, 2, 0]])
    assert released_teacher_in_task_order("mnli", str(released), tmp_path) == copy  # made once, then reused
