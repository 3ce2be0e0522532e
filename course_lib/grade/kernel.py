"""The grader's side of a student's kernel: limits, a write guard, and the checks rerun fresh.

Two parts, both used by :mod:`course_lib.grade`:

- ``python -m course_lib.grade.kernel -f CONNECTION_FILE`` starts an IPython kernel with, first,
  a memory limit (``RLIMIT_AS``, from ``COURSE_GRADE_MEMORY_BYTES``; it also binds the kernel's
  children) and a write guard (a :func:`sys.addaudithook` hook, from ``COURSE_GRADE_WRITABLE``)
  that refuses, with a ``PermissionError``, Python-level writes, deletions and renames outside the
  submission's throwaway folder, and starting other programs (``os.system``, ``subprocess``,
  ``!`` shell lines). Audit hooks are not a sandbox (PEP 578): C extensions (``soundfile.write``,
  ``torch.save``'s writer, ``ctypes``) write without raising audit events. The guard stops the
  mistakes and the casual attempts; a container stops the rest (docs/INSTRUCTORS.md).
- After the student's cells ran, the grader's own cells call :func:`prepare` (drop every
  ``course_lib`` module the submission may have patched, import the course's code afresh from the
  course's folder, and list what looks tampered with) and :func:`run_exercise` (the course's check
  and the hidden tests on the student's function, found by name). They return JSON text, the
  cell's last expression: the grader reads that, never what the submission printed or stored.

Notebook: 00_welcome
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

__all__ = ["install_write_guard", "limit_memory", "prepare", "run_exercise"]

MEMORY_ENV = "COURSE_GRADE_MEMORY_BYTES"
WRITABLE_ENV = "COURSE_GRADE_WRITABLE"

# audit events that change a file system path: event -> positions of the path arguments
_PATH_EVENTS = {
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1),
    "os.replace": (0, 1), "os.link": (0, 1), "os.symlink": (1,), "os.truncate": (0,),
    "os.chmod": (0,), "os.chown": (0,), "os.utime": (0,), "os.chflags": (0,),
    "os.setxattr": (0,), "os.removexattr": (0,), "shutil.rmtree": (0,), "shutil.copyfile": (1,),
    "shutil.copytree": (1,), "shutil.move": (1,),
}
_PROGRAM_EVENTS = {"os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn",
                   "os.startfile"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def limit_memory(n_bytes: int) -> None:
    """Cap this process's address space at ``n_bytes`` (soft and hard: it cannot be raised again).

    An allocation past the cap fails inside the process (NumPy and torch raise ``MemoryError`` /
    ``RuntimeError``) instead of the machine swapping or the OOM killer picking a victim. Linux
    counts mapped libraries too: importing torch alone maps about 3.5 GB here.
    """
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (n_bytes, n_bytes))


def install_write_guard(writable_root: str) -> None:
    """Refuse Python-level writes outside ``writable_root`` (and ``/dev/null``) and new programs.

    Blocked attempts raise ``PermissionError`` and are listed in ``sys._course_grader_blocked``
    (a courtesy for the report, not a security record: the submission can clear it).
    """
    root = os.path.realpath(writable_root)
    realpath, join, fspath, getcwd = os.path.realpath, os.path.join, os.fspath, os.getcwd
    blocked: list[str] = []
    sys._course_grader_blocked = blocked  # type: ignore[attr-defined]

    def resolve(path: Any, dir_fd: Any = None) -> str | None:
        if isinstance(path, int) or path is None:
            return None  # an open file descriptor: its file was already allowed when opened
        path = os.fsdecode(fspath(path))
        if isinstance(dir_fd, int) and dir_fd >= 0 and not os.path.isabs(path):
            base = os.readlink(f"/proc/self/fd/{dir_fd}")
        else:
            base = getcwd()
        return realpath(join(base, path))

    def allowed(path: str | None) -> bool:
        return path is None or path == os.devnull or path == root or path.startswith(root + os.sep)

    def refuse(what: str) -> None:
        blocked.append(what)
        raise PermissionError(f"{what}: refused by the course grader (a submission may write only "
                              f"in its own working folder {root}, and may not start programs)")

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, 0))[:3]
            writes = bool(mode and any(c in str(mode) for c in "wax+")) or bool((flags or 0) & _WRITE_FLAGS)
            if writes and not isinstance(path, int):
                target = resolve(path)
                if not allowed(target):
                    refuse(f"open {target} for writing")
        elif event in _PATH_EVENTS:
            dir_fd = args[-1] if event in ("os.remove", "os.rmdir", "os.mkdir") and len(args) > 1 else None
            for position in _PATH_EVENTS[event]:
                if position < len(args):
                    target = resolve(args[position], dir_fd)
                    if not allowed(target):
                        refuse(f"{event} {target}")
        elif event in _PROGRAM_EVENTS:
            refuse(f"{event} {str(args[:2])[:200]}")

    sys.addaudithook(hook)


# --------------------------------------------------------------------------- in the kernel, after the student

def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:100]


def _from_notebook(value: Any, cell_dir: str) -> bool:
    """True for a function or class the notebook defined (not one a library defined)."""
    import types

    try:  # only plain attributes are read: some library objects compute others on access
        if isinstance(value, types.MethodType):
            value = value.__func__
        if isinstance(value, (types.FunctionType, type)) and value.__module__ == "__main__":
            return True
        if type(value).__module__ == "__main__":  # an instance of a class the notebook defined
            return True
        return isinstance(value, types.FunctionType) and value.__code__.co_filename.startswith(cell_dir)
    except Exception:
        return False


def _patched(old_modules: dict[str, Any], cell_dir: str) -> list[str]:
    """Attributes of the course's modules and of NumPy, torch and builtins that the notebook replaced."""
    import builtins
    import importlib

    modules = dict(old_modules)
    for name in ("numpy", "numpy.fft", "numpy.linalg", "torch", "torch.nn.functional", "torch.fft",
                 "scipy.signal", "librosa", "os", "shutil", "io", "math", "importlib", "json"):
        if name in sys.modules:
            modules[name] = sys.modules[name]
    modules["builtins"], modules["importlib"] = builtins, importlib
    found = []
    for name, module in sorted(modules.items()):
        for attr, value in list(vars(module).items()):
            if _from_notebook(value, cell_dir):
                found.append(f"{name}.{attr} was replaced by code from the notebook")
            elif name.startswith("course_lib") and isinstance(value, type) and value.__module__ == name:
                for method, member in list(vars(value).items()):
                    if _from_notebook(member, cell_dir):
                        found.append(f"{name}.{attr}.{method} was replaced by code from the notebook")
    torch = sys.modules.get("torch")
    if torch is not None:
        for method, member in list(vars(torch.Tensor).items()):
            if _from_notebook(member, cell_dir):
                found.append(f"torch.Tensor.{method} was replaced by code from the notebook")
    return found


