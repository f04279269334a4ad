"""Everything the frozen teacher gives the loss terms, computed once per teacher and training set, kept on disk.

The teacher is frozen and in eval mode, so its outputs for a training example never change: they
are computed once, batched, and every run of every method and seed on the same teacher and data
reads them (the shared cache folder of :mod:`kdviz.cache_store`). An entry's key hashes everything
that decides what the teacher computes (:mod:`kdviz.cache_key`): its weights, its model class and config
(label names and paths aside), its attention implementation, the installed torch and transformers
versions, the tokenised data (ids, segments, masks, labels, ``idx``) and a description of where the
data came from (task, split, subset, max length). An entry holds parts, each built when a run first
needs it and read memory-mapped, so a cache of MNLI's or QQP's size need not fit in memory:

- ``outputs``: ``idx`` (N,), each example's token offsets (N + 1,), the logits (N, C) in float32;
- ``cls_states``: the [CLS] vector of every layer, embeddings included (N, layers + 1, H): ALP,
  PKD and CKD read these;
- ``token_states``: every real token's vectors of every layer (T, layers + 1, H), only when
  ``alp_representation="tokens"`` asks for them;
- ``scores-<settings>``: AD-KD's normalised token scores per view (T, V), one part per attribution
  setting (views, IG steps, rule, top-K) and version of kdviz's attribution code.

Per-token values are stored for real tokens only, in order, and placed back by each batch's
attention mask. A tokenizer that pads on the left is refused (BERT reads [CLS] at position 0).

Hidden states and token scores are stored in float16 (a relative error below 2**-11, about 5e-4;
``tests/test_teacher_cache.py`` measures what it does to each loss term), unless a value is beyond
float16's range, in which case that part is stored in float32.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import DataCollatorWithPadding

from kdviz.attribution import AttributionSettings, view_names
from kdviz.cache_key import cache_key, scores_part
from kdviz.cache_store import FIXES, CacheEntry, check_cache_dir, format_size
from kdviz.frozen_attribution import frozen_token_scores
from kdviz.loss_terms import CLS_STATES, HIDDEN_STATES, LOGITS, TOKEN_SCORES, ModelOutputs
from kdviz.tasks import MODEL_INPUTS, TOKENIZED_COLUMNS

KIND = "teacher"
"""The cache folder's subfolder of teacher entries."""
OUTPUTS, CLS_PART, TOKENS_PART = "outputs", "cls_states", "token_states"
FLOAT16_MAX = float(np.finfo(np.float16).max)


def check_padding_side(tokenizer) -> None:
    """Refuse a tokenizer that pads on the left.

    Raises:
        ValueError: BERT reads [CLS] at position 0, so left padding gives wrong classifiers and states.
    """
    side = getattr(tokenizer, "padding_side", "right")
    if side != "right":
        raise ValueError(f"The tokenizer pads on the {side} (padding_side={side!r}), but BERT's classifier and "
                         f"kdviz's [CLS] terms read position 0: set tokenizer.padding_side = 'right' (or "
                         f"\"padding_side\": \"right\" in the model folder's tokenizer_config.json).")


def parts_for(needs: frozenset[str], settings: AttributionSettings) -> list[str]:
    """The parts an entry must hold to answer ``needs`` (see the module docstring)."""
    parts = [OUTPUTS]
    if HIDDEN_STATES in needs:
        parts.append(TOKENS_PART)
    elif CLS_STATES in needs:
        parts.append(CLS_PART)
    if TOKEN_SCORES in needs:
        parts.append(scores_part(settings))
    return parts


