"""The probe set: fixed dev examples, scored with the teacher's K or over every dimension for the student."""

import pytest
import torch
from transformers import AutoTokenizer

import kdviz.cache_key
import kdviz.probe
from helpers import tiny_bert
from kdviz.attribution import AttributionSettings
from kdviz.data import load_glue
from kdviz.frozen_attribution import frozen_token_scores
from kdviz.cache_store import list_entries
from kdviz.probe import Probe
from kdviz.probe_cache import TeacherProbeCache
from kdviz.run_records import ProbeScores


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


def test_the_teachers_probe_results_are_kept_in_the_cache_folder_for_later_processes(glue_dir, offline_teacher_dir,
                                                                                   tmp_path, monkeypatch):
    """A later process (a fresh in-process memo) reads the teacher's scores, faithfulness and random baseline from the
    cache folder instead of computing them; other weights, or changed code, miss; a folder that cannot be written keeps nothing."""
    tokenizer = AutoTokenizer.from_pretrained(offline_teacher_dir)
    dev = load_glue("sst2", glue_dir, splits=("validation",))["validation"]
    teacher = tiny_bert(num_labels=2, seed=12).eval()
    probe = lambda: Probe.from_split(dev, tokenizer, "sst2", 6, AttributionSettings(steps=2), saved=2)
    cache = TeacherProbeCache(tmp_path, {"teacher": "tiny", "task": "sst2"})
    monkeypatch.setattr(kdviz.probe, "_TEACHER_RESULTS", {})
    first = probe()
    saved = first.score_teacher(teacher, cache)
    (entry,) = list_entries(tmp_path)
    assert entry.path.parent.name == "probe" and entry.parts == ["teacher_results"] and entry.description["task"] == "sst2"

    monkeypatch.setattr(kdviz.probe, "_TEACHER_RESULTS", {})  # another process
    monkeypatch.setattr(Probe, "scores", lambda *args, **kwargs: pytest.fail("the teacher was scored again"))
    again = probe()
    torch.testing.assert_close(again.score_teacher(teacher, cache).signed, saved.signed, rtol=0, atol=0)
    for name in ("scores", "logits", "signed"):
        torch.testing.assert_close(getattr(again.teacher, name), getattr(first.teacher, name), rtol=0, atol=0)
    assert again.teacher_faithfulness == first.teacher_faithfulness
    assert again.baseline_faithfulness == first.baseline_faithfulness
    assert set(first.baseline_faithfulness["teacher_random_rationale"]) >= {"aopc_comprehensiveness_sd", "draws"}

    with torch.no_grad():
        teacher.classifier.bias += 1.0
    assert cache.read(probe().teacher_key(teacher)) is None  # other weights
    key = first.teacher_key(tiny_bert(num_labels=2, seed=12))
    assert cache.read(key) is not None
    monkeypatch.setattr(kdviz.cache_key.inspect, "getsource", lambda module: "changed " + module.__name__)
    assert cache.read(key) is None  # changed faithfulness or probe code

    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    with pytest.warns(UserWarning, match="computed for this run only, not kept"):
        assert not TeacherProbeCache(not_a_folder).write(key, first.teacher, None, None)  # the run goes on
    bf16 = ProbeScores(*(part.bfloat16() for part in (first.teacher.scores, first.teacher.logits, first.teacher.signed)))
    assert TeacherProbeCache(tmp_path).write("a bf16 teacher's", bf16, None, None)
    assert TeacherProbeCache(tmp_path).read("a bf16 teacher's")[0].scores.dtype == torch.float32
