"""GLUE submissions: a run's test-set predictions in the benchmark's file format."""

import csv

import pytest
import torch
from transformers import AutoTokenizer

from helpers import tiny_bert, tiny_run_config
from kdviz.cli import main
from kdviz.data import GlueDataError, load_glue
from kdviz.distill import distill
from kdviz.predict import prediction_text
from kdviz.runs import load_run
from kdviz.tasks import get_task


def read_tsv(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


def test_mrpc_test_set_predictions_in_the_submission_format(tiny_teacher, tmp_path, glue_dir):
    """On MRPC's real test.tsv (1,725 unlabelled pairs): one line per pair, its index, the student's class."""
    distill(tiny_run_config(tiny_teacher, tmp_path / "run", method="kd", task="mrpc", data_dir=str(glue_dir),
                            epochs=1, probe_size=0, agreement_size=0))
    assert main(["predict", str(tmp_path / "run"), "--split", "test", "--data-dir", str(glue_dir)]) == 0
    rows = read_tsv(tmp_path / "run" / "submission" / "MRPC.tsv")
    test_file = read_tsv(glue_dir / "MRPC" / "test.tsv")
    assert rows[0] == ["index", "prediction"] and len(rows) == len(test_file) == 1726
    assert [row[0] for row in rows[1:]] == [row[0] for row in test_file[1:]]
    assert {row[1] for row in rows[1:]} <= {"0", "1"}
    student, tokenizer = load_run(tmp_path / "run").load_student()
    pairs = load_glue("mrpc", glue_dir, splits=("test",))["test"].select(range(5))
    batch = tokenizer(list(pairs["sentence1"]), list(pairs["sentence2"]), return_tensors="pt", padding=True, truncation=True,
                      max_length=128)
    with torch.no_grad():
        expected = student(**batch).logits.argmax(-1).tolist()
    assert [int(row[1]) for row in rows[1:6]] == expected


def test_mnli_writes_matched_and_mismatched_files_with_label_names(tmp_path, fixture_glue_dir, offline_teacher_dir):
    teacher = tmp_path / "mnli_teacher"
    tiny_bert(num_labels=3, layers=2).save_pretrained(teacher)
    AutoTokenizer.from_pretrained(offline_teacher_dir).save_pretrained(teacher)
    distill(tiny_run_config(teacher, tmp_path / "run", method="kd", task="mnli", data_dir=str(fixture_glue_dir),
                            student_layers=1, batch_size=2, epochs=1, probe_size=0, agreement_size=0))
    out = tmp_path / "glue"
    assert main(["predict", str(tmp_path / "run"), "--data-dir", str(fixture_glue_dir), "--output-dir", str(out)]) == 0
    matched, mismatched = read_tsv(out / "MNLI-m.tsv"), read_tsv(out / "MNLI-mm.tsv")
    assert [row[0] for row in matched] == ["index", "0", "1"] and [row[0] for row in mismatched[1:]] == ["9796", "9797"]
    assert {row[1] for row in matched[1:] + mismatched[1:]} <= {"entailment", "neutral", "contradiction"}
    with pytest.raises(ValueError, match="not a test split of mnli"):
        from kdviz.predict import write_submission

        write_submission(tmp_path / "run", split="validation_matched", data_dir=fixture_glue_dir)


@pytest.mark.parametrize("task, ids, texts", [("cola", [0, 1], ["sentence"]), ("qqp", [0, 1], ["question1", "question2"]),
                                              ("stsb", [0], ["sentence1", "sentence2"])])
def test_test_files_of_every_layout_are_read(fixture_glue_dir, task, ids, texts):
    test = load_glue(task, fixture_glue_dir, splits=("test",))["test"]
    assert list(test["idx"]) == ids and all(test[column][0] for column in texts)
    assert set(test["label"]) == {-1}


def test_predictions_are_written_as_the_task_writes_labels():
    logits = torch.tensor([0.1, 2.0])
    assert prediction_text(get_task("rte"), logits) == "not_entailment"
    assert prediction_text(get_task("sst2"), logits) == "1"
    assert prediction_text(get_task("stsb"), torch.tensor([5.7])) == "5.000"
    assert prediction_text(get_task("stsb"), torch.tensor([2.25])) == "2.250"


def test_a_missing_test_file_is_named(tmp_path, glue_dir):
    with pytest.raises(GlueDataError, match="expected the test file .*RTE/test.tsv"):
        load_glue("rte", glue_dir, splits=("test",))
