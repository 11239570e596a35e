"""vgcourse.tools.doctor, in a fake environment: versions, the pin, paths and the CPU are made up,
so the results do not depend on the machine the tests run on."""

import sys
from importlib import metadata

import pytest

from vgcourse.tools import doctor
from vgcourse.tools.cli import main
from vgcourse.tools.doctor import Check, format_report, pinned_version, widget_extension_dir

FAKE_PIN = "9.8.7"  # not the course's real pin: the check must read whatever the metadata says


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A complete fake environment; tests change ``versions`` or ``requires`` to break it."""
    env = {"versions": {package: "1.0" for package in doctor.REQUIRED_PACKAGES} | {"torch": FAKE_PIN},
           "requires": [f"torch=={FAKE_PIN}", "numpy>=1.26", 'pytest>=8; extra == "test"']}
    monkeypatch.setattr(doctor, "_version", lambda package: env["versions"].get(package))

    def requires(distribution):
        if env["requires"] is None:
            raise metadata.PackageNotFoundError(distribution)
        return env["requires"] if distribution == "vgcourse" else []

    monkeypatch.setattr(doctor.metadata, "requires", requires)
    monkeypatch.setattr(doctor, "_device_detail", lambda: "CPU (fake)")
    monkeypatch.setattr(doctor, "_kernel_detail", lambda: "avx2 kernels (fake)")
    extension = tmp_path / "prefix" / doctor.WIDGET_EXTENSION
    extension.mkdir(parents=True)
    (extension / "package.json").write_text("{}")
    monkeypatch.setattr(doctor.sys, "prefix", str(tmp_path / "prefix"))
    monkeypatch.setattr(doctor.sys, "base_prefix", str(tmp_path / "prefix"))
    chromium = tmp_path / "chromium"
    chromium.write_text("#!/bin/sh\n")
    chromium.chmod(0o755)
    monkeypatch.setenv("VGCOURSE_CHROMIUM", str(chromium))
    monkeypatch.setattr(doctor, "sandbox_problem", lambda: None)
    monkeypatch.setattr(doctor, "bwrap_path", lambda: "/usr/bin/bwrap")
    monkeypatch.chdir(tmp_path)  # no .venv here
    return env


def checks_by_name():
    return {check.name: check for check in doctor.environment_checks()}


def test_a_complete_environment_passes_and_names_every_version(fake, capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for package in doctor.REQUIRED_PACKAGES:
        assert f"ok   {package}" in out
    assert f"ok   torch pin         {FAKE_PIN} (the course pins {FAKE_PIN})" in out
    assert "CPU (fake)" in out and "avx2 kernels (fake)" in out and "ok   widget extension" in out
    assert out.rstrip().endswith("Everything the course needs is here.")


def test_the_pin_is_read_from_the_installed_metadata(fake):
    fake["versions"]["torch"] = "2.13.0"  # the real pin, but the metadata says otherwise
    pin = checks_by_name()["torch pin"]
    assert not pin.ok and pin.detail == f"2.13.0 (the course pins {FAKE_PIN})"
    fake["versions"]["torch"] = f"{FAKE_PIN}+cpu"  # a local build of the pinned version is that version
    assert checks_by_name()["torch pin"].ok


def test_a_wrong_torch_fails_the_doctor(fake, capsys):
    fake["versions"]["torch"] = "2.99.0"
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "BAD  torch pin" in out and "2.99.0" in out and "Problems: torch pin." in out


def test_an_unreadable_pin_is_reported_not_guessed(fake):
    fake["requires"] = None  # vgcourse is not installed in this environment
    pin = checks_by_name()["torch pin"]
    assert not pin.ok and "cannot be read" in pin.detail


def test_pinned_version_reads_only_exact_pins_of_the_package(fake):
    fake["requires"] = ["numpy==1.26.4", "Torch == 2.1.0 ; python_version >= '3.10'", "tqdm>=4"]
    assert pinned_version("torch") == "2.1.0"
    assert pinned_version("numpy") == "1.26.4"
    assert pinned_version("tqdm") is None and pinned_version("scipy") is None
    fake["requires"] = None
    assert pinned_version("torch") is None


def test_a_missing_package_fails_with_how_to_install_it(fake, capsys):
    del fake["versions"]["ipywidgets"]
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "BAD  ipywidgets" in out and "run 'make lab' or 'make test'" in out
    assert "Problems: ipywidgets. Fix these, e.g.: run 'make lab' from the course folder." in out


def test_without_torch_the_torch_checks_are_left_out(fake):
    del fake["versions"]["torch"]
    checks = checks_by_name()
    assert not checks["torch"].ok
    assert not {"torch pin", "device", "cpu kernels"} & set(checks)


def test_a_missing_widget_extension_fails(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(doctor.sys, "prefix", str(tmp_path / "elsewhere"))
    monkeypatch.setattr(doctor.sys, "base_prefix", str(tmp_path / "elsewhere"))
    extension = checks_by_name()["widget extension"]
    assert not extension.ok and "install jupyterlab_widgets" in extension.detail


def test_widget_extension_lookup(tmp_path):
    assert widget_extension_dir([str(tmp_path)]) is None
    ext = tmp_path / doctor.WIDGET_EXTENSION
    ext.mkdir(parents=True)
    (ext / "package.json").write_text("{}")
    assert widget_extension_dir([str(tmp_path / "none"), str(tmp_path)]) == ext


def test_chromium_is_optional(fake, monkeypatch, capsys):
    monkeypatch.setenv("VGCOURSE_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["doctor"]) == 0                       # learners do not need it
    out = capsys.readouterr().out
    assert "opt  chromium" in out and "only the browser test needs it" in out


def test_the_sandbox_is_optional_and_a_failure_says_how_to_install_it(fake, monkeypatch, capsys):
    assert checks_by_name()["sandbox"].ok
    monkeypatch.setattr(doctor, "sandbox_problem", lambda: "bwrap not found: install bubblewrap (apt-get)")
    assert main(["doctor"]) == 0                       # learners do not need it; graders do
    out = capsys.readouterr().out
    assert "opt  sandbox" in out and "install bubblewrap" in out and "vgcourse grade" in out


@pytest.mark.sandbox
def test_the_sandbox_check_runs_the_real_sandbox_here():
    from vgcourse.grading.sandbox import sandbox_problem

    assert doctor.sandbox_problem is sandbox_problem and sandbox_problem() is None


def test_outside_the_course_venv_the_doctor_points_at_it(fake, tmp_path, monkeypatch, capsys):
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").write_text("")
    assert doctor.course_venv() == tmp_path / ".venv"
    del fake["versions"]["ipywidgets"]
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert f"missing from {sys.prefix}; the course is installed in {tmp_path / '.venv'}" in out
    assert f"run {tmp_path / '.venv'}/bin/vgcourse doctor" in out and "make lab" not in out
    assert doctor.course_venv(tmp_path / "prefix") is None  # no .venv there
    monkeypatch.setattr(doctor.sys, "prefix", str(tmp_path / ".venv"))
    assert doctor.course_venv() is None  # the venv that is running is not pointed at


def test_format_report_lists_failures_but_not_optional_ones():
    text = format_report([Check("a", True, "fine"), Check("bb", False, "gone"), Check("c", False, "-", optional=True)])
    assert text.splitlines()[1].startswith("BAD  bb") and text.splitlines()[2].startswith("opt  c ")
    assert "Problems: bb." in text


@pytest.mark.parametrize(("capability", "levels"), [
    ("DEFAULT", ["default"]), ("AVX2", ["default", "avx2"]), ("AVX512", ["default", "avx2", "avx512"]),
    ("SVE256", ["default", "sve256"]),
])
def test_kernel_levels_go_up_to_the_cpus_best(monkeypatch, capability, levels):
    import torch

    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    assert doctor.kernel_levels() == levels


def test_the_kernel_detail_names_the_level_threads_and_a_forced_level(monkeypatch):
    import torch

    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    assert doctor._kernel_detail() == "AVX2 kernels, 3 thread(s); this CPU supports default, avx2"
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    assert doctor._kernel_detail() == "AVX2 kernels, 3 thread(s); forced by ATEN_CPU_CAPABILITY=default"
