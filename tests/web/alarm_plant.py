"""A small plant with limit alarms for the alarm console's browser tests, run as `kiln run`.

Four ovens of one asset type whose alarms are on the type (so every oven inherits them):
temperature high (80, high priority) and low (10, low priority), pressure high (8, critical).
Values arrive through the HTTP ingest API as a device would send them, which raises the alarms
through the real engine: nothing here writes alarm state directly.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from kiln.testing.auth import admin_headers, device_headers, initial_admin_password, user_headers
from kiln.testing.server import free_port, kiln_command, running_server

AREA = "acme/site/bake"
OVENS = tuple(f"{AREA}/oven{i}" for i in range(1, 5))
TEMP_HI = 80.0
TEMP_LO = 10.0
PRESS_HI = 8.0


def plant_yaml(data_dir: Path, port: int) -> str:
    """The plant file (YAML flow mappings need their braces doubled in this f-string)."""
    ovens = "".join(f"    - {{path: {oven}, level: asset, type: oven}}\n" for oven in OVENS)
    return f"""
name: Alarm console test
data_dir: {data_dir}
log_level: warning
http: {{host: 127.0.0.1, port: {port}}}
model:
  types:
    - name: oven
      tags:
        - {{name: temperature, unit: degC, low: 0, high: 200}}
        - {{name: pressure, unit: bar, low: 0, high: 10}}
      alarms:
        - kind: limit
          name: temp
          tag: temperature
          priority: medium
          hi: {{value: {TEMP_HI}, priority: high}}
          lo: {{value: {TEMP_LO}, priority: low}}
          message: "{{asset}}: temperature {{value}} °C beyond {{limit}} °C"
        - kind: limit
          name: press
          tag: pressure
          priority: critical
          hi: {{value: {PRESS_HI}}}
          message: "{{asset}}: pressure {{value}} bar over {{limit}} bar"
  assets:
    - {{path: acme, level: enterprise}}
    - {{path: acme/site, level: site}}
    - {{path: {AREA}, level: area}}
{ovens}"""


@dataclass(frozen=True)
class AlarmPlant:
    """The running server: its URL, data directory, a device that may ingest values and the
    administrator's headers (signed in once: each sign-in hashes a password, which is slow)."""

    url: str
    data_dir: Path
    device: dict[str, str]
    admin_auth: dict[str, str]

    @property
    def password(self) -> str:
        return initial_admin_password(self.data_dir)

    def admin(self) -> dict[str, str]:
        return self.admin_auth

    def add_user(self, username: str, password: str, role: str) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            user_headers(client, self.admin_auth, username, password, [role])

    def ingest(self, values: dict[str, float]) -> None:
        """Publish `values` (tag path -> value) now, as the device."""
        body = {"values": [{"path": path, "value": value} for path, value in values.items()]}
        response = httpx.post(self.url + "/api/v1/ingest", json=body, headers=self.device)
        assert response.status_code == 200, response.text

    def alarms(self, **params: Any) -> dict[str, dict[str, Any]]:
        """GET /api/v1/alarms as the administrator, by id."""
        response = httpx.get(self.url + "/api/v1/alarms", params=params, headers=self.admin())
        assert response.status_code == 200, response.text
        return {a["id"]: a for a in response.json()["alarms"]}

    def wait_alarm(self, alarm_id: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        """The alarm once it shows `fields` (e.g. active=True), or fail saying what it shows."""
        deadline = time.monotonic() + timeout
        alarm: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            alarm = self.alarms(state="all").get(alarm_id)
            if alarm is not None and all(alarm.get(k) == v for k, v in fields.items()):
                return alarm
            time.sleep(0.2)
        raise AssertionError(f"alarm {alarm_id} never showed {fields}; last seen: {alarm}")


@contextmanager
def alarm_plant(folder: Path) -> Iterator[AlarmPlant]:
    """`kiln run` of the plant above on a free port, with a device credential for the area."""
    port = free_port()
    data = folder / "data"
    config = folder / "plant.yaml"
    config.write_text(plant_yaml(data, port), encoding="utf-8")
    command = kiln_command("run", "--config", str(config))
    with running_server(command, port=port, log=folder / "server.log"):
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=10) as client:
            admin = admin_headers(client, data)
            device = device_headers(client, admin, "oven-plc", AREA)
        yield AlarmPlant(url, data, device, admin)
