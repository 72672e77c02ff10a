"""A notifier in a process of its own, for the kill -9 test: it takes one activation, waits
until the first notification is recorded as sent, says "ready" and waits to be killed.

argv: data folder, alice's webhook URL, the supervisor's webhook URL.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from notify_helpers import MILL_TEMP, entry, event_data, until

from kiln.alarms.notify.service import NotificationService
from kiln.alarms.notify.settings import NotificationSettings
from kiln.alarms.notify.store import NotificationStore
from kiln.alarms.records import TRANSITION_KIND
from kiln.core.bus import Event, InProcessBus
from kiln.core.clock import SystemClock
from kiln.core.platform import Platform, Stage


def settings(alice: str, sup: str) -> NotificationSettings:
    return NotificationSettings.model_validate(
        {
            "users": [{"name": "alice", "webhook": alice}, {"name": "sup", "webhook": sup}],
            "pipelines": [
                {
                    "name": "p",
                    "blocks": [
                        {"kind": "notify", "users": ["alice"]},
                        {"kind": "escalate", "after_s": 60, "users": ["sup"]},
                        {"kind": "remind", "every_s": 30, "count": 3},
                    ],
                }
            ],
        }
    )


async def main(data: Path, alice: str, sup: str) -> None:
    clock = SystemClock()
    parsed = settings(alice, sup)
    service = NotificationService(parsed, NotificationStore(parsed.url_in(data)))
    bus = InProcessBus(clock)
    platform = Platform(clock=clock, data_dir=data, bus=bus)
    platform.add(service, Stage.ENGINES)
    async with platform:
        e = entry(MILL_TEMP, "becomes_abnormal", at_us=clock.now_us())
        await bus.publish_event(Event(TRANSITION_KIND, MILL_TEMP, event_data(e), e.source_us))
        await until(lambda: [d.status for d in service.store.deliveries()] == ["sent"])
        print("ready", flush=True)
        await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3]))
