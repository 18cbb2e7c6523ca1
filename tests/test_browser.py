"""The widget, the preview and the dashboard in real headless Chromium, against a real `herald serve`
behind a CDN-like proxy that sets X-Forwarded-For. UPDATE_SCREENSHOTS=1 rewrites docs/screenshots/."""

from __future__ import annotations

import http.client
import io
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest

from service.audit.log import open_audit
from service.config import Settings
from service.engine import Engine
from service.inputs import Article, Location, Reader
from service.loader import load_ruleset
from service.web.runtime import new_decision_id
from tests.conftest import REPO, RULES
from tests.live import free_port, request, serving

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="Debian's chromium and chromium-driver are not installed (`make test` installs them)",
)
WIDGET = REPO / "service" / "web" / "static" / "widget.js"
SCREENSHOTS = REPO / "docs" / "screenshots"
RUSSIA, USA, CRIMEA = "77.88.8.8", "8.8.8.8", "5.59.104.1"
NOTICE = "rferl-undesirable"

ARTICLE_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="icon" href="data:,">
<style>body {{ font: 16px/1.5 Georgia, serif; max-width: 680px; margin: 2em auto; }}
[data-herald-effects~="discourage_sharing"] .share::after {{ content: " (think twice)"; }}</style></head>
<body><h1>{title}</h1>
<div id="notice" data-herald-publisher="rferl" data-herald-section="news" data-herald-id="{article}"></div>
<p id="story">The article's text stays whatever Herald answers.</p><p class="share">Share</p>
<script src="/widget.js" {script}></script></body></html>"""
FRONT_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Front</title>
<link rel="icon" href="data:,"></head><body>{elements}
<script src="{herald}/widget.js" async></script></body></html>"""


# ---- the servers: herald serve, a CDN edge in front of it, a publisher's static site -----------


class Edge(ThreadingHTTPServer):
    """A CDN edge: serves the test pages and forwards everything else to Herald with
    `X-Forwarded-For: <reader>`, as a CDN does. Herald down: 502, but widget.js from its cache."""

    daemon_threads = True

    def __init__(self, upstream: str, pages: dict[str, str]) -> None:
        super().__init__(("127.0.0.1", 0), _EdgeHandler)
        self.upstream = urlsplit(upstream)
        self.pages = pages
        self.reader = USA
        self.delay = 0.0  # seconds before forwarding /v1/ requests: a slow Herald

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A browser that gave up (a timeout) leaves a closed socket behind: not an error here."""


class _EdgeHandler(BaseHTTPRequestHandler):
    server: Edge

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        page = self.server.pages.get(self.path)
        if page is not None:
            self._send(200, {"Content-Type": "text/html; charset=utf-8"}, page.encode())
        else:
            self._forward()

    def _forward(self) -> None:
        edge = self.server
        if self.path.startswith("/v1/") and edge.delay:
            time.sleep(edge.delay)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        headers["X-Forwarded-For"] = edge.reader
        upstream = http.client.HTTPConnection(edge.upstream.hostname or "", edge.upstream.port, timeout=10)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            kept = {k: v for k, v in answer.getheaders() if k.lower() not in ("connection", "content-length")}
            self._send(answer.status, kept, answer.read())
        except ConnectionRefusedError:
            if self.path.split("?")[0] == "/widget.js":  # served stale from the edge's cache
                self._send(200, {"Content-Type": "text/javascript"}, WIDGET.read_bytes())
            else:
                self._send(502, {"Content-Type": "text/plain"}, b"origin unreachable")
        finally:
            upstream.close()

    do_POST = do_OPTIONS = _forward

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


S = TypeVar("S", bound=ThreadingHTTPServer)


def serve_forever(server: S) -> S:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def close(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


class _SiteHandler(BaseHTTPRequestHandler):
    """A publisher's static site: the pages it was given, nothing else."""

    pages: dict[str, str] = {}

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        if self.path == "/favicon.ico":
            self.send_response(204)
            self.end_headers()
            return
        page = self.pages.get(self.path)
        body = (page or "not found").encode()
        self.send_response(200 if page else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def herald_env(tmp: Path, **env: str) -> dict[str, str]:
    from tests.mmdb import build_city_db

    return {
        "HERALD_GEOIP_DB": str(build_city_db(tmp / "City.mmdb")),
        "HERALD_RULES_DIR": str(RULES),
        "HERALD_TRUSTED_PROXIES": "127.0.0.1",  # the edge
        "HERALD_ACCESS_LOG": "0",
        **env,
    }


PAGES = {
    f"/{name}.html": ARTICLE_PAGE.format(title=title, article=name, script=script)
    for name, title, script in [
        ("russia", "A reader in Russia", ""),
        ("usa", "A reader in the US", ""),
        ("down", "Herald is down", ""),
        ("slow", "Herald is slow", 'data-herald-timeout="300"'),
        ("same", "The preview's twin", ""),
    ]
}


@pytest.fixture(scope="module")
def site() -> Iterator[ThreadingHTTPServer]:
    """The publisher's own origin, started first: Herald must know it to allow it."""
    server = serve_forever(ThreadingHTTPServer(("127.0.0.1", 0), _SiteHandler))
    yield server
    close(server)


@pytest.fixture(scope="module")
def herald(tmp_path_factory: pytest.TempPathFactory, site: ThreadingHTTPServer) -> Iterator[str]:
    origin = f"http://127.0.0.1:{site.server_address[1]}"
    tmp = tmp_path_factory.mktemp("herald")
    with serving(tmp, herald_env(tmp, HERALD_ALLOWED_ORIGINS=origin), workers=1) as server:
        yield server.base


@pytest.fixture(scope="module")
def edge(herald: str) -> Iterator[Edge]:
    server = serve_forever(Edge(herald, PAGES))
    yield server
    close(server)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="herald-chromium-")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=900,700",
        "--lang=ru",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": "ru,en"})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(15)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


