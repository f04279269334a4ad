"""argparse pieces of the ``kdviz`` command: parsers that add their options when first used, and older
option spellings that still work with a warning naming the new one."""

from __future__ import annotations

import argparse
import sys

ALIASES_REMOVED_AFTER = "2027-06-30"
"""The older option spellings (``--output``, ``--lr``, ``--runs``, ``--bf16``) work until this date."""


class LazyParser(argparse.ArgumentParser):
    """A command's parser whose options are added the first time it parses or shows its help.

    Args:
        add_options: called with the parser to add its options (it may import what they need).
    """

    def __init__(self, *args, add_options=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._add_options = add_options

    def _with_options(self) -> None:
        if self._add_options is not None:
            add, self._add_options = self._add_options, None
            add(self)

    def parse_known_args(self, args=None, namespace=None):
        self._with_options()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._with_options()
        return super().format_help()

    def format_usage(self) -> str:
        self._with_options()
        return super().format_usage()


class OlderSpelling(argparse.Action):
    """An option's older spelling: stores into the new option's destination and says on stderr which
    option replaces it."""

    def __init__(self, option_strings, dest, new: str, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"kdviz: warning: {option_string} is deprecated and will be removed after {ALIASES_REMOVED_AFTER}: "
              f"use {self.new}.", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_older_spelling(parser: argparse.ArgumentParser, option: str, new: str, dest: str, **kwargs) -> None:
    """Accept ``option`` as an older spelling of ``new`` (stored in ``dest``), hidden from the help."""
    parser.add_argument(option, dest=dest, action=OlderSpelling, new=new, help=argparse.SUPPRESS, **kwargs)


def boolean(text: str) -> bool:
    """An option value read as true or false (1/0, yes/no, on/off too)."""
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
