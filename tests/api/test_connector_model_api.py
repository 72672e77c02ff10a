"""A plant configured only with a connector: its tags are in the model and in the tree, and a
device never reached shows Bad in /values/latest instead of nothing."""

from __future__ import annotations

import time
from pathlib import Path

from api_helpers import make_app_client
from fastapi.testclient import TestClient

from kiln.app.settings import Settings
from kiln.connectors.backoff import BackoffSettings
from kiln.connectors.modbus.config import ModbusConfig
from kiln.testing.auth import admin_headers
from kiln.testing.server import free_port

PREFIX = "acme/plant1/press/line1/press7"


def modbus_only(data_dir: Path) -> Settings:
    # Nothing listens on the port: the device is never reached.
    press = ModbusConfig.model_validate({
        "name": "press7", "host": "127.0.0.1", "port": free_port(), "timeout_s": 0.2,
        "reconnect": BackoffSettings(initial_s=0.1, max_s=0.2, jitter=False),
        "devices": [{"prefix": PREFIX, "poll_groups": [{"tags": [
            {"name": "force", "address": 0, "type": "float32", "unit": "kN",
             "description": "ram force"},
            {"name": "strokes", "address": 2, "type": "uint32"},
            {"name": "door", "table": "coil", "address": 7, "type": "bool"},
        ]}]}],
    })  # fmt: skip
    return Settings(data_dir=data_dir, connectors=[press])


def latest_until_settled(client: TestClient) -> dict[str, str]:
    """Quality by path once the first attempt has failed (bounded, in real time)."""
    deadline = time.monotonic() + 10
    while True:
        r = client.get("/api/v1/values/latest", params={"prefix": PREFIX})
        assert r.status_code == 200, r.text
        found = {v["path"]: v["quality"] for v in r.json()["values"]}
        if set(found.values()) == {"bad_not_connected"} or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_connector_tags_are_in_the_model_and_read_bad_while_unreached(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with make_app_client(modbus_only(data)) as client:
        client.headers.update(admin_headers(client, data))
        tags = {t["path"]: t for t in client.get("/api/v1/tags").json()["tags"]}
        assert set(tags) == {f"{PREFIX}/force", f"{PREFIX}/strokes", f"{PREFIX}/door"}
        force = tags[f"{PREFIX}/force"]
        assert (force["data_type"], force["unit"], force["description"]) == (
            "float",
            "kN",
            "ram force",
        )
        assert tags[f"{PREFIX}/strokes"]["data_type"] == "int"
        assert tags[f"{PREFIX}/door"]["data_type"] == "bool"
        assert (force["asset_path"], force["source"]) == (PREFIX, "connector:press7")

        node = client.get("/api/v1/assets").json()["assets"][0]
        chain = [(node["path"], node["level"])]
        while node["children"]:
            (node,) = node["children"]
            chain.append((node["path"], node["level"]))
        assert chain == [
            ("acme", "enterprise"),
            ("acme/plant1", "site"),
            ("acme/plant1/press", "area"),
            ("acme/plant1/press/line1", "line"),
            (PREFIX, "cell"),
        ]

        assert latest_until_settled(client) == dict.fromkeys(tags, "bad_not_connected")
