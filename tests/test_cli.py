import subprocess
import sys
from pathlib import Path

import pytest

from vgcourse.tools import doctor
from vgcourse.tools.cli import main
from vgcourse.tools.doctor import Check, environment_checks, format_report, widget_extension_dir


def test_doctor_reports_versions_device_and_widget_extension(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for name in ("python", "torch", "device", "jupyterlab", "ipywidgets", "widget extension"):
        assert name in out
    assert "2.13.0" in out
    assert "Everything the course needs is here." in out


def test_doctor_fails_with_a_clear_message_when_something_is_missing(monkeypatch, capsys):
    real = doctor._version
    monkeypatch.setattr(doctor, "_version", lambda p: None if p == "ipywidgets" else real(p))
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "BAD  ipywidgets" in out
    assert "Problems: ipywidgets" in out


def test_doctor_flags_a_wrong_torch(monkeypatch):
    real = doctor._version
    monkeypatch.setattr(doctor, "_version", lambda p: "2.99.0" if p == "torch" else real(p))
    pin = next(c for c in environment_checks() if c.name == "torch pin")
    assert not pin.ok and "2.99.0" in pin.detail


def test_widget_extension_lookup(tmp_path):
    assert widget_extension_dir([str(tmp_path)]) is None
    ext = tmp_path / doctor.WIDGET_EXTENSION
    ext.mkdir(parents=True)
    (ext / "package.json").write_text("{}")
    assert widget_extension_dir([str(tmp_path)]) == ext


def test_format_report_lists_failures():
    text = format_report([Check("a", True, "fine"), Check("bb", False, "gone")])
    assert text.splitlines()[1].startswith("BAD  bb")
    assert "Problems: bb" in text


def test_python_dash_m_and_unknown_commands():
    done = subprocess.run([sys.executable, "-m", "vgcourse", "doctor"], capture_output=True, text=True)
    assert done.returncode == 0 and "torch" in done.stdout
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def test_doctor_names_the_cpu_kernel_level_and_threads(capsys, monkeypatch):
    import torch

    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    assert main(["doctor"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if "cpu kernels" in line)
    assert torch.backends.cpu.get_cpu_capability() in line and f"{torch.get_num_threads()} thread(s)" in line
    levels = doctor.kernel_levels()
    assert levels[0] == "default" and torch.backends.cpu.get_cpu_capability().lower() == levels[-1]
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    assert "forced by ATEN_CPU_CAPABILITY=default" in doctor._kernel_detail()


def test_doctor_reports_chromium_as_optional(monkeypatch, capsys):
    monkeypatch.setenv("VGCOURSE_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["doctor"]) == 0                       # learners do not need it
    out = capsys.readouterr().out
    assert "opt  chromium" in out and "only the browser test needs it" in out


def test_doctor_outside_the_course_venv_points_at_it(tmp_path, monkeypatch, capsys):
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").write_text("")
    monkeypatch.chdir(tmp_path)
    assert doctor.course_venv() == tmp_path / ".venv"
    real = doctor._version
    monkeypatch.setattr(doctor, "_version", lambda p: None if p == "ipywidgets" else real(p))
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert f"run {tmp_path / '.venv'}/bin/vgcourse doctor" in out
    assert "make lab" not in out
    # The venv that is running (the course's own .venv under make test) is not pointed at.
    assert doctor.course_venv(Path(sys.prefix).parent) is None