def _hooks(namespace: dict, cell_dir: str) -> list[str]:
    """Code the notebook asked IPython or Python to run later (before the grader's cells)."""
    found = []
    shell = namespace.get("get_ipython", lambda: None)()
    if shell is not None:
        for event, callbacks in shell.events.callbacks.items():
            if any(_from_notebook(c, cell_dir) for c in callbacks):
                found.append(f"an IPython '{event}' event hook was registered")
        for name in ("input_transformers_cleanup", "input_transformers_post", "ast_transformers"):
            if any(_from_notebook(t, cell_dir) or _from_notebook(type(t), cell_dir)
                   for t in getattr(shell, name, [])):
                found.append(f"an IPython {name} entry was added")
    for name in ("meta_path", "path_hooks"):
        if any(_from_notebook(type(f), cell_dir) or _from_notebook(f, cell_dir)
               for f in getattr(sys, name)):
            found.append(f"sys.{name} has an import hook from the notebook")
    for getter in ("gettrace", "getprofile"):
        if _from_notebook(getattr(sys, getter)(), cell_dir):
            found.append(f"sys.{getter.removeprefix('get')} was set by the notebook")
    return found


def prepare(namespace: dict, course_root: str, old_modules: dict[str, Any],
            check_modules: list[str]) -> str:
    """List tampering, then import the course's checks afresh.

    Called by the grader's first cell after it removed every ``course_lib`` module from
    ``sys.modules`` (``old_modules`` holds them, to be inspected here) and imported this module from
    ``course_root``; ``check_modules`` are the checks modules to import (``course_lib.checks.nb01``).

    Returns
    -------
    str
        JSON: ``tampering`` (list of findings), ``problem`` (why grading cannot go on, or null),
        ``blocked`` (writes the guard refused).
    """
    import tempfile

    cell_dir = os.path.join(tempfile.gettempdir(), f"ipykernel_{os.getpid()}")
    tampering = []
    check = namespace.get("check", None)
    original = old_modules.get("course_lib.checks")
    if "check" in namespace and (original is None or check is not original):
        tampering.append(f"`check` was redefined (it is now {_describe(check)})")
    tampering += _patched(old_modules, cell_dir)
    tampering += _hooks(namespace, cell_dir)
    problem = None
    try:
        import importlib

        for name in ["course_lib.checks", *check_modules]:
            importlib.import_module(name)  # from the course's files, not the submission's copies
        home = os.path.realpath(course_root) + os.sep
        strangers = sorted(name for name, module in sys.modules.items()
                           if (name == "course_lib" or name.startswith("course_lib."))
                           and getattr(module, "__file__", None)
                           and not os.path.realpath(module.__file__).startswith(home))
        if strangers:
            problem = f"course_lib was shadowed by files outside the course: {', '.join(strangers)}"
            tampering.append(problem)
    except Exception as err:  # the course's own code could not be imported in this kernel
        problem = f"the grader could not import the course's checks: {type(err).__name__}: {err}"
    blocked = list(getattr(sys, "_course_grader_blocked", []))
    return json.dumps({"tampering": tampering, "problem": problem, "blocked": blocked})


