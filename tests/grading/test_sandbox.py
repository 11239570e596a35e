"""vgcourse.grading.sandbox: what a hostile submission's kernel can no longer do.

Each attack runs as a cell in a sandboxed :class:`KernelSession`; a cell raises ``Attack`` when
the attack worked (as every one of them does in an unsandboxed kernel), so the cell must end
"ok". Nothing here leaves the machine (no network is used) and every process is killed."""

import os
import secrets
import sys
import time
from pathlib import Path

import pytest
from fixtures.grading_submissions import running

import vgcourse
from vgcourse.grading import runner, sandbox
from vgcourse.grading.runner import KernelSession, KernelStartError

pytestmark = pytest.mark.sandbox  # grades in sandboxed kernels (tests/conftest.py)

ATTACK = "class Attack(Exception): pass\n"


def session(folder: Path, seconds: float = 60, memory_limit_mb: int = 1024, **kwargs) -> KernelSession:
    return KernelSession(folder, cell_timeout=20, deadline=time.monotonic() + seconds,
                         memory_limit_mb=memory_limit_mb, **kwargs)


@pytest.fixture(scope="module")
def other_submission(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("submissions") / "zoe.ipynb"
    path.write_text('{"the answers": "of another student"}')
    return path


@pytest.fixture(scope="module")
def kernel(tmp_path_factory, other_submission):
    os.environ["VGCOURSE_TEST_SECRET"] = "grader-only"  # not on the allow-list
    try:
        with session(tmp_path_factory.mktemp("session")) as started:
            yield started
    finally:
        del os.environ["VGCOURSE_TEST_SECRET"]


def attempt(kernel: KernelSession, source: str) -> None:
    run = kernel.run(ATTACK + source)
    assert run.outcome == "ok", run.error


def test_a_kernel_cannot_read_another_submission(kernel, other_submission):
    attempt(kernel, f"try:\n    open({str(other_submission)!r}).read()\nexcept OSError:\n    pass\n"
                    "else:\n    raise Attack('read another submission')\n")
    attempt(kernel, f"import os\nif os.path.exists({str(other_submission.parent)!r}):\n"
                    "    raise Attack('sees the submissions folder')\n")


def test_a_kernel_cannot_see_the_grader_or_its_command_line(kernel):
    attempt(kernel, f"try:\n    open('/proc/{os.getpid()}/cmdline').read()\nexcept OSError:\n    pass\n"
                    "else:\n    raise Attack('read the grader command line')\n")
    attempt(kernel, f"import os\ntry:\n    os.kill({os.getpid()}, 0)  # 0: only whether it could\n"
                    "except OSError:\n    pass\nelse:\n    raise Attack('signalled the grader')\n")
    attempt(kernel, "import os\npids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
                    "if len(pids) > 3:\n    raise Attack(f'sees {len(pids)} processes')\n")
    attempt(kernel, "import os\nif os.path.exists(os.path.expanduser('~root')) and os.listdir('/root'):\n"
                    "    raise Attack('sees the home folder')\n")


@pytest.mark.parametrize("folder", [Path(vgcourse.__file__).parent / "grading",
                                    Path(sys.prefix) / "lib", Path(sys.base_prefix)],
                         ids=["package", "venv", "interpreter"])
def test_a_kernel_cannot_write_to_the_package_the_venv_or_the_interpreter(kernel, folder):
    probe = folder / f"_sandbox_probe_{secrets.token_hex(4)}.pth"
    try:
        attempt(kernel, f"try:\n    open({str(probe)!r}, 'x').close()\nexcept OSError:\n    pass\n"
                        "else:\n    raise Attack('wrote outside its session folder')\n")
    finally:
        probe.unlink(missing_ok=True)


def test_a_kernel_can_write_only_its_outputs_file_its_home_and_a_small_tmp(kernel, tmp_path):
    targets = [tmp_path / "planted", kernel.folder / "exchange" / "planted", kernel.folder / "planted"]
    if os.geteuid() == 0:  # the kernel's uid made its sockets there, then the grader took the folder back
        targets.append(kernel.folder / "kernel" / "planted")
    for target in targets:
        attempt(kernel, f"try:\n    open({str(target)!r}, 'x').close()\nexcept OSError:\n    pass\n"
                        "else:\n    raise Attack('wrote outside its outputs file')\n")
        assert not target.exists()
    attempt(kernel, "open('here.txt', 'w').write('ok')\nopen('/tmp/scratch', 'w').write('ok')\n"
                    f"open({str(kernel.outputs)!r}, 'w').write('ok')\n")
    for big, size in (("/tmp/big", sandbox.TMP_BYTES), ("big", sandbox.SCRATCH_BYTES)):
        attempt(kernel, f"try:\n    open({big!r}, 'wb').write(bytes({size + 2**20}))\nexcept OSError:\n"
                        f"    pass\nelse:\n    raise Attack('wrote past the size limit')\nfinally:\n"
                        f"    import os; os.remove({big!r})\n")
    assert kernel.outputs.read_text() == "ok"
    assert sorted(p.name for p in kernel.folder.iterdir()) == ["exchange", "kernel"]  # its home is in the sandbox


def test_no_file_a_kernel_writes_is_larger_than_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "MAX_FILE_BYTES", 2**20)
    with session(tmp_path) as started:
        run = started.run(ATTACK + f"try:\n    open({str(started.outputs)!r}, 'wb').write(bytes(2 * 2**20))\n"
                          "except OSError:\n    pass\nelse:\n    raise Attack('wrote 2 MB')\n")
        assert run.outcome == "ok", run.error
    assert started.outputs.stat().st_size <= 2**20


