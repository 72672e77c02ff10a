"""Checks on the static web UI that need no browser.

Every asset the page references exists, nothing is fetched from another host (plants are often
offline), every JavaScript module parses, data never reaches the DOM as HTML, and the DOM-free
modules (formatting, axes, live feed, history loading, chart maths) behave as specified: those run
under node through tests/web/web_static_probe.mjs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "src" / "kiln" / "web" / "static"
VENDOR = STATIC / "vendor"
# Third-party files served as they were released, each with its licence; checked on their own
# below, not held to the rules for Kiln's own modules.
VENDORED = {"uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE"}
PROBE = Path(__file__).with_name("web_static_probe.mjs")
TEXT_SUFFIXES = {".html", ".css", ".js", ".mjs", ".svg", ".json", ".txt", ".map"}

# Static `import ... from "x"`, `export ... from "x"`, bare `import "x"`, and dynamic import("x").
_IMPORT = re.compile(
    r"""(?:^|[;\s])(?:import|export)\s[^'"`;]*?\bfrom\s*(['"])(?P<a>[^'"]+)\1"""
    r"""|(?:^|[;\s])import\s*(['"])(?P<b>[^'"]+)\3"""
    r"""|\bimport\s*\(\s*(['"])(?P<c>[^'"]+)\5\s*\)""",
    re.MULTILINE,
)
# A URL with a scheme that reaches a host; loopback is the only host allowed.
_REMOTE_URL = re.compile(
    r"\b(?:https?|wss?|ftp)://(?!(?:localhost|127\.0\.0\.1|\[::1\])[:/])", re.I
)


def _static_files() -> list[Path]:
    return sorted(p for p in STATIC.rglob("*") if p.is_file() and VENDOR not in p.parents)


def _js_files() -> list[Path]:
    return sorted(p for p in STATIC.rglob("*.js") if VENDOR not in p.parents)


def _strip_js_comments(source: str) -> str:
    # Comments may mention words like `import`; strings are kept because specifiers live there.
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.DOTALL)
    return re.sub(r"(^|[^:\\'\"`])//[^\n]*", r"\1", source)


def _imports_in(source: str) -> list[str]:
    text = _strip_js_comments(source)
    return [m.group("a") or m.group("b") or m.group("c") for m in _IMPORT.finditer(text)]


def _imports(js: Path) -> list[str]:
    return _imports_in(js.read_text(encoding="utf-8"))


def _resolve_import(js: Path, specifier: str) -> Path:
    if specifier.startswith("/static/"):
        return STATIC / specifier.removeprefix("/static/")
    assert specifier.startswith(("./", "../")), (
        f"{js.name} imports {specifier!r}: use a relative path such as './x.js' "
        "(there is no bundler, and bare module names cannot load in the browser)"
    )
    return (js.parent / specifier).resolve()


