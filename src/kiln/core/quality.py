"""Quality codes, carried with every value.

Kiln uses OPC UA StatusCodes (Part 4, 7.39) as its quality: the top two bits are the severity
(00 Good, 01 Uncertain, 10/11 Bad) and the next 14 bits the sub-status. Storing the full 32-bit
code keeps a value's quality faithful end to end when it came from an OPC UA server, and every
other source maps onto the same codes.
"""

from __future__ import annotations

from enum import IntEnum


class Severity(IntEnum):
    GOOD = 0
    UNCERTAIN = 1
    BAD = 2


class Quality(IntEnum):
    """The StatusCodes Kiln itself assigns. Any other 32-bit code is also a valid quality."""

    GOOD = 0x00000000
    GOOD_LOCAL_OVERRIDE = 0x00960000
    UNCERTAIN = 0x40000000
    UNCERTAIN_LAST_USABLE_VALUE = 0x40900000
    UNCERTAIN_SENSOR_NOT_ACCURATE = 0x40930000
    UNCERTAIN_ENGINEERING_UNITS_EXCEEDED = 0x40940000
    UNCERTAIN_SUB_NORMAL = 0x40950000
    BAD = 0x80000000
    BAD_COMMUNICATION_ERROR = 0x80050000
    BAD_TIMEOUT = 0x800A0000
    BAD_NO_COMMUNICATION = 0x80310000
    BAD_WAITING_FOR_INITIAL_DATA = 0x80320000
    BAD_CONFIGURATION_ERROR = 0x80890000
    BAD_NOT_CONNECTED = 0x808A0000
    BAD_DEVICE_FAILURE = 0x808B0000
    BAD_SENSOR_FAILURE = 0x808C0000
    BAD_OUT_OF_SERVICE = 0x808D0000


_BY_NAME = {q.name.lower(): q for q in Quality}


def severity(code: int) -> Severity:
    """Severity of any StatusCode: the top two bits (Part 4, 7.39.2)."""
    top = (code >> 30) & 0b11
    return Severity.GOOD if top == 0 else Severity.UNCERTAIN if top == 1 else Severity.BAD


def is_good(code: int) -> bool:
    return (code >> 30) & 0b11 == 0


def quality_name(code: int) -> str:
    """`good`, `bad_not_connected`, ...; an unknown sub-status shows as severity plus hex code."""
    try:
        return Quality(code).name.lower()
    except ValueError:
        return f"{severity(code).name.lower()}_0x{code:08x}"


def parse_quality(text: str | int) -> int:
    """Parse `good` / `uncertain` / `bad` / a named sub-status / a numeric StatusCode.

    Raises ValueError naming the accepted forms.
    """
    if isinstance(text, bool):
        raise ValueError("quality must be a name such as 'good' or a StatusCode integer")
    if isinstance(text, int):
        if not 0 <= text <= 0xFFFFFFFF:
            raise ValueError(f"quality code {text} is outside 0..0xFFFFFFFF")
        return text
    if not isinstance(text, str):  # JSON can carry any type here
        raise ValueError("quality must be a name such as 'good' or a StatusCode integer")
    key = text.strip().lower()
    if key in _BY_NAME:
        return int(_BY_NAME[key])
    try:
        return parse_quality(int(key, 0))
    except ValueError:
        pass
    raise ValueError(
        f"unknown quality {text!r}: use good, uncertain, bad, a named sub-status such as "
        "bad_not_connected, or an OPC UA StatusCode such as 0x808A0000"
    )
