"""The sandbox a submission's kernel runs in: Debian's ``bubblewrap`` (``bwrap``).

:func:`sandboxed` wraps a kernel's command line so that the kernel gets its own PID, network,
IPC and UTS namespaces (no network at all: the grader talks to it over Unix sockets in the
session folder), sees the interpreter, the venv and the ``vgcourse`` package read-only — but
not the package's reference answers (:func:`hidden_folders`) — and nothing else of the
machine's files: no other submission, no output file, no home folder. It can write only to the
files the grader gives it, a home folder and a ``/tmp`` in memory, and no file over
:data:`MAX_FILE_BYTES`; it starts with an allow-list of environment variables, the machine's
host name and none of ``bwrap``'s command line, and dies with the grader. Run as root, the kernel also drops to the
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
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import vgcourse
from vgcourse.grading.registry import QUESTIONS_FOLDER

KERNEL_UID = 65534
"""The uid (and gid) a kernel runs as when the grader is root: ``nobody`` on Debian."""

MAX_PROCESSES = 256
"""Processes (threads included) the kernel's uid may have when the grader is root; torch's
thread pools need a few dozen, a fork bomb needs more."""

TMP_BYTES = 64 * 2**20
"""Size of the kernel's private ``/tmp`` (and ``/dev/shm``), in memory."""

SCRATCH_BYTES = 512 * 2**20
"""Size of the kernel's home and working folder :data:`HOME` (its IPython folder is in it), in memory."""

HOME = "/home/student"
"""The kernel's working folder and ``$HOME`` inside the sandbox."""

MAX_FILE_BYTES = 256 * 2**20
"""Largest file any process of the kernel may write (``RLIMIT_FSIZE``): the only files it can
write outside memory are the ones the grader gives it (``writable``)."""

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


def hidden_folders() -> list[Path]:
    """Folders inside :func:`readable_folders` a kernel must not see: the reference answers
    (:data:`~vgcourse.grading.registry.QUESTIONS_FOLDER`); in the sandbox they are empty."""
    return [QUESTIONS_FOLDER]


def sandboxed(argv: Sequence[str], *, env: dict[str, str], writable: Sequence[Path] = (),
              read_only: Sequence[Path] = (), cpu_seconds: int | None = None, bwrap: str | None = None) -> list[str]:
    """``argv`` wrapped in a ``bwrap`` command line that runs it sandboxed (see the module's docstring).

    The command starts in :data:`HOME`, an in-memory folder of :data:`SCRATCH_BYTES` that is
    also its ``$HOME`` and vanishes with it.

    Args:
        argv: the kernel's command, its first item an absolute path inside :func:`readable_folders`.
        env: variables to set in the kernel, on top of the allowed ones of :data:`ENVIRONMENT`.
        read_only: folders or files of the grader's it may read, at the same paths.
        writable: folders or files it may change, at the same paths (after ``read_only``, so a
            file inside a read-only folder can be writable). Their parents are left out.
        cpu_seconds: CPU time each of its processes may use (``RLIMIT_CPU``); default unlimited.
        bwrap: the ``bwrap`` executable; default :func:`bwrap_path`.

    Raises:
        FileNotFoundError: if bwrap is not installed, saying how to install it.
    """
    bwrap = bwrap or bwrap_path()
    if bwrap is None:
        raise FileNotFoundError(f"bwrap not found: {INSTALL_HINT}")
    command = [bwrap, "--die-with-parent", "--new-session",
               "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
               "--hostname", socket.gethostname(), "--proc", "/proc", "--dev", "/dev",
               "--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/dev/shm",
               "--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp"]
    for hidden in ("/proc/1/cmdline", "/proc/1/environ"):  # bwrap's own: the whole command line
        command += ["--ro-bind", "/dev/null", hidden]
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
        made.add(str(folder))
    for folder in hidden_folders():
        command += ["--perms", "0555", "--size", "4096", "--tmpfs", str(folder)]
    for flag, paths in (("--ro-bind", read_only), ("--bind", writable)):
        for path in map(lambda p: Path(p).resolve(), paths):
            command += _parents(path, made) + [flag, str(path), str(path)]
            made.add(str(path))
    command += _parents(Path(HOME), made) + ["--perms", "1777", "--size", str(SCRATCH_BYTES), "--tmpfs", HOME,
                                             "--chdir", HOME]
    command += ["--clearenv", "--setenv", "PATH", f"{Path(sys.prefix).resolve()}/bin:/usr/bin:/bin",
                "--setenv", "HOME", HOME]
    for name, value in {**allowed_environment(), **env}.items():
        command += ["--setenv", name, value]
    # util-linux's, found here: not through the PATH inside, which starts with the venv's bin
    limits = [shutil.which("prlimit") or "prlimit", f"--fsize={MAX_FILE_BYTES}"]
    if cpu_seconds is not None:
        limits.append(f"--cpu={int(cpu_seconds)}")
    if os.geteuid() == 0:
        command += ["--", *limits, f"--nproc={MAX_PROCESSES}",
                    shutil.which("setpriv") or "setpriv", f"--reuid={KERNEL_UID}", f"--regid={KERNEL_UID}", "--clear-groups",
                    "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    else:  # an unprivileged user: a user namespace of its own, mapped to that user
        command += ["--unshare-user", "--disable-userns", "--cap-drop", "ALL", "--", *limits]
    return command + list(argv)


def allowed_environment() -> dict[str, str]:
    """The grader's variables a kernel may see (:data:`ENVIRONMENT`), and ``PATH``: what the
    sandbox gets, and what ``bwrap`` itself is started with (its own environment is readable
    in ``/proc`` by a kernel of the same uid)."""
    return {name: os.environ[name] for name in ("PATH", *ENVIRONMENT) if name in os.environ}


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


def take_from_kernel(path: Path) -> None:
    """Give ``path`` back to the grader (run as root), so the kernel's uid can no longer create
    files in it; else nothing (a grader that is not root shares its uid with the kernel)."""
    if os.geteuid() == 0:
        os.chown(path, 0, 0)
        os.chmod(path, 0o755)


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
            done = subprocess.run(sandboxed([interpreter(), "-c", probe], env={}, writable=[session], bwrap=bwrap),
                                  capture_output=True, text=True, timeout=timeout, env=allowed_environment())
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"{bwrap} failed: {type(error).__name__}: {error}"
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            return f"{bwrap} failed (exit status {done.returncode}): {last[:200]}"
        if done.stdout.strip() != "1":
            return f"the sandbox has network interfaces besides loopback ({done.stdout.strip()})"
    return None
