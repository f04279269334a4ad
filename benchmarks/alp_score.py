"""How peaked ALP's attention over teacher layers is under each score scale (``sqrt_h`` vs ``unscaled``).

    KDVIZ_DATA_DIR=../shared/glue python benchmarks/alp_score.py --teacher runs/reproduce/teachers/sst2

On real states (the study's fine-tuned offline teacher, 6 layers, 384 wide; a 2-layer student built
from its layers 3 and 6 as the study's students start; 256 SST-2 dev sentences), each score scale's
weights alpha (student layer x teacher layer), their mean entropy (nats; uniform over 6 layers is
log 6 = 1.79) and mean top-2 gap (1 = one-hot), and the [CLS] vector norm of each teacher layer (the
unscaled dot product favours the largest-norm layer). Writes ``benchmarks/results/alp_score.md``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from kdviz.data import load_glue
from kdviz.loss_terms import attention_spread
from kdviz.models import build_student, load_teacher
from kdviz.notebook import accelerator
from kdviz.projection import SCORES, LayerProjection


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True, help="a teacher fine-tuned on SST-2")
    parser.add_argument("--data-dir", default=os.environ.get("KDVIZ_DATA_DIR"))
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--student-layers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/alp_score.md")
    args = parser.parse_args()

    teacher, tokenizer = load_teacher(args.teacher, "sst2")
    teacher = teacher.to(accelerator())
    student = build_student(teacher, args.student_layers).eval()
    sentences = list(load_glue("sst2", args.data_dir, splits=("validation",), eval_subset=args.examples,
                               seed=42)["validation"]["sentence"])
    batch = tokenizer(sentences, padding=True, truncation=True, max_length=128, return_tensors="pt").to(teacher.device)
    with torch.no_grad():
        teacher_states = teacher(**batch, output_hidden_states=True).hidden_states
        student_states = student(**batch, output_hidden_states=True).hidden_states
    norms = [teacher_states[j][:, 0].norm(dim=-1).mean().item() for j in range(1, len(teacher_states))]

    lines = [f"ALP weights at the start of training: {len(sentences)} SST-2 dev sentences, "
             f"{args.student_layers}-layer student from the teacher's skip layers, [CLS] vectors.", "",
             "teacher layer [CLS] norms (mean): " + ", ".join(f"{n:.2f}" for n in norms), "",
             "| score | entropy (nats) | top-2 gap | mean alpha per student layer (teacher layers 1..N) |",
             "|---|---|---|---|"]
    hidden = teacher.config.hidden_size
    for score in SCORES:
        projection = LayerProjection(args.student_layers, teacher.config.num_hidden_layers, hidden, hidden,
                                     score=score).to(teacher.device)
        with torch.no_grad():
            alpha = projection(student_states, teacher_states).alpha
        spread = attention_spread(alpha)
        rows = "; ".join("[" + ", ".join(f"{a:.2f}" for a in row) + "]" for row in alpha.mean(dim=0).cpu().tolist())
        lines.append(f"| {score} | {spread['alp_entropy']:.3f} | {spread['alp_top2_gap']:.3f} | {rows} |")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