def test_the_kernel_cannot_read_the_reference_answers(kernel):
    questions = Path(vgcourse.__file__).parent / "grading" / "questions"
    assert (questions / "ex01.py").exists()
    attempt(kernel, f"import os\nif os.listdir({str(questions)!r}):\n    raise Attack('sees the references')\n"
                    "try:\n    import vgcourse.grading.questions.ex01\nexcept ImportError:\n    pass\n"
                    "else:\n    raise Attack('imported the references')\n"
                    "from vgcourse.grading import QUESTIONS\nif QUESTIONS:\n    raise Attack('has the questions')\n")


def test_the_kernel_looks_like_a_learners_not_like_a_grading_run(kernel):
    import socket
    attempt(kernel, "import os, socket\n"
                    f"if os.getcwd() != {sandbox.HOME!r} or os.environ['HOME'] != {sandbox.HOME!r}:\n"
                    "    raise Attack(os.getcwd())\n"
                    f"if socket.gethostname() != {socket.gethostname()!r}:\n    raise Attack(socket.gethostname())\n"
                    "if {'IPYTHONDIR', 'CUDA_VISIBLE_DEVICES'} & set(os.environ):\n    raise Attack('grader variables')\n"
                    "for name in ('cmdline', 'environ'):\n    try:\n        seen = open(f'/proc/1/{name}', 'rb').read()\n"
                    "    except OSError:\n        continue\n    if seen:\n        raise Attack(f'bwrap {name}: {seen[:80]}')\n")


def test_the_kernels_cpu_time_is_limited(kernel):
    attempt(kernel, "import resource\nif resource.getrlimit(resource.RLIMIT_CPU)[0] == resource.RLIM_INFINITY:\n"
                    "    raise Attack('unlimited CPU time')\n")


def test_a_kernel_has_no_network_but_loopback(kernel):
    attempt(kernel, "import socket\nif [name for _, name in socket.if_nameindex()] != ['lo']:\n"
                    "    raise Attack(f'network interfaces {socket.if_nameindex()}')\n")


def test_only_allowed_environment_variables_reach_the_kernel(kernel):
    attempt(kernel, "import os\nleaked = {'VGCOURSE_TEST_SECRET', 'JPY_PARENT_PID', 'PYTHONPATH'} & set(os.environ)\n"
                    "if leaked:\n    raise Attack(f'environment {leaked}')\n")


@pytest.mark.skipif(os.geteuid() != 0, reason="the grader keeps its own uid in a user namespace when not root")
def test_as_root_the_kernel_runs_as_an_unprivileged_uid_without_capabilities(kernel):
    attempt(kernel, "import os\nstatus = dict(line.split(':', 1) for line in open('/proc/self/status'))\n"
                    f"if os.getuid() != {sandbox.KERNEL_UID} or int(status['CapEff'], 16) or "
                    "int(status['CapBnd'], 16) or status['NoNewPrivs'].strip() != '1':\n"
                    "    raise Attack(f'uid {os.getuid()}, {status[\"CapEff\"]}')\n")


