"""MNLI's three per-class views on the student: one forward pass for all views vs a copy of the batch per view.

    python benchmarks/views_one_pass.py [--sizes offline bert-base] [--repeats 3]

A student attribution step (IG with m = 1 and the graph kept, AD-KD's attribution loss against
fixed teacher scores, backward into every parameter) on a random student of the given size (3
layers of 384 for ``offline``, 6 of 768 for ``bert-base``), batch 32 x 128 real tokens, 3 labels.
``one pass``: kdviz's :func:`~kdviz.attribution.integrated_gradients` with ``views="classes"``
(one forward pass; one gradient per view through it, as the released code does). ``three
copies``: the batch repeated once per class, each copy attributed for its class (how kdviz did
it before): the same attributions in eval mode, three times the forward pass. The two are timed
alternately, ``--repeats`` times each after a warm-up, in one process; the median is reported.
Prints a table and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import BertConfig, BertForSequenceClassification

from kdviz.attribution import AttributionSettings, integrated_gradients, token_scores
from kdviz.losses import attribution_loss

SIZES = {"offline": (3, 384, 12, 1536), "bert-base": (6, 768, 12, 3072)}
BATCH, LENGTH, LABELS = 32, 128, 3


def student_of(size: str) -> BertForSequenceClassification:
    layers, hidden, heads, intermediate = SIZES[size]
    torch.manual_seed(0)
    config = BertConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=intermediate, num_labels=LABELS)
    return BertForSequenceClassification._from_config(config, attn_implementation="eager").train()


def one_pass(student, inputs, teacher):
    result = integrated_gradients(student, inputs, settings=AttributionSettings(views="classes"), create_graph=True)
    return attribution_loss(teacher, token_scores(result.attributions, inputs["attention_mask"]))


def three_copies(student, inputs, teacher):
    copies = {name: value.repeat(LABELS, 1) for name, value in inputs.items()}
    labels = torch.arange(LABELS).repeat_interleave(BATCH)  # copy c is attributed for class c
    result = integrated_gradients(student, copies, labels, AttributionSettings(views="gold"), create_graph=True)
    attributions = result.attributions.view(LABELS, BATCH, *result.attributions.shape[2:]).transpose(0, 1)
    return attribution_loss(teacher, token_scores(attributions, inputs["attention_mask"]))


def timed(step, student, inputs, teacher) -> float:
    student.zero_grad()
    start = time.perf_counter()
    step(student, inputs, teacher).backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["offline"], choices=list(SIZES))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{'size':10} {'one pass s':>11} {'three copies s':>15} {'speed-up':>9}")
    for size in args.sizes:
        student = student_of(size)
        generator = torch.Generator().manual_seed(0)
        inputs = {"input_ids": torch.randint(1000, 30000, (BATCH, LENGTH), generator=generator),
                  "attention_mask": torch.ones(BATCH, LENGTH, dtype=torch.long),
                  "token_type_ids": torch.zeros(BATCH, LENGTH, dtype=torch.long)}
        teacher = token_scores(torch.rand(BATCH, LABELS, LENGTH, 8, generator=generator), inputs["attention_mask"])
        times = {one_pass: [], three_copies: []}
        for step in times:  # warm-up
            timed(step, student, inputs, teacher)
        for _ in range(args.repeats):
            for step in times:
                times[step].append(timed(step, student, inputs, teacher))
        single, copied = statistics.median(times[one_pass]), statistics.median(times[three_copies])
        print(f"{size:10} {single:>11.2f} {copied:>15.2f} {copied / single:>8.2f}x", flush=True)


if __name__ == "__main__":
    main()
