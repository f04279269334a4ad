"""The teacher cache: equal to fresh outputs, invalidated by any change, shared, never read half-written."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

import kdviz.cache_key as cache_key
import kdviz.teacher_cache as teacher_cache
from helpers import in_mount_namespace, tiny_bert
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
    cached = again.lookup(torch.tensor(rows["idx"]), batch["attention_mask"])
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
    assert cache_key.scores_part(chunked) == cache_key.scores_part(settings)
    recomputed = build(tmp_path / "other", teacher, train, tokenizer, settings=settings, batch_size=16)
    for name in again.arrays:
        assert np.array_equal(recomputed.arrays[name], first.arrays[name]), name


def test_cls_states_are_every_layer_at_position_0(tmp_path, tokenizer, glue_dir):
    teacher = tiny_bert(num_labels=2)
    train = sst2_train(tokenizer, glue_dir, size=6)
    cache = build(tmp_path, teacher, train, tokenizer, needs=frozenset({LOGITS, CLS_STATES}))
    assert cache.provides == {LOGITS, CLS_STATES} and "token_states" not in cache.arrays
    batch = padded(tokenizer, train)
    cached = cache.lookup(torch.tensor(train["idx"]), batch["attention_mask"])
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
    good = np.array(cache.arrays["scores"])
    damaged = bytearray(scores.read_bytes())  # overwritten in place: the same size and header
    damaged[-40:] = b"\x3c" * 40
    scores.write_bytes(bytes(damaged))
    with pytest.warns(UserWarning, match="damaged"):
        cache = build(tmp_path, teacher, train, tokenizer)
    assert calls[-1] == ["idx", "logits", "offsets", "scores"] and len(calls) == 4
    assert np.array_equal(cache.arrays["scores"], good)


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
        cache.lookup(torch.tensor([10 ** 6]), torch.ones(1, 8))


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
    assert all(f"{entry.path.name[:12]}  teacher " in listed for entry in entries)  # the kind of entry
    assert main(["cache", "clear", "--cache-dir", str(tmp_path), entries[0].path.name[:12]]) == 0
    assert [entry.path for entry in list_entries(tmp_path)] == [entries[1].path]
    assert "freed" in capsys.readouterr().out
    assert main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 0
    assert list_entries(tmp_path) == [] and clear_entries(tmp_path) == []


def teacher_folder(folder, tokenizer, **config_changes):
    """A tiny teacher saved to ``folder``: the same weights every time, its config changed as asked."""
    model = tiny_bert(num_labels=2)
    for name, value in config_changes.items():
        setattr(model.config, name, value)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("change", [{"num_attention_heads": 4}, {"hidden_act": "relu"}, {"layer_norm_eps": 1e-3}],
                         ids=["heads", "activation", "layer-norm-eps"])
def test_equal_weights_with_another_config_get_their_own_entry(tmp_path, tokenizer, glue_dir, change):
    """Two teacher folders with identical weights and a different config.json: two entries, each
    equal to its own live teacher (the key holds the architecture, not only the weights)."""
    train = sst2_train(tokenizer, glue_dir, size=12)
    batch = padded(tokenizer, train)
    caches = []
    for name, changes in (("first", {}), ("second", change)):
        teacher, _ = load_teacher(teacher_folder(tmp_path / name, tokenizer, **changes), "sst2")
        cache = build(tmp_path / "cache", teacher, train, tokenizer, needs=frozenset({LOGITS, TOKEN_SCORES}))
        with torch.no_grad():
            live = teacher(**batch).logits
        by_idx = dict(zip(cache.arrays["idx"].tolist(), cache.arrays["logits"]))
        cached = torch.from_numpy(np.stack([by_idx[i] for i in train["idx"]]))
        torch.testing.assert_close(cached, live, rtol=1e-5, atol=1e-6)
        caches.append(cache)
    assert caches[0].key != caches[1].key and len(list_entries(tmp_path / "cache")) == 2
    assert not np.allclose(caches[0].arrays["logits"], caches[1].arrays["logits"])


def test_the_key_holds_the_attention_kernel_and_versions_and_scores_the_attribution_code(monkeypatch, tokenizer,
                                                                                          glue_dir):
    teacher = tiny_bert(num_labels=2)
    train = sst2_train(tokenizer, glue_dir, size=4)
    key = cache_key.cache_key(teacher, train, {})
    assert cache_key.cache_key(tiny_bert(num_labels=2), train, {}) == key  # the same teacher again
    teacher.config.id2label = {0: "bad", 1: "good"}  # label names do not change the outputs
    teacher.config._name_or_path = "/elsewhere"
    assert cache_key.cache_key(teacher, train, {}) == key
    teacher.set_attn_implementation("sdpa")
    assert cache_key.cache_key(teacher, train, {}) != key
    teacher.set_attn_implementation("eager")
    monkeypatch.setattr(cache_key.transformers, "__version__", "99.0.0")
    assert cache_key.cache_key(teacher, train, {}) != key
    settings = AttributionSettings(top_k=20)
    part = cache_key.scores_part(settings)
    monkeypatch.setattr(cache_key.inspect, "getsource", lambda module: "another version of " + module.__name__)
    assert cache_key.scores_part(settings) != part


def test_per_token_values_are_placed_by_the_attention_mask(tmp_path, tokenizer, glue_dir):
    """Whatever side a batch is padded on, each real token gets its own cached score and states."""
    teacher = tiny_bert(num_labels=2)
    train = sst2_train(tokenizer, glue_dir, size=8)
    cache = build(tmp_path, teacher, train, tokenizer)
    rows = train.select(range(8))
    right = padded(tokenizer, rows)
    assert (right["attention_mask"] == 0).any()  # some padding to move
    left = {name: torch.stack([row.roll(int((~m.bool()).sum())) for row, m in zip(values, right["attention_mask"])])
            for name, values in right.items()}
    idx = torch.tensor(rows["idx"])
    on_right, on_left = cache.lookup(idx, right["attention_mask"]), cache.lookup(idx, left["attention_mask"])
    for row, mask in enumerate(right["attention_mask"].bool()):
        shift = int((~mask).sum())
        torch.testing.assert_close(on_left.token_scores[row].roll(-shift, dims=-1), on_right.token_scores[row])
        for stored_left, stored_right in zip(on_left.hidden_states, on_right.hidden_states):
            torch.testing.assert_close(stored_left[row].roll(-shift, dims=0), stored_right[row])
    with pytest.raises(KeyError, match="other token counts"):
        cache.lookup(idx, right["attention_mask"][:, :5])


def test_a_tokenizer_that_pads_on_the_left_is_refused(tmp_path, tokenizer, glue_dir):
    train = sst2_train(tokenizer, glue_dir, size=4)
    left = AutoTokenizer.from_pretrained(tokenizer.name_or_path, padding_side="left")
    with pytest.raises(ValueError, match="pads on the left.*padding_side = 'right'"):
        build(tmp_path, tiny_bert(), train, left)
    assert list(tmp_path.iterdir()) == []


def test_a_run_reading_an_entry_keeps_it_when_the_folder_is_cleared(tmp_path, tokenizer, glue_dir):
    teacher = tiny_bert(num_labels=2)
    train = sst2_train(tokenizer, glue_dir, size=6)
    cache = build(tmp_path, teacher, train, tokenizer)
    batch = padded(tokenizer, train)
    before = cache.lookup(torch.tensor(train["idx"]), batch["attention_mask"])
    assert main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 0 and list(tmp_path.iterdir()) == []
    after = cache.lookup(torch.tensor(train["idx"]), batch["attention_mask"])
    torch.testing.assert_close(after.token_scores, before.token_scores)
    torch.testing.assert_close(after.logits, before.logits)


def distill_command(teacher, glue_dir, cache, run, method="alp"):
    return (f"{sys.executable} -m kdviz distill --preset {method}/sst2 --teacher {teacher} --student-layers 2 "
            f"--data-dir {glue_dir} --train-subset 64 --eval-subset 16 --epochs 1 --batch-size 16 --probe-size 0 "
            f"--agreement-size 0 --cache-dir {cache} --output-dir {run}")


@pytest.mark.mount_namespace
def test_a_full_cache_file_system_stops_the_run_with_the_fix_and_clear_empties_it(tiny_teacher, glue_dir, tmp_path):
    """A 16 kB tmpfs as the cache folder: exit 2 with the message (not SIGBUS), the run folder
    given with --overwrite keeps what it held, and `kdviz cache clear` leaves the folder empty."""
    cache, run = tmp_path / "cache", tmp_path / "run"
    cache.mkdir()
    run.mkdir()
    (run / "kept.txt").write_text("an earlier run")
    done = in_mount_namespace(
        f"mount -t tmpfs -o size=16k tmpfs {cache} && {distill_command(tiny_teacher, glue_dir, cache, run)} "
        f"--overwrite; echo exit=$?; {sys.executable} -m kdviz cache clear --cache-dir {cache}; "
        f"echo left=$(ls -A {cache} | wc -l)", env=os.environ)
    assert "exit=2" in done.stdout, done.stdout[-2000:] + done.stderr[-4000:]
    error = done.stderr.splitlines()[-1]
    assert error.startswith("kdviz distill: error: No space left for the teacher cache in") and "needs" in error
    assert all(words in error for words in ("KDVIZ_CACHE", "--cache-dir", "kdviz cache clear", "--teacher-cache false"))
    assert "left=0" in done.stdout and (run / "kept.txt").read_text() == "an earlier run"


@pytest.mark.mount_namespace
def test_a_read_only_cache_folder_serves_its_entries_and_computes_what_it_lacks_in_memory(tiny_teacher, glue_dir,
                                                                                         tmp_path):
    cache, mounted = tmp_path / "cache", tmp_path / "mounted"
    mounted.mkdir()
    kd = subprocess.run(distill_command(tiny_teacher, glue_dir, cache, tmp_path / "kd", "kd").split(),
                        capture_output=True, text=True)
    assert kd.returncode == 0, kd.stderr[-3000:]
    done = in_mount_namespace(
        f"mount --bind {cache} {mounted} && mount -o remount,bind,ro {mounted} && "
        f"{distill_command(tiny_teacher, glue_dir, mounted, tmp_path / 'kd-again', 'kd')} && echo kd=ok && "
        f"{distill_command(tiny_teacher, glue_dir, mounted, tmp_path / 'alp', 'alp')} && echo alp=ok", env=os.environ)
    assert "kd=ok" in done.stdout and "alp=ok" in done.stdout, done.stderr[-4000:]
    assert done.stderr.count("is read-only") == 1 and "cls_states are computed in memory" in done.stderr
    assert "Traceback" not in done.stderr
    assert [entry.parts for entry in list_entries(cache)] == [["outputs"]]  # nothing was written into it


def test_a_cache_folder_that_is_a_file_is_refused_before_any_work(tiny_teacher, glue_dir, tmp_path, capsys):
    (tmp_path / "cache").write_text("not a folder")
    arguments = distill_command(tiny_teacher, glue_dir, tmp_path / "cache", tmp_path / "run").split()[3:]
    assert main(arguments) == 2
    assert "is a file, not a folder" in capsys.readouterr().err and not (tmp_path / "run").exists()
    assert main(arguments[:-4] + ["--cache-dir", str(tmp_path / "cache" / "sub"), "--output-dir",
                                  str(tmp_path / "run")]) == 2
    assert "cannot be created" in capsys.readouterr().err and not (tmp_path / "run").exists()


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
