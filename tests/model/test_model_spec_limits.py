"""Specification limits on tag definitions: validated, stored per tag, kept through applies."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kiln.model.definitions import AssetDef, AssetTypeDef, Level, SpecLimits, TagDef
from kiln.model.store import ModelStore

BORE = "acme/plant1/machining/line1/mill/bore_mm"


def _types(spec: SpecLimits | None) -> list[AssetTypeDef]:
    return [
        AssetTypeDef(
            name="mill",
            tags=(
                TagDef(name="bore_mm", unit="mm", low=0, high=50, spec=spec),
                TagDef(name="speed", unit="rpm"),
            ),
        )
    ]


ASSETS = [AssetDef(path="acme/plant1/machining/line1/mill", level=Level.ASSET, type="mill")]


@pytest.mark.parametrize(
    "fields",
    [
        {"lsl": 24.9, "usl": 25.1, "target": 25.0},
        {"lsl": 24.9, "usl": 25.1},
        {"usl": 0.05},  # one-sided: flatness, runout
        {"lsl": 10.0, "target": 10.0},
    ],
)
def test_valid_specification_limits(fields: dict[str, float]) -> None:
    spec = SpecLimits.model_validate(fields)
    assert spec.model_dump(exclude_none=True) == fields


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "need lsl, usl or both"),
        ({"target": 1.0}, "need lsl, usl or both"),
        ({"lsl": 2.0, "usl": 2.0}, "must be below usl"),
        ({"lsl": 3.0, "usl": 2.0}, "must be below usl"),
        ({"lsl": 1.0, "usl": 2.0, "target": 2.5}, "above usl"),
        ({"lsl": 1.0, "target": 0.5}, "below lsl"),
        ({"lsl": 1.0, "nominal": 1.5}, "Extra inputs"),
    ],
)
def test_invalid_specification_limits_are_refused(fields: dict[str, float], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SpecLimits.model_validate(fields)


def test_a_tag_definition_carries_its_spec_as_written() -> None:
    tag = TagDef.model_validate({"name": "bore_mm", "spec": {"lsl": 24.9, "usl": 25.1}})
    assert tag.spec == SpecLimits(lsl=24.9, usl=25.1)
    assert TagDef(name="x").spec is None
    with pytest.raises(ValidationError, match="must be below usl"):
        TagDef.model_validate({"name": "bore_mm", "spec": {"lsl": 25.1, "usl": 24.9}})


def test_the_store_keeps_each_tags_spec(store: ModelStore) -> None:
    spec = SpecLimits(lsl=24.9, usl=25.1, target=25.0)
    store.apply(_types(spec), ASSETS)
    snapshot = store.load()
    tags = {t.path: t for t in snapshot.tags}
    assert tags[BORE].spec == spec
    assert tags[BORE.replace("bore_mm", "speed")].spec is None
    assert snapshot.types[0].tags[0].spec == spec  # the type's own definition too


def test_applying_the_same_spec_again_changes_nothing(store: ModelStore) -> None:
    store.apply(_types(SpecLimits(usl=0.05)), ASSETS)
    again = store.apply(_types(SpecLimits(usl=0.05)), ASSETS)
    assert (again.tags_created, again.tags_updated, again.types_updated) == (0, 0, 0)


def test_changing_or_removing_the_spec_updates_the_tag(store: ModelStore) -> None:
    store.apply(_types(SpecLimits(lsl=24.9, usl=25.1)), ASSETS)
    changed = store.apply(_types(SpecLimits(lsl=24.95, usl=25.05)), ASSETS)
    assert changed.tags_updated == 1
    assert {t.path: t for t in store.load().tags}[BORE].spec == SpecLimits(lsl=24.95, usl=25.05)
    removed = store.apply(_types(None), ASSETS)
    assert removed.tags_updated == 1
    assert {t.path: t for t in store.load().tags}[BORE].spec is None
