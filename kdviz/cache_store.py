"""kdviz's cache folder on disk: entries made of parts, written atomically, checked, read memory-mapped, listed, cleared.

The folder is ``$KDVIZ_CACHE`` when set, else ``kdviz`` in the user's cache folder
(``$XDG_CACHE_HOME`` or ``~/.cache``), like the Hugging Face caches. Each entry is a folder named by
its key; it holds ``entry.json`` (what the entry describes) and parts. A part is a set of NumPy
arrays (``<part>.<array>.npy``) plus a manifest (``<part>.json``) that names its key, and every
array's shape, dtype, size in bytes and SHA-256 checksum.

Writing: the space a part needs is checked and reserved (``posix_fallocate``) before its files are
memory-mapped, so a full disk is a :class:`CacheFolderError` naming the folder, the bytes and the
fix, never a crash (SIGBUS) halfway. A part is written under temporary names (hidden files holding
the writer's process id) and renamed into place, manifest last, so a write cut off midway leaves
nothing that is read; a later writer removes temporary files whose process has died. Two processes
writing the same part at once each rename complete files over the other's (the same values).

Reading: a part is read only when its manifest matches its files, sizes and checksums included, so a
cut-off, truncated or damaged part is rebuilt, never read (hashing costs about 0.2 s per 300 MB).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ENTRY_FILE = "entry.json"
TEMPORARY_SUFFIX = ".tmp"
FIXES = ("point the cache at another folder (KDVIZ_CACHE=FOLDER, or --cache-dir FOLDER / cache_dir in a config), "
         "free space with `kdviz cache clear`, or run without the cache (--teacher-cache false)")
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_CANNOT_RESERVE = (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS)


class CacheFolderError(RuntimeError):
    """The cache folder cannot hold what a run needs (a full disk, a file in its place, a path that
    cannot be created); the message names the folder and the fixes."""


def default_cache_dir() -> Path:
    """``$KDVIZ_CACHE``, else ``$XDG_CACHE_HOME/kdviz``, else ``~/.cache/kdviz``."""
    if os.environ.get("KDVIZ_CACHE"):
        return Path(os.environ["KDVIZ_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "kdviz"


def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir`` when given, else :func:`default_cache_dir`."""
    return Path(cache_dir).expanduser() if cache_dir else default_cache_dir()


def check_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder, created if missing; refused with the fixes when it cannot be one.

    A folder that exists but is read-only is accepted: complete entries are read from it, and
    whatever is missing is computed in memory (see :meth:`CacheEntry.writable`).

    Args:
        cache_dir: the cache folder; None for :func:`default_cache_dir`.

    Returns:
        The folder's path.

    Raises:
        CacheFolderError: the path is a file, or the folder does not exist and cannot be created.
    """
    folder = resolve_cache_dir(cache_dir)
    if folder.exists() and not folder.is_dir():
        raise CacheFolderError(f"The teacher cache folder {str(folder)!r} is a file, not a folder: {FIXES}.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        if not folder.is_dir():
            raise CacheFolderError(f"The teacher cache folder {str(folder)!r} cannot be created "
                                   f"({error.strerror or error}): {FIXES}.") from error
    return folder


def _temporary_name(stem: str) -> str:
    return f".{stem}.{os.getpid()}-{time.monotonic_ns()}{TEMPORARY_SUFFIX}"


def _writer_pid(file: Path) -> int | None:
    """The process id in a temporary file's name (None for any other file)."""
    if not (file.name.startswith(".") and file.name.endswith(TEMPORARY_SUFFIX)):
        return None
    with contextlib.suppress(ValueError, IndexError):
        return int(file.name[:-len(TEMPORARY_SUFFIX)].rsplit(".", 1)[1].split("-")[0])
    return None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _temporary_files(folder: Path) -> list[Path]:
    return [file for file in folder.iterdir() if _writer_pid(file) is not None]


def remove_orphans(folder: str | os.PathLike) -> int:
    """Delete the temporary files that writers which have died left in an entry folder.

    Returns:
        The bytes freed.
    """
    freed = 0
    for file in _temporary_files(Path(folder)):
        if not _process_alive(_writer_pid(file)):
            with contextlib.suppress(OSError):
                size = file.stat().st_size
                file.unlink()
                freed += size
    return freed


