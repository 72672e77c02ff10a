"""Paths in configuration are anchored at the file's folder, and `kiln config check` checks
them: the run never depends on the directory it was started from."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kiln.app.cli import main
from kiln.app.settings import load_settings
from kiln.connectors.mqtt.config import MqttConfig
from kiln.connectors.opcua.config import OpcUaConfig
from kiln.core.errors import ConfigError

PLANT = """\
data_dir: data
http:
  tls_cert: tls/cert.pem
  tls_key: tls/key.pem
historian:
  path: history/plant.duckdb
sim_serve:
  opcua_pki: sim-pki
connectors:
  - name: cnc1
    type: opcua
    endpoint: opc.tcp://127.0.0.1:4840
    certificate: pki/own/kiln.der
    private_key: pki/own/kiln.pem
    trusted_server_certificates: [pki/trusted/server.der, pki/trusted-cas]
    rejected_certificates_dir: pki/rejected
    nodes:
      - {node_id: "ns=2;s=Speed", path: acme/plant1/cnc1/speed}
  - name: telemetry
    type: mqtt
    broker:
      url: mqtts://127.0.0.1:8883
      ca_file: mqtt/ca.pem
    mappings:
      - {topic: t/+, path: "acme/plant1/{1}/temperature", value: $.temp}
"""


@pytest.fixture
def plant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The plant file in cfg/, its files beside it, and the working directory elsewhere."""
    cfg = tmp_path / "cfg"
    for folder in ("tls", "pki/trusted", "pki/trusted-cas", "mqtt"):
        (cfg / folder).mkdir(parents=True)
    for file in ("tls/cert.pem", "tls/key.pem", "pki/trusted/server.der", "mqtt/ca.pem"):
        (cfg / file).write_text("x")
    (cfg / "plant.yaml").write_text(PLANT)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return Path("..") / "cfg" / "plant.yaml"


def test_every_relative_path_is_anchored_at_the_config_file(plant: Path) -> None:
    cfg = Path.cwd().parent / "cfg"
    s = load_settings(plant)
    assert s.data_dir == cfg / "data"
    assert s.historian.path_in(s.data_dir) == cfg / "history" / "plant.duckdb"
    assert s.http.tls_cert == cfg / "tls" / "cert.pem"
    assert s.http.tls_key == cfg / "tls" / "key.pem"
    assert s.sim_serve.opcua_pki == cfg / "sim-pki"
    opcua, mqtt = s.connectors
    assert isinstance(opcua, OpcUaConfig) and isinstance(mqtt, MqttConfig)
    assert opcua.certificate == cfg / "pki" / "own" / "kiln.der"
    assert opcua.private_key == cfg / "pki" / "own" / "kiln.pem"
    assert opcua.trusted_server_certificates == [
        cfg / "pki" / "trusted" / "server.der",
        cfg / "pki" / "trusted-cas",
    ]
    assert opcua.rejected_certificates_dir == cfg / "pki" / "rejected"
    assert mqtt.broker.ca_file == cfg / "mqtt" / "ca.pem"


def test_absolute_paths_and_the_default_data_dir(plant: Path, tmp_path: Path) -> None:
    text = plant.read_text().replace("data_dir: data\n", "")
    text = text.replace("tls/cert.pem", str(tmp_path / "cfg" / "tls" / "cert.pem"))
    plant.write_text(text)
    s = load_settings(plant)
    assert s.data_dir == tmp_path / "cfg" / "kiln-data"
    assert s.http.tls_cert == tmp_path / "cfg" / "tls" / "cert.pem"


def test_a_sqlite_file_in_a_database_url_is_anchored_too(plant: Path) -> None:
    plant.write_text(
        plant.read_text()
        + "model: {url: 'sqlite:///db/model.db?timeout=5'}\n"
        + "security: {url: 'sqlite:////srv/kiln/security.db', "
        + "audit_url: 'postgresql+psycopg://kiln@db.plant.local/audit'}\n"
    )
    s = load_settings(plant)
    cfg = Path.cwd().parent / "cfg"
    assert s.model.url_in(s.data_dir) == f"sqlite:///{cfg / 'db' / 'model.db'}?timeout=5"
    assert s.security.identity_url_in(s.data_dir) == "sqlite:////srv/kiln/security.db"
    assert s.security.audit_url_in(s.data_dir) == "postgresql+psycopg://kiln@db.plant.local/audit"


