"""The ``matcalc`` command line.

Contract: ``matcalc grad EXPR --wrt X [--wrt Y] --shape X=n,m ...`` prints the gradient as text
(which matcalc can parse back) and as LaTeX. ``matcalc jacobian`` (one Jacobian per ``--wrt``
variable), ``matcalc hessian`` and ``matcalc hvp`` (the Hessian applied to a direction, ``v`` by
default) take the same options and print a matrix form, or an einsum tensor with its Kronecker
form; ``matcalc backward`` prints a whole module with ``forward()`` and ``backward()``.
A variable whose shape its use fixes need not be declared: the inferred shapes are printed with
the result (``--infer-kinds``: a-g scalars, h-z vectors, A-Z matrices, as matrixcalculus.org).
``--numpy`` adds the generated function (on stdout, every other line becomes a ``#`` comment, so
the output is a module that imports; with ``-o FILE`` the file holds the code alone), ``--check``
a numeric check against finite differences; ``--steps`` prints the derivation step by step
instead, ``--format text|latex|mathml|markdown|html`` in another format, ``-o FILE`` into a file;
``--json`` prints one JSON object (result, LaTeX, code, inferred shapes, check) for editors and
scripts. ``matcalc serve`` runs the local web page (``--port``, ``--host``, ``--open``,
``--timeout``) until Ctrl-C. ``--version`` prints the version.

Exit status: 0 ok, 1 the check failed, 2 bad input (any other ``MatcalcError``, or bad
arguments), 130 interrupted (Ctrl-C: one line, no traceback). Hints in error messages are
spelled as this command reads them (``--shape A=n,m``, ``--domain X=positive``).

Start-up: this module imports only the standard library and matcalc's light modules; SymPy and
the engines are imported (``importlib``) when a command needs them, so ``--help`` and
``--version`` answer at once, and the notes machinery loads only for ``--steps``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Sequence

from .errors import SPELLING, CheckError, MatcalcError
from .flags import format_shape, parse_domain, parse_shape, parse_sizes, split_wrt
from .version import __version__

EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

#: ``matcalc serve --timeout``'s default, in seconds (``web.worker.DEFAULT_TIMEOUT``; a test keeps
#: them equal: importing the web page's modules for --help would cost multiprocessing's import).
DEFAULT_TIMEOUT = 30.0

#: The formats of --steps (``printing.notes.RENDERINGS``'s keys; a test keeps them equal).
FORMATS = ("text", "latex", "mathml", "markdown", "html")

#: What each second-order command prints before its result.
LETTERS = {"jacobian": "J", "hessian": "H", "hvp": "Hv"}


def _load(module: str):
    """The matcalc module ``module``, imported when a command first needs it (see the contract:
    the modules named here all sit below this one)."""
    return importlib.import_module(f"matcalc.{module}")


class _Parser(argparse.ArgumentParser):
    def error(self, message):            # argparse's own errors: exit status 2, as documented
        self.print_usage(sys.stderr)
        print(f"matcalc: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="matcalc", description="Symbolic matrix calculus: gradients of matrix "
                     "expressions in matrix form, with LaTeX, NumPy code and a numeric check.")
    parser.add_argument("--version", action="version", version=f"matcalc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    g = sub.add_parser("grad", help="derive the gradient of an expression",
                       description="Derive the gradient of EXPR with respect to --wrt.")
    g.add_argument("expression", help='e.g. "sum((tanh(W @ X + b) - Y)**2)"')
    g.add_argument("--wrt", action="append", required=True,
                   help="variable to differentiate by (repeat, or comma-separate, for several)")
    _add_options(g)
    for command, what, example in (
            ("jacobian", "the Jacobian of a vector or matrix expression", "tanh(A @ x)"),
            ("hessian", "the Hessian of a scalar expression", "trace(X.T @ A @ X)"),
            ("hvp", "the Hessian of a scalar expression applied to a direction v",
             "trace(X.T @ A @ X)")):
        h = sub.add_parser(command, help=f"derive {what}",
                           description=f"Derive {what} with respect to --wrt: a matrix form, or "
                           "(for a matrix) an einsum tensor and its Kronecker form.")
        h.add_argument("expression", help=f'e.g. "{example}"')
        several = " (repeat, or comma-separate, for one Jacobian each)" \
            if command == "jacobian" else ""
        h.add_argument("--wrt", action="append", required=True,
                       help=f"the variable to differentiate by{several}")
        if command == "hvp":
            h.add_argument("--direction", default="v", metavar="NAME",
                           help="the name of the direction (default v; it has --wrt's shape)")
        _add_options(h)
    b = sub.add_parser("backward", help="generate a model's forward() and backward() as one "
                       "module", description="Write Python code with forward(inputs...) -> "
                       "(loss, kept) and backward(kept) -> gradients, every intermediate "
                       "computed once.")
    b.add_argument("expression", help='the loss, e.g. "sum((tanh(W @ X + b) - Y)**2)"')
    b.add_argument("--wrt", action="append", required=True,
                   help="the parameters (repeat, or comma-separate)")
    _add_declarations(b)
    b.add_argument("-o", "--output", metavar="FILE", default=None,
                   help="write the module to FILE (importable: it holds the code alone)")
    b.add_argument("--json", action="store_true",
                   help="print one JSON object: the code, its inputs and outputs, the shapes")
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


def _add_declarations(g: argparse.ArgumentParser) -> None:
    g.add_argument("--shape", action="append", default=[], metavar="NAME=DIMS",
                   help="declare a variable: W=n,d (matrix), b=n (vector), a= (scalar); a "
                        "variable whose use fixes its shape may be left out")
    g.add_argument("--domain", action="append", default=[], metavar="NAME=DOMAIN",
                   help="declare a domain: X=positive")
    g.add_argument("--infer-kinds", action="store_true",
                   help="read undeclared names as matrixcalculus.org does: a-g scalars, h-z "
                        "vectors, A-Z matrices")
    g.add_argument("--function", action="append", default=[], metavar="NAME",
                   help="an elementwise function the expression names without defining it "
                        "(the notes' g): the result is written with g'")


def _add_options(g: argparse.ArgumentParser) -> None:
    _add_declarations(g)
    g.add_argument("--numpy", action="store_true",
                   help="print the generated NumPy function (stdout stays an importable module)")
    g.add_argument("--check", action="store_true",
                   help="check against central finite differences (exit 1 if wrong)")
    g.add_argument("--size", action="append", default=[], metavar="DIM=N",
                   help="dimension sizes for --check, e.g. n=4,d=3 (others are chosen)")
    g.add_argument("--seed", type=int, default=0, help="random seed for --check")
    g.add_argument("--steps", action="store_true",
                   help="show the derivation step by step (index notation, one block per rule)")
    g.add_argument("--format", choices=FORMATS, default=None,
                   help="format of --steps: text (default), latex (a standalone document), "
                        "mathml, markdown or html (a self-contained page); implies --steps")
    g.add_argument("-o", "--output", metavar="FILE", default=None,
                   help="with --numpy (or a .py FILE): write the generated code alone to FILE, "
                        "an importable module; otherwise write the steps to FILE (the format "
                        "follows the extension .tex .md .html .mml unless --format is given)")
    g.add_argument("--json", action="store_true",
                   help="print one JSON object: results, LaTeX, code, shapes, and the check "
                        "with --check")


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


def code_to_file(args: argparse.Namespace) -> bool:
    """Whether ``-o FILE`` receives the generated code (``--numpy``, or a ``.py`` file).

    >>> code_to_file(argparse.Namespace(output="g.py", numpy=False, steps=False, format=None))
    True
    """
    if args.output is None:
        return False
    return args.numpy or (os.path.splitext(args.output)[1].lower() == ".py"
                          and not args.steps and args.format is None)


# ---------------------------------------------------------------------------------------------
# Running a command
# ---------------------------------------------------------------------------------------------

def run(argv: Sequence[str] | None = None) -> int:
    """Run one command line (``argv`` without the program name); return the exit status."""
    args = build_parser().parse_args(argv)
    out = sys.stdout
    token = SPELLING.set("cli")        # hints say --shape A=n,m, not shapes={'A': ...}
    try:
        if args.command == "serve":
            return _load("web.server").serve(args.host, args.port, args.open, args.timeout, out)
        return _derive(args, out)
    except CheckError as err:
        print(f"matcalc: check failed: {err}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    except MatcalcError as err:
        if getattr(args, "json", False):
            print(json.dumps({"error": {"message": str(err), "kind": type(err).__name__,
                                        "start": getattr(err, "start", None),
                                        "end": getattr(err, "end", None)}}), file=out)
        print(f"matcalc: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        SPELLING.reset(token)


def _request(args: argparse.Namespace) -> dict:
    """The keywords every API function takes, read from the flags."""
    request = {"shapes": dict(parse_shape(s) for s in args.shape),
               "domains": dict(parse_domain(s) for s in args.domain)}
    if args.infer_kinds:
        request["infer_kinds"] = True
    if args.function:
        if args.command == "backward":
            raise MatcalcError("--function: backward does not take it yet; grad --numpy writes "
                               "code that takes g and g_prime as arguments")
        request["functions"] = args.function
    return request


def _results(args: argparse.Namespace, request: dict) -> list:
    """The API's answer(s): one result for grad, hessian, hvp; one per variable for jacobian."""
    api = _load("api")
    wrt = split_wrt(args.wrt)
    if args.command == "grad":
        return [api.derive(args.expression, wrt if len(wrt) > 1 else wrt[0], **request)]
    if args.command == "jacobian":
        return [api.jacobian(args.expression, w, **request) for w in wrt]
    if len(wrt) > 1:
        raise MatcalcError(f"--wrt: {args.command} takes one variable, not {', '.join(wrt)}")
    if args.command == "hvp":
        return [api.hvp(args.expression, wrt[0], direction=args.direction, **request)]
    return [api.hessian(args.expression, wrt[0], **request)]


