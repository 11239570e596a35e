"""A fresh, limited Jupyter kernel that runs one submission's cells for the batch grader.

:class:`KernelSession` starts a ``python3`` kernel of this environment (via ``nbclient``) in a
folder of the grader's choosing — in a sandbox (:mod:`vgcourse.grading.sandbox`) unless told
otherwise — caps its memory, and runs cells one at a time under a per-cell timeout and an
overall deadline, which a watchdog enforces by killing the kernel even when the grader is
blocked. Whatever a cell does — loop forever, raise, exhaust memory, kill its own process —
the session reports it as a :class:`CellRun` instead of raising, so the caller can grade what
is left and move on to the next submission.

Nothing the kernel sends back is trusted: outputs are discarded (only the reply's status and
error name are read), and messages over :data:`MAX_MESSAGE_BYTES` are refused by the sockets.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import nbformat
import zmq
import zmq.asyncio
from jupyter_client import AsyncKernelManager
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.kernelspec import KernelSpec
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from vgcourse.grading import sandbox

KERNEL_NAME = "python3"
"""The kernel every submission runs in, whatever kernel its metadata names."""

INTERRUPT_GRACE = 10.0
"""Seconds an interrupted cell gets to stop before the kernel counts as stuck."""

MAX_MESSAGE_BYTES = 256 * 2**20
"""Largest message accepted from a kernel; a bigger one (a gigantic print) breaks the connection."""

CGROUP_BASE_MB = 1024
"""Memory a submission's processes may use together beyond its ``memory_limit_mb``, where a
cgroup can hold them all (:class:`~vgcourse.grading.sandbox.SubmissionCgroup`): a fresh kernel
with torch and the grader's code, plus its private ``/tmp``."""

WATCHDOG_GRACE = 15.0
"""Seconds past the overall deadline (plus :data:`INTERRUPT_GRACE`) after which the kernel is
killed whatever the grader is doing."""

_LOG = logging.getLogger("vgcourse.grading.runner")
_LOG.addHandler(logging.NullHandler())
_LOG.propagate = False  # nbclient logs every timeout and interrupt at ERROR level; the report says it better

# Runs first in every kernel. torch and the course are imported before the cap is measured:
# every exercise needs them, so the learner's --memory-limit megabytes are all theirs. Then the
# kernel is locked (vgcourse.grading.lockdown) before any of the learner's code runs.
_PREAMBLE = """\
def _vgcourse_grader_setup(extra_mb, refused):
    import resource
    import torch
    from vgcourse.grading import lockdown
    lockdown.preload()
    try:
        with open("/proc/self/status") as status:
            size_kb = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        size_kb = None  # not Linux: no address-space cap
    if size_kb is not None:
        cap = (size_kb + extra_mb * 1024) * 1024
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        if hard != resource.RLIM_INFINITY:
            cap = min(cap, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    lockdown.lock(refused)
_vgcourse_grader_setup({extra_mb}, {refused!r})
del _vgcourse_grader_setup
"""


@dataclass(frozen=True)
class CellRun:
    """How one cell ended.

    ``outcome`` is one of:

    * ``"ok"`` — it finished without an exception;
    * ``"error"`` — it raised; ``error`` is ``"ExceptionName: message"``;
    * ``"timeout"`` — it ran past the per-cell timeout and stopped when interrupted;
    * ``"deadline"`` — the overall deadline ended it (or left no time to start it);
    * ``"stuck"`` — it ran past its timeout and ignored the interrupt: the kernel is unusable;
    * ``"lost"`` — the kernel's reply arrived but its output never finished (a message over
      :data:`MAX_MESSAGE_BYTES`): the kernel is unusable;
    * ``"dead"`` — the kernel process exited (``os._exit``, a crash, killed by the OS).
    """

    outcome: str
    error: str = ""
    seconds: float = 0.0


class KernelStartError(RuntimeError):
    """The kernel could not be started or prepared; not the submission's fault."""


