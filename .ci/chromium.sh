#!/usr/bin/env bash
# Install Debian's headless-capable Chromium and its WebDriver for the browser tests of the web
# UI (tests/server/ui/test_browser.py). Idempotent. Prints the chromedriver path.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
command -v chromedriver
