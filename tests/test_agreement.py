"""Rationale agreement: the measures on hand-made scores, and the curves every run records."""

import re

import pytest
import torch

from helpers import tiny_run_config
from kdviz.agreement import mean_agreement, token_agreement, uniform_scores
from kdviz.distill import distill
from kdviz.runs import Run, load_run


def test_token_agreement_of_equal_reversed_and_constant_scores():
    same = token_agreement([0.1, 0.5, 0.2, 0.8], [0.1, 0.5, 0.2, 0.8], k=2)
    assert same == {"cosine": pytest.approx(1.0), "spearman": pytest.approx(1.0), "top_k_overlap": 1.0}
    reversed_ = token_agreement([0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1], k=2)
    assert reversed_["spearman"] == pytest.approx(-1.0) and reversed_["top_k_overlap"] == 0.0
    assert reversed_["cosine"] == pytest.approx(2.0 / 3.0)  # (0.04 + 0.06 + 0.06 + 0.04) / 0.30
    flat = token_agreement([0.5, 0.5, 0.5], [0.1, 0.9, 0.3], k=1)
    assert flat["spearman"] == 0.0  # a constant side has no ranking


def test_mean_agreement_averages_examples_and_views_over_real_tokens_only():
    teacher = torch.tensor([[[0.6, 0.8, 0.0], [1.0, 0.0, 0.0]],
                            [[0.0, 0.6, 0.8], [0.8, 0.6, 0.0]]])
    student = torch.tensor([[[0.8, 0.6, 9.0], [1.0, 0.0, 5.0]],  # beyond the first example's 2 tokens: ignored
                            [[0.0, 0.6, 0.8], [0.6, 0.8, 0.0]]])
    result = mean_agreement(teacher, student, lengths=[2, 3], k=1)
    cosines = [0.96, 1.0, 1.0, 0.96]
    spearmans = [-1.0, 1.0, 1.0, 0.5]  # the last: ranks (3, 2, 1) vs (2, 3, 1), 1 - 6 * 2 / (3 * 8)
    overlaps = [0.0, 1.0, 1.0, 0.0]
    assert result["cosine"] == pytest.approx(sum(cosines) / 4)
    assert result["spearman"] == pytest.approx(sum(spearmans) / 4)
    assert result["top_k_overlap"] == pytest.approx(sum(overlaps) / 4)
    assert result["examples"] == 2
    with pytest.raises(ValueError, match="same examples and views"):
        mean_agreement(teacher, student[:1], lengths=[2, 3])


def test_agreement_over_chosen_positions_and_the_flat_students_floor():
    teacher = torch.tensor([[[0.9, 0.1, 0.3, 0.2, 0.8]]])  # [CLS] w w w [SEP]
    student = torch.tensor([[[0.1, 0.1, 0.3, 0.2, 0.1]]])
    words = torch.tensor([[False, True, True, True, False]])
    over_words = mean_agreement(teacher, student, [5], k=1, compared=words)
    assert over_words == pytest.approx({**token_agreement([0.1, 0.3, 0.2], [0.1, 0.3, 0.2], k=1), "examples": 1})
    assert mean_agreement(teacher, student, [5], k=1)["cosine"] < 0.9  # the special tokens disagree
    flat = uniform_scores(torch.zeros(2, 1, 4), [4, 2])
    assert flat[0, 0].tolist() == pytest.approx([0.5] * 4) and flat[1, 0].tolist() == pytest.approx([2 ** -0.5] * 2 + [0, 0])
    # a flat student's cosine is the teacher's mean score over its root-mean-square: high for any spread-out teacher
    scores = torch.tensor([0.1, 0.3, 0.2])
    floor = mean_agreement(teacher, uniform_scores(teacher, [5]), [5], compared=words)["cosine"]
    assert floor == pytest.approx(float(scores.mean() / scores.pow(2).mean().sqrt()))


@pytest.mark.parametrize("method", ["ft", "kd", "alp", "adkd+alp"])
def test_every_method_records_agreement_curves_on_the_probe_set(tiny_teacher, tmp_path, real_glue_env, method):
    """Every method records the same curves (students trained without the attribution loss too), so that methods
    can be compared."""
    distill(tiny_run_config(tiny_teacher, tmp_path / method, method=method, epochs=1, probe_size=4,
                            agreement_size=4, logging_steps=2))
    run = load_run(tmp_path / method)
    assert [r["step"] for r in run.agreement] == [r["step"] for r in run.loss_terms] == [0, 2, 4]  # 0: untrained
    lengths = [len(example.tokens) for example in run.probe]
    words = torch.tensor([[token not in ("[CLS]", "[SEP]") for token in example.tokens]
                          + [False] * (max(lengths) - len(example.tokens)) for example in run.probe])
    for record in run.agreement:  # the recorded curve is the saved scores' agreement, over the words and all tokens
        teacher, student = run.probe_teacher.scores, run.probe_student[record["step"]].scores
        expected = mean_agreement(teacher, student, lengths, compared=words)
        expected.update({f"{k}_with_special": v for k, v in mean_agreement(teacher, student, lengths).items()
                         if k != "examples"})
        assert record == pytest.approx({**expected, "step": record["step"], "epoch": record["epoch"]})
    flat = uniform_scores(run.probe_teacher.scores, lengths)
    assert run.agreement_uniform["cosine"] == pytest.approx(
        mean_agreement(run.probe_teacher.scores, flat, lengths, compared=words)["cosine"])
    assert run.metrics["agreement"]["step_0"] == run.agreement[0]
    assert "flat student (every token alike)" in run.folder.metrics_table()
    assert run.folder.agreement_figure.is_file()


