"""The plant file's `notifications:` section: where deliveries are recorded, how mail and
webhooks go out, who is told, and the pipelines that decide when.

Pipelines are data: an ordered list of blocks per pipeline (notify, delay, escalate, remind,
consolidate, switch) that `kiln.alarms.notify.pipeline` runs. Everything that can be checked
without running is checked here, so a typo in a user name or an expression fails at load with
the field named, not at three in the morning when the first alarm arrives.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kiln.alarms.definitions import Expression, Priority
from kiln.core.config import DatabaseUrl
from kiln.core.settings import Section
from kiln.core.values import MAX_PATH_LENGTH
from kiln.core.webhooks import RetryPolicy
from kiln.db.urls import require_postgres_driver, sqlite_url

ChannelKind = Literal["email", "webhook"]
CHANNELS: tuple[ChannelKind, ...] = ("email", "webhook")
_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SmtpSettings(RetryPolicy):
    host: str = Field(min_length=1, description="the mail server")
    port: int = Field(default=587, ge=1, le=65535)
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    starttls: bool = Field(default=True, description="upgrade the connection with STARTTLS")
    tls: bool = Field(default=False, description="TLS from the first byte (port 465)")
    sender: str = Field(min_length=3, description="the From address")
    timeout_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _tls(self) -> Self:
        if self.tls and self.starttls:
            raise ValueError("set either tls (implicit TLS, port 465) or starttls, not both")
        return self


class WebhookSettings(RetryPolicy):
    secret: str | None = Field(
        default=None,
        repr=False,
        description="HMAC-SHA256 key signing every body (X-Kiln-Signature); unsigned if unset",
    )
    timeout_s: float = Field(default=10.0, gt=0)


class UserSettings(_Strict):
    """Someone (or some team endpoint) who can be notified, and how they want to be."""

    name: str = Field(pattern=_NAME)
    email: str | None = None
    webhook: str | None = Field(default=None, description="http(s) URL receiving JSON POSTs")
    min_priority: Priority = Field(
        default=Priority.LOW, description="alarms below this priority are not sent to this user"
    )
    channels: tuple[ChannelKind, ...] = Field(
        default=(), description="channels this user wants (default: every one with an address)"
    )

    @field_validator("webhook")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook {url!r} is not an http:// or https:// URL")
        return url

    @model_validator(mode="after")
    def _addresses(self) -> Self:
        for channel in self.channels:
            if self.address(channel) is None:
                raise ValueError(
                    f"user {self.name!r} wants {channel} but has no "
                    f"{'email address' if channel == 'email' else 'webhook URL'}: add one"
                )
        if not self.wanted:
            raise ValueError(f"user {self.name!r} has neither an email nor a webhook: add one")
        return self

    def address(self, channel: ChannelKind) -> str | None:
        return self.email if channel == "email" else self.webhook

    @property
    def wanted(self) -> tuple[ChannelKind, ...]:
        """The channels to use: those asked for, else every one with an address."""
        if self.channels:
            return self.channels
        return tuple(c for c in CHANNELS if self.address(c) is not None)


class _Recipients(_Strict):
    users: tuple[str, ...] = Field(default=(), description="user names")
    channels: tuple[ChannelKind, ...] = Field(
        default=(), description="only these of each user's channels (default: all they want)"
    )


class NotifyBlock(_Recipients):
    kind: Literal["notify"] = "notify"

    @model_validator(mode="after")
    def _someone(self) -> Self:
        if not self.users:
            raise ValueError("a notify block needs users")
        return self


class DelayBlock(_Strict):
    kind: Literal["delay"] = "delay"
    seconds: float = Field(gt=0)


class EscalateBlock(_Recipients):
    """Notify `users` if the alarm is still unacknowledged `after_s` after reaching here."""

    kind: Literal["escalate"] = "escalate"
    after_s: float = Field(gt=0)

    @model_validator(mode="after")
    def _someone(self) -> Self:
        if not self.users:
            raise ValueError("an escalate block needs users")
        return self


class RemindBlock(_Recipients):
    """Every `every_s` until acknowledged (or cleared), at most `count` times; tells `users`,
    or, if none are named, everyone the run has notified so far."""

    kind: Literal["remind"] = "remind"
    every_s: float = Field(gt=0)
    count: int = Field(default=3, ge=1, le=1000)


class ConsolidateBlock(_Recipients):
    """Collect alarms for `window_s`, then send one message listing them all, and no more
    often than once per `min_interval_s`."""

    kind: Literal["consolidate"] = "consolidate"
    window_s: float = Field(gt=0)
    min_interval_s: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _someone(self) -> Self:
        if not self.users:
            raise ValueError("a consolidate block needs users")
        return self


class SwitchBlock(_Strict):
    """Run `then` when `expression` holds for the alarm, else `else_`. Names: priority, asset,
    name, condition, value, event ("activation" or "clear")."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    kind: Literal["switch"] = "switch"
    expression: Expression
    then: tuple[Block, ...] = ()
    else_: tuple[Block, ...] = Field(default=(), alias="else")


