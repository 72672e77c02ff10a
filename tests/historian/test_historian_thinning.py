"""Compression in the writer: what is stored is what the compressor keeps, however the points
are split into commits; the newest point is always on disk; late and historical points, and
tags without a rule, are stored as they come."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from historian_helpers import SECOND, T0, StoreFactory, batch, stored
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.core.quality import Quality
from kiln.historian.maths.compression import CompressionRule, compressor, rules_resolver
from kiln.historian.store import DuckDBStore

FLOW = "acme/site1/line1/pump/flow"
LEVEL = "acme/site1/line1/tank/level"
OTHER = "acme/site2/line1/pump/flow"
RULES = [
    CompressionRule(prefix="acme/site1", method="swinging_door", deviation=1.0),
    CompressionRule(prefix=LEVEL, method="exception", deviation=0.5),
]


@pytest.fixture
def store(make_store: StoreFactory) -> Iterator[DuckDBStore]:
    s = make_store(compression=rules_resolver(RULES))
    s.open()
    yield s
    s.close()


def test_a_ramp_keeps_its_ends_and_the_newest_point_is_always_stored(store: DuckDBStore) -> None:
    for t in range(10):  # one commit per point, the way a slow device's values arrive
        stats = store.write([batch([(FLOW, float(t), T0 + t * SECOND)])])
        # The newest value is on disk after every commit, even while compression holds it.
        assert stored(store, FLOW)[-1] == (T0 + t * SECOND, float(t))
        assert stats.points == 1
    assert stored(store, FLOW) == [(T0, 0.0), (T0 + 9 * SECOND, 9.0)]
    assert store.thinning.stats()[FLOW].offered == 10


def test_a_jump_keeps_the_corner(store: DuckDBStore) -> None:
    values = [0.0, 0.5, 1.0, 1.5, 5.0, 5.2, 5.1]  # the worked example of the swinging door
    store.write([batch([(FLOW, v, T0 + t * SECOND) for t, v in enumerate(values)])])
    assert [v for _, v in stored(store, FLOW)] == [0.0, 1.5, 5.0, 5.1]


def test_exception_rule_for_one_tag_and_no_rule_elsewhere(store: DuckDBStore) -> None:
    values = [0.0, 0.2, 0.4, 1.0, 1.1]
    store.write(
        [batch([(p, v, T0 + t * SECOND) for t, v in enumerate(values)]) for p in (LEVEL, OTHER)]
    )
    assert [v for _, v in stored(store, LEVEL)] == [0.0, 0.4, 1.0, 1.1]  # 0.4: before 1.0
    assert [v for _, v in stored(store, OTHER)] == values  # no rule covers site2


def test_late_historical_and_bad_points_bypass_compression(store: DuckDBStore) -> None:
    store.write([batch([(FLOW, float(t), T0 + t * SECOND) for t in range(0, 10, 2)])])
    store.write([batch([(FLOW, 3.0, T0 + 3 * SECOND)])])  # late: a correction, stored
    store.write([batch([(FLOW, 50.0, T0 + 20 * SECOND)], historical=True)])
    store.write([batch([(FLOW, 9.0, T0 + 11 * SECOND, int(Quality.BAD))])])
    times = [(t - T0) // SECOND for t, _ in stored(store, FLOW)]
    assert times == [0, 3, 8, 11, 20]


def test_strings_are_never_compressed(store: DuckDBStore) -> None:
    path = "acme/site1/line1/pump/mode"
    store.write([batch([(path, "run", T0 + t * SECOND) for t in range(5)])])
    assert len(stored(store, path)) == 5


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-100, 100), min_size=1, max_size=60),
    st.lists(st.integers(1, 10), min_size=1, max_size=20),
    st.sampled_from(["swinging_door", "exception"]),
)
def test_any_split_into_commits_stores_what_the_compressor_keeps(
    values: list[float], cuts: list[int], method: str
) -> None:
    rule = CompressionRule(prefix="acme", method=method, deviation=2.0)  # type: ignore[arg-type]
    points = [(T0 + i * SECOND, v, int(Quality.GOOD)) for i, v in enumerate(values)]
    expected = [(t, v) for t, v, _ in compressor(rule).run(points)]
    store = DuckDBStore(None, compression=rules_resolver([rule]))
    store.open()
    try:
        i, k = 0, 0
        while i < len(points):
            n = cuts[k % len(cuts)]
            store.write([batch([(FLOW, v, t) for t, v, _ in points[i : i + n]])])
            i, k = i + n, k + 1
        assert stored(store, FLOW) == expected
    finally:
        store.close()


def test_asset_type_definitions_compress_their_tags_and_path_rules_override(
    tmp_path: object,
) -> None:
    from kiln.app.assembly import build_platform
    from kiln.app.settings import Settings
    from kiln.core.compression import CompressionSpec
    from kiln.historian.service import Historian
    from kiln.historian.settings import HistorianSettings
    from kiln.model.definitions import AssetDef, AssetTypeDef, Level, TagDef
    from kiln.model.settings import ModelSettings

    door = CompressionSpec(method="swinging_door", deviation=0.5)
    pump = AssetTypeDef(
        name="pump",
        tags=(TagDef(name="flow", compression=door), TagDef(name="speed"), TagDef(name="temp")),
    )
    settings = Settings(
        data_dir=tmp_path,  # type: ignore[arg-type]
        model=ModelSettings(
            types=[pump],
            assets=[
                AssetDef(path="acme", level=Level.ENTERPRISE),
                AssetDef(path="acme/s1/a/l1/p1", level=Level.ASSET, type="pump"),
            ],
        ),
        historian=HistorianSettings(
            compression=[
                CompressionRule(prefix="acme/s1", method="exception", deviation=2.0),
                CompressionRule(prefix="acme/s1/a/l1/p1/temp", method="none"),
            ]
        ),
    )
    resolve = build_platform(settings).service(Historian).compression
    assert resolve is not None
    assert resolve("acme/s1/a/l1/p1/flow") == door  # the type's definition
    speed = resolve("acme/s1/a/l1/p1/speed")  # no definition: the subtree rule
    assert speed is not None and speed.method == "exception"
    assert resolve("acme/s1/a/l1/p1/temp") is None  # a rule on the tag's own path wins
    assert resolve("acme/s2/x/y") is None
