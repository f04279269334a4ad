"""Peak memory and time of a student attribution step with IG steps in chunks, against all steps at once.

Each setting runs in a process of its own (peak resident memory is per process): a 6-layer, 384-wide
student (the offline teacher's architecture, dropout on), a batch of random token ids, the AD-KD
attribution loss with the graph kept (``create_graph``) plus a loss on the logits, backward, twice.
``--reentrant`` runs the chunks with the reentrant checkpoint that kdviz used before (the version
DDP refused), for a comparison on the same machine.

    python benchmarks/chunked_ig_memory.py [--steps 8] [--chunk 2] [--batch 16] [--length 64] [--reentrant]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def one_setting(steps: int, chunk: int | None, batch: int, length: int, reentrant: bool) -> dict:
    import torch
    import torch.utils.checkpoint

    import kdviz.attribution as attribution
    from kdviz.models import load_classifier, offline_teacher_path

    if reentrant:
        checkpoint = torch.utils.checkpoint.checkpoint
        attribution.torch.utils.checkpoint.checkpoint = lambda function, *args, use_reentrant=None, **kwargs: \
            checkpoint(function, *args, use_reentrant=True, **kwargs)
    torch.manual_seed(0)
    model, _ = load_classifier(offline_teacher_path(), "sst2", attention="eager")
    model.train()
    inputs = {"input_ids": torch.randint(1000, 5000, (batch, length)),
              "attention_mask": torch.ones(batch, length, dtype=torch.long),
              "token_type_ids": torch.zeros(batch, length, dtype=torch.long)}
    labels = torch.randint(0, 2, (batch,))
    settings = attribution.AttributionSettings(steps=steps, step_chunk=chunk)
    start = time.perf_counter()
    for _ in range(2):
        model.zero_grad()
        result = attribution.integrated_gradients(model, inputs, labels, settings, create_graph=True)
        scores = attribution.token_scores(result.attributions, inputs["attention_mask"])
        (scores.pow(2).sum() + result.logits.pow(2).mean()).backward()
    return {"seconds": (time.perf_counter() - start) / 2,
            "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}  # ru_maxrss is in kB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--chunk", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--reentrant", action="store_true")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_setting(**json.loads(args.one))))
        return
    settings = {"all steps at once": (None, False), f"chunks of {args.chunk}": (args.chunk, False)}
    if args.reentrant:
        settings[f"chunks of {args.chunk}, reentrant"] = (args.chunk, True)
    print(f"m = {args.steps}, batch {args.batch} x {args.length} tokens, 6-layer 384-wide student, one process each")
    print(f"{'setting':28} {'s/step':>7} {'peak GB':>8} {'memory ratio':>13} {'time ratio':>11}")
    rows = {}
    for name, (chunk, reentrant) in settings.items():
        one = dict(steps=args.steps, chunk=chunk, batch=args.batch, length=args.length, reentrant=reentrant)
        done = subprocess.run([sys.executable, __file__, "--one", json.dumps(one)], capture_output=True, text=True,
                              check=True)
        rows[name] = json.loads(done.stdout.strip().splitlines()[-1])
        base = rows["all steps at once"]
        print(f"{name:28} {rows[name]['seconds']:>7.2f} {rows[name]['peak_gb']:>8.2f} "
              f"{rows[name]['peak_gb'] / base['peak_gb']:>13.2f} {rows[name]['seconds'] / base['seconds']:>11.2f}",
              flush=True)


if __name__ == "__main__":
    main()
