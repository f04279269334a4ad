"""The teacher cache: exact, invalidated by any change, never read half-written; a real teacher's tokens."""

import pytest
import torch
from transformers import AutoTokenizer

import kdviz.teacher_cache as teacher_cache
from helpers import tiny_bert
from kdviz.attribution import AttributionSettings
from kdviz.data import load_glue, tokenize_glue
from kdviz.frozen_attribution import attribute
from kdviz.models import load_teacher
from kdviz.teacher_cache import load_or_compute_teacher_cache


@pytest.fixture(scope="module")
def tokenizer(offline_teacher_dir):
    return AutoTokenizer.from_pretrained(offline_teacher_dir)


def sst2_train(tokenizer, glue_dir, max_length=128, size=40):
    data = load_glue("sst2", glue_dir, splits=("train",), train_subset=size, seed=1)
    return tokenize_glue(data, tokenizer, "sst2", max_length)["train"]


def counting(monkeypatch):
    calls = []
    original = teacher_cache.compute_teacher_cache

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(teacher_cache, "compute_teacher_cache", spy)
    return calls


def test_cached_scores_equal_fresh_ones_exactly(tmp_path, tokenizer, glue_dir, monkeypatch):
    teacher = tiny_bert(num_labels=2)
    train = sst2_train(tokenizer, glue_dir)
    settings = AttributionSettings(views="gold", steps=2, top_k=20)
    calls = counting(monkeypatch)
    first = load_or_compute_teacher_cache(tmp_path, teacher, train, tokenizer, settings, {"max_length": 128},
                                          batch_size=16)
    again = load_or_compute_teacher_cache(tmp_path, teacher, train, tokenizer, settings, {"max_length": 128})
    assert calls == [1] and len(again) == 40
    chunked_settings = AttributionSettings(views="gold", steps=2, top_k=20, step_chunk=1)  # how the work is split
    assert teacher_cache.cache_key(teacher, train, chunked_settings, {}) == teacher_cache.cache_key(
        teacher, train, settings, {})
    torch.testing.assert_close(teacher_cache.compute_teacher_cache(teacher, train, tokenizer, chunked_settings).scores,
                               first.scores)
    rows = train.select([5, 17, 3])
    batch = tokenizer.pad({k: rows[k] for k in ("input_ids", "token_type_ids", "attention_mask")},
                          return_tensors="pt")
    fresh = attribute(teacher, batch, torch.tensor(rows["label"]), AttributionSettings(views="gold", steps=2))
    logits, scores = again.lookup(torch.tensor(rows["idx"]), batch["input_ids"].shape[1])
    # another batch composition pads to another length: equal up to float rounding
    torch.testing.assert_close(scores, fresh.token_scores(top_k=20), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logits, fresh.logits, rtol=1e-5, atol=1e-6)
    # recomputed the same way, bit for bit
    recomputed = teacher_cache.compute_teacher_cache(teacher, train, tokenizer, settings, batch_size=16)
    for name in ("logits", "scores", "offsets", "idx"):
        assert torch.equal(getattr(recomputed, name), getattr(again, name)), name
    assert torch.equal(first.scores, again.scores)


def test_changes_invalidate_the_cache(tmp_path, tokenizer, glue_dir, monkeypatch):
    teacher = tiny_bert(num_labels=2)
    train = sst2_train(tokenizer, glue_dir, size=20)
    settings = AttributionSettings(top_k=20)
    calls = counting(monkeypatch)
    build = lambda model=teacher, data=train, s=settings, description={"max_length": 128}: \
        load_or_compute_teacher_cache(tmp_path, model, data, tokenizer, s, description)
    build()
    build()
    assert len(calls) == 1
    with torch.no_grad():
        teacher.bert.encoder.layer[0].output.dense.weight[0, 0] += 1e-3  # one teacher weight
    build()
    assert len(calls) == 2
    build(data=sst2_train(tokenizer, glue_dir, max_length=8, size=20), description={"max_length": 8})
    assert len(calls) == 3
    build(s=AttributionSettings(top_k=19))  # another K
    assert len(calls) == 4
    build(data=sst2_train(tokenizer, glue_dir, size=21))  # another subset
    assert len(calls) == 5
    build()
    assert len(calls) == 5  # the earlier files are still good


def test_a_write_cut_off_midway_never_loads(tmp_path, tokenizer, glue_dir, monkeypatch):
    teacher = tiny_bert(num_labels=2)
    train = sst2_train(tokenizer, glue_dir, size=10)
    settings = AttributionSettings()
    real_save = teacher_cache.save_file

    def cut_off(tensors, filename, metadata=None):
        real_save(tensors, filename, metadata=metadata)
        with open(filename, "r+b") as handle:
            handle.truncate(100)
        raise KeyboardInterrupt

    monkeypatch.setattr(teacher_cache, "save_file", cut_off)
    with pytest.raises(KeyboardInterrupt):
        load_or_compute_teacher_cache(tmp_path, teacher, train, tokenizer, settings, {})
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(teacher_cache, "save_file", real_save)
    calls = counting(monkeypatch)
    load_or_compute_teacher_cache(tmp_path, teacher, train, tokenizer, settings, {})
    assert calls == [1]
    # a truncated file under the final name is not read either
    (path,) = tmp_path.iterdir()
    path.write_bytes(path.read_bytes()[:200])
    load_or_compute_teacher_cache(tmp_path, teacher, train, tokenizer, settings, {})
    assert calls == [1, 1]


def test_a_process_that_may_not_write_computes_without_saving(tmp_path, tokenizer, glue_dir):
    load_or_compute_teacher_cache(tmp_path, tiny_bert(), sst2_train(tokenizer, glue_dir, size=5), tokenizer,
                                  AttributionSettings(), {}, write=False)
    assert list(tmp_path.iterdir()) == []


def test_lookup_of_unknown_examples_is_refused(tmp_path, tokenizer, glue_dir):
    cache = load_or_compute_teacher_cache(tmp_path, tiny_bert(), sst2_train(tokenizer, glue_dir, size=5), tokenizer,
                                          AttributionSettings(), {})
    with pytest.raises(KeyError, match="not in the teacher cache"):
        cache.lookup(torch.tensor([10 ** 6]), 8)


@pytest.mark.slow
def test_fine_tuned_teacher_top_tokens_on_real_sst2_dev(sst2_teacher, glue_dir, capsys):
    teacher, tokenizer = load_teacher(sst2_teacher["dir"], "sst2")
    dev = load_glue("sst2", glue_dir, splits=("validation",))["validation"].select(range(8))
    encoded = tokenize_glue(dev, tokenizer, "sst2")
    batch = tokenizer.pad({k: encoded[k] for k in ("input_ids", "token_type_ids", "attention_mask")},
                          return_tensors="pt")
    result = attribute(teacher, batch, torch.tensor(dev["label"]), tokenizer=tokenizer)
    scores = result.token_scores(top_k=384)[:, 0]
    special = {"[CLS]", "[SEP]", ".", ","}
    lines = []
    for i, tokens in enumerate(result.tokens):
        order = scores[i, :len(tokens)].argsort(descending=True).tolist()
        top = [tokens[j] for j in order if tokens[j] not in special][:3]
        lines.append(f"  [{dev[i]['label']}] {dev[i]['sentence'][:70]!r} -> {top}")
        assert torch.all(scores[i, len(tokens):] == 0)
    with capsys.disabled():
        print("\nTeacher's top-scored tokens (gold view, m = 1) on SST-2 dev:\n" + "\n".join(lines))
    torch.testing.assert_close(scores.norm(dim=-1), torch.ones(8))
