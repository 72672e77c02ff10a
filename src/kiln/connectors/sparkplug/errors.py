"""The errors the Sparkplug codec and topic parser raise for bad input from the network."""

from __future__ import annotations

from kiln.core.errors import KilnError


class SparkplugError(KilnError, ValueError):
    """Base of the Sparkplug input errors."""


class PayloadError(SparkplugError):
    """Bytes that are not a valid Sparkplug B payload, or a value that cannot be encoded as one.

    The decoder raises this and nothing else, whatever the bytes are.
    """


class TopicError(SparkplugError):
    """A topic that is not a Sparkplug B 3.0 topic. The message names the expected form."""