def test_step_0_is_the_untrained_student(tiny_teacher, tmp_path, real_glue_env):
    """The step-0 record is the student before any update: the same scores as a student built the same way, and
    the first batch's loss terms."""
    from kdviz.data import load_glue
    from kdviz.distill import make_student
    from kdviz.models import load_teacher
    from kdviz.probe import Probe

    config = tiny_run_config(tiny_teacher, tmp_path / "run", method="kd", epochs=1, probe_size=4, agreement_size=4,
                             logging_steps=2)
    distill(config, progress=False)
    run = load_run(config.output_dir)
    teacher, tokenizer = load_teacher(config.teacher, "sst2")
    torch.manual_seed(config.seed)
    untrained, _ = make_student(config, teacher, tokenizer)
    dev = load_glue("sst2", config.data_dir, eval_subset=config.eval_subset, seed=config.subset_seed)["validation"]
    probe = Probe.from_split(dev, tokenizer, "sst2", 4, config.attribution_settings(2), config.max_length)
    expected = probe.saved_part(probe.scores(untrained))
    assert torch.allclose(run.probe_student[0].scores, expected.scores, atol=1e-6)
    assert torch.allclose(run.probe_student[0].logits, expected.logits, atol=1e-5)
    assert not torch.allclose(run.probe_student[2].logits, expected.logits, atol=1e-3)  # training moved it
    first = run.loss_terms[0]
    assert first["step"] == 0 and {"loss", "loss_ce", "loss_kd"} <= set(first)
    assert first["loss"] != run.loss_terms[1]["loss"]


def test_agreement_uses_more_examples_than_the_views_keep(tiny_teacher, tmp_path, real_glue_env):
    distill(tiny_run_config(tiny_teacher, tmp_path / "run", method="kd", epochs=1, probe_size=2, agreement_size=256,
                            logging_steps=4))
    run = load_run(tmp_path / "run")
    assert len(run.probe) == 2 and run.probe_teacher.scores.shape[0] == 2
    assert run.probe_student[4].scores.shape[-1] == max(len(example.tokens) for example in run.probe)
    assert [r["examples"] for r in run.agreement] == [32, 32]  # step 0 and 4, on the whole (32-example) dev subset


def test_the_agreement_view_compares_runs_step_by_step(tmp_path):
    from helpers import is_png
    from kdviz.viz.agreement_render import agreement_table_html
    from kdviz.viz.widgets import AgreementView

    curves = {"kd <1>": [{"step": 10, "cosine": 0.90, "spearman": 0.7, "top_k_overlap": 0.5},
                         {"step": 20, "cosine": 0.91, "spearman": 0.72, "top_k_overlap": 0.5}],
              "adkd": [{"step": 10, "cosine": 0.92, "spearman": 0.75, "top_k_overlap": 0.6}]}
    html = agreement_table_html(curves, "cosine", floors={"kd <1>": {"cosine": 0.777}, "adkd": None})
    rows = re.findall(r"<tr>(.*?)</tr>", html)
    assert "kd &lt;1&gt;" in rows[1] and re.findall(r'<td title="([0-9.]+)"', rows[1]) == ["0.9000", "0.9100"]
    assert "flat student" in rows[0] and "0.777" in rows[1]  # the floor column
    assert rows[2].count("<td") == 3 and "0.920" in rows[2]  # adkd logged step 10 only: an empty cell for 20
    greens = [int(g) for g in re.findall(r"rgb\(\d+, (\d+), \d+\)", "".join(rows[1:]))]
    assert greens[0] == 255 and greens[-1] == min(greens)  # the lowest value shown is white, the highest full
    with pytest.raises(ValueError, match="Unknown agreement measure"):
        agreement_table_html(curves, "f1")

    runs = {label: Run(folder=None, config=None, teacher=None, metrics={}, agreement=records)
            for label, records in curves.items()}  # loaded runs are taken as they are
    view = AgreementView(runs)
    view.controls["measure"].value = "spearman"
    assert "Spearman" in view.html.value and "0.750" in view.html.value
    view.export_dir = tmp_path
    view.controls["export_png"].click()
    assert is_png((tmp_path / "agreement.png").read_bytes()) and "agreement.png" in view.status.value
    with pytest.raises(ValueError, match="No agreement recorded"):
        runs["adkd"].agreement = []
        AgreementView(runs)
