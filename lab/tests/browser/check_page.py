"""Check a `lab report` or `lab serve` page in a real headless browser: the page
loads with no console error, every progress chart is drawn, and the marks seen
in a screenshot of each chart are as many as the experiments its figure says it
holds (`data-experiments`). Owns the DevTools conversation with Debian's
`chromium-headless-shell` (CDP over the `--remote-debugging-pipe` fds 3 and 4,
NUL-delimited JSON), the PNG decoder (stdlib zlib and numpy) and the mark counter.

    check_page.py URL [--browser PATH] [--timeout SECONDS] [--save DIR]

URL is any address the browser can open (file://, http://127.0.0.1:PORT/).
Prints one JSON report on stdout: {url, console_errors, figures: [{leaf,
experiments, drawn, marks: {kept, discarded, crashed}}], failures}. Exit 0 when
there is no failure, 1 when the page failed a check, 2 when the check could not
be made (no browser: `scripts/setup-browser` installs it; the browser died or
ran past the deadline).

Marks are counted from pixels, not the DOM: lab/src/plot.rs draws a kept
experiment as a filled #1b9e4b circle (radius 5), a discard as a #999999 ring
(radius 4, 1 px), a crash as a #d62728 cross (10 px, 2 px wide). The page is
rendered at DEVICE_SCALE, so a 1 px stroke is 3 device pixels and every mark
has a core of pixels in exactly its colour, away from antialiased edges. A mark
is a connected group of core pixels of a size only that mark reaches; nothing
else in the chart is drawn in these colours (gridlines are black at opacity 0.2,
axes and text black, the best line blue, held-out reads purple, the band
translucent blue, the legend a row of those under the plot), and antialiased
text reaches a core colour only in specks. Marks closer than their own width (a chart with
more than about 80 experiments) merge and are counted once.
"""

import argparse
import base64
import fcntl
import json
import os
import select
import shutil
import signal
import sys
import tempfile
import time
import zlib

import numpy as np

SETUP = "scripts/setup-browser"
BROWSER = "chromium-headless-shell"
DEVICE_SCALE = 3
VIEWPORT = (1280, 900)


class CannotCheck(Exception):
    """No verdict on the page: the browser is missing, died or ran out of time."""


# A mark: its core colour, how far a channel may stray from it, and the core
# pixels (in SVG units², times the device pixels per unit squared) below which a
# group is a speck. Measured cores at DEVICE_SCALE 3: discs about 615 px², rings
# 171, crosses 388; the largest speck (text, band edges) 23.
MARKS = {
    "kept": ((0x1B, 0x9E, 0x4B), 24, 40),  # a filled disc of radius 5: about 78 px²
    "discarded": ((0x99, 0x99, 0x99), 10, 8),  # a 1 px ring of radius 4: about 25 px²
    "crashed": ((0xD6, 0x27, 0x28), 24, 16),  # two 2 px strokes of 14 px: about 50 px²
}


