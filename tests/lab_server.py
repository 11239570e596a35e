"""A JupyterLab server for the browser test: the project's environment, a free local port, a
learner's workspace made by `vgcourse workspace` in a temp folder (as `make lab` makes one), and
nothing from the user's own Jupyter settings."""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from vgcourse.tools.workspace import sync_workspace


LAB_SETTINGS = {
    # Every cell stays in the page (no virtual scrolling), so the test sees every prompt.
    "notebook-extension/tracker": {"windowingMode": "none"},
    # No news or update checks: there is no network to ask, and the pop-up covers the notebook.
    "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LabServer:
    """`jupyter lab` serving a temp workspace of the course in `course`, rooted at the workspace
    as `make lab` does; a context manager that stops it on exit.

    The copy keeps the course's own notebooks untouched when the browser runs and saves them.
    """

    def __init__(self, course: Path, startup_timeout: float = 90.0):
        self.course = Path(course)
        self.startup_timeout = startup_timeout
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> "LabServer":
        self._tmp = Path(tempfile.mkdtemp(prefix="vgcourse-lab-"))
        self.root = self._tmp / "my-course"
        self.log_path = self._tmp / "jupyterlab.log"
        try:
            self._start()
            self._wait_until_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        sync_workspace(self.course, self.root)
        settings = self._tmp / "lab-settings"
        for name, values in LAB_SETTINGS.items():
            path = settings / "@jupyterlab" / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = dict(
            os.environ,
            JUPYTER_CONFIG_DIR=str(self._tmp / "config"),
            JUPYTER_DATA_DIR=str(self._tmp / "data"),
            JUPYTER_RUNTIME_DIR=str(self._tmp / "runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(self._tmp / "workspaces"),
            IPYTHONDIR=str(self._tmp / "ipython"),
        )
        command = [
            sys.executable, "-m", "jupyter", "lab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",  # fail loudly rather than serve on another port
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                command, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,  # a group of its own, to stop it whole
            )

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self._process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"JupyterLab did not answer within {self.startup_timeout:.0f} s:\n{self.log_tail()}")

    def url(self, path: str) -> str:
        """The address of `path` on this server, with the token."""
        return f"{self.base_url}/{path}?token={self.token}"

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines the server printed, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    def __exit__(self, *exc_info) -> None:
        if self._process is not None and self._process.poll() is None:
            # SIGTERM asks the server to shut its kernels down; SIGKILL its group if it won't.
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
        self._kill_leftover_kernels()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def _kill_leftover_kernels(self) -> None:
        """Kernels run in sessions of their own, so a killed server leaves them behind; they are
        found by their connection file, which lies in this server's temp folder."""
        marker = f"{self._tmp}/".encode()
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if marker in cmdline.read_bytes():
                    os.kill(int(cmdline.parent.name), signal.SIGKILL)
            except OSError:  # gone meanwhile, or not ours to read
                pass