class TeacherCache:
    """The teacher's cached outputs per training example, looked up by the data set's ``idx``.

    Args:
        arrays: ``idx`` (N,), ``offsets`` (N + 1,), ``logits`` (N, C), and optionally
            ``cls_states`` (N, layers + 1, H), ``token_states`` (T, layers + 1, H) and ``scores``
            (T, V); NumPy arrays, usually memory-mapped.
        key: the entry's key.
        path: the entry's folder (None when it was computed without being saved).
    """

    def __init__(self, arrays: dict[str, np.ndarray], key: str, path=None):
        self.arrays, self.key, self.path = arrays, key, path
        idx = torch.from_numpy(np.array(arrays["idx"], dtype=np.int64))
        self.offsets = torch.from_numpy(np.array(arrays["offsets"], dtype=np.int64))
        self._row = torch.full((int(idx.max()) + 1 if len(idx) else 0,), -1, dtype=torch.long)
        self._row[idx] = torch.arange(len(idx))

    def __len__(self) -> int:
        return len(self.arrays["idx"])

    @property
    def provides(self) -> frozenset[str]:
        """What :meth:`lookup` returns (``LOGITS``, ``TOKEN_SCORES``, ``CLS_STATES``, ``HIDDEN_STATES``)."""
        have = {LOGITS}
        have |= {TOKEN_SCORES} if "scores" in self.arrays else set()
        have |= {CLS_STATES} if "cls_states" in self.arrays else set()
        have |= {CLS_STATES, HIDDEN_STATES} if "token_states" in self.arrays else set()
        return frozenset(have)

    @property
    def size(self) -> int:
        """Bytes of the arrays it reads."""
        return sum(array.nbytes for array in self.arrays.values())

    def _per_token(self, name: str, rows: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """(B, L, ...) values of the rows' real tokens placed where ``real`` (B, L) is True, zero elsewhere."""
        starts = self.offsets[rows]
        positions = (starts[:, None] + real.long().cumsum(-1) - 1)[real]  # the k-th real token reads value k
        values = torch.from_numpy(np.asarray(self.arrays[name][positions.numpy()])).float()
        out = values.new_zeros(*real.shape, *values.shape[1:])
        out[real] = values
        return out

    def lookup(self, idx: torch.Tensor, attention_mask: torch.Tensor) -> ModelOutputs:
        """The cached teacher outputs of a batch, on the CPU in float32.

        Args:
            idx: (B,) the examples' ``idx`` values.
            attention_mask: (B, L) the batch's mask; per-token values go to its real tokens, in order.

        Returns:
            :class:`~kdviz.loss_terms.ModelOutputs`: logits (B, C); token scores (B, V, L), zero on
            padding, when cached; hidden states as layers + 1 tensors of shape (B, L, H) when every
            token's are cached, else (B, 1, H) holding the [CLS] position only, when those are.

        Raises:
            KeyError: an example that is not in the cache (another data set or subset), or whose
                number of real tokens differs from the cached one (other tokenised data).
        """
        idx, real = idx.cpu().long(), attention_mask.cpu().bool()
        if len(idx) and (idx.max() >= len(self._row) or idx.min() < 0 or (self._row[idx]).min() < 0):
            raise KeyError("A batch holds examples that are not in the teacher cache (another data set or subset?).")
        rows = self._row[idx]
        if not torch.equal(real.sum(-1), self.offsets[rows + 1] - self.offsets[rows]):
            raise KeyError("A batch's examples have other token counts than the teacher cache holds for them "
                           "(tokenised with another tokenizer or max length?).")
        logits = torch.from_numpy(np.asarray(self.arrays["logits"][rows.numpy()]))
        scores = self._per_token("scores", rows, real).permute(0, 2, 1) if "scores" in self.arrays else None
        hidden = None
        if "token_states" in self.arrays:
            hidden = self._per_token("token_states", rows, real).unbind(dim=2)
        elif "cls_states" in self.arrays:
            states = torch.from_numpy(np.asarray(self.arrays["cls_states"][rows.numpy()])).float()
            hidden = states.unsqueeze(1).unbind(dim=2)
        return ModelOutputs(logits, scores, hidden)


@dataclass
class _Plan:
    """What one pass over the data computes and where each result goes."""

    parts: list[str]
    settings: AttributionSettings
    states_dtype: np.dtype


class _BeyondFloat16(Exception):
    """A hidden state does not fit in float16: store them in float32."""


def _part_specs(part: str, num_examples: int, num_tokens: int, num_labels: int, layers: int, hidden: int,
                num_views: int, states_dtype) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    if part == OUTPUTS:
        return {"idx": ((num_examples,), np.int64), "offsets": ((num_examples + 1,), np.int64),
                "logits": ((num_examples, num_labels), np.float32)}
    if part == CLS_PART:
        return {"cls_states": ((num_examples, layers, hidden), states_dtype)}
    if part == TOKENS_PART:
        return {"token_states": ((num_tokens, layers, hidden), states_dtype)}
    return {"scores": ((num_tokens, num_views), np.float16)}


def _for_storage(states: torch.Tensor, dtype) -> np.ndarray:
    """Hidden states as a NumPy array of the storage dtype (refusing float16 for values beyond its range)."""
    states = states.float().cpu().numpy()
    if dtype == np.float16 and np.abs(states).max(initial=0) > FLOAT16_MAX:
        raise _BeyondFloat16
    return states.astype(dtype)


def _fill(arrays: dict[str, np.ndarray], teacher, dataset, tokenizer, plan: _Plan, batch_size: int,
          progress: bool) -> None:
    """One batched pass of the teacher over ``dataset``, writing the plan's parts into ``arrays``."""
    columns = [c for c in TOKENIZED_COLUMNS if c in dataset.column_names]
    loader = DataLoader(dataset.select_columns(columns), batch_size=batch_size,
                        collate_fn=DataCollatorWithPadding(tokenizer))
    wants_scores = any(part.startswith("scores-") for part in plan.parts)
    wants_states = CLS_PART in plan.parts or TOKENS_PART in plan.parts
    device = next(teacher.parameters()).device
    row = token = 0
    arrays["offsets"][0] = 0
    for batch in tqdm(loader, desc="Teacher outputs (once)", unit="batch", disable=not progress):
        inputs = {k: v.to(device) for k, v in batch.items() if k in MODEL_INPUTS}
        mask = batch["attention_mask"].bool()
        if wants_scores:
            result = frozen_token_scores(teacher, inputs, batch.get("labels"), plan.settings,
                                         output_hidden_states=wants_states)
            logits, scores, hidden = result.logits, result.scores, result.hidden_states
        else:
            with torch.no_grad():
                out = teacher(**inputs, output_hidden_states=wants_states)
            logits, scores, hidden = out.logits, None, out.hidden_states
        size, tokens = len(mask), int(mask.sum())
        arrays["idx"][row:row + size] = batch["idx"].numpy()
        arrays["offsets"][row + 1:row + size + 1] = token + mask.sum(-1).cumsum(0).numpy()
        arrays["logits"][row:row + size] = logits.float().cpu().numpy()
        if scores is not None:
            arrays["scores"][token:token + tokens] = scores.float().cpu().permute(0, 2, 1)[mask].numpy()
        if wants_states:
            stacked = torch.stack(hidden, dim=2)  # (B, L, layers + 1, H)
            if "cls_states" in arrays:
                arrays["cls_states"][row:row + size] = _for_storage(stacked[:, 0], plan.states_dtype)
            if "token_states" in arrays:
                arrays["token_states"][token:token + tokens] = _for_storage(stacked[mask.to(stacked.device)],
                                                                            plan.states_dtype)
        row, token = row + size, token + tokens


def _build(entry: CacheEntry | None, parts: list[str], teacher, dataset, tokenizer, settings, description: dict,
           batch_size: int, progress: bool, states_dtype) -> dict[str, dict[str, np.ndarray]]:
    """Compute ``parts`` in one pass; into ``entry``'s files when given, else into memory."""
    lengths = [sum(mask) for mask in dataset["attention_mask"]]
    # shortest first: batches of similar lengths carry little padding (rows are found by idx, in any order)
    dataset = dataset.select(np.argsort(lengths, kind="stable"))
    config = teacher.config
    shape = dict(num_examples=len(dataset), num_tokens=int(sum(lengths)), num_labels=config.num_labels,
                 layers=config.num_hidden_layers + 1, hidden=config.hidden_size,
                 num_views=len(view_names(settings.views, config.num_labels)), states_dtype=states_dtype)
    specs = {part: _part_specs(part, **shape) for part in parts}
    with contextlib.ExitStack() as stack:
        if entry is None:
            by_part = {part: {name: np.zeros(s, dtype=d) for name, (s, d) in spec.items()}
                       for part, spec in specs.items()}
        else:
            by_part = {part: stack.enter_context(entry.write_part(part, spec, description))
                       for part, spec in specs.items()}
        arrays = {name: array for part_arrays in by_part.values() for name, array in part_arrays.items()}
        if OUTPUTS not in parts:  # still written by the pass; only kept where asked for
            arrays.update({name: np.zeros(s, dtype=d) for name, (s, d) in _part_specs(OUTPUTS, **shape).items()})
        _fill(arrays, teacher, dataset, tokenizer, _Plan(parts, settings, states_dtype), batch_size, progress)
    return by_part


def load_or_build_teacher_cache(
    teacher: torch.nn.Module,
    dataset,
    tokenizer,
    needs: frozenset[str],
    settings: AttributionSettings,
    description: dict,
    *,
    cache_dir: str | os.PathLike | None = None,
    write: bool = True,
    batch_size: int = 64,
    progress: bool = True,
) -> TeacherCache | None:
    """The teacher's outputs that ``needs`` asks for, for every example of ``dataset``: read from the
    cache folder, with any missing part computed in one pass of the teacher and saved.

    A part that cannot be read as it is (cut off, damaged, of another key) is rebuilt. A read-only
    cache folder still serves its complete parts; a missing one is then computed in memory for this
    run only, with a warning that says so.

    Args:
        teacher: the frozen teacher (eval mode; any device).
        dataset: tokenised split with ``input_ids``, ``attention_mask``, ``label``, ``idx``.
        tokenizer: pads the batches (on the right).
        needs: what the loss terms read from the teacher (``DistillationObjective.teacher_needs``).
        settings: the teacher's attribution settings (views, steps, rule, top-K; used for token scores).
        description: where the data came from (task, split, subset, max length); part of the key.
            Its ``"teacher"`` item, when present, only labels the entry (the weights are hashed).
        cache_dir: the cache folder; None for ``$KDVIZ_CACHE`` or the user's cache folder.
        write: save what is computed (only process 0 of several writes; the others read its files).
        batch_size: examples per teacher pass.
        progress: show a progress bar and where the cache is.

    Returns:
        A :class:`TeacherCache` (None when ``needs`` is empty: nothing to cache).

    Raises:
        ValueError: a tokenizer that pads on the left.
        CacheFolderError: the cache folder is a file, cannot be created, or has no space for a part.
    """
    if not needs:
        return None
    check_padding_side(tokenizer)
    root = check_cache_dir(cache_dir)
    label = {"teacher": description.get("teacher", "")}
    description = {k: v for k, v in description.items() if k != "teacher"}
    key = cache_key(teacher, dataset, description)
    entry = CacheEntry(root / KIND / key[:16], key)
    wanted = parts_for(needs, settings)
    found = {part: entry.read_part(part) for part in wanted}
    missing = [part for part, arrays in found.items() if arrays is None]
    save = write and (not missing or entry.writable())
    if missing:
        if write and not save:
            warnings.warn(f"The teacher cache folder {str(root)!r} is read-only: the teacher's {', '.join(missing)} "
                          f"are computed in memory for this run and not saved. To keep them, {FIXES}.", stacklevel=2)
        build = lambda dtype: _build(entry if save else None, missing, teacher.eval(), dataset, tokenizer, settings,
                                     {**label, **description}, batch_size, progress, dtype)
        try:
            built = build(np.float16)
        except _BeyondFloat16:
            built = build(np.float32)
        found.update(built)  # saved parts are these arrays' files, already renamed into place
    arrays = {name: array for part_arrays in found.values() for name, array in part_arrays.items()}
    cache = TeacherCache(arrays, key, entry.path if save else None)
    if progress:
        print(f"Teacher cache {key[:16]}: {', '.join(wanted)} ({format_size(cache.size)})"
              f"{' in ' + str(entry.path) if save else ''}")
    return cache
