"""What a grading kernel shuts before the learner's code runs (kernel side).

The kernel that tests a submission's answers first imports the grading code it needs
(:func:`preload`), then calls :func:`lock`, which

* turns every course object that answers a question by itself (a question's ``answered_by``)
  into a stand-in that raises :class:`CourseAnswerUsed` — functions keep their identity, so
  every reference the learner can reach (an import, a registry, a bound name) sees the stand-in,
  and the original code is gone from the process;
* installs an audit hook (:func:`sys.addaudithook`; Python cannot remove one) that refuses,
  from then on, what would bring the originals back or reach past the kernel: reading the
  source or compiled file of any course module loaded by then, or opening the package's folders
  (so no ``importlib.reload``, no re-import after deleting it from ``sys.modules``, no
  ``inspect.getsource``), ``ctypes``, walking the garbage collector's objects, and
  ``/proc/<pid>/mem``. Course modules not loaded yet still import when an answer asks for them.

That stops a generic cell from getting a course answer back at run time. It is not a boundary
against native code or a child process reading the course's files — no more than a learner
copying the course's code into an answer is — which is why the sandbox
(:mod:`vgcourse.grading.sandbox`) keeps the reference answers out of the kernel's files and the
grader scores outside the kernel.
"""

from __future__ import annotations

import importlib
import linecache
import os
import sys
import types
from pathlib import Path
from typing import Any, Iterable, Mapping

import vgcourse

PRELOAD = ("vgcourse.grading", "vgcourse.grading.check", "vgcourse.grading.kernel")
"""The grading modules a kernel imports before it is locked: what the exercises' import cells
name, and the part that calls the answers (with the course modules they import)."""

REFUSED_EVENTS = ("gc.get_objects", "gc.get_referrers", "gc.get_referents")
"""Audit events refused once the kernel is locked (any event starting ``ctypes.`` too)."""


class CourseAnswerUsed(RuntimeError):
    """Raised by a course object that answers the question being graded by itself."""


class Refused(PermissionError):
    """Raised by the audit hook for what a locked grading kernel does not allow."""


def preload() -> None:
    """Import :data:`PRELOAD`; :func:`lock` imports the modules of the objects it refuses."""
    for name in PRELOAD:
        importlib.import_module(name)


def resolve(dotted: str) -> Any:
    """The object a dotted name such as ``"vgcourse.activations.derivative"`` names.

    Raises:
        ValueError: if no module and attribute path of that name exist.
    """
    parts = dotted.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            target: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attribute in parts[split:]:
                target = getattr(target, attribute)
        except AttributeError:
            break
        return target
    raise ValueError(f"{dotted!r} names no object of the course")


def _stand_in_code(function: types.FunctionType, message: str) -> types.CodeType:
    """A code object for ``function`` (same free variables, so it can be swapped in) that raises
    :class:`CourseAnswerUsed` with ``message``."""
    free = function.__code__.co_freevars
    lines = ["def _outer():"] + [f"    {name} = None" for name in free] + [
        "    def _refused(*args, **kwargs):",
        *([f"        {', '.join(free)}"] if free else []),
        "        from vgcourse.grading.lockdown import CourseAnswerUsed",
        f"        raise CourseAnswerUsed({message!r})",
        "    return _refused"]
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(lines), f"<refused {function.__qualname__}>", "exec"), namespace)
    return namespace["_outer"]().__code__


def refuse(dotted: str, message: str) -> None:
    """Make the course object ``dotted`` raise :class:`CourseAnswerUsed` (``message``) when used:
    a function's code is replaced, a class can no longer be instantiated or subclassed into use."""
    target = resolve(dotted)
    if isinstance(target, types.FunctionType):
        target.__code__ = _stand_in_code(target, message)
    elif isinstance(target, type):
        def refused(*args: Any, **kwargs: Any) -> Any:
            raise CourseAnswerUsed(message)
        target.__new__ = refused  # type: ignore[assignment]
        target.__init__ = refused  # type: ignore[misc]
    else:
        raise ValueError(f"{dotted!r} is a {type(target).__name__}; only functions and classes can be refused")


def _loaded_files() -> frozenset[str]:
    """The source and compiled files of every course module loaded now, and the folders they are in
    (opened, a folder gives a ``dir_fd`` to open its files by a relative name)."""
    files = set()
    for name, module in list(sys.modules.items()):
        source = getattr(module, "__file__", None)
        if name.split(".")[0] != "vgcourse" or not source:
            continue
        source = os.path.realpath(source)
        files.add(source)
        cached = getattr(module, "__cached__", None)
        if cached:
            files.add(os.path.realpath(cached))
    return frozenset(files | {os.path.dirname(file) for file in files})


def _is_locked_path(path: str, locked: frozenset[str], ancestors: frozenset[str]) -> bool:
    full = os.path.realpath(path)
    return full in ancestors or full in locked  # above the package: a dir_fd, as for a folder in ``locked``


def lock(refused: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
    """Lock this kernel (see the module's docstring): ``refused`` maps dotted names of course
    objects to the message each raises (:func:`refuse`). Call once, after :func:`preload`."""
    for dotted, message in dict(refused).items():
        refuse(dotted, message)
    package = Path(vgcourse.__file__).resolve().parent
    ancestors = frozenset(str(p) for p in package.parents)
    locked = _loaded_files()
    linecache.clearcache()

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path = args[0]
            if isinstance(path, bytes):
                path = os.fsdecode(path)
            if isinstance(path, str) and (_is_locked_path(path, locked, ancestors)
                                          or (path.startswith("/proc/") and path.endswith(("/mem", "/map_files")))):
                raise Refused(f"a grading kernel may not open {path}")
        elif event.startswith("ctypes.") or event in REFUSED_EVENTS:
            raise Refused(f"a grading kernel does not allow {event}")

    sys.addaudithook(hook)
