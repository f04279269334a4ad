"""Layer-attention rendering: figures and HTML tables with a colour scale fitted to the weights."""

import math
import re

import numpy as np
import pytest

from kdviz.projection import layer_mask
from kdviz.viz.layer_render import (bucket_edges, layer_attention_figure, layer_attention_history_html,
                                    layer_attention_html, layer_attention_small_multiples, weight_summary)


def test_figures_draw_buckets_values_and_a_fitted_scale():
    mask = layer_mask("alp-no", 2, 6).numpy()
    assert bucket_edges(mask) == [(0, 0, 2), (1, 3, 5)]
    alpha = np.where(mask, 1 / 3, 0.0)
    heat = layer_attention_figure(alpha, [1, 2], list(range(1, 7)), mask=mask)
    axes = heat.axes[0]
    assert len(axes.patches) == 2  # one bucket box per student layer
    assert len(axes.texts) == 12 and axes.texts[0].get_text() == "0.33"
    multiples = layer_attention_small_multiples([(10, alpha), (20, alpha), (30, alpha)], [1, 2], list(range(1, 7)))
    assert [a.get_title() for a in multiples.axes if a.get_title()] == ["step 10", "step 20", "step 30"]
    many = layer_attention_small_multiples([(10 * i, alpha) for i in range(1, 16)], [1, 2], list(range(1, 7)))
    titles = [a.get_title() for a in many.axes if a.get_title()]
    assert len(titles) == 8 and titles[0] == "step 10" and titles[-1] == "step 150"
    assert heat.axes[0].images[0].get_clim() == pytest.approx((0, 1 / 3))  # fitted: not 0-1


def test_the_html_table_writes_every_weight_and_summarises_each_row():
    alpha = np.array([[0.05, 0.10, 0.85], [0.30, 0.34, 0.36]])
    html = layer_attention_html(alpha, [1, 2], [1, 2, 3], title="<b>weights</b>")
    assert [float(v) for v in re.findall(r'<td title="([0-9.]+)"', html)] == alpha.ravel().tolist()
    assert "&lt;b&gt;weights" in html and "<script" not in html and "kdviz-legend" in html
    summary = weight_summary(alpha)
    assert [row["top"] for row in summary] == [2, 2]
    expected = -sum(p * math.log(p) for p in alpha[1])
    assert summary[1]["entropy"] == pytest.approx(expected) and summary[1]["entropy"] < math.log(3)
    # the colour scale is fitted to the weights shown: the largest weight is drawn at full strength
    greens = [int(g) for g in re.findall(r"background: rgb\(\d+, (\d+), \d+\)", html)]
    assert min(greens) == greens[2] and greens[2] < 100
    spread = layer_attention_html(np.array([[0.03, 0.34], [0.2, 0.1]]), [1, 2], [1, 2])
    darkest = min(int(g) for g in re.findall(r"background: rgb\(\d+, (\d+), \d+\)", spread))
    assert darkest < 100  # 0.34 is the top of its own scale, not a pale third of 1


def test_the_history_table_draws_one_line_per_allowed_cell():
    mask = layer_mask("alp-no", 2, 4).numpy()
    history = [(step, np.where(mask, 0.5 + 0.1 * sign, 0.0)) for step, sign in ((10, -1), (20, 1))]
    html = layer_attention_history_html(history, [1, 2], [1, 2, 3, 4], mask=mask)
    assert html.count("<polyline") == mask.sum() and html.count("–") == (~mask).sum()
    assert "steps 10 to 20 (2 logged)" in html and "0.40→0.60" in html


def test_the_variants_masks_share_one_figure_and_one_colour_scale():
    from kdviz.projection import layer_mask
    from kdviz.viz.layer_render import layer_masks_figure

    masks = {variant: layer_mask(variant, 2, 6).numpy() for variant in ("alp", "alp-no", "skip")}
    figure = layer_masks_figure(masks, [1, 2], range(1, 7), title="masks")
    images = [axes.get_images()[0] for axes in figure.axes if axes.get_images()]
    assert len(images) == 3 and len({image.get_clim() for image in images}) == 1  # one scale for every panel
    assert images[0].get_clim() == (0, 1.0)  # a skip row puts all its weight on one teacher layer
    assert [axes.get_title() for axes in figure.axes[:3]] == ["alp", "alp-no", "skip"]
    wide = layer_masks_figure({**masks, "last": masks["skip"]}, [1, 2], range(1, 7), columns=2)
    assert sum(axes.get_visible() and bool(axes.get_images()) for axes in wide.axes) == 4  # two rows of two
