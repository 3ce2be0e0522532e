"""Exercise checks: a student's function against the course's reference, with a specific hint.

A notebook calls::

    from course_lib import checks as check
    check.exercise("02.1", dft_matrix)

and sees ``✔ Exercise 02.1 (DFT matrix): 4/4 cases match`` or a hint naming the input that failed,
what was expected and what came back. A check never ends in a bare assertion traceback: an
exception raised by the student's code is reported as a hint too (``NotImplementedError`` from the
student copy's stub says the exercise is not done yet).

Writing a check (one module per notebook, ``course_lib/checks/nbNN.py``)::

    from course_lib.checks import Case, exercise_check, compare_arrays

    @exercise_check("02.1", "DFT matrix")
    def _check_dft_matrix(candidate):
        from course_lib import dsp
        for n in (1, 4, 7):
            case = Case(f"n={n}")
            got = case.call(candidate, n)              # runs the student's function
            compare_arrays(case, got, dsp.dft_matrix(n), atol=1e-9)
            yield case                                  # one case per input

``compare_arrays`` (and ``compare_scalar``) fail the case with a message that names the
difference (type, shape, dtype, largest error and where) and, when the wrong answer has a
recognisable form, what it is (a constant factor such as ``1/n``, a flipped sign, the complex
conjugate, a shift by a sample). A check yields cases; the engine stops at the first failing one
and prints its hint.

A hint that names the mistake beats "expected vs got": before the generic comparison, a check
computes what the classic wrong answers would return on the same input and names the one the
student's output matches::

    reject_known_mistakes(case, got, expected, {
        "the inverse DFT's kernel: the forward DFT has a minus sign in the exponent":
            lambda: np.conj(expected),
    }, atol=1e-8)

``matches`` (a never-raising allclose that also compares shapes) and ``as_numpy`` (tensors and
lists to arrays) are the small tools these comparisons share. ``tests/test_checks_mistakes.py``
lists, for every exercise, the plausible wrong answers and the phrase each hint must contain.

Under ``COURSE_STRICT_CHECKS=1`` (set by ``make test`` for nbval) a failed check raises
:class:`ExerciseFailed`, so a broken reference solution fails CI instead of printing a hint.

Notebook: 00_welcome
"""

from __future__ import annotations

import importlib
import os
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Case",
    "CaseFailed",
    "CheckResult",
    "ExerciseFailed",
    "as_numpy",
    "compare_arrays",
    "compare_scalar",
    "exercise",
    "exercise_check",
    "matches",
    "record_calls",
    "registered_exercises",
    "reject_known_mistakes",
]

STRICT_ENV = "COURSE_STRICT_CHECKS"

_REGISTRY: dict[str, tuple[str, Callable[[Callable[..., Any]], Iterator["Case"]]]] = {}


class CaseFailed(Exception):
    """Raised inside a check when one input gives the wrong answer; its message is the hint."""


class ExerciseFailed(AssertionError):
    """Raised by :func:`exercise` in strict mode (CI) when a check fails."""


