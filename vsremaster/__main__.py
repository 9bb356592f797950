"""`python -m vsremaster COMMAND`, or the console script `vsremaster COMMAND`: every
module in `vsremaster.commands` is a command.

A command module defines `HELP` (one line), `add_arguments(parser)` and `run(args) -> int`.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

from . import commands


def main(argv=None) -> int:
    """The command line; the console script `vsremaster` calls this too."""
    run_as_module = Path(sys.argv[0]).name == "__main__.py"
    parser = argparse.ArgumentParser(prog="python -m vsremaster" if run_as_module
                                     else "vsremaster")
    sub = parser.add_subparsers(dest="command", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        p = sub.add_parser(info.name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    args = parser.parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
