import math

import pytest

from kdviz.tasks import TASKS, compute_metrics, format_task_table, get_task

PAPER_TASKS = ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte"]


def test_registry_holds_the_papers_tasks_with_hub_labels():
    for name in PAPER_TASKS:
        assert name in TASKS
    assert get_task("mnli").label_names == ("entailment", "neutral", "contradiction")
    assert get_task("rte").label_names == ("entailment", "not_entailment")
    assert get_task("qnli").label_names == ("entailment", "not_entailment")
    assert get_task("mrpc").label_names[1] == "equivalent"
    assert get_task("qqp").label_names[1] == "duplicate"
    assert get_task("stsb").is_regression and get_task("stsb").num_labels == 1
    assert get_task("mnli").validation_splits == ("validation_matched", "validation_mismatched")


@pytest.mark.parametrize("task,main", [("cola", "matthews_correlation"), ("sst2", "accuracy"), ("mrpc", "f1"),
                                       ("stsb", "pearson"), ("qqp", "accuracy"), ("mnli", "accuracy"),
                                       ("qnli", "accuracy"), ("rte", "accuracy")])
def test_main_metric(task, main):
    assert get_task(task).main_metric == main
    assert main in get_task(task).metrics


def test_lookup_accepts_folder_names_and_any_case():
    assert get_task("SST-2").name == "sst2"
    assert get_task("STS-B").name == "stsb"
    assert get_task("MNLI").name == "mnli"


def test_unknown_task_lists_valid_names():
    with pytest.raises(ValueError, match="Unknown GLUE task 'sst3'.*cola, sst2, mrpc"):
        get_task("sst3")


def test_accuracy_and_f1_against_hand_computed_values():
    labels = [1, 1, 0, 0, 1]
    predictions = [1, 0, 0, 1, 1]
    # tp = 2, fp = 1, fn = 1: precision 2/3, recall 2/3, F1 2/3; 3 of 5 right
    metrics = compute_metrics("mrpc", predictions, labels)
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["f1"] == pytest.approx(2 / 3)


def test_logits_are_argmaxed():
    logits = [[2.0, -1.0], [0.1, 0.3], [0.0, 5.0]]
    assert compute_metrics("sst2", logits, [0, 1, 0])["accuracy"] == pytest.approx(2 / 3)


def test_matthews_correlation_against_hand_computed_value():
    labels = [1, 1, 1, 0, 0, 0]
    predictions = [1, 1, 0, 0, 0, 1]
    tp, tn, fp, fn = 2, 2, 1, 1
    expected = (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert compute_metrics("cola", predictions, labels)["matthews_correlation"] == pytest.approx(expected)


def test_pearson_and_spearman_against_hand_computed_values():
    labels = [1.0, 2.0, 3.0, 4.0]
    predictions = [[1.0], [3.0], [2.0], [5.0]]
    x, y = [1.0, 3.0, 2.0, 5.0], labels
    mx, my = sum(x) / 4, sum(y) / 4
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y))
    pearson = cov / math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))
    # ranks of predictions 1, 3, 2, 4 against 1, 2, 3, 4: d^2 = 0 + 1 + 1 + 0
    spearman = 1 - 6 * 2 / (4 * (16 - 1))
    metrics = compute_metrics("stsb", predictions, labels)
    assert metrics["pearson"] == pytest.approx(pearson)
    assert metrics["spearman"] == pytest.approx(spearman)


def test_task_table_lists_every_task():
    table = format_task_table()
    for task in TASKS.values():
        assert task.name in table and task.folder in table