@dataclass
class Case:
    """One input of a check: a short description used in hints."""

    description: str

    def call(self, candidate: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call the student's function, turning any exception into a hint for this case."""
        try:
            return candidate(*args, **kwargs)
        except NotImplementedError as err:
            raise CaseFailed(f"not implemented yet ({err})") from None
        except Exception as err:  # any error in student code becomes a hint, not a traceback
            where = traceback.extract_tb(err.__traceback__)[-1]
            raise CaseFailed(
                f"for {self.description} your function raised {type(err).__name__}: {err} "
                f"(line {where.lineno}: `{(where.line or '').strip()}`)"
            ) from None

    def fail(self, message: str) -> None:
        """Fail this case with a hint."""
        raise CaseFailed(f"for {self.description}: {message}")


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"ndarray shape {value.shape} dtype {value.dtype}"
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"{type(value).__name__} shape {tuple(value.shape)} dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:120]


def _fmt(value: Any) -> str:
    value = complex(value) if np.iscomplexobj(value) else value
    if isinstance(value, complex):
        return f"{value.real:.6g}{value.imag:+.6g}j"
    try:
        return f"{float(value):.6g}"
    except (TypeError, ValueError):
        return repr(value)


def as_numpy(value: Any) -> np.ndarray | None:
    """``value`` as a NumPy array: torch tensors detached and moved to the CPU, lists converted.

    Returns None when ``value`` is None or cannot be read as a numeric array (a string, a ragged
    list, an object), so callers can test a student's output without guarding every call.
    """
    if value is None or isinstance(value, (str, bytes)):
        return None
    try:
        if hasattr(value, "detach"):
            value = value.detach().cpu()
            # NumPy has no bfloat16: widen such tensors to float32 first
            value = value.float().numpy() if str(value.dtype) == "torch.bfloat16" else value.numpy()
        array = np.asarray(value)
    except Exception:  # ragged lists and odd objects: not an array, no crash
        return None
    return None if array.dtype == object else array


def matches(got: Any, expected: Any, *, atol: float = 1e-8, rtol: float = 1e-6) -> bool:
    """True when ``got`` has ``expected``'s shape and its values within ``atol + rtol·|expected|``.

    Never raises: a None, a wrong type or a wrong shape is simply not a match. NaNs never match.
    """
    got_arr, expected_arr = as_numpy(got), as_numpy(expected)
    if got_arr is None or expected_arr is None or got_arr.shape != expected_arr.shape:
        return False
    if got_arr.dtype.kind not in "biufc" or expected_arr.dtype.kind not in "biufc":
        return False
    return bool(np.allclose(got_arr, expected_arr, atol=atol, rtol=rtol))


def reject_known_mistakes(case: Case, got: Any, expected: Any, mistakes: dict[str, Any], *,
                          atol: float = 1e-8, rtol: float = 1e-6) -> None:
    """Fail ``case`` with the hint of the first classic mistake whose output ``got`` reproduces.

    Parameters
    ----------
    case : Case
        The input being checked.
    got : any
        The student's output.
    expected : any
        The right output; a mistake that gives the right output on this input is skipped, so a
        correct answer is never blamed.
    mistakes : dict of str to array or callable
        Hint -> the output that mistake gives on this input (or a function of no arguments that
        computes it, evaluated only while no earlier mistake matched).
    atol, rtol : float
        Tolerances of :func:`matches`.
    """
    if as_numpy(got) is None:
        return
    for hint, wrong in mistakes.items():
        try:
            wrong = wrong() if callable(wrong) else wrong
        except Exception:  # a mistake that cannot be evaluated on this input does not apply here
            continue
        if matches(got, wrong, atol=atol, rtol=rtol) and not matches(expected, wrong, atol=atol, rtol=rtol):
            case.fail(hint)


def record_calls(model: Any, x: Any) -> tuple[Any, list[tuple[Any, Any, Any]]]:
    """Run ``model(x)`` without gradients and record every leaf module it calls, in order.

    Checks of model-building exercises use it to see the order of the layers (whatever way the
    student wrote the model: ``nn.Sequential`` or a ``forward``) and what each layer received.

    Returns
    -------
    output : any
        ``model(x)``.
    calls : list of (module, input, output)
        One entry per call of a module without children; ``input`` is its first positional
        argument; ``input`` and ``output`` are detached copies (an in-place module's input is
        recorded after it ran).
    """
    import torch

    calls: list[tuple[Any, Any, Any]] = []

    def record(module, inputs, output) -> None:  # returns None: the output is left unchanged
        first = inputs[0] if inputs else None
        # copies: a later in-place module (ReLU(inplace=True)) must not change what was recorded
        calls.append((module, first.detach().clone() if hasattr(first, "detach") else first,
                      output.detach().clone() if hasattr(output, "detach") else output))

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(record) for m in leaves]
    try:
        with torch.no_grad():
            output = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return output, calls


