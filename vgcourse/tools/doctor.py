"""The environment check behind ``vgcourse doctor``: is everything the course needs here?"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from vgcourse.grading.sandbox import bwrap_path, sandbox_problem

REQUIRED_PACKAGES = ("torch", "numpy", "matplotlib", "scikit-learn", "ipywidgets", "jupyterlab", "tqdm")
KERNEL_LEVELS = ("default", "avx2", "avx512")
"""PyTorch's x86 CPU kernel levels, lowest first; ``ATEN_CPU_CAPABILITY`` forces one of them."""
WIDGET_EXTENSION = Path("share/jupyter/labextensions/@jupyter-widgets/jupyterlab-manager")


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, whether it passed, and what was found.

    An ``optional`` check that fails is reported (``opt``) but does not make the doctor fail:
    learners do not need what only maintainers' tests use.
    """

    name: str
    ok: bool
    detail: str
    optional: bool = False


def course_venv(folder: Path | None = None) -> Path | None:
    """The course's ``.venv`` in ``folder`` (default: the current folder) when that is not the
    Python running now: the environment a learner should have used."""
    venv = (folder or Path.cwd()) / ".venv"
    if not (venv / "bin" / "python").exists():
        return None
    return None if Path(sys.prefix).resolve() == venv.resolve() else venv


def _missing_hint() -> str:
    venv = course_venv()
    if venv is not None:
        return f"missing from {sys.prefix}; the course is installed in {venv}: run {venv}/bin/vgcourse doctor"
    return "missing: run 'make lab' or 'make test' in the course folder to install it"


def chromium_path() -> str | None:
    """Chromium for the browser test (``VGCOURSE_CHROMIUM`` or ``chromium`` on PATH), or ``None``."""
    executable = os.environ.get("VGCOURSE_CHROMIUM") or shutil.which("chromium")
    return executable if executable and os.access(executable, os.X_OK) else None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def pinned_version(package: str, distribution: str = "vgcourse") -> str | None:
    """The exact version ``distribution``'s installed metadata pins ``package`` to
    (``"2.13.0"`` for a requirement ``torch==2.13.0``), or ``None`` if it pins none or is not installed."""
    try:
        requirements = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        return None
    for requirement in requirements:
        # metadata holds normalized requirements such as 'torch==2.13.0' or 'x>=1; extra == "test"'
        name, pinned, version = requirement.split(";")[0].replace(" ", "").partition("==")
        if pinned and name.split("[")[0].lower() == package.lower():
            return version
    return None


def _device_detail() -> str:
    import torch

    if torch.cuda.is_available():
        return f"GPU ({torch.cuda.get_device_name(0)}); the course uses it automatically"
    return "CPU (no GPU found; every notebook is sized to run on a CPU)"


def kernel_levels() -> list[str]:
    """The CPU kernel levels PyTorch uses up to, lowest first: on an AVX2 CPU ``["default", "avx2"]``.

    Each level rounds floats a little differently; ``make test-matrix`` runs the notebooks under
    each. With ``ATEN_CPU_CAPABILITY`` set this reports up to the forced level — and forcing a
    level the CPU lacks crashes PyTorch with an illegal instruction — so ask with it unset."""
    import torch

    best = torch.backends.cpu.get_cpu_capability().lower()  # e.g. "avx2"; "sve256" on some ARM CPUs
    if best in KERNEL_LEVELS:
        return list(KERNEL_LEVELS[: KERNEL_LEVELS.index(best) + 1])
    return ["default", best]


def _kernel_detail() -> str:
    import torch

    forced = os.environ.get("ATEN_CPU_CAPABILITY")
    levels = f"forced by ATEN_CPU_CAPABILITY={forced}" if forced else f"this CPU supports {', '.join(kernel_levels())}"
    return f"{torch.backends.cpu.get_cpu_capability()} kernels, {torch.get_num_threads()} thread(s); {levels}"


def widget_extension_dir(prefixes: list[str] | None = None) -> Path | None:
    """Where JupyterLab's widget extension is installed, or ``None`` if it is not."""
    for prefix in prefixes if prefixes is not None else [sys.prefix, sys.base_prefix]:
        candidate = Path(prefix) / WIDGET_EXTENSION
        if (candidate / "package.json").is_file():
            return candidate
    return None


def environment_checks() -> list[Check]:
    """Every check ``vgcourse doctor`` reports, in display order."""
    checks = [
        Check(
            "python",
            sys.version_info >= (3, 10),
            f"{platform.python_version()} (the course needs >= 3.10)",
        )
    ]
    for package in REQUIRED_PACKAGES:
        version = _version(package)
        checks.append(
            Check(package, version is not None, version or _missing_hint())
        )
    torch_version = _version("torch")
    if torch_version is not None:
        pin = pinned_version("torch")
        checks.append(
            Check(
                "torch pin",
                torch_version.split("+")[0] == pin,
                f"{torch_version} (the course pins {pin})" if pin else
                f"{torch_version} (the course's pin cannot be read: vgcourse is not installed here)",
            )
        )
        checks.append(Check("device", True, _device_detail()))
        checks.append(Check("cpu kernels", True, _kernel_detail()))
    extension = widget_extension_dir()
    checks.append(
        Check(
            "widget extension",
            extension is not None,
            str(extension) if extension else "missing: install jupyterlab_widgets (comes with ipywidgets)",
        )
    )
    chromium = chromium_path()
    checks.append(Check(
        "chromium", chromium is not None,
        chromium or "not found: only the browser test needs it (apt-get install chromium, or set "
                    "VGCOURSE_CHROMIUM); make test skips that test without it",
        optional=True,
    ))
    problem = sandbox_problem()
    checks.append(Check(
        "sandbox", problem is None,
        f"{bwrap_path()} runs kernels without network, with the installation read-only" if problem is None else
        f"{problem}; only 'vgcourse grade' needs it, and refuses untrusted notebooks without it (or --no-sandbox)",
        optional=True,
    ))
    return checks


def format_report(checks: list[Check]) -> str:
    """The checks as aligned text lines, with a closing verdict."""
    width = max(len(check.name) for check in checks)
    lines = [f"{'ok ' if c.ok else 'opt' if c.optional else 'BAD'}  {c.name:<{width}}  {c.detail}" for c in checks]
    failed = [c.name for c in checks if not c.ok and not c.optional]
    if failed:
        venv = course_venv()
        fix = f"run {venv}/bin/vgcourse doctor" if venv else "run 'make lab' from the course folder"
        lines.append(f"Problems: {', '.join(failed)}. Fix these, e.g.: {fix}.")
    else:
        lines.append("Everything the course needs is here.")
    return "\n".join(lines)
