"""vgcourse.grading.runner: the limits of a submission's kernel — cell timeouts, answers that loop
when called, the memory cap, exceptions, a kernel that ignores interrupts (and leaves a child
process), and an oversized output. All graded in one batch with short limits."""

import pytest
from fixtures.grading_submissions import IDS, answer_code, answer_index, running, solution, without_checks, write

from vgcourse.grading import runner
from vgcourse.grading.batch import grade_submissions

pytestmark = pytest.mark.sandbox  # grades in sandboxed kernels (tests/conftest.py)

CELL_TIMEOUT = 5  # the 300-step training cell must fit in it on a loaded 2-core machine
CHILD_SECONDS = "300.0314"  # marks the stuck kernel's child among the machine's processes
TRAINING = """\
model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
inputs = torch.randn(256, 8, generator=torch.Generator().manual_seed(0))
targets = inputs.sum(dim=1, keepdim=True)
losses = []
for step in range(300):  # plain gradient descent: torch.optim's first step alone takes seconds to import
    loss = torch.nn.functional.mse_loss(model(inputs), targets)
    model.zero_grad()
    loss.backward()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter -= 0.05 * parameter.grad
    losses.append(loss.item())
assert losses[-1] < losses[0] / 4, losses[::50]
"""


@pytest.fixture(scope="module")
def grades(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")

    loops = without_checks(solution())  # a learner may delete the check cells
    loops.cells[answer_index(loops, IDS[0])].source = "while True:\n    pass\n"  # never gets to the def
    loops.cells[answer_index(loops, IDS[1])].source = "def tanh_derivative(x):\n    while True:\n        pass\n"

    errors = solution()
    errors.cells[2:2] = [answer_code("huge = torch.empty(2**31)  # 8 GB: over the memory limit, fine without it"),
                         answer_code(TRAINING)]
    errors.cells[answer_index(errors, IDS[1])].source += "\n1 / 0\n"

    stuck = solution()
    stuck.cells.append(answer_code(
        "import signal, subprocess\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)  # the child inherits it\n"
        f"child = subprocess.Popen(['sleep', '{CHILD_SECONDS}'])  # in the sandbox: a pid seen only there\n"
        "while True:\n    pass\n"))

    chatty = solution()
    chatty.cells.append(answer_code("print('x' * 3_000_000)"))

    paths = [write(nb, folder, student) for nb, student in
             ((loops, "ivan"), (errors, "judy"), (stuck, "mallory"), (chatty, "oscar"))]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "INTERRUPT_GRACE", 2.0)
        patch.setattr(runner, "MAX_MESSAGE_BYTES", 2**20)
        graded = grade_submissions(paths, cell_timeout=CELL_TIMEOUT, timeout=120, memory_limit_mb=1024,
                                   progress=False)
    return {grade.student: grade for grade in graded}


def test_a_looping_cell_is_interrupted_and_the_rest_still_runs_and_is_graded(grades):
    ivan = grades["ivan"]
    assert ivan.status == "timeout"
    assert ivan.error == f"cell 4 ran longer than {CELL_TIMEOUT} s and was interrupted"
    assert "`sigmoid_derivative` is not defined" in ivan.results[0].message
    assert ivan.results[2].passed  # defined after the loops


def test_an_answer_that_loops_when_called_scores_zero_with_the_reason(grades):
    ivan = grades["ivan"]
    assert ivan.results[1].points == 0
    assert f"`tanh_derivative` on the tests ran longer than {CELL_TIMEOUT} s" in ivan.results[1].message
    assert f"testing ex01.tanh_derivative ran longer than {CELL_TIMEOUT} s and was interrupted" in ivan.problems
    assert [r.points for r in ivan.results] == [0, 0, 2]


def test_memory_cap_turns_a_huge_allocation_into_an_error_and_training_still_works(grades):
    judy = grades["judy"]
    assert judy.status == "errors"
    assert judy.error.startswith("cell 3: RuntimeError") and "allocate" in judy.error
    assert not any(problem.startswith("cell 4") for problem in judy.problems)  # the training cell passed


def test_exceptions_are_reported_and_the_answers_still_graded(grades):
    judy = grades["judy"]
    assert "cell 9: ZeroDivisionError: division by zero" in judy.problems
    assert (judy.total, judy.max_points) == (6, 6)  # tanh_derivative was defined before the 1 / 0


def test_a_cell_that_ignores_interrupts_stops_the_run_and_its_children_are_killed(grades):
    mallory = grades["mallory"]
    assert mallory.status == "timeout"
    assert "did not stop within 2 s of being interrupted; nothing after it was run" in mallory.error
    assert mallory.total == 0 and all("not graded" in r.message for r in mallory.results)
    assert mallory.seconds < 60
    assert not running(CHILD_SECONDS)


def test_an_oversized_output_costs_only_that_submission(grades):
    oscar = grades["oscar"]
    assert oscar.status == "kernel died" and "lost contact with the kernel" in oscar.error
    assert oscar.total == 0
