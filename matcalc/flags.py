"""The command line's spellings of a request, shared by ``matcalc`` and the local web page.

Contract: ``parse_shape("W=n,d")``, ``parse_domain("X=positive")``, ``parse_sizes(["n=4,m=5"])``
and ``split_wrt(["W,b", "c"])`` turn what a user writes after ``--shape``, ``--domain``,
``--size`` and ``--wrt`` (or in the page's URL, ``shape=W=n,d``) into what ``matcalc.api`` takes;
``format_shape`` writes a shape back in the same spelling. A spelling that does not fit raises a
``MatcalcError`` whose one-line message quotes it after the flag it came with (``flag=``: the
command line says ``--shape``, the web page ``shape``). Nothing here knows about expressions:
names and domains are checked where the expression is read.
"""

from __future__ import annotations

from typing import Sequence

from .errors import MatcalcError

Dims = tuple  # () a scalar, (n,) a column vector, (n, m) a matrix; each a name or an int

#: The most digits a size or a dimension may have (int() of thousands of digits is refused by
#: Python itself, with a ValueError).
MAX_DIGITS = 15


def _integer(text: str) -> int | None:
    """``text`` as a non-negative integer if it is one (ASCII or other decimal digits), else None.

    >>> _integer("12"), _integer("n"), _integer("²"), _integer("1" * 16)
    (12, None, None, None)
    """
    text = text.strip()
    if not text.isdecimal() or len(text) > MAX_DIGITS:
        return None
    return int(text)


def parse_shape(spec: str, flag: str = "--shape") -> tuple[str, Dims]:
    """``"W=n,d"`` -> ``("W", ("n", "d"))``; ``"b=n"`` a vector; ``"a="`` or ``"a=()"`` a scalar.

    >>> parse_shape("W=n,d"), parse_shape("b=3"), parse_shape("a=")
    (('W', ('n', 'd')), ('b', (3,)), ('a', ()))
    """
    if "=" not in spec:
        raise MatcalcError(f"{flag} {spec!r}: expected NAME=DIMS, e.g. W=n,d or b=n or a=")
    name, dims = spec.split("=", 1)
    dims = dims.strip()
    if dims in ("", "()", "scalar"):
        return name.strip(), ()
    parts = tuple(p.strip() for p in dims.strip("()").split(","))
    if len(parts) > 2 or not all(parts):
        raise MatcalcError(f"{flag} {spec!r}: give one or two dimensions, e.g. W=n,d")
    for p in parts:
        if p.isdigit() and _integer(p) is None:          # '²' is a digit but not a number
            raise MatcalcError(f"{flag} {spec!r}: a dimension is a name or an integer of at "
                               f"most {MAX_DIGITS} digits")
    return name.strip(), tuple(p if _integer(p) is None else _integer(p) for p in parts)


def format_shape(name: str, dims: Dims) -> str:
    """The spelling ``parse_shape`` reads: ``format_shape("W", ("n", "d"))`` is ``"W=n,d"``.

    >>> format_shape("W", ("n", 4)), format_shape("a", ())
    ('W=n,4', 'a=')
    """
    return f"{name}={','.join(str(d) for d in dims)}"


def parse_domain(spec: str, flag: str = "--domain") -> tuple[str, str]:
    """``"X=positive"`` -> ``("X", "positive")`` (the domain's name is checked by the parser).

    >>> parse_domain(" X = spd ")
    ('X', 'spd')
    """
    if "=" not in spec:
        raise MatcalcError(f"{flag} {spec!r}: expected NAME=DOMAIN, e.g. X=positive")
    name, domain = spec.split("=", 1)
    return name.strip(), domain.strip()


def parse_sizes(specs: Sequence[str], flag: str = "--size") -> dict[str, int]:
    """``["n=4,m=5", "d=3"]`` -> ``{"n": 4, "m": 5, "d": 3}``: sizes for the numeric check.

    >>> parse_sizes(["n=4,m=5", "d=3"])
    {'n': 4, 'm': 5, 'd': 3}
    """
    sizes = {}
    for spec in specs:
        for part in spec.split(","):
            value = _integer(part.split("=", 1)[1]) if "=" in part else None
            if value is None:
                raise MatcalcError(f"{flag} {spec!r}: expected NAME=INTEGER (at most "
                                   f"{MAX_DIGITS} digits), e.g. n=4,m=5")
            sizes[part.split("=", 1)[0].strip()] = value
    return sizes


def split_wrt(specs: Sequence[str], flag: str = "--wrt") -> list[str]:
    """The variables named by ``--wrt`` given several times or comma-separated, in order.

    >>> split_wrt(["W,b", " c "])
    ['W', 'b', 'c']
    """
    names = [w.strip() for spec in specs for w in spec.split(",") if w.strip()]
    if not names:
        raise MatcalcError(f"{flag}: name the variable(s) to differentiate by, e.g. {flag} W")
    return names