def test_no_process_of_a_submission_outlives_its_grading(tmp_path):
    marker = f"{300 + secrets.randbelow(10**6) / 10**7:.7f}"
    with session(tmp_path) as started:
        run = started.run(f"import subprocess\nsubprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
                          "import os\nif os.fork() == 0:\n    os.setsid()\n    os.execvp('sleep', ['sleep', "
                          f"'{marker}'])\n")
        assert run.outcome == "ok", run.error
        deadline = time.monotonic() + 10
        while len(running(marker)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(running(marker)) == 2
    deadline = time.monotonic() + 10
    while running(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(marker)
    assert not zombie_children()  # the kernel's process was reaped, not left for the end of the batch


def zombie_children() -> list[int]:
    """This process's children that exited and were not waited for."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            state, parent = (proc / "stat").read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if state == "Z" and int(parent) == os.getpid():
            found.append(int(proc.name))
    return found


def test_the_watchdog_kills_the_kernel_when_the_grader_is_blocked(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "INTERRUPT_GRACE", 0.5)
    monkeypatch.setattr(runner, "WATCHDOG_GRACE", 0.5)
    marker = f"{300 + secrets.randbelow(10**6) / 10**7:.7f}"
    with session(tmp_path, seconds=15) as started:  # a kernel takes a few seconds to start
        assert started.run(f"import subprocess\nsubprocess.Popen(['sleep', '{marker}'], start_new_session=True)"
                           ).outcome == "ok"
        time.sleep(max(started.deadline - time.monotonic(), 0) + 3)  # the grader stuck, e.g. in an open()
        assert not running(marker)
        assert started.run("1").outcome in ("dead", "deadline")


def test_without_bwrap_the_kernel_is_refused_with_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    with pytest.raises(KernelStartError, match="apt-get install bubblewrap"):
        session(tmp_path).__enter__()
    with pytest.raises(FileNotFoundError, match="apt-get install bubblewrap"):
        sandbox.sandboxed(["python"], env={})
    assert "apt-get install bubblewrap" in sandbox.sandbox_problem()


def test_the_sandbox_works_here():
    assert sandbox.sandbox_problem() is None


def test_the_kernel_command_is_the_venvs_python_and_no_kernel_json(tmp_path):
    manager = runner._GradingKernelManager(folder=tmp_path / "kernel", sandbox_files=([], []),
                                           kernel_name=runner.KERNEL_NAME)
    assert manager.kernel_spec.argv[0] == sandbox.interpreter() and Path(sandbox.interpreter()).is_absolute()
    assert manager.kernel_spec.interrupt_mode == "message" and manager.transport == "ipc"


def test_grade_refuses_without_the_sandbox_unless_told_no_sandbox(tmp_path, monkeypatch, capsys):
    from fixtures.grading_submissions import solution, write

    from vgcourse.tools.cli import main

    good = write(solution(), tmp_path / "submissions", "alice")
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    out = tmp_path / "scores.csv"
    assert main(["grade", str(good), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "cannot be sandboxed" in error and "apt-get install bubblewrap" in error and "--no-sandbox" in error
    assert not out.exists()
    assert main(["grade", str(good), "--out", str(out), "--no-sandbox"]) == 0
    assert "1 ok" in capsys.readouterr().out


HOG = """\
import subprocess, sys, time
hog = ("import os, sys, time\\nblock = bytearray(150 * 2**20)\\nblock[::4096] = b'x' * len(block[::4096])\\n"
       "open(f'held{sys.argv[1]}', 'w').close()\\ntime.sleep(30)\\n")
children = [subprocess.Popen([sys.executable, '-c', hog, str(n)]) for n in range(3)]
time.sleep(0.2)
deadline = time.monotonic() + 15
import os
while time.monotonic() < deadline and sum(os.path.exists(f'held{n}') for n in range(3)) < 3 \\
        and all(child.poll() is None for child in children):
    time.sleep(0.1)
held = sum(os.path.exists(f'held{n}') for n in range(3))
for child in children:
    child.kill()
if held == 3:
    raise Attack('three processes held 150 MB each')
"""


@pytest.mark.skipif(sandbox._own_cgroup("memory") is None, reason="no cgroup v1 memory controller here")
def test_the_memory_limit_holds_for_the_whole_submission_not_per_process(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "CGROUP_BASE_MB", 100)  # a fresh kernel takes about 180 MB of it
    with session(tmp_path, memory_limit_mb=200) as started:  # 300 MB in all
        folders = started._km.cgroup.folders
        assert folders
        run = started.run(ATTACK + HOG)
        assert run.outcome in ("ok", "dead"), run.error  # the OOM killer may pick the kernel itself
    assert not any(folder.exists() for folder in folders)


def test_a_fork_bomb_is_capped(kernel):
    attempt(kernel, "import subprocess\nchildren = []\ntry:\n"
                    "    for _ in range(300):\n        children.append(subprocess.Popen(['sleep', '30']))\n"
                    "except OSError:\n    pass\nfinally:\n    for child in children:\n        child.kill()\n"
                    f"if len(children) > {sandbox.MAX_PROCESSES}:\n"
                    "    raise Attack(f'{len(children)} processes')\n")


def test_a_grader_that_is_not_root_sandboxes_in_a_user_namespace(monkeypatch):
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 1000)
    command = sandbox.sandboxed(["python"], env={}, writable=[Path("/tmp/s")])
    assert "--unshare-user" in command and not any("setpriv" in arg for arg in command)
    assert sandbox.sandbox_problem() is None  # the same sandbox, run with a user namespace


def test_the_unprivileged_sandbox_runs_a_kernel_and_grades(tmp_path, monkeypatch):
    """The sandbox a grader that is not root gets (a user namespace, no setpriv), end to end; as
    root this still runs as uid 0 inside, so only the command line and the grading are checked
    here (the interpreter of this machine is not reachable by another uid)."""
    from fixtures.grading_submissions import solution, write

    from vgcourse.grading.submission import grade_submission

    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 1000)
    grade = grade_submission(write(solution(), tmp_path, "nina"), cell_timeout=30, timeout=120)
    assert (grade.status, grade.total, grade.max_points) == ("ok", 6, 6), grade.error
