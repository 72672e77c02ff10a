"""Connecting to an MQTT broker: URL, credentials, TLS. Shared by plain MQTT and Sparkplug B.

aiomqtt is imported where a client is made, so that the settings load without it (plant
configuration, codecs and tools need no MQTT library)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kiln.connectors.link import quiet_library_logger
from kiln.core.config import ConfigFile

if TYPE_CHECKING:
    import aiomqtt

_SCHEMES = {"mqtt": 1883, "tcp": 1883, "mqtts": 8883, "ssl": 8883}

# aiomqtt logs through the logger it is given: ours, lowered to debug.
_CLIENT_LOGGER = quiet_library_logger("kiln.connectors.mqtt.client")


class BrokerSettings(BaseModel):
    """Where the broker is and how to sign in to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="mqtt://host:1883, or mqtts://host:8883 for TLS")
    username: str | None = None
    password_file: ConfigFile | None = Field(
        default=None, description="a file holding the password (kept out of the plant YAML)"
    )
    ca_file: ConfigFile | None = Field(default=None, description="CA to trust for mqtts (PEM)")
    cert_file: ConfigFile | None = Field(default=None, description="client certificate (PEM)")
    key_file: ConfigFile | None = Field(default=None, description="its private key (PEM)")
    client_id: str | None = Field(default=None, max_length=128)
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    connect_timeout_s: float = Field(default=10.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in _SCHEMES or not parts.hostname:
            raise ValueError(
                f"{v!r} is not a broker URL: use mqtt://host:port or mqtts://host:port"
            )
        return v

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or _SCHEMES[parts.scheme]

    @property
    def peer(self) -> str:
        """The broker's URL without credentials: what reasons and logs name."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{urlsplit(self.url).scheme}://{host}:{self.port}"

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme in ("mqtts", "ssl")

    def tls_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context = ssl.create_default_context(
            cafile=str(self.ca_file) if self.ca_file is not None else None
        )
        if self.cert_file is not None:
            context.load_cert_chain(
                str(self.cert_file), str(self.key_file) if self.key_file else None
            )
        return context

    def password(self) -> str | None:
        if self.password_file is None:
            return None
        return self.password_file.read_text(encoding="utf-8").strip()

    def client(
        self, *, will: aiomqtt.Will | None = None, clean_session: bool = True
    ) -> aiomqtt.Client:
        """A client for this broker (not yet connected: use it as `async with`)."""
        import aiomqtt

        return aiomqtt.Client(
            self.host,
            self.port,
            username=self.username,
            password=self.password(),
            identifier=self.client_id,
            will=will,
            clean_session=clean_session,
            keepalive=self.keepalive_s,
            timeout=self.connect_timeout_s,
            tls_context=self.tls_context(),
            logger=_CLIENT_LOGGER,
        )


async def close_client(client: aiomqtt.Client) -> None:
    """Disconnect, never raising: a dead connection may fail to close cleanly; it is gone."""
    try:
        await asyncio.wait_for(client.__aexit__(None, None, None), timeout=5)
    except Exception:
        logging.getLogger(__name__).debug("MQTT client close failed", exc_info=True)
    # aiomqtt keeps the reason of an unexpected disconnection in a future that nobody reads
    # when the loss is noticed elsewhere; read it, or asyncio logs "exception never retrieved".
    gone = client._disconnected
    if gone.done() and not gone.cancelled():
        gone.exception()
