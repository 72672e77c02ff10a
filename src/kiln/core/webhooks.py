"""Signed webhooks as every Kiln subsystem sends them: the signature, the headers, what a
failed attempt means, and how long to wait before the next one.

One scheme for the whole platform, so a receiver written for alarm notifications checks the
value chain's deliveries with the same few lines. The signature lets a receiver check that a
body came from this plant and is fresh:
`X-Kiln-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the secret>`
(the scheme Stripe and others use: the timestamp inside the MAC stops replays of old bodies).
`X-Kiln-Delivery` carries the delivery's id, the same on every attempt, so a receiver can
drop the duplicates that at-least-once delivery brings.

Each `post_signed` is one attempt; retrying is the caller's business (a service schedules the
next attempt with `backoff_s` instead of sleeping in line, so one receiver that is down never
holds up another's deliveries). httpx is imported where a post is made: settings that name a
`RetryPolicy` load no HTTP client.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
from typing import TYPE_CHECKING, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kiln.core.clock import Clock

if TYPE_CHECKING:
    import httpx

SIGNATURE_HEADER = "X-Kiln-Signature"
DELIVERY_HEADER = "X-Kiln-Delivery"  # the same on every attempt: receivers may deduplicate
# 4xx statuses worth another attempt: the receiver's trouble (RFC 9110 408, RFC 8470 425,
# RFC 6585 429), not the request's.
_RETRY_4XX = frozenset({408, 425, 429})


class RetryPolicy(BaseModel):
    """Attempts after the first, and the exponential backoff between them (with jitter)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    retries: int = Field(default=5, ge=0, le=100, description="attempts after the first")
    backoff_s: float = Field(default=2.0, gt=0, description="wait before the first retry")
    backoff_cap_s: float = Field(default=600.0, gt=0, description="longest wait between tries")

    @model_validator(mode="after")
    def _cap(self) -> Self:
        if self.backoff_cap_s < self.backoff_s:
            raise ValueError(
                f"backoff_cap_s={self.backoff_cap_s:g} is below backoff_s={self.backoff_s:g}: "
                "the cap must be at least the first wait"
            )
        return self


def backoff_s(policy: RetryPolicy, attempt: int, rng: random.Random) -> float:
    """The wait after failed attempt number `attempt` (1 = the first): the base doubled each
    time, capped, then scaled by a random 50-100 % so receivers coming back are not hit by
    every sender at the same instant."""
    base = min(policy.backoff_cap_s, policy.backoff_s * 2.0 ** (attempt - 1))
    return float(base) * (0.5 + rng.random() / 2)


class SendFailed(Exception):
    """One attempt failed. `retryable` False: another attempt would fail the same way."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Kiln-Signature value for `body` sent at `timestamp` (Unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes) -> bool:
    """Whether `header` is a valid signature of `body` (for receivers and tests). The age of
    `t` is the receiver's to judge: it knows how much clock skew it accepts."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), f"t={timestamp},v1={parts.get('v1')}")


def retryable_status(code: int) -> bool:
    """Whether an HTTP status is worth another attempt: a server error, or a 4xx that says
    "later" (timeout, too early, too many requests). Any other 4xx will be refused again."""
    return code >= 500 or code in _RETRY_4XX


async def post_signed(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    *,
    delivery_id: str,
    secret: str | None,
    timeout_s: float,
    now_s: int,
) -> None:
    """POST the JSON `body` to `url` once, signed with `secret` at `now_s` (unsigned if None).
    Raises `SendFailed` on a transport error or a status outside 2xx."""
    import httpx

    headers = {"Content-Type": "application/json", DELIVERY_HEADER: delivery_id}
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, now_s, body)
    try:
        response = await client.post(url, content=body, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as err:
        raise SendFailed(f"POST {url}: {type(err).__name__}: {err}") from err
    if response.is_success:
        return
    code = response.status_code
    retryable = retryable_status(code)
    raise SendFailed(
        f"POST {url}: HTTP {code} {response.reason_phrase}"
        + ("" if retryable else " (not retried: fix the receiver or the URL, then retry it)"),
        retryable=retryable,
    )


async def wait_until(clock: Clock, wake: asyncio.Event, until_us: int | None) -> None:
    """A delivery scheduler's pause: until `until_us` on `clock` (None: no deadline) or until
    `wake` is set, whichever comes first."""
    if until_us is None:
        await wake.wait()
        return
    if until_us <= clock.now_us():
        await asyncio.sleep(0)
        return
    woken = asyncio.ensure_future(wake.wait())
    timer = asyncio.ensure_future(_sleep_until(clock, until_us))
    try:
        await asyncio.wait({woken, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        woken.cancel()
        timer.cancel()


async def _sleep_until(clock: Clock, until_us: int) -> None:
    # The remaining time is read when the sleep starts, not when it was decided on: the clock
    # may have moved in between (a test's fake clock, a slow event loop).
    await clock.sleep(max(until_us - clock.now_us(), 0) / 1_000_000)
