"""kdviz's cache folder on disk: entries made of parts, written atomically, read memory-mapped, listed, cleared.

The folder is ``$KDVIZ_CACHE`` when set, else ``kdviz`` in the user's cache folder
(``$XDG_CACHE_HOME`` or ``~/.cache``), like the Hugging Face caches. Each entry is a folder named by
its key; it holds ``entry.json`` (what the entry describes) and parts. A part is a set of NumPy
arrays (``<part>.<array>.npy``) plus a manifest (``<part>.json``) that names its key, and every
array's shape, dtype and size in bytes. A part is written under temporary names and renamed into
place, manifest last, so a write cut off midway leaves nothing that is read; a reader checks the
manifest against the files before it maps them. Two processes writing the same part at once each
rename complete files over the other's (the same values), so the race is harmless.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ENTRY_FILE = "entry.json"


def default_cache_dir() -> Path:
    """``$KDVIZ_CACHE``, else ``$XDG_CACHE_HOME/kdviz``, else ``~/.cache/kdviz``."""
    if os.environ.get("KDVIZ_CACHE"):
        return Path(os.environ["KDVIZ_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "kdviz"


def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir`` when given, else :func:`default_cache_dir`."""
    return Path(cache_dir).expanduser() if cache_dir else default_cache_dir()


def _write_json_atomically(path: Path, value: dict) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(value, indent=1, sort_keys=True))
    os.replace(temporary, path)


class CacheEntry:
    """One cache entry: a folder of parts that belong to one key.

    Args:
        path: the entry's folder.
        key: the key every part's manifest must carry to be read.
    """

    def __init__(self, path: str | os.PathLike, key: str):
        self.path, self.key = Path(path), key

    def _manifest(self, part: str) -> Path:
        return self.path / f"{part}.json"

    def _array_file(self, part: str, name: str) -> Path:
        return self.path / f"{part}.{name}.npy"

    def read_part(self, part: str) -> dict[str, np.ndarray] | None:
        """The part's arrays, memory-mapped read-only; None when it is missing, cut off, of another
        key, or its files do not match its manifest."""
        try:
            manifest = json.loads(self._manifest(part).read_text())
            if manifest.get("key") != self.key:
                return None
            arrays = {}
            for name, spec in manifest["arrays"].items():
                file = self._array_file(part, name)
                if file.stat().st_size != spec["bytes"]:
                    return None
                array = np.load(file, mmap_mode="r")
                if list(array.shape) != spec["shape"] or str(array.dtype) != spec["dtype"]:
                    return None
                arrays[name] = array
        except (OSError, ValueError, KeyError, TypeError):  # missing or unreadable: rebuild it
            return None
        return arrays

    def has_part(self, part: str) -> bool:
        """Whether the part can be read (see :meth:`read_part`)."""
        return self.read_part(part) is not None

    @contextmanager
    def write_part(self, part: str, specs: Mapping[str, tuple[tuple[int, ...], np.dtype]],
                   description: dict | None = None) -> Iterator[dict[str, np.ndarray]]:
        """Write a part: the block fills the arrays it is given (memory-mapped files, so they need
        not fit in memory); when it ends without an error they are renamed into place, manifest last.

        Args:
            part: the part's name.
            specs: array name -> (shape, dtype).
            description: written to ``entry.json`` (what the entry holds) with the first part.

        Yields:
            array name -> a writable array of that shape and dtype.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        tag = f"{os.getpid()}.{time.monotonic_ns()}"
        temporary = {name: self.path / f".{part}.{name}.{tag}.tmp" for name in specs}
        try:
            arrays = {name: np.lib.format.open_memmap(temporary[name], mode="w+", dtype=dtype, shape=tuple(shape))
                      for name, (shape, dtype) in specs.items()}
            yield arrays
            for array in arrays.values():
                array.flush()
            del arrays
            manifest = {"key": self.key, "arrays": {}}
            for name, (shape, dtype) in specs.items():
                manifest["arrays"][name] = {"shape": list(shape), "dtype": str(np.dtype(dtype)),
                                            "bytes": temporary[name].stat().st_size}
                os.replace(temporary[name], self._array_file(part, name))
            if description is not None and not (self.path / ENTRY_FILE).exists():
                _write_json_atomically(self.path / ENTRY_FILE, {"key": self.key, "created": time.time(),
                                                                 **description})
            _write_json_atomically(self._manifest(part), manifest)
        finally:
            for file in temporary.values():
                file.unlink(missing_ok=True)


@dataclass
class EntryInfo:
    """What ``kdviz cache list`` shows of an entry.

    Attributes:
        path: the entry's folder.
        description: its ``entry.json`` (key, teacher, task, split...); empty when unreadable.
        parts: the names of its parts.
        size: bytes on disk (complete files and leftovers alike).
        modified: when a file in it last changed (seconds since the epoch).
    """

    path: Path
    description: dict
    parts: list[str]
    size: int
    modified: float


def list_entries(cache_dir: str | os.PathLike | None = None) -> list[EntryInfo]:
    """Every entry in a cache folder (kinds of entries are its subfolders), largest first.

    Args:
        cache_dir: the cache folder; None for :func:`default_cache_dir`.
    """
    root = resolve_cache_dir(cache_dir)
    entries = []
    for entry_file in root.glob(f"*/*/{ENTRY_FILE}"):
        folder = entry_file.parent
        try:
            description = json.loads(entry_file.read_text())
        except (OSError, ValueError):
            description = {}
        files = [f for f in folder.iterdir() if f.is_file()]
        parts = sorted(f.stem for f in files if f.suffix == ".json" and f.name != ENTRY_FILE)
        entries.append(EntryInfo(folder, description, parts, sum(f.stat().st_size for f in files),
                                 max(f.stat().st_mtime for f in files)))
    return sorted(entries, key=lambda entry: -entry.size)


def clear_entries(cache_dir: str | os.PathLike | None = None, keys: list[str] | None = None) -> list[EntryInfo]:
    """Delete entries of a cache folder: all of them, or those whose key starts with one of ``keys``.

    Args:
        cache_dir: the cache folder; None for :func:`default_cache_dir`.
        keys: key prefixes (as ``kdviz cache list`` shows them); None deletes every entry.

    Returns:
        The entries deleted.
    """
    chosen = [entry for entry in list_entries(cache_dir)
              if keys is None or any(entry.path.name.startswith(key) for key in keys)]
    for entry in chosen:
        shutil.rmtree(entry.path, ignore_errors=True)
    return chosen


def format_size(size: float) -> str:
    """Bytes as a short human-readable size: ``"512 B"``, ``"3.4 MB"``, ``"1.2 GB"``."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"
