"""Tags described by the connectors that serve them: placed in the tree, declared ones win."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from kiln.core.platform import Platform, Stage
from kiln.model.definitions import AssetDef, AssetTypeDef, DataType, Level
from kiln.model.info import AssetNode, DescribedTag
from kiln.model.service import AssetModel
from kiln.testing import FakeClock

LINE = "acme/plant1/packaging/line1"
SRC = "connector:fillers"


@asynccontextmanager
async def running(url: str, tmp_path: Path) -> AsyncIterator[AssetModel]:
    model = AssetModel(url)
    platform = Platform(clock=FakeClock(), data_dir=tmp_path / "data")
    platform.add(model, Stage.STORAGE)
    async with platform:
        yield model


def levels(nodes: list[AssetNode]) -> dict[str, Level]:
    out: dict[str, Level] = {}
    for node in nodes:
        out[node.path] = node.level
        out.update(levels(node.children))
    return out


async def test_a_described_tag_creates_its_levels_and_keeps_unit_and_description(
    db_url: str, tmp_path: Path
) -> None:
    async with running(db_url, tmp_path) as model:
        result = await model.describe_tags(
            SRC,
            [
                DescribedTag(f"{LINE}/filler1/weight", DataType.FLOAT, "g", "fill weight"),
                DescribedTag(f"{LINE}/filler1/count", DataType.INT),
            ],
        )
        assert result.created == [f"{LINE}/filler1/weight", f"{LINE}/filler1/count"]
        tag = model.tag(f"{LINE}/filler1/weight")
        assert tag is not None
        assert (tag.data_type, tag.unit, tag.description, tag.source) == (
            DataType.FLOAT,
            "g",
            "fill weight",
            SRC,
        )
        assert tag.asset_path == f"{LINE}/filler1"
        assert levels(model.tree()) == {
            "acme": Level.ENTERPRISE,
            "acme/plant1": Level.SITE,
            "acme/plant1/packaging": Level.AREA,
            LINE: Level.LINE,
            f"{LINE}/filler1": Level.CELL,
        }
        assert [t.path for t in model.tags_of(SRC)] == [
            f"{LINE}/filler1/count",
            f"{LINE}/filler1/weight",
        ]

    # From the database, after a restart: the source and the tree are still there.
    async with running(db_url, tmp_path) as model:
        assert [t.path for t in model.tags_of(SRC)] == [
            f"{LINE}/filler1/count",
            f"{LINE}/filler1/weight",
        ]
        assert model.tree(LINE)[0].children[0].path == f"{LINE}/filler1"
        again = await model.describe_tags(
            SRC, [DescribedTag(f"{LINE}/filler1/weight", DataType.FLOAT, "g", "fill weight")]
        )
        assert (again.created, again.updated, again.assets_created) == ([], [], [])


async def test_missing_levels_sit_below_a_declared_parent(db_url: str, tmp_path: Path) -> None:
    async with running(db_url, tmp_path) as model:
        # A line declared one level higher than its depth gives: new levels go below it.
        await model.apply([], [AssetDef(path="acme/plant1/line9", level=Level.LINE)])
        await model.describe_tags(
            SRC, [DescribedTag("acme/plant1/line9/cell/filler/t", DataType.FLOAT)]
        )
        found = levels(model.tree())
        assert found["acme/plant1/line9"] is Level.LINE
        assert found["acme/plant1/line9/cell"] is Level.CELL
        assert found["acme/plant1/line9/cell/filler"] is Level.ASSET


async def test_declared_tags_win_and_only_learn_their_source(
    db_url: str, tmp_path: Path, machine_types: list[AssetTypeDef], line_assets: list[AssetDef]
) -> None:
    async with running(db_url, tmp_path) as model:
        await model.apply(machine_types, line_assets)
        path = f"{LINE}/filler/temperature"
        result = await model.describe_tags(
            SRC, [DescribedTag(path, DataType.INT, "K", "from the PLC")]
        )
        assert result.updated == [path]
        tag = model.tag(path)
        assert tag is not None
        assert (tag.data_type, tag.unit, tag.description, tag.source) == (
            DataType.FLOAT,
            "degC",
            "product",
            SRC,
        )
        # A later apply keeps the declared definition, and does not drop the described tag.
        await model.describe_tags(SRC, [DescribedTag(f"{LINE}/filler/extra", DataType.BOOL)])
        await model.apply(machine_types, line_assets)
        extra = model.tag(f"{LINE}/filler/extra")
        assert extra is not None and extra.source == SRC


async def test_a_description_updates_an_earlier_one_but_an_inference_does_not(
    db_url: str, tmp_path: Path
) -> None:
    path = "acme/plant1/edge/node1/speed"
    async with running(db_url, tmp_path) as model:
        await model.ensure_tags({path: 3})  # ingest made it first, an int
        await model.describe_tags(SRC, [DescribedTag(path, DataType.FLOAT, "rpm")])
        tag = model.tag(path)
        assert tag is not None
        assert (tag.data_type, tag.unit, tag.source) == (DataType.FLOAT, "rpm", SRC)
        await model.describe_tags(SRC, [DescribedTag(path, DataType.INT, inferred=True)])
        tag = model.tag(path)
        assert tag is not None and (tag.data_type, tag.unit) == (DataType.FLOAT, "rpm")
    async with running(db_url, tmp_path) as model:
        tag = model.tag(path)
        assert tag is not None
        assert (tag.data_type, tag.unit, tag.source) == (DataType.FLOAT, "rpm", SRC)


async def test_paths_that_cannot_be_placed_are_refused_with_the_reason(
    db_url: str, tmp_path: Path
) -> None:
    async with running(db_url, tmp_path) as model:
        await model.describe_tags(SRC, [DescribedTag("acme/p1/a/t", DataType.FLOAT)])
        result = await model.describe_tags(
            SRC,
            [
                DescribedTag("acme/p1/a", DataType.FLOAT),  # an asset
                DescribedTag("acme/p1/a/t/below", DataType.FLOAT),  # below a tag
                DescribedTag("acme/p1/a/bad path", DataType.FLOAT),
                DescribedTag("acme/p1/a/ok", DataType.FLOAT),
            ],
        )
        assert result.created == ["acme/p1/a/ok"]
        assert "is an asset" in result.rejected["acme/p1/a"]
        assert "below the tag 'acme/p1/a/t'" in result.rejected["acme/p1/a/t/below"]
        assert "invalid segment" in result.rejected["acme/p1/a/bad path"]
