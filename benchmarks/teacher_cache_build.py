"""Build time and size on disk of the teacher cache for SST-2 training sentences, with estimates for the
full SST-2 and MNLI training sets.

    KDVIZ_DATA_DIR=../shared/glue python benchmarks/teacher_cache_build.py [--subset 4000] [--teacher offline-minilm] \
        [--only adkd+alp]

The offline teacher (6 layers, 384 wide; a classifier head is added when it has none: the speed
does not depend on its weights) over a seeded draw of ``--subset`` SST-2 training sentences (the
same number as the study trains on by default; 0 for all 67,349), max length 128, sorted by length, batch
64, into a fresh cache folder, once per set of needs: KD (logits), ALP/PKD/CKD (logits and the
[CLS] vector of every layer), AD-KD + ALP (those and the token scores, m = 1, the gold view).
Then, on the adkd+alp entry, what a run pays to open a complete entry (median of 3 after a
warm-up): the key (hashing the teacher's weights and the tokenised data) and the checksum of every
part's files; and one epoch of batch-32 lookups in shuffled order (what training reads per step). Prints a table, and estimates for the full SST-2 training set and MNLI's 392,702 pairs
from the per-token build time and per-example size measured here (the mean MNLI pair length is an
assumption, printed with it).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from attribution_speed import timed
from kdviz.attribution import AttributionSettings
from kdviz.cache_store import file_checksum, format_size, list_entries
from kdviz.data import load_glue, tokenize_glue
from kdviz.loss_terms import CLS_STATES, LOGITS, TOKEN_SCORES
from kdviz.models import load_classifier
from kdviz.cache_key import cache_key
from kdviz.teacher_cache import load_or_build_teacher_cache

NEEDS = {"kd": frozenset({LOGITS}), "alp / pkd / ckd": frozenset({LOGITS, CLS_STATES}),
         "adkd+alp": frozenset({LOGITS, CLS_STATES, TOKEN_SCORES})}
MNLI_PAIRS, MNLI_MEAN_TOKENS = 392_702, 40  # the mean tokenised pair length is an assumption


def open_costs(teacher, train, tokenizer, needs, settings, folder) -> dict:
    """Seconds to open a complete entry, and the parts of it spent on the key and on the checksums."""
    (entry,) = list_entries(folder)
    files = [file for file in entry.path.iterdir() if file.suffix == ".npy"]
    return {"open": timed(lambda: load_or_build_teacher_cache(teacher, train, tokenizer, needs, settings,
                                                              {"task": "sst2"}, cache_dir=folder, progress=False), 3),
            "key": timed(lambda: cache_key(teacher, train, {"task": "sst2"}), 3),
            "checksums": timed(lambda: [file_checksum(file) for file in files], 3),
            "bytes": sum(file.stat().st_size for file in files)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subset", type=int, default=4000, help="training sentences (0: all)")
    parser.add_argument("--teacher", default="offline-minilm")
    parser.add_argument("--data-dir", default=os.environ.get("KDVIZ_DATA_DIR"))
    parser.add_argument("--only", choices=sorted(NEEDS), help="build only this set of needs")
    args = parser.parse_args()
    teacher, tokenizer = load_classifier(args.teacher, "sst2")
    full = tokenize_glue(load_glue("sst2", args.data_dir, splits=("train",)), tokenizer, "sst2", 128)["train"]
    full_tokens = sum(map(len, full["input_ids"]))
    train = full.shuffle(seed=42).select(range(args.subset)) if args.subset else full
    tokens = sum(map(len, train["input_ids"]))
    settings = AttributionSettings(views="gold", steps=1, top_k=teacher.config.hidden_size)
    print(f"SST-2 train: {len(train)} sentences, {tokens} tokens (mean {tokens / len(train):.1f}); "
          f"teacher {args.teacher}, {torch.get_num_threads()} CPU threads\n")
    print(f"{'needs':16} {'build s':>8} {'size':>9}  parts")
    rows = {}
    for name, needs in NEEDS.items():
        if args.only and name != args.only:
            continue
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            cache = load_or_build_teacher_cache(teacher, train, tokenizer, needs, settings, {"task": "sst2"},
                                                cache_dir=folder, progress=False)
            seconds = time.perf_counter() - start
            (entry,) = list_entries(folder)
            rows[name] = (seconds, entry.size)
            print(f"{name:16} {seconds:>8.1f} {format_size(entry.size):>9}  {', '.join(entry.parts)}", flush=True)
            if name == "adkd+alp":
                opened = open_costs(teacher, train, tokenizer, needs, settings, folder)
                order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
                idx = torch.tensor(train["idx"])[order]
                lengths = torch.tensor([sum(mask) for mask in train["attention_mask"]])[order]
                start = time.perf_counter()
                for batch, batch_lengths in zip(idx.split(32), lengths.split(32)):
                    mask = torch.arange(int(batch_lengths.max()))[None, :] < batch_lengths[:, None]
                    cache.lookup(batch, mask)
                lookup = time.perf_counter() - start
    print(f"\nOpening the complete adkd+alp entry ({format_size(opened['bytes'])}), median of 3: "
          f"{opened['open']:.2f} s in all, of which the key {opened['key']:.2f} s and the checksums "
          f"{opened['checksums']:.2f} s ({opened['bytes'] / opened['checksums'] / 1e9:.2f} GB/s)")
    print(f"One epoch of lookups (batch 32, shuffled, from the adkd+alp cache): {lookup:.2f} s "
          f"({1000 * lookup / len(idx.split(32)):.2f} ms a batch)")
    if args.only:
        return
    for name, (seconds, size) in rows.items():
        full_size = format_size(size / len(train) * len(full))
        print(f"Full SST-2 estimate, {name} needs ({len(full)} sentences, {full_tokens} tokens): build about "
              f"{seconds / tokens * full_tokens / 60:.0f} min here, size about {full_size}")
    seconds, size = rows["adkd+alp"]
    mnli_tokens = MNLI_PAIRS * MNLI_MEAN_TOKENS
    print(f"MNLI estimate (adkd+alp needs, 3 views; {MNLI_PAIRS} pairs, assumed mean {MNLI_MEAN_TOKENS} tokens): "
          f"build about {seconds / tokens * mnli_tokens / 60:.0f} min here (the 3 views share the pass), size about "
          f"{format_size(size / len(train) * MNLI_PAIRS)} for this teacher's width and depth")


if __name__ == "__main__":
    main()