# ---- helpers ----------------------------------------------------------------------------------


def wait_for(condition: Callable[[], Any], seconds: float = 8.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def settled(browser: Any, selector: str = "[data-herald-publisher]") -> list[str]:
    """Waits until the widget has finished with every element; their states."""

    def states() -> list[str]:
        found = browser.execute_script(
            "return [...document.querySelectorAll(arguments[0])].map(e => e.dataset.heraldState || '')",
            selector,
        )
        return list(found) if found and all(s not in ("", "loading") for s in found) else []

    result = wait_for(states)
    assert result, f"the widget did not finish: {browser.page_source[:2000]}"
    return list(result)


def console(browser: Any) -> list[dict[str, Any]]:
    return list(browser.get_log("browser"))


def severe(entries: list[dict[str, Any]], *expected: str) -> list[str]:
    """SEVERE entries (uncaught errors, failed loads) other than those expected."""
    return [
        e["message"]
        for e in entries
        if e["level"] == "SEVERE" and not any(text in e["message"] for text in expected)
    ]


def notices(browser: Any, selector: str = "#notice") -> list[dict[str, Any]]:
    return list(
        browser.execute_script(
            """return [...document.querySelectorAll(arguments[0] + ' .herald-notice')].map(n => ({
                id: n.dataset.notice, role: n.getAttribute('role'), lang: n.lang,
                title: n.querySelector('h2, h3, h4, h5, h6').textContent,
                link: (n.querySelector('a') || {}).href || null, html: n.outerHTML}))""",
            selector,
        )
    )


def effects(browser: Any) -> str | None:
    value = browser.execute_script("return document.documentElement.getAttribute('data-herald-effects')")
    return None if value is None else str(value)


def screenshot(browser: Any, name: str) -> None:
    """The whole page (up to 2000 pixels high) as a small PNG (64 colours) under docs/screenshots/,
    when UPDATE_SCREENSHOTS=1."""
    if not os.environ.get("UPDATE_SCREENSHOTS"):
        return
    height, chrome = browser.execute_script(
        "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]"
    )
    browser.set_window_size(900, min(int(height), 2000) + int(chrome))
    try:
        png = browser.get_screenshot_as_png()
    finally:
        browser.set_window_size(900, 700)
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=64)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    image.save(SCREENSHOTS / f"{name}.png", optimize=True)


# ---- the widget -------------------------------------------------------------------------------


def test_a_reader_in_russia_sees_the_russian_notice(browser: Any, edge: Edge) -> None:
    edge.reader = RUSSIA
    browser.get(edge.url + "/russia.html")
    assert settled(browser) == ["shown"]
    (notice,) = notices(browser)
    assert (notice["id"], notice["role"], notice["lang"]) == (NOTICE, "alert", "ru")
    assert "нежелательной организацией" in notice["title"]
    assert notice["link"] == "https://www.svoboda.org/"
    assert effects(browser) == "discourage_sharing"
    assert browser.find_element("css selector", ".share").value_of_css_property("color")  # page intact
    assert severe(console(browser)) == []
    screenshot(browser, "widget")