def test_config_check_passes_and_creates_nothing_in_the_working_directory(
    plant: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "check", str(plant)]) == 0
    assert "OK" in capsys.readouterr().out
    assert os.listdir(".") == []


def test_config_check_reports_a_missing_trust_list_file(
    plant: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (plant.parent / "pki" / "trusted" / "server.der").unlink()
    assert main(["config", "check", str(plant)]) == 2
    err = capsys.readouterr().err
    server = Path.cwd().parent / "cfg" / "pki" / "trusted" / "server.der"
    assert (
        f"{plant}:15: connectors[0].trusted_server_certificates[0]: no such file or folder: "
        f"{server} (got 'pki/trusted/server.der'). Fix: create it, or correct the path"
    ) in err
    assert "1 problem(s)" in err
    # Loading to run does not check: a trust list may appear before the first connect.
    load_settings(plant)


def test_config_check_reports_the_wrong_kind_and_what_cannot_be_made(
    plant: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = plant.parent
    (cfg / "tls" / "cert.pem").unlink()
    (cfg / "tls" / "cert.pem").mkdir()  # a folder where a file belongs
    (cfg / "data").write_text("x")  # a file where the data folder belongs
    (cfg / "history").write_text("x")  # the database's folder cannot be made under a file
    with pytest.raises(ConfigError) as raised:
        load_settings(plant, check_paths=True)
    msg = str(raised.value)
    assert "3 problem(s)" in msg
    assert f"{plant}:1: data_dir: " in msg and "data is not a folder" in msg
    assert f"{plant}:3: http.tls_cert: " in msg and "cert.pem is not a file" in msg
    assert f"{plant}:6: historian.path: " in msg
    assert "plant.duckdb does not exist and cannot be made" in msg


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_config_check_reports_an_unreadable_file(plant: Path) -> None:
    key = plant.parent / "tls" / "key.pem"
    key.chmod(0)
    with pytest.raises(ConfigError, match=r"http\.tls_key: .*key\.pem cannot be read"):
        load_settings(plant, check_paths=True)


def test_a_typo_in_a_connector_lists_the_fields_of_its_type(tmp_path: Path) -> None:
    plant = tmp_path / "plant.yaml"
    plant.write_text(
        PLANT.replace("    rejected_certificates_dir:", "    rejected_certificate_dir:").replace(
            "{node_id:", "{nodeid:"
        )
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(plant)
    msg = str(raised.value)
    entry = next(line for line in msg.splitlines() if "rejected_certificate_dir" in line)
    assert f"{plant}:16: connectors[0].rejected_certificate_dir: unknown field" in entry
    assert "rejected_certificates_dir" in entry.split("allowed here:")[1]
    assert "trusted_server_certificates" in entry and "endpoint" in entry
    nested = next(line for line in msg.splitlines() if "nodeid" in line)
    assert "allowed here: deadband, node_id, path, sampling_interval_ms, writable." in nested


def test_config_check_refuses_half_a_certificate_pair(plant: Path) -> None:
    own = Path.cwd().parent / "cfg" / "pki" / "own"
    own.mkdir()
    (own / "kiln.der").write_text("x")  # the key beside it is gone: nothing can be generated
    with pytest.raises(ConfigError) as raised:
        load_settings(plant, check_paths=True)
    msg = str(raised.value)
    assert f"{plant}:10: connectors[0]: Value error, {own / 'kiln.der'} exists but " in msg
    assert f"{own / 'kiln.pem'} does not: give both the certificate and its key" in msg
    (own / "kiln.pem").write_text("x")
    load_settings(plant, check_paths=True)