def _write_json_atomically(path: Path, value: dict) -> None:
    temporary = path.with_name(_temporary_name(path.name))
    try:
        temporary.write_text(json.dumps(value, indent=1, sort_keys=True))
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def file_checksum(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in 16 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 24):
            digest.update(block)
    return digest.hexdigest()


def _array_bytes(shape, dtype) -> int:
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def _no_space(folder: Path, part: str, needed: int) -> CacheFolderError:
    free = shutil.disk_usage(folder).free
    return CacheFolderError(f"No space left for the teacher cache in {str(folder)!r}: its part {part!r} needs "
                            f"{format_size(needed)} and {format_size(free)} are free. To fix it, {FIXES}.")


def _reserve(path: Path, size: int) -> None:
    """Allocate a file's blocks now, so a full disk fails here and not as SIGBUS in a memory map."""
    if not hasattr(os, "posix_fallocate"):
        return
    with open(path, "r+b") as file:
        try:
            os.posix_fallocate(file.fileno(), 0, size)
        except OSError as error:
            if error.errno not in _CANNOT_RESERVE:  # a file system that cannot: the free-space check stands
                raise


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

    def read_part(self, part: str, verify: bool = True) -> dict[str, np.ndarray] | None:
        """The part's arrays, memory-mapped read-only; None when it is missing, cut off, of another
        key, or its files do not match its manifest (shape, dtype, size and, with ``verify``, checksum).
        A damaged part (checksum mismatch) is also reported with a warning."""
        try:
            manifest = json.loads(self._manifest(part).read_text())
            if manifest.get("key") != self.key:
                return None
            arrays = {}
            for name, spec in manifest["arrays"].items():
                file = self._array_file(part, name)
                if file.stat().st_size != spec["bytes"]:
                    return None
                if verify and file_checksum(file) != spec["sha256"]:
                    warnings.warn(f"Teacher cache part {part!r} in {str(self.path)!r} is damaged ({file.name} does "
                                  f"not match its checksum): it is rebuilt.", stacklevel=2)
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

    def writable(self) -> bool:
        """Whether parts can be written here (the folder can be created and a file made in it)."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.path):
                return True
        except OSError:
            return False

    @contextmanager
    def write_part(self, part: str, specs: Mapping[str, tuple[tuple[int, ...], np.dtype]],
                   description: dict | None = None) -> Iterator[dict[str, np.ndarray]]:
        """Write a part: the block fills the arrays it is given (memory-mapped files, so they need
        not fit in memory); when it ends without an error they are checksummed and renamed into
        place, manifest last. The space is checked and reserved before the block runs.

        Args:
            part: the part's name.
            specs: array name -> (shape, dtype).
            description: written to ``entry.json`` (what the entry holds) with the first part.

        Yields:
            array name -> a writable array of that shape and dtype.

        Raises:
            CacheFolderError: not enough space for the part (nothing is left behind).
        """
        self.path.mkdir(parents=True, exist_ok=True)
        remove_orphans(self.path)
        needed = sum(_array_bytes(shape, dtype) for shape, dtype in specs.values())
        if shutil.disk_usage(self.path).free < needed:
            raise _no_space(self.path, part, needed)
        temporary = {name: self.path / _temporary_name(f"{part}.{name}") for name in specs}
        try:
            arrays = {}
            for name, (shape, dtype) in specs.items():
                arrays[name] = np.lib.format.open_memmap(temporary[name], mode="w+", dtype=dtype, shape=tuple(shape))
                _reserve(temporary[name], temporary[name].stat().st_size)
            yield arrays
            for array in arrays.values():
                array.flush()
            del arrays
            manifest = {"key": self.key, "arrays": {}}
            for name, (shape, dtype) in specs.items():
                manifest["arrays"][name] = {"shape": list(shape), "dtype": str(np.dtype(dtype)),
                                            "bytes": temporary[name].stat().st_size,
                                            "sha256": file_checksum(temporary[name])}
                os.replace(temporary[name], self._array_file(part, name))
            if description is not None and not (self.path / ENTRY_FILE).exists():
                _write_json_atomically(self.path / ENTRY_FILE, {"key": self.key, "created": time.time(),
                                                                 **description})
            _write_json_atomically(self._manifest(part), manifest)
        except OSError as error:
            if error.errno in _NO_SPACE:
                raise _no_space(self.path, part, needed) from error
            raise
        finally:
            for file in temporary.values():
                with contextlib.suppress(OSError):
                    file.unlink(missing_ok=True)


@dataclass
class EntryInfo:
    """What ``kdviz cache list`` shows of an entry.

    Attributes:
        path: the entry's folder.
        description: its ``entry.json`` (key, teacher, task, split...); empty when unreadable or
            not written yet (a half-built entry).
        parts: the names of its complete parts.
        size: bytes on disk (complete files and leftovers alike).
        modified: when a file in it last changed (seconds since the epoch).
        leftovers: bytes of temporary files whose writer has died (a cut-off build).
        builders: process ids of running processes writing into it now.
    """

    path: Path
    description: dict
    parts: list[str]
    size: int
    modified: float
    leftovers: int = 0
    builders: list[int] = field(default_factory=list)


def _entry_info(folder: Path) -> EntryInfo:
    try:
        description = json.loads((folder / ENTRY_FILE).read_text())
    except (OSError, ValueError):
        description = {}
    files, leftovers, builders = [], 0, set()
    for file in folder.iterdir():
        with contextlib.suppress(OSError):  # a file renamed or removed while we look
            stat = file.stat()
            files.append((file, stat))
            pid = _writer_pid(file)
            if pid is not None and _process_alive(pid):
                builders.add(pid)
            elif pid is not None:
                leftovers += stat.st_size
    parts = sorted(f.stem for f, _ in files if f.suffix == ".json" and f.name != ENTRY_FILE and _writer_pid(f) is None)
    return EntryInfo(folder, description, parts, sum(s.st_size for _, s in files),
                     max((s.st_mtime for _, s in files), default=folder.stat().st_mtime), leftovers, sorted(builders))


def _check_listable(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise CacheFolderError(f"The teacher cache folder {str(root)!r} is a file, not a folder: {FIXES}.")


def list_entries(cache_dir: str | os.PathLike | None = None) -> list[EntryInfo]:
    """Every entry in a cache folder (kinds of entries are its subfolders), largest first: complete
    ones, half-built ones (no part finished) and those holding a dead writer's temporary files.

    Args:
        cache_dir: the cache folder; None for :func:`default_cache_dir`.

    Raises:
        CacheFolderError: the path is a file.
    """
    root = resolve_cache_dir(cache_dir)
    _check_listable(root)
    entries = []
    for folder in root.glob("*/*"):
        with contextlib.suppress(FileNotFoundError):  # removed while we look
            if folder.is_dir():
                entries.append(_entry_info(folder))
    return sorted(entries, key=lambda entry: -entry.size)


def clear_entries(cache_dir: str | os.PathLike | None = None, keys: list[str] | None = None) -> list[EntryInfo]:
    """Delete entries of a cache folder: all of them, or those whose key starts with one of ``keys``,
    half-built ones and a dead writer's leftovers included. An entry that a running process is
    writing now is left alone (its :attr:`EntryInfo.builders` say who); one that a run is reading
    can be deleted: the run keeps its memory-mapped files until it ends.

    Args:
        cache_dir: the cache folder; None for :func:`default_cache_dir`.
        keys: key prefixes (as ``kdviz cache list`` shows them); None deletes every entry.

    Returns:
        The entries deleted.

    Raises:
        CacheFolderError: the path is a file.
    """
    chosen = [entry for entry in list_entries(cache_dir)
              if keys is None or any(entry.path.name.startswith(key) for key in keys)]
    cleared = []
    for entry in chosen:
        if entry.builders:
            remove_orphans(entry.path)
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        cleared.append(entry)
    for kind in {entry.path.parent for entry in cleared}:
        with contextlib.suppress(OSError):  # not empty: other entries, or one started meanwhile
            kind.rmdir()
    return cleared


def format_size(size: float) -> str:
    """Bytes as a short human-readable size: ``"512 B"``, ``"3.4 MB"``, ``"1.2 GB"``."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"
