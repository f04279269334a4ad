"""A real browser: JupyterLab runs the inspection notebook, Chromium (via Playwright) checks both views render.

Needs Node.js with ``playwright-core`` (``make test`` installs it into ``.venv/node_modules`` from
the npm registry) and Debian's ``chromium`` (``.ci/run`` installs it with apt). Where they are
missing the test is skipped, unless ``KDVIZ_REQUIRE_BROWSER=1`` (set by CI) makes it fail. The
screenshot (of the page as it was when a check failed, on failure) is kept in ``tests/artifacts/``.
"""

from __future__ import annotations

import os
import shutil

import pytest

from browser.browser_run import missing_browser_tools, run_notebook_in_browser
from helpers import REPO

NOTEBOOK = REPO / "notebooks" / "04_inspect_rationales.ipynb"
ARTIFACTS = REPO / "tests" / "artifacts"


@pytest.fixture(scope="module")
def browser_tools():
    missing = missing_browser_tools()
    if missing:
        if os.environ.get("KDVIZ_REQUIRE_BROWSER") == "1":
            pytest.fail(f"The browser test needs {missing}.")
        pytest.skip(f"no browser tools: needs {missing} (CI sets KDVIZ_REQUIRE_BROWSER=1 and has them)")


@pytest.mark.slow
def test_inspection_notebook_renders_both_views_in_jupyterlab(browser_tools, sst2_teacher, tmp_path,
                                                              real_glue_env):
    from kdviz.notebook import distill_run

    # the notebook's default RUN, made small here so the browser run takes seconds, not minutes
    distill_run("adkd+alp", "sst2", str(sst2_teacher["dir"]), tmp_path / "runs" / "quickstart", quick=True,
                student_layers=2, train_subset=200, eval_subset=64)
    shutil.copy(NOTEBOOK, tmp_path / NOTEBOOK.name)
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "jupyterlab_inspect_rationales.png"
    screenshot.unlink(missing_ok=True)
    found = run_notebook_in_browser(tmp_path, NOTEBOOK.name, screenshot, {"KDVIZ_QUICK": "1", "TQDM_DISABLE": "1"})
    assert found["heatmap_cells"] > 0 and found["layer_attention_images"] >= 1
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000
    assert found["clipped_labels"] == [], f"widget descriptions cut in JupyterLab: {found['clipped_labels']}"
