"""Run a notebook in a real JupyterLab from headless Chromium (Playwright) and check the kdviz views render.

Used by the browser test and by ``docs/jupyterlab_screenshot.py``. Needs Node.js with
``playwright-core`` in ``<venv>/node_modules`` (``make install`` puts it there) and a Chromium.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

RUNNER = Path(__file__).with_name("run_notebook.js")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
NODE_MODULES = Path(sys.prefix) / "node_modules"


class BrowserRunError(RuntimeError):
    """The notebook did not run, or the views did not appear, in the browser."""


def missing_browser_tools() -> str | None:
    """What is missing to drive a browser (with how to install it), or None when everything is there."""
    if shutil.which("node") is None:
        return "Node.js (apt-get install nodejs npm)"
    if not (NODE_MODULES / "playwright-core").is_dir():
        return f"playwright-core (npm install --prefix {sys.prefix} playwright-core@1)"
    if not Path(CHROMIUM).is_file():
        return "Chromium (apt-get install chromium, or CHROMIUM=/path/to/chromium)"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_server(url: str, server: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BrowserRunError(f"JupyterLab exited with {server.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(1)
    raise BrowserRunError(f"JupyterLab did not answer at {url} within {seconds} s")


INTERFACES = {"lab": ("jupyterlab", "LabApp", "lab/tree"), "notebook": ("notebook", "JupyterNotebookApp", "notebooks")}
"""Interface -> (module to run, its application class, the URL path of a notebook)."""


def run_notebook_in_browser(folder: Path, notebook: str, screenshot: Path, env: dict | None = None,
                            timeout: float = 420, interface: str = "lab") -> dict:
    """Serve ``folder`` with JupyterLab 4 or Notebook 7, run every cell of ``notebook`` from Chromium,
    screenshot the page.

    Args:
        folder: the server's root folder (the kernel's working directory), holding ``notebook``.
        notebook: the notebook's file name.
        screenshot: where the PNG goes.
        env: extra environment for the server and its kernels.
        timeout: seconds for the whole browser run.
        interface: ``"lab"`` (JupyterLab) or ``"notebook"`` (the classic Notebook 7 interface).

    Returns:
        What the page held: ``heatmap_cells``, ``layer_attention_cells``, ``clipped_labels`` (widget
            descriptions whose text is cut or starts on the edge of a box that clips it), ``screenshot``.

    Raises:
        BrowserRunError: a cell raised, a view did not render in time, or the server did not start;
            the message carries the browser's output and the end of the server's log.
    """
    module, app, path = INTERFACES[interface]
    config_dir = Path(folder) / ".jupyter-config"
    settings_dir = config_dir / "lab" / "user-settings"
    # every cell attached to the page, so what the checks look for is there once it has rendered
    tracker = settings_dir / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True, exist_ok=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    env = {**os.environ, **(env or {}), "JUPYTER_CONFIG_DIR": str(config_dir),
           "JUPYTERLAB_SETTINGS_DIR": str(settings_dir)}
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", module, "--allow-root", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         "--IdentityProvider.token=", "--ServerApp.password=", f"--{app}.expose_app_in_browser=True",
         f"--ServerApp.root_dir={folder}"],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for_server(f"http://127.0.0.1:{port}/api", server)
        result = subprocess.run(
            ["node", str(RUNNER), f"http://127.0.0.1:{port}/{path}/{notebook}", str(screenshot),
             str(int(timeout * 1000 * 0.9))],
            env={**env, "NODE_PATH": str(NODE_MODULES), "CHROMIUM": CHROMIUM}, capture_output=True, text=True,
            timeout=timeout)
    finally:
        server.terminate()
        try:
            log = server.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            server.kill()
            log = server.communicate()[0]
    if result.returncode != 0:
        raise BrowserRunError(f"browser run failed:\n{result.stdout}\n{result.stderr}\n"
                              f"server log (end):\n{log[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def check_static_html(page: Path, screenshot: Path, timeout: float = 120) -> dict:
    """Open a static HTML page (a notebook converted by nbconvert, no kernel, no widget manager) in
    Chromium, check both views' HTML fallbacks are drawn, and screenshot it.

    Returns:
        ``heatmap_cells``, ``layer_attention_cells``, ``screenshot``.

    Raises:
        BrowserRunError: a view is missing from the page.
    """
    result = subprocess.run(["node", str(RUNNER), page.resolve().as_uri(), str(screenshot), str(int(timeout * 900)),
                             "static"], env={**os.environ, "NODE_PATH": str(NODE_MODULES), "CHROMIUM": CHROMIUM},
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise BrowserRunError(f"static page check failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])