def _derive(args: argparse.Namespace, out) -> int:
    request = _request(args)
    if args.command == "backward":
        return _backward(args, request, out)
    results = _results(args, request)
    several = len(results) > 1
    to_file = code_to_file(args)
    codes = _codes(args.command, results) if (args.numpy or args.json or to_file) else []
    note = None
    if args.steps or args.format is not None or (args.output is not None and not to_file):
        fmt = steps_format(args.format, None if to_file else args.output)
        note = "".join(res.steps().render(fmt) for res in results)
    if args.json:
        reports = _checks(args, results)
        print(json.dumps(_as_json(args, results, codes, reports, note), indent=1), file=out)
        return _status(reports)
    # with the code on stdout, everything else is a comment: `--numpy > grad.py` imports
    comment = "# " if args.numpy and args.output is None else ""
    if note is not None and (args.output is None or to_file):
        print(note, file=out, end="")
    else:
        lines = _inferred_lines(results[0])
        for res in results:
            lines += _result_lines(args.command, res, several)
        print("\n".join(f"{comment}{line}" for line in lines), file=out, flush=True)
    if args.output is not None:
        _write(args.output, codes if to_file else note)
        what = "" if to_file else f" ({steps_format(args.format, args.output)})"
        print(f"{comment}{'code' if to_file else 'steps'} written to {args.output}{what}",
              file=out)
    if args.numpy and args.output is None:
        print("", file=out)
        print(codes, file=out, end="")
    reports = _checks(args, results)
    for report in reports or ():
        print("", file=out)
        print("\n".join(f"{comment}{line}" for line in str(report).splitlines()), file=out)
    return _status(reports)


