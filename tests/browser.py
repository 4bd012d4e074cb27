"""Headless Chromium driven through chromedriver's W3C WebDriver API (plain HTTP: no client library).

Debian's packages: `apt-get install chromium chromium-driver`. Each Browser has a new profile,
so it sees a page as a first-time user does.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def available() -> bool:
    return bool(shutil.which("chromium") and shutil.which("chromedriver"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    def __init__(self, width: int = 1600, height: int = 1000):
        self.port = _free_port()
        self.profile = tempfile.mkdtemp(prefix="avemo-chromium-")
        self.driver = subprocess.Popen(["chromedriver", f"--port={self.port}"], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        self.session = ""
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                self._call("GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        options = {"binary": shutil.which("chromium"), "args": [*FLAGS, f"--user-data-dir={self.profile}"]}
        self.session = self._call("POST", "/session", {"capabilities": {"alwaysMatch": {
            "goog:chromeOptions": options}}})["sessionId"]
        self._call("POST", f"/session/{self.session}/window/rect", {"width": width, "height": height})

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.session:
                self._call("DELETE", f"/session/{self.session}")
        finally:
            self.driver.terminate()
            self.driver.wait(timeout=30)
            shutil.rmtree(self.profile, ignore_errors=True)

    def _call(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data,
                                         {"Content-Type": "application/json"}, method=method)
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())["value"]

    def go(self, url: str) -> None:
        self._call("POST", f"/session/{self.session}/url", {"url": url})

    def url(self) -> str:
        return self._call("GET", f"/session/{self.session}/url")

    def js(self, script: str, *args):
        """Run `script` (a function body; its arguments as `arguments[i]`) in the page; return its value."""
        return self._call("POST", f"/session/{self.session}/execute/sync", {"script": script, "args": list(args)})

    def wait(self, script: str, *args, seconds: float = 45):
        """Run `script` until it returns something truthy; return that, or raise after `seconds`."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            if value := self.js(script, *args):
                return value
            time.sleep(0.25)
        raise TimeoutError(f"{script} stayed false for {seconds:.0f} s on {self.url()}")

    def click_link(self, text: str) -> None:
        """Click the first link whose text is `text`, once there is one."""
        self.wait("const a = [...document.querySelectorAll('a')].find(a => a.innerText.trim() === arguments[0]);"
                  "if (a) a.click(); return Boolean(a);", text)

    def click(self, selector: str) -> None:
        self.wait("const e = document.querySelector(arguments[0]); if (e) e.click(); return Boolean(e);", selector)

    def in_window(self, selector: str) -> bool:
        """Whether the first element matching `selector` (waited for) lies inside the window as first shown:
        seen without scrolling."""
        self.wait("return Boolean(document.querySelector(arguments[0]))", selector)
        return self.js("""
            const r = document.querySelector(arguments[0]).getBoundingClientRect();
            return r.width > 0 && r.height > 0 && r.top >= 0 && r.left >= 0 && r.right <= innerWidth
                && r.bottom <= innerHeight;""", selector)

    def unobscured(self, selector: str, text: str) -> bool:
        """Whether an element matching `selector` with text `text` is inside the window and on top at its centre."""
        return self.js("""
            const e = [...document.querySelectorAll(arguments[0])].find(e => e.innerText.trim() === arguments[1]);
            if (!e) return false;
            const r = e.getBoundingClientRect(), x = (r.left + r.right) / 2, y = (r.top + r.bottom) / 2;
            return r.width > 0 && r.left >= 0 && r.right <= innerWidth && r.bottom <= innerHeight
                && e.contains(document.elementFromPoint(x, y));""", selector, text)
