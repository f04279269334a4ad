"""The run folder and the teacher folder: their layout, history writes, resume truncation, output checks."""

import pytest
import torch

from kdviz.config import DistillConfig
from kdviz.recipes import preset
from kdviz.run_records import LayerWeights, ProbeExample, ProbeScores, TeacherInfo
from kdviz.runs import OutputExistsError, RunFolder, TeacherFolder, check_output_dir, load_run


def written_run(path, steps=(2, 4, 6)) -> RunFolder:
    run = RunFolder(path)
    config = DistillConfig.from_dict({**preset("alp/rte"), "teacher": "t", "output_dir": str(path)})
    run.write_header(config, TeacherInfo("t", ["entailment", "not_entailment"], 6, 384))
    run.write_probe([ProbeExample(7, ["a b", "c"], 1, ["[CLS]", "a", "b", "[SEP]", "c", "[SEP]"])],
                    ProbeScores(torch.rand(1, 1, 6), torch.rand(1, 2)))
    for step in steps:
        run.append_loss_terms({"step": step, "epoch": step / 4, "loss_ce": 0.5})
        run.append_layer_weights(LayerWeights(step, [[0.5, 0.5]]))
        run.write_probe_student(step, ProbeScores(torch.full((1, 1, 6), float(step)), torch.rand(1, 2)))
    return run


def test_a_run_folder_reads_back_as_typed_objects(tmp_path):
    written_run(tmp_path / "run")
    run = load_run(tmp_path / "run")
    assert isinstance(run.config, DistillConfig) and run.config.task == "rte" and run.config.terms["layer_projection"].weight == 1.0
    assert run.teacher == TeacherInfo("t", ["entailment", "not_entailment"], 6, 384)
    assert run.probe == [ProbeExample(7, ["a b", "c"], 1, ["[CLS]", "a", "b", "[SEP]", "c", "[SEP]"])]
    assert [r["step"] for r in run.loss_terms] == [2, 4, 6] and run.alp_weights[1] == LayerWeights(4, [[0.5, 0.5]])
    assert list(run.probe_student) == [2, 4, 6] and run.probe_student[4].scores[0, 0, 0].item() == 4.0
    assert run.probe_teacher.scores.shape == (1, 1, 6) and run.metrics == {}


def test_resume_truncation_drops_what_came_after_the_checkpoint(tmp_path):
    run = written_run(tmp_path / "run")
    run.truncate_history(4)
    loaded = run.load()
    assert [r["step"] for r in loaded.loss_terms] == [2, 4] and [w.step for w in loaded.alp_weights] == [2, 4]
    assert list(loaded.probe_student) == [2, 4]


def test_large_parts_are_removed_and_the_scores_stay(tmp_path):
    run = written_run(tmp_path / "run")
    for part in RunFolder.LARGE:
        (run.path / part).mkdir()
        (run.path / part / "weights.bin").write_bytes(b"x" * 10)
    run.remove_large_parts()
    assert not any((run.path / part).exists() for part in RunFolder.LARGE)
    assert len(run.load().probe_student) == 3


def test_not_a_run_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a kdviz run folder"):
        load_run(tmp_path)


def test_output_checks_keep_earlier_work(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        check_output_dir(tmp_path / "busy", overwrite=False)
    assert check_output_dir(tmp_path / "busy", overwrite=True) == tmp_path / "busy"
    (tmp_path / "a_file").write_text("data")
    with pytest.raises(OutputExistsError, match="is a file, not a folder"):
        check_output_dir(tmp_path / "a_file", overwrite=True)
    assert (tmp_path / "a_file").read_text() == "data" and (tmp_path / "busy" / "notes.txt").is_file()


def test_teacher_folder(tmp_path):
    folder = TeacherFolder(tmp_path / "teacher")
    assert not folder.is_finished and folder.read_metrics() is None
    folder.write_metrics({"best": {"accuracy": 0.9}}, "| table |\n")
    assert folder.is_finished and folder.read_metrics()["best"]["accuracy"] == 0.9
    assert folder.metrics_table() == "| table |\n" and folder.training_loss_figure.suffix == ".png"


def test_objective_parameters_round_trip(tmp_path):
    run = RunFolder(tmp_path)
    run.save_objective(torch.nn.Module())  # no parameters: no file
    assert run.load_objective() == {}
    linear = torch.nn.Linear(3, 2)
    run.save_objective(linear)
    torch.testing.assert_close(run.load_objective()["weight"], linear.weight.detach())
