"""The release: the wheel built from the checkout holds every module, the license and one version."""

import subprocess
import sys
import zipfile
from email.parser import Parser

import pytest

import kdviz
from helpers import REPO


def test_the_wheel_holds_every_module_the_license_and_the_version(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = tmp_path.glob("kdviz-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {str(path.relative_to(REPO)) for path in (REPO / "kdviz").rglob("*.py")}
    assert modules and modules <= names, sorted(modules - names)
    dist_info = f"kdviz-{kdviz.__version__}.dist-info"
    metadata = Parser().parsestr(zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode())
    assert metadata["Version"] == kdviz.__version__ and metadata["License-Expression"] == "Apache-2.0"
    assert f"{dist_info}/licenses/LICENSE" in names
    assert "kdviz = kdviz.cli:main" in zipfile.ZipFile(wheel).read(f"{dist_info}/entry_points.txt").decode()
    assert metadata["Description-Content-Type"] == "text/markdown"


def test_the_top_level_names_load_on_first_use_from_their_modules():
    import importlib

    import kdviz

    assert sorted(kdviz.__all__) == sorted(kdviz._HOME_OF) and set(kdviz.__all__) <= set(dir(kdviz))
    for name in kdviz.__all__:
        assert getattr(kdviz, name) is getattr(importlib.import_module(kdviz._HOME_OF[name]), name)
    with pytest.raises(AttributeError, match="no attribute 'distil'"):
        kdviz.distil