def _codes(command: str, results: list) -> str:
    """The generated code of every result, as one module (NumPy imported once)."""
    sources = [res.numpy_source(_function_name(command, res, len(results) > 1))
               for res in results]
    head = "import numpy as np\n"
    return "".join([sources[0]] + [s[len(head):] if s.startswith(head) else s
                                   for s in sources[1:]])


def _checks(args: argparse.Namespace, results: list) -> list | None:
    if not args.check:
        return None
    sizes = parse_sizes(args.size)
    return [res.check(seed=args.seed, raise_on_failure=False, **sizes) for res in results]


def _status(reports: list | None) -> int:
    return EXIT_CHECK_FAILED if reports and not all(r.ok for r in reports) else EXIT_OK


def _backward(args: argparse.Namespace, request: dict, out) -> int:
    wrt = split_wrt(args.wrt)
    code = _load("api").backward(args.expression, wrt if len(wrt) > 1 else wrt[0], **request)
    if args.json:
        print(json.dumps({"matcalc": __version__, "command": "backward",
                          "expression": args.expression, "wrt": wrt,
                          "inputs": list(code.inputs), "outputs": list(code.outputs),
                          "inferred": _inferred(code), "code": code.source}, indent=1),
              file=out)
        return EXIT_OK
    if args.output is not None:
        _write(args.output, code.source)
        print(f"# forward({', '.join(code.inputs)}) and backward(kept) -> "
              f"{', '.join(code.outputs)} written to {args.output}", file=out)
        return EXIT_OK
    print(code.source, file=out, end="")
    return EXIT_OK


