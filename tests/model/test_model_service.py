"""The AssetModel service: cache, prefix queries, tree, auto-created and locked tags, restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, select, text

from kiln.core.clock import us_to_datetime
from kiln.core.errors import ConfigError, StartupError
from kiln.core.platform import Platform, Stage, Status
from kiln.model.definitions import AssetDef, DataType, Level
from kiln.model.info import AssetNode, EnsureResult, TagInfo
from kiln.model.schema import TagRow
from kiln.model.service import AssetModel
from kiln.testing import FakeClock

LINE = "acme/plant1/packaging/line1"
LOCK_FIX = "declare it under model.assets in the plant configuration or remove the lock"

RunModel = Callable[..., AbstractAsyncContextManager[AssetModel]]


def known_tag(model: AssetModel, path: str) -> TagInfo:
    info = model.tag(path)
    assert info is not None, f"{path} is not a tag"
    return info


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def run_model(tmp_path: Path, clock: FakeClock) -> RunModel:
    """Start an AssetModel in a platform, as the application does; stop it on exit."""

    @asynccontextmanager
    async def run(url: str, locked_prefixes: Sequence[str] = ()) -> AsyncIterator[AssetModel]:
        model = AssetModel(url, locked_prefixes=locked_prefixes)
        platform = Platform(clock=clock, data_dir=tmp_path / "data")
        platform.add(model, Stage.STORAGE)
        async with platform:
            yield model
        assert model.health().status is Status.STOPPED

    return run


async def test_serves_the_applied_model_from_memory(
    run_model: RunModel, sqlite_url: str, machine_types, line_assets
) -> None:
    async with run_model(sqlite_url) as model:
        assert model.health().status is Status.OK
        assert model.tag_count == 0

        result = await model.apply(machine_types, line_assets)

        assert result.tags_created == model.tag_count == 7
        weight = model.tag(f"{LINE}/filler/fill_weight")
        assert weight is not None
        assert (weight.unit, weight.low, weight.high) == ("g", 0.0, 1000.0)
        assert model.tag(f"{LINE}/filler/nothing") is None
        filler = model.asset_type("filler")
        assert filler is not None
        assert filler.parent == "machine"
        assert model.asset_type("robot") is None
        health = model.health()
        assert health.status is Status.OK
        assert (health.detail["types"], health.detail["assets"], health.detail["tags"]) == (2, 6, 7)


async def test_a_new_model_on_the_same_database_reloads_it(
    run_model: RunModel, db_url: str, machine_types, line_assets
) -> None:
    async with run_model(db_url) as model:
        await model.apply(machine_types, line_assets)
        await model.ensure_tags({f"{LINE}/filler/vibration": 0.4})
        tags, _ = model.tags()
        tree = model.tree()

    async with run_model(db_url) as again:
        assert again.tags() == (tags, False)
        assert again.tree() == tree
        assert again.asset_type("filler") == machine_types[1]
        vibration = again.tag(f"{LINE}/filler/vibration")
        assert vibration is not None
        assert vibration.auto_created
        # Nothing to do on a second apply of the same declarations after a restart.
        assert not (await again.apply(machine_types, line_assets)).changed


async def test_tags_by_prefix_are_segment_wise_and_sorted(
    run_model: RunModel, sqlite_url: str
) -> None:
    paths = [
        "acme/plant1/line1/b",
        "acme/plant1/line1/a/x",
        "acme/plant1/line1-old/t",  # '-', '.' sort before '/': must not leak into line1
        "acme/plant1/line1.b/t",
        "acme/plant1/line10/t",
        "acme/plant1/line1",  # a tag at the prefix itself
        "acme/plant2/t",
    ]
    async with run_model(sqlite_url) as model:
        await model.ensure_tags(dict.fromkeys(paths, 1.0))

        rows, truncated = model.tags("acme/plant1/line1")
        assert [t.path for t in rows] == [
            "acme/plant1/line1",
            "acme/plant1/line1/a/x",
            "acme/plant1/line1/b",
        ]
        assert not truncated
        assert [t.path for t in model.tags("acme/plant1/line1/")[0]] == [t.path for t in rows]
        assert [t.path for t in model.tags("acme/plant1/line1/a")[0]] == ["acme/plant1/line1/a/x"]
        assert model.tags("acme/plant3") == ([], False)
        everything, truncated = model.tags()
        assert [t.path for t in everything] == sorted(paths)
        assert not truncated


async def test_tags_are_truncated_at_the_limit(run_model: RunModel, sqlite_url: str) -> None:
    async with run_model(sqlite_url) as model:
        await model.ensure_tags(
            {f"acme/plant1/t{i:02d}": i for i in range(10)} | {"acme/plant1": 0}
        )

        rows, truncated = model.tags("acme/plant1", limit=3)
        assert [t.path for t in rows] == ["acme/plant1", "acme/plant1/t00", "acme/plant1/t01"]
        assert truncated
        assert model.tags("acme/plant1", limit=11) == (model.tags("acme/plant1")[0], False)
        assert model.tags("acme/plant1", limit=10)[1]
        assert model.tags("acme/plant1", limit=1) == ([model.tag("acme/plant1")], True)
        assert len(model.tags(limit=4)[0]) == 4
        with pytest.raises(ValueError, match="limit must be at least 1"):
            model.tags(limit=0)


async def test_tree_nests_the_hierarchy(
    run_model: RunModel, sqlite_url: str, machine_types, line_assets
) -> None:
    async with run_model(sqlite_url) as model:
        await model.apply(machine_types, line_assets)

        (root,) = model.tree()
        assert (root.path, root.level, root.name) == ("acme", Level.ENTERPRISE, "acme")
        (line,) = model.tree(LINE)
        assert line == AssetNode(
            path=LINE,
            name="line1",
            level=Level.LINE,
            type=None,
            description="line 1",
            children=[
                AssetNode(f"{LINE}/capper", "capper", Level.ASSET, "machine", ""),
                AssetNode(f"{LINE}/filler", "filler", Level.ASSET, "filler", ""),
            ],
        )
        assert root.children[0].children[0].children[0] == line
        assert model.tree("acme/plant9") == []
        line.children.clear()  # callers get their own copy
        assert len(model.tree(LINE)[0].children) == 2


async def test_ensure_tags_creates_unknown_paths_with_inferred_types(
    run_model: RunModel, sqlite_url: str, clock: FakeClock, machine_types, line_assets
) -> None:
    samples = {
        f"{LINE}/filler/jam": True,
        f"{LINE}/filler/rejects": 3,
        f"{LINE}/filler/vibration": 0.25,
        f"{LINE}/filler/recipe": "cola-05",
        f"{LINE}/filler/batch_no": np.int64(7),
        "acme/plant1/utilities/air_pressure": 6.1,
        "globex/plant9/x": 1.0,
    }
    async with run_model(sqlite_url) as model:
        await model.apply(machine_types, line_assets)
        known = f"{LINE}/filler/state"

        result = await model.ensure_tags({**samples, known: 2})

        assert sorted(result.created) == sorted(samples)
        assert result.rejected == {}
        types = {p: known_tag(model, p).data_type for p in samples}
        assert types == {
            f"{LINE}/filler/jam": DataType.BOOL,
            f"{LINE}/filler/rejects": DataType.INT,
            f"{LINE}/filler/vibration": DataType.FLOAT,
            f"{LINE}/filler/recipe": DataType.STRING,
            f"{LINE}/filler/batch_no": DataType.INT,
            "acme/plant1/utilities/air_pressure": DataType.FLOAT,
            "globex/plant9/x": DataType.FLOAT,
        }
        assert model.tag(f"{LINE}/filler/jam") == TagInfo(
            path=f"{LINE}/filler/jam",
            name="jam",
            asset_path=f"{LINE}/filler",
            data_type=DataType.BOOL,
            auto_created=True,
        )
        # Filed under the longest asset above the path, or under none at all.
        assert known_tag(model, "acme/plant1/utilities/air_pressure").asset_path == "acme/plant1"
        assert known_tag(model, "globex/plant9/x").asset_path is None
        assert known_tag(model, known).data_type is DataType.STATE
        assert model.tag_count == 7 + len(samples)

        assert await model.ensure_tags(samples) == EnsureResult()

    engine = create_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            created_at = conn.execute(
                select(TagRow.created_at).where(TagRow.path == f"{LINE}/filler/jam")
            ).scalar_one()
    finally:
        engine.dispose()
    assert created_at == us_to_datetime(clock.now_us())  # the platform's clock, not the wall's


async def test_locked_prefixes_refuse_new_tags_segment_wise(
    run_model: RunModel, sqlite_url: str, machine_types
) -> None:
    async with run_model(sqlite_url, locked_prefixes=["acme/plant1/line1/"]) as model:
        await model.apply(
            machine_types,
            [AssetDef(path="acme/plant1/line1/m1", level=Level.ASSET, type="machine")],
        )
        declared = "acme/plant1/line1/m1/state"

        result = await model.ensure_tags(
            {
                declared: 1,
                "acme/plant1/line1/m1/extra": 1.0,
                "acme/plant1/line1": 1.0,
                "acme/plant1/line10/t": 1.0,
                "acme/plant1/line1-b/t": 1.0,
            }
        )

        assert sorted(result.created) == ["acme/plant1/line1-b/t", "acme/plant1/line10/t"]
        assert sorted(result.rejected) == ["acme/plant1/line1", "acme/plant1/line1/m1/extra"]
        reason = result.rejected["acme/plant1/line1/m1/extra"]
        assert "'acme/plant1/line1' is a locked part of the namespace" in reason
        assert LOCK_FIX in reason
        assert model.tag("acme/plant1/line1/m1/extra") is None
        assert model.is_locked("acme/plant1/line1/anything")
        assert model.is_locked("acme/plant1/line1")
        assert not model.is_locked("acme/plant1/line10/t")
        assert not model.is_locked("acme/plant1")
        assert model.health().detail["locked_prefixes"] == ["acme/plant1/line1"]


async def test_ensure_tags_rejects_invalid_paths_and_assets(
    run_model: RunModel, sqlite_url: str, machine_types, line_assets
) -> None:
    async with run_model(sqlite_url) as model:
        await model.apply(machine_types, line_assets)

        result = await model.ensure_tags({"single": 1.0, "a/b c": 1.0, LINE: 1.0, "a/ok": 1.0})

        assert result.created == ["a/ok"]
        assert "has one segment" in result.rejected["single"]
        assert "invalid segment 'b c'" in result.rejected["a/b c"]
        assert "is an asset, not a tag" in result.rejected[LINE]


async def test_concurrent_first_values_create_a_tag_once(
    run_model: RunModel, sqlite_url: str
) -> None:
    async with run_model(sqlite_url) as model:
        results = await asyncio.gather(
            *(model.ensure_tags({"acme/plant1/new": float(i)}) for i in range(5))
        )

        assert [r.created for r in results].count(["acme/plant1/new"]) == 1
        assert sum(len(r.created) for r in results) == 1
        assert model.tags() == ([model.tag("acme/plant1/new")], False)


async def test_a_rejected_apply_leaves_the_model_as_it_was(
    run_model: RunModel, sqlite_url: str, machine_types, line_assets
) -> None:
    async with run_model(sqlite_url) as model:
        await model.apply(machine_types, line_assets)
        before = model.tags()

        with pytest.raises(ConfigError, match="unknown type 'robot'"):
            await model.apply([], [AssetDef(path=f"{LINE}/x", level=Level.ASSET, type="robot")])

        assert model.tags() == before
        assert model.tree(f"{LINE}/x") == []


async def test_health_is_degraded_while_tags_cannot_be_written(
    run_model: RunModel, sqlite_url: str
) -> None:
    async with run_model(sqlite_url) as model:
        engine = create_engine(sqlite_url)
        try:
            with engine.begin() as conn:
                conn.execute(text("DROP TABLE tags"))
        finally:
            engine.dispose()

        with pytest.raises(Exception, match="no such table"):
            await model.ensure_tags({"acme/plant1/t": 1.0})

        health = model.health()
        assert health.status is Status.DEGRADED
        assert "creating 1 tags failed" in health.detail["error"]
        assert model.tag("acme/plant1/t") is None


async def test_writes_need_a_started_model(sqlite_url: str) -> None:
    model = AssetModel(sqlite_url)
    assert model.health().status is Status.STARTING
    assert model.tags() == ([], False)
    assert await model.ensure_tags({}) == EnsureResult()
    with pytest.raises(RuntimeError, match="not running"):
        await model.apply([], [])
    with pytest.raises(RuntimeError, match="not running"):
        await model.ensure_tags({"acme/plant1/t": 1.0})


async def test_an_unusable_database_fails_the_start(tmp_path: Path, clock: FakeClock) -> None:
    model = AssetModel("nosuchdb://nowhere")
    platform = Platform(clock=clock, data_dir=tmp_path)
    platform.add(model, Stage.STORAGE)
    with pytest.raises(StartupError, match="'model' failed to start"):
        async with platform:
            pass
    assert model.health().status is Status.FAILED


@pytest.mark.parametrize(
    ("prefix", "message"),
    [("", "locked prefix '' is empty"), ("/", "is empty"), ("acme/pl ant", "invalid segment")],
)
def test_invalid_locked_prefixes_are_configuration_errors(prefix: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AssetModel("sqlite://", locked_prefixes=[prefix])
