"""Every error a user can cause is a ``MatcalcError``.

Contract: messages use the user's own names and shapes; nothing below this module is imported.
The CLI maps ``CheckError`` to exit status 1 and every other ``MatcalcError`` to 2.
"""

from __future__ import annotations


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
        if text is not None and start is not None and "\n" not in text:
            width = max(1, (end if end is not None else start + 1) - start)
            message = f"{message}\n  {text}\n  {' ' * start}{'^' * width}"
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
