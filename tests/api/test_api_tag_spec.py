"""`GET /api/v1/tags` shows a tag's specification limits beside its unit and range."""

from __future__ import annotations

from pathlib import Path

from api_helpers import PUMP, make_app_client, make_settings

from kiln.model.definitions import SpecLimits, TagDef
from kiln.model.settings import ModelSettings
from kiln.testing.auth import admin_headers

FLOW = "acme/site1/utilities/water/cell1/p1/flow"


def test_tags_show_their_spec_limits(tmp_path: Path) -> None:
    base = make_settings(tmp_path / "data")
    flow = TagDef(name="flow", unit="m3/h", low=0, high=100, spec=SpecLimits(lsl=20, usl=80))
    pump = PUMP.model_copy(update={"tags": (flow, *PUMP.tags[1:])})
    model = ModelSettings(types=[pump], assets=base.model.assets)
    with make_app_client(base.model_copy(update={"model": model})) as client:
        client.headers.update(admin_headers(client, tmp_path / "data"))
        tags = client.get("/api/v1/tags", params={"prefix": "acme/site1"}).json()["tags"]
    by_path = {t["path"]: t for t in tags}
    assert by_path[FLOW]["spec"] == {"lsl": 20.0, "usl": 80.0}
    assert by_path[FLOW.replace("flow", "running")]["spec"] is None
