"""The history callback: only process 0 writes or deletes anything in the run folder."""

from types import SimpleNamespace

import torch
from transformers import TrainerState

from kdviz.callbacks import RunHistoryCallback
from kdviz.run_records import LayerWeights
from kdviz.runs import RunFolder


def state(step: int, main: bool) -> TrainerState:
    state = TrainerState(global_step=step, epoch=step / 4)
    state.is_world_process_zero = main
    return state


def history(tmp_path) -> RunFolder:
    run = RunFolder(tmp_path)
    for step in (2, 4, 6, 8):
        run.append_loss_terms({"step": step, "loss": 1.0})
        run.append_layer_weights(LayerWeights(step, [[1.0]]))
    return run


def test_resume_truncates_the_history_on_process_zero_only(tmp_path):
    run = history(tmp_path)
    callback = RunHistoryCallback(run, trainer=None)
    before = {path: path.read_bytes() for path in tmp_path.rglob("*.jsonl")}
    callback.on_train_begin(None, state(4, main=False), None)
    assert {path: path.read_bytes() for path in tmp_path.rglob("*.jsonl")} == before
    callback.on_train_begin(None, state(4, main=True), None)
    assert [r["step"] for r in run.loss_terms()] == [2, 4] and [w.step for w in run.layer_weights()] == [2, 4]


def test_logging_writes_on_process_zero_only(tmp_path):
    run = RunFolder(tmp_path)
    scalars = {"loss_ce": 0.6, "alp_entropy": 1.2}  # what the terms logged over the window
    trainer = SimpleNamespace(window_records={"alpha": torch.tensor([[0.25, 0.75]])}, window_scalars=scalars)
    callback = RunHistoryCallback(run, trainer)
    logs = {"loss": 0.7, **scalars, "learning_rate": 1e-5, "grad_norm": 3.0}
    callback.on_log(None, state(2, main=False), None, logs=logs)
    assert not any(tmp_path.iterdir())
    callback.on_log(None, state(2, main=True), None, logs=logs)
    assert run.loss_terms() == [{"step": 2, "epoch": 0.5, "loss": 0.7, "learning_rate": 1e-5, "loss_ce": 0.6,
                                 "alp_entropy": 1.2}]
    assert run.layer_weights() == [LayerWeights(2, [[0.25, 0.75]])]
