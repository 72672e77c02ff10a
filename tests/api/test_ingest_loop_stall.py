"""No ingest request stalls the event loop: `/api/v1/health` keeps answering within 100 ms while
the largest allowed and the worst rejected JSON and line-protocol requests are processed
(finding 1 of issue 12: an 89 KiB gzip body once left health unanswered for two minutes).

A real server runs as a subprocess, so the probe measures what a client sees; another thread
probes health in a loop while each request is sent."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import httpx
import pytest
from stall_probe import probed, stall_server

# Latency is measured: `make test` runs these alone, after the parallel part (pyproject's
# `alone` marker).
pytestmark = [pytest.mark.slow, pytest.mark.alone]

MAX_ITEMS = 100_000  # the default ingest.max_items
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _json_body(n: int) -> bytes:
    # 100 tags, many timestamps: the parse is the work, not creating tags.
    items = [
        {"path": f"acme/stall/line1/m{i % 100}/temp", "value": i * 0.5, "ts": T0_MS + i}
        for i in range(n)
    ]
    return json.dumps({"values": items}).encode()


def _lines(n: int, start: int = 0) -> bytes:
    return "".join(
        f"pump,line=l{i % 100} flow={i * 0.5} {(T0_MS + i) * 1_000_000}\n"
        for i in range(start, start + n)
    ).encode()


def _chunks(size: int, piece: int = 1 << 20) -> Iterator[bytes]:
    block = b"x" * piece
    for _ in range(size // piece):
        yield block


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    with stall_server(tmp_path_factory.mktemp("stall"), "stall-gw") as (base, device, _):
        with httpx.Client(base_url=base, timeout=60) as client:
            # One small write of each kind first: what is loaded lazily on a first write is
            # not what this test measures.
            warm = client.post(
                "/api/v1/ingest",
                json={"values": [{"path": "acme/warm/m/v", "value": 1.0, "ts": T0_MS}]},
                headers=device,
            )
            assert warm.status_code == 200, warm.text
            warm = client.post(
                "/api/v2/write", params={"bucket": "acme/warm"}, content=_lines(1), headers=device
            )
            assert warm.status_code == 204, warm.text
        yield base, device


def test_health_answers_while_the_largest_allowed_requests_are_ingested(
    server: tuple[str, dict[str, str]],
) -> None:
    base, device = server
    body = _json_body(MAX_ITEMS)
    r, probe = probed(
        base,
        lambda c: c.post(
            "/api/v1/ingest",
            content=body,
            headers={**device, "Content-Type": "application/json"},
        ),
    )
    assert r.status_code == 200, r.text[:500]
    assert r.json()["accepted"] == MAX_ITEMS
    probe.check(f"a JSON body of {MAX_ITEMS} items")

    lines = _lines(MAX_ITEMS)
    r, probe = probed(
        base,
        lambda c: c.post(
            "/api/v2/write", params={"bucket": "acme/stall"}, content=lines, headers=device
        ),
    )
    assert r.status_code == 204, r.text[:500]
    probe.check(f"{MAX_ITEMS} lines of line protocol")


def test_health_answers_while_the_worst_rejected_requests_are_refused(
    server: tuple[str, dict[str, str]],
) -> None:
    base, device = server
    # 60 MiB of lines in under 256 KiB of gzip: refused at value MAX_ITEMS + 1.
    line = _lines(1)
    bomb = gzip.compress(line * (60 * 1024 * 1024 // len(line)), compresslevel=9)
    assert len(bomb) < 256 * 1024
    r, probe = probed(
        base,
        lambda c: c.post(
            "/api/v2/write",
            params={"bucket": "acme/bomb"},
            content=bomb,
            headers={**device, "Content-Encoding": "gzip"},
        ),
    )
    assert r.status_code == 413, r.text[:500]
    assert "ingest.max_items" in r.text
    probe.check("a gzip body inflating to 60 MiB")

    plain = _lines(400_000)[: 15 * 1024 * 1024]
    r, probe = probed(
        base,
        lambda c: c.post(
            "/api/v2/write", params={"bucket": "acme/plain"}, content=plain, headers=device
        ),
    )
    assert r.status_code == 413, r.text[:500]
    probe.check("a 15 MiB line-protocol body")

    many = _json_body(MAX_ITEMS * 2)  # about 15 MiB
    r, probe = probed(
        base,
        lambda c: c.post(
            "/api/v1/ingest", content=many, headers={**device, "Content-Type": "application/json"}
        ),
    )
    assert r.status_code == 413, r.text[:500]
    assert f"at most {MAX_ITEMS} per request" in r.text
    probe.check("a JSON body of twice the item limit")

    r, probe = probed(
        base,
        lambda c: c.post(
            "/api/v1/ingest",
            content=_chunks(50 * 1024 * 1024),
            headers={**device, "Content-Type": "application/json"},
        ),
    )
    assert r.status_code == 413, r.text[:500]
    assert "http.max_body_bytes" in r.text
    probe.check("a 50 MB chunked body")

    with httpx.Client(base_url=base, timeout=10) as client:
        assert client.get("/api/v1/health").status_code == 200
