"""Counter-based random numbers: one independent stream per machine, drawn for many at once.

A machine's random numbers are a hash of (seed, machine identity, step, slot), so they do not
depend on how many other machines exist or on the order they are computed in: machine 3 of
line 7 behaves the same in a 10-tag plant and in a 100,000-tag one, and a whole kind of
machine can still be stepped as one NumPy array. The hash is the SplitMix64 finalizer, a
64-bit mixer with full avalanche that passes the usual statistical test batteries.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_TWO_PI = 2.0 * np.pi

FloatArray = npt.NDArray[np.float64]


def mix64(x: int) -> int:
    """SplitMix64 of one Python int (taken modulo 2**64)."""
    z = (x + _GOLDEN) & _MASK
    z = ((z ^ (z >> 30)) * _M1) & _MASK
    z = ((z ^ (z >> 27)) * _M2) & _MASK
    return z ^ (z >> 31)


def _mix_array(z: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    # uint64 array arithmetic wraps modulo 2**64, which is exactly what the mixer needs.
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(_M1)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(_M2)
    return z ^ (z >> np.uint64(31))


def machine_key(seed: int, kind: int, line: int, position: int) -> int:
    """The identity of one machine's stream."""
    return mix64(mix64(seed & _MASK) ^ ((kind << 48) | (line << 24) | position))


class Streams:
    """Random draws for a group of machines; `step` and `slot` name the draw.

    Each (step, slot) pair must be used for one purpose only, so that a model's draws stay
    independent of each other.
    """

    def __init__(self, keys: list[int]) -> None:
        self._keys = np.array(keys, dtype=np.uint64)

    def __len__(self) -> int:
        return len(self._keys)

    def _bits(self, step: int, slot: int) -> npt.NDArray[np.uint64]:
        counter = np.uint64(mix64((step << 8) | slot))
        return _mix_array(self._keys ^ counter)

    def uniform(self, step: int, slot: int) -> FloatArray:
        """Uniform on the open interval (0, 1)."""
        # 53 bits, offset by half a unit so that 0 (and so log(0)) never occurs.
        return ((self._bits(step, slot) >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53

    def normal(self, step: int, slot: int) -> FloatArray:
        """Standard normal, by Box-Muller on the two 32-bit halves of one hash."""
        u1, u2 = self._halves(step, slot)
        out: FloatArray = np.sqrt(-2.0 * np.log(u1)) * np.cos(_TWO_PI * u2)
        return out

    def _halves(self, step: int, slot: int) -> tuple[FloatArray, FloatArray]:
        """Two uniforms on (0, 1) from the two 32-bit halves of one hash."""
        bits = self._bits(step, slot)
        u1 = ((bits >> np.uint64(32)).astype(np.float64) + 0.5) * 2.0**-32
        u2 = ((bits & np.uint64(0xFFFFFFFF)).astype(np.float64) + 0.5) * 2.0**-32
        return u1, u2

    def exponential(self, step: int, slot: int, mean: float | FloatArray) -> FloatArray:
        return -np.log(self.uniform(step, slot)) * mean

    def erlang2(self, step: int, slot: int, mean: float | FloatArray) -> FloatArray:
        """Sum of two exponentials: a duration with few very short or very long outcomes."""
        u1, u2 = self._halves(step, slot)
        out: FloatArray = -np.log(u1 * u2) * (np.asarray(mean) / 2.0)
        return out

    def happens(
        self, step: int, slot: int, rate_per_s: float | FloatArray, dt: float
    ) -> npt.NDArray[np.bool_]:
        """True where a Poisson event of the given rate occurs within `dt` seconds."""
        p = -np.expm1(-np.asarray(rate_per_s, dtype=np.float64) * dt)
        return self.uniform(step, slot) < p
