"""Bytes of the bus's messages between processes: value batches, events, commands, acks.

Pure (no broker import), so both ends and the tests share it. A value batch is columnar and
binary, because batches are the hot path (tens of thousands of points a second); everything
else is small and rare, and travels as JSON.

A batch's values keep their Python type exactly across the wire: a `1` arrives as an int, a
`1.0` as a float, `True` as a bool, strings as strings and `None` as None. A column of one
type (the common case: a sensor's floats) is one NumPy buffer; a mixed column carries a type
tag per point.

Layout of a batch (little-endian)::

    magic "KVB1" | flags u8 | receive_us i64 | n u32
    batch_id, origin      (u16 length + UTF-8 each)
    paths                 (u32 length + UTF-8, joined by NUL: no path may contain one)
    source_us             (n x i64)
    qualities             (n x u32: OPC UA status codes)
    values kind u8, then by kind:
        FLOAT n x f64 | INT n x i64 | BOOL n x u8 | STR strings | NONE (nothing)
        MIXED n x u8 tags, then the floats, ints, bools, strings, big ints of the column
    strings: count-implied u32 lengths + UTF-8 blob
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from kiln.core.bus.protocol import Command, CommandError, CommandFailure, DurabilityAck, Event
from kiln.core.values import ValueBatch

MAGIC: Final = b"KVB1"
_HEAD = struct.Struct("<4sBqI")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_FLAG_HISTORICAL = 1
_FLAG_POSITIONS = 2

# Value column kinds, and the per-point tags of a MIXED column.
_NONE, _BOOL, _INT, _FLOAT, _STR, _BIGINT, _MIXED = range(7)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_UINT32_MAX = 2**32 - 1


class CodecError(ValueError):
    """Bytes that are not a message of this codec (or a value it cannot carry)."""


# -- value batches ------------------------------------------------------------------------


def encode_batch(batch: ValueBatch, positions: Sequence[int] | None = None) -> bytes:
    """The bytes of `batch`, with its `batch_id` and `origin`.

    `positions`, for a part of a larger batch, says where each point sits in the whole (so the
    receiver puts the parts back together in the original order).
    """
    n = len(batch)
    flags = (_FLAG_HISTORICAL if batch.historical else 0) | (
        _FLAG_POSITIONS if positions is not None else 0
    )
    out = bytearray(_HEAD.pack(MAGIC, flags, batch.receive_us, n))
    _put_short_str(out, batch.batch_id)
    _put_short_str(out, batch.origin)
    joined = "\x00".join(batch.paths)
    if joined.count("\x00") != max(n - 1, 0):
        raise CodecError("a path contains a NUL character; valid namespace paths never do")
    _put_blob(out, joined.encode())
    out += _int_column(batch.source_us, np.int64, "source_us")
    out += _int_column(batch.qualities, np.uint32, "qualities")
    _put_values(out, batch.values)
    if positions is not None:
        if len(positions) != n:
            raise CodecError(f"{len(positions)} positions for a part of {n} points")
        out += _int_column(positions, np.uint32, "positions")
    return bytes(out)


def decode_batch(data: bytes) -> ValueBatch:
    """The batch `encode_batch` wrote; columns come back as lists of Python scalars."""
    return decode_part(data)[0]


def decode_part(data: bytes) -> tuple[ValueBatch, list[int] | None]:
    """A batch and, for a part of a larger one, the positions of its points in the whole."""
    view = memoryview(data)
    try:
        magic, flags, receive_us, n = _HEAD.unpack_from(view, 0)
        if magic != MAGIC:
            raise CodecError(f"not a value batch: starts with {bytes(magic)!r}, not {MAGIC!r}")
        pos = _HEAD.size
        batch_id, pos = _get_short_str(view, pos)
        origin, pos = _get_short_str(view, pos)
        blob, pos = _get_blob(view, pos)
        paths = blob.tobytes().decode().split("\x00") if n else []
        source_us = np.frombuffer(view, np.int64, n, pos).tolist()
        pos += 8 * n
        qualities = np.frombuffer(view, np.uint32, n, pos).tolist()
        pos += 4 * n
        values, pos = _get_values(view, pos, n)
        positions: list[int] | None = None
        if flags & _FLAG_POSITIONS:
            positions = np.frombuffer(view, np.uint32, n, pos).tolist()
            pos += 4 * n
    except (struct.error, ValueError, UnicodeDecodeError) as err:
        if isinstance(err, CodecError):
            raise
        raise CodecError(f"truncated or corrupt value batch: {err}") from err
    if pos != len(view):
        raise CodecError(f"value batch has {len(view) - pos} bytes after its end")
    if len(paths) != n:
        raise CodecError(f"value batch says {n} points but carries {len(paths)} paths")
    batch = ValueBatch(
        paths=paths,
        values=values,
        source_us=source_us,
        qualities=qualities,
        receive_us=receive_us,
        historical=bool(flags & _FLAG_HISTORICAL),
        batch_id=batch_id,
        origin=origin,
    )
    return batch, positions


def split_batch(batch: ValueBatch, shard: Sequence[int]) -> list[tuple[int, ValueBatch, list[int]]]:
    """`batch` cut by `shard` (one number per point): (shard, part, positions in the whole) for
    each shard present, in shard order; a part keeps the batch's id, origin and flags."""
    order = np.argsort(np.asarray(shard, dtype=np.int64), kind="stable")
    keys = np.asarray(shard, dtype=np.int64)[order]
    cuts = np.flatnonzero(np.diff(keys)) + 1
    out: list[tuple[int, ValueBatch, list[int]]] = []
    for idx in np.split(order, cuts):
        part = ValueBatch(
            paths=_take(batch.paths, idx),
            values=_take(batch.values, idx),
            source_us=_take(batch.source_us, idx),
            qualities=_take(batch.qualities, idx),
            receive_us=batch.receive_us,
            historical=batch.historical,
            batch_id=batch.batch_id,
            origin=batch.origin,
        )
        out.append((int(shard[int(idx[0])]), part, idx.tolist()))
    return out


