"""The web page's state: one derivation request, read from and written back to a URL query.

Contract: ``PageState.from_query("expr=...&wrt=W&shape=W=n,d&domain=X=positive")`` reads the
page's URL parameters, which mirror the command line's flags and are spelled as they are
(``matcalc.flags``):

==========  ====================================================  ==============================
parameter   meaning                                               the command line's
==========  ====================================================  ==============================
expr        the expression (matcalc's text syntax)                EXPRESSION
derive      grad (the default), jacobian, hessian or hvp          the command
wrt         a variable to differentiate by; repeat, or W,b        --wrt
shape       W=n,d a matrix, b=n a vector, a= a scalar; repeat     --shape
domain      X=positive, or any other domain of the guide          --domain
size        n=4 or n=4,m=5: sizes for the numeric check           --size
seed        the numeric check's random seed (default 0)           --seed
==========  ====================================================  ==============================

``from_params`` reads the same from a mapping (``parse_qs``'s lists of strings, or the page's
JSON request). Anything else — an unknown or repeated parameter, a value that is not text, more
parameters or longer values than a person writes — is refused with a one-line ``MatcalcError``
that names the parameter. ``to_query()`` writes the canonical query, so
``PageState.from_query(state.to_query()) == state``; ``derive()`` runs the request through
``matcalc.api``. The expression is handed to matcalc's parser untouched: nothing here evaluates
text.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Mapping

from ..api import Derivation, derive, hessian, hvp, jacobian
from ..errors import MatcalcError
from ..flags import format_shape, parse_domain, parse_shape, parse_sizes, split_wrt

#: What the page derives, as the command line names it (``hvp`` has no command of its own).
DERIVATIVES = {"grad": "gradient", "jacobian": "Jacobian", "hessian": "Hessian",
               "hvp": "Hessian-vector product"}
#: Parameters that may be given once, and those that may repeat.
SINGLE = ("expr", "derive", "seed")
REPEATED = ("wrt", "shape", "domain", "size")
#: Limits on what one request may hold (the expression's own limits are the parser's).
MAX_VALUES = 200          # parameter values in all
MAX_VALUE_LENGTH = 200    # characters in a value other than the expression
MAX_EXPRESSION = 50_000   # characters of expression passed on to the parser, which has its own
MAX_SIZE = 500            # the largest dimension size the numeric check may be asked for
MAX_SEED = 2 ** 32 - 1
#: Characters the canonical query leaves as they are (readable URLs); everything else, including
#: ``&``, ``+``, ``#``, ``%`` and spaces, is percent-encoded.
SAFE = "(),*@=:/!'"


@dataclass(frozen=True)
class PageState:
    """One request of the page: an expression, what to derive, and the declarations.

    >>> s = PageState.from_query("expr=trace(A%20@%20X)&wrt=X&shape=A=n,n&shape=X=n,n")
    >>> s.wrt, s.shapes
    (('X',), (('A', ('n', 'n')), ('X', ('n', 'n'))))
    >>> s.to_query()
    'expr=trace(A%20@%20X)&wrt=X&shape=A=n,n&shape=X=n,n'
    """

    expr: str
    derive: str = "grad"
    wrt: tuple[str, ...] = ()
    shapes: tuple[tuple[str, tuple], ...] = ()
    domains: tuple[tuple[str, str], ...] = ()
    sizes: tuple[tuple[str, int], ...] = ()
    seed: int = 0

    # -- reading -------------------------------------------------------------------------
    @classmethod
    def from_query(cls, query: str) -> "PageState":
        """The state a URL's query (without the ``?``) describes."""
        try:
            params = urllib.parse.parse_qs(query, keep_blank_values=True, errors="strict",
                                           max_num_fields=MAX_VALUES)
        except ValueError as err:               # UnicodeDecodeError is a ValueError too
            if isinstance(err, UnicodeDecodeError):
                raise MatcalcError("the query is not valid UTF-8 once percent-decoded") from None
            raise MatcalcError(f"the query has more than {MAX_VALUES} parameters") from None
        return cls.from_params(params)

    @classmethod
    def from_params(cls, params: Mapping) -> "PageState":
        """The state in a mapping of parameter names to a string or a list of strings."""
        if not isinstance(params, Mapping):
            raise MatcalcError("the request must be an object of parameters, e.g. "
                               '{"expr": "trace(X)", "wrt": ["X"], "shape": ["X=n,n"]}')
        values = {name: _strings(name, value) for name, value in params.items()}
        unknown = [name for name in values if name not in SINGLE + REPEATED]
        if unknown:
            known = ", ".join(SINGLE + REPEATED)
            raise MatcalcError(f"unknown parameter {_short(unknown[0])!r}; the parameters are "
                               f"{known}")
        if sum(len(v) for v in values.values()) > MAX_VALUES:
            raise MatcalcError(f"the request has more than {MAX_VALUES} parameter values")
        for name, given in values.items():
            if name in SINGLE and len(given) > 1:
                raise MatcalcError(f"{name} is given {len(given)} times; give it once")
            for value in given:
                if name != "expr" and len(value) > MAX_VALUE_LENGTH:
                    raise MatcalcError(f"{name} {_short(value)!r} is longer than "
                                       f"{MAX_VALUE_LENGTH} characters")
        if "expr" not in values:
            raise MatcalcError("give an expression: expr=..., e.g. expr=trace(A @ X)")
        expr = values["expr"][0]
        if len(expr) > MAX_EXPRESSION:
            raise MatcalcError(f"the expression is {len(expr)} characters long; the limit is "
                               f"{MAX_EXPRESSION}")
        kind = values.get("derive", ["grad"])[0].strip() or "grad"
        if kind not in DERIVATIVES:
            raise MatcalcError(f"derive {_short(kind)!r}: choose one of {', '.join(DERIVATIVES)}")
        wrt = tuple(split_wrt(values.get("wrt", []), flag="wrt"))
        if kind != "grad" and len(wrt) != 1:
            raise MatcalcError(f"a {DERIVATIVES[kind]} is taken with respect to one variable; "
                               f"wrt names {len(wrt)}: {', '.join(wrt)}")
        shapes = _unique("shape", [parse_shape(s, flag="shape") for s in values.get("shape", [])])
        domains = _unique("domain", [parse_domain(s, flag="domain")
                                     for s in values.get("domain", [])])
        sizes = parse_sizes(values.get("size", []), flag="size")
        for name, size in sizes.items():
            if not 1 <= size <= MAX_SIZE:
                raise MatcalcError(f"size {name}={size}: the page checks with sizes from 1 to "
                                   f"{MAX_SIZE}")
        seed_text = values.get("seed", ["0"])[0].strip() or "0"
        if not (seed_text.isascii() and seed_text.isdigit()) or int(seed_text) > MAX_SEED:
            raise MatcalcError(f"seed {_short(seed_text)!r}: expected an integer from 0 to "
                               f"{MAX_SEED}")
        return cls(expr, kind, wrt, shapes, domains, tuple(sizes.items()), int(seed_text))

    # -- writing -------------------------------------------------------------------------
    def to_params(self) -> list[tuple[str, str]]:
        """The parameters in canonical order and spelling; defaults are left out."""
        params = [("expr", self.expr)]
        if self.derive != "grad":
            params.append(("derive", self.derive))
        params += [("wrt", w) for w in self.wrt]
        params += [("shape", format_shape(name, dims)) for name, dims in self.shapes]
        params += [("domain", f"{name}={domain}") for name, domain in self.domains]
        params += [("size", f"{name}={size}") for name, size in self.sizes]
        if self.seed:
            params.append(("seed", str(self.seed)))
        return params

    def to_query(self) -> str:
        """The canonical query: ``PageState.from_query(s.to_query()) == s``."""
        return "&".join(f"{name}={urllib.parse.quote(value, safe=SAFE)}"
                        for name, value in self.to_params())

    # -- deriving ------------------------------------------------------------------------
    def run(self) -> Derivation:
        """The derivation this state asks for (``matcalc.api``); a ``MatcalcError`` if bad."""
        shapes, domains = dict(self.shapes), dict(self.domains)
        if not self.wrt:
            raise MatcalcError("choose the variable(s) to differentiate by (wrt)")
        if self.derive == "grad":
            wrt = list(self.wrt) if len(self.wrt) > 1 else self.wrt[0]
            return derive(self.expr, wrt, shapes=shapes, domains=domains)
        second = {"jacobian": jacobian, "hessian": hessian, "hvp": hvp}[self.derive]
        return second(self.expr, self.wrt[0], shapes=shapes, domains=domains)

    def describe(self) -> str:
        """A one-line title: ``gradient of trace(A @ X) with respect to X``."""
        return (f"{DERIVATIVES[self.derive]} of {_short(self.expr, 80)} with respect to "
                f"{', '.join(self.wrt) or '?'}")


def _strings(name, value) -> list[str]:
    """A parameter's values as a list of strings, or a one-line error naming it."""
    if not isinstance(name, str):
        raise MatcalcError("parameter names must be text")
    given = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) for v in given):
        raise MatcalcError(f"{_short(name)}: expected text (or a list of texts), not "
                           f"{_short(repr(value))}")
    for v in [name, *given]:
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:     # JSON's "\ud800": a lone surrogate is not text
            shown = ascii(name)[1:-1] if v is name else name
            raise MatcalcError(f"{_short(shown)}: contains an unpaired surrogate, which is not "
                               "text") from None
    return given


def _unique(flag: str, pairs: list[tuple]) -> tuple:
    """The pairs in order, refusing a name declared twice (the command line keeps the last one,
    which a link should not leave to chance)."""
    seen = set()
    for name, _ in pairs:
        if name in seen:
            raise MatcalcError(f"{flag} of {name!r} is given twice")
        seen.add(name)
    return tuple(pairs)


def _short(text: str, limit: int = 40) -> str:
    """``text`` cut to ``limit`` characters for a message (the whole of it may be huge)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
