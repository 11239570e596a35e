"""vgcourse.grading.lockdown: what a locked grading kernel refuses.

A lock lasts for the life of its process (an audit hook cannot be removed), so each test locks a
fresh interpreter and reports back what happened to every attempt."""

import json
import subprocess
import sys
import textwrap

import pytest

from vgcourse.grading import lockdown

LOCKED = """\
import json, torch
from vgcourse.grading import lockdown
lockdown.preload()
from vgcourse.activations import derivative, get_activation
import vgcourse.activations as activations
import vgcourse.models as models
sigmoid_derivative = activations._sigmoid_derivative
lockdown.lock({"vgcourse.activations._sigmoid_derivative": "ex01: uses _sigmoid_derivative",
               "vgcourse.models.DeepMLP": "ex00: uses DeepMLP"})
outcomes = {}
def attempt(name, action):
    try:
        action()
        outcomes[name] = "done"
    except Exception as error:
        outcomes[name] = f"{type(error).__name__}: {error}"
"""


def locked(attempts: str) -> dict[str, str]:
    """What each ``attempt(name, action)`` in ``attempts`` ended with, in a freshly locked process."""
    source = LOCKED + textwrap.dedent(attempts) + "\nprint(json.dumps(outcomes))\n"
    done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_a_refused_course_function_raises_by_every_route_and_cannot_be_brought_back():
    outcomes = locked("""
        x = torch.zeros(2)
        attempt("imported before the lock", lambda: sigmoid_derivative(x))
        attempt("through the public function", lambda: derivative("sigmoid", x))
        attempt("through the registry", lambda: get_activation("sigmoid").derivative(x))
        attempt("reloaded", lambda: __import__("importlib").reload(activations))
        attempt("source read", lambda: open(activations.__file__).read())
        attempt("compiled file read", lambda: open(activations.__cached__, "rb").read())
        attempt("source inspected", lambda: __import__("inspect").getsource(activations._sigmoid_derivative))
        attempt("package folder opened", lambda: __import__("os").open(str(__import__("pathlib").Path(
            activations.__file__).parent), 0))
        attempt("folder above opened", lambda: __import__("os").open("/", 0))
        attempt("ctypes", lambda: __import__("ctypes").string_at(id(x), 8))
        attempt("garbage collector", lambda: __import__("gc").get_objects())
        attempt("process memory", lambda: open("/proc/self/mem", "rb"))
        attempt("a refused class", lambda: models.DeepMLP(2, 2, depth=2, width=3))
        attempt("another activation", lambda: derivative("tanh", x))
        attempt("a course data file", lambda: __import__("vgcourse.data", fromlist=["digits"]).digits())
        attempt("a model", lambda: models.deep_mlp(2, 2, depth=2, width=3, activation="sigmoid"))
    """)
    refused = "CourseAnswerUsed: ex01: uses _sigmoid_derivative"
    for route in ("imported before the lock", "through the public function", "through the registry"):
        assert outcomes[route] == refused, route
    for attempt in ("reloaded", "source read", "compiled file read", "package folder opened", "folder above opened"):
        assert outcomes[attempt].startswith("Refused: a grading kernel may not open"), attempt
    assert outcomes["source inspected"].startswith("OSError")
    for attempt in ("ctypes", "garbage collector"):
        assert outcomes[attempt].startswith("Refused: a grading kernel does not allow"), attempt
    assert outcomes["process memory"].startswith("Refused")
    assert outcomes["a refused class"] == "CourseAnswerUsed: ex00: uses DeepMLP"
    assert outcomes["another activation"] == outcomes["a course data file"] == "done"
    assert outcomes["a model"].startswith("CourseAnswerUsed")  # deep_mlp builds a DeepMLP


def test_a_function_with_free_variables_can_be_refused():
    outcomes = locked("""
        def make():
            scale = 2
            def doubled(n):
                return scale * n
            return doubled
        doubled = make()
        activations.doubled = doubled
        lockdown.refuse("vgcourse.activations.doubled", "refused")
        attempt("closure", lambda: doubled(3))
    """)
    assert outcomes == {"closure": "CourseAnswerUsed: refused"}


def test_modules_not_loaded_yet_still_import_but_a_loaded_one_cannot_be_loaded_again():
    outcomes = locked("""
        import sys
        assert "vgcourse.plots" not in sys.modules and "vgcourse.grading.kernel" in sys.modules
        attempt("a module not loaded yet", lambda: __import__("vgcourse.plots"))
        del sys.modules["vgcourse.activations"]
        attempt("a loaded module again", lambda: __import__("vgcourse.activations"))
        sys.modules["vgcourse.activations"] = activations
        attempt("its cache folder", lambda: __import__("os").open(activations.__cached__.rsplit("/", 1)[0], 0))
    """)
    assert outcomes["a module not loaded yet"] == "done"
    assert outcomes["a loaded module again"].startswith("Refused: a grading kernel may not open")
    assert outcomes["its cache folder"].startswith("Refused")


def test_names_that_are_not_course_objects_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="names no object of the course"):
        lockdown.resolve("vgcourse.activations.no_such_thing")
    with pytest.raises(ValueError, match="only functions and classes"):
        lockdown.refuse("vgcourse.activations.LEAKY_SLOPE", "x")
