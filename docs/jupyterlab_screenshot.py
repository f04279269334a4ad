"""Screenshot the inspection notebook running in a real JupyterLab 4 (headless Chromium, Playwright).

    python docs/jupyterlab_screenshot.py RUN_DIR [--out docs/jupyterlab_views.png]

Copies ``notebooks/04_inspect_rationales.ipynb`` next to RUN_DIR (as ``runs/quickstart``, passed as
the notebook's ``RUN`` through ``KDVIZ_RUN``), runs every cell from the browser with the browser test's harness (``tests/browser/``) and saves
the screenshot. Needs Node.js with playwright-core (``make install``) and Debian's chromium.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "browser"))
from browser_run import run_notebook_in_browser  # noqa: E402

NOTEBOOK = REPO / "notebooks" / "04_inspect_rationales.ipynb"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--out", default=str(REPO / "docs" / "jupyterlab_views.png"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "runs").mkdir()
        (folder / "runs" / "quickstart").symlink_to(Path(args.run).resolve())
        shutil.copy(NOTEBOOK, folder / NOTEBOOK.name)
        print(run_notebook_in_browser(folder, NOTEBOOK.name, Path(args.out).resolve(),
                                      {"KDVIZ_RUN": "runs/quickstart", "TQDM_DISABLE": "1"}))


if __name__ == "__main__":
    main()