class _PageRefs(HTMLParser):
    """Collects the URLs index.html makes the browser load, and the element ids it defines."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []
        self.ids: list[str] = []
        self.module_scripts: list[str] = []
        # What the page's CSP (script-src 'self'; style-src 'self') would block.
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "style" or (tag == "script" and "src" not in a):
            self.inline.append(f"<{tag}> element")
        self.inline += [f"<{tag} {k}=...>" for k in a if k == "style" or k.startswith("on")]
        for attr in ("src", "href", "poster", "data"):
            if attr in a and tag != "a":
                self.refs.append((f"<{tag} {attr}>", a[attr]))
        if tag == "script" and a.get("type") == "module" and "src" in a:
            self.module_scripts.append(a["src"])


@cache
def _page() -> _PageRefs:
    parser = _PageRefs()
    parser.feed((STATIC / "index.html").read_text(encoding="utf-8"))
    return parser


def _node() -> str:
    node = shutil.which("node") or ("/usr/bin/node" if Path("/usr/bin/node").exists() else None)
    if node is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node is required in CI to check the JavaScript of the web UI")
        pytest.skip("node is not installed: the JavaScript syntax and behaviour checks need it")
    return node


# --- the page and its assets -----------------------------------------------------------------


def test_page_files_exist() -> None:
    for name in ("index.html", "app.css", "app.js"):
        assert (STATIC / name).is_file(), f"{name} is missing from {STATIC}"


def test_every_asset_index_html_references_exists() -> None:
    page = _page()
    local = [(where, url) for where, url in page.refs if not url.startswith(("data:", "#"))]
    assert ("<link href>", "/static/app.css") in local
    assert page.module_scripts == ["/static/app.js"]
    for where, url in local:
        # index.html is served at "/", so a relative "app.js" would resolve to "/app.js".
        assert url.startswith("/static/"), f"{where} {url!r} must be an absolute /static/ path"
        assert (STATIC / url.removeprefix("/static/")).is_file(), f"{where} {url!r} does not exist"


def test_page_has_nothing_its_csp_blocks() -> None:
    # The server sends script-src 'self'; style-src 'self' (src/kiln/api/headers.py).
    assert _page().inline == [], "move inline scripts, styles and handlers into app.js/app.css"
    for js in _js_files():
        text = _strip_js_comments(js.read_text(encoding="utf-8"))
        # el.style.x = ... is allowed under the CSP; a style attribute set as markup is not.
        assert not re.search(r"""setAttribute\(\s*["']style["']""", text), js.name


def test_every_js_import_resolves_to_a_file() -> None:
    seen = 0
    for js in _js_files():
        for specifier in _imports(js):
            target = _resolve_import(js, specifier)
            assert target.is_file(), f"{js.name} imports {specifier!r}, which does not exist"
            assert STATIC.resolve() in target.resolve().parents, (
                f"{js.name}: {specifier!r} escapes static/"
            )
            seen += 1
    assert seen >= 10, "the import scan found almost nothing: is the regex still right?"


def test_every_js_module_is_reachable_from_app_js() -> None:
    reachable: set[Path] = set()
    todo = [STATIC / "app.js"]
    while todo:
        js = todo.pop().resolve()
        if js in reachable:
            continue
        reachable.add(js)
        todo.extend(_resolve_import(js, s) for s in _imports(js))
    unused = {p.resolve() for p in _js_files()} - reachable
    assert not unused, f"modules no page loads: {sorted(p.name for p in unused)}"


def test_import_scanner_sees_every_form() -> None:
    source = (
        'import { a } from "./a.js";\nimport "./side.js";\n'
        "export { b } from './b.js';\nconst m = await import(\"./lazy.js\");\n"
        '// import { c } from "./commented.js";\n'
    )
    assert _imports_in(source) == ["./a.js", "./side.js", "./b.js", "./lazy.js"]


def test_no_static_file_points_at_another_host() -> None:
    offenders = []
    for path in _static_files():
        if path.suffix not in TEXT_SUFFIXES:
            continue
        text = path.read_text(encoding="utf-8")
        offenders += [f"{path.name}: {m.group(0)}..." for m in _REMOTE_URL.finditer(text)]
        # Protocol-relative URLs ("//cdn.example/x.js") reach another host too.
        offenders += [
            f"{path.name}: {m.group(0)}"
            for m in re.finditer(r"""(?:src|href)\s*=\s*["']//|url\(\s*["']?//|@import""", text)
        ]
    assert not offenders, "the UI must work offline; remote references: " + "; ".join(offenders)


def test_vendored_files_are_known_licensed_and_reach_no_host() -> None:
    assert {p.name for p in VENDOR.iterdir()} == VENDORED
    assert "MIT License" in (VENDOR / "uPlot.LICENSE").read_text(encoding="utf-8")
    js = (VENDOR / "uPlot.iife.min.js").read_text(encoding="utf-8")
    # The one URL is the project's address in the licence comment that opens the file.
    assert [m.start() for m in _REMOTE_URL.finditer(js)] == [js.index("https://github.com/")]
    assert js.index("https://github.com/") < js.index("*/") < 200
    for call in ("fetch(", "XMLHttpRequest", "WebSocket", "import(", "innerHTML", "eval("):
        assert call not in js, f"uPlot would use {call}"
    css = (VENDOR / "uPlot.min.css").read_text(encoding="utf-8")
    assert "url(" not in css and "@import" not in css
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    assert '<script defer src="/static/vendor/uPlot.iife.min.js"></script>' in html


def test_remote_url_pattern_catches_what_it_should() -> None:
    assert _REMOTE_URL.search('<script src="https://cdn.jsdelivr.net/x.js">')
    assert _REMOTE_URL.search("fetch('http://10.0.0.5/api')")
    assert _REMOTE_URL.search("new WebSocket('wss://kiln.example/live')")
    assert not _REMOTE_URL.search("http://localhost:8000/api")
    assert not _REMOTE_URL.search("`${scheme}//${loc.host}/api/v1/live`")


def test_no_font_or_css_fetched_from_outside() -> None:
    css = (STATIC / "app.css").read_text(encoding="utf-8")
    assert "@font-face" not in css, "web fonts must not be needed: use the system font stack"
    for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", css):
        assert url.startswith(("data:", "/static/", "./")), f"app.css loads {url!r}"


# --- JavaScript hygiene ------------------------------------------------------------------------


def test_js_never_writes_html_strings_into_the_dom() -> None:
    # Tag names, descriptions and error texts come from the plant: they only go in via textContent.
    sinks = re.compile(
        r"\.(?:innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|\beval\s*\(|new\s+Function\s*\("
    )
    for js in _js_files():
        text = _strip_js_comments(js.read_text(encoding="utf-8"))
        found = sinks.findall(text)
        assert not found, f"{js.name} uses {found}: build nodes and set textContent instead"


def test_element_ids_used_by_the_scripts_exist_in_index_html() -> None:
    ids = _page().ids
    assert len(ids) == len(set(ids)), f"duplicate ids in index.html: {sorted(ids)}"
    wanted: set[str] = set()
    for js in _js_files():
        text = js.read_text(encoding="utf-8")
        wanted |= set(re.findall(r"""(?:byId|getElementById)\(\s*["']([\w-]+)["']\s*\)""", text))
        wanted |= set(re.findall(r"""querySelector(?:All)?\(\s*["']#([\w-]+)""", text))
    assert len(wanted) >= 20, "the id scan found almost nothing: is the regex still right?"
    missing = sorted(wanted - set(ids))
    assert not missing, f"app.js looks up ids that index.html lacks: {missing}"


@pytest.mark.parametrize("js", _js_files(), ids=lambda p: p.name)
def test_js_module_parses(js: Path) -> None:
    node = _node()
    result = subprocess.run(
        [node, "--input-type=module", "--check"],
        input=js.read_bytes(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, f"{js.name} does not parse:\n{result.stderr.decode()}"


def test_syntax_check_rejects_broken_module() -> None:
    node = _node()
    result = subprocess.run(
        [node, "--input-type=module", "--check"],
        input=b"export const a = ;\n",
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0


# --- behaviour of the DOM-free modules, run under node --------------------------------------


@pytest.fixture(scope="module")
def probe() -> dict[str, Any]:
    node = _node()
    # A fixed zone keeps the time-axis labels independent of the machine running the tests.
    env = {**os.environ, "TZ": "UTC"}
    result = subprocess.run(
        [node, str(PROBE), str(STATIC)],
        capture_output=True,
        timeout=60,
        check=False,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, f"probe failed:\n{result.stderr.decode()}"
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_quality_severity_and_label(probe: dict[str, Any]) -> None:
    assert probe["severity"] == [
        "good",
        "good",
        "uncertain",
        "bad",
        "bad",
        "unknown",
        "unknown",
        "unknown",
        "unknown",
    ]
    assert probe["qualityLabel"] == ["Good", "Bad: sensor failure", "Uncertain", "Bad: 0x808f0000"]


def test_values_are_formatted_for_operators(probe: dict[str, Any]) -> None:
    assert probe["formatValue"] == {
        "state": "running",
        "stateUnknown": "9",
        "boolTrue": "on",
        "boolZero": "off",
        "floatSpan100": "72.3",
        "floatNoRange": "0.482",
        "floatBig": "1234.6",
        "negativeZero": "0.00",
        "int": "4",
        "missing": "—",
        "text": "batch 42",
        "withUnit": "72.3 °C",
        "stateWithUnit": "running",
    }
    assert probe["formatAge"] == [
        "now",
        "2 s ago",
        "2 min ago",
        "3 h ago",
        "3 d ago",
        "in 5 s (clock ahead)",
        "—",
    ]


def test_timestamps_are_read_as_utc(probe: dict[str, Any]) -> None:
    jan1 = 1_704_067_200_000
    assert probe["parseTimestamp"] == [jan1, jan1, jan1, jan1 + 123, "NaN", "NaN"]


def test_aggregate_interval_gives_about_300_buckets(probe: dict[str, Any]) -> None:
    minute = 60_000
    assert {k: v["text"] for k, v in probe["intervals"].items()} == {
        str(15 * minute): "5s",
        str(60 * minute): "15s",
        str(480 * minute): "2m",
        str(1440 * minute): "5m",
    }
    table = probe["intervalTable"]
    for range_ms, chosen in probe["intervals"].items():
        buckets = int(range_ms) / chosen["ms"]
        assert 100 <= buckets <= 300
        shorter = table[table.index(chosen["ms"]) - 1]
        assert int(range_ms) / shorter > 300, "a shorter interval would still have fitted"


def test_live_messages_are_validated(probe: dict[str, Any]) -> None:
    parsed = probe["parseLive"]
    assert parsed["notJson"] == {"values": [], "rejected": 1, "detail": None}
    assert [v["path"] for v in parsed["mixed"]["values"]] == ["a/b"]
    assert parsed["mixed"]["rejected"] == 2
    assert parsed["detail"]["detail"] == "prefix 'x' is not a valid path"
    assert parsed["array"]["rejected"] == 1
    assert parsed["valuesNotList"]["rejected"] == 1
    assert parsed["nullValue"]["rejected"] == 0
    assert probe["liveUrl"] == [
        "ws://kiln.local:8000/api/v1/live?prefix=acme%2Fplant+1",
        "wss://kiln.local/api/v1/live?prefix=",
    ]


def test_live_feed_counts_bad_frames_and_reconnects_with_backoff(probe: dict[str, Any]) -> None:
    feed = probe["liveFeed"]
    log = [tuple(e) for e in feed["log"]]
    # A garbage frame, a half-bad frame and a handler that throws are counted, not fatal.
    assert feed["stats"] == {"messages": 5, "malformed": 3, "rejectedEntries": 2, "reconnects": 6}
    assert ("serverError", "too many subscribers") in log
    # Backoff with jitter at its low end: 250, 500, 1000, 2000 then the 4000 ms cap halved.
    assert [e[1] for e in log if e[0] == "timer"] == [250, 500, 1000, 2000, 2000, 250]
    live_states = [e for e in log if e[:2] == ("state", "live")]
    assert [e[3] for e in live_states] == [False, True, False]
    # Changing the subscription closes the old socket cleanly before opening the new one.
    close_a = log.index(("close", "ws://test/live?prefix=a", 1000))
    assert log[close_a + 2] == ("socket", "ws://test/live?prefix=b")
    # Events from the replaced socket are ignored: no values and no retry after the switch.
    after = log[close_a:]
    assert not any(e[0] == "values" for e in after)
    assert [e for e in after if e[0] == "timer"] == []
    assert feed["pendingTimers"] == 0
    assert feed["prefix"] is None
    assert log[-1] == ("state", "idle", None, None)


def test_api_errors_carry_the_server_detail(probe: dict[str, Any]) -> None:
    assert probe["errorDetail"] == [
        "unknown tag 'x': list tags with GET /api/v1/tags",
        "query.limit: Input should be less than 10000",
        "HTTP 500 Internal Server Error with no error detail",
        "HTTP 502 with no error detail",
    ]
    assert probe["queryString"] == "?tag=a%2Fb+c&start=-1h"
    api = probe["api"]
    assert api["ok"] == {"ok": True}
    assert api["err"] == ["ApiError", 503, "historian is starting: retry in a few seconds"]
    assert api["down"][:2] == ["ApiError", 0]
    assert "Cannot reach the Kiln server" in api["down"][2]
    assert api["fetches"] == ["/ok?a=1", "/err", "/down"]
    assert api["offsetHours"] == 3, "the Date header should reveal a 3 h clock skew"


def test_server_clock_ignores_noise_and_corrects_skew(probe: dict[str, Any]) -> None:
    assert probe["clock"] == {"small": 0, "skewed": 60_500, "afterNaN": 60_500, "now": 60_500}


def test_history_plan_per_data_type(probe: dict[str, Any]) -> None:
    plan = probe["plan"]
    assert plan["text"] == "none"
    assert plan["state"]["mode"] == "raw"
    assert plan["short"]["mode"] == "raw-first"
    assert plan["hour"] == "raw-first"
    assert plan["long"] == {"mode": "aggregate", "interval": {"ms": 120_000, "text": "2m"}}
    assert probe["stepped"] == [True, True, True, False, False]
    assert probe["numeric"] == [1, 0, 2, 2.5, True, True]


def test_history_answers_become_sorted_points(probe: dict[str, Any]) -> None:
    jan1 = 1_704_067_200_000
    assert probe["buckets"] == [
        {"t": jan1, "avg": None, "min": None, "max": None},
        {"t": jan1 + 60_000, "avg": 2, "min": 1, "max": 3},
    ]
    assert probe["points"] == [
        {"t": jan1 + 1000, "v": 0, "q": "bad_not_connected"},
        {"t": jan1 + 5000, "v": 1, "q": "good"},
    ]


def test_history_loading_falls_back_from_raw_to_aggregates(probe: dict[str, Any]) -> None:
    lh = probe["loadHistory"]
    kind, count, end_ms, calls = lh["fits"]
    assert (kind, count, end_ms) == ("raw", 1, 1_704_070_800_000)
    assert calls == [
        [
            "/api/v1/history/raw",
            {"tag": "a/b/temp", "start": "-15m", "end": "now", "limit": 3000},
        ]
    ]
    kind, interval_ms, buckets, calls = lh["tooMany"]
    assert (kind, interval_ms, buckets) == ("aggregate", 5000, 1)
    assert [c[0] for c in calls] == ["/api/v1/history/raw", "/api/v1/history/aggregate"]
    assert calls[1][1] == {
        "tag": "a/b/temp",
        "start": "-15m",
        "end": "now",
        "interval": "5s",
        "agg": "avg,min,max",
    }
    kind, interval_ms, calls = lh["long"]
    assert (kind, interval_ms) == ("aggregate", 300_000)
    assert [c[0] for c in calls] == ["/api/v1/history/aggregate"]
    kind, truncated, calls = lh["discrete"]
    assert (kind, truncated) == ("raw", True)
    assert [c[0] for c in calls] == ["/api/v1/history/raw"]
    assert lh["text"] == ["none", 0]


def test_tag_names_are_shown_relative_to_the_selected_asset(probe: dict[str, Any]) -> None:
    assert probe["relativePath"] == ["filler/weight", "acme/p1/line10/x", "acme/p1/x", "x"]


def test_pens_line_up_on_one_time_axis_and_export_as_csv(probe: dict[str, Any]) -> None:
    # Where a pen has no sample uPlot draws on through (undefined); its own gaps stay null.
    assert probe["aligned"] == [[1000, 2000, 3000], [1, "undef", None], ["undef", 5, 6]]
    # Only what is on screen (1.5 s to 3 s), UTC times, empty fields, quoted names.
    assert probe["csv"] == (
        'time,x/a,"x/""b"",c"\r\n1970-01-01T00:00:02.000Z,,5\r\n1970-01-01T00:00:03.000Z,,6\r\n'
    )
    raw, aggregate, none = probe["penPoints"]
    assert raw == [{"t": 1, "v": 2}, {"t": 2, "v": None}, {"t": 3, "v": 4}], "Bad is a gap"
    assert aggregate == [{"t": 1, "v": 2}, {"t": 2, "v": None}]
    assert none == []
    # Averages carry their min-max band; raw values have none.
    assert probe["band"] == [
        {
            "lo": [{"t": 1, "v": 1}, {"t": 2, "v": None}],
            "hi": [{"t": 1, "v": 3}, {"t": 2, "v": None}],
        },
        None,
    ]


def test_the_view_round_trips_through_the_address(probe: dict[str, Any]) -> None:
    view = probe["view"]
    assert view["written"] == (
        "asset=acme%2Fp1&tag=acme%2Fp1%2Fa&tag=acme%2Fp1%2Fb"
        "&from=2024-01-01T00%3A00%3A00.000Z&to=2024-01-01T01%3A00%3A00.000Z"
    )
    assert view["roundTrip"] == {
        "asset": "acme/p1",
        "tags": ["acme/p1/a", "acme/p1/b"],
        "window": {"startMs": 1_704_067_200_000, "endMs": 1_704_070_800_000},
    }
    assert view["range"] == {"asset": "a/b", "tags": ["a/b/c"], "window": "8h"}
    # An unknown range and a span that ends before it starts are both ignored.
    assert view["badRange"] == {"asset": None, "tags": [], "window": None}
    assert view["tooMany"] == 6, "at most six pens"


def test_pan_zoom_and_the_query_window(probe: dict[str, Any]) -> None:
    assert probe["pan"] == [{"startMs": -50, "endMs": 50}, {"startMs": 50, "endMs": 250}]
    sliding, fixed, unknown = probe["resolve"]
    assert sliding == {
        "start": "-8h",
        "end": "now",
        "ms": 28_800_000,
        "startMs": 971_200_000,
        "endMs": 1_000_000_000,
        "sliding": True,
    }
    assert fixed["start"] == "1970-01-01T00:00:00.000Z" and fixed["ms"] == 60_000
    assert fixed["sliding"] is False
    assert unknown == "-1h"


def test_the_tree_opens_down_to_the_assets_that_hold_tags(probe: dict[str, Any]) -> None:
    # Levels above the machines open; a machine (typed, even with children) and a leaf do not.
    assert probe["opensOnLoad"] == [True, False, False, False]


def test_health_is_told_in_plain_words(probe: dict[str, Any]) -> None:
    health = probe["health"]
    assert health["number"] == ["2.66", "3,122", "0.0229"]
    assert health["problems"] == [
        "plc7 (opcua) is reconnecting: opc.tcp://10.0.0.7:4840: connection refused"
    ]
    assert health["dropped"] == ["12 values dropped on the way to historian"]
    assert health["summaries"] == [
        "98 series, 3,122 values stored",
        "1 of 2 connections up",
        "1 asset, 98 tags",
    ]


def test_live_feed_renews_the_session_on_4401_and_refused_handshakes(probe: dict[str, Any]) -> None:
    la = probe["liveAuth"]
    log = [tuple(e) for e in la["log"]]

    def part(name: str) -> list[tuple[Any, ...]]:
        start = log.index(("--", name)) + 1
        end = next((i for i in range(start, len(log)) if log[i][0] == "--"), len(log))
        return log[start:end]

    # Expired access token (4401): renew, then reconnect at once without a backoff timer.
    expired = part("expired")
    assert [e[0] for e in expired].count("socket") == 2
    assert ("reauth",) in expired
    assert not any(e[0] == "timer" for e in expired)
    # A drop after opening is retried plainly; a handshake that never opened checks the session,
    # and a session that is still fine means the usual backoff (the server is never hammered).
    refused = part("refused handshake, session fine")
    assert [e[0] for e in refused if e[0] in ("reauth", "timer")] == ["timer", "reauth", "timer"]
    # The session is over: the feed goes idle and stops retrying.
    assert part("session over")[-1] == ("state", "idle")
    assert la["afterEnded"] == {"prefix": None, "timers": 0}
    # 1008 (no values:read, bad prefix): reported, not retried.
    assert ("serverError", "needs values:read") in part("policy")
    assert la["afterPolicy"] == {"prefix": None, "timers": 0}
    # A renewal that finishes after the subscription changed opens nothing for the old prefix.
    assert la["staleOpened"] == 0
    assert la["prefix"] == "d"


def test_csrf_cookie_is_read_by_name(probe: dict[str, Any]) -> None:
    assert probe["readCookie"] == ["abc=", "", "", ""]


def test_session_signs_in_and_reports_refusals(probe: dict[str, Any]) -> None:
    s = probe["session"]
    # Nobody signed in and no CSRF cookie: one /me, no pointless renewal, nothing "expired".
    assert s["meNobody"] == [None, ["/api/v1/auth/me"], 0]
    assert s["totp"] == ["SignInError", 401, "totp_required", "this account needs a TOTP code"]
    assert s["limited"] == [
        "SignInError",
        429,
        "rate_limited",
        "too many failed logins; try again in 300 s",
    ]
    assert s["down"][:3] == ["SignInError", 0, None]
    assert s["user"] == "admin"
    assert s["loginBody"] == {"username": "admin", "password": "pw", "otp": "123456"}
    # The answer says the token lasts 5 min: renew at two thirds of that, not at the usual 10.
    assert s["timerAfterLogin"] == 200_000


def test_session_sends_csrf_on_state_changes_only(probe: dict[str, Any]) -> None:
    # The login answer's token first; once the cookie exists it wins (another tab may rotate it).
    assert probe["session"]["csrfHeaders"] == [
        ["POST", "csrf-1"],
        ["GET", None],
        ["DELETE", "csrf-cookie"],
    ]


def test_session_renews_once_on_401_and_retries(probe: dict[str, Any]) -> None:
    s = probe["session"]
    statuses, calls = s["retried"]
    assert statuses == [200, 200]
    assert [c[0] for c in calls].count("/api/v1/auth/refresh") == 1, "concurrent 401s share one"
    assert ["/api/v1/auth/refresh", "csrf-cookie"] in calls
    assert [c[0] for c in calls[-2:]] == ["/api/v1/a", "/api/v1/b"]
    assert s["csrfAfterRefresh"] == "csrf-2"
    # Timer: a network failure retries in 30 s; a success schedules the next renewal (every
    # 10 min when the answer does not say how long the token lasts).
    assert s["timer"] == [[30_000, 600_000], ["/api/v1/auth/refresh"] * 2, 1]
    assert s["revalidate"] == ["valid", "renewed"]


def test_session_ends_when_renewal_is_refused(probe: dict[str, Any]) -> None:
    refused, expired, user, timers, _ = probe["session"]["ended"]
    assert refused == [401, 401]
    assert expired == 1, "onExpired is reported once, however many requests failed"
    assert user is None
    assert timers == 0
    calls, user, timers = probe["session"]["logout"]
    assert calls == [["/api/v1/auth/logout", "POST", "csrf-2"]]
    assert (user, timers) == (None, 0)
