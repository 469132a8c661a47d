"""`nas` command line: a command table of verbs, one module each (``HELP``, ``add_arguments``, ``run``).

Parsing and printing only; the work lives in the modules the verbs call. Heavy libraries (torch, ray,
optuna) are imported by the verbs when they run, so ``nas --help`` stays instant.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from nas.cli.options import Parser, one_line
from nas.errors import NASError

# verb -> module under nas.cli (as Optuna's _COMMANDS)
COMMANDS: dict[str, str] = {
    "space": "space",
    "describe": "describe",
    "eval": "eval",
    "search": "search",
    "analyze": "analyze",
    "retrain": "retrain",
    "audit": "audit",
    "study": "study",
    "compare": "compare",
}


def build_parser() -> Parser:
    parser = Parser(
        prog="nas",
        description="Neural-architecture search for tiny vision networks: bottleneck blocks under a "
        "parameter budget, scored on accuracy and feature interference.",
    )
    from nas import __version__

    parser.add_argument("--version", action="version", version=f"nas (bottleneck-nas) {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for verb, module_name in COMMANDS.items():
        module = importlib.import_module(f"nas.cli.{module_name}")
        p = sub.add_parser(verb, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP))
        module.add_arguments(p)
        p.set_defaults(verb_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command: its exit code; a user error (a NASError, usage included) is one ``error:`` line and 2."""
    try:
        args = build_parser().parse_args(argv)
        return int(args.verb_run(args) or 0)
    except NASError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
