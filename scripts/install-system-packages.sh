#!/usr/bin/env bash
# System packages the kit needs beyond Python: bubblewrap, the sandbox that runs student code,
# and chromium, the browser the kit's tests use to check that a student's HTML never runs in
# feedback or formgrader pages (tests/test_feedback_browser.py, driven by Playwright).
# Installs with apt when run as root on Debian/Ubuntu; otherwise says what to ask an admin for.
set -euo pipefail
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
