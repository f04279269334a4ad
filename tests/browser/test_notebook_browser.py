"""A real browser: the inspection notebook's views render in JupyterLab 4, in Notebook 7, and as static HTML.

JupyterLab and Notebook 7 run the notebook from Chromium (via Playwright) and the live widgets are
checked; nbconvert turns the executed notebook into the static HTML a notebook shows without a
kernel (GitHub, nbviewer, an exported page), where the views' HTML fallbacks are checked. Needs
Node.js with ``playwright-core`` (``make test`` installs it into ``.venv/node_modules`` from the npm
registry) and Debian's ``chromium`` (``.ci/run`` installs it with apt). Where they are missing the
tests are skipped, unless ``KDVIZ_REQUIRE_BROWSER=1`` (set by CI) makes them fail. The screenshots
are kept in ``tests/artifacts/`` (of the page as it was when a check failed, on failure).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from browser.browser_run import check_static_html, missing_browser_tools, run_notebook_in_browser
from helpers import REPO

NOTEBOOK = REPO / "notebooks" / "04_inspect_rationales.ipynb"
ARTIFACTS = REPO / "tests" / "artifacts"
ENV = {"KDVIZ_QUICK": "1", "TQDM_DISABLE": "1", "KDVIZ_RUN": "runs/quickstart"}  # the notebook's RUN, made below


@pytest.fixture(scope="module")
def browser_tools():
    missing = missing_browser_tools()
    if missing:
        if os.environ.get("KDVIZ_REQUIRE_BROWSER") == "1":
            pytest.fail(f"The browser test needs {missing}.")
        pytest.skip(f"no browser tools: needs {missing} (CI sets KDVIZ_REQUIRE_BROWSER=1 and has them)")


@pytest.fixture(scope="module")
def notebook_folder(browser_tools, sst2_teacher, tmp_path_factory, glue_dir):
    """A folder with the notebook and a small finished run (``KDVIZ_RUN``: each browser run takes seconds)."""
    from kdviz.notebook import distill_run

    folder = tmp_path_factory.mktemp("browser")
    previous = os.environ.get("KDVIZ_DATA_DIR")
    os.environ["KDVIZ_DATA_DIR"] = str(glue_dir)
    try:
        distill_run("adkd+alp", "sst2", str(sst2_teacher["dir"]), folder / "runs" / "quickstart", quick=True,
                    student_layers=2, train_subset=200, eval_subset=64)
    finally:
        os.environ.pop("KDVIZ_DATA_DIR") if previous is None else os.environ.update(KDVIZ_DATA_DIR=previous)
    shutil.copy(NOTEBOOK, folder / NOTEBOOK.name)
    ARTIFACTS.mkdir(exist_ok=True)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("interface", ["lab", "notebook"])
def test_inspection_notebook_renders_both_views_live(notebook_folder, glue_dir, interface):
    screenshot = ARTIFACTS / f"{interface}_inspect_rationales.png"
    screenshot.unlink(missing_ok=True)
    found = run_notebook_in_browser(notebook_folder, NOTEBOOK.name, screenshot,
                                    {**ENV, "KDVIZ_DATA_DIR": str(glue_dir)}, interface=interface)
    assert found["heatmap_cells"] > 0 and found["layer_attention_cells"] > 0
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000
    assert found["clipped_labels"] == [], f"widget descriptions cut in {interface}: {found['clipped_labels']}"


@pytest.mark.slow
def test_the_static_html_of_the_executed_notebook_shows_both_views(notebook_folder, glue_dir):
    """What GitHub or nbviewer shows of a notebook saved without widget state: the views' HTML fallbacks."""
    page = notebook_folder / "static" / "04_inspect_rationales.html"
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--execute",
                    "--ExecutePreprocessor.store_widget_state=False", "--ExecutePreprocessor.timeout=600",
                    "--output-dir", str(page.parent), str(notebook_folder / NOTEBOOK.name)],
                   cwd=notebook_folder, env={**os.environ, **ENV, "KDVIZ_DATA_DIR": str(glue_dir)}, check=True,
                   capture_output=True, timeout=900)
    screenshot = ARTIFACTS / "static_inspect_rationales.png"
    screenshot.unlink(missing_ok=True)
    found = check_static_html(page, screenshot)
    assert found["heatmap_cells"] > 0 and found["layer_attention_cells"] > 0
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000


def test_the_page_check_fails_when_a_view_is_missing(browser_tools, tmp_path):
    """The checks can fail: a page with the attribution view but a broken layer-attention view is refused."""
    import numpy as np

    from browser.browser_run import BrowserRunError
    from kdviz.viz.layer_render import layer_attention_html
    from kdviz.viz.render import attribution_comparison_html

    heatmap = ('<div class="kdviz-attribution-view">'
               + attribution_comparison_html(["[CLS]", "good", "[SEP]"], [0.2, 0.9, 0.1], [0.3, 0.8, 0.1]) + "</div>")
    layers = layer_attention_html(np.array([[0.3, 0.7]]), [1], [1, 2])
    whole, broken = tmp_path / "whole.html", tmp_path / "broken.html"
    whole.write_text(f"<html><body>{heatmap}{layers}</body></html>")
    broken.write_text(f"<html><body>{heatmap}{layers.replace('<td', '<span')}</body></html>")
    found = check_static_html(whole, tmp_path / "whole.png")
    assert found["heatmap_cells"] == 9 and found["layer_attention_cells"] == 4  # 2 weights, entropy, top
    with pytest.raises(BrowserRunError, match="0 layer-attention cells"):
        check_static_html(broken, tmp_path / "broken.png")
