"""The teacher cache: equal to fresh outputs, invalidated by any change, shared, never read half-written."""

import json

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

import kdviz.teacher_cache as teacher_cache
from helpers import tiny_bert
from kdviz.attribution import AttributionSettings
from kdviz.cache_store import CacheEntry, clear_entries, list_entries
from kdviz.cli import main
from kdviz.data import load_glue, tokenize_glue
from kdviz.frozen_attribution import attribute
from kdviz.loss_terms import CLS_STATES, HIDDEN_STATES, LOGITS, TOKEN_SCORES
from kdviz.models import load_teacher
from kdviz.teacher_cache import load_or_build_teacher_cache

EVERYTHING = frozenset({LOGITS, TOKEN_SCORES, HIDDEN_STATES})
FLOAT16_RELATIVE_ERROR = 2.0 ** -11  # round to nearest: half a unit in the last of float16's 10 stored bits


@pytest.fixture(scope="module")
def tokenizer(offline_teacher_dir):
    return AutoTokenizer.from_pretrained(offline_teacher_dir)


def sst2_train(tokenizer, glue_dir, max_length=128, size=40):
    data = load_glue("sst2", glue_dir, splits=("train",), train_subset=size, seed=1)
    return tokenize_glue(data, tokenizer, "sst2", max_length)["train"]


def counting(monkeypatch):
    """Records the parts each teacher pass over the data computes."""
    calls = []
    original = teacher_cache._fill

    def spy(arrays, *args, **kwargs):
        calls.append(sorted(arrays))
        return original(arrays, *args, **kwargs)

    monkeypatch.setattr(teacher_cache, "_fill", spy)
    return calls


def build(cache_dir, teacher, data, tokenizer, needs=EVERYTHING, settings=AttributionSettings(top_k=20),
          description=None, **kwargs):
    return load_or_build_teacher_cache(teacher, data, tokenizer, needs, settings, description or {"max_length": 128},
                                       cache_dir=cache_dir, progress=False, **kwargs)


def padded(tokenizer, rows):
    return tokenizer.pad({k: rows[k] for k in ("input_ids", "token_type_ids", "attention_mask")}, return_tensors="pt")


def test_cached_outputs_equal_fresh_ones_within_float16_rounding(tmp_path, tokenizer, glue_dir, monkeypatch):
    teacher = tiny_bert(num_labels=2)
    train = sst2_train(tokenizer, glue_dir)
    settings = AttributionSettings(views="gold", steps=2, top_k=20)
    calls = counting(monkeypatch)
    first = build(tmp_path, teacher, train, tokenizer, settings=settings, batch_size=16)
    again = build(tmp_path, teacher, train, tokenizer, settings=settings)
    assert len(calls) == 1 and len(again) == 40
    assert all(isinstance(array, np.memmap) for array in again.arrays.values())  # read lazily
    rows = train.select([5, 17, 3])
    batch = padded(tokenizer, rows)
    fresh = attribute(teacher, batch, torch.tensor(rows["label"]), AttributionSettings(views="gold", steps=2))
    with torch.no_grad():
        hidden = teacher(**batch, output_hidden_states=True).hidden_states
    cached = again.lookup(torch.tensor(rows["idx"]), batch["input_ids"].shape[1])
    mask = batch["attention_mask"].bool()
    torch.testing.assert_close(cached.logits, fresh.logits, rtol=1e-5, atol=1e-6)  # float32 on disk
    tolerance = dict(rtol=FLOAT16_RELATIVE_ERROR, atol=1e-6)
    torch.testing.assert_close(cached.token_scores, fresh.token_scores(top_k=20), **tolerance)
    assert torch.all(cached.token_scores[~mask.unsqueeze(1)] == 0)
    assert len(cached.hidden_states) == len(hidden) == 5  # embeddings and 4 layers
    for stored, exact in zip(cached.hidden_states, hidden):
        torch.testing.assert_close(stored[mask], exact[mask], rtol=FLOAT16_RELATIVE_ERROR, atol=1e-6)
        assert torch.all(stored[~mask] == 0)
    # recomputed the same way, bit for bit; the step chunk only splits the work
    chunked = AttributionSettings(views="gold", steps=2, top_k=20, step_chunk=1)
    assert teacher_cache.scores_part(chunked) == teacher_cache.scores_part(settings)
    recomputed = build(tmp_path / "other", teacher, train, tokenizer, settings=settings, batch_size=16)
    for name in again.arrays:
        assert np.array_equal(recomputed.arrays[name], first.arrays[name]), name


