import re
import struct

import numpy as np
import pytest
import torch

from kdviz.config import DistillConfig, preset
from kdviz.data import load_glue
from kdviz.distill import distill
from kdviz.models import build_student, load_teacher
from kdviz.projection import LayerProjection, layer_mask
from kdviz.viz.render import (agreement_scores, attribution_comparison_html, attribution_figure, bucket_edges,
                              layer_attention_figure, layer_attention_small_multiples, merge_wordpieces,
                              token_heatmap_html)
from kdviz.viz.widgets import AttributionView, LayerAttentionView


def is_png(data: bytes) -> bool:
    return data[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", data[16:24])[0] > 0


def test_tokens_are_escaped_and_no_script_is_emitted():
    html = token_heatmap_html(["[CLS]", "<script>alert(1)</script>", "&", "[SEP]"], {"teacher": [0.1, 0.9, 0.2, 0.0]})
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&amp;" in html
    assert "http" not in html  # nothing fetched from the network


def test_rows_align_token_by_token_and_merged_words_sum_their_pieces():
    tokens = ["[CLS]", "un", "##fl", "##inch", "bleak", "[SEP]", "very", "[SEP]"]
    teacher = np.array([0.0, 0.1, 0.2, 0.3, 0.5, 0.0, 0.4, 0.0])
    student = np.array([0.1, 0.0, 0.1, 0.1, 0.6, 0.0, 0.2, 0.1])
    words, merged = merge_wordpieces(tokens, np.stack([teacher, student]))
    assert words == ["[CLS]", "unflinch", "bleak", "[SEP]", "very", "[SEP]"]
    np.testing.assert_allclose(merged[:, 1], [0.6, 0.2])
    html = attribution_comparison_html(tokens, teacher, student, merge_words=True)
    rows = re.findall(r"<tr>(.*?)</tr>", html)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows]
    assert len(rows) == 3 and cells[0] == cells[1] == cells[2] == words
    titles = re.findall(r'<td title="([-0-9.]+)"', rows[0])
    assert float(titles[1]) == pytest.approx(0.6, abs=1e-3)


def test_agreement_scores():
    same = agreement_scores([0.1, 0.5, 0.2, 0.8], [0.1, 0.5, 0.2, 0.8], k=2)
    assert same == {"cosine": pytest.approx(1.0), "spearman": pytest.approx(1.0), "top_k_overlap": 1.0}
    reversed_ = agreement_scores([0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1], k=2)
    assert reversed_["spearman"] == pytest.approx(-1.0) and reversed_["top_k_overlap"] == 0.0


def test_figures_render():
    figure = attribution_figure(["[CLS]", "good", "##s", "[SEP]"], [0.1, 0.8, 0.2, 0.0], [0.2, 0.5, 0.5, 0.0],
                                merge_words=True)
    assert [t.get_text() for t in figure.axes[1].get_xticklabels()] == ["[CLS]", "goods", "[SEP]"]
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


@pytest.fixture(scope="module")
def live_view(tiny_teacher, glue_dir):
    teacher, tokenizer = load_teacher(tiny_teacher, "sst2")
    student = build_student(teacher, num_layers=2).eval()
    with torch.no_grad():  # make the student differ from the teacher's layers
        student.classifier.weight.mul_(-1)
    dev = load_glue("sst2", glue_dir, splits=("validation",))["validation"]
    return AttributionView.from_models(teacher, student, tokenizer, dev, "sst2", max_examples=12)


def test_attribution_view_controls_update_state_and_html(live_view):
    view = live_view
    first = view.html.value
    assert "teacher - student" in first and "#0" in first
    view.controls["example"].value = 3
    assert view.index == 3 and "#3" in view.html.value
    view.controls["next"].click()
    assert view.index == 4
    view.controls["previous"].click()
    assert view.index == 3
    before = view.html.value
    view.controls["view"].value = 1
    view.controls["steps"].value = 8
    assert view.html.value != before
    view.controls["merge_words"].value = True
    assert view.controls["merge_words"].value and "##" not in re.sub(r"<p>.*?</p>", "", view.html.value)
    view.controls["label"].value = "positive"
    assert all(view.examples[i].label == 1 for i in view.order) and view.order
    view.controls["label"].value = "all"
    view.controls["correctness"].value = "teacher right, student wrong"
    labels = np.array([e.label for e in view.examples])
    for i in view.order:
        assert view.teacher_probs[i].argmax() == labels[i] != view.student_probs[i].argmax()
    view.controls["correctness"].value = "all"
    view.controls["order"].value = "teacher-student disagreement"
    gaps = [view.disagreement(i) for i in view.order]
    assert gaps == sorted(gaps, reverse=True)
    view.controls["captum"].value = "input_x_gradient"
    assert "captum input_x_gradient" in view.html.value
    view.controls["captum"].value = "none"
    view.controls["order"].value = "data set order"


def test_attribution_view_exports(live_view, tmp_path):
    live_view.export_dir = tmp_path
    live_view.controls["export_png"].click()
    live_view.controls["export_html"].click()
    png, page = live_view.last_export["png"], live_view.last_export["html"]
    assert is_png(png.read_bytes())
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<script" not in text.lower() and "teacher - student" in text
    assert "text/html" in live_view._repr_mimebundle_()


def test_a_script_token_comes_out_escaped_in_the_view(live_view):
    example = live_view.examples[live_view.index]
    original = example.tokens
    example.tokens = ["<script>alert(1)</script>"] + original[1:]
    try:
        html = live_view.render_html()
    finally:
        example.tokens = original
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_views_from_a_run_folder_replay_training(tiny_teacher, tmp_path, real_glue_env):
    values = preset("adkd+alp/sst2")
    values.update(teacher=str(tiny_teacher), output_dir=str(tmp_path / "run"), train_subset=48, eval_subset=16,
                  epochs=1, batch_size=16, logging_steps=1, probe_size=3, student_layers=2, alp_variant="alp-no")
    distill(DistillConfig.from_dict(values))
    view = AttributionView.from_run(tmp_path / "run")
    assert view.controls["training_step"].options == (1, 2, 3)
    view.controls["training_step"].value = 1
    early = view.scores(0, "student")
    view.controls["training_step"].value = 3
    assert not np.array_equal(early, view.scores(0, "student"))
    assert len(view.examples) == 3 and "#0" in view.html.value

    layers = LayerAttentionView.from_run(tmp_path / "run")
    assert layers.controls["mode"].options == ("average over training", "small multiples")
    first = layers.image.value
    assert is_png(first)
    layers.controls["training_step"].value = 1
    assert layers.image.value != first
    layers.controls["mode"].value = "small multiples"
    assert is_png(layers.image.value)
    path = layers.export_png(tmp_path / "layers.png")
    assert is_png(path.read_bytes())


def test_layer_attention_view_from_live_models(tiny_teacher, glue_dir):
    teacher, tokenizer = load_teacher(tiny_teacher, "sst2")
    student = build_student(teacher, num_layers=2)
    projection = LayerProjection(2, 4, 32, 32, variant="alp-po")
    dev = load_glue("sst2", glue_dir, splits=("validation",))["validation"]
    view = LayerAttentionView.from_models(teacher, student, projection, tokenizer, dev, "sst2", max_examples=6)
    view.controls["mode"].value = "per example"
    single = view.image.value
    view.controls["example"].value = 5
    assert is_png(view.image.value) and view.image.value != single
    assert view._repr_png_() == view.image.value
