#!/usr/bin/env bash
# System packages the kit needs beyond Python: bubblewrap, the sandbox that runs student code.
# Installs with apt when run as root on Debian/Ubuntu; otherwise says what to ask an admin for.
set -euo pipefail
if command -v bwrap >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing bubblewrap (sandbox for grading student code)"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null
else
  echo "warning: bubblewrap (bwrap) is missing; grading needs it: ask an admin to install the 'bubblewrap' package" >&2
fi
