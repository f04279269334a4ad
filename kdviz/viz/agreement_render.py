"""Pure rendering of several runs' rationale agreement over training as an HTML table."""

from __future__ import annotations

import html
from typing import Mapping, Sequence

from kdviz.agreement import TOP_K
from kdviz.viz.colours import cell_style, legend_html

MEASURE_NAMES = {"cosine": "cosine", "spearman": "Spearman", "top_k_overlap": f"top-{TOP_K} overlap"}
_FONT = "font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px;"
_CELL = "padding: 2px 6px; text-align: right; border-radius: 3px;"


def agreement_table_html(curves: Mapping[str, Sequence[dict]], measure: str = "cosine", *,
                         title: str | None = None, floors: Mapping[str, dict | None] | None = None) -> str:
    """One row per run, one column per logged step (step 0: the untrained student), the run's agreement
    with its teacher in each cell, and a last column with a flat student's agreement (the floor).

    Args:
        curves: run label -> its agreement records (``Run.agreement``).
        measure: ``cosine``, ``spearman`` or ``top_k_overlap``.
        title: caption.
        floors: run label -> a flat student's agreement (``Run.agreement_uniform``; None where the run
            did not record it); no column when not given.

    Returns:
        A self-contained HTML fragment (inline CSS, no script). Colours run from the lowest value
        shown (white) to the highest (full), so the table's differences are visible; the legend
        gives that range.
    """
    if measure not in MEASURE_NAMES:
        raise ValueError(f"Unknown agreement measure {measure!r}; choose from {list(MEASURE_NAMES)}.")
    steps = sorted({record["step"] for records in curves.values() for record in records})
    values = [record[measure] for records in curves.values() for record in records]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    parts = [f'<div class="kdviz-agreement" style="{_FONT}">']
    if title:
        parts.append(f'<div style="font-weight: 600; margin-bottom: 4px;">{html.escape(title)}</div>')
    parts.append('<table style="border-collapse: separate; border-spacing: 2px;"><tr><th>run \\ step</th>')
    parts.extend(f'<th style="{_CELL}">{step}</th>' for step in steps)
    if floors is not None:
        parts.append(f'<th style="{_CELL}" title="a student that scores every token alike">flat student</th>')
    parts.append("</tr>")
    for label, records in curves.items():
        by_step = {record["step"]: record[measure] for record in records}
        parts.append(f'<tr><th style="{_CELL}">{html.escape(label)}</th>')
        for step in steps:
            if step in by_step:
                style = cell_style(by_step[step] - low, high - low, signed=False)
                parts.append(f'<td title="{by_step[step]:.4f}" style="{_CELL} {style}">{by_step[step]:.3f}</td>')
            else:
                parts.append(f'<td style="{_CELL}"></td>')
        if floors is not None:
            floor = (floors.get(label) or {}).get(measure)
            parts.append(f'<td style="{_CELL} font-style: italic;">{"" if floor is None else f"{floor:.3f}"}</td>')
        parts.append("</tr>")
    parts.append("</table>")
    parts.append(legend_html(MEASURE_NAMES[measure], high - low, signed=False, offset=low))
    parts.append("</div>")
    return "".join(parts)