def test_cls_states_are_every_layer_at_position_0(tmp_path, tokenizer, glue_dir):
    teacher = tiny_bert(num_labels=2)
    train = sst2_train(tokenizer, glue_dir, size=6)
    cache = build(tmp_path, teacher, train, tokenizer, needs=frozenset({LOGITS, CLS_STATES}))
    assert cache.provides == {LOGITS, CLS_STATES} and "token_states" not in cache.arrays
    batch = padded(tokenizer, train)
    cached = cache.lookup(torch.tensor(train["idx"]), batch["input_ids"].shape[1])
    with torch.no_grad():
        hidden = teacher(**batch, output_hidden_states=True).hidden_states
    assert cached.token_scores is None and cached.hidden_states[0].shape == (6, 1, 32)
    for stored, exact in zip(cached.hidden_states, hidden):
        torch.testing.assert_close(stored[:, 0], exact[:, 0], rtol=FLOAT16_RELATIVE_ERROR, atol=1e-6)


def test_states_beyond_float16_are_stored_in_float32(tmp_path, tokenizer, glue_dir):
    teacher = tiny_bert(num_labels=2)
    with torch.no_grad():
        teacher.bert.embeddings.LayerNorm.weight.fill_(1e5)  # embedding outputs of about 1e5 > 65504
    cache = build(tmp_path, teacher, sst2_train(tokenizer, glue_dir, size=4), tokenizer,
                  needs=frozenset({CLS_STATES}))
    assert cache.arrays["cls_states"].dtype == np.float32
    assert np.isfinite(cache.arrays["cls_states"]).all() and np.abs(cache.arrays["cls_states"]).max() > 65504


def test_changes_invalidate_the_cache_and_new_needs_add_parts(tmp_path, tokenizer, glue_dir, monkeypatch):
    teacher = tiny_bert(num_labels=2)
    train = sst2_train(tokenizer, glue_dir, size=20)
    calls = counting(monkeypatch)
    make = lambda model=teacher, data=train, needs=frozenset({LOGITS}), **kwargs: build(
        tmp_path, model, data, tokenizer, needs, **kwargs)
    make()
    make()
    assert len(calls) == 1 and len(list_entries(tmp_path)) == 1
    make(needs=frozenset({LOGITS, CLS_STATES}))  # the same entry gains a part
    make(needs=frozenset({TOKEN_SCORES}), settings=AttributionSettings(top_k=19))
    make(needs=frozenset({TOKEN_SCORES}), settings=AttributionSettings(top_k=20))  # another K: another part
    assert len(calls) == 4 and calls[1] == ["cls_states", "idx", "logits", "offsets"]
    (entry,) = list_entries(tmp_path)
    assert len(entry.parts) == 4
    with torch.no_grad():
        teacher.bert.encoder.layer[0].output.dense.weight[0, 0] += 1e-3  # one teacher weight
    make()
    make(data=sst2_train(tokenizer, glue_dir, max_length=8, size=20), description={"max_length": 8})
    make(data=sst2_train(tokenizer, glue_dir, size=21))  # another subset
    assert len(calls) == 7 and len(list_entries(tmp_path)) == 4
    make(needs=frozenset({LOGITS, CLS_STATES, TOKEN_SCORES}), settings=AttributionSettings(top_k=19))
    assert len(calls) == 8  # the changed teacher's entry had logits only


def test_a_write_cut_off_midway_or_damaged_later_is_never_read(tmp_path, tokenizer, glue_dir, monkeypatch):
    teacher = tiny_bert(num_labels=2)
    train = sst2_train(tokenizer, glue_dir, size=10)
    original = teacher_cache._fill

    def cut_off(arrays, *args, **kwargs):
        original(arrays, *args, **kwargs)
        raise KeyboardInterrupt  # after every array is filled, before any is renamed into place

    monkeypatch.setattr(teacher_cache, "_fill", cut_off)
    with pytest.raises(KeyboardInterrupt):
        build(tmp_path, teacher, train, tokenizer)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # no temporary file is left either
    monkeypatch.setattr(teacher_cache, "_fill", original)
    calls = counting(monkeypatch)
    build(tmp_path, teacher, train, tokenizer)
    assert len(calls) == 1
    (entry,) = list_entries(tmp_path)
    scores = next(entry.path.glob("scores-*.scores.npy"))
    scores.write_bytes(scores.read_bytes()[:200])  # truncated under its final name
    cache = build(tmp_path, teacher, train, tokenizer)
    assert calls[-1] == ["idx", "logits", "offsets", "scores"]  # that part alone is rebuilt
    assert cache.arrays["scores"].shape[0] == sum(map(sum, train["attention_mask"]))
    (entry.path / "outputs.json").write_text("{not json")  # a damaged manifest
    build(tmp_path, teacher, train, tokenizer)
    assert calls[-1] == ["idx", "logits", "offsets"] and len(calls) == 3


