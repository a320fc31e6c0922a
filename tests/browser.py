"""Headless Chromium for tests: the DOM after a page's scripts ran, a screenshot, the network
requests a page attempted. The binary comes from the `chromium` fixture (tests/conftest.py;
scripts/setup_chromium.sh installs it).

Every call is a fresh browser with a fresh profile (no state between calls), run headless with
--no-sandbox (tests run as root) and without background networking. Pages are local files.
--virtual-time-budget lets timers and scripts finish before the result is taken: virtual time
runs faster than the clock, so a 3000 ms budget usually costs well under a second.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
from pathlib import Path

__all__ = ["BASE_FLAGS", "dump_dom", "network_requests", "screenshot"]

# Headless, as root, no GPU, /tmp instead of a small /dev/shm, and no requests of the browser's own
# (updates, sync, default apps) in the way of network_requests.
BASE_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
)

# stderr lines Chromium prints on every run in a container (no D-Bus, Debian's launcher script
# misreading /dev/shm's size): left out of the tails in error messages.
_NOISE = re.compile(r"dbus|unexpected operator|Fontconfig error")


def _stderr_tail(stderr: bytes, lines: int = 20) -> str:
    kept = [line for line in stderr.decode("utf-8", "replace").splitlines() if not _NOISE.search(line)]
    return "\n".join(kept[-lines:]) or "(nothing but the usual D-Bus noise)"


def _run(chromium: str, page: Path, flags: list[str], profile: Path, timeout_s: float) -> subprocess.CompletedProcess:
    """Runs chromium on `page` (a local file) in its own process group; the whole group is killed on timeout."""
    if not Path(page).is_file():
        raise FileNotFoundError(page)
    cmd = [chromium, *BASE_FLAGS, f"--user-data-dir={profile}", *flags, Path(page).resolve().as_uri()]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"chromium did not finish {Path(page).name} in {timeout_s:g}s; stderr:\n{_stderr_tail(err)}") from None
    if proc.returncode != 0:
        raise AssertionError(f"chromium exited with {proc.returncode} on {Path(page).name}; stderr:\n{_stderr_tail(err)}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def dump_dom(chromium: str, page: Path, *, timeout_s: float = 60, wait_ms: int = 3000) -> str:
    """The serialized DOM of `page` once its scripts ran and `wait_ms` of (virtual) time passed.

    An inline script's changes to the document are in it; a script that did not run (blocked by
    the page's Content-Security-Policy, a syntax error) left no trace. Raises AssertionError with
    chromium's stderr when it fails, times out or prints nothing.
    """
    with tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True) as tmp:
        done = _run(chromium, page, [f"--virtual-time-budget={wait_ms}", "--dump-dom"], Path(tmp) / "profile", timeout_s)
    dom = done.stdout.decode("utf-8", "replace")
    if not dom.strip():
        raise AssertionError(f"chromium printed no DOM for {Path(page).name}; stderr:\n{_stderr_tail(done.stderr)}")
    return dom


def screenshot(
    chromium: str,
    page: Path,
    out: Path,
    *,
    width: int = 1400,
    height: int = 4000,
    wait_ms: int = 3000,
    timeout_s: float = 60,
) -> Path:
    """A PNG of the first `width` x `height` CSS pixels of `page` (after `wait_ms` of virtual time), written to `out`."""
    out = Path(out).resolve()
    out.unlink(missing_ok=True)
    flags = [f"--virtual-time-budget={wait_ms}", f"--screenshot={out}", f"--window-size={width},{height}", "--hide-scrollbars"]
    with tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True) as tmp:
        done = _run(chromium, page, flags, Path(tmp) / "profile", timeout_s)
    if not out.is_file():
        raise AssertionError(f"chromium wrote no screenshot {out}; stderr:\n{_stderr_tail(done.stderr)}")
    data = out.read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n") or len(data) < 200:
        raise AssertionError(f"{out} is not a PNG image ({len(data)} bytes)")
    return out


# Schemes that never reach the network.
_LOCAL = ("file:", "data:", "blob:", "about:", "chrome:", "chrome-extension:", "chrome-error:", "devtools:")


def network_requests(chromium: str, page: Path, *, timeout_s: float = 60, wait_ms: int = 3000) -> list[str]:
    """The non-local URLs `page` tried to reach (in first-attempt order, each once), whether or not they answered.

    Read from Chromium's NetLog (--log-net-log): every URL request the page or its frames started
    (images, scripts, stylesheets, CSS url(), fetch/XHR, beacons, iframes, WebSockets), plus
    `scheme://host` for host lookups the page asked for without a request (<link rel=preconnect>,
    <link rel=dns-prefetch>). The browser's own requests (component updates, network time,
    account checks) have no initiating origin and are left out. A request the page's
    Content-Security-Policy blocks never reaches the network and is not listed. Requests the page
    starts after `wait_ms` of virtual time may be missed.
    """
    with tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True) as tmp:
        log = Path(tmp) / "netlog.json"
        flags = [f"--virtual-time-budget={wait_ms}", f"--log-net-log={log}", "--dump-dom"]
        done = _run(chromium, page, flags, Path(tmp) / "profile", timeout_s)
        if not log.is_file():
            raise AssertionError(f"chromium wrote no NetLog for {Path(page).name}; stderr:\n{_stderr_tail(done.stderr)}")
        text = log.read_text(encoding="utf-8", errors="replace")
    try:
        netlog = json.loads(text)
    except json.JSONDecodeError:  # not closed (chromium ended abruptly): close the events list
        netlog = json.loads(text.rstrip().rstrip(",") + "]}")
    constants = netlog["constants"]
    event_type = {v: k for k, v in constants["logEventTypes"].items()}
    source_type = {v: k for k, v in constants["logSourceType"].items()}
    found: dict[str, None] = {}
    for event in netlog.get("events", []):
        params = event.get("params") or {}
        kind = event_type.get(event.get("type"))
        if kind == "URL_REQUEST_START_JOB":
            # The page's requests carry its origin ("null" for a file:// page); the browser's own carry none.
            if params.get("initiator") == "not an origin":
                continue
            url = str(params.get("url", ""))
        elif kind == "HOST_RESOLVER_MANAGER_REQUEST" and source_type.get(event["source"]["type"]) == "NETWORK_SERVICE_HOST_RESOLVER":
            url = str(params.get("host", ""))  # "http://host": a preconnect / DNS prefetch hint
        else:
            continue
        if url and not url.startswith(_LOCAL):
            found.setdefault(url)
    return list(found)
