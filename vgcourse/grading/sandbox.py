"""The sandbox a submission's kernel runs in: Debian's ``bubblewrap`` (``bwrap``).

:func:`sandboxed` wraps a kernel's command line so that the kernel gets its own PID, network,
IPC and UTS namespaces (no network at all: the grader talks to it over Unix sockets in the
session folder), sees the interpreter, the venv and the ``vgcourse`` package read-only and
nothing else of the machine's files — no other submission, no output file, no home folder —
can write only to its session folder and a small private ``/tmp``, starts with an allow-list of
environment variables, and dies with the grader. Run as root, the kernel also drops to the
unprivileged uid :data:`KERNEL_UID` with no capabilities and no-new-privileges (``setpriv``),
where :data:`MAX_PROCESSES` caps its processes; run as another user, it keeps that user's uid
in a user namespace of its own. Where the grader may create cgroups (v1), a
:class:`SubmissionCgroup` caps the memory and processes of the whole submission as well.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import vgcourse

KERNEL_UID = 65534
"""The uid (and gid) a kernel runs as when the grader is root: ``nobody`` on Debian."""

MAX_PROCESSES = 256
"""Processes (threads included) the kernel's uid may have when the grader is root; torch's
thread pools need a few dozen, a fork bomb needs more."""

TMP_BYTES = 64 * 2**20
"""Size of the kernel's private ``/tmp`` (and ``/dev/shm``), in memory."""

SCRATCH_BYTES = 512 * 2**20
"""Size of each of the session's folders the grader never reads (the kernel's working folder,
its IPython folder): in-memory file systems that vanish with the sandbox."""

ENVIRONMENT = ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
               "OPENBLAS_NUM_THREADS", "ATEN_CPU_CAPABILITY", "MPLBACKEND")
"""Variables passed from the grader's environment to the kernel when set; all others are dropped."""

INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: sudo apt-get install bubblewrap)"

# System folders the interpreter and its libraries need, read-only; symlinks (merged /usr) are recreated.
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
                 "/sys/devices/system/cpu")  # the last: torch reads the CPU's topology


def bwrap_path() -> str | None:
    """The ``bwrap`` executable on PATH, or ``None``."""
    return shutil.which("bwrap")


def interpreter() -> str:
    """This environment's Python as the kernel will run it: the venv's ``bin/python`` (so its
    packages are found), with ``..`` and relative parts resolved but the venv's symlink kept."""
    return os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(sys.executable))),
                        os.path.basename(sys.executable))


def readable_folders() -> list[Path]:
    """What a kernel may read besides the system: the interpreter's installation, the venv and the
    ``vgcourse`` package (for an editable install, its source folder, not the whole checkout)."""
    folders = [Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(),
               Path(os.path.realpath(sys.executable)).parent.parent, Path(vgcourse.__file__).resolve().parent]
    kept: list[Path] = []
    for folder in sorted(set(folders), key=lambda p: len(p.parts)):
        if not any(folder.is_relative_to(parent) for parent in kept):
            kept.append(folder)
    return kept


def _parents(path: Path, made: set[str]) -> list[str]:
    """Folders above ``path`` not yet in ``made``, created 0755: bwrap would make them 0700,
    which the kernel's uid could not traverse."""
    args = []
    for parent in map(str, reversed(path.parents)):
        if parent not in made:
            made.add(parent)
            args += ["--perms", "0755", "--dir", parent]
    return args


