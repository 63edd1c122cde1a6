#!/usr/bin/env bash
# What tests/test_web.py and tests/test_node.py need beyond Python: Debian's chromium (driven
# headless), the page's npm packages (onnxruntime-web, playwright-core), installed from
# exports/web/package-lock.json, and exports/node's (onnxruntime-node) from its package-lock.json.
# chromium comes from apt-get, only when it is missing and this runs as root; playwright-core
# drives that binary and never downloads a browser of its own. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/web"

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update && apt-get install -y --no-install-recommends chromium
  else
    echo "install-test-deps: chromium is missing; install it (Debian: sudo apt-get install chromium)" >&2
  fi
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "install-test-deps: npm is missing; install Node.js 18 or newer, then run this again" >&2
  exit 1
fi
npm ci --no-audit --no-fund

# onnxruntime-node ships its CPU binaries inside the npm package; its install script would only
# fetch a GPU add-on from outside the registry, so skip it.
cd ../node
ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