def encode_fitting(part: ValueBatch, positions: Sequence[int], limit: int) -> list[bytes]:
    """`part` (at `positions` in its whole batch) encoded in as many pieces as it takes for
    each to be at most `limit` bytes: the broker refuses a bigger message (`max_payload`).
    Cut by point, in order; `join_parts` puts the pieces back together like any parts."""
    payload = encode_batch(part, positions)
    if len(payload) <= limit:
        return [payload]
    n = len(part)
    if n == 1:
        raise CodecError(
            f"the value of {part.paths[0]!r} alone takes {len(payload)} bytes, more than a "
            f"message may ({limit}): raise the NATS server's max_payload or send less"
        )
    # Sized by the average point, with room to spare; a piece still too big is cut again.
    pieces = min(n, max(2, -(-len(payload) * 5 // (limit * 4))))
    bounds = np.linspace(0, n, pieces + 1).astype(np.intp)
    out: list[bytes] = []
    for start, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        idx = np.arange(start, stop, dtype=np.intp)
        piece = ValueBatch(
            paths=_take(part.paths, idx),
            values=_take(part.values, idx),
            source_us=_take(part.source_us, idx),
            qualities=_take(part.qualities, idx),
            receive_us=part.receive_us,
            historical=part.historical,
            batch_id=part.batch_id,
            origin=part.origin,
        )
        out.extend(encode_fitting(piece, list(positions[start:stop]), limit))
    return out


def join_parts(parts: Sequence[tuple[ValueBatch, Sequence[int]]]) -> ValueBatch:
    """The whole batch again from its parts (each with its points' positions)."""
    first = parts[0][0]
    n = sum(len(p) for p, _ in parts)
    columns: list[npt.NDArray[Any]] = [np.empty(n, dtype=object) for _ in range(4)]
    for part, positions in parts:
        where = np.asarray(positions, dtype=np.int64)
        for column, values in zip(
            columns, (part.paths, part.values, part.source_us, part.qualities), strict=True
        ):
            column[where] = _objects(values)
    paths, values, source_us, qualities = (c.tolist() for c in columns)
    return ValueBatch(
        paths=paths,
        values=values,
        source_us=source_us,
        qualities=qualities,
        receive_us=first.receive_us,
        historical=first.historical,
        batch_id=first.batch_id,
        origin=first.origin,
    )


def _objects(values: Any) -> npt.NDArray[Any]:
    column = np.empty(len(values), dtype=object)
    column[:] = values if not isinstance(values, np.ndarray) else values.tolist()
    return column


def _take(column: Any, idx: npt.NDArray[np.intp]) -> Any:
    if isinstance(column, np.ndarray):
        return column[idx]
    return [column[i] for i in idx.tolist()]


def _put_short_str(out: bytearray, text: str) -> None:
    raw = text.encode()
    if len(raw) > 0xFFFF:
        raise CodecError(f"identifier of {len(raw)} bytes is too long (limit 65535)")
    out += _U16.pack(len(raw))
    out += raw


def _get_short_str(view: memoryview, pos: int) -> tuple[str, int]:
    (size,) = _U16.unpack_from(view, pos)
    pos += _U16.size
    raw = view[pos : pos + size]
    if len(raw) != size:
        raise CodecError("truncated value batch")
    return raw.tobytes().decode(), pos + size


def _put_blob(out: bytearray, raw: bytes) -> None:
    out += _U32.pack(len(raw))
    out += raw


def _get_blob(view: memoryview, pos: int) -> tuple[memoryview, int]:
    (size,) = _U32.unpack_from(view, pos)
    pos += _U32.size
    raw = view[pos : pos + size]
    if len(raw) != size:
        raise CodecError("truncated value batch")
    return raw, pos + size


def _int_column(column: Sequence[int], dtype: type[np.integer[Any]], name: str) -> bytes:
    try:
        return np.asarray(column, dtype=dtype).tobytes()
    except (OverflowError, ValueError, TypeError) as err:
        info = np.iinfo(dtype)
        raise CodecError(f"{name} must be integers from {info.min} to {info.max}: {err}") from err


def _kind_of(value: Any) -> int:
    # bool before int (bool is an int), NumPy scalars by their abstract type.
    if value is None:
        return _NONE
    if isinstance(value, bool | np.bool_):
        return _BOOL
    if isinstance(value, int | np.integer):
        return _INT if _INT64_MIN <= value <= _INT64_MAX else _BIGINT
    if isinstance(value, float | np.floating):
        return _FLOAT
    if isinstance(value, str):
        return _STR
    raise CodecError(
        f"value {value!r} of type {type(value).__name__} cannot travel on the bus: "
        "values are float, int, bool, str or None"
    )


def _put_values(out: bytearray, values: Any) -> None:  # a sequence, or a NumPy array
    if isinstance(values, np.ndarray):
        kind = {"f": _FLOAT, "i": _INT, "u": _INT, "b": _BOOL}.get(values.dtype.kind)
        if kind is not None and not (values.dtype.kind == "u" and values.dtype.itemsize == 8):
            _put_uniform(out, kind, values)
            return
        values = values.tolist()
    types = set(map(type, values))
    # The fast paths: a column of one plain Python type (checked by exact type, so an int
    # never hides in a float column).
    if types == {float}:
        _put_uniform(out, _FLOAT, values)
        return
    if types == {bool}:
        _put_uniform(out, _BOOL, values)
        return
    if types == {str}:
        out.append(_STR)
        _put_strings(out, values)
        return
    if types == {int}:
        try:
            column = np.asarray(values, dtype=np.int64)
        except OverflowError:
            pass  # a big int: the mixed layout carries it
        else:
            _put_uniform(out, _INT, column)
            return
    if len(values) and types == {type(None)}:
        out.append(_NONE)
        return
    _put_mixed(out, values)


def _put_uniform(out: bytearray, kind: int, values: Any) -> None:
    dtype = {_FLOAT: np.float64, _INT: np.int64, _BOOL: np.uint8}[kind]
    out.append(kind)
    out += np.asarray(values, dtype=dtype).tobytes()


def _put_strings(out: bytearray, strings: Sequence[str]) -> None:
    raws = [s.encode() for s in strings]
    out += np.fromiter(map(len, raws), np.uint32, len(raws)).tobytes()
    _put_blob(out, b"".join(raws))


def _put_mixed(out: bytearray, values: Sequence[Any]) -> None:
    tags = [_kind_of(v) for v in values]
    out.append(_MIXED)
    out += bytes(tags)
    by_kind: dict[int, list[Any]] = {k: [] for k in (_BOOL, _INT, _FLOAT, _STR, _BIGINT)}
    for tag, value in zip(tags, values, strict=True):
        if tag != _NONE:
            by_kind[tag].append(value)
    out += np.asarray(by_kind[_FLOAT], dtype=np.float64).tobytes()
    out += np.asarray(by_kind[_INT], dtype=np.int64).tobytes()
    out += np.asarray(by_kind[_BOOL], dtype=np.uint8).tobytes()
    _put_strings(out, by_kind[_STR])
    _put_strings(out, [str(int(v)) for v in by_kind[_BIGINT]])


def _get_strings(view: memoryview, pos: int, count: int) -> tuple[list[str], int]:
    lengths: npt.NDArray[np.uint32] = np.frombuffer(view, np.uint32, count, pos)
    pos += 4 * count
    blob, pos = _get_blob(view, pos)
    raw = blob.tobytes()
    ends = np.cumsum(lengths, dtype=np.int64).tolist()
    if count and ends[-1] != len(raw):
        raise CodecError("string lengths do not match their bytes")
    out: list[str] = []
    start = 0
    for end in ends:
        out.append(raw[start:end].decode())
        start = end
    return out, pos


def _get_values(view: memoryview, pos: int, n: int) -> tuple[list[Any], int]:
    kind = view[pos]
    pos += 1
    if kind == _FLOAT:
        return np.frombuffer(view, np.float64, n, pos).tolist(), pos + 8 * n
    if kind == _INT:
        return np.frombuffer(view, np.int64, n, pos).tolist(), pos + 8 * n
    if kind == _BOOL:
        return np.frombuffer(view, np.uint8, n, pos).astype(bool).tolist(), pos + n
    if kind == _STR:
        return _get_strings(view, pos, n)
    if kind == _NONE:
        return [None] * n, pos
    if kind != _MIXED:
        raise CodecError(f"unknown value column kind {kind}")
    tags = bytes(view[pos : pos + n])
    if len(tags) != n:
        raise CodecError("truncated value batch")
    pos += n
    counts = {k: tags.count(k) for k in (_BOOL, _INT, _FLOAT, _STR, _BIGINT)}
    floats = np.frombuffer(view, np.float64, counts[_FLOAT], pos).tolist()
    pos += 8 * counts[_FLOAT]
    ints = np.frombuffer(view, np.int64, counts[_INT], pos).tolist()
    pos += 8 * counts[_INT]
    bools = np.frombuffer(view, np.uint8, counts[_BOOL], pos).astype(bool).tolist()
    pos += counts[_BOOL]
    strs, pos = _get_strings(view, pos, counts[_STR])
    bigs_text, pos = _get_strings(view, pos, counts[_BIGINT])
    columns: dict[int, Any] = {
        _FLOAT: iter(floats),
        _INT: iter(ints),
        _BOOL: iter(bools),
        _STR: iter(strs),
        _BIGINT: iter(int(s) for s in bigs_text),
    }
    values: list[Any] = []
    for tag in tags:
        if tag == _NONE:
            values.append(None)
        elif tag in columns:
            values.append(next(columns[tag]))
        else:
            raise CodecError(f"unknown value tag {tag}")
    return values, pos


# -- events, commands, acknowledgements (JSON) ---------------------------------------------


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


def _loads(data: bytes, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise CodecError(f"{what} is not JSON: {err}") from err
    if not isinstance(obj, dict):
        raise CodecError(f"{what} is not a JSON object")
    return obj


def encode_event(event: Event) -> bytes:
    """An event without its `seq` (the log assigns it)."""
    try:
        return _dumps(
            {
                "kind": event.kind,
                "key": event.key,
                "data": event.data,
                "time_us": event.time_us,
                "id": event.id,
            }
        )
    except (TypeError, ValueError) as err:
        raise CodecError(
            f"event {event.kind!r} for {event.key!r}: data must hold JSON values only: {err}"
        ) from err


def decode_event(data: bytes, seq: int) -> Event:
    obj = _loads(data, "event")
    try:
        return Event(
            kind=str(obj["kind"]),
            key=str(obj["key"]),
            data=obj["data"],
            time_us=int(obj["time_us"]),
            seq=seq,
            id=str(obj.get("id", "")),
        )
    except KeyError as err:
        raise CodecError(f"event lacks field {err}") from err


def encode_command(command: Command, timeout_s: float | None = None) -> bytes:
    """A command, with the requester's deadline (seconds from sending) when it has one: the
    server gives up on the command then, as the requester does."""
    obj: dict[str, Any] = {"target": command.target, "name": command.name, "args": command.args}
    if timeout_s is not None:
        obj["timeout_s"] = timeout_s
    try:
        return _dumps(obj)
    except (TypeError, ValueError) as err:
        raise CodecError(
            f"command {command.name!r} to {command.target!r}: args must be JSON values: {err}"
        ) from err


def decode_command(data: bytes) -> Command:
    return decode_request(data)[0]


def decode_request(data: bytes) -> tuple[Command, float | None]:
    """A command and its deadline in seconds from now (None: none given)."""
    obj = _loads(data, "command")
    try:
        command = Command(target=str(obj["target"]), name=str(obj["name"]), args=obj["args"])
    except KeyError as err:
        raise CodecError(f"command lacks field {err}") from err
    timeout = obj.get("timeout_s")
    if timeout is None:
        return command, None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise CodecError(f"command timeout_s must be a positive number, not {timeout!r}")
    return command, float(timeout)


@dataclass(frozen=True, slots=True)
class CommandReply:
    """A command's answer: the reply, or the failure's kind and message."""

    reply: Mapping[str, Any] | None = None
    failure: CommandFailure | None = None
    message: str = ""

    def result(self) -> Mapping[str, Any]:
        """The reply, or raise the `CommandError` the server answered with."""
        if self.failure is not None:
            raise CommandError(self.failure, self.message)
        return self.reply if self.reply is not None else {}


def encode_reply(reply: CommandReply) -> bytes:
    if reply.failure is None:
        try:
            return _dumps({"ok": True, "reply": reply.reply or {}})
        except (TypeError, ValueError) as err:
            reply = CommandReply(
                failure=CommandFailure.FAILED, message=f"reply is not JSON values: {err}"
            )
    return _dumps({"ok": False, "kind": str(reply.failure), "message": reply.message})


def decode_reply(data: bytes) -> CommandReply:
    obj = _loads(data, "command reply")
    if obj.get("ok") is True:
        value = obj.get("reply", {})
        if not isinstance(value, dict):
            raise CodecError("command reply is not a JSON object")
        return CommandReply(reply=value)
    try:
        failure = CommandFailure(obj.get("kind", CommandFailure.FAILED))
    except ValueError:
        failure = CommandFailure.FAILED
    return CommandReply(failure=failure, message=str(obj.get("message", "")))


def encode_ack(ack: DurabilityAck) -> bytes:
    return _dumps({"batch_id": ack.batch_id, "error": ack.error})


def decode_ack(data: bytes) -> DurabilityAck:
    obj = _loads(data, "durability acknowledgement")
    error = obj.get("error")
    try:
        return DurabilityAck(str(obj["batch_id"]), None if error is None else str(error))
    except KeyError as err:
        raise CodecError(f"durability acknowledgement lacks field {err}") from err
