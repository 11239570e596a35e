"""The pins: requirements.lock, environment.yml and pyproject.toml must agree."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines):
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if match:
            pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


def lock_pins():
    return _pins((ROOT / "requirements.lock").read_text().splitlines())


def test_every_line_of_the_lock_is_an_exact_pin():
    lines = [l for l in (ROOT / "requirements.lock").read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert len(lines) == len(lock_pins()) > 50


def test_torch_is_pinned_to_2_13_0_everywhere():
    assert lock_pins()["torch"] == "2.13.0"
    assert '"torch==2.13.0"' in (ROOT / "pyproject.toml").read_text()
    assert "torch==2.13.0" in (ROOT / "requirements.in").read_text()


def test_direct_requirements_are_in_the_lock_at_the_same_version():
    direct = _pins((ROOT / "requirements.in").read_text().splitlines())
    for required in ("torch", "jupyterlab", "ipywidgets", "matplotlib", "nbval", "ipykernel"):
        assert required in direct
    locked = lock_pins()
    assert {name: locked.get(name) for name in direct} == direct


def test_environment_yml_lists_the_same_packages_and_versions():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_python = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert conda_python, "environment.yml must name the Python version"
    listed = _pins(pip_section)
    direct = _pins((ROOT / "requirements.in").read_text().splitlines())
    assert listed == direct, "environment.yml and requirements.in drifted apart"
    locked = lock_pins()
    assert all(locked[name] == version for name, version in listed.items())