def sandboxed(argv: Sequence[str], session: Path, *, cwd: Path, env: dict[str, str],
              scratch: Sequence[Path] = (), bwrap: str | None = None) -> list[str]:
    """``argv`` wrapped in a ``bwrap`` command line that runs it sandboxed (see the module's docstring).

    Args:
        argv: the kernel's command, its first item an absolute path inside :func:`readable_folders`.
        session: the only folder the kernel may write to, mounted at the same path (so the
            connection file and the sockets in it keep their names); its parents are left out.
        cwd: the kernel's working folder, inside ``session``.
        env: variables to set in the kernel, on top of the allowed ones of :data:`ENVIRONMENT`.
        scratch: existing folders inside ``session`` that become private in-memory file systems
            of :data:`SCRATCH_BYTES` each (the grader sees them empty).
        bwrap: the ``bwrap`` executable; default :func:`bwrap_path`.

    Raises:
        FileNotFoundError: if bwrap is not installed, saying how to install it.
    """
    bwrap = bwrap or bwrap_path()
    if bwrap is None:
        raise FileNotFoundError(f"bwrap not found: {INSTALL_HINT}")
    session = Path(session).resolve()
    command = [bwrap, "--die-with-parent", "--new-session",
               "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
               "--hostname", "sandbox", "--proc", "/proc", "--dev", "/dev",
               "--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/dev/shm",
               "--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp"]
    for path in _SYSTEM:
        if os.path.islink(path):
            command += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            command += ["--ro-bind", path, path]
    made = {"/", "/proc", "/dev", "/dev/shm", "/tmp", *_SYSTEM}
    for path in _SYSTEM_FILES:
        command += _parents(Path(path), made) + ["--ro-bind-try", path, path]
    for folder in readable_folders():
        command += _parents(folder, made) + ["--ro-bind", str(folder), str(folder)]
    command += _parents(session, made) + ["--bind", str(session), str(session)]
    for folder in scratch:
        command += ["--perms", "1777", "--size", str(SCRATCH_BYTES), "--tmpfs", str(Path(folder).resolve())]
    command += ["--chdir", str(cwd)]
    command += ["--clearenv", "--setenv", "PATH", f"{Path(sys.prefix).resolve()}/bin:/usr/bin:/bin",
                "--setenv", "HOME", str(cwd)]
    for name, value in {**{n: os.environ[n] for n in ENVIRONMENT if n in os.environ}, **env}.items():
        command += ["--setenv", name, value]
    if os.geteuid() == 0:
        # util-linux's, found here: not through the PATH inside, which starts with the venv's bin
        command += ["--", shutil.which("prlimit") or "prlimit", f"--nproc={MAX_PROCESSES}",
                    shutil.which("setpriv") or "setpriv", f"--reuid={KERNEL_UID}", f"--regid={KERNEL_UID}", "--clear-groups",
                    "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    else:  # an unprivileged user: a user namespace of its own, mapped to that user
        command += ["--unshare-user", "--disable-userns", "--cap-drop", "ALL", "--"]
    return command + list(argv)


class SubmissionCgroup:
    """Limits for all of a submission's processes together: a cgroup (v1 ``memory`` and ``pids``
    controllers) of its own, where the machine lets the grader create one; else nothing.

    :meth:`command` prefixes a command line so that it joins the cgroup before it starts, so
    every process it forks is counted; :meth:`close` kills whatever is left and removes it.
    """

    def __init__(self, *, memory_bytes: int, max_processes: int = MAX_PROCESSES) -> None:
        self.folders: list[Path] = []
        name = f"vgcourse-{os.getpid()}-{secrets.token_hex(4)}"
        limits = {"memory": {"memory.limit_in_bytes": memory_bytes}, "pids": {"pids.max": max_processes}}
        for controller, files in limits.items():
            folder = _own_cgroup(controller)
            if folder is None:
                continue
            try:
                (folder / name).mkdir()
                self.folders.append(folder / name)
                for file, value in files.items():
                    (folder / name / file).write_text(str(value))
            except OSError:  # not allowed here: the per-process limits still hold
                continue
            if controller == "memory":
                with contextlib.suppress(OSError):  # swap too, where the kernel accounts it
                    (folder / name / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run from a shell that first moves itself into the cgroup."""
        if not self.folders:
            return list(argv)
        joins = " && ".join(f'echo $$ > "{folder}/cgroup.procs"' for folder in self.folders)
        return ["/bin/sh", "-c", f'{joins} && exec "$0" "$@"', *argv]

    def close(self) -> None:
        """Kill every process left in the cgroup and remove it."""
        for folder in self.folders:
            for _ in range(50):
                try:
                    pids = (folder / "cgroup.procs").read_text().split()
                    for pid in pids:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(pid), signal.SIGKILL)
                    folder.rmdir()
                    break
                except OSError:  # still busy: the killed processes are exiting
                    time.sleep(0.05)
        self.folders = []


def _own_cgroup(controller: str) -> Path | None:
    """Where this process's cgroup of a v1 ``controller`` is, if that hierarchy is mounted."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            folder = Path("/sys/fs/cgroup") / controller / path.lstrip("/")
            return folder if (folder / "cgroup.procs").exists() else None
    return None


def give_to_kernel(path: Path) -> None:
    """Let the kernel's uid own ``path`` (run as root: it is not the grader's uid); else nothing."""
    if os.geteuid() == 0:
        os.chown(path, KERNEL_UID, KERNEL_UID)


def sandbox_problem(timeout: float = 20.0) -> str | None:
    """Why kernels cannot be sandboxed here (``None`` when they can): tries ``bwrap`` with this
    environment's Python, no network and the kernel's uid."""
    bwrap = bwrap_path()
    if bwrap is None:
        return f"bwrap not found: {INSTALL_HINT}"
    import tempfile

    with tempfile.TemporaryDirectory(prefix="vgcourse-sandbox-check-") as folder:
        session = Path(folder)
        give_to_kernel(session)
        probe = "import socket, vgcourse; print(len(socket.if_nameindex()))"
        try:
            done = subprocess.run(sandboxed([interpreter(), "-c", probe], session, cwd=session, env={}, bwrap=bwrap),
                                  capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"{bwrap} failed: {type(error).__name__}: {error}"
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            return f"{bwrap} failed (exit status {done.returncode}): {last[:200]}"
        if done.stdout.strip() != "1":
            return f"the sandbox has network interfaces besides loopback ({done.stdout.strip()})"
    return None
