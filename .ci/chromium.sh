#!/usr/bin/env bash
# Install Debian's Chromium and its WebDriver for the browser tests of the web UI
# (tests/ui/test_browser.py, bench/ui.py; Selenium itself comes with .ci/setup's dev extra).
# Idempotent. Checks that the two are one version (chromedriver drives only its own Chromium)
# and that the browser starts headless, so a broken install fails here, not as a skipped test.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
browser=$(chromium --version 2>/dev/null | grep -oE '[0-9]+(\.[0-9]+)+' | head -n 1)
driver=$(chromedriver --version 2>/dev/null | grep -oE '[0-9]+(\.[0-9]+)+' | head -n 1)
if [ "$browser" != "$driver" ]; then
  echo "chromium $browser and chromedriver $driver differ: apt-get install chromium chromium-driver" >&2
  exit 1
fi
profile=$(mktemp -d /tmp/mlreg-chromium-check.XXXXXX)
trap 'rm -rf "$profile"' EXIT
timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --dump-dom 'data:text/html,<p>ok</p>' 2>/dev/null | grep -q '<p>ok</p>' ||
  { echo "headless chromium $browser did not start" >&2; exit 1; }
echo "chromium and chromedriver $browser"
