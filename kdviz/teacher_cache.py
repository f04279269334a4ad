"""The frozen teacher's logits and token scores, computed once per training set and kept on disk.

The teacher is frozen and in eval mode, so what AD-KD needs from it for a training example (its
logits and its normalised token scores per view) never changes: it is computed once, batched,
and reused every epoch. The file's key hashes the teacher's weights, the tokenised data (ids,
segments, masks, labels, ``idx``), a description of where it came from (task, split, subset,
max length) and the attribution settings, so a stale cache is never read. Files are written to a
temporary name and renamed, so a write cut off midway leaves nothing that loads.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import DataCollatorWithPadding

from kdviz.attribution import AttributionSettings
from kdviz.frozen_attribution import frozen_token_scores
from kdviz.runs import teacher_cache_file

CACHE_COLUMNS = ("input_ids", "token_type_ids", "attention_mask", "label", "idx")


def hash_model(model: torch.nn.Module) -> str:
    """SHA-256 of a model's state dict: names, dtypes, shapes and every byte of every tensor."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def hash_dataset(dataset) -> str:
    """SHA-256 of a tokenised data set's model inputs, labels and ``idx``, row by row in order."""
    digest = hashlib.sha256()
    for name in CACHE_COLUMNS:
        if name not in dataset.column_names:
            continue
        values = dataset[name]
        if values and isinstance(values[0], list):
            digest.update(np.array([len(v) for v in values], dtype=np.int64).tobytes())
            values = list(itertools.chain.from_iterable(values))
        digest.update(name.encode())
        digest.update(np.asarray(values, dtype=np.float64).tobytes())
    return digest.hexdigest()


def cache_key(teacher: torch.nn.Module, dataset, settings: AttributionSettings, description: dict) -> str:
    """The key a cache file must carry to be used for this teacher, data and settings."""
    parts = {"teacher": hash_model(teacher), "data": hash_dataset(dataset), "settings": settings.result_fields(),
             "description": description, "format": 1}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class TeacherCache:
    """Teacher logits and token scores per training example, looked up by the data set's ``idx``.

    Args:
        logits: (N, C) teacher logits.
        scores: (T, V) token scores of all examples' real tokens, concatenated.
        offsets: (N + 1,) start of each example's tokens in ``scores``.
        idx: (N,) the ``idx`` of each row.
        key: the cache key.
    """

    def __init__(self, logits: torch.Tensor, scores: torch.Tensor, offsets: torch.Tensor, idx: torch.Tensor, key: str):
        self.logits, self.scores, self.offsets, self.idx, self.key = logits, scores, offsets, idx, key
        self._row = torch.full((int(idx.max()) + 1 if len(idx) else 0,), -1, dtype=torch.long)
        self._row[idx] = torch.arange(len(idx))

    def __len__(self) -> int:
        return len(self.idx)

    def lookup(self, idx: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The cached teacher outputs of a batch.

        Args:
            idx: (B,) the examples' ``idx`` values.
            length: L, the batch's padded length.

        Returns:
            ``(logits, scores)`` of shapes (B, C) and (B, V, L); scores are zero on padding.
        """
        idx = idx.cpu().long()
        if idx.max() >= len(self._row) or (rows := self._row[idx]).min() < 0:
            raise KeyError("A batch holds examples that are not in the teacher cache (another data set or subset?).")
        starts, lengths = self.offsets[rows], self.offsets[rows + 1] - self.offsets[rows]
        positions = torch.arange(length)
        valid = positions[None, :] < lengths[:, None]  # (B, L)
        gathered = self.scores[(starts[:, None] + positions[None, :]).clamp(max=len(self.scores) - 1)]  # (B, L, V)
        scores = (gathered * valid[..., None]).permute(0, 2, 1)
        return self.logits[rows], scores

    def save(self, path: Path) -> None:
        """Write atomically: a temporary file in the same folder, renamed when complete."""
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            save_file({"logits": self.logits, "scores": self.scores, "offsets": self.offsets, "idx": self.idx},
                      str(temporary), metadata={"key": self.key})
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path, key: str) -> "TeacherCache | None":
        """Read a cache file if it exists and carries ``key``; None otherwise."""
        try:
            with safe_open(str(path), framework="pt") as handle:
                if (handle.metadata() or {}).get("key") != key:
                    return None
                tensors = {name: handle.get_tensor(name) for name in ("logits", "scores", "offsets", "idx")}
        except Exception:  # missing, cut off or unreadable for any reason: recompute it
            return None
        return cls(**tensors, key=key)


@torch.no_grad()
def compute_teacher_cache(
    teacher: torch.nn.Module,
    dataset,
    tokenizer,
    settings: AttributionSettings,
    key: str = "",
    batch_size: int = 64,
    progress: bool = True,
) -> TeacherCache:
    """Run the teacher once over a tokenised data set (eval mode, batched, with a progress bar).

    Args:
        teacher: the frozen teacher.
        dataset: tokenised split with ``input_ids``, ``attention_mask``, ``label``, ``idx``.
        tokenizer: pads the batches.
        settings: views, IG steps, Riemann rule, step chunk and top-K.
        key: stored with the cache.
        batch_size: examples per teacher pass.
        progress: show the progress bar.

    Returns:
        A :class:`TeacherCache`.
    """
    teacher.eval()
    columns = [c for c in CACHE_COLUMNS if c in dataset.column_names]
    loader = DataLoader(dataset.select_columns(columns), batch_size=batch_size,
                        collate_fn=DataCollatorWithPadding(tokenizer))
    logits, scores, lengths, indices = [], [], [], []
    for batch in tqdm(loader, desc="Teacher attributions (once)", unit="batch", disable=not progress):
        mask = batch["attention_mask"]
        result = frozen_token_scores(teacher, batch, batch.get("labels"), settings)
        per_token = result.scores.float().cpu().permute(0, 2, 1)  # (B, L, V)
        scores.append(per_token[mask.bool()])
        lengths.append(mask.sum(-1))
        logits.append(result.logits.float().cpu())
        indices.append(batch["idx"].cpu())
    lengths = torch.cat(lengths)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    return TeacherCache(torch.cat(logits), torch.cat(scores), offsets, torch.cat(indices).long(), key)


def load_or_compute_teacher_cache(
    cache_dir: str | os.PathLike,
    teacher: torch.nn.Module,
    dataset,
    tokenizer,
    settings: AttributionSettings,
    description: dict,
    *,
    write: bool = True,
    batch_size: int = 64,
    progress: bool = True,
) -> TeacherCache:
    """The teacher cache for this teacher, data and settings: read from ``cache_dir`` or computed and saved.

    Args:
        cache_dir: folder of cache files (next to the run).
        teacher, dataset, tokenizer, settings, batch_size, progress: as :func:`compute_teacher_cache`.
        description: where the data came from (task, split, subset, max length); part of the key.
        write: save a computed cache (only process 0 of several writes; the others read its file).

    Returns:
        A :class:`TeacherCache` whose key matches.
    """
    key = cache_key(teacher, dataset, settings, description)
    path = teacher_cache_file(cache_dir, key)
    cached = TeacherCache.load(path, key)
    if cached is not None:
        return cached
    cache = compute_teacher_cache(teacher, dataset, tokenizer, settings, key, batch_size, progress)
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
        cache.save(path)
    return cache
