"""Opaque colour scales for the HTML heatmaps, and their legends.

Every cell gets a solid background blended from white and its text colour is set with it, so a
cell reads the same on light and dark page themes. Intensity is ``|value| / scale`` with a scale
the caller fixes for a whole figure (never one row's own maximum), so equal values look equal
and small differences look small.
"""

from __future__ import annotations

import html

WHITE = (255, 255, 255)
SCORE = (217, 72, 1)  # orange: a non-negative score
POSITIVE = (178, 24, 43)  # red: above zero on a signed scale (teacher above student in a difference)
NEGATIVE = (33, 102, 172)  # blue: below zero
DARK_TEXT, LIGHT_TEXT = "#111111", "#ffffff"


def intensity(value: float, scale: float) -> float:
    """How strongly a value is coloured: ``|value| / scale``, clipped to [0, 1] (0 for a zero scale)."""
    return 0.0 if scale <= 0 else min(abs(float(value)) / scale, 1.0)


def blend(rgb: tuple[int, int, int], strength: float) -> str:
    """The opaque CSS colour ``strength`` of the way from white to ``rgb``."""
    r, g, b = (round(w + (c - w) * strength) for w, c in zip(WHITE, rgb))
    return f"rgb({r}, {g}, {b})"


def cell_style(value: float, scale: float, signed: bool) -> str:
    """Background and text colour of one cell (inline CSS).

    Args:
        value: the cell's value.
        scale: the value drawn at full intensity (shared by every cell it is compared with).
        signed: red above zero, blue below; otherwise one colour for magnitudes.
    """
    strength = intensity(value, scale)
    hue = (NEGATIVE if value < 0 else POSITIVE) if signed else SCORE
    text = LIGHT_TEXT if strength > 0.55 else DARK_TEXT
    return f"background: {blend(hue, strength)}; color: {text};"


def legend_html(label: str, scale: float, signed: bool, *, low: str = "", high: str = "", steps: int = 5,
                offset: float = 0.0) -> str:
    """A small colour bar with its values: 0 to ``scale``, or ``-scale`` to ``scale`` when signed.

    Args:
        label: what the bar measures.
        scale: the value at full intensity.
        signed: a two-sided bar.
        low, high: words for the two ends of a signed bar (e.g. "student higher").
        steps: swatches per side.
        offset: added to the values written (a scale that starts at ``offset`` instead of 0).

    Returns:
        An HTML fragment (inline CSS, escaped text).
    """
    values = [scale * i / steps for i in range(-steps if signed else 0, steps + 1)]
    swatches = "".join(f'<span title="{offset + v:.3g}" style="display: inline-block; width: 14px; height: 12px; '
                       f'{cell_style(v, scale, signed)}"></span>' for v in values)
    left = f"{offset - scale:.3g}" if signed else f"{offset:.3g}"
    ends = (f" ({html.escape(low)})" if low else "", f" ({html.escape(high)})" if high else "")
    return (f'<div class="kdviz-legend" style="margin: 2px 0; font-size: 11px;">{html.escape(label)}: '
            f'{left}{ends[0]} <span style="border: 1px solid #888; display: inline-block; line-height: 0;">'
            f'{swatches}</span> {offset + scale:.3g}{ends[1]}</div>')
