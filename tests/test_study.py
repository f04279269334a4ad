"""The resumable study behind reproduce.py and notebook 05: grid, CSV rows, summaries."""

import csv
import math

import pytest

import kdviz.study
from kdviz.runs import RunFolder
from kdviz.study import (grid, majority_class_score, paired_differences, progress_line, read_rows, run_study, summarise,
                         summary_table)


def test_grid_is_task_major_then_seed_major():
    plan = grid(["sst2", "rte"], ["kd", "adkd"], [2], [1, 2])
    assert len(plan) == 8 and [run.task for run in plan[:4]] == ["sst2"] * 4
    assert [(run.method, run.seed) for run in plan[:4]] == [("kd", 1), ("adkd", 1), ("kd", 2), ("adkd", 2)]
    assert plan[0].folder == "sst2/kd-2l-seed1" and grid(["x"], ["adkd+alp"], [3], [7])[0].folder == "x/adkd_alp-3l-seed7"


def test_study_writes_a_row_per_run_and_resumes_without_rerunning(tiny_teacher, tmp_path, real_glue_env, monkeypatch,
                                                                   capsys):
    plan = grid(["sst2"], ["ft", "kd"], [2], [42])
    options = dict(quick=False, train_subset=48, eval_subset=32, epochs=1, batch_size=16, probe_size=2, top_k=20)
    run_study(plan[:1], {"sst2": str(tiny_teacher)}, tmp_path / "study.csv", tmp_path / "runs", progress=False,
              **options)
    assert [row["method"] for row in read_rows(tmp_path / "study.csv")] == ["ft"]
    assert not RunFolder(tmp_path / "runs" / "sst2" / "ft-2l-seed42").student_dir.exists()  # models dropped
    printed = capsys.readouterr().out.splitlines()  # one line per epoch, then one for the run, nothing else
    assert printed[0].startswith("sst2 ce: epoch 1/1: ") and len(printed) == 2
    assert printed[1].startswith("run 1 of 1: sst2 ft 2-layer seed 42: accuracy ")

    finished = []
    real_distill = kdviz.study.distill_or_resume
    monkeypatch.setattr(kdviz.study, "distill_or_resume", lambda config, **kw: finished.append(config.terms["kd"].weight) or
                        real_distill(config, **kw))
    rows = run_study(plan, {"sst2": str(tiny_teacher)}, tmp_path / "study.csv", tmp_path / "runs", **options)
    assert finished == [0.8]  # only kd ran: ft was in the CSV already
    assert [(r["method"], r["metric"], int(r["train_examples"])) for r in rows] == [("ft", "accuracy", 48),
                                                                                    ("kd", "accuracy", 48)]
    assert all(0 <= float(r["score"]) <= 100 for r in rows)
    metrics = RunFolder(tmp_path / "runs" / "sst2" / "kd-2l-seed42").read_metrics()
    assert float(rows[1]["cosine_step_0"]) == round(metrics["agreement"]["step_0"]["cosine"], 4)
    assert float(rows[1]["cosine_flat"]) == round(metrics["agreement"]["uniform"]["cosine"], 4)
    random = metrics["faithfulness"]["student_random_rationale"]["aopc_comprehensiveness"]
    assert float(rows[1]["aopc_comprehensiveness_random"]) == round(random, 4)
    with pytest.raises(ValueError, match="No teacher for task"):
        run_study(grid(["rte"], ["kd"], [2], [1]), {"sst2": str(tiny_teacher)}, tmp_path / "study.csv", tmp_path)


def test_a_csv_started_by_an_older_kdviz_keeps_its_columns(tmp_path):
    from kdviz.study import append_row

    old = ("task", "method", "student_layers", "seed", "score")
    append_row(tmp_path / "old.csv", {"task": "rte", "method": "kd", "student_layers": 2, "seed": 1, "score": 60},
               fields=old)
    append_row(tmp_path / "old.csv", {"task": "rte", "method": "adkd", "student_layers": 2, "seed": 1, "score": 61,
                                      "cosine": 0.9})
    rows = read_rows(tmp_path / "old.csv")
    assert [tuple(row) for row in rows] == [old, old] and rows[1]["score"] == "61"
    assert summarise(rows, "cosine") == []  # a column the file does not have: no cells
    rows = [{"task": "rte", "method": m, "student_layers": "2", "seed": "1", "score": "60", "wall_s": "1",
             "cosine": c} for m, c in (("kd", "0.80"), ("adkd", "0.85"), ("ft", ""))]
    difference, = paired_differences(rows, "kd", "cosine")  # ft recorded no cosine: left out
    assert difference["method"] == "adkd" and math.isclose(difference["cosine"], 0.05)