class _SizeLimitedClient(AsyncKernelClient):
    def _context_default(self) -> zmq.asyncio.Context:
        self._created_context = True
        context = zmq.asyncio.Context()
        context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)  # default for every socket it creates
        return context


class _GradingKernelManager(AsyncKernelManager):
    """Connects with :class:`_SizeLimitedClient` over Unix sockets in ``folder``, starts this
    environment's ipykernel (never a kernel.json from disk, which a submission could rewrite),
    sandboxed with ``sandbox_files`` (read-only, writable) when given, interrupts by message, and
    remembers whether nbclient interrupted a cell."""

    def __init__(self, *, folder: Path, sandbox_files: tuple[list[Path], list[Path]] | None,
                 cpu_seconds: int | None = None, cgroup: sandbox.SubmissionCgroup | None = None,
                 **kwargs: Any) -> None:
        super().__init__(transport="ipc", connection_file=str(folder / "connection.json"), **kwargs)
        self.client_factory = _SizeLimitedClient
        self.interrupted = False
        self._sandbox_files, self._cpu_seconds, self.cgroup = sandbox_files, cpu_seconds, cgroup
        # a signal would go to the process group, which in the sandbox is bwrap's, not the kernel's
        self._kernel_spec = KernelSpec(argv=[sandbox.interpreter(), "-m", "ipykernel_launcher", "-f",
                                             "{connection_file}"], display_name="Python 3", language="python",
                                       interrupt_mode="message")

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        command = super().format_kernel_cmd(extra_arguments)
        if self._sandbox_files is not None:
            read_only, writable = self._sandbox_files
            command = sandbox.sandboxed(command, env={}, read_only=read_only, writable=writable,
                                        cpu_seconds=self._cpu_seconds)
        return self.cgroup.command(command) if self.cgroup is not None else command

    def write_connection_file(self, **kwargs: Any) -> None:
        super().write_connection_file(**kwargs)
        if self._sandbox_files is not None:
            sandbox.give_to_kernel(Path(self.connection_file))

    async def interrupt_kernel(self) -> None:
        self.interrupted = True  # nbclient interrupts only when a cell runs past its timeout
        await super().interrupt_kernel()


class _GradingClient(NotebookClient):
    """A NotebookClient that keeps no outputs: a submission could print gigabytes."""

    def output(self, outs: list, msg: dict[str, Any], display_id: str | None, cell_index: int) -> None:
        return None

    def handle_comm_msg(self, outs: list, msg: dict[str, Any], cell_index: int) -> None:
        return None


