"""Loss terms of a user's own: the modules and ``.py`` files a config names in ``plugins``.

A plugin is ordinary Python that registers a term with :func:`kdviz.loss_terms.register_term`
when it is imported; a config lists it (``plugins: [my_terms.py]`` or ``[my_package.terms]``) and
sets its options in ``terms`` like any built-in term's.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path

_PREFIX = "kdviz_plugin_"


def load_plugins(entries: list[str]) -> None:
    """Import every plugin once per process (a file as the module ``kdviz_plugin_<stem>_<path digest>``).

    Args:
        entries: module names (``my_package.terms``) or paths of ``.py`` files.

    Raises:
        FileNotFoundError: a ``.py`` file that does not exist; ModuleNotFoundError: a module that is
            not installed (both name the ``plugins`` entry and the fix).
    """
    for entry in entries:
        if entry.endswith(".py") or "/" in entry:
            _import_file(Path(entry))
        else:
            try:
                importlib.import_module(entry)
            except ModuleNotFoundError as error:
                raise ModuleNotFoundError(f"plugins entry {entry!r} is not an importable module ({error}): install "
                                          f"it, or give the path of its .py file.") from error


def resolve_plugin_paths(entries: list, folder: Path) -> list:
    """``entries`` with every relative ``.py`` path made absolute against ``folder`` (a config file's)."""
    return [str((folder / entry).resolve()) if isinstance(entry, str) and entry.endswith(".py")
            and not Path(entry).is_absolute() else entry for entry in entries]


def _import_file(path: Path) -> None:
    path = path.resolve()
    if not path.is_file():
        raise FileNotFoundError(f"plugins entry {str(path)!r} does not exist: give the path of a .py file that "
                                f"registers loss terms (relative paths in a config file start at its folder).")
    name = f"{_PREFIX}{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
