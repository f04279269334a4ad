"""The widgets: controls change state and HTML, exports write files, run folders replay training."""

import html as html_lib
import re

import numpy as np
import pytest
import torch

from helpers import is_png, tiny_run_config
from kdviz.data import load_glue
from kdviz.distill import distill
from kdviz.models import build_student, load_teacher
from kdviz.projection import LayerProjection
from kdviz.runs import load_run
from kdviz.viz.widgets import AttributionView, LayerAttentionView


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
    view.controls["signed"].value = True  # captum's rows follow the switch too
    assert "signed score" in view.html.value
    view.controls["captum"].value = "none"
    view.controls["signed"].value = False
    view.controls["order"].value = "data set order"


def test_the_view_shows_the_faithfulness_of_each_rationale(live_view):
    from kdviz.faithfulness import eraser_scores

    live_view.controls["example"].value = 1
    index, source = live_view.index, live_view.source
    inputs = source.examples[index].inputs
    special = torch.isin(inputs["input_ids"], torch.tensor(source.tokenizer.all_special_ids))
    teacher_scores = torch.from_numpy(live_view.scores(index, "teacher"))[None]
    on_teacher = eraser_scores(source.models["student"], inputs, teacher_scores, special)
    line = re.search(r"faithfulness of the top 20% of tokens[^<]*", live_view.html.value).group(0)
    shown = re.search(r"student on the teacher's tokens ([-0-9.]+) / ([-0-9.]+)", html_lib.unescape(line))
    assert float(shown.group(1)) == pytest.approx(float(on_teacher["comprehensiveness"][0]), abs=1e-3)
    assert float(shown.group(2)) == pytest.approx(float(on_teacher["sufficiency"][0]), abs=1e-3)


def test_signed_scores_sum_the_attribution_over_hidden_dimensions(live_view):
    from kdviz.attribution import AttributionSettings, signed_token_scores
    from kdviz.frozen_attribution import attribute

    source, index = live_view.source, 2
    example = source.examples[index]
    expected = attribute(source.models["student"], example.inputs, None, AttributionSettings(views=1, steps=8))
    signed = source.scores(index, "student", 1, 8, signed=True)
    summed = -expected.attributions[0, 0].sum(-1)  # the target is -log p(class): lowering it is pushing towards it
    np.testing.assert_allclose(signed, (summed / summed.norm()).numpy(), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(signed_token_scores(expected.attributions, expected.attention_mask)[0, 0],
                               torch.from_numpy(signed))
    assert (signed < 0).any() and np.linalg.norm(signed) == pytest.approx(1.0, abs=1e-5)


def test_attribution_view_exports(live_view, tmp_path):
    live_view.export_dir = tmp_path
    live_view.controls["export_png"].click()
    live_view.controls["export_html"].click()
    png, page = live_view.last_export["png"], live_view.last_export["html"]
    assert is_png(png.read_bytes())
    assert str(page.resolve()) in live_view.status.value  # the view says where it wrote the file
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<script" not in text.lower() and "teacher - student" in text
    bundle = live_view._repr_mimebundle_()
    assert "text/html" in bundle  # the static fallback beside the live widget
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"]  # ipywidgets 7 (Colab's) and 8


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
    distill(tiny_run_config(tiny_teacher, tmp_path / "run", train_subset=48, eval_subset=16, epochs=1,
                            logging_steps=1, probe_size=3,
                            terms={"layer_projection": {"variant": "alp-no"}}))
    view = AttributionView.from_run(tmp_path / "run")
    assert view.controls["training_step"].options == (0, 1, 2, 3)  # 0: the untrained student
    # magnitudes and, beside them, the recorded signed scores towards the predicted class
    assert view.controls["signed"].value and not view.controls["signed"].disabled
    assert "magnitudes (what AD-KD transfers)" in view.html.value
    assert "signed (positive: towards the predicted class" in view.html.value
    assert view.controls["view"].options == (("gold label", 0),) and view.controls["view"].disabled  # as recorded
    view.controls["training_step"].value = 1
    early = view.scores(0, "student")
    view.controls["training_step"].value = 3
    assert not np.array_equal(early, view.scores(0, "student"))
    assert len(view.examples) == 3 and "#0" in view.html.value

    layers = LayerAttentionView.from_run(tmp_path / "run")
    assert layers.controls["mode"].options == ("logging-window mean", "weights over training")
    weights = dict(layers.history)
    cells = lambda: [float(v) for v in re.findall(r'<td title="([0-9.]+)"', layers.html.value)]
    np.testing.assert_allclose(cells(), weights[3][layers.mask], atol=1e-4)  # the allowed cells, row by row
    assert "step 3" in layers.html.value and "entropy" in layers.html.value and "kdviz-legend" in layers.html.value
    assert layers.html.value.count("–") == (~layers.mask).sum()  # pairs alp-no does not allow: greyed out
    import matplotlib.figure

    def no_matplotlib(*args, **kwargs):
        raise AssertionError("a slider move drew a matplotlib figure")

    original = matplotlib.figure.Figure.__init__
    matplotlib.figure.Figure.__init__ = no_matplotlib
    try:
        layers.controls["training_step"].value = 1
        np.testing.assert_allclose(cells(), weights[1][layers.mask], atol=1e-4)
        layers.controls["mode"].value = "weights over training"
        assert layers.html.value.count("<polyline") == layers.mask.sum()  # one line per allowed cell
    finally:
        matplotlib.figure.Figure.__init__ = original
    layers.export_dir = tmp_path
    layers.controls["export_png"].click()
    assert is_png((tmp_path / "layer-attention.png").read_bytes())
    assert str((tmp_path / "layer-attention.png").resolve()) in layers.status.value
    page = layers.export_html(tmp_path / "layers.html")
    assert "<polyline" in page.read_text() and "<script" not in page.read_text()
    assert layers._repr_mimebundle_()["text/html"] == layers.render_html()

    run = load_run(tmp_path / "run")  # per example: the run's student and trained projection, live
    teacher, tokenizer = load_teacher(tiny_teacher, "sst2")
    objective = run.load_objective(teacher.config)
    saved = run.folder.load_objective()
    assert all(torch.equal(value, objective.state_dict()[name]) for name, value in saved.items())
    assert objective.term("layer_projection") is not None and not objective.training
    student, _ = run.load_student()
    dev = load_glue("sst2", real_glue_env, splits=("validation",))["validation"]
    live = LayerAttentionView.from_models(teacher, student, objective.term("layer_projection").projection, tokenizer,
                                          dev, "sst2", max_examples=4)
    live.controls["mode"].value = "per example"
    assert "example 0" in live.html.value


def test_layer_attention_view_from_live_models(tiny_teacher, glue_dir):
    teacher, tokenizer = load_teacher(tiny_teacher, "sst2")
    student = build_student(teacher, num_layers=2)
    projection = LayerProjection(2, 4, 32, 32, variant="alp-po")
    dev = load_glue("sst2", glue_dir, splits=("validation",))["validation"]
    view = LayerAttentionView.from_models(teacher, student, projection, tokenizer, dev, "sst2", max_examples=6)
    assert view.controls["mode"].options == ("mean over examples", "per example")
    assert "mean over 6 examples" in view.html.value
    view.controls["mode"].value = "per example"
    single = view.html.value
    view.controls["example"].value = 5
    assert view.html.value != single and "example 5" in view.html.value
    top = float(max(re.findall(r'<td title="([0-9.]+)"', view.html.value)))
    every = np.stack([view.per_example(i) for i in range(6)])
    assert top <= every.max() + 1e-4  # one colour scale fitted to all the examples
