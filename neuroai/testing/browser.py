"""Open a page in headless Chromium and report what a person would see.

A small client of the Chrome DevTools Protocol (over ``websocket-client``):
it loads a page, collects console errors and uncaught exceptions, checks that
every image decoded, reads the section headings, and saves a screenshot. Used by
the report tests; needs Debian's ``chromium`` (or Google Chrome) installed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Flags that keep a headless browser off the network and quiet on a closed machine.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
)


def find_chromium() -> str | None:
    """Path of a Chromium-family browser, or ``None``."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageCheck:
    """What loading a page showed.

    Attributes
    ----------
    console_errors : list of str
        Console messages of level error and uncaught exceptions.
    broken_images : list of str
        ``src`` (truncated) of images that did not decode.
    n_images : int
        Images on the page.
    headings : list of str
        Text of every ``h2`` and ``h3``.
    text : str
        The page's visible text.
    links : list of str
        Absolute addresses of the page's links to other documents (in-page
        anchors left out).
    external : list of str
        Addresses of scripts, stylesheets, images and fonts that the page
        loads from the network; a self-contained page has none.
    screenshot : Path | None
        Where the screenshot was saved.
    """

    console_errors: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    n_images: int = 0
    headings: list[str] = field(default_factory=list)
    text: str = ""
    links: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    screenshot: Path | None = None

    @property
    def ok(self) -> bool:
        """No console errors, no broken images, nothing fetched from the network."""
        return not (self.console_errors or self.broken_images or self.external)


class _DevTools:
    def __init__(self, url: str, timeout: float):
        try:
            import websocket
        except ImportError as exc:
            raise ImportError(
                "The browser check needs websocket-client, one of the test extras: "
                "pip install -e '.[test]' (or pip install websocket-client)."
            ) from exc

        self.ws = websocket.create_connection(url, timeout=timeout, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        message_id = self.next_id
        self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method} failed: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, event: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if any(e.get("method") == event for e in self.events):
            return
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv())
            self.events.append(message)
            if message.get("method") == event:
                return
        raise TimeoutError(f"No {event} within {timeout} s")

    def close(self) -> None:
        self.ws.close()


def check_page(
    url: str,
    *,
    screenshot: str | os.PathLike | None = None,
    width: int = 1300,
    height: int = 2000,
    timeout: float = 60.0,
    browser: str | None = None,
) -> PageCheck:
    """Load ``url`` in headless Chromium and check it.

    Parameters
    ----------
    url : str
        ``file://`` or ``http://127.0.0.1`` address of the page.
    screenshot : path-like | None
        Save a full-page PNG screenshot here.
    width, height : int
        Viewport in CSS pixels.
    timeout : float
        Seconds allowed for start-up and loading.
    browser : str | None
        Browser executable; found on PATH by default.
    """
    with _session(browser, width, height, timeout) as tools:
        return _inspect(tools, url, screenshot, width, height, timeout)


def check_site(
    index: str | os.PathLike,
    *,
    screenshot_dir: str | os.PathLike | None = None,
    width: int = 1300,
    height: int = 2000,
    timeout: float = 60.0,
    browser: str | None = None,
) -> dict[Path, PageCheck]:
    """Check a folder of pages: ``index`` and every local page reachable from it.

    Parameters
    ----------
    index : path-like
        The entry page (an HTML file).
    screenshot_dir : path-like | None
        Save a screenshot of each page here, named after the page.
    width, height, timeout, browser
        As for :func:`check_page`.

    Returns
    -------
    dict
        Each page's path to what loading it showed. A link to a local file that
        does not exist is recorded as a console error of the page linking to it.
    """
    start = Path(index).resolve()
    if not start.is_file():
        raise FileNotFoundError(f"{start}: no such page; build the report first.")
    results: dict[Path, PageCheck] = {}
    queue = [start]
    with _session(browser, width, height, timeout) as tools:
        while queue:
            page = queue.pop(0)
            if page in results:
                continue
            shot = Path(screenshot_dir) / f"{page.stem}.png" if screenshot_dir else None
            check = _inspect(tools, page.as_uri(), shot, width, height, timeout)
            results[page] = check
            for href in check.links:
                if not href.startswith("file://"):
                    continue
                target = Path(unquote(urlparse(href).path))
                if not target.exists():
                    check.console_errors.append(f"broken link to {target}")
                elif target.suffix == ".html" and target not in results:
                    queue.append(target)
    return results


