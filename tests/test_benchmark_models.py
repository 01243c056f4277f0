"""The model benchmark's instruments (benchmarks/models.py), on tiny sizes.

The hand-written gradients are the reference every contender is timed and checked against, so
they are checked here against central finite differences of each model's forward definition;
matcalc, JAX and PyTorch against them (the last two skipped when not installed); and the
benchmark's own agreement check and statistics against cases with known answers.
"""

import importlib.util
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "models.py"
SPEC = importlib.util.spec_from_file_location("benchmark_models", PATH)
bm = importlib.util.module_from_spec(SPEC)
sys.modules[SPEC.name] = bm            # dataclasses look their module up while it loads
SPEC.loader.exec_module(bm)

MODELS = list(bm.MODELS.values())
IDS = [m.name for m in MODELS]


def tiny_inputs(model, dtype="float64", seed=0):
    return model.inputs(model.sizes["tiny"], np.dtype(dtype), np.random.default_rng(seed))


def finite_differences(model, v, name, step=1e-6):
    """Central differences of the model's scalar (the loss, or sum(G * f)) in each entry of
    v[name]."""
    x = v[name]
    grad = np.zeros(x.shape)
    for index in np.ndindex(x.shape):
        keep = x[index].copy()
        h = step * max(1.0, abs(float(keep)))
        x[index] = keep + h
        up = bm.loss_numpy(model, v)
        x[index] = keep - h
        down = bm.loss_numpy(model, v)
        x[index] = keep
        grad[index] = (up - down) / (2 * h)
    return grad


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_hand_written_gradients_match_finite_differences(model):
    v = tiny_inputs(model)
    hand = bm.as_list(model.hand(v), len(model.wrt))
    assert len(hand) == len(model.wrt)
    for name, got in zip(model.wrt, hand):
        want = finite_differences(model, v, name)
        got = np.asarray(got, dtype=np.float64)
        assert got.shape == v[name].shape, name
        scale = np.max(np.abs(want))
        assert scale > 1e-3, f"d{name} is (nearly) zero: the check would prove nothing"
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7 * scale, err_msg=name)


@pytest.mark.parametrize("model", [m for m in MODELS if m.name in ("mlp_relu", "triplet")],
                         ids=lambda m: m.name)
def test_kinked_models_are_checked_away_from_their_kinks(model):
    """Finite differences across a relu kink would be meaningless: the tiny inputs keep every
    relu argument well away from 0 (and some on each side)."""
    v = tiny_inputs(model)
    if model.name == "mlp_relu":
        arg = v["W1"] @ v["X"] + v["b1"][:, None]
    else:
        arg = (np.sum((v["A"] - v["P"]) ** 2, axis=1) - np.sum((v["A"] - v["N"]) ** 2, axis=1)
               + bm.MARGIN)
    assert np.min(np.abs(arg)) > 1e-3
    assert np.any(arg > 0) and np.any(arg < 0)


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_hand_written_gradients_leave_their_inputs_alone(model):
    """The reference updates its own temporaries in place, never the caller's arrays."""
    v = tiny_inputs(model)
    before = {k: x.copy() for k, x in v.items()}
    model.hand(v)
    for k, x in v.items():
        np.testing.assert_array_equal(x, before[k], err_msg=k)


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_hand_written_gradients_keep_float32(model):
    v = tiny_inputs(model, "float32")
    assert all(x.dtype == np.float32 for x in v.values())
    for name, g in zip(model.wrt, bm.as_list(model.hand(v), len(model.wrt))):
        assert g.dtype == np.float32, name


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_every_contender_agrees_with_the_hand_written_gradients(model):
    """matcalc's generated code (and backward() where timed), JAX and PyTorch where installed:
    the benchmark's own check, which raises SystemExit on a disagreement."""
    jax = bm.optional_library("jax")
    torch = bm.optional_library("torch")
    v = tiny_inputs(model)
    derived, code, _ = bm.derive(model)
    if jax is None:
        cs, _ = bm.contenders(model, v, derived, code, None, torch)
        found = bm.check(model, cs, "float64")
    else:
        with jax.enable_x64(True):
            cs, _ = bm.contenders(model, v, derived, code, jax, torch)
            found = bm.check(model, cs, "float64")
    expected = {bm.HAND, bm.DERIVE} | {name for name, _ in model.extras} \
        | ({bm.BACKWARD} if model.backward else set()) \
        | ({bm.JAX} if jax else set()) | ({bm.TORCH} if torch else set())
    assert set(found) == expected
    for worst, _dtypes in found.values():
        assert worst < 1e-9


def test_the_agreement_check_catches_a_wrong_gradient():
    model = bm.MODELS["attention"]
    v = tiny_inputs(model)

    def off_by_one_percent():
        dQ, dK, dV = model.hand(v)
        return dQ, dK * 1.01, dV

    cs = [bm.Contender(bm.HAND, None, lambda: model.hand(v)),
          bm.Contender("wrong", None, off_by_one_percent)]
    with pytest.raises(SystemExit, match="wrong disagrees .* of K"):
        bm.check(model, cs, "float32")


def test_the_agreement_check_catches_a_wrong_shape():
    model = bm.MODELS["logistic"]
    v = tiny_inputs(model)

    def column_w():
        dw, db = model.hand(v)
        return dw[:, None], db

    cs = [bm.Contender(bm.HAND, None, lambda: model.hand(v)),
          bm.Contender("column", None, column_w)]
    with pytest.raises(SystemExit, match="gradients of w "):
        bm.check(model, cs, "float64")