class KernelSession:
    """One fresh kernel for one submission; use as a context manager.

    The kernel sees no GPU and its stdout/stderr go nowhere. Before the first cell, it imports
    the course and is locked (:mod:`vgcourse.grading.lockdown`).

    Args:
        folder: a fresh, empty directory for this session: ``folder/kernel`` holds the kernel's
            connection file and sockets; ``folder/exchange`` is for files the grader gives it
            (read-only in the sandbox), and :attr:`outputs` the one file it may write there.
            In the sandbox it works in an in-memory home folder
            (:data:`~vgcourse.grading.sandbox.HOME`); without, in ``folder/work`` with its own
            IPython directory ``folder/ipython`` (no profile or startup files).
        cell_timeout: seconds one cell may run before it is interrupted.
        deadline: ``time.monotonic()`` value after which nothing more runs; the kernel is killed
            :data:`INTERRUPT_GRACE` + :data:`WATCHDOG_GRACE` seconds after it.
        memory_limit_mb: address space the kernel may add after the grader's setup
            (Linux only; elsewhere there is no cap).
        sandboxed: run the kernel in the sandbox of :mod:`vgcourse.grading.sandbox` (needs bwrap);
            without it, the kernel can do anything the grader's user can.
        refused: dotted names of course objects that answer a question by themselves, each
            with the message it raises once the kernel is locked
            (:func:`~vgcourse.grading.lockdown.refuse`).

    Raises (on entering):
        KernelStartError: if the kernel cannot be started or the setup cell fails.
    """

    def __init__(self, folder: Path, *, cell_timeout: float, deadline: float, memory_limit_mb: int,
                 sandboxed: bool = True, refused: Mapping[str, str] | None = None) -> None:
        self.folder = Path(folder)
        self.cell_timeout = cell_timeout
        self.deadline = deadline
        self.memory_limit_mb = memory_limit_mb
        self.sandboxed = sandboxed
        self.refused = dict(refused or {})
        self.broken: CellRun | None = None  # set once the kernel is stuck, lost or dead
        self._nb = nbformat.v4.new_notebook()
        self._reply: dict[str, Any] | None = None
        exchange = self.folder / "exchange"
        files = ([exchange], [self.folder / "kernel", self.outputs]) if sandboxed else None
        cpu_seconds = math.ceil((max(deadline - time.monotonic(), 0.0) + INTERRUPT_GRACE + WATCHDOG_GRACE)
                                * (os.cpu_count() or 1))
        self._km = _GradingKernelManager(folder=self.folder / "kernel", sandbox_files=files,
                                         cpu_seconds=cpu_seconds, kernel_name=KERNEL_NAME)
        self._client = _GradingClient(
            self._nb, km=self._km, kernel_name=KERNEL_NAME,
            allow_errors=True, interrupt_on_timeout=True, raise_on_iopub_timeout=True,
            iopub_timeout=math.ceil(INTERRUPT_GRACE), shutdown_kernel="immediate", log=_LOG,
            error_on_timeout={"ename": "CellTimeout", "evalue": "", "traceback": []},  # don't wait for the reply
            on_cell_executed=self._keep_reply,
        )
        self._setup = None
        self._pgid: int | None = None
        self._watchdog: threading.Timer | None = None
        self._process: subprocess.Popen | None = None

    def _keep_reply(self, cell: Any, cell_index: int, execute_reply: dict[str, Any]) -> None:
        self._reply = execute_reply

    @property
    def outputs(self) -> Path:
        """The file the kernel saves results to (``folder/exchange/outputs.pt``, created on entering):
        in the sandbox the only file of the grader's it can change."""
        return self.folder / "exchange" / "outputs.pt"

    def __enter__(self) -> KernelSession:
        if self.sandboxed and sandbox.bwrap_path() is None:
            raise KernelStartError(f"no sandbox for the kernel: {sandbox.INSTALL_HINT}")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o755)  # the kernel's uid must reach its folders, not create others here
        for name in ("kernel", "exchange") if self.sandboxed else ("work", "ipython", "exchange", "kernel"):
            (self.folder / name).mkdir(exist_ok=True)
        self.outputs.touch(mode=0o600, exist_ok=False)
        if self.sandboxed:
            sandbox.give_to_kernel(self.folder / "kernel")
            sandbox.give_to_kernel(self.outputs)
            self._km.cgroup = sandbox.SubmissionCgroup(
                memory_bytes=(self.memory_limit_mb + CGROUP_BASE_MB) * 2**20)
            # bwrap's own environment is readable by a kernel of its uid: nothing of the grader's in it
            env, cwd = sandbox.allowed_environment(), str(self.folder)  # bwrap's; the kernel's is HOME
        else:
            # No GPU: CUDA reserves far more address space than the memory cap allows, and the
            # exercises are sized for a laptop CPU anyway (in the sandbox there is no GPU device).
            env = {**os.environ, "IPYTHONDIR": str(self.folder / "ipython"), "CUDA_VISIBLE_DEVICES": ""}
            env.pop("JPY_PARENT_PID", None)
            cwd = str(self.folder / "work")
        self._setup = self._client.setup_kernel(cwd=cwd, env=env,
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self._setup.__enter__()
        except Exception as error:
            raise KernelStartError(f"the kernel did not start ({type(error).__name__}: {error})") from error
        if self.sandboxed:  # its sockets exist: nothing more to create there
            sandbox.take_from_kernel(self.folder / "kernel")
        self._pgid = getattr(getattr(self._client.km, "provisioner", None), "pgid", None)
        self._process = getattr(getattr(self._client.km, "provisioner", None), "process", None)
        self._watchdog = threading.Timer(max(self.deadline - time.monotonic(), 0.0) + INTERRUPT_GRACE
                                         + WATCHDOG_GRACE, self._kill)
        self._watchdog.daemon = True
        self._watchdog.start()
        try:
            setup = self.run(_PREAMBLE.format(extra_mb=int(self.memory_limit_mb), refused=self.refused),
                             timeout=max(self.deadline - time.monotonic(), 0.0), history=False)
            if setup.outcome == "deadline":  # every later cell will report it
                self.broken = CellRun("deadline", "the time limit ran out while the kernel was starting")
            elif setup.outcome != "ok":
                raise KernelStartError(f"the grader's setup cell failed: {setup.outcome} {setup.error}".strip())
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _kill(self) -> None:
        """SIGKILL the kernel's process group: in the sandbox, bwrap, and with it every process
        in the sandbox's PID namespace, ``setsid`` ones included."""
        if self._pgid is not None:
            try:
                os.killpg(self._pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def __exit__(self, *exc_info: Any) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        try:
            if self._setup is not None:
                self._setup.__exit__(None, None, None)  # kills the kernel's process group if it is alive
        finally:
            self._setup = None
            self._kill()  # the kernel may have died and left children behind
            self._pgid = None
            if self._process is not None:  # reap it: a batch would otherwise pile up zombies
                try:
                    self._process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
                self._process = None
            if self._km.cgroup is not None:
                self._km.cgroup.close()
                self._km.cgroup = None

    def run(self, source: str, *, timeout: float | None = None, history: bool = True) -> CellRun:
        """Run ``source`` as one cell; how it ended, never an exception from the cell.

        ``timeout`` defaults to the session's ``cell_timeout``; either way the overall deadline
        can shorten it. Once the kernel is stuck, lost or dead, every later call returns that.
        """
        if self.broken is not None:
            return self.broken
        remaining = self.deadline - time.monotonic()
        if remaining < 0.5:
            return CellRun("deadline", "no time left")
        limit = self.cell_timeout if timeout is None else timeout
        budget = min(limit, remaining)
        cell = nbformat.v4.new_code_cell(source)
        self._nb.cells.append(cell)
        self._client.timeout_func = lambda _cell: budget
        self._reply = None
        self._client.km.interrupted = False
        started = time.monotonic()
        try:
            self._client.execute_cell(cell, len(self._nb.cells) - 1, store_history=history)
        except DeadKernelError:
            self.broken = CellRun("dead", "the kernel died", time.monotonic() - started)
            return self.broken
        except CellTimeoutError:  # after the reply, the output never finished
            seconds = time.monotonic() - started
            if self._client.km.interrupted:
                self.broken = CellRun("stuck", f"ran longer than {budget:.3g} s and did not stop within "
                                               f"{INTERRUPT_GRACE:g} s of being interrupted", seconds)
            else:
                self.broken = CellRun("lost", "the kernel's output stopped arriving (a single output "
                                              f"over {MAX_MESSAGE_BYTES // 2**20} MB?)", seconds)
            return self.broken
        seconds = time.monotonic() - started
        if self._client.km.interrupted:
            if budget < limit:
                return CellRun("deadline", f"stopped by the overall time limit after {budget:.3g} s", seconds)
            return CellRun("timeout", f"ran longer than {budget:.3g} s and was interrupted", seconds)
        content = (self._reply or {}).get("content", {})
        if content.get("status") == "error":
            name, value = str(content.get("ename") or "Error"), str(content.get("evalue") or "")
            return CellRun("error", f"{name}: {value}" if value else name, seconds)
        return CellRun("ok", "", seconds)
