"""What every Trainer here shares: metrics, MNLI's mean main metric, loss scaling under accumulation."""

import subprocess
import sys

import numpy as np
import pytest
from transformers import EvalPrediction, Trainer

from helpers import tiny_bert
from kdviz.glue_trainer import (GlueTrainer, epoch_history, glue_trainer_inputs, trainer_metrics,
                                without_progress_output)


def test_trainer_metrics_score_logits_with_the_task_metrics():
    score = trainer_metrics("mrpc")
    metrics = score(EvalPrediction(predictions=np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]),
                                   label_ids=np.array([1, 1, 1])))
    assert metrics["accuracy"] == pytest.approx(2 / 3) and metrics["f1"] == pytest.approx(0.8)


def test_epoch_history_merges_evaluation_records_by_step():
    log = [{"loss": 0.7, "step": 5}, {"eval_accuracy": 0.8, "epoch": 1.0, "step": 10},
           {"eval_loss": 0.4, "epoch": 1.0, "step": 10}, {"eval_accuracy": 0.85, "epoch": 2.0, "step": 20}]
    assert epoch_history(log) == [{"epoch": 1.0, "step": 10, "eval_accuracy": 0.8, "eval_loss": 0.4},
                                  {"epoch": 2.0, "step": 20, "eval_accuracy": 0.85}]


def test_mnli_evaluates_both_dev_sets(fixture_glue_dir):
    from kdviz.data import load_glue

    data = load_glue("mnli", fixture_glue_dir)
    inputs = glue_trainer_inputs(data, "mnli")
    assert set(inputs["eval_dataset"]) == {"validation_matched", "validation_mismatched"}
    assert glue_trainer_inputs(load_glue("stsb", fixture_glue_dir), "stsb")["eval_dataset"].num_rows == 2


def test_every_glue_trainer_divides_its_batch_mean_loss_by_the_accumulation_steps():
    assert GlueTrainer.loss_is_scaled_for_ga is False


def test_training_code_does_not_need_ipython():
    """The command line runs where no Jupyter is installed: nothing on its path imports IPython."""
    code = "import sys, kdviz.cli, kdviz.distill, kdviz.finetune, kdviz.study; print('IPython' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_without_progress_output_removes_bars_tables_and_printed_logs(tmp_path):
    from transformers import TrainingArguments
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for disable_tqdm in (False, True):  # a progress bar, or printed log dicts
        args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True, disable_tqdm=disable_tqdm)
        trainer = without_progress_output(Trainer(model=tiny_bert(), args=args))
        kinds = {type(callback) for callback in trainer.callback_handler.callbacks}
        assert not kinds & {PrinterCallback, ProgressCallback}, kinds
