"""The ``vgcourse`` command: ``vgcourse doctor`` checks the environment."""

from __future__ import annotations

import argparse
from typing import Sequence

from vgcourse.doctor import environment_checks, format_report


def _doctor(args: argparse.Namespace) -> int:
    checks = environment_checks()
    print(format_report(checks))
    return 0 if all(check.ok for check in checks) else 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per course tool."""
    parser = argparse.ArgumentParser(prog="vgcourse", description="Tools for the vanishing-gradient course.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    doctor = commands.add_parser("doctor", help="check that everything the course needs is installed")
    doctor.set_defaults(run=_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    args = build_parser().parse_args(argv)
    return args.run(args)
