#!/usr/bin/env bash
# Services and system packages the test suite talks to. Idempotent; safe on a fresh machine.
# Tests that need something this script cannot provide skip with a message saying what.
set -u

have() { command -v "$1" >/dev/null 2>&1; }

# PostgreSQL on 127.0.0.1:5432 (the machines we use run one; start it if it stopped).
if have pg_isready && ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if have pg_ctlcluster && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
fi
# Debian's Chromium for the console's browser tests (driven by Playwright through
# executable_path; never `playwright install`, which downloads a browser of its own).
if ! have chromium && [ "$(id -u)" = "0" ] && have apt-get; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
    >/tmp/mantissa-chromium-install.log 2>&1 \
    || echo "test-deps: could not install chromium (see /tmp/mantissa-chromium-install.log)"
fi
# OpenJDK 17 for the Spark engine tests (pyspark local mode).
if ! have java && [ "$(id -u)" = "0" ] && have apt-get; then
  (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless \
    || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless)) \
    >/tmp/mantissa-java-install.log 2>&1 \
    || echo "test-deps: could not install Java (see /tmp/mantissa-java-install.log); Spark tests will skip"
fi
# Azurite (Azure Blob emulator) for the lake-in-Azure tests, from npm into a cache folder.
AZURITE_DIR="${MANTISSA_AZURITE_DIR:-$HOME/.cache/mantissa-azurite}"
if have npm && [ ! -x "$AZURITE_DIR/node_modules/.bin/azurite-blob" ]; then
  mkdir -p "$AZURITE_DIR" \
    && npm install --prefix "$AZURITE_DIR" --no-audit --no-fund --loglevel=error azurite@3 \
      >/tmp/mantissa-azurite-install.log 2>&1 \
    || echo "test-deps: could not install Azurite (see /tmp/mantissa-azurite-install.log); Azure lake tests will skip"
fi
# Splunk's own HEC client (npm splunk-logging) for the HEC receiver's shipper test.
# (Fluent Bit and Vector are not in Debian's archive; no other registry is reachable.)
HEC_CLIENT_DIR="${MANTISSA_HEC_CLIENT_DIR:-$HOME/.cache/mantissa-hec-client}"
if have npm && [ ! -d "$HEC_CLIENT_DIR/node_modules/splunk-logging" ]; then
  mkdir -p "$HEC_CLIENT_DIR" \
    && npm install --prefix "$HEC_CLIENT_DIR" --no-audit --no-fund --loglevel=error splunk-logging@0.11 \
      >/tmp/mantissa-hec-client-install.log 2>&1 \
    || echo "test-deps: could not install splunk-logging (see /tmp/mantissa-hec-client-install.log); the HEC shipper test will skip"
fi
exit 0
