"""Inventory locations (issue 16): tied to the ISA-95 hierarchy's asset paths, checked as a
whole, and the tree's questions (children, subtrees, ancestors, what stands under a path)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kiln.valuechain.locations import (
    Location,
    LocationError,
    LocationKind,
    LocationProblem,
    LocationTree,
    check_locations,
    location_problems,
)

K = LocationKind
SITE = "acme/plant1"
STORES = "acme/plant1/stores"
LINE1 = "acme/plant1/assembly/line1"
LINE2 = "acme/plant1/assembly/line2"
# The hierarchy's asset paths, as the asset model would give them.
KNOWN = ("acme", SITE, STORES, "acme/plant1/assembly", LINE1, LINE2, "acme/plant2")


def loc(code: str, path: str, kind: LocationKind, **more: object) -> Location:
    return Location.model_validate({"code": code, "asset_path": path, "kind": kind, **more})


LOCATIONS = (
    loc("WH1", STORES, K.WAREHOUSE, name="Main stores"),
    loc("WH1-A", STORES, K.STORAGE_ZONE, zone="A", parent="WH1"),
    loc("WH1-A-01", STORES, K.STORAGE_ZONE, zone="A", bin="01-2", parent="WH1-A"),
    loc("WH1-B", STORES, K.STORAGE_ZONE, zone="B", parent="WH1"),
    loc("QA", STORES, K.QUARANTINE, parent="WH1"),
    loc("L1-SIDE", LINE1, K.LINE_SIDE),
    loc("L2-SIDE", LINE2, K.LINE_SIDE),
    loc("DOCK-IN", SITE, K.RECEIVING),
    loc("DOCK-OUT", SITE, K.SHIPPING),
)


def codes(locations: tuple[Location, ...]) -> list[str]:
    return [x.code for x in locations]


def test_the_tree_answers_children_subtree_ancestors_and_roots() -> None:
    tree = LocationTree(LOCATIONS, KNOWN)
    assert len(tree) == 9
    assert "WH1-A" in tree
    assert "nope" not in tree
    assert codes(tree.roots()) == ["DOCK-IN", "DOCK-OUT", "L1-SIDE", "L2-SIDE", "WH1"]
    assert codes(tree.children("WH1")) == ["QA", "WH1-A", "WH1-B"]
    assert codes(tree.children("WH1-A-01")) == []
    assert codes(tree.subtree("WH1")) == ["WH1", "QA", "WH1-A", "WH1-A-01", "WH1-B"]
    assert codes(tree.subtree("L1-SIDE")) == ["L1-SIDE"]
    assert codes(tree.ancestors("WH1-A-01")) == ["WH1-A", "WH1"]
    assert codes(tree.ancestors("WH1")) == []
    with pytest.raises(KeyError, match="unknown location nope"):
        tree.children("nope")


def test_which_locations_stand_under_an_asset_path() -> None:
    tree = LocationTree(LOCATIONS)
    assert codes(tree.under(SITE)) == codes(tuple(sorted(LOCATIONS, key=lambda x: x.code)))
    assert codes(tree.under("acme/plant1/assembly")) == ["L1-SIDE", "L2-SIDE"]
    assert codes(tree.under(LINE1)) == ["L1-SIDE"]
    # Segment-wise: line1 does not contain line10.
    assert codes(LocationTree((loc("X", LINE1 + "0", K.LINE_SIDE),)).under(LINE1)) == []
    assert codes(tree.under("acme/plant2")) == []
    # The nearest asset above a machine that has locations: the line's line side.
    assert codes(tree.at_asset(LINE1 + "/press3/die")) == ["L1-SIDE"]
    assert codes(tree.at_asset("acme/plant1/assembly")) == ["DOCK-IN", "DOCK-OUT"]
    assert codes(tree.at_asset("other/plant")) == []


def test_an_unknown_asset_path_is_named_with_its_nearest_known_ancestor() -> None:
    bad = (*LOCATIONS, loc("L3-SIDE", "acme/plant1/assembly/line3", K.LINE_SIDE))
    assert location_problems(bad, KNOWN) == [
        LocationProblem(
            "L3-SIDE",
            "asset_path",
            "asset path acme/plant1/assembly/line3 is not in the asset hierarchy "
            "(its nearest known ancestor is acme/plant1/assembly)",
        )
    ]
    with pytest.raises(LocationError, match="location L3-SIDE: asset path acme/plant1/assembly/"):
        LocationTree(bad, KNOWN)
    # Without the hierarchy, the path is not checked.
    assert len(LocationTree(bad)) == 10


def test_every_problem_of_the_whole_is_named() -> None:
    bad = (
        loc("WH1", STORES, K.WAREHOUSE),
        loc("WH1", STORES, K.QUARANTINE),
        loc("Z", "acme/plant2", K.STORAGE_ZONE, parent="WH1"),
        loc("ORPHAN", STORES, K.STORAGE_ZONE, parent="GONE"),
        loc("C2", STORES, K.STORAGE_ZONE, parent="C1"),
        loc("C1", STORES, K.STORAGE_ZONE, parent="C3"),
        loc("C3", STORES, K.STORAGE_ZONE, parent="C2"),
        loc("NOWHERE", "mars", K.WAREHOUSE),
    )
    assert location_problems(bad, KNOWN) == [
        LocationProblem("WH1", "code", "WH1 is given twice"),
        LocationProblem(
            "Z",
            "asset_path",
            "asset path acme/plant2 is not at or below acme/plant1/stores, the asset path of "
            "its parent WH1",
        ),
        LocationProblem("ORPHAN", "parent", "parent GONE is no known location"),
        LocationProblem("NOWHERE", "asset_path", "asset path mars is not in the asset hierarchy"),
        LocationProblem("C1", "parent", "parents form a cycle: C1 -> C3 -> C2 -> C1"),
    ]
    with pytest.raises(LocationError) as caught:
        check_locations(bad)
    assert len(caught.value.problems) == 4  # without the hierarchy, "mars" is not checked
    assert str(caught.value).startswith("location WH1: WH1 is given twice; location Z: ")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"asset_path": "acme//line1"}, "has an invalid segment ''"),
        ({"asset_path": "-acme"}, "asset path '-acme' is no enterprise name nor path"),
        ({"asset_path": ""}, "String should have at least 1 character"),
        ({"kind": "attic"}, "Input should be 'warehouse', 'storage_zone', 'line_side'"),
        ({"bin": "07"}, "location X: a bin is given without its zone"),
        ({"zone": "A#"}, "String should match pattern"),
        ({"parent": "X"}, "location X is its own parent"),
        ({"code": "no code"}, "String should match pattern"),
    ],
)
def test_a_location_says_what_is_wrong(fields: dict[str, object], message: str) -> None:
    data: dict[str, object] = {"code": "X", "asset_path": STORES, "kind": "warehouse", **fields}
    with pytest.raises(ValidationError) as caught:
        Location.model_validate(data)
    assert message in str(caught.value)


def test_an_enterprise_alone_is_an_asset_path() -> None:
    assert loc("HQ", "acme", K.WAREHOUSE).asset_path == "acme"
    assert loc("Z", STORES, K.STORAGE_ZONE, zone="A 2/north", bin="03-2").zone == "A 2/north"
