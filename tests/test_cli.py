"""vgcourse.tools.cli: the sub-commands are wired up; each command's own tests are in its test file."""

import subprocess
import sys

import pytest

from vgcourse.tools.cli import SUBCOMMANDS, build_parser, main


def test_python_dash_m_and_unknown_commands():
    done = subprocess.run([sys.executable, "-m", "vgcourse", "doctor"], capture_output=True, text=True)
    assert done.returncode == 0 and "torch" in done.stdout
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def test_every_subcommand_has_its_options_and_runner():
    for name, (module, _) in SUBCOMMANDS.items():
        parser = build_parser(name)
        action = next(a for a in parser._subparsers._group_actions if a.dest == "command")
        sub = action.choices[name]
        assert sub.get_default("run").__module__ == module, name
    assert build_parser("release")._subparsers._group_actions[0].choices["grade"].get_default("run") is None
