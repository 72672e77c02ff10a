"""The plant YAML of an OPC UA client connector.

    - name: press-line1
      type: opcua
      endpoint: opc.tcp://plc1.plant.local:4840
      security_policy: Basic256Sha256        # or Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss
      security_mode: SignAndEncrypt           # or Sign
      certificate: /etc/kiln/opcua/kiln.der   # Kiln's application instance certificate ...
      private_key: /etc/kiln/opcua/kiln.pem   # ... generated here on first connect if absent
      trusted_server_certificates: [/etc/kiln/opcua/trusted/]
      rejected_certificates_dir: /etc/kiln/opcua/rejected/
      identity: username                      # anonymous (default), username or certificate
      username: kiln
      password_file: /run/secrets/plc1-opcua
      publishing_interval_ms: 500
      sampling_interval_ms: 250
      deadband: {type: absolute, value: 0.1}
      nodes:
        - {node_id: "ns=2;s=Line1.Temp", path: acme/plant1/line1/oven/temp}
        - {node_id: "ns=2;s=Line1.Setpoint", path: acme/plant1/line1/oven/setpoint,
           writable: true, deadband: {type: none}}

Security is on by default: Basic256Sha256 with SignAndEncrypt. Policy None (no signature, no
encryption, no server authentication) is refused unless `allow_insecure: true` says so in the
file. The deprecated SHA-1 policies (Basic128Rsa15, Basic256) are not offered at all.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from kiln.connectors.base import ConnectorConfig
from kiln.connectors.opcua.codec import parse_node_id
from kiln.core.config import ConfigFile, FileOrDir, MadeDir, MadeFile, paths_checked
from kiln.core.values import validate_path

DEFAULT_PORT = 4840  # IANA-registered port of OPC UA TCP (Part 6, 7.2)


class SecurityPolicy(StrEnum):
    BASIC256SHA256 = "Basic256Sha256"
    AES128_SHA256_RSAOAEP = "Aes128_Sha256_RsaOaep"
    AES256_SHA256_RSAPSS = "Aes256_Sha256_RsaPss"
    NONE = "None"


class SecurityMode(StrEnum):
    SIGN = "Sign"
    SIGN_AND_ENCRYPT = "SignAndEncrypt"


class Identity(StrEnum):
    ANONYMOUS = "anonymous"
    USERNAME = "username"
    CERTIFICATE = "certificate"  # the application certificate doubles as the user's X.509 token


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Deadband(_Strict):
    """Report a numeric value only when it moved more than this (Part 4, 7.22.2). The server
    applies it, so suppressed changes never cross the network."""

    type: Literal["absolute", "percent", "none"] = "absolute"
    value: float = Field(
        default=0.0,
        ge=0,
        description="engineering units (absolute), or percent of the node's EURange (percent)",
    )

    @model_validator(mode="after")
    def _in_range(self) -> Deadband:
        if self.type == "percent" and self.value > 100:
            raise ValueError(f"value: a percent deadband is 0..100, not {self.value}")
        return self


class NodeMapping(_Strict):
    """One server node and the namespace path its values go to."""

    node_id: str = Field(description='e.g. "ns=2;s=Line1.Temp" or "ns=3;i=1001"')
    path: str = Field(description="namespace path, e.g. acme/plant1/line1/oven/temp")
    sampling_interval_ms: int | None = Field(
        default=None, ge=0, le=3_600_000, description="overrides the connector's default"
    )
    deadband: Deadband | None = Field(
        default=None, description="overrides the connector's default; {type: none} turns it off"
    )
    writable: bool = Field(default=False, description="allow write-back to this node")

    @field_validator("node_id")
    @classmethod
    def _node_id(cls, v: str) -> str:
        return parse_node_id(v).text

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        return validate_path(v)


class OpcUaConnection(_Strict):
    """Where the server is and how to talk to it securely; shared by the connector and browse.

    Field order matters: each field's checks may look at the fields above it.
    """

    endpoint: str = Field(description="opc.tcp://host:port[/path]")
    allow_insecure: bool = Field(
        default=False, description="allow security_policy None (no signing, no encryption)"
    )
    security_policy: SecurityPolicy = SecurityPolicy.BASIC256SHA256
    security_mode: SecurityMode = SecurityMode.SIGN_AND_ENCRYPT
    certificate: MadeFile | None = Field(
        default=None,
        validate_default=True,
        description="Kiln's application instance certificate (DER or PEM); with private_key "
        "a new self-signed one is generated at these paths when neither file exists",
    )
    private_key: MadeFile | None = Field(
        default=None, validate_default=True, description="its RSA private key (PEM or DER)"
    )
    application_uri: str | None = Field(
        default=None,
        description="defaults to the URI in the certificate (or, for a generated one, "
        "urn:<host>:kiln:opcua-client)",
    )
    trusted_server_certificates: list[FileOrDir] = Field(
        default_factory=list,
        description="server certificates (or their CAs) to trust: files, or directories of "
        ".der/.pem/.crt files; any other server is refused",
    )
    rejected_certificates_dir: MadeDir | None = Field(
        default=None,
        description="where a refused server certificate is saved, to be moved to a trusted "
        "location once its fingerprint is checked",
    )
    identity: Identity = Identity.ANONYMOUS
    username: str | None = Field(default=None, validate_default=True, max_length=256)
    password_file: ConfigFile | None = Field(
        default=None,
        validate_default=True,
        description="a file holding the password (kept out of the plant YAML), read at "
        "each connect",
    )
    request_timeout_s: float = Field(default=10.0, gt=0, le=300)
    session_timeout_s: float = Field(
        default=60.0,
        ge=10,
        le=3600,
        description="how long the server keeps a session of a client that went silent; "
        "short, so sessions of lost connections do not fill a PLC's few session slots",
    )
    watchdog_s: float = Field(
        default=5.0,
        ge=0.5,
        le=600,
        description="how often the connection is probed (a read of ServerStatus.State); no "
        "answer within this time counts as a lost connection",
    )

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme != "opc.tcp" or not parts.hostname:
            raise ValueError(f"{v!r} is not an OPC UA endpoint: use opc.tcp://host:port")
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                "put no credentials in the endpoint: use identity: username, username and "
                "password_file"
            )
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"{v!r} has an invalid port") from None
        if port is None:  # the registered port, written out: asyncua needs it explicit
            host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
            v = parts._replace(netloc=f"{host}:{DEFAULT_PORT}").geturl()
        return v

    @field_validator("security_policy", mode="before")
    @classmethod
    def _known_policy(cls, v: object) -> object:
        if v in ("Basic128Rsa15", "Basic256"):
            raise ValueError(
                f"{v} relies on SHA-1 and is deprecated since OPC UA 1.04: use Basic256Sha256, "
                "Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss"
            )
        return v

    @field_validator("security_policy")
    @classmethod
    def _insecure(cls, v: SecurityPolicy, info: ValidationInfo) -> SecurityPolicy:
        if v is SecurityPolicy.NONE and not info.data.get("allow_insecure", False):
            raise ValueError(
                "None sends values, writes and passwords in clear text and does not "
                "authenticate the server; use Basic256Sha256 (the default) or set "
                "allow_insecure: true if this network really allows it"
            )
        return v

    @field_validator("certificate", "private_key")
    @classmethod
    def _needed_for_security(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        policy = info.data.get("security_policy")
        if v is None and policy is not None and policy is not SecurityPolicy.NONE:
            raise ValueError(
                f"required for security_policy {policy}: give a path (Kiln generates a "
                "self-signed certificate and key there on first connect if neither file exists)"
            )
        return v

    @field_validator("username")
    @classmethod
    def _username(cls, v: str | None, info: ValidationInfo) -> str | None:
        identity = info.data.get("identity")
        if identity is Identity.USERNAME and not v:
            raise ValueError("required for identity: username")
        if identity is not None and identity is not Identity.USERNAME and v is not None:
            raise ValueError(f"only used with identity: username (identity is {identity})")
        return v

    @field_validator("password_file")
    @classmethod
    def _password_file(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        identity = info.data.get("identity")
        if identity is Identity.USERNAME and v is None:
            raise ValueError("required for identity: username (a file holding the password)")
        if identity is not None and identity is not Identity.USERNAME and v is not None:
            raise ValueError(f"only used with identity: username (identity is {identity})")
        return v

    @model_validator(mode="after")
    def _certificate_identity(self) -> OpcUaConnection:
        if self.identity is Identity.CERTIFICATE and self.certificate is None:
            raise ValueError("certificate: required for identity: certificate (with private_key)")
        return self

    @model_validator(mode="after")
    def _certificate_pair(self, info: ValidationInfo) -> OpcUaConnection:
        # What `kiln config check` adds: a pair is generated only when neither file exists.
        if not paths_checked(info) or self.certificate is None or self.private_key is None:
            return self
        have = self.certificate.exists(), self.private_key.exists()
        if have[0] != have[1]:
            present, missing = (
                (self.certificate, self.private_key)
                if have[0]
                else (self.private_key, self.certificate)
            )
            raise ValueError(
                f"{present} exists but {missing} does not: give both the certificate and its "
                "key, or remove the one there to have a new pair generated"
            )
        return self

    @property
    def secure(self) -> bool:
        return self.security_policy is not SecurityPolicy.NONE


class OpcUaConfig(ConnectorConfig, OpcUaConnection):
    """An OPC UA client connector: one server, one subscription, the mapped nodes."""

    type: str = "opcua"
    publishing_interval_ms: int = Field(
        default=500,
        ge=10,
        le=3_600_000,
        description="how often the server sends what changed (one batch per publish)",
    )
    sampling_interval_ms: int = Field(
        default=250,
        ge=0,
        le=3_600_000,
        description="how often the server samples each node (0: as fast as it can)",
    )
    deadband: Deadband | None = Field(
        default=None, description="default for numeric nodes; others are never filtered"
    )
    max_items_per_call: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="nodes per Read or CreateMonitoredItems call (the server's own "
        "OperationLimits lower it)",
    )
    nodes: list[NodeMapping] = Field(min_length=1, description="the nodes and their paths")

    @property
    def peer(self) -> str:
        return self.endpoint  # never holds credentials (checked above)

    @field_validator("nodes")
    @classmethod
    def _unique_paths(cls, v: list[NodeMapping]) -> list[NodeMapping]:
        seen: set[str] = set()
        for n in v:
            if n.path in seen:
                raise ValueError(f"path {n.path} is mapped twice; each path takes one node")
            seen.add(n.path)
        return v
