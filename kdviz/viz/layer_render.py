"""Pure rendering of ALP's layer-attention weights (student layers x teacher layers).

HTML tables (values in the cells, opaque colours, a legend; instant to redraw, no script) for the
interactive view, and matplotlib figures for PNG export and run reports. Colour scales are fitted to
the weights shown (0 to their largest), not fixed at 0-1: ALP's weights are often 0.03-0.35.
"""

from __future__ import annotations

import html
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from kdviz.viz.colours import SCORE, blend, cell_style, legend_html

_FONT = "font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px;"
_CELL = "padding: 3px 6px; text-align: right; border-radius: 3px;"
_HEAD = "padding: 2px 6px; font-weight: 500; text-align: right; white-space: nowrap;"
_BARRED = "background: #d9d9d9; color: #555555;"  # a pair the variant does not allow


def fitted_scale(alphas) -> float:
    """The top of a colour scale for these weight matrices: their largest weight (1 when empty)."""
    values = [float(np.max(a)) for a in alphas if np.size(a)]
    return max(values, default=1.0) or 1.0


def weight_summary(alpha, mask=None) -> list[dict]:
    """How spread each student layer's weights are.

    Args:
        alpha: (M, N) weights (rows sum to 1).
        mask: (M, N) allowed pairs, or None for all.

    Returns:
        Per student row: ``entropy`` (nats; 0 = one teacher layer, log of the allowed count =
        uniform), ``top`` (the column of the largest weight) and ``top_weight``.
    """
    alpha = np.asarray(alpha, dtype=float)
    allowed = np.ones_like(alpha, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    rows = []
    for weights, keep in zip(alpha, allowed):
        p = weights[keep & (weights > 0)]
        top = int(np.argmax(np.where(keep, weights, -np.inf)))
        rows.append({"entropy": float(-(p * np.log(p)).sum()), "top": top, "top_weight": float(weights[top])})
    return rows


def _table_head(teacher_layers, extra: Sequence[str] = ()) -> str:
    cells = "".join(f'<th style="{_HEAD}">{t}</th>' for t in teacher_layers)
    cells += "".join(f'<th style="{_HEAD}">{html.escape(name)}</th>' for name in extra)
    return (f'<tr><th style="{_HEAD}">student \\ teacher</th>{cells}</tr>')


def layer_attention_html(alpha, student_layers: Sequence[int], teacher_layers: Sequence[int], *, mask=None,
                         scale: float | None = None, title: str | None = None) -> str:
    """ALP weights as an HTML table: one row per student layer, one column per teacher layer, the
    weight written in each cell, then each row's entropy and top teacher layer.

    Args:
        alpha: (M, N) weights of student layers over teacher layers.
        student_layers, teacher_layers: ``hidden_states`` indices of rows and columns.
        mask: (M, N) allowed pairs; the others are greyed out.
        scale: the weight drawn at full intensity (default: the largest weight in ``alpha``).
        title: caption.

    Returns:
        A self-contained HTML fragment (inline CSS, no script).
    """
    alpha = np.asarray(alpha, dtype=float)
    allowed = np.ones_like(alpha, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    scale = scale or fitted_scale([alpha])
    parts = [f'<div class="kdviz-layer-attention" style="{_FONT}">']
    if title:
        parts.append(f'<div style="font-weight: 600; margin-bottom: 4px;">{html.escape(title)}</div>')
    parts.append('<table style="border-collapse: separate; border-spacing: 2px;">')
    parts.append(_table_head(teacher_layers, ("entropy", "top")))
    for student, weights, keep, summary in zip(student_layers, alpha, allowed, weight_summary(alpha, mask)):
        parts.append(f'<tr><th style="{_HEAD}">{student}</th>')
        for value, ok in zip(weights, keep):
            style = cell_style(value, scale, signed=False) if ok else _BARRED
            parts.append(f'<td title="{value:.4f}" style="{_CELL} {style}">{value:.2f}</td>' if ok else
                         f'<td style="{_CELL} {style}">–</td>')
        parts.append(f'<td style="{_CELL}">{summary["entropy"]:.2f}</td>'
                     f'<td style="{_CELL}">{teacher_layers[summary["top"]]}</td></tr>')
    parts.append("</table>")
    parts.append(legend_html("weight", scale, signed=False))
    parts.append("</div>")
    return "".join(parts)


def _sparkline(values: Sequence[float], scale: float, width: int = 64, height: int = 22) -> str:
    """An inline SVG line of ``values`` (0 at the bottom, ``scale`` at the top)."""
    if len(values) == 1:
        values = [values[0], values[0]]
    xs = np.linspace(1, width - 1, len(values))
    ys = [height - 1 - (height - 2) * min(max(v / scale, 0.0), 1.0) for v in values]
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))
    colour = blend(SCORE, 1.0)
    return (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
            f'<rect width="{width}" height="{height}" fill="#ffffff" stroke="#bbbbbb"/>'
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"/></svg>')


def layer_attention_history_html(history: Sequence[tuple[int, np.ndarray]], student_layers: Sequence[int],
                                 teacher_layers: Sequence[int], *, mask=None, title: str | None = None) -> str:
    """The weights over training: one small line per (student, teacher) cell across the logged steps.

    Args:
        history: (step, (M, N) alpha) pairs in training order.
        student_layers, teacher_layers, mask: as :func:`layer_attention_html`.
        title: caption.

    Returns:
        An HTML fragment: each cell holds an inline SVG line from the first logged step (left) to
        the last (right), 0 at the bottom and the largest weight of the whole history at the top,
        with the first and last weight written under it.
    """
    steps = [step for step, _ in history]
    stacked = np.stack([np.asarray(alpha, dtype=float) for _, alpha in history])  # (T, M, N)
    allowed = np.ones(stacked.shape[1:], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    scale = fitted_scale(stacked)
    parts = [f'<div class="kdviz-layer-attention" style="{_FONT}">']
    if title:
        parts.append(f'<div style="font-weight: 600; margin-bottom: 4px;">{html.escape(title)}</div>')
    parts.append(f'<div style="font-size: 11px;">steps {steps[0]} to {steps[-1]} ({len(steps)} logged), '
                 f'each line from 0 to {scale:.3g}</div>')
    parts.append('<table style="border-collapse: separate; border-spacing: 2px;">')
    parts.append(_table_head(teacher_layers))
    for row, student in enumerate(student_layers):
        parts.append(f'<tr><th style="{_HEAD}">{student}</th>')
        for column in range(stacked.shape[2]):
            values = stacked[:, row, column]
            if not allowed[row, column]:
                parts.append(f'<td style="{_CELL} {_BARRED}">–</td>')
                continue
            parts.append(f'<td title="{values[0]:.4f} to {values[-1]:.4f}" style="padding: 1px; text-align: center;">'
                         f'{_sparkline(values, scale)}<br><span style="font-size: 10px;">'
                         f'{values[0]:.2f}→{values[-1]:.2f}</span></td>')
        parts.append("</tr>")
    parts.append("</table></div>")
    return "".join(parts)


def bucket_edges(mask: np.ndarray) -> list[tuple[int, int, int]]:
    """For each student row, the first and last allowed teacher column: (row, first, last)."""
    edges = []
    for row, allowed in enumerate(np.asarray(mask, dtype=bool)):
        columns = np.flatnonzero(allowed)
        if len(columns):
            edges.append((row, int(columns[0]), int(columns[-1])))
    return edges


def _draw_layer_attention(axes, alpha: np.ndarray, student_layers, teacher_layers, mask, scale: float,
                          annotate: bool):
    from matplotlib.patches import Rectangle

    image = axes.imshow(alpha, vmin=0, vmax=scale, cmap="viridis", aspect="auto")
    if annotate:
        for (i, j), value in np.ndenumerate(alpha):
            axes.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                      color="white" if value < 0.6 * scale else "black")
    if mask is not None and not np.asarray(mask, dtype=bool).all():
        for row, first, last in bucket_edges(mask):
            axes.add_patch(Rectangle((first - 0.5, row - 0.5), last - first + 1, 1, fill=False, edgecolor="red",
                                     linewidth=1.5))
    axes.set_xticks(range(len(teacher_layers)), [str(t) for t in teacher_layers])
    axes.set_yticks(range(len(student_layers)), [str(s) for s in student_layers])
    axes.set_xlabel("teacher layer")
    axes.set_ylabel("student layer")
    return image


def layer_attention_figure(alpha, student_layers: Sequence[int], teacher_layers: Sequence[int], *,
                           mask=None, scale: float | None = None, title: str | None = None) -> Figure:
    """Heatmap of ALP weights, values written in, colour bar, bucket boundaries (red) when masked.

    Args:
        alpha: (M, N) weights of student layers over teacher layers.
        student_layers, teacher_layers: ``hidden_states`` indices of rows and columns.
        mask: (M, N) allowed pairs of the variant (``kdviz.projection.layer_mask``); boxes are drawn
            around each row's bucket when some pairs are not allowed.
        scale: the weight at the top of the colour scale (default: the largest weight shown).
        title: figure title.

    Returns:
        A ``Figure``.
    """
    alpha = np.asarray(alpha, dtype=float)
    figure = Figure(figsize=(1.6 + 0.7 * alpha.shape[1], 1.3 + 0.5 * alpha.shape[0]), dpi=100)
    axes = figure.add_subplot()
    image = _draw_layer_attention(axes, alpha, student_layers, teacher_layers, mask, scale or fitted_scale([alpha]),
                                  annotate=True)
    if title:
        axes.set_title(title, fontsize=9)
    figure.colorbar(image, ax=axes)
    figure.tight_layout()
    return figure


def layer_attention_small_multiples(history: Sequence[tuple[int, np.ndarray]], student_layers, teacher_layers, *,
                                    mask=None, columns: int = 4, max_panels: int = 8,
                                    title: str | None = None) -> Figure:
    """Small layer-attention heatmaps over training: at most ``max_panels`` logged steps, evenly spaced.

    Args:
        history: (step, (M, N) alpha) pairs in training order; one colour scale fitted to all of them.
        student_layers, teacher_layers, mask: as :func:`layer_attention_figure`.
        columns: panels per row.
        max_panels: the first and last step are always shown, the others evenly spaced between.
        title: figure title.

    Returns:
        A ``Figure``; only the outer panels carry axis labels.
    """
    history = list(history)
    scale = fitted_scale([alpha for _, alpha in history])
    if len(history) > max_panels:
        picks = np.unique(np.linspace(0, len(history) - 1, max_panels).round().astype(int))
        history = [history[i] for i in picks]
    count = max(len(history), 1)
    columns = min(columns, count)
    rows = -(-count // columns)
    figure = Figure(figsize=(0.9 + 2.3 * columns, 0.7 + (0.35 + 0.3 * len(student_layers)) * rows), dpi=100,
                    layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False)
    image = None
    for index, axes in enumerate(grid.flat):
        if index >= len(history):
            axes.set_visible(False)
            continue
        step, alpha = history[index]
        image = _draw_layer_attention(axes, np.asarray(alpha, dtype=float), student_layers, teacher_layers, mask,
                                      scale, annotate=False)
        axes.set_title(f"step {step}", fontsize=9)
        if index % columns:
            axes.set_ylabel("")
            axes.set_yticklabels([])
        if index < len(history) - columns:
            axes.set_xlabel("")
    if image is not None:
        figure.colorbar(image, ax=grid, shrink=0.8)
    if title:
        figure.suptitle(title)
    return figure


def layer_masks_figure(masks: dict[str, np.ndarray], student_layers: Sequence[int], teacher_layers: Sequence[int], *,
                       columns: int = 3, title: str | None = None) -> Figure:
    """The ALP variants' masks side by side, on one colour scale: each student layer's weight spread
    evenly over the teacher layers it may attend to (what training starts to reshape), values
    written in, each row's allowed bucket boxed in red.

    Args:
        masks: variant name -> its (M, N) mask (``kdviz.projection.layer_mask``).
        student_layers, teacher_layers: ``hidden_states`` indices of rows and columns.
        columns: panels per row (the figure stays readable at a notebook's width).
        title: figure title.

    Returns:
        A ``Figure`` with one panel per variant and one colour bar.
    """
    uniform = {name: np.asarray(mask, dtype=float) / np.asarray(mask, dtype=float).sum(1, keepdims=True)
               for name, mask in masks.items()}
    scale = fitted_scale(list(uniform.values()))
    columns = min(columns, len(masks))
    rows = -(-len(masks) // columns)
    figure = Figure(figsize=(1.2 + (0.6 + 0.45 * len(teacher_layers)) * columns,
                             0.6 + (0.9 + 0.4 * len(student_layers)) * rows), dpi=100, layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False)
    image = None
    for index, axes in enumerate(grid.flat):
        if index >= len(uniform):
            axes.set_visible(False)
            continue
        name, alpha = list(uniform.items())[index]
        image = _draw_layer_attention(axes, alpha, student_layers, teacher_layers, masks[name], scale, annotate=True)
        axes.set_title(name, fontsize=9)
        if index % columns:
            axes.set_ylabel("")
    if image is not None:
        figure.colorbar(image, ax=grid, shrink=0.8, label="weight")
    if title:
        figure.suptitle(title)
    return figure
