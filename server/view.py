"""A small web page that shows the live picture and lets a click select a neuron.

Standard library only (``http.server`` in a thread). Routes:

- ``GET /``: the page (an image refreshed frame by frame; a click selects the nearest neuron)
- ``GET /layout.json``: neuron positions (fractions of the image, y down), layers, channels
- ``GET /frame.jpg``: the latest frame; ``GET /stream.mjpg``: all frames, as MJPEG
  (``multipart/x-mixed-replace``; what video tools such as TouchDesigner's Web Render TOP,
  VLC or ffmpeg read)
- ``POST /select``: JSON ``{"layer": name, "channels": [int, ...]}`` -> ``on_select``

A POST changes the server, so it must come from the page itself or from a program, never from a
page in the user's browser on another site: its ``Origin`` (when a browser sends one) must be
this server's own, and its ``Host`` an address literal or ``localhost`` (a DNS-rebinding page
sends its own name).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .errors import EarsightError
from .supervise import NICE_PICTURE, Supervisor

log = logging.getLogger(__name__)

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>earsight</title>
<style>
 html,body{margin:0;height:100%;background:#050508;color:#bbb;font:13px sans-serif;overflow:hidden}
 #wrap{position:relative;width:100vw;height:100vh}
 #frame{position:absolute;inset:0;width:100%;height:100%;object-fit:contain;cursor:crosshair}
 #info{position:absolute;left:8px;bottom:6px;pointer-events:none}
</style></head>
<body><div id="wrap"><img id="frame" src="/frame.jpg" alt="earsight"><div id="info">earsight</div></div>
<script>
"use strict";
const img = document.getElementById("frame"), info = document.getElementById("info");
let layout = null;
fetch("/layout.json").then(r => r.json()).then(j => {
  layout = j;
  info.textContent = j.ear + ": " + j.x.length + " neurons - click one to select its channel";
});
// Pull the next frame as soon as one has arrived: the page runs as fast as the network allows.
img.addEventListener("load", () => setTimeout(() => { img.src = "/frame.jpg?t=" + Date.now(); }, 15));
img.addEventListener("error", () => setTimeout(() => { img.src = "/frame.jpg?t=" + Date.now(); }, 500));
img.addEventListener("click", ev => {
  if (!layout) return;
  // object-fit: contain letterboxes the image; undo that to get image fractions.
  const r = img.getBoundingClientRect(), s = Math.min(r.width / layout.width, r.height / layout.height);
  const w = layout.width * s, h = layout.height * s;
  const fx = (ev.clientX - r.left - (r.width - w) / 2) / w, fy = (ev.clientY - r.top - (r.height - h) / 2) / h;
  let best = -1, bestD = Infinity;
  for (let i = 0; i < layout.x.length; i++) {
    const dx = (layout.x[i] - fx) * layout.width, dy = (layout.y[i] - fy) * layout.height, d = dx * dx + dy * dy;
    if (d < bestD) { bestD = d; best = i; }
  }
  if (best < 0) return;
  const name = layout.layers[layout.layer[best]], channel = layout.channel[best];
  fetch("/select", {method: "POST", headers: {"Content-Type": "application/json"},
                    body: JSON.stringify({layer: name, channels: [channel]})})
    .then(r => r.json()).then(j => { info.textContent = j.ok ? name + ":" + channel : "error: " + j.error; });
});
</script></body></html>
"""


MAX_BODY = 64 << 10


def trusted_request(host: str | None, origin: str | None) -> str | None:
    """Why a state-changing request is refused (its Host and Origin headers), or None."""
    if not host:
        return "no Host header"
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    if name != "localhost":
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return f"Host {host!r} is not this server's address"
    if origin is not None and origin != f"http://{host}":
        return f"Origin {origin!r} is not this page"
    return None


class ViewServer:
    """Serves the page in a background thread; ``url`` is where to point a browser.

    ``get_jpeg`` returns the latest frame (called from HTTP threads: it must not touch GL),
    ``get_layout`` the layout dictionary (see :meth:`earsight.render.Renderer.layout_dict`),
    ``on_select(layer, channels)`` applies a click (raise EarsightError to refuse it).
    """

    stream_fps = 30.0

    def __init__(
        self,
        host: str,
        port: int,
        get_jpeg: Callable[[], bytes],
        get_layout: Callable[[], dict[str, Any]],
        on_select: Callable[[str, list[int]], None],
    ) -> None:
        self.host = host
        self.port = port
        self.get_jpeg = get_jpeg
        self.get_layout = get_layout
        self.on_select = on_select
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}/"

    def start(self, supervisor: Supervisor | None = None) -> ViewServer:
        """Bind (port 0 picks a free one; ``port`` then tells which) and serve in a supervised thread."""
        handler = type("Handler", (_Handler,), {"view": self})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._stopping.clear()
        self._thread = (supervisor or Supervisor()).spawn(
            "web", self._server.serve_forever, lambda: not self._stopping.is_set(), nice=NICE_PICTURE
        )
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (open MJPEG streams end within a frame)."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ViewServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    view: ViewServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("view: " + format, *args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value: object) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            self._send(200, PAGE.encode(), "text/html; charset=utf-8")
        elif path == "/layout.json":
            self._json(200, self.view.get_layout())
        elif path == "/frame.jpg":
            self._send(200, self.view.get_jpeg(), "image/jpeg")
        elif path == "/stream.mjpg":
            self._stream()
        else:
            self._json(404, {"ok": False, "error": f"no such page {path}"})

    def _stream(self) -> None:
        boundary = "earsightframe"
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={boundary}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        period = 1.0 / self.view.stream_fps
        try:
            while not self.view._stopping.is_set():
                t0 = time.perf_counter()
                jpeg = self.view.get_jpeg()
                self.wfile.write(
                    f"--{boundary}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                )
                self.wfile.write(jpeg)
                self.wfile.write(b"\r\n")
                self.wfile.flush()
                time.sleep(max(0.0, period - (time.perf_counter() - t0)))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the viewer went away

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        if path != "/select":
            self._json(404, {"ok": False, "error": f"no such action {path}"})
            return
        refused = trusted_request(self.headers.get("Host"), self.headers.get("Origin"))
        if refused:
            log.warning("view: refused a POST: %s", refused)
            self._json(403, {"ok": False, "error": refused})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 <= length <= MAX_BODY:
                raise ValueError(f"a body of {length} bytes (at most {MAX_BODY})")
            body = json.loads(self.rfile.read(length) or b"null")
            layer = body["layer"]
            channels = body.get("channels", [])
            if not isinstance(layer, str) or not isinstance(channels, list):
                raise TypeError("layer must be a string and channels a list")
            # Browsers and Pd alike may send 3.0 for 3: accept whole floats.
            chans = [int(c) for c in channels if float(c) == int(c)]
            if len(chans) != len(channels):
                raise ValueError("channels must be whole numbers")
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            self._json(400, {"ok": False, "error": f"bad selection: {err}"})
            return
        try:
            self.view.on_select(layer, chans)
        except EarsightError as err:
            self._json(400, {"ok": False, "error": str(err)})
            return
        self._json(200, {"ok": True, "layer": layer, "channels": chans})
