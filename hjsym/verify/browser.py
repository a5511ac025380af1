"""Headless Chromium driven over the Chrome DevTools Protocol, with nothing but the standard library.

Chromium is started with ``--remote-debugging-pipe``: it reads protocol messages (JSON, each
ended by a NUL byte) on file descriptor 3 and writes replies and events on descriptor 4, so no
websocket client, driver binary or browser download is needed; any ``chromium`` (Debian's
package, installed by ``.ci/run``) will do.

:meth:`Chromium.inspect` opens one page and returns a :class:`PageInspection`: console errors
and uncaught exceptions, every request the page made (and which of them would leave the
machine: anything but ``file:``, ``data:``, ``blob:`` and ``about:``), failed loads, broken
images, formulas left unrendered, display formulas wider than their column, links to anchors
that do not exist, and a full-page PNG screenshot.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["Chromium", "PageInspection", "find_chromium", "LOCAL_SCHEMES", "CHROMIUM_FLAGS"]

#: Schemes a page may load from without leaving the machine.
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome-error:")

#: At or below this viewport width (a phone) a display formula may scroll inside its own box; the page itself must not.
NARROW = 600

#: Flags for a quiet, isolated headless browser that does not phone home.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-default-apps",
    "--metrics-recording-only",
    "--mute-audio",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    # a request that still tried to leave would fail to resolve instead of reaching the network
    "--host-resolver-rules=MAP * ~NOTFOUND",
)

# Runs in the page once it has loaded and the math renderer has finished.
_AUDIT_JS = r"""
(() => {
  const out = {};
  const tex = Array.from(document.querySelectorAll('.tex'));
  out.formulas = tex.length;
  out.unrendered = tex.filter(e => !e.classList.contains('rendered') || !e.querySelector('.katex'))
                      .map(e => e.textContent.slice(0, 160));
  out.math_errors = Array.from(document.querySelectorAll('.tex-error, .katex-error')).map(e => e.textContent.slice(0, 160));
  out.broken_images = Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
  out.overflowing = Array.from(document.querySelectorAll('.tex.display')).filter(e => e.scrollWidth > e.clientWidth + 1)
                      .map(e => (e.id || '') + ': ' + e.scrollWidth + 'px in ' + e.clientWidth + 'px');
  const ids = new Set(Array.from(document.querySelectorAll('[id]')).map(e => e.id));
  out.dangling_anchors = Array.from(document.querySelectorAll('a[href^="#"]')).map(a => a.getAttribute('href').slice(1))
                      .filter(h => h && !ids.has(decodeURIComponent(h)));
  out.pill_overflow = Array.from(document.querySelectorAll('.badge, .quick-marker')).filter(e => e.scrollWidth > e.clientWidth + 1)
                      .map(e => e.textContent.slice(0, 60) + ': ' + e.scrollWidth + 'px in ' + e.clientWidth + 'px');
  out.viewport = window.innerWidth;
  out.fonts = document.fonts ? document.fonts.status : 'unknown';
  out.katex_fonts_loaded = document.fonts ? Array.from(document.fonts).filter(f => f.family.indexOf('KaTeX') >= 0 && f.status === 'loaded').length : -1;
  out.title = document.title;
  out.height = Math.ceil(document.documentElement.scrollHeight);
  out.width = Math.ceil(document.documentElement.scrollWidth);
  return JSON.stringify(out);
})()
"""


def find_chromium() -> str | None:
    """The Chromium executable: ``$HJSYM_CHROMIUM``, else ``chromium``/``chromium-browser``/``google-chrome`` on PATH."""
    env = os.environ.get("HJSYM_CHROMIUM")
    if env:
        return env if Path(env).exists() else shutil.which(env)
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageInspection:
    """What one page did in the browser; :attr:`problems` lists everything that should fail a test."""

    url: str
    title: str = ""
    formulas: int = 0
    console_errors: list = field(default_factory=list)
    exceptions: list = field(default_factory=list)
    requests: list = field(default_factory=list)
    external_requests: list = field(default_factory=list)
    failed_requests: list = field(default_factory=list)
    unrendered: list = field(default_factory=list)
    math_errors: list = field(default_factory=list)
    broken_images: list = field(default_factory=list)
    overflowing: list = field(default_factory=list)
    dangling_anchors: list = field(default_factory=list)
    pill_overflow: list = field(default_factory=list)
    viewport: int = 0
    katex_fonts_loaded: int = 0
    screenshot: str | None = None
    size: tuple = (0, 0)

    @property
    def problems(self) -> list[str]:
        out = []
        for label, items in (
            ("console error", self.console_errors),
            ("uncaught exception", self.exceptions),
            ("request leaving the machine", self.external_requests),
            ("failed load", self.failed_requests),
            ("formula left unrendered", self.unrendered),
            ("formula error", self.math_errors),
            ("broken image", self.broken_images),
            ("display formula wider than its column", self.overflowing if self.viewport > NARROW else []),
            ("link to a missing anchor", self.dangling_anchors),
            ("pill text wider than its pill", self.pill_overflow),
        ):
            out += [f"{label}: {item}" for item in items]
        if self.viewport and self.size[0] > self.viewport + 1:
            out.append(f"page scrolls sideways: {self.size[0]} px of content in a {self.viewport} px viewport")
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d["problems"] = self.problems
        return d


def _stack_png(parts: list[bytes]) -> bytes:
    """PNG tiles of one width stacked top to bottom into one PNG (matplotlib reads and writes them)."""
    import io

    import matplotlib.image as mpimg
    import numpy as np

    images = [mpimg.imread(io.BytesIO(p), format="png") for p in parts]
    channels = min(im.shape[2] for im in images)
    out = io.BytesIO()
    mpimg.imsave(out, np.concatenate([im[:, :, :channels] for im in images], axis=0), format="png")
    return out.getvalue()


class ChromiumError(RuntimeError):
    """Chromium could not be started or stopped answering."""


class Chromium:
    """One headless Chromium process, driven over a DevTools pipe (use as a context manager).

    Args:
        executable: path of the browser (default: :func:`find_chromium`).
        width: viewport width in CSS pixels for layout and screenshots.
        height: viewport height before a full-page screenshot stretches it.
    """

    def __init__(self, executable: str | None = None, *, width: int = 1200, height: int = 900):
        self.executable = executable or find_chromium()
        if not self.executable:
            raise ChromiumError("no Chromium found; install it (Debian/Ubuntu: apt-get install chromium) or set HJSYM_CHROMIUM")
        self.width, self.height = width, height
        self._next_id = 0
        self._replies: dict[int, queue.Queue] = {}
        self._events: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._pid = None

    # ------------------------------------------------------------------ process and pipe
    def __enter__(self) -> Chromium:
        self._profile = tempfile.TemporaryDirectory(prefix="hjsym-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        log_fd = os.open(os.path.join(self._profile.name, "chromium.log"), os.O_WRONLY | os.O_CREAT, 0o600)
        # the child's descriptors 3 and 4 must be the two pipe ends; move ours out of the way first
        import fcntl

        src_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
        src_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
        args = [self.executable, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile.name}/profile",
                f"--window-size={self.width},{self.height}", "--remote-debugging-pipe", "about:blank"]
        devnull = os.open(os.devnull, os.O_RDONLY)
        try:
            self._pid = os.posix_spawn(self.executable, args, dict(os.environ), file_actions=[
                (os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, log_fd, 1), (os.POSIX_SPAWN_DUP2, log_fd, 2),
                (os.POSIX_SPAWN_DUP2, src_r, 3), (os.POSIX_SPAWN_DUP2, src_w, 4),
            ], setsid=True)
        finally:
            for fd in (to_browser_r, from_browser_w, src_r, src_w, log_fd, devnull):
                os.close(fd)
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        try:
            self.send("Target.setDiscoverTargets", {"discover": True}, timeout=60)
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self._pid is not None:
            try:
                self.send("Browser.close", timeout=5)
            except Exception:  # noqa: BLE001 - closing a browser that already went away
                pass
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                pid, _ = os.waitpid(self._pid, os.WNOHANG)
                if pid:
                    break
                time.sleep(0.05)
            else:
                try:
                    os.killpg(self._pid, signal.SIGKILL)  # the browser's own process group (setsid above)
                except ProcessLookupError:
                    pass
                os.waitpid(self._pid, 0)
            self._pid = None
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        self._profile.cleanup()

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the browser's own stderr (for error messages)."""
        try:
            return Path(self._profile.name, "chromium.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def _read_loop(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_browser, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                self._events.put(None)
                with self._lock:
                    for q in self._replies.values():
                        q.put({"error": {"message": "browser closed the pipe"}})
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self._lock:
                        q = self._replies.get(msg["id"])
                    if q is not None:
                        q.put(msg)
                else:
                    self._events.put(msg)

    def send(self, method: str, params: dict | None = None, *, session: str | None = None, timeout: float = 30) -> dict:
        """Send one protocol command and wait for its result (raises on a protocol error)."""
        with self._lock:
            self._next_id += 1
            ident = self._next_id
            q: queue.Queue = queue.Queue(maxsize=1)
            self._replies[ident] = q
        msg = {"id": ident, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._to_browser, data):]
            try:
                reply = q.get(timeout=timeout)
            except queue.Empty:
                raise ChromiumError(f"Chromium did not answer {method} within {timeout:g} s; its log ends:\n{self.log_tail()}") from None
        finally:
            with self._lock:
                self._replies.pop(ident, None)
        if "error" in reply:
            raise ChromiumError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def _drain(self, session: str, sink: list, until=None, timeout: float = 30) -> None:
        """Collect this session's events into ``sink`` until ``until(event)`` or the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                ev = self._events.get(timeout=min(left, 0.1))
            except queue.Empty:
                if until is None:
                    return
                continue
            if ev is None:
                raise ChromiumError(f"Chromium exited; its log ends:\n{self.log_tail()}")
            if ev.get("sessionId") == session:
                sink.append(ev)
                if until is not None and until(ev):
                    return

    # ------------------------------------------------------------------ pages
    def inspect(self, url: str, screenshot: Path | None = None, *, timeout: float = 60, settle: float = 0.3) -> PageInspection:
        """Open ``url`` in a fresh tab, wait for it (and its formulas) to finish, audit it, screenshot it."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        events: list = []
        try:
            for domain in ("Page", "Runtime", "Log", "Network"):
                self.send(f"{domain}.enable", session=session)
            self.send("Emulation.setDeviceMetricsOverride",
                      {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False}, session=session)
            self.send("Page.navigate", {"url": url}, session=session)
            self._drain(session, events, until=lambda e: e.get("method") == "Page.loadEventFired", timeout=timeout)
            deadline = time.monotonic() + timeout
            while True:  # the math renderer marks the document when it is done
                state = self._eval(session, "document.documentElement.getAttribute('data-math') + '|' + document.readyState")
                has_math = self._eval(session, "document.querySelectorAll('.tex').length")
                if (state.startswith("done") or not has_math) and state.endswith("complete"):
                    break
                if time.monotonic() > deadline:
                    break
                self._drain(session, events, timeout=0.1)
            self._eval(session, "document.fonts ? document.fonts.ready.then(() => true) : true", await_promise=True)
            self._drain(session, events, timeout=settle)
            audit = json.loads(self._eval(session, _AUDIT_JS))
            result = self._collect(url, events, audit)
            if screenshot is not None:
                self._screenshot(session, Path(screenshot), audit)
                result.screenshot = str(screenshot)
            return result
        finally:
            try:
                self.send("Target.closeTarget", {"targetId": target}, timeout=10)
            except ChromiumError:
                pass

    def _eval(self, session: str, expression: str, await_promise: bool = False):
        res = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": await_promise}, session=session)
        if "exceptionDetails" in res:
            raise ChromiumError(f"page script failed: {res['exceptionDetails'].get('text')}")
        return res.get("result", {}).get("value")

    def _screenshot(self, session: str, path: Path, audit: dict) -> None:
        """A screenshot of the whole page, to its end: captured in tiles of at most 8,000 px (a browser's texture limit is
        about 16,000 px) and stacked into one PNG."""
        height = max(self.height, int(audit.get("height") or self.height))
        tile = 8000
        self.send("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": min(height, tile), "deviceScaleFactor": 1,
                                                           "mobile": False}, session=session)
        parts = []
        for top in range(0, height, tile):
            clip = {"x": 0, "y": top, "width": self.width, "height": min(tile, height - top), "scale": 1}
            shot = self.send("Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True}, session=session,
                             timeout=60)
            parts.append(base64.b64decode(shot["data"]))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(parts[0] if len(parts) == 1 else _stack_png(parts))

    def inspect_width(self, url: str, width: int, screenshot: Path | None = None, *, timeout: float = 60) -> PageInspection:
        """:meth:`inspect` at another viewport width (a phone's 420 px, say); the page must not scroll sideways there."""
        before = self.width
        self.width = width
        try:
            return self.inspect(url, screenshot, timeout=timeout)
        finally:
            self.width = before

    @staticmethod
    def _collect(url: str, events: list, audit: dict) -> PageInspection:
        r = PageInspection(url=url, title=audit.get("title", ""), formulas=audit.get("formulas", 0))
        for ev in events:
            method, p = ev.get("method"), ev.get("params", {})
            if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                r.console_errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                r.exceptions.append(d.get("exception", {}).get("description") or d.get("text", "exception"))
            elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                e = p["entry"]
                r.console_errors.append(f"{e.get('source')}: {e.get('text')} {e.get('url', '')}".strip())
            elif method == "Network.requestWillBeSent":
                req_url = p.get("request", {}).get("url", "")
                r.requests.append(req_url)
                if not req_url.startswith(LOCAL_SCHEMES):
                    r.external_requests.append(req_url)
            elif method == "Network.loadingFailed" and not p.get("canceled"):
                r.failed_requests.append(f"{p.get('errorText')} ({p.get('type')})")
        r.viewport = audit.get("viewport", 0)
        for key in ("unrendered", "math_errors", "broken_images", "overflowing", "dangling_anchors", "pill_overflow"):
            setattr(r, key, audit.get(key, []))
        r.katex_fonts_loaded = audit.get("katex_fonts_loaded", 0)
        r.size = (audit.get("width", 0), audit.get("height", 0))
        return r