def test_a_reader_in_the_us_sees_nothing(browser: Any, edge: Edge) -> None:
    edge.reader = USA
    browser.get(edge.url + "/usa.html")
    assert settled(browser) == ["none"]
    assert notices(browser) == []
    assert browser.execute_script("return document.getElementById('notice').innerHTML") == ""
    assert effects(browser) == ""  # answered, no effects
    assert severe(console(browser)) == []


def test_the_readme_snippet_works_from_another_origin(
    browser: Any, edge: Edge, site: ThreadingHTTPServer
) -> None:
    """The publisher's page on its own origin, Herald on another: CORS, then a batch with a preflight."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## For publishers: the widget", 1)[1]
    snippet = re.search(r"```html\n(.*?)```", section, re.S)
    assert snippet is not None
    element = '<div data-herald-publisher="{}" data-herald-id="{}"></div>'
    _SiteHandler.pages = {
        "/snippet.html": snippet.group(1).replace("https://herald.example.org", edge.url),
        "/front.html": FRONT_PAGE.format(
            herald=edge.url,
            elements="".join(element.format(p, i) for i, p in enumerate(["rferl", "example-news", "rferl"])),
        ),
    }
    site_url = f"http://127.0.0.1:{site.server_address[1]}"
    edge.reader = RUSSIA
    browser.get(site_url + "/snippet.html")
    assert settled(browser) == ["shown"]
    assert [n["lang"] for n in notices(browser, "[data-herald-publisher]")] == ["ru"]
    browser.get(site_url + "/front.html")
    assert settled(browser) == ["shown", "none", "shown"]
    assert effects(browser) == "discourage_sharing"
    assert severe(console(browser)) == []
    # The same page from an origin Herald does not allow: the browser refuses to read the answer.
    browser.get(f"http://localhost:{site.server_address[1]}/snippet.html")
    assert settled(browser) == ["failed"]
    assert effects(browser) is None and notices(browser, "[data-herald-publisher]") == []
    entries = console(browser)
    assert any("Herald: no notices shown" in e["message"] for e in entries if e["level"] == "WARNING")
    assert severe(entries, "CORS", "Failed to load resource") == []


def test_herald_down_leaves_the_page_whole(browser: Any) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    down = serve_forever(Edge(closed, PAGES))
    try:
        browser.get(down.url + "/down.html")
        assert settled(browser) == ["failed"]
        assert browser.find_element("id", "story").is_displayed()
        assert browser.execute_script("return document.getElementById('notice').innerHTML") == ""
        assert effects(browser) is None
        entries = console(browser)
        warnings = [e["message"] for e in entries if e["level"] == "WARNING"]
        assert any("Herald: no notices shown" in w and "502" in w for w in warnings), entries
        assert severe(entries, "/v1/decisions?") == []  # the failed fetch itself, nothing uncaught
    finally:
        close(down)


def test_a_slow_herald_times_out_quietly(browser: Any, edge: Edge) -> None:
    edge.reader, edge.delay = RUSSIA, 2.0
    try:
        started = time.monotonic()
        browser.get(edge.url + "/slow.html")
        assert settled(browser) == ["failed"]
        assert time.monotonic() - started < 1.8
    finally:
        edge.delay = 0.0
    assert effects(browser) is None
    entries = console(browser)
    assert any("did not answer within 300 ms" in e["message"] for e in entries), entries
    assert severe(entries, "/v1/decisions?") == []


# ---- the editors' preview ---------------------------------------------------------------------


def test_the_preview_shows_the_notice_as_the_widget_does_and_why(browser: Any, edge: Edge) -> None:
    browser.get(edge.url + "/preview")
    fields = {"publisher": "rferl", "country": "RU", "languages": "ru"}
    for name, value in fields.items():
        browser.find_element("name", name).send_keys(value)
    browser.find_element("css selector", "form.preview-form button").click()
    wait_for(lambda: notices(browser, "#herald-preview"))
    (shown,) = notices(browser, "#herald-preview")
    assert (shown["id"], shown["lang"]) == (NOTICE, "ru")
    row = browser.find_element("css selector", f'tr[data-rule="{NOTICE}-russia"]')
    assert "✓ applies" in row.text and "in region russia > country RU" in row.text
    # The same notice on a publisher's page: the very same markup.
    edge.reader = RUSSIA
    browser.get(edge.url + "/same.html")
    settled(browser)
    (widget,) = notices(browser)
    assert widget["html"] == shown["html"]
    assert severe(console(browser)) == []
    # The screenshot: a reader in Crimea, in Ukrainian.
    browser.get(edge.url + "/preview?publisher=rferl&subdivision=UA-43&languages=uk")
    wait_for(lambda: notices(browser, "#herald-preview"))
    assert "subdivision UA-43" in browser.find_element("css selector", "table.rules").text
    screenshot(browser, "preview")


# ---- the auditors' dashboard ------------------------------------------------------------------

TODAY = datetime.now(UTC).date()
# (days before today, reader country, decisions): logged by an earlier node, before the server runs.
SEEDED = [(3, "RU", 2), (3, "US", 1), (2, "US", 2)]
LIVE = [RUSSIA, RUSSIA, USA, CRIMEA]  # today, through the edge


def seed(directory: Path) -> None:
    """Decisions of earlier days, written by the service's own audit log with a clock set back."""
    engine = Engine(load_ruleset(RULES))
    midnight = datetime.combine(TODAY, datetime.min.time(), UTC)
    now = [midnight - timedelta(days=5)]
    log = open_audit(Settings(audit_dir=directory, audit_node="seed"), clock=lambda: now[0])
    log.started()
    log.ruleset_loaded(engine.ruleset)
    for days, country, count in SEEDED:
        for i in range(count):
            now[0] = midnight - timedelta(days=days) + timedelta(hours=9, minutes=i)
            article = Article(publisher="rferl")
            decision = engine.decide(article, Reader(Location(country, None, "geoip")), now[0])
            log.decision(new_decision_id(), article, decision, None)
    log.stopped()


