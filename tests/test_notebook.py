"""What only the notebooks need: the runtime line and a preset run read back."""

from kdviz.notebook import distill_run, runtime_summary
from kdviz.runs import Run


def test_runtime_summary_names_the_device_and_versions():
    line = runtime_summary()
    assert line.startswith("kdviz on CPU") and "torch" in line and "transformers" in line


def test_distill_run_runs_a_preset_at_the_quick_scale_and_reads_it_back(tiny_teacher, tmp_path, real_glue_env):
    run = distill_run("kd", "sst2", tiny_teacher, tmp_path / "run", quick=True, train_subset=32, eval_subset=16,
                      top_k=20, probe_size=2)
    assert isinstance(run, Run) and run.config.train_subset == 32 and run.config.epochs == 1.0
    assert run.metrics["train_examples"] == 32 and len(run.probe) == 2
