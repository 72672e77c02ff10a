"""How long the parser fuzzers run: a fixed, derandomized budget in CI, a time budget locally.

Why Hypothesis and not atheris: atheris 3.0 has a CPython 3.11 wheel and works on these parsers
(a 15-second libFuzzer run per parser found nothing), but its loop owns the process (it exits
on the first crash and never returns), so it cannot be a bounded, reproducible pytest test,
and it would be one more native dependency. Hypothesis runs inside pytest, derandomized for CI
(the same examples on every run, so a failure is reproducible from the log), shrinks a failure
to a minimal input, and is steered toward rare branches with `hypothesis.target()`. The
strategies start from valid inputs and mutate their bytes (flips, cuts, splices), which reaches
the deep branches that random bytes never do.

`KILN_FUZZ_SECONDS=300 pytest tests/fuzz` runs each fuzz test for that many seconds with fresh
random seeds (the Hypothesis database keeps what it finds); unset, each test runs its fixed
number of examples and the whole folder stays under a minute on two cores.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings

F = TypeVar("F", bound=Callable[..., Any])

SECONDS = float(os.environ.get("KILN_FUZZ_SECONDS", "0") or 0)
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]


def fuzz(examples: int) -> Callable[[F], F]:
    """Run a `@given` test `examples` times, derandomized; or for KILN_FUZZ_SECONDS if set."""

    def decorate(test: F) -> F:
        if SECONDS <= 0:
            ci = settings(
                max_examples=examples, derandomize=True, deadline=None, suppress_health_check=_QUIET
            )
            return ci(test)
        local = settings(max_examples=examples, deadline=None, suppress_health_check=_QUIET)
        inner = local(test)

        def for_a_while() -> None:
            # A fresh random seed per round until the time is up.
            end = time.monotonic() + SECONDS
            while time.monotonic() < end:
                inner()

        for_a_while.__name__ = test.__name__
        for_a_while.__doc__ = test.__doc__
        return for_a_while  # type: ignore[return-value]

    return decorate


def mutations(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """`data` with each (kind, position, bytes) edit applied: 0 flips a byte, 1 cuts the rest,
    2 inserts, 3 deletes a run, 4 overwrites a run. Positions wrap around the current length."""
    out = bytearray(data)
    for kind, at, chunk in edits:
        if not out:
            out += chunk
            continue
        i = at % len(out)
        if kind == 0:
            out[i] ^= chunk[0] if chunk else 0xFF
        elif kind == 1:
            del out[i:]
        elif kind == 2:
            out[i:i] = chunk
        elif kind == 3:
            del out[i : i + max(1, len(chunk))]
        else:
            out[i : i + len(chunk)] = chunk
    return bytes(out)