@pytest.fixture
def audit_edge(tmp_path: Path) -> Iterator[Edge]:
    """Herald with the auditors' pages on a log that already holds the seeded days, behind an edge."""
    seed(tmp_path / "audit")
    with serving(tmp_path, herald_env(tmp_path, HERALD_AUDIT_HTTP="1"), workers=1) as server:
        edge = serve_forever(Edge(server.base, {}))
        yield edge
        close(edge)


def test_the_dashboard_charts_a_known_set_of_decisions(browser: Any, audit_edge: Edge) -> None:
    ids = []
    for reader in LIVE:
        audit_edge.reader = reader
        ids.append(request(audit_edge.url + "/v1/decisions", {"article": {"publisher": "rferl"}})[1])
    first, last = TODAY - timedelta(days=3), TODAY
    browser.get(f"{audit_edge.url}/audit?first={first}&last={last}&decision={ids[3]['decision_id']}")
    bars = browser.execute_script(
        """return [...document.querySelectorAll('svg.bars g.bar')].map(b => [
             b.dataset.day, b.dataset.series, +b.dataset.total,
             [...b.querySelectorAll('rect.segment')].map(s => `${s.dataset.country} ${s.dataset.value}`)
           ])"""
    )
    day = {d: str(TODAY - timedelta(days=d)) for d in (0, 2, 3)}
    assert bars == [
        [day[3], "decisions", 3, ["RU 2", "US 1"]],
        [day[3], "notices", 2, ["RU 2"]],
        [day[2], "decisions", 2, ["US 2"]],
        [day[0], "decisions", 4, ["RU 2", "US 1", "UA 1"]],  # by decisions in the range: RU, US, UA
        [day[0], "notices", 3, ["RU 2", "UA 1"]],
    ]
    rows = [r.text for r in browser.find_elements("css selector", "table.counts tbody tr")]
    assert rows == [  # day, country, decisions, rferl-undesirable shown
        f"{day[3]} RU 2 2",
        f"{day[3]} US 1 0",
        f"{day[2]} US 2 0",
        f"{day[0]} RU 2 2",
        f"{day[0]} UA 1 1",
        f"{day[0]} US 1 0",
    ]
    assert "The log: intact" in browser.find_element("id", "verify-title").text
    assert "same" in browser.find_element("css selector", ".verdict").text
    assert "subdivision UA-43" in browser.find_element("css selector", "table.rules").text
    assert severe(console(browser)) == []
    screenshot(browser, "dashboard")
