"""The papers' own numbers (GLUE dev), to print beside a study's results for reference.

Copied from the project's methods notes (``METHODS.md``, section 3 and ALP-KD's averages); they
are for BERT-base teachers, so offline runs with a 6-layer MiniLM teacher are not expected to
reach them. Scores are x100; MRPC is F1, QQP accuracy, STS-B Pearson, CoLA Matthews correlation.
"""

from __future__ import annotations

SIX_LAYER_REFERENCE: dict[str, dict[str, float]] = {
    "BERT-base teacher (DistilBERT paper)": {
        "cola": 56.3, "mnli": 84.7, "sst2": 92.7, "qnli": 91.8, "mrpc": 88.6, "qqp": 89.6, "rte": 69.3, "stsb": 89.0},
    "DistilBERT-6": {
        "cola": 51.3, "mnli": 82.1, "sst2": 91.3, "qnli": 89.2, "mrpc": 87.5, "qqp": 88.5, "rte": 59.9, "stsb": 86.9},
    "AD-KD, 6 layers (as reported)": {
        "cola": 58.3, "mnli": 83.4, "sst2": 91.9, "qnli": 91.2, "mrpc": 91.2, "qqp": 91.4, "rte": 70.9, "stsb": 89.2},
}

ALP_KD_GLUE_AVERAGE: dict[str, dict[str, float]] = {
    "4-layer students": {"alp": 77.01, "best baseline": 76.44},
    "2-layer students": {"alp": 67.08, "best baseline": 66.1},
}


def reference_table(tasks: list[str]) -> str:
    """The six-layer reference rows for ``tasks`` as a markdown table."""
    lines = ["| paper row | " + " | ".join(tasks) + " |", "|---|" + "---|" * len(tasks)]
    for name, scores in SIX_LAYER_REFERENCE.items():
        lines.append(f"| {name} | " + " | ".join(f"{scores[t]:.1f}" if t in scores else "" for t in tasks) + " |")
    lines.append("")
    lines.append("| ALP-KD, GLUE average | ALP | best baseline |")
    lines.append("|---|---|---|")
    for depth, scores in ALP_KD_GLUE_AVERAGE.items():
        lines.append(f"| {depth} | {scores['alp']:.2f} | {scores['best baseline']:.2f} |")
    return "\n".join(lines) + "\n"