def test_progress_line_counts_runs_and_estimates_the_time_left():
    run, = grid(["rte"], ["kd"], [2], [7])
    assert progress_line(1, 3, run, 61.234, "accuracy", [120.0]) == \
        "run 1 of 3: rte kd 2-layer seed 7: accuracy 61.23 in 2.0 min, about 4.0 min left"
    assert progress_line(3, 3, run, 60.0, "accuracy", [60.0, 60.0, 90.0]).endswith("in 1.5 min, done")


def test_summary_mean_and_sample_std(tmp_path):
    rows = [{"task": "rte", "method": "kd", "student_layers": "2", "seed": s, "score": v, "wall_s": w}
            for s, v, w in (("1", "60", "10"), ("2", "62", "30"), ("3", "64", "12"))]
    rows.append({"task": "rte", "method": "ft", "student_layers": "2", "seed": "1", "score": "55.5", "wall_s": "5"})
    cells = {c["method"]: c for c in summarise(rows)}
    assert cells["kd"]["n"] == 3 and cells["kd"]["mean"] == 62 and math.isclose(cells["kd"]["std"], 2.0)
    assert cells["ft"]["std"] == 0.0
    table = summary_table(rows, {"rte": 66.1})
    assert "| teacher | | 66.10 |" in table and "| kd | 2 | 62.00 ± 2.00 (3) |" in table
    assert "rte (accuracy)" in table and "| ft | 2 | 55.50 (1) |" in table  # no standard deviation of one run
    wall = summary_table(rows, value=lambda cell: f"{cell['wall_s']:.0f} s")
    assert "| kd | 2 | 10 s |" in wall and "| method | layers | rte |" in wall
    with open(tmp_path / "rows.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert summarise(read_rows(tmp_path / "rows.csv")) == summarise(rows)


def test_paired_differences_subtract_the_baseline_on_the_same_seed():
    def row(method, seed, score, task="rte"):
        return {"task": task, "method": method, "student_layers": "2", "seed": seed, "score": score, "wall_s": "1"}

    rows = [row("kd", "1", "60"), row("kd", "2", "64"), row("adkd", "1", "61.5"), row("adkd", "2", "64.5"),
            row("adkd", "3", "70"), row("adkd", "1", "50", task="mrpc")]  # no kd for seed 3 or mrpc
    differences = paired_differences(rows, baseline="kd")
    assert [(d["seed"], d["score"]) for d in differences] == [("1", 1.5), ("2", 0.5)]
    cell, = summarise(differences)
    assert cell["method"] == "adkd" and cell["mean"] == 1.0 and math.isclose(cell["std"], 2 ** -0.5)
    assert cell["above_zero"] == 2
    behind, = summarise(paired_differences(rows, baseline="adkd"))  # kd - adkd: -1.5 and -0.5
    assert behind["method"] == "kd" and behind["above_zero"] == 0
    assert paired_differences(rows, baseline="ft") == []


def test_majority_class_score_is_the_dev_score_of_the_most_frequent_training_label(glue_dir):
    def labels(split):
        return [line.split("\t")[0] for line in (glue_dir / "MRPC" / f"{split}.tsv").read_text().splitlines()[1:]]

    train, dev = labels("train"), labels("dev")
    assert max(set(train), key=train.count) == "1"  # paraphrase: MRPC's majority class
    positives = dev.count("1")  # always "1": precision = positives / dev, recall 1, F1 = 2p / (p + dev)
    assert math.isclose(majority_class_score("mrpc", str(glue_dir)), 100 * 2 * positives / (positives + len(dev)))
    assert majority_class_score("stsb") is None  # regression: no majority class (and nothing loaded)
    table = summary_table([{"task": "mrpc", "method": "kd", "student_layers": "2", "seed": "1", "score": "82",
                            "wall_s": "1"}], {"mrpc": 85.3}, reference_rows={"majority class": {"mrpc": 81.2}})
    assert table.splitlines()[2:5] == ["| teacher | | 85.30 |", "| majority class | | 81.20 |", "| kd | 2 | 82.00 (1) |"]
