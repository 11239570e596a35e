"""The ``vgcourse`` command: ``doctor``, ``release``, ``grade``, ``build`` and ``workspace``.

Each sub-command lives in its own module, which provides ``add_arguments(parser)`` and
``run_command(args) -> int``; this file only wires them together.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from vgcourse.tools.doctor import environment_checks, format_report

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "release": ("vgcourse.tools.release", "write exercises/ from solutions/ (never overwrites a learner's changes)"),
    "grade": ("vgcourse.grading.command", "grade exercise submissions, each in a fresh kernel, into a CSV"),
    "build": ("vgcourse.tools.build", "execute the course and write a browsable HTML copy"),
    "workspace": ("vgcourse.tools.workspace", "copy the course into your own folder, or bring it up to date (keeps your changes)"),
}


def _doctor(args: argparse.Namespace) -> int:
    checks = environment_checks()
    print(format_report(checks))
    return 0 if all(check.ok or check.optional for check in checks) else 1


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with one sub-command per course tool.

    Only ``command``'s module is imported (its options are needed); the others are listed by
    name and help, so ``vgcourse release`` does not pay for importing torch.
    """
    parser = argparse.ArgumentParser(prog="vgcourse", description="Tools for the vanishing-gradient course.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    doctor = commands.add_parser("doctor", help="check that everything the course needs is installed")
    doctor.set_defaults(run=_doctor)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            module.add_arguments(sub)
            sub.set_defaults(run=module.run_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    return args.run(args)
