#!/usr/bin/env bash
# System packages the kit needs beyond Python: bubblewrap, the sandbox that runs student code,
# and chromium, the browser the kit's tests use to check that a student's HTML never runs in
# feedback or formgrader pages (tests/test_feedback_browser.py, driven by Playwright).
# Installs with apt when run as root on Debian/Ubuntu; otherwise says what to ask an admin for.
# Also configurable-http-proxy (npm), JupyterHub's proxy, into the checkout's git-ignored .hub/
# for the kit's hub tests (tests/fixtures/hub.py); that needs node and npm, not root.
set -euo pipefail
kit="$(cd "$(dirname "$0")/.." && pwd)"
proxy_version=5.3.0
if ! "$kit/.hub/node_modules/.bin/configurable-http-proxy" --version 2>/dev/null | grep -qx "$proxy_version"; then
  if command -v npm >/dev/null 2>&1; then
    echo "installing configurable-http-proxy $proxy_version into .hub/ (JupyterHub's proxy, for the kit's hub tests)"
    npm install --prefix "$kit/.hub" --no-audit --no-fund --loglevel=error \
      "configurable-http-proxy@$proxy_version" >/dev/null \
      || echo "warning: npm could not install configurable-http-proxy $proxy_version into .hub/; the kit's JupyterHub tests are skipped without it" >&2
  else
    echo "warning: npm not found: the kit's JupyterHub tests need node and npm (configurable-http-proxy $proxy_version); they are skipped without it" >&2
  fi
fi
missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} (sandbox for grading student code; browser for the kit's tests)"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "warning: missing system packages: ${missing[*]}; grading needs 'bubblewrap', the kit's browser tests 'chromium': ask an admin to install them" >&2
fi
