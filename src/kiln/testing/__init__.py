"""Fakes shipped with the package, for Kiln's own tests and for plug-in authors."""

from kiln.testing.clock import FakeClock

__all__ = ["FakeClock"]
