"""Opt-in XLA for small batches: one compiled function per batch size, kept where it pays.

A one-image request to a small CNN spends most of its TensorFlow time outside the
arithmetic: the graph's kernels are dispatched one by one, each through oneDNN and the
intra-op thread pool. XLA fuses the graph into one compiled function for one input shape,
which on this 2-core machine runs the reference CNN's batch of 1 in 143 us instead of
241-330 us. It loses for larger batches (256 images: 10.9 ms against 3.0 ms), every new
shape is a compilation (75-110 ms), and its float results differ from oneDNN's in the last
bits. So it is compiled at load, for batch sizes 1..N only, and each size is kept only when
its outputs agree with the plain function's and it is measurably faster; every other shape
runs the plain function as before.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from mlreg.models.tensors import TensorPort
from mlreg.tensorflow.calls import flat_call, keyword_order

#: An XLA function must take at most this share of the plain one's time to be kept.
KEEP_BELOW = 0.9
#: Outputs must agree with the plain function's this closely (float32 reassociation is ~1e-6).
RTOL, ATOL = 1e-3, 1e-5
_CALLS, _ROUNDS = 20, 3
#: The attributes TensorFlow prints after a function's name in its errors ([_XlaMustCompile=...]).
_ATTRS = re.compile(r"\[[^\]]*\]")

Function = Callable[..., Mapping[str, tf.Tensor]]


@dataclass(frozen=True)
class Outcome:
    """What compiling one batch size gave: kept or not, and why."""

    batch: int
    kept: bool
    reason: str


def unsupported(inputs: list[TensorPort]) -> str | None:
    """Why these inputs cannot be compiled for a fixed batch size, or None."""
    for port in inputs:
        if not port.shape or port.shape[0] != -1:
            return f"input {port.name!r} has no batch dimension (shape {list(port.shape)})"
        if any(d < 0 for d in port.shape[1:]):
            return f"input {port.name!r} has a variable dimension besides the batch's"
        if not (np.issubdtype(port.dtype, np.number) or port.dtype == np.bool_):
            return f"input {port.name!r} is {port.dtype}, not numeric"
    return None


def compile_small_batches(
    fn: Function, inputs: list[TensorPort], max_batch: int
) -> tuple[dict[int, Function], list[Outcome]]:
    """XLA functions for batch sizes 1..``max_batch`` that agree with ``fn`` and beat it.

    Returns the kept functions by batch size (each called with the same keyword tensors as
    ``fn``) and one outcome per size tried; none when the inputs cannot be compiled.
    """
    why = unsupported(inputs)
    if why is not None:
        return {}, [Outcome(0, False, why)]
    kept: dict[int, Function] = {}
    outcomes = []
    rng = np.random.default_rng(0)
    for batch in range(1, max_batch + 1):
        feed = {p.tf_name: tf.constant(_sample(rng, p, batch)) for p in inputs}
        outcome, compiled = _try(fn, feed, batch)
        outcomes.append(outcome)
        if compiled is not None:
            kept[batch] = compiled
    return kept, outcomes


def _try(fn: Function, feed: dict[str, tf.Tensor], batch: int) -> tuple[Outcome, Any]:
    specs = {name: tf.TensorSpec(t.shape, t.dtype) for name, t in feed.items()}
    try:
        traced = tf.function(lambda **tensors: fn(**tensors), jit_compile=True)
        concrete = traced.get_concrete_function(**specs)
        compiled = flat_call(concrete, keyword_order(concrete))
        got = compiled(**feed)
    except (tf.errors.OpError, NotImplementedError, ValueError, TypeError) as e:
        # An op XLA cannot compile (strings, some custom ops): this size stays plain.
        text = str(e).strip()
        first = _ATTRS.sub("", text.splitlines()[0]) if text else type(e).__name__
        return Outcome(batch, False, f"XLA cannot compile it: {first[:300]}"), None
    want = fn(**feed)
    for name, tensor in want.items():
        a, b = tensor.numpy(), got[name].numpy()
        if a.shape != b.shape or not np.allclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True):
            return Outcome(batch, False, f"output {name!r} differs from the plain function"), None
    plain, xla = _best_seconds(lambda: fn(**feed), lambda: compiled(**feed))
    timing = f"{xla * 1e6:.0f} us against {plain * 1e6:.0f} us"
    if xla > plain * KEEP_BELOW:
        return Outcome(batch, False, f"not faster ({timing})"), None
    return Outcome(batch, True, timing), compiled


def _best_seconds(*calls: Callable[[], Any]) -> list[float]:
    """Each call's best time over a few rounds, the calls taking turns in every round, so
    that a burst of other work on the machine (another worker loading) slows both alike."""
    best = [float("inf")] * len(calls)
    for call in calls:
        call()
    for _ in range(_ROUNDS):
        for i, call in enumerate(calls):
            start = time.perf_counter()
            for _ in range(_CALLS):
                call()
            best[i] = min(best[i], (time.perf_counter() - start) / _CALLS)
    return best


def _sample(rng: np.random.Generator, port: TensorPort, batch: int) -> np.ndarray:
    shape = (batch, *port.shape[1:])
    if np.issubdtype(port.dtype, np.floating):
        return rng.standard_normal(shape).astype(port.dtype)
    return np.zeros(shape, dtype=port.dtype)  # ids, counts, flags: 0 is valid for all


def describe(outcomes: list[Outcome]) -> str:
    """One line for the log: which batch sizes run compiled, and why the others do not."""
    if len(outcomes) == 1 and outcomes[0].batch == 0:
        return f"XLA not used: {outcomes[0].reason}"
    kept = [o for o in outcomes if o.kept]
    parts = [f"batch {o.batch}: {'XLA' if o.kept else 'plain'}, {o.reason}" for o in outcomes]
    sizes = ", ".join(str(o.batch) for o in kept)
    head = f"XLA for batch size(s) {sizes}" if kept else "XLA not used"
    return f"{head} ({'; '.join(parts)})"


__all__ = ["Outcome", "compile_small_batches", "describe", "unsupported"]
