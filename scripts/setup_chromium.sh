#!/usr/bin/env bash
# Make a headless Chromium available on this machine for the browser tests (the HTML report). Idempotent.
#   1. install Debian's chromium (--no-install-recommends) and a font (fonts-dejavu-core, so text
#      renders in screenshots) if missing (Debian/Ubuntu, needs root); apt-get update only when
#      a package is not installable from the current lists
#   2. check that it works: render a tiny local HTML page whose inline script writes into the
#      DOM (--headless=new --dump-dom) and look for that text in the output
# Runs as root, hence --no-sandbox (Chromium refuses to start as root with its sandbox).
# Progress goes to stderr; the last line, on stdout, is the absolute path of the chromium binary.
# Settings: HARNESS_CHROMIUM (a chromium binary to use instead of the one on PATH; it is checked, not installed).
# Usage: chromium=$(scripts/setup_chromium.sh)
set -euo pipefail

say() { echo "setup_chromium: $*" >&2; }

if [ -n "${HARNESS_CHROMIUM:-}" ]; then
    BIN=$HARNESS_CHROMIUM
    [ -x "$BIN" ] || { say "HARNESS_CHROMIUM=$BIN is not an executable file"; exit 1; }
else
    need=()
    command -v chromium >/dev/null 2>&1 || need+=(chromium)
    # A font, else text in screenshots is missing-glyph boxes (a bare image has no fonts at all).
    [ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
    if [ ${#need[@]} -gt 0 ]; then
        say "installing ${need[*]}"
        export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1   # no needrestart scan (and its noise)
        apt_install() { apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
        # The package lists of a bare image are empty, stale ones may name versions the mirror no
        # longer has: update only then (the lists do not know a package, or installing failed).
        known=1
        for pkg in "${need[@]}"; do apt-cache show "$pkg" >/dev/null 2>&1 || known=; done
        if [ -z "$known" ] || ! apt_install; then
            say "apt-get update"
            apt-get update -qq >&2
            apt_install
        fi
    fi
    BIN=$(command -v chromium) || { say "chromium is not on PATH after installing it"; exit 1; }
fi
BIN=$(readlink -f "$BIN")

# The check: an inline script writes a marker into the DOM; --dump-dom prints the DOM after it ran.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/check.html" <<'EOF'
<!doctype html>
<html><head><meta charset="utf-8"><title>setup_chromium check</title></head>
<body><p id="out">script did not run</p>
<script>document.getElementById("out").textContent = "chromium-ok-" + (6 * 7);</script>
</body></html>
EOF
rc=0
out=$(timeout 120 "$BIN" --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
    --user-data-dir="$tmp/profile" --dump-dom "file://$tmp/check.html" 2>"$tmp/stderr") || rc=$?
if [ "$rc" -ne 0 ]; then
    tail -n 20 "$tmp/stderr" >&2
    [ "$rc" -eq 124 ] && why="timed out after 120s" || why="exit $rc"
    say "$BIN --headless=new --dump-dom failed ($why); its stderr is above"
    exit 1
fi
if ! grep -q 'chromium-ok-42' <<<"$out"; then
    tail -n 20 "$tmp/stderr" >&2
    say "$BIN rendered the check page but its script's output is missing; got: $(head -c 500 <<<"$out")"
    exit 1
fi
say "$("$BIN" --version 2>/dev/null | head -n 1) renders pages headless ($BIN)"
echo "$BIN"
