"""The probe set: fixed dev examples, scored with the teacher's K or over every dimension for the student."""

import torch
from transformers import AutoTokenizer

from helpers import tiny_bert
from kdviz.attribution import AttributionSettings
from kdviz.data import load_glue
from kdviz.frozen_attribution import frozen_token_scores
from kdviz.probe import Probe


def test_probe_holds_the_first_dev_examples_and_scores_them(glue_dir, offline_teacher_dir):
    tokenizer = AutoTokenizer.from_pretrained(offline_teacher_dir)
    dev = load_glue("mrpc", glue_dir, splits=("validation",))["validation"]
    settings = AttributionSettings(views="gold", steps=2, top_k=8)
    probe = Probe.from_split(dev, tokenizer, "mrpc", 3, settings, max_length=32)
    assert [e.idx for e in probe.examples] == [0, 1, 2] and probe.examples[0].text == [dev[0]["sentence1"],
                                                                                      dev[0]["sentence2"]]
    assert probe.examples[0].tokens[0] == "[CLS]" and len(probe.examples[0].tokens) <= 32
    assert probe.inputs["input_ids"].shape[0] == 3 and probe.labels.tolist() == dev["label"][:3]

    model = tiny_bert(num_labels=2).train()
    teacher_view, student_view = probe.scores(model, teacher=True), probe.scores(model)
    assert model.training  # put back as it was
    model.eval()
    expected = frozen_token_scores(model, probe.inputs, probe.labels, settings)
    torch.testing.assert_close(teacher_view.scores, expected.scores)
    torch.testing.assert_close(student_view.scores,
                               frozen_token_scores(model, probe.inputs, probe.labels, settings.for_student()).scores)
    length = len(probe.examples[1].tokens)
    assert teacher_view.scores.shape[:2] == (3, 1) and torch.all(teacher_view.scores[1, 0, length:] == 0)


def test_a_teacher_is_scored_once_per_probe_set_and_weights(glue_dir, offline_teacher_dir):
    """Runs of one process that share a teacher and a probe set (a study, a notebook) score the teacher once; other
    weights or another probe set are scored anew, and batches of sorted lengths keep every example in its row."""
    tokenizer = AutoTokenizer.from_pretrained(offline_teacher_dir)
    dev = load_glue("sst2", glue_dir, splits=("validation",))["validation"]
    settings = AttributionSettings()
    teacher = tiny_bert(num_labels=2, seed=11).eval()
    first, again = (Probe.from_split(dev, tokenizer, "sst2", 12, settings, saved=2) for _ in range(2))
    first.batch_size = again.batch_size = 5  # several batches of different lengths
    first.score_teacher(teacher)
    again.score_teacher(teacher)
    assert again.teacher is first.teacher and again.baseline_faithfulness == first.baseline_faithfulness
    expected = frozen_token_scores(teacher, first.inputs, first.labels, settings)
    torch.testing.assert_close(first.teacher.scores, expected.scores, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(first.teacher.logits, expected.logits, atol=1e-5, rtol=1e-4)
    with torch.no_grad():
        teacher.classifier.bias += 1.0
    other = Probe.from_split(dev, tokenizer, "sst2", 12, settings, saved=2)
    other.score_teacher(teacher)
    assert other.teacher is not first.teacher
    smaller = Probe.from_split(dev, tokenizer, "sst2", 6, settings, saved=2)
    smaller.score_teacher(teacher)
    assert smaller.teacher.scores.shape[0] == 6
