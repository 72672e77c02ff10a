"""Why a connector lost its source, in words a person can act on.

A reason names where the connector was talking to (host:port, an opc.tcp URL, a broker URL)
and what went wrong underneath: exception groups (a connector's `asyncio.TaskGroup`) are
opened to their leaf errors, library wrappers give way to the OS error they carry, and the
same leaf is said once. Never the text of an exception group, never a bare class name when
there is something better to say.
"""

from __future__ import annotations

import os
import re

from kiln.connectors.base import SourceLost

_ERRNO_PREFIX = re.compile(r"^\[Errno (\d+)\]\s*")
_MAX_LEAVES = 3  # more distinct errors than this at once are summarised by count


def describe_failure(err: BaseException, peer: str | None = None) -> str:
    """One line: `<peer>: <leaf>; <leaf>`, the peer left out when a leaf already names it."""
    leaves = list(dict.fromkeys(_leaf_text(e) for e in leaf_errors(err)))
    text = "; ".join(leaves[:_MAX_LEAVES])
    if len(leaves) > _MAX_LEAVES:
        text += f" (and {len(leaves) - _MAX_LEAVES} more)"
    if peer and peer not in text:
        text = f"{peer}: {text}"
    return text


def leaf_errors(err: BaseException) -> list[BaseException]:
    """The errors at the bottom of nested exception groups, in order."""
    if isinstance(err, BaseExceptionGroup):
        return [leaf for sub in err.exceptions for leaf in leaf_errors(sub)]
    return [err]


def _leaf_text(err: BaseException) -> str:
    text = str(err).strip()
    if isinstance(err, SourceLost):
        return text or "source lost"
    if isinstance(err, OSError) and err.errno is not None:
        # "[Errno 111] Connect call failed ('127.0.0.1', 4840)": the endpoint is said once,
        # by the caller; the errno's own words are what a person looks up.
        return os.strerror(err.errno)
    found = _ERRNO_PREFIX.match(text)
    if found is not None:  # a library's wrapper around an OS error (aiomqtt's MqttError)
        return os.strerror(int(found.group(1)))
    if isinstance(err, TimeoutError):
        return text or "no answer in time"
    if isinstance(err, OSError) and text:
        return text
    kind = type(err).__name__
    return f"{kind}: {text}" if text else kind
