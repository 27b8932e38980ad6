#!/usr/bin/env bash
# The HTML report's browser tests need Chromium; only `make test` installs it (`make bench`
# never does). As root on Debian it comes from Debian's package; elsewhere this says how.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-browser: no chromium for the report's browser tests; install it (Debian: apt-get install chromium) as root" >&2
  exit 0  # the tests that need it fail in CI (CI=true) and skip elsewhere, with this reason
fi
echo "ensure-browser: installing chromium from Debian" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q chromium >/dev/null
