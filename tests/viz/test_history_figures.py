"""Figures of a run's history: the loss and loss-term figures, and the agreement over training."""

from helpers import is_png
from kdviz.viz.history_figures import agreement_figure, loss_terms_figure, write_loss_figure, write_loss_terms_figure


def test_loss_figures_are_pngs(tmp_path):
    history = [{"step": 10, "loss": 0.7}, {"step": 20, "loss": 0.5}, {"step": 20, "eval_accuracy": 0.8}]
    assert is_png(write_loss_figure(tmp_path / "a" / "loss.png", history, "fine-tuning").read_bytes())
    records = [{"step": 2, "loss_ce": 0.7, "loss_kd": 0.5}, {"step": 4, "loss_ce": 0.6, "loss_kd": 0.4}]
    figure = write_loss_terms_figure(tmp_path / "terms.png", records, "terms")
    assert is_png(figure.read_bytes())


def test_loss_panels_start_at_zero_and_say_how_much_each_term_moved():
    records = [{"step": 0, "loss_ce": 0.70, "loss_kd": 0.5}, {"step": 4, "loss_ce": 0.697, "loss_kd": 0.25}]
    panels = loss_terms_figure(records, "terms").axes
    assert [axes.get_title() for axes in panels] == ["ce: 0.7 → 0.697, -0.4%", "kd: 0.5 → 0.25, -50.0%"]
    assert all(axes.get_ylim()[0] == 0 for axes in panels)  # a 0.4% change is not drawn as a collapse


def test_agreement_figure_draws_step_0_the_floor_and_the_gap():
    def curve(values):
        return [{"step": step, "cosine": v, "spearman": v / 2, "top_k_overlap": v / 3}
                for step, v in zip((0, 10, 20), values)]

    curves = {"kd": curve([0.80, 0.85, 0.86]), "adkd": curve([0.80, 0.88, 0.90])}
    flat = {"cosine": 0.83, "spearman": 0.0, "top_k_overlap": 0.2}
    figure = agreement_figure(curves, references={"flat student": flat}, baseline="kd", note="one seed")
    top, bottom = figure.axes[:3], figure.axes[3:]
    assert len(bottom) == 3
    gap = next(line for line in bottom[0].get_lines() if line.get_label() == "adkd - kd")
    assert list(gap.get_ydata()) == [0.0, 0.88 - 0.85, 0.90 - 0.86]
    assert any(list(line.get_ydata()) == [0.83, 0.83] for line in top[0].get_lines())  # the flat student's floor
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert labels == ["kd (○: step 0)", "adkd (○: step 0)", "flat student"]
    assert figure.get_suptitle() == "one seed"  # the caveat where the title goes (no title here)