def test_two_writers_of_one_part_leave_a_readable_part(tmp_path):
    first, second = CacheEntry(tmp_path / "entry", "key"), CacheEntry(tmp_path / "entry", "key")
    spec = {"values": ((3,), np.float32)}
    with first.write_part("part", spec, {"task": "sst2"}) as one:
        with second.write_part("part", spec, {"task": "sst2"}) as other:
            one["values"][:] = other["values"][:] = [1, 2, 3]
        assert np.array_equal(first.read_part("part")["values"], [1, 2, 3])
    assert np.array_equal(first.read_part("part")["values"], [1, 2, 3])
    assert CacheEntry(tmp_path / "entry", "another key").read_part("part") is None
    assert sorted(p.name for p in (tmp_path / "entry").iterdir()) == ["entry.json", "part.json", "part.values.npy"]


def test_a_process_that_may_not_write_computes_without_saving(tmp_path, tokenizer, glue_dir):
    cache = build(tmp_path, tiny_bert(), sst2_train(tokenizer, glue_dir, size=5), tokenizer, write=False)
    assert list(tmp_path.iterdir()) == [] and len(cache) == 5 and cache.path is None


def test_nothing_is_cached_when_nothing_is_needed(tmp_path, tokenizer, glue_dir):
    assert build(tmp_path, tiny_bert(), sst2_train(tokenizer, glue_dir, size=5), tokenizer, needs=frozenset()) is None
    assert list(tmp_path.iterdir()) == []


def test_lookup_of_unknown_examples_is_refused(tmp_path, tokenizer, glue_dir):
    cache = build(tmp_path, tiny_bert(), sst2_train(tokenizer, glue_dir, size=5), tokenizer)
    with pytest.raises(KeyError, match="not in the teacher cache"):
        cache.lookup(torch.tensor([10 ** 6]), 8)


def test_the_default_folder_follows_kdviz_cache(tmp_path, tokenizer, glue_dir, monkeypatch):
    monkeypatch.setenv("KDVIZ_CACHE", str(tmp_path / "mine"))
    cache = build(None, tiny_bert(), sst2_train(tokenizer, glue_dir, size=5), tokenizer,
                  description={"teacher": "tiny", "task": "sst2"})
    assert cache.path.parent.parent == tmp_path / "mine"
    assert json.loads((cache.path / "entry.json").read_text())["teacher"] == "tiny"


def test_cache_list_and_clear_commands(tmp_path, tokenizer, glue_dir, capsys):
    for size in (5, 6):
        build(tmp_path, tiny_bert(), sst2_train(tokenizer, glue_dir, size=size), tokenizer,
              description={"teacher": "tiny", "task": "sst2", "subset": size})
    assert main(["cache", "list", "--cache-dir", str(tmp_path)]) == 0
    listed = capsys.readouterr().out
    entries = list_entries(tmp_path)
    assert all(entry.path.name[:12] in listed for entry in entries) and "tiny" in listed and "total" in listed
    assert main(["cache", "clear", "--cache-dir", str(tmp_path), entries[0].path.name[:12]]) == 0
    assert [entry.path for entry in list_entries(tmp_path)] == [entries[1].path]
    assert "freed" in capsys.readouterr().out
    assert main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 0
    assert list_entries(tmp_path) == [] and clear_entries(tmp_path) == []


@pytest.mark.slow
def test_fine_tuned_teacher_top_tokens_on_real_sst2_dev(sst2_teacher, glue_dir, capsys):
    teacher, tokenizer = load_teacher(sst2_teacher["dir"], "sst2")
    dev = load_glue("sst2", glue_dir, splits=("validation",))["validation"].select(range(8))
    encoded = tokenize_glue(dev, tokenizer, "sst2")
    batch = padded(tokenizer, encoded)
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