class Browser:
    """One headless browser with a fresh profile, spoken to over its DevTools pipe."""

    def __init__(self, executable, deadline):
        self.deadline = deadline
        self.profile = tempfile.mkdtemp(prefix="lab-browser-")
        to_browser, self._out = os.pipe()
        self._in, from_browser = os.pipe()
        # The browser reads fd 3 and writes fd 4: move our ends of the pipes above
        # 4 first, so no dup2 below overwrites a pipe end still to be placed.
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 5) for fd in (to_browser, from_browser)]
        for fd in (to_browser, from_browser):
            os.close(fd)
        self.log = open(os.path.join(self.profile, "browser.log"), "w+b")
        argv = [
            executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--remote-debugging-pipe",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={self.profile}",
            "about:blank",
        ]
        actions = [
            (os.POSIX_SPAWN_DUP2, ends[0], 3),
            (os.POSIX_SPAWN_DUP2, ends[1], 4),
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, self.log.fileno(), 1),
            (os.POSIX_SPAWN_DUP2, self.log.fileno(), 2),
        ]
        # Its own process group, so closing it ends its renderers and helpers too.
        self.pid = os.posix_spawn(executable, argv, os.environ, file_actions=actions, setpgroup=0)
        for fd in ends:
            os.close(fd)
        self._buffer = b""
        self._next_id = 0
        self.events = []

    def close(self):
        for fd in (self._out, self._in):
            os.close(fd)
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def _receive(self, until):
        while b"\0" not in self._buffer:
            left = min(until, self.deadline) - time.monotonic()
            ready = select.select([self._in], [], [], left)[0] if left > 0 else []
            if not ready:
                return None
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                self.log.seek(0)
                tail = self.log.read()[-2000:].decode(errors="replace")
                raise CannotCheck(f"the browser closed its DevTools pipe:\n{tail}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, session=None, **params):
        """Send one command and return its result; events met on the way are kept."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._out, data) :]
        while True:
            reply = self._receive(self.deadline)
            if reply is None:
                raise CannotCheck(f"no answer to {method} before the deadline")
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise CannotCheck(f"{method}: {reply['error'].get('message')}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method):
        """Wait for the event `method` (or take it from those already received)."""
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(i)
            event = self._receive(self.deadline)
            if event is None:
                raise CannotCheck(f"no {method} before the deadline")
            self.events.append(event)

    def drain(self, seconds):
        """Take the events that arrive in the next `seconds` (late console errors)."""
        until = time.monotonic() + seconds
        while (event := self._receive(until)) is not None:
            self.events.append(event)


def console_errors(events):
    """Every error the page reported: console.error and failed asserts, uncaught
    exceptions, and the browser's own error log (a resource that failed to load)."""
    errors = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            errors.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "")
            errors.append(f"uncaught exception: {text}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            errors.append(f"{entry.get('source', 'log')}: {entry.get('text', '')} {entry.get('url', '')}".strip())
    return errors


# The figures, in page order: their leaf, what they claim and where their chart is.
FIGURES_JS = """JSON.stringify([...document.querySelectorAll("figure.progress")].map((figure) => {
  const svg = figure.querySelector("svg");
  const box = svg ? svg.getBoundingClientRect() : null;
  return {
    leaf: figure.closest("[data-leaf]")?.dataset.leaf ?? null,
    experiments: Number(figure.dataset.experiments),
    box: box && { x: box.left + window.scrollX, y: box.top + window.scrollY, width: box.width, height: box.height },
    // SVG units across: the page may scale the chart (max-width: 100%).
    units: svg?.viewBox.baseVal?.width || svg?.width.baseVal.value || null,
  };
}))"""


def decode_png(data):
    """The RGB pixels of a PNG (8-bit RGB or RGBA, not interlaced) as an array."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise CannotCheck("the screenshot is not a PNG")
    pos, idat, header = 8, [], None
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    width, height = (int.from_bytes(header[i : i + 4], "big") for i in (0, 4))
    depth, color, interlace = header[8], header[9], header[12]
    if depth != 8 or color not in (2, 6) or interlace:
        raise CannotCheck(f"unexpected PNG format (depth {depth}, colour type {color}, interlace {interlace})")
    bpp = 3 if color == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8).reshape(height, 1 + width * bpp)
    pixels = np.zeros((height, width * bpp), dtype=np.uint8)
    previous = np.zeros(width * bpp, dtype=np.uint8)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:]
        pixels[y] = previous = unfilter(kind, line, previous, bpp)
    return pixels.reshape(height, width, bpp)[:, :, :3]


def unfilter(kind, line, previous, bpp):
    """One scanline with its PNG filter undone: None, Sub and Up vectorized (what
    Chromium writes); Average and Paeth byte by byte, correct if slow."""
    if kind == 0:
        return line
    if kind == 1:
        return (np.cumsum(line.reshape(-1, bpp), axis=0, dtype=np.uint64) % 256).astype(np.uint8).reshape(-1)
    if kind == 2:
        return line + previous
    out = bytearray(line.tobytes())
    up = previous.tobytes()
    for i in range(len(out)):
        left = out[i - bpp] if i >= bpp else 0
        above = up[i]
        if kind == 3:
            out[i] = (out[i] + ((left + above) >> 1)) & 0xFF
        else:
            corner = up[i - bpp] if i >= bpp else 0
            p = left + above - corner
            pa, pb, pc = abs(p - left), abs(p - above), abs(p - corner)
            predictor = left if pa <= pb and pa <= pc else above if pb <= pc else corner
            out[i] = (out[i] + predictor) & 0xFF
    return np.frombuffer(bytes(out), dtype=np.uint8)


def count_marks(pixels, scale):
    """Marks of each kind in a chart's pixels, `scale` device pixels to a unit of
    the SVG: groups of core pixels of a mark's colour (8-connected) at least as
    large as that mark's core."""
    counts = {}
    for name, (rgb, tolerance, min_area) in MARKS.items():
        near = np.abs(pixels.astype(np.int16) - np.array(rgb, dtype=np.int16)).max(axis=2) <= tolerance
        counts[name] = sum(1 for size in components(near) if size >= min_area * scale**2)
    return counts


def components(mask):
    """The sizes of the 8-connected groups of True pixels."""
    todo = set(zip(*np.nonzero(mask)))
    sizes = []
    while todo:
        stack, size = [todo.pop()], 0
        while stack:
            y, x = stack.pop()
            size += 1
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    if (y + dy, x + dx) in todo:
                        todo.remove((y + dy, x + dx))
                        stack.append((y + dy, x + dx))
        sizes.append(size)
    return sizes


def check(url, executable, timeout, save):
    deadline = time.monotonic() + timeout
    browser = Browser(executable, deadline)
    try:
        target = next(t for t in browser.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        session = browser.call("Target.attachToTarget", targetId=target["targetId"], flatten=True)["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            browser.call(f"{domain}.enable", session)
        width, height = VIEWPORT
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=width,
            height=height,
            deviceScaleFactor=DEVICE_SCALE,
            mobile=False,
        )
        navigated = browser.call("Page.navigate", session, url=url)
        if navigated.get("errorText"):
            raise CannotCheck(f"cannot open {url}: {navigated['errorText']}")
        browser.wait_for("Page.loadEventFired")
        # Errors a script raises just after load (a timer, a late handler) count too.
        browser.drain(0.3)
        figures = json.loads(evaluate(browser, session, FIGURES_JS))
        report = {"url": url, "console_errors": console_errors(browser.events), "figures": []}
        for n, figure in enumerate(figures):
            report["figures"].append(chart(browser, session, figure, n, save))
        return report
    finally:
        browser.close()


def evaluate(browser, session, expression):
    answer = browser.call("Runtime.evaluate", session, expression=expression, returnByValue=True, awaitPromise=True)
    if "exceptionDetails" in answer:
        raise CannotCheck(f"the checker's script failed: {answer['exceptionDetails'].get('text')}")
    return answer["result"]["value"]


def chart(browser, session, figure, n, save):
    """One figure's entry: drawn when its SVG has an area and a screenshot of it
    is not blank, and the marks counted in that screenshot."""
    box = figure["box"]
    entry = {"leaf": figure["leaf"], "experiments": figure["experiments"], "drawn": False, "marks": None}
    if not box or box["width"] <= 0 or box["height"] <= 0:
        return entry
    clip = {**box, "scale": 1}
    shot = browser.call("Page.captureScreenshot", session, format="png", clip=clip, captureBeyondViewport=True)
    png = base64.b64decode(shot["data"])
    if save:
        name = f"{n}-{figure['leaf'] or 'figure'}.png"
        with open(os.path.join(save, name), "wb") as f:
            f.write(png)
    pixels = decode_png(png)
    entry["drawn"] = bool((pixels < 250).any())
    entry["marks"] = count_marks(pixels, pixels.shape[1] / (figure["units"] or box["width"]))
    return entry


def failures(report):
    found = [f"console error: {e}" for e in report["console_errors"]]
    for n, figure in enumerate(report["figures"]):
        name = f"the figure of {figure['leaf']}" if figure["leaf"] else f"figure {n + 1}"
        if not figure["drawn"]:
            found.append(f"{name}: its chart is not drawn")
            continue
        marks = figure["marks"]
        if sum(marks.values()) != figure["experiments"]:
            found.append(f"{name}: {sum(marks.values())} marks drawn ({marks}) for {figure['experiments']} experiments")
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--browser", default=BROWSER, help=f"the headless browser (default: {BROWSER} on PATH)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds for the whole check")
    parser.add_argument("--save", help="write each chart's screenshot into this directory")
    args = parser.parse_args()
    executable = shutil.which(args.browser)
    try:
        if executable is None:
            raise CannotCheck(f"no {args.browser} on PATH: run {SETUP} (apt-get install chromium-headless-shell)")
        report = check(args.url, executable, args.timeout, args.save)
    except CannotCheck as e:
        print(f"check_page: cannot check {args.url}: {e}", file=sys.stderr)
        return 2
    report["failures"] = failures(report)
    print(json.dumps(report, indent=2))
    for failure in report["failures"]:
        print(f"check_page: {failure}", file=sys.stderr)
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