@contextlib.contextmanager
def _session(browser: str | None, width: int, height: int, timeout: float):
    """A headless browser with one page open, closed on exit."""
    browser = browser or find_chromium()
    if browser is None:
        raise FileNotFoundError("No Chromium found: install Debian's 'chromium' package.")
    profile = tempfile.mkdtemp(prefix="neuroai-chromium-")
    process = subprocess.Popen(
        [
            browser,
            *FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            f"--window-size={width},{height}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        ws_url = _devtools_url(process, timeout)
        page_ws = _page_target(ws_url, timeout)
        tools = _DevTools(page_ws, timeout)
        try:
            yield tools
        finally:
            tools.close()
    finally:
        process.kill()
        process.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)


def _devtools_url(process: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            break
        match = re.search(r"DevTools listening on (ws://\S+)", line)
        if match:
            return match.group(1)
    raise RuntimeError("Chromium did not start its DevTools endpoint.")


def _page_target(browser_ws: str, timeout: float) -> str:
    from urllib.request import urlopen

    host = browser_ws.split("/devtools/")[0].replace("ws://", "http://")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urlopen(f"{host}/json/list", timeout=timeout) as response:  # noqa: S310 (loopback)
            targets = json.loads(response.read())
        pages = [t for t in targets if t.get("type") == "page"]
        if pages:
            return pages[0]["webSocketDebuggerUrl"]
        time.sleep(0.1)
    raise RuntimeError("Chromium opened no page target.")


_PROBE = """(() => {
  const images = [...document.images];
  return JSON.stringify({
    n: images.length,
    broken: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80)),
    headings: [...document.querySelectorAll('h2, h3')].map(h => h.textContent.trim()),
    text: document.body ? document.body.innerText : '',
    links: [...document.querySelectorAll('a[href]')].map(a => a.href)
      .filter(h => !h.startsWith(location.href.split('#')[0] + '#')),
    external: performance.getEntriesByType('resource').map(r => r.name)
      .filter(n => /^(https?|wss?):/.test(n)),
    height: Math.ceil(document.documentElement.scrollHeight),
  });
})()"""


def _inspect(tools: _DevTools, url, screenshot, width, height, timeout) -> PageCheck:
    tools.events.clear()
    tools.call("Emulation.clearDeviceMetricsOverride")
    tools.call("Page.enable")
    tools.call("Runtime.enable")
    tools.call("Log.enable")
    tools.call("Page.navigate", url=url)
    tools.wait_for("Page.loadEventFired", timeout)
    result = tools.call("Runtime.evaluate", expression=_PROBE, returnByValue=True)
    probe = json.loads(result["result"]["value"])
    check = PageCheck(
        n_images=probe["n"],
        broken_images=probe["broken"],
        headings=probe["headings"],
        text=probe["text"],
        links=probe["links"],
        external=probe["external"],
    )
    for event in tools.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            check.console_errors.append(
                " ".join(
                    str(a.get("value", a.get("description", ""))) for a in params.get("args", [])
                )
            )
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            check.console_errors.append(details.get("text", "exception"))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            check.console_errors.append(params["entry"].get("text", ""))
    if screenshot is not None:
        full = max(height, int(probe["height"]))
        tools.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=min(full, 16000),
            deviceScaleFactor=1,
            mobile=False,
        )
        shot = tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path = Path(screenshot)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        check.screenshot = path
    return check


def report_text(folder: str | os.PathLike) -> str:
    """The HTML of every page of a report folder, concatenated (for text checks)."""
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(Path(folder).glob("*.html")))
