"""Every error a user can cause is a ``MatcalcError``.

Contract: messages use the user's own names and shapes; nothing below this module is imported.
The CLI maps ``CheckError`` to exit status 1 and every other ``MatcalcError`` to 2.
"""

from __future__ import annotations

import contextvars

#: The longest stretch of the user's text an error message echoes (one line, with ``…`` where
#: text was left out), so a 12 kB input is not repeated back.
ECHO_WIDTH = 72

#: How hints spell a declaration: ``"python"`` (``shapes={'A': ('n', 'm')}``) or ``"cli"``
#: (``--shape A=n,m``). The command line sets it for its own calls; the Python API keeps the
#: default.
SPELLING: contextvars.ContextVar[str] = contextvars.ContextVar("matcalc_spelling",
                                                               default="python")


def shape_hint(name: str, dims: tuple = ("n", "m")) -> str:
    """How to declare ``name`` with shape ``dims``, in the interface's spelling.

    >>> shape_hint("A"), shape_hint("x", ("n",))
    ("shapes={'A': ('n', 'm')}", "shapes={'x': ('n',)}")
    """
    if SPELLING.get() == "cli":
        return f"--shape {name}={','.join(str(d) for d in dims)}"
    return f"shapes={{{name!r}: {tuple(str(d) for d in dims)!r}}}"


def domain_hint(name: str, domain: str) -> str:
    """How to declare ``name``'s domain, in the interface's spelling.

    >>> domain_hint("X", "positive")
    "domains={'X': 'positive'}"
    """
    if SPELLING.get() == "cli":
        return f"--domain {name}={domain}"
    return f"domains={{{name!r}: {domain!r}}}"


def function_hint(name: str) -> str:
    """How to name an elementwise function the text leaves undefined, in the interface's
    spelling.

    >>> function_hint("g")
    "functions=['g']"
    """
    if SPELLING.get() == "cli":
        return f"--function {name}"
    return f"functions=[{name!r}]"


def caret(text: str, start: int, end: int | None = None, width: int = ECHO_WIDTH) -> str:
    """Two indented lines: one line of ``text`` around ``text[start:end]``, and a caret under it.

    Text far from the spot is cut and marked with ``…``, so the echo never exceeds one line.

    >>> print(caret("A @ B", 4, 5))
      A @ B
          ^
    >>> print(caret("x" * 100 + " + y'" + "z" * 100, 104, 105, width=20))
      …xxxxxx + y'zzzzzzzzz…
                 ^
    """
    end = start + 1 if end is None else max(end, start + 1)
    left = max(0, start - width // 2)
    right = min(len(text), max(end, left + width))
    left = max(0, min(left, right - width))
    shown = text[left:right]
    offset = start - left
    if left > 0:
        shown, offset = "…" + shown, offset + 1
    if right < len(text):
        shown += "…"
    marks = max(1, min(end, right) - start)
    return f"  {shown}\n  {' ' * offset}{'^' * marks}"


class MatcalcError(Exception):
    """Base class of every error matcalc raises on purpose."""


class ArgumentError(MatcalcError, TypeError):
    """A call of the API with a keyword it does not take; the message names the one to use."""


class ShapeError(MatcalcError):
    """Operands whose shapes do not fit the operator, e.g. ``A @ B`` with 3x4 and 5x2."""


class ParseError(MatcalcError):
    """Text that is not valid matcalc syntax; the message points at the offending part."""

    def __init__(self, message: str, text: str | None = None, start: int | None = None,
                 end: int | None = None):
        self.text, self.start, self.end = text, start, end
        if text is not None and start is not None and "\n" not in text and "\r" not in text:
            message = f"{message}\n{caret(text, start, end)}"
        super().__init__(message)


class UnsupportedError(MatcalcError):
    """A valid request that matcalc cannot answer correctly, so it refuses."""


class ConstantTooLargeError(UnsupportedError):
    """A constant too large to keep as one exact number: nested deeper than SymPy's arithmetic
    can recurse (arithmetic on constants then keeps the operations instead), or holding a number
    with too many digits."""


class DomainError(MatcalcError):
    """Inputs outside a function's domain (log of a negative number, an unknown domain name)."""


class CheckError(MatcalcError):
    """A numeric check found the derived gradient disagreeing with finite differences."""

    def __init__(self, message: str, report: object = None):
        self.report = report
        super().__init__(message)
