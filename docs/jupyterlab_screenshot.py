"""Screenshot both views running in a real JupyterLab 4 (headless Chromium driven by Playwright).

    python docs/jupyterlab_screenshot.py RUN_DIR [--out docs/jupyterlab_views.png]

Writes a notebook that opens AttributionView and LayerAttentionView on RUN_DIR, serves it with
JupyterLab on 127.0.0.1, runs every cell from the browser, waits until the heatmap and the
layer-attention image are in the page, and saves a screenshot. Needs Node.js with
playwright-core (installed into a temporary folder from the npm registry) and Debian's chromium.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--out", default=str(HERE / "jupyterlab_views.png"))
    parser.add_argument("--port", type=int, default=8899)
    args = parser.parse_args()
    run = Path(args.run).resolve()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        notebook = nbformat.v4.new_notebook()
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        notebook.cells = [
            nbformat.v4.new_code_cell("from kdviz.viz.widgets import AttributionView, LayerAttentionView\n"
                                      f"view = AttributionView.from_run({str(run)!r})\nview.widget"),
            nbformat.v4.new_code_cell(f"LayerAttentionView.from_run({str(run)!r}).widget"),
        ]
        nbformat.write(notebook, folder / "views.ipynb")
        subprocess.run(["npm", "install", "--prefix", str(folder), "--silent", "playwright-core@1"], check=True)
        shutil.copy(HERE / "jupyterlab_views.js", folder / "jupyterlab_views.js")
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--allow-root", "--no-browser", f"--port={args.port}",
             "--ip=127.0.0.1", "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={folder}"],
            cwd=folder,
            env={**os.environ, "MPLBACKEND": "Agg"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{args.port}/lab/tree/views.ipynb"
            for _ in range(120):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{args.port}/api", timeout=2)
                    break
                except OSError:
                    time.sleep(1)
            subprocess.run(["node", str(folder / "jupyterlab_views.js"), url, str(Path(args.out).resolve())],
                           check=True, cwd=folder, timeout=600)
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