def _recognise(got: np.ndarray, expected: np.ndarray, atol: float, rtol: float,
               factors: dict[str, float] | None) -> str:
    """Name the form of a wrong array when it has an obvious one (a factor, a sign, a shift)."""
    close = lambda a, b: bool(np.allclose(a, b, atol=atol, rtol=max(rtol, 1e-6)))  # noqa: E731
    if not np.any(np.abs(expected) > atol):
        return ""
    if np.iscomplexobj(expected) and np.iscomplexobj(got) and close(got, np.conj(expected)):
        return (" — it is the complex conjugate of the expected result: check the sign of the "
                "imaginary exponent")
    flat_e = expected.astype(np.complex128).ravel()
    flat_g = got.astype(np.complex128).ravel()
    factor = np.vdot(flat_e, flat_g) / np.vdot(flat_e, flat_e)
    if abs(factor - 1) > 1e-3 and abs(factor) > 1e-12 and close(got, factor * expected):
        factor = factor.real if abs(factor.imag) <= 1e-9 * abs(factor) else factor
        if isinstance(factor, float) and np.isclose(factor, -1):
            return " — every value has its sign flipped"
        for label, value in (factors or {}).items():
            if np.isclose(factor, value, rtol=1e-6):
                return f" — every value is {label} times the expected one ({_fmt(factor)})"
        return (f" — every value is {_fmt(factor)} times the expected one: a missing or extra "
                "scale factor")
    if expected.ndim == 1 and expected.size > 3:
        for shift in (1, -1, 2, -2):
            if close(got[max(shift, 0):got.size + min(shift, 0)],
                     expected[max(-shift, 0):expected.size + min(-shift, 0)]):
                direction = "late" if shift > 0 else "early"
                return f" — the values are {abs(shift)} sample(s) {direction}: an off-by-one in an index"
    return ""


def compare_arrays(case: Case, got: Any, expected: Any, *, atol: float = 1e-6,
                   rtol: float = 1e-6, name: str = "result",
                   factors: dict[str, float] | None = None) -> None:
    """Fail ``case`` with a precise hint unless ``got`` matches ``expected`` elementwise.

    Accepts NumPy arrays, torch tensors, lists; compares values after conversion to NumPy. When
    the values differ, the hint also says whether ``got`` is a constant multiple of ``expected``
    (naming the factor when it is one of ``factors``, e.g. ``{"1/n": 1 / n}``), its negative, its
    complex conjugate, or shifted by one or two samples.
    """
    if got is None:
        case.fail(f"{name} is None: did you forget to `return` it?")
    if hasattr(got, "detach"):
        got = got.detach().cpu().numpy()
    if hasattr(expected, "detach"):
        expected = expected.detach().cpu().numpy()
    try:
        got_arr = np.asarray(got)
    except Exception:
        case.fail(f"{name} should be an array; got {_describe(got)}")
    expected = np.asarray(expected)
    if got_arr.dtype == object:
        case.fail(f"{name} should be a numeric array; got {_describe(got)}")
    if got_arr.shape != expected.shape:
        hint = ""
        if got_arr.shape == expected.shape[::-1] and got_arr.ndim == 2:
            hint = " (transposed?)"
        elif got_arr.size == expected.size:
            hint = " (same number of values: check the reshape/axis order)"
        case.fail(f"{name} has shape {got_arr.shape}, expected {expected.shape}{hint}")
    if np.iscomplexobj(expected) and not np.iscomplexobj(got_arr):
        case.fail(f"{name} is real ({got_arr.dtype}) but should be complex: keep the phase")
    if not np.all(np.isfinite(got_arr)) and np.all(np.isfinite(expected)):
        bad = np.argwhere(~np.isfinite(got_arr))[0]
        case.fail(f"{name} contains NaN/inf, first at index {tuple(int(i) for i in bad)}")
    diff = np.abs(got_arr.astype(np.complex128) - expected.astype(np.complex128))
    limit = atol + rtol * np.abs(expected)
    if np.any(diff > limit):
        idx = np.unravel_index(int(np.argmax(diff - limit)), diff.shape)
        at = tuple(int(i) for i in idx)
        form = _recognise(got_arr, expected, atol, rtol, factors) if got_arr.dtype.kind in "biufc" else ""
        case.fail(
            f"{name}[{', '.join(map(str, at))}] = {_fmt(got_arr[idx])}, expected {_fmt(expected[idx])} "
            f"(max abs error {diff.max():.3g} > tolerance {atol:g} + {rtol:g}·|expected|){form}"
        )


