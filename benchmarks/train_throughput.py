"""Training throughput (examples/s) and peak memory of each method, with the teacher cache and with the
live teacher, and the ratios: to plain KD, and cached to live.

    python benchmarks/train_throughput.py [--sizes offline bert-base] [--methods kd pkd ...]
        [--teachers cached live] [--steps 4] [--out benchmarks/results/throughput]

Sizes: ``bert-base`` (random 12-layer, 768-wide teacher, 6-layer student) and ``offline`` (random
6-layer, 384-wide teacher shaped like the offline MiniLM, 3-layer student). Batch 32, every
sequence 128 real tokens, SST-2's preset per method (``kd``, ``pkd``, ``alp``, ``adkd`` with
m = 1, m = 8 and m = 8 in chunks of 2 steps, ``adkd+alp``). ``cached``: the teacher's outputs are
read from a teacher cache built before timing (not timed); ``live``: the teacher runs every step.
Each (size, method, teacher) runs in its own process: ``DistillationTrainer.train`` for one
warm-up step and ``--steps`` timed steps (forward, loss, backward, clipping, AdamW); peak memory
is ``torch.cuda.max_memory_allocated`` on a GPU (its automatic precision there) and the process's
peak resident set on a CPU (Linux's ``VmHWM``, reset after the teacher cache is built, so both
count the training steps only). Writes ``<out>.csv`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kdviz.study import append_row

SIZES = {"bert-base": (12, 768, 12, 3072, 6), "offline": (6, 384, 12, 1536, 3)}
METHODS = {"kd": ("kd", 1, None), "pkd": ("pkd", 1, None), "alp": ("alp", 1, None), "adkd m=1": ("adkd", 1, None),
           "adkd m=8": ("adkd", 8, None), "adkd m=8/2": ("adkd", 8, 2), "adkd+alp": ("adkd+alp", 1, None)}
"""name -> (preset, IG steps m, IG steps per chunk)."""
TEACHERS = ("cached", "live")
BATCH, LENGTH = 32, 128
FIELDS = ("size", "method", "teacher", "device", "views", "examples_per_s", "peak_memory_gib", "ratio_to_kd",
          "cached_over_live")


def measure(size: str, method: str, teacher_mode: str, steps: int) -> dict:
    """One (size, method, teacher) measurement in this process."""
    import datasets
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast, TrainerCallback

    from kdviz.config import DistillConfig
    from kdviz.distill import training_arguments_for
    from kdviz.precision import describe_precision
    from kdviz.distill_trainer import DistillationTrainer
    from kdviz.glue_trainer import glue_trainer_inputs
    from kdviz.models import attention_for, build_student
    from kdviz.objective import DistillationModel, DistillationObjective
    from kdviz.recipes import preset
    from kdviz.teacher_cache import load_or_build_teacher_cache
    from kdviz.teacher_outputs import TeacherOutputSource

    layers, hidden, heads, intermediate, student_layers = SIZES[size]
    name, ig_steps, chunk = METHODS[method]
    gpu = torch.cuda.is_available()
    torch.manual_seed(0)
    teacher = BertForSequenceClassification._from_config(
        BertConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                   intermediate_size=intermediate, num_labels=2), attn_implementation="sdpa")
    teacher = teacher.eval().requires_grad_(False).to("cuda" if gpu else "cpu")
    config = DistillConfig.from_dict({**preset(f"{name}/sst2"), "teacher": "random", "ig_steps": ig_steps,
                                      "ig_step_chunk": chunk, "batch_size": BATCH,
                                      "probe_size": 0})  # precision auto: bf16/fp16 on GPUs
    student = build_student(teacher, student_layers, attention=attention_for(config.beta > 0))
    rows = BATCH * (steps + 1)
    generator = torch.Generator().manual_seed(0)
    split = datasets.Dataset.from_dict({
        "input_ids": torch.randint(1000, 30000, (rows, LENGTH), generator=generator).tolist(),
        "token_type_ids": [[0] * LENGTH] * rows, "attention_mask": [[1] * LENGTH] * rows,
        "label": torch.randint(0, 2, (rows,), generator=generator).tolist(), "idx": list(range(rows))})
    encoded = datasets.DatasetDict({"train": split, "validation": split.select(range(BATCH))})
    tokenizer = BertTokenizerFast(vocab_file=_vocab_file())
    settings = config.attribution_settings(num_labels=2)
    model = DistillationModel(student, DistillationObjective.from_config(config, student.config, teacher.config),
                              settings)
    cache_dir = tempfile.TemporaryDirectory()
    cache = None
    if teacher_mode == "cached":
        cache = load_or_build_teacher_cache(teacher, split, tokenizer, model.objective.teacher_needs, settings, {},
                                            cache_dir=cache_dir.name, progress=False)
        teacher.cpu()

    class StepClock(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []

        def on_step_end(self, args, state, control, **kwargs):
            if gpu:
                torch.cuda.synchronize()
            self.times.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as folder:
        args = training_arguments_for(config, Path(folder), max_steps=steps + 1, eval_strategy="no",
                                      save_strategy="no", load_best_model_at_end=False, disable_tqdm=True,
                                      logging_steps=10_000)
        trainer = DistillationTrainer(model=model, args=args, processing_class=tokenizer,
                                      teacher_outputs=TeacherOutputSource(teacher, settings, cache),
                                      **glue_trainer_inputs(encoded, "sst2"))
        clock = StepClock()
        trainer.add_callback(clock)
        if gpu:
            torch.cuda.reset_peak_memory_stats()
        else:
            reset_peak_resident_set()
        trainer.train()
    seconds = clock.times[-1] - clock.times[0]
    peak = torch.cuda.max_memory_allocated() if gpu else peak_resident_set()
    device = (torch.cuda.get_device_name(0) if gpu else f"CPU ({torch.get_num_threads()} threads)") + \
        f" {describe_precision(config.precision)}"
    cache_dir.cleanup()
    return {"size": size, "method": method, "teacher": teacher_mode, "device": device, "views": settings.views,
            "examples_per_s": round(steps * BATCH / seconds, 2), "peak_memory_gib": round(peak / 2**30, 2)}


def measure_in_subprocess(size: str, method: str, teacher_mode: str, steps: int) -> dict:
    """:func:`measure` in a fresh process; a process that dies (the kernel's out-of-memory killer on
    a CPU, an out-of-memory error on a GPU) gives a row that says so instead of a speed."""
    done = subprocess.run([sys.executable, __file__, "--one", size, method, teacher_mode, "--steps", str(steps)],
                          capture_output=True, text=True)
    if done.returncode == 0:
        return json.loads(done.stdout.strip().splitlines()[-1])
    last_error_line = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
    reason = "killed by signal 9 (out of memory)" if done.returncode == -9 else last_error_line
    return {**dict.fromkeys(FIELDS, ""), "size": size, "method": method, "teacher": teacher_mode,
            "device": f"failed: {reason}"}


def reset_peak_resident_set() -> None:
    """Restart the kernel's peak-resident-set count of this process (Linux 4.0 and later)."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def peak_resident_set() -> int:
    """This process's peak resident set since the last reset, in bytes."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024


def _vocab_file() -> str:
    """A bert-base-uncased vocabulary (from the offline teacher package) for padding only."""
    from kdviz.models import offline_teacher_path

    return str(Path(offline_teacher_path()) / "vocab.txt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--teachers", nargs="+", default=list(TEACHERS), choices=TEACHERS)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--out", default="benchmarks/results/throughput")
    parser.add_argument("--one", nargs=3, metavar=("SIZE", "METHOD", "TEACHER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one, args.steps)))
        return
    out = Path(args.out).with_suffix(".csv")
    out.unlink(missing_ok=True)
    results = []
    for size in args.sizes:
        for method in args.methods:
            for teacher in args.teachers:
                row = measure_in_subprocess(size, method, teacher, args.steps)
                kd = _speed(results, size, "kd", teacher)
                live = _speed(results, size, method, "live") if teacher == "cached" else \
                    _speed(results, size, method, "cached")
                speed = row["examples_per_s"]
                row["ratio_to_kd"] = round(speed / kd, 3) if speed and kd else ("1.0" if method == "kd" else "")
                cached, live = (speed, live) if teacher == "cached" else (live, speed)
                row["cached_over_live"] = round(cached / live, 3) if cached and live else ""
                results.append(row)
                append_row(out, row, fields=FIELDS)  # row by row: a long sweep cut off keeps its rows
                print(row, flush=True)
    print(f"\n{'size':10} {'method':11} {'teacher':8} {'examples/s':>11} {'/ kd':>6} {'cached/live':>12} "
          f"{'peak GiB':>9}  device")
    for r in results:
        print(f"{r['size']:10} {r['method']:11} {r['teacher']:8} {r['examples_per_s']:>11} {r['ratio_to_kd']:>6} "
              f"{r['cached_over_live']:>12} {r['peak_memory_gib']:>9}  {r['device']}")


def _speed(results: list[dict], size: str, method: str, teacher: str) -> float | None:
    return next((r["examples_per_s"] for r in results
                 if (r["size"], r["method"], r["teacher"]) == (size, method, teacher) and r["examples_per_s"]), None)


if __name__ == "__main__":
    main()
