"""ERASER's comprehensiveness and sufficiency: hand-computed on a tiny model, and recorded by every run."""

import pytest
import torch

from helpers import tiny_bert, tiny_run_config
from kdviz.distill import distill
from kdviz.faithfulness import AOPC_BINS, eraser_curve, eraser_scores, keep_tokens, rationale_mask
from kdviz.runs import load_run

CLS, SEP, PAD = 101, 102, 0


def test_the_rationale_is_the_top_share_of_ordinary_tokens():
    scores = torch.tensor([[9.0, 0.1, 0.7, 0.3, 0.9, 5.0], [9.0, 0.2, 0.1, 5.0, 0.0, 0.0]])
    ordinary = torch.tensor([[0, 1, 1, 1, 1, 0], [0, 1, 1, 0, 0, 0]], dtype=torch.bool)
    chosen = rationale_mask(scores, ordinary, fraction=0.5)
    assert chosen.tolist() == [[False, False, True, False, True, False], [False, True, False, False, False, False]]
    with pytest.raises(ValueError, match="fraction"):
        rationale_mask(scores, ordinary, fraction=0)


def test_deleted_tokens_close_up_and_padding_follows():
    inputs = {"input_ids": torch.tensor([[CLS, 7, 8, 9, SEP], [CLS, 5, SEP, PAD, PAD]]),
              "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])}
    keep = torch.tensor([[1, 0, 1, 0, 1], [1, 0, 1, 1, 1]], dtype=torch.bool)
    kept = keep_tokens(inputs, keep)
    assert kept["input_ids"].tolist() == [[CLS, 8, SEP], [CLS, SEP, PAD]]
    assert kept["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]


def test_comprehensiveness_and_sufficiency_match_a_hand_computation():
    model = tiny_bert(num_labels=3, layers=2, seed=3).eval()
    ids = torch.tensor([[CLS, 2000, 2001, 2002, 2003, 2004, SEP]])
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    scores = torch.tensor([[0.0, 0.1, 0.9, 0.2, 0.8, 0.3, 0.0]])
    special = torch.tensor([[1, 0, 0, 0, 0, 0, 1]], dtype=torch.bool)
    result = eraser_scores(model, inputs, scores, special, fraction=0.4)  # 2 of 5 tokens: 2001 and 2003

    def probabilities(token_ids):
        batch = torch.tensor([token_ids])
        with torch.no_grad():
            return torch.softmax(model(input_ids=batch, attention_mask=torch.ones_like(batch),
                                       token_type_ids=torch.zeros_like(batch)).logits, -1)[0]

    full = probabilities([CLS, 2000, 2001, 2002, 2003, 2004, SEP])
    predicted = int(full.argmax())
    without = probabilities([CLS, 2000, 2002, 2004, SEP])[predicted]
    alone = probabilities([CLS, 2001, 2003, SEP])[predicted]
    assert int(result["predicted"]) == predicted
    assert float(result["comprehensiveness"]) == pytest.approx(float(full[predicted] - without), abs=1e-6)
    assert float(result["sufficiency"]) == pytest.approx(float(full[predicted] - alone), abs=1e-6)
    assert float(result["comprehensiveness"]) != 0.0  # the deletion changed the prediction's probability


def test_the_aopc_curve_holds_each_cut():
    model = tiny_bert(num_labels=2, layers=2, seed=5).eval()
    ids = torch.tensor([[CLS] + list(range(2000, 2012)) + [SEP], [CLS] + list(range(2100, 2106)) + [SEP] + [PAD] * 6])
    inputs = {"input_ids": ids, "attention_mask": (ids != PAD).long(), "token_type_ids": torch.zeros_like(ids)}
    scores = torch.rand(ids.shape, generator=torch.Generator().manual_seed(0))
    special = (ids == CLS) | (ids == SEP)
    curve = eraser_curve(model, inputs, scores, special)
    assert curve["comprehensiveness"].shape == (2, len(AOPC_BINS))
    for column, fraction in enumerate(AOPC_BINS):
        single = eraser_scores(model, inputs, scores, special, fraction)
        assert torch.allclose(curve["comprehensiveness"][:, column], single["comprehensiveness"], atol=1e-6)
        assert torch.allclose(curve["sufficiency"][:, column], single["sufficiency"], atol=1e-6)
    assert len(set(curve["comprehensiveness"][0].tolist())) > 1  # the cuts differ


def test_a_regression_model_is_refused():
    model = tiny_bert(num_labels=1).eval()
    ids = torch.tensor([[CLS, 2000, SEP]])
    with pytest.raises(ValueError, match="regression"):
        eraser_scores(model, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, torch.ones(1, 3),
                      torch.zeros(1, 3, dtype=torch.bool))


def test_a_run_records_the_faithfulness_of_teacher_and_student(tiny_teacher, tmp_path, real_glue_env):
    distill(tiny_run_config(tiny_teacher, tmp_path / "run", method="kd", epochs=1, probe_size=2, agreement_size=16))
    run = load_run(tmp_path / "run")
    faithfulness = run.metrics["faithfulness"]
    assert set(faithfulness) == {"teacher", "student", "student_on_teacher_rationale", "teacher_random_rationale",
                                 "student_step_0", "student_random_rationale"}
    for values in faithfulness.values():
        assert values["examples"] == 16 and values["fraction"] == 0.2 and values["bins"] == list(AOPC_BINS)
        for name in ("comprehensiveness", "sufficiency", "aopc_comprehensiveness", "aopc_sufficiency"):
            assert -1 <= values[name] <= 1
    assert faithfulness["student"] != faithfulness["student_on_teacher_rationale"]
    assert faithfulness["student"] != faithfulness["student_step_0"]
    for name in ("teacher_random_rationale", "student_random_rationale"):
        random = faithfulness[name]
        assert random["draws"] == 5 and random["aopc_comprehensiveness_sd"] > 0  # the draws differ
    table = run.folder.metrics_table()
    assert "AOPC comprehensiveness" in table and "student, random rationale" in table and " ± " in table
    assert "A negative comprehensiveness means" in table


def test_the_random_baseline_is_reproducible_and_its_spread_is_the_draws(tiny_teacher, real_glue_env):
    from kdviz.attribution import AttributionSettings
    from kdviz.data import load_glue
    from kdviz.models import load_teacher
    from kdviz.probe import Probe

    teacher, tokenizer = load_teacher(tiny_teacher, "sst2")
    dev = load_glue("sst2", eval_subset=12)["validation"]
    probe = Probe.from_split(dev, tokenizer, "sst2", 12, AttributionSettings())
    first, again = probe.random_faithfulness(teacher, draws=3), probe.random_faithfulness(teacher, draws=3)
    assert first == again
    singles = [probe.random_faithfulness(teacher, draws=1, seed=seed)["aopc_comprehensiveness"] for seed in range(3)]
    assert first["aopc_comprehensiveness"] == pytest.approx(sum(singles) / 3)
    assert first["aopc_comprehensiveness_sd"] == pytest.approx(float(torch.tensor(singles, dtype=torch.float64).std()))
