"""The ``matcalc`` command line.

Contract: ``matcalc grad EXPR --wrt X [--wrt Y] --shape X=n,m ...`` prints the gradient as text
(which matcalc can parse back) and as LaTeX (``matcalc jacobian`` and ``matcalc hessian`` take the
same options and print a matrix form, or an einsum tensor with its Kronecker form); ``--numpy`` adds the generated function, ``--check``
a numeric check against finite differences; ``--steps`` prints the derivation step by step
instead, ``--format text|latex|mathml|markdown|html`` in another format, ``-o FILE`` into a file.
``matcalc serve`` runs the local web page (``--port``, ``--host``, ``--open``, ``--timeout``) until
Ctrl-C. Exit status: 0 ok, 1 the check failed, 2 bad input (any other ``MatcalcError``, or bad
arguments).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from .api import TensorDerivative, derive, hessian, jacobian
from .errors import CheckError, MatcalcError
from .flags import parse_domain, parse_shape, parse_sizes, split_wrt
from .printing.notes import RENDERINGS
from .web.server import DEFAULT_TIMEOUT, serve

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):            # argparse's own errors: exit status 2, as documented
        self.print_usage(sys.stderr)
        print(f"matcalc: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="matcalc", description="Symbolic matrix calculus: gradients of matrix "
                     "expressions in matrix form, with LaTeX, NumPy code and a numeric check.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    g = sub.add_parser("grad", help="derive the gradient of an expression",
                       description="Derive the gradient of EXPR with respect to --wrt.")
    g.add_argument("expression", help='e.g. "sum((tanh(W @ X + b) - Y)**2)"')
    g.add_argument("--wrt", action="append", required=True,
                   help="variable to differentiate by (repeat, or comma-separate, for several)")
    _add_options(g)
    for command, what in (("jacobian", "the Jacobian of a vector or matrix expression"),
                          ("hessian", "the Hessian of a scalar expression")):
        h = sub.add_parser(command, help=f"derive {what}",
                           description=f"Derive {what} with respect to --wrt: a matrix form, or "
                           "(for a matrix) an einsum tensor and its Kronecker form.")
        h.add_argument("expression", help='e.g. "trace(X.T @ A @ X)"')
        h.add_argument("--wrt", required=True, help="the variable to differentiate by")
        _add_options(h)
    s = sub.add_parser("serve", help="run the local web page",
                       description="Serve the web page: type an expression, see the derivation "
                       "typeset, take the code. It runs on this machine only, until Ctrl-C.")
    s.add_argument("--port", type=_port, default=0,
                   help="the port to listen on (default: a free one)")
    s.add_argument("--host", default="127.0.0.1",
                   help="the address to listen on (default 127.0.0.1: this machine only)")
    s.add_argument("--open", action="store_true", help="open the page in a browser")
    s.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"stop a derivation after this long (default {DEFAULT_TIMEOUT:g})")
    return parser


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 5 and int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535)")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (up to 3600)")
    return value


def _add_options(g: argparse.ArgumentParser) -> None:
    g.add_argument("--shape", action="append", default=[], metavar="NAME=DIMS",
                   help="declare a variable: W=n,d (matrix), b=n (vector), a= (scalar)")
    g.add_argument("--domain", action="append", default=[], metavar="NAME=DOMAIN",
                   help="declare a domain: X=positive")
    g.add_argument("--numpy", action="store_true", help="print the generated NumPy function")
    g.add_argument("--check", action="store_true",
                   help="check against central finite differences (exit 1 if wrong)")
    g.add_argument("--size", action="append", default=[], metavar="DIM=N",
                   help="dimension sizes for --check, e.g. n=4,d=3 (others are chosen)")
    g.add_argument("--seed", type=int, default=0, help="random seed for --check")
    g.add_argument("--steps", action="store_true",
                   help="show the derivation step by step (index notation, one block per rule)")
    g.add_argument("--format", choices=list(RENDERINGS), default=None,
                   help="format of --steps: text (default), latex (a standalone document), "
                        "mathml, markdown or html (a self-contained page); implies --steps")
    g.add_argument("-o", "--output", metavar="FILE", default=None,
                   help="write the steps to FILE (implies --steps; the format follows the "
                        "extension .tex .md .html .mml unless --format is given)")


#: The --steps format a file extension implies.
EXTENSIONS = {".tex": "latex", ".md": "markdown", ".markdown": "markdown", ".html": "html",
              ".htm": "html", ".mml": "mathml", ".xml": "mathml", ".txt": "text"}


def steps_format(fmt: str | None, output: str | None) -> str:
    """The format for --steps: ``--format`` if given, else from the output file's extension.

    >>> steps_format(None, "note.md"), steps_format("html", "note.txt"), steps_format(None, None)
    ('markdown', 'html', 'text')
    """
    if fmt is not None:
        return fmt
    return EXTENSIONS.get(os.path.splitext(output or "")[1].lower(), "text")


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = sys.stdout
    try:
        if args.command == "serve":
            return serve(args.host, args.port, args.open, args.timeout, out)
        shapes = dict(parse_shape(s) for s in args.shape)
        domains = dict(parse_domain(s) for s in args.domain)
        if args.command == "grad":
            wrt = split_wrt(args.wrt)
            res = derive(args.expression, wrt if len(wrt) > 1 else wrt[0], shapes=shapes,
                         domains=domains)
        else:
            second = jacobian if args.command == "jacobian" else hessian
            res = second(args.expression, args.wrt.strip(), shapes=shapes, domains=domains)
        note = None
        if args.steps or args.format is not None or args.output is not None:
            fmt = steps_format(args.format, args.output)
            note = res.steps().render(fmt)
        if note is not None and args.output is None:
            print(note, file=out, end="")
        elif args.command == "grad":
            # the named intermediates' definitions, then each result, as text and as LaTeX
            lines, equations = res.text().splitlines(), res.equations()
            if len(res.wrt) == 1:
                lines[-1] = f"d/d{res.wrt_names()[0]} = {lines[-1]}"
            for line in lines:
                print(line, file=out)
            for equation in equations:
                print(f"LaTeX: {equation}", file=out)
        else:
            letter = "J" if args.command == "jacobian" else "H"
            print(f"{letter} = {res.text()}", file=out)
            if isinstance(res, TensorDerivative):
                layout = "J[i, j, k, l] = d f_ij / d x_kl" if letter == "J" else \
                    "H[i, j, k, l] = d2 f / dX_ij dX_kl"
                print(f"layout: {layout}", file=out)
                kron = res.tensor.kronecker_text()
                print(f"vec form: {kron if kron is not None else '(none: no Kronecker form)'}",
                      file=out)
            for equation in res.equations():
                print(f"LaTeX: {equation}", file=out)
        if note is not None and args.output is not None:
            try:
                with open(args.output, "w", encoding="utf-8") as handle:
                    handle.write(note)
            except OSError as err:
                raise MatcalcError(f"cannot write {args.output}: {err.strerror}") from None
            print(f"steps written to {args.output} ({fmt})", file=out)
        if args.numpy:
            print("", file=out)
            print(res.numpy_source(), file=out, end="")
        if args.check:
            report = res.check(seed=args.seed, raise_on_failure=False, **parse_sizes(args.size))
            print("", file=out)
            print(report, file=out)
            if not report.ok:
                return EXIT_CHECK_FAILED
    except CheckError as err:
        print(f"matcalc: check failed: {err}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    except MatcalcError as err:
        print(f"matcalc: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


def main() -> None:
    """Entry point of the ``matcalc`` command."""
    try:
        status = run()
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader stopped early (matcalc ... | head): no traceback; what it read was complete
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        status = EXIT_OK
    raise SystemExit(status)


if __name__ == "__main__":
    main()
