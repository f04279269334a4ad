"""The teacher's probe-set results kept in kdviz's cache folder: every run on the same teacher and
probe set, in any process (a notebook's kernel, a study, a CLI run), reads them instead of computing
them again.

What is kept is what :meth:`kdviz.probe.Probe.score_teacher` computes: the teacher's token scores
(P, V, L), logits (P, C) and the saved examples' signed scores (S, L) in float32, its faithfulness
and that of random rationales (the costliest part: several erasure passes of the teacher per draw),
as JSON bytes in the same part, so that one manifest checks them all. An entry
lives in the ``probe`` subfolder of the cache folder (:mod:`kdviz.cache_store`: written atomically,
checked on reading, listed and cleared by ``kdviz cache``). Its key hashes the teacher, the probe
set, the attribution settings and the source of the code that computes these results, so changed
code or data never read old results. The device is not in the key (as for the teacher cache): results
computed on a GPU serve a CPU run too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import warnings

import numpy as np
import torch

import kdviz.attribution
import kdviz.faithfulness
import kdviz.frozen_attribution
import kdviz.probe
from kdviz.cache_key import code_digest
from kdviz.cache_store import CacheEntry, CacheFolderError, resolve_cache_dir
from kdviz.run_records import ProbeScores

KIND = "probe"
"""The cache folder's subfolder of probe entries."""
PART = "teacher_results"
RESULTS = "faithfulness"
"""The part's array holding the faithfulness dicts, as UTF-8 JSON bytes (checksummed like the rest)."""
CODE = (kdviz.attribution, kdviz.frozen_attribution, kdviz.faithfulness, kdviz.probe, sys.modules[__name__])
"""The modules whose source is part of an entry's key (this one too: a new layout gives new keys)."""


class TeacherProbeCache:
    """Reads and writes the teacher's probe results in a cache folder.

    Args:
        cache_dir: the cache folder; None for ``$KDVIZ_CACHE`` or the user's cache folder.
        label: what ``kdviz cache list`` shows of an entry (``teacher``, ``task``, ``split``,
            ``subset``, ``max_length``); not part of the key.
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None, label: dict | None = None):
        self.root = resolve_cache_dir(cache_dir)
        self.label = dict(label or {})

    def _entry(self, key: str) -> CacheEntry:
        key = hashlib.sha256(f"{key}{code_digest(CODE)}".encode()).hexdigest()
        return CacheEntry(self.root / KIND / key[:16], key)

    def read(self, key: str) -> tuple[ProbeScores, dict | None, dict | None] | None:
        """The results stored under ``key`` (:meth:`kdviz.probe.Probe.teacher_key`), or None.

        Returns:
            ``(scores, faithfulness, random_rationale)`` as :meth:`~kdviz.probe.Probe.score_teacher`
            keeps them: float32 tensors, and two dicts (None for a regression task).
        """
        arrays = self._entry(key).read_part(PART)
        if arrays is None:
            return None
        try:
            results = json.loads(np.asarray(arrays[RESULTS]).tobytes().decode())
            faithfulness, random = results["faithfulness"], results["random_rationale"]
        except (KeyError, TypeError, ValueError):
            return None
        tensor = lambda name: torch.from_numpy(np.array(arrays[name])) if name in arrays else None
        return ProbeScores(tensor("scores"), tensor("logits"), tensor("signed")), faithfulness, random

    def write(self, key: str, scores: ProbeScores, faithfulness: dict | None, random: dict | None) -> bool:
        """Store the results under ``key`` (in float32). The cache only saves time: a folder that cannot
        be written keeps nothing, with a warning, and the run goes on with the results it computed.

        Returns:
            Whether they were stored.
        """
        entry = self._entry(key)
        tensors = {"scores": scores.scores, "logits": scores.logits, "signed": scores.signed}
        arrays = {name: value.detach().float().cpu().numpy() for name, value in tensors.items() if value is not None}
        arrays[RESULTS] = np.frombuffer(json.dumps({"faithfulness": faithfulness, "random_rationale": random})
                                        .encode(), dtype=np.uint8)
        try:
            if not entry.writable():
                raise PermissionError(f"{str(entry.path)!r} cannot be written")
            with entry.write_part(PART, {name: (a.shape, a.dtype) for name, a in arrays.items()}, self.label) as files:
                for name, array in arrays.items():
                    files[name][...] = array
        except (OSError, CacheFolderError) as error:
            with contextlib.suppress(OSError):
                entry.path.rmdir()  # an entry folder left empty
            warnings.warn(f"The teacher's probe results are computed for this run only, not kept: {error}",
                          stacklevel=2)
            return False
        return True
