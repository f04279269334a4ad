"""The cache folder on disk: space reserved before writing, checksums, leftovers of dead writers, clear."""

import errno
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

import kdviz.cache_store as cache_store
from kdviz.cache_store import CacheEntry, CacheFolderError, check_cache_dir, clear_entries, list_entries

SPEC = {"values": ((1000,), np.float32)}


def write(entry: CacheEntry, values=None, part="part"):
    with entry.write_part(part, SPEC, {"task": "sst2"}) as arrays:
        arrays["values"][:] = np.arange(1000) if values is None else values


def files(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_a_part_that_does_not_fit_is_refused_before_its_block_runs(tmp_path, monkeypatch):
    entry = CacheEntry(tmp_path / "teacher" / "abc", "key")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10 ** 6, 10 ** 6 - 100, 100))
    ran = []
    with pytest.raises(CacheFolderError) as refused:
        with entry.write_part("part", SPEC) as arrays:
            ran.append(arrays)
    assert not ran and files(tmp_path) == []
    message = str(refused.value)
    for words in (str(entry.path), "4.0 kB", "100 B", "KDVIZ_CACHE", "--cache-dir", "kdviz cache clear",
                  "--teacher-cache false"):
        assert words in message, words


def test_space_is_reserved_so_a_full_disk_fails_before_the_memory_map_is_filled(tmp_path, monkeypatch):
    """A file system that reports free space but cannot allocate it (another writer took it) fails at
    the reservation with the clear error, and leaves nothing behind."""
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    entry = CacheEntry(tmp_path / "teacher" / "abc", "key")
    with pytest.raises(CacheFolderError, match="No space left for the teacher cache"):
        write(entry)
    assert files(tmp_path) == []


def test_a_real_full_file_system_gives_the_message_not_sigbus(tmp_path):
    """On a 64 kB tmpfs, a part of 4 MB: a clear error, and no file left."""
    script = (f"mount -t tmpfs -o size=64k tmpfs {tmp_path} && {sys.executable} -c '"
              f"import numpy as np; from kdviz.cache_store import CacheEntry; "
              f"e = CacheEntry(\"{tmp_path}/teacher/abc\", \"k\"); "
              f"w = e.write_part(\"part\", {{\"v\": ((10 ** 6,), np.float32)}}); a = w.__enter__(); a[\"v\"][:] = 1'; "
              f"echo exit=$?; find {tmp_path} -type f")
    done = cache_store_namespace(script)
    assert "exit=1" in done.stdout and "No space left for the teacher cache" in done.stderr, done.stderr[-2000:]
    assert done.stdout.strip().endswith("exit=1")  # no file listed after it