def run_exercise(namespace: dict, exercise_id: str, function_name: str,
                 hidden_sources: list[str]) -> str:
    """The course's check (and hidden tests) of ``exercise_id`` on ``namespace[function_name]``.

    Returns
    -------
    str
        JSON: ``status`` (passed | failed | not attempted | missing), ``hint``, ``runtime_s``
        (seconds of check and hidden tests), ``hidden_passed``, ``hidden_total``.
    """
    from course_lib import checks

    start = time.perf_counter()
    candidate = namespace.get(function_name)
    record = {"status": "missing", "hint": "", "hidden_passed": 0, "hidden_total": len(hidden_sources)}
    if candidate is None:
        record["hint"] = f"no `{function_name}` is defined after running the notebook"
    else:
        result = checks.exercise(exercise_id, candidate, quiet=True, strict=False)
        if result.passed:
            record["status"] = "passed"
        elif ": not implemented yet" in result.message:
            record["status"] = "not attempted"
        else:
            record["status"] = "failed"
        record["hint"] = "" if result.passed else result.message.lstrip("✘ ").strip()
        hidden_hints = []
        for number, source in enumerate(hidden_sources, 1):
            try:
                exec(compile(source, f"<hidden test {number} of {exercise_id}>", "exec"), namespace)
                record["hidden_passed"] += 1
            except AssertionError as err:
                hidden_hints.append(f"hidden test {number}: {err or 'an assertion failed'}")
            except Exception as err:
                hidden_hints.append(f"hidden test {number}: {type(err).__name__}: {err}")
        if hidden_hints and record["status"] == "passed":
            record["status"] = "failed"
            record["hint"] = "; ".join(hidden_hints)
    record["runtime_s"] = round(time.perf_counter() - start, 3)
    return json.dumps(record)


def _launch() -> None:
    memory = int(os.environ.pop(MEMORY_ENV, "0") or 0)
    writable = os.environ.pop(WRITABLE_ENV, "")
    if memory > 0:
        limit_memory(memory)
    if writable:
        install_write_guard(writable)
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    _launch()
