"""Configuration errors name the file, the line, the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.app.settings import Settings, load_settings
from kiln.core.errors import ConfigError

GOOD = """\
name: Test plant
data_dir: data
http:
  port: 8123
historian:
  max_batch_points: 5000
model:
  types:
    - name: pump
      tags:
        - {name: flow, unit: m3/h, low: 0, high: 100}
  assets:
    - {path: acme, level: enterprise}
    - {path: acme/site1/area1/line1/cell1/p1, level: asset, type: pump}
namespace:
  locked: [acme/site1]
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "plant.yaml"
    p.write_text(text)
    return p


def test_valid_config_loads_and_anchors_paths(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, GOOD))
    assert s.http.port == 8123
    assert s.data_dir == tmp_path / "data"
    assert s.historian.path_in(s.data_dir) == tmp_path / "data" / "history.duckdb"
    assert s.model.types[0].tags[0].unit == "m3/h"
    assert s.namespace.locked == ["acme/site1"]


def test_wrong_type_names_line_field_and_fix(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("max_batch_points: 5000", "max_batch_points: lots"))
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    msg = str(err.value)
    assert f"{path}:6: historian.max_batch_points" in msg
    assert "'lots'" in msg
    assert "Fix: give a whole number" in msg


def test_misspelt_field_lists_the_allowed_ones(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("  port: 8123", "  prot: 8123"))
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    msg = str(err.value)
    assert f"{path}:4: http.prot: unknown field" in msg
    assert "allowed here: allowed_origins, host, max_body_bytes, port" in msg


def test_nested_list_error_points_into_the_list(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("low: 0, high: 100", "low: 100, high: 0"))
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    msg = str(err.value)
    assert f"{path}:11: model.types[0].tags[0]" in msg
    assert "low=100.0 must be below high=0.0" in msg


def test_missing_required_field(tmp_path: Path) -> None:
    path = write(
        tmp_path, GOOD.replace("    - {path: acme, level: enterprise}\n", "    - {path: acme}\n")
    )
    with pytest.raises(ConfigError, match=r"model\.assets\[0\]\.level: required field is missing"):
        load_settings(path)


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    text = GOOD.replace("port: 8123", "port: 99999").replace("name: Test plant", "nmae: x")
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, text))
    assert "2 problem(s)" in str(err.value)
    assert "http.port" in str(err.value)
    assert "nmae" in str(err.value)


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"plant.yaml:2: not valid YAML"):
        load_settings(write(tmp_path, "a: 1\n  b: [\n"))
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_settings(tmp_path / "missing.yaml")


def test_yaml_cannot_construct_python_objects(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(write(tmp_path, "name: !!python/object/apply:os.system ['true']\n"))


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, ""))
    assert s == Settings(data_dir=tmp_path / "kiln-data")
