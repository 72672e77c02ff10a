"""What a notification says: the mail's subject and text, the webhook's JSON body."""

from __future__ import annotations

from typing import Any

from kiln.alarms.notify.model import AlarmInfo, Send
from kiln.alarms.records import PRIORITY_RANK
from kiln.core.clock import us_to_datetime

_WHAT = {"activation": "ACTIVE", "clear": "CLEARED"}


def subject(send: Send) -> str:
    """`[HIGH] line1/mill/temp:hi ACTIVE`, prefixed for escalations and reminders;
    `[CRITICAL] 3 alarms (pipeline)` for a consolidated message (its highest priority)."""
    if len(send.alarms) > 1 or send.kind == "consolidate":
        top = max(send.alarms, key=lambda a: PRIORITY_RANK[a.priority])
        n = len(send.alarms)
        return f"[{top.priority.value.upper()}] {n} alarm{'s' if n > 1 else ''} ({send.pipeline})"
    a = send.first
    prefix = {
        "notify": "",
        "escalate": "Escalation: ",
        "remind": f"Reminder {send.reminder}: ",
    }.get(send.kind, "")
    return f"{prefix}[{a.priority.value.upper()}] {a.alarm_id} {_WHAT[a.event]}"


def _line(a: AlarmInfo) -> str:
    at = us_to_datetime(a.source_us).isoformat()
    value = "" if a.value is None else f" value={a.value}"
    text = f" - {a.message}" if a.message else ""
    return f"{at}  {a.priority.value:<8} {_WHAT[a.event]:<7} {a.alarm_id}{value}{text}"


def text(send: Send) -> str:
    """The mail's plain-text body: one line per alarm, then where it came from."""
    lines = [subject(send), ""]
    lines += [_line(a) for a in send.alarms]
    lines += ["", f"Pipeline {send.pipeline}, block {send.block}, delivery {send.id}."]
    return "\n".join(lines) + "\n"


def payload(send: Send) -> dict[str, Any]:
    """The webhook's JSON body."""
    return {
        "kind": "kiln.alarm.notification",
        "delivery": send.id,
        "pipeline": send.pipeline,
        "block": send.block,
        "type": send.kind,
        "reminder": send.reminder,
        "recipient": send.user,
        "subject": subject(send),
        "alarms": [a.to_json() for a in send.alarms],
    }