def _write(path: str, content: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(content)
    except OSError as err:
        raise MatcalcError(f"cannot write {path}: {err.strerror}") from None


def _function_name(command: str, res, several: bool) -> str:
    """``gradient`` for one result; ``jacobian_x``, ``jacobian_y`` for a Jacobian per variable."""
    return f"{command}_{res.wrt_names()[0]}" if several else "gradient"


def _result_lines(command: str, res, several: bool) -> list[str]:
    if command == "grad":
        # the named intermediates' definitions, then each result; then the same as LaTeX
        lines = res.text().splitlines()
        if len(res.wrt) == 1:
            lines[-1] = f"d/d{res.wrt_names()[0]} = {lines[-1]}"
        return lines + [f"LaTeX: {equation}" for equation in res.equations()]
    letter = LETTERS[command]
    label = f"{letter}_{res.wrt_names()[0]}" if several else letter
    lines = [f"{label} = {res.text()}"]
    if command == "hvp":
        lines.append(f"direction: {format_shape(res.direction.name, _dims(res.direction))} "
                     f"(the shape of {res.wrt_names()[0]})")
    if type(res).__name__ == "TensorDerivative":
        layout = ("J[i, j, k, l] = d f_ij / d x_kl" if letter == "J" else
                  "H[i, j, k, l] = d2 f / dX_ij dX_kl")
        lines.append(f"layout: {layout}")
        kron = res.tensor.kronecker_text()
        lines.append(f"vec form: {kron if kron is not None else '(none: no Kronecker form)'}")
    lines += [f"LaTeX: {equation}" for equation in res.equations()]
    return lines


def _dims(var) -> tuple:
    """A variable's shape as the command line spells it: () scalar, (n,) vector, (n, m)."""
    if var.kind == "scalar":
        return ()
    if var.kind == "vector":
        return (var.shape[0],)
    return tuple(var.shape)


def _inferred(res) -> dict:
    """The shapes matcalc inferred (not declared), as NAME: DIMS in the command line's spelling."""
    return {name: format_shape(name, dims).split("=", 1)[1]
            for name, dims in (getattr(res, "inferred_shapes", None) or {}).items()}


def _inferred_lines(res) -> list[str]:
    inferred = getattr(res, "inferred_shapes", None) or {}
    if not inferred:
        return []
    return ["inferred: " + " ".join(f"--shape {format_shape(n, d)}" for n, d in inferred.items())]


def _check_json(report) -> dict:
    return {"ok": report.ok, "worst_relative_error": report.worst, "tolerance": report.tolerance,
            "sizes": dict(report.sizes), "seed": report.seed,
            "variables": [{"name": r.name, "relative_error": r.max_rel_error,
                           "absolute_error": r.max_abs_error, "ok": r.ok}
                          for r in report.results],
            "warnings": list(report.warnings), "text": str(report)}


def _as_json(args, results, codes, reports, note) -> dict:
    items = []
    for res in results:
        for name, gradient, equation in zip(res.wrt_names(), res.gradients, res.equations()):
            item = {"wrt": name, "text": res.text() if args.command != "grad" else str(gradient),
                    "latex": equation}
            if args.command == "hvp":
                item["direction"] = res.direction.name
            if type(res).__name__ == "TensorDerivative":
                item["vec_form"] = res.tensor.kronecker_text()
            items.append(item)
    variables = {}
    for res in results:
        for var in res.variables:
            variables.setdefault(var.name, format_shape(var.name, _dims(var)).split("=", 1)[1])
    return {"matcalc": __version__, "command": args.command, "expression": args.expression,
            "results": items, "shapes": variables, "inferred": _inferred(results[0]),
            "code": codes,
            "check": None if reports is None else [_check_json(r) for r in reports],
            "steps": note}


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
    except KeyboardInterrupt:
        print("matcalc: interrupted", file=sys.stderr)
        status = EXIT_INTERRUPTED
    raise SystemExit(status)


if __name__ == "__main__":
    main()