def compare_scalar(case: Case, got: Any, expected: float, *, atol: float = 1e-6,
                   rtol: float = 1e-6, name: str = "result") -> None:
    """Fail ``case`` unless ``got`` is a number close to ``expected``."""
    try:
        value = float(got)
    except (TypeError, ValueError):
        case.fail(f"{name} should be a number; got {_describe(got)}")
    if not abs(value - expected) <= atol + rtol * abs(expected):
        case.fail(f"{name} = {value:.6g}, expected {expected:.6g}")


def exercise_check(exercise_id: str, title: str) -> Callable[[Callable], Callable]:
    """Register a generator of :class:`Case` as the check of ``exercise_id`` (e.g. ``"02.1"``)."""

    def register(check_fn: Callable) -> Callable:
        _REGISTRY[exercise_id] = (title, check_fn)
        return check_fn

    return register


def _load_checks_for(exercise_id: str) -> None:
    notebook = exercise_id.split(".")[0]
    try:
        importlib.import_module(f"course_lib.checks.nb{notebook}")
    except ModuleNotFoundError as err:
        if err.name != f"course_lib.checks.nb{notebook}":
            raise


def registered_exercises() -> dict[str, str]:
    """All exercise ids with their titles (imports every checks module)."""
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        if module.name.startswith("nb"):
            importlib.import_module(f"{__name__}.{module.name}")
    return {key: title for key, (title, _) in sorted(_REGISTRY.items())}


@dataclass
class CheckResult:
    """Outcome of :func:`exercise`; truthy when the check passed."""

    exercise_id: str
    passed: bool
    n_cases: int
    message: str
    details: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"<CheckResult {self.exercise_id}: {'passed' if self.passed else 'failed'}>"

    def _ipython_display_(self) -> None:
        """Show nothing: the ✔ line or the hint was already printed."""


def exercise(exercise_id: str, candidate: Callable[..., Any], *, quiet: bool = False,
             strict: bool | None = None) -> CheckResult:
    """Check a student's function for exercise ``exercise_id`` and print ✔ or a hint.

    Parameters
    ----------
    exercise_id : str
        As printed in the notebook, e.g. ``"02.1"``.
    candidate : callable
        The student's function.
    quiet : bool
        Do not print (tests use the returned result).
    strict : bool, optional
        Raise :class:`ExerciseFailed` on failure. Default: ``COURSE_STRICT_CHECKS=1`` (CI).
        ``strict=False`` shows a hint even in CI (notebooks use it to demonstrate a wrong answer).

    Returns
    -------
    CheckResult
        Truthy when every case passed.
    """
    _load_checks_for(exercise_id)
    if exercise_id not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none loaded"
        result = CheckResult(exercise_id, False, 0,
                             f"✘ No exercise {exercise_id!r}: check the number (known: {known})")
        return _report(result, quiet, strict)
    title, check_fn = _REGISTRY[exercise_id]
    if not callable(candidate):
        result = CheckResult(exercise_id, False, 0,
                             f"✘ Exercise {exercise_id} ({title}): pass your function itself, "
                             f"not {_describe(candidate)} (e.g. `check.exercise({exercise_id!r}, my_fn)`)")
        return _report(result, quiet, strict)
    n_passed = 0
    try:
        for case in check_fn(candidate):
            n_passed += 1
            del case
    except CaseFailed as failure:
        result = CheckResult(exercise_id, False, n_passed,
                             f"✘ Exercise {exercise_id} ({title}): {failure}",
                             details=[f"{n_passed} case(s) passed before this one"])
        return _report(result, quiet, strict)
    result = CheckResult(exercise_id, True, n_passed,
                         f"✔ Exercise {exercise_id} ({title}): {n_passed}/{n_passed} cases match")
    return _report(result, quiet, strict)


def _report(result: CheckResult, quiet: bool, strict: bool | None) -> CheckResult:
    if not quiet:
        print(result.message)
    if strict is None:
        strict = os.environ.get(STRICT_ENV) == "1"
    if not result.passed and strict:
        raise ExerciseFailed(result.message)
    return result
