"""Print ``name==floor`` for every dependency of kdviz (and the named extras) that declares a floor.

``make test-min-versions`` installs these as pip constraints into a fresh environment, so a floor
in ``pyproject.toml`` that the code does not really work with fails the tests. torch is left out:
it stays at the CPU wheel installed first (``torch==2.13.0``).

Usage: python .ci/minimum_versions.py [EXTRA ...] > constraints.txt
"""

import re
import sys
import tomllib
from pathlib import Path

SKIPPED = {"torch"}


def floors(extras: list[str]) -> list[str]:
    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for extra in extras for r in project["optional-dependencies"][extra]]
    pins = []
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+?)\s*>=\s*([0-9][^,;\s]*)(,.*)?", requirement.strip())
        if match and match.group(1) not in SKIPPED:
            pins.append(f"{match.group(1)}=={match.group(2)}")
    return pins


if __name__ == "__main__":
    print("\n".join(floors(sys.argv[1:])))