def test_the_gemm_floor_does_the_products_of_forward_and_backward():
    """The floor's products are those of the hand-written pass: as many, of the same sizes
    (counted by intercepting the arrays' matmul)."""
    counted = []

    class Counting(np.ndarray):
        def __matmul__(self, other):
            counted.append((self.shape, other.shape))
            return (np.asarray(self) @ np.asarray(other)).view(Counting)

        def __rmatmul__(self, other):
            counted.append((other.shape, self.shape))
            return (np.asarray(other) @ np.asarray(self)).view(Counting)

    for model, count in ((bm.MODELS["mlp_tanh"], 11), (bm.MODELS["mlp_relu"], 5)):
        v = {k: x.view(Counting) for k, x in tiny_inputs(model).items()}
        products = model.gemms(v)
        counted.clear()
        products()
        floor = sorted(counted)
        counted.clear()
        model.hand(v)
        assert len(floor) == count
        assert floor == sorted(counted), model.name


def test_summarise_takes_the_median_of_per_round_ratios():
    times = {"hand": [1.0, 2.0, 4.0, 8.0, 3.0], "other": [2.0, 2.0, 4.0, 4.0, 9.0]}
    s = bm.summarise(times, "hand")
    assert s["hand"]["ratio"] == 1.0
    assert s["other"]["median"] == 4.0
    assert (s["other"]["min"], s["other"]["max"]) == (2.0, 9.0)
    # per-round ratios 2, 1, 1, 0.5, 3: median 1, quartiles 1 and 2 (not 4.0 / 3.0)
    assert s["other"]["ratio"] == 1.0
    assert (s["other"]["ratio_q1"], s["other"]["ratio_q3"]) == (1.0, 2.0)


def test_interleaved_rounds_shuffle_the_order_so_neighbours_vary():
    def run():
        seen = []

        def contender(name):
            return bm.Contender(name, lambda: seen.append(name), None)
        times, cpu = bm.interleaved([contender(x) for x in "abc"], rounds=20, calls=2,
                                    warmup=1)
        assert all(len(t) == 20 for t in times.values())
        assert all(len(t) == 20 for t in cpu.values())
        return ["".join(seen[i:i + 6:2]) for i in range(0, len(seen), 6)]
    rounds = run()
    assert len(rounds) == 21 and all(sorted(r) == ["a", "b", "c"] for r in rounds)
    assert run() == rounds                                  # seeded: a run repeats it
    # each contender runs right after each other one in some round, and first in some
    followed = {(r[k], r[k + 1]) for r in rounds for k in range(2)}
    assert followed == {(x, y) for x in "abc" for y in "abc" if x != y}
    assert {r[0] for r in rounds} == set("abc")


def test_returned_dtypes_are_reported_as_they_are():
    assert bm.returned_dtype(np.zeros(2, np.float32)) == "float32"
    assert bm.returned_dtype(np.float64(1.0)) == "float64"
    assert bm.returned_dtype(1.0) == "Python float"
    found = {"dQ": "float64", "dK": "float32", "dV": "float64", "db": "Python float"}
    assert bm.dtype_summary(found, "float32") == "float32; float64 (dQ, dV); Python float (db)"
    assert bm.dtype_summary({"dQ": "float32"}, "float32") == "float32"
    assert bm.dtype_summary({"dQ": "float64", "dK": "float64"}, "float32") == "float64 (dQ, dK)"


def test_threads_are_pinned_for_every_library(monkeypatch):
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS"):
        monkeypatch.delenv(name, raising=False)
    kept = []
    if hasattr(os, "sched_setaffinity"):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(kept or {3, 1, 2}))
        monkeypatch.setattr(os, "sched_setaffinity", lambda pid, cores: kept.extend(cores))
    cores = bm.pin_threads(1)
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1" and os.environ["MKL_NUM_THREADS"] == "1"
    assert "--xla_cpu_multi_thread_eigen=false" in os.environ["XLA_FLAGS"]
    if hasattr(os, "sched_setaffinity"):
        assert kept == [1] and cores == [1]


def test_run_model_times_and_reports_every_contender():
    model = bm.MODELS["softmax"]
    derived, code, _ = bm.derive(model)
    res = bm.run_model(model, model.sizes["tiny"], "float32", 3, derived, code, None, None,
                       target=0.001)
    assert res["notes"] == ["jax.jit(jax.grad): skipped, JAX is not installed",
                            "torch autograd: skipped, PyTorch is not installed"]
    summary = res["summary"]
    assert list(summary) == [bm.HAND, bm.DERIVE]
    assert all(len(t) == 3 and min(t) > 0 for t in res["times"].values())
    assert all(len(t) == 3 for t in res["cpu_times"].values())
    assert 0 < summary[bm.HAND]["cpu_per_wall"] < 1.5        # NumPy, one thread
    assert summary[bm.HAND]["ratio"] == 1.0 and summary[bm.HAND]["returns"] == "float32"
    assert math.isfinite(summary[bm.DERIVE]["ratio"])
    assert "returns" in summary[bm.DERIVE]
    text = bm.report({"results": [res], "threads": 1, "versions": "test", "rounds": 3,
                      "cores": 2, "pinned_to": [0], "derivation_seconds": {"softmax": 0.01},
                      "load_average": [0.5, 1.5]})
    assert "| softmax *" in text and "matcalc derive" in text
    ratio = summary[bm.DERIVE]
    assert f"| {ratio['ratio']:.2f} ({ratio['ratio_q1']:.2f}-{ratio['ratio_q3']:.2f}) |" in text
    assert "2 cores, the process on 0; load average (1 min) 0.50 at the start, 1.50 at the end" \
        in text
    assert "written for matcalc: Y declared a probability" in text