Block = Annotated[
    NotifyBlock | DelayBlock | EscalateBlock | RemindBlock | ConsolidateBlock | SwitchBlock,
    Field(discriminator="kind"),
]
SwitchBlock.model_rebuild()


class PipelineSettings(_Strict):
    name: str = Field(pattern=_NAME)
    priorities: tuple[Priority, ...] = Field(default=(), description="empty: every priority")
    subtree: str | None = Field(default=None, description="asset path prefix, segment-wise")
    on: Literal["activation", "clear", "both"] = "activation"
    blocks: tuple[Block, ...] = Field(min_length=1)

    @field_validator("subtree")
    @classmethod
    def _path(cls, path: str | None) -> str | None:
        # An asset path, not a tag path: one segment (an enterprise, `acme`) is a subtree too,
        # so only the segments are checked, not the tag rule's "two segments at least".
        if path is None:
            return None
        if len(path) > MAX_PATH_LENGTH:
            raise ValueError(
                f"subtree is {len(path)} characters long; the limit is {MAX_PATH_LENGTH}"
            )
        for segment in path.split("/"):
            if not re.fullmatch(_NAME, segment):
                raise ValueError(
                    f"subtree {path!r} has an invalid segment {segment!r}: segments are 1-64 "
                    "characters of letters, digits, '_', '-' and '.', not starting with '-' or "
                    "'.' (e.g. acme or acme/plant1/line1)"
                )
        return path


class NotificationSettings(Section):
    url: DatabaseUrl | None = Field(
        default=None, description="SQLAlchemy URL of the delivery record; default SQLite"
    )
    smtp: SmtpSettings | None = None
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    users: list[UserSettings] = Field(default_factory=list)
    pipelines: list[PipelineSettings] = Field(default_factory=list)
    max_concurrent: int = Field(default=16, ge=1, le=1000, description="sends in flight at once")

    def url_in(self, data_dir: Path) -> str:
        """The delivery record's database: `url`, or notifications.db in the data folder."""
        return self.url or sqlite_url(data_dir / "notifications.db")

    @field_validator("url")
    @classmethod
    def _driver(cls, url: str | None) -> str | None:
        require_postgres_driver(url)
        return url

    @model_validator(mode="after")
    def _references(self) -> Self:
        users = {u.name: u for u in self.users}
        if len(users) != len(self.users):
            raise ValueError("users: two users have the same name")
        names = [p.name for p in self.pipelines]
        if len(set(names)) != len(names):
            raise ValueError("pipelines: two pipelines have the same name")
        for pipeline in self.pipelines:
            self._check_blocks(pipeline.name, pipeline.blocks, users)
        return self

    def _check_blocks(
        self, pipeline: str, blocks: tuple[Block, ...], users: dict[str, UserSettings]
    ) -> None:
        for i, block in enumerate(blocks):
            where = f"pipelines[{pipeline}].blocks[{i}] ({block.kind})"
            if isinstance(block, SwitchBlock):
                self._check_blocks(pipeline, block.then, users)
                self._check_blocks(pipeline, block.else_, users)
                continue
            if not isinstance(block, _Recipients):
                continue
            for name in block.users:
                user = users.get(name)
                if user is None:
                    known = ", ".join(sorted(users)) or "none"
                    raise ValueError(f"{where}: unknown user {name!r} (users: {known})")
                if self.smtp is None and "email" in channels_for(user, block.channels):
                    raise ValueError(
                        f"{where}: notifies {name!r} by email, but notifications.smtp is not "
                        "set: configure the mail server or limit the block to channels: [webhook]"
                    )

    def user(self, name: str) -> UserSettings:
        for u in self.users:
            if u.name == name:
                return u
        raise LookupError(f"no notification user {name!r}")


def channels_for(user: UserSettings, only: tuple[ChannelKind, ...]) -> tuple[ChannelKind, ...]:
    """The channels a block reaches `user` on: those the user wants, within `only` if given."""
    return tuple(c for c in user.wanted if not only or c in only)