def cache_store_namespace(script):
    from helpers import in_mount_namespace

    return in_mount_namespace(script, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def test_a_damaged_part_of_the_right_size_is_rebuilt_not_read(tmp_path):
    entry = CacheEntry(tmp_path / "entry", "key")
    write(entry)
    file = entry.path / "part.values.npy"
    assert np.array_equal(entry.read_part("part")["values"], np.arange(1000))
    size = file.stat().st_size
    with open(file, "r+b") as handle:  # overwritten in place: same size, same header
        handle.seek(size - 40)
        handle.write(b"\x00" * 8)
    assert file.stat().st_size == size
    with pytest.warns(UserWarning, match="damaged"):
        assert entry.read_part("part") is None
    assert entry.read_part("part", verify=False) is not None  # the size and header alone cannot tell


def test_a_manifest_without_checksums_is_not_read(tmp_path):
    import json

    entry = CacheEntry(tmp_path / "entry", "key")
    write(entry)
    manifest = json.loads((entry.path / "part.json").read_text())
    del manifest["arrays"]["values"]["sha256"]
    (entry.path / "part.json").write_text(json.dumps(manifest))
    assert entry.read_part("part") is None


def test_the_cache_folder_is_a_file_or_cannot_be_created(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(CacheFolderError, match="is a file, not a folder.*KDVIZ_CACHE"):
        check_cache_dir(tmp_path / "file")
    with pytest.raises(CacheFolderError, match="cannot be created.*--cache-dir"):
        check_cache_dir(tmp_path / "file" / "cache")
    with pytest.raises(CacheFolderError, match="is a file"):
        list_entries(tmp_path / "file")
    assert check_cache_dir(tmp_path / "new" / "cache").is_dir()


def test_a_read_only_folder_serves_what_it_has_and_refuses_nothing_twice(tmp_path):
    """In a read-only bind mount, a complete part is read and an entry reports that it cannot be written."""
    entry = CacheEntry(tmp_path / "cache" / "teacher" / "abc", "key")
    write(entry)
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    script = (f"mount --bind {tmp_path / 'cache'} {mounted} && mount -o remount,bind,ro {mounted} && "
              f"{sys.executable} -c '"
              f"from kdviz.cache_store import CacheEntry; e = CacheEntry(\"{mounted}/teacher/abc\", \"key\"); "
              f"print(\"read\", int(e.read_part(\"part\")[\"values\"].sum())); print(\"writable\", e.writable())'")
    done = cache_store_namespace(script)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"read {sum(range(1000))}" in done.stdout and "writable False" in done.stdout


def test_leftovers_of_a_killed_writer_are_listed_cleared_and_removed_by_the_next_writer(tmp_path):
    folder = tmp_path / "teacher" / "abc"
    code = ("import time, numpy as np; from kdviz.cache_store import CacheEntry; "
            f"w = CacheEntry('{folder}', 'key').write_part('part', {{'values': ((1000,), np.float32)}}); "
            "w.__enter__(); print('writing', flush=True); time.sleep(60)")
    writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    writer.stdout.close()
    (entry,) = list_entries(tmp_path)
    assert entry.builders == [writer.pid] and entry.parts == [] and entry.leftovers == 0
    assert clear_entries(tmp_path) == [] and folder.is_dir()  # being written: left alone
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    (entry,) = list_entries(tmp_path)
    assert entry.builders == [] and entry.leftovers >= 4000 and entry.description == {}
    write(CacheEntry(folder, "key"))  # started again: completes, and the dead writer's files are gone
    assert files(folder) == ["entry.json", "part.json", "part.values.npy"]
    (entry,) = list_entries(tmp_path)
    assert entry.leftovers == 0 and entry.parts == ["part"]
    cleared = clear_entries(tmp_path)
    assert len(cleared) == 1 and list(tmp_path.iterdir()) == []


def test_a_half_built_entry_is_cleared_too(tmp_path):
    folder = tmp_path / "teacher" / "abc"
    folder.mkdir(parents=True)
    (folder / ".part.values.999999999-1.tmp").write_bytes(b"\0" * 100)  # no such process
    (entry,) = list_entries(tmp_path)
    assert entry.leftovers == 100 and entry.builders == []
    assert len(clear_entries(tmp_path)) == 1 and list(tmp_path.iterdir()) == []


def test_clearing_while_a_run_reads_leaves_the_run_its_arrays(tmp_path):
    entry = CacheEntry(tmp_path / "teacher" / "abc", "key")
    write(entry)
    arrays = entry.read_part("part")
    assert len(clear_entries(tmp_path)) == 1 and not entry.path.exists()
    assert np.array_equal(arrays["values"], np.arange(1000))  # memory-mapped: kept until the reader ends


def test_the_checksum_costs_little(tmp_path):
    """Not a timing assertion: the checksum is computed once per write and once per read of a part."""
    entry = CacheEntry(tmp_path / "entry", "key")
    calls = []
    original = cache_store.file_checksum
    cache_store.file_checksum = lambda path: calls.append(path) or original(path)
    try:
        write(entry)
        entry.read_part("part")
    finally:
        cache_store.file_checksum = original
    assert len(calls) == 2
