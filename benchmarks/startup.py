"""matcalc's start-up, both figures in one run:

    python benchmarks/startup.py             # about 2 minutes on 2 cores
    python benchmarks/startup.py --rounds 7  # quicker, noisier

1. command: the wall time of ``matcalc grad "A @ B" --wrt A --shape A=n,m --shape B=m,k`` (as
   ``python -m matcalc``) against ``python -c "import sympy, numpy"``, the floor any SymPy tool
   pays. The two run interleaved, round after round, after one warm-up each (which also fills
   the rule cache); printed: each median with its range over the rounds, and the ratio of the
   medians with the range of the per-round ratios. Goal: at most 1.15.
2. first derivation: in a fresh process per expression, the time of the first
   ``mc.derive(text, ...)`` and printing its gradient, after ``import matcalc`` has loaded the API,
   over 30 varied expressions. Measured twice: with an empty rule cache (every rule derived with
   SymPy, the first call ever on a machine) and with the cache that pass filled (every later
   process). Goal: median at most 10 ms with the cache.

The rule cache and the bytecode of both parts live in a temporary directory (XDG_CACHE_HOME,
PYTHONPYCACHEPREFIX), never the user's.
The checkout this file sits in is measured (PYTHONPATH), whatever matcalc is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

COMMAND = ["-m", "matcalc", "grad", "A @ B", "--wrt", "A", "--shape", "A=n,m",
           "--shape", "B=m,k"]
FLOOR = ["-c", "import sympy, numpy"]

#: (text, wrt, shapes): products, traces, determinants, inverses, elementwise functions,
#: reductions, softmax and friends, broadcasting, several variables.
EXPRESSIONS = [
    ("A @ B", "A", {"A": ("n", "m"), "B": ("m", "k")}),
    ("trace(A @ X @ B)", "X", {"A": ("n", "n"), "X": ("n", "n"), "B": ("n", "n")}),
    ("x.T @ A @ x", "x", {"x": ("n",), "A": ("n", "n")}),
    ("sum((W @ x - y) ** 2)", "W", {"W": ("m", "n"), "x": ("n",), "y": ("m",)}),
    ("sum(tanh(W @ X + b))", "W", {"W": ("n", "d"), "X": ("d", "m"), "b": ("n",)}),
    ("sum((tanh(W @ X + b) - Y) ** 2) / m", "b",
     {"W": ("n", "d"), "X": ("d", "m"), "b": ("n",), "Y": ("n", "m")}),
    ("logdet(X)", "X", {"X": ("n", "n")}),
    ("det(X)", "X", {"X": ("n", "n")}),
    ("trace(inv(X) @ A)", "X", {"X": ("n", "n"), "A": ("n", "n")}),
    ("sum(exp(A * X))", "X", {"A": ("n", "m"), "X": ("n", "m")}),
    ("sum(log(X))", "X", {"X": ("n", "m")}),
    ("sum(sigmoid(X @ w))", "w", {"X": ("m", "n"), "w": ("n",)}),
    ("sum(relu(W @ x))", "W", {"W": ("m", "n"), "x": ("n",)}),
    ("norm(A @ x - b) ** 2", "x", {"A": ("m", "n"), "x": ("n",), "b": ("m",)}),
    ("sum(softmax(z) * y)", "z", {"z": ("n",), "y": ("n",)}),
    ("logsumexp(W @ x)", "W", {"W": ("m", "n"), "x": ("n",)}),
    ("trace(X.T @ A @ X)", "X", {"X": ("n", "m"), "A": ("n", "n")}),
    ("sum(X * X)", "X", {"X": ("n", "m")}),
    ("a * sum(X)", "a", {"a": (), "X": ("n", "m")}),
    ("sum(sqrt(X))", "X", {"X": ("n", "m")}),
    ("sum(sin(X) * cos(X))", "X", {"X": ("n", "m")}),
    ("x.T @ inv(A) @ x", "A", {"x": ("n",), "A": ("n", "n")}),
    ("sum(A @ X @ B)", "X", {"A": ("p", "n"), "X": ("n", "m"), "B": ("m", "q")}),
    ("trace(X @ X)", "X", {"X": ("n", "n")}),
    ("sum(abs(X - A))", "X", {"X": ("n", "m"), "A": ("n", "m")}),
    ("sum(mean(X, axis=0))", "X", {"X": ("n", "m")}),
    ("sum(softplus(W @ x + b))", "b", {"W": ("m", "n"), "x": ("n",), "b": ("m",)}),
    ("sum(diag(X) * x)", "X", {"X": ("n", "n"), "x": ("n",)}),
    ("sum(X / (1 + X ** 2))", "X", {"X": ("n", "m")}),
    ("trace(A @ X.T @ B @ X)", "X", {"A": ("m", "m"), "X": ("n", "m"), "B": ("n", "n")}),
]

#: Runs in a fresh process: load the API, then time the first derivation and its printing.
PROBE = """
import json, sys, time
import matcalc as mc
mc.derive                                   # the API loads here, outside the timing
text, wrt, shapes = json.loads(sys.argv[1])
start = time.perf_counter()
str(mc.derive(text, wrt, shapes={k: tuple(v) for k, v in shapes.items()}).gradient)
print(time.perf_counter() - start)
"""


def environment(cache: str) -> dict:
    """Both sides as an installed package runs: bytecode cached (in the temporary directory,
    for SymPy and NumPy too, so neither side is favoured; PYTHONDONTWRITEBYTECODE would make
    every run compile matcalc afresh), the rule cache there too, one BLAS thread."""
    env = {**os.environ, "XDG_CACHE_HOME": cache, "PYTHONPATH": ROOT,
           "PYTHONPYCACHEPREFIX": os.path.join(cache, "bytecode"),
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def wall(args: list, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, env=env, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def spread(values: list) -> str:
    return f"median {statistics.median(values):.3f}, range {min(values):.3f}-{max(values):.3f}"


def command_ratio(rounds: int, env: dict) -> None:
    wall(COMMAND, env), wall(FLOOR, env)           # warm-up: file caches, the rule cache
    ours, floor, ratios = [], [], []
    for n in range(rounds):
        pair = [(COMMAND, ours), (FLOOR, floor)]
        if n % 2:
            pair.reverse()                          # neither always runs first
        times = {}
        for args, into in pair:
            into.append(wall(args, env))
            times[id(into)] = into[-1]
        ratios.append(times[id(ours)] / times[id(floor)])
    ratio = statistics.median(ours) / statistics.median(floor)
    print(f"1. command, {rounds} interleaved rounds (seconds):")
    print(f"   matcalc grad \"A @ B\" ...       {spread(ours)}")
    print(f"   python -c \"import sympy, numpy\" {spread(floor)}")
    print(f"   ratio of medians {ratio:.3f} (per-round ratios: {spread(ratios)}); goal <= 1.15")


def first_derivations(env: dict) -> list:
    times = []
    for text, wrt, shapes in EXPRESSIONS:
        result = subprocess.run([sys.executable, "-c", PROBE, json.dumps([text, wrt, shapes])],
                                capture_output=True, text=True, env=env, cwd=ROOT, check=True)
        times.append(float(result.stdout) * 1000)
    return times


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="rounds of part 1 (default 15)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="matcalc-startup-") as cache:
        env = environment(cache)
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; cache in {cache}")
        command_ratio(args.rounds, env)
    with tempfile.TemporaryDirectory(prefix="matcalc-startup-") as cache:
        env = environment(cache)
        wall(["-c", "import matcalc; matcalc.derive"], env)      # bytecode, not rules
        cold = first_derivations(env)
        warm = first_derivations(env)
    print(f"2. first derivation in a fresh process, {len(EXPRESSIONS)} expressions (ms):")
    print(f"   empty rule cache  {spread(cold)}")
    print(f"   filled rule cache {spread(warm)}; goal: median <= 10")


if __name__ == "__main__":
    main()
