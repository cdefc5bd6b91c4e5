#!/bin/sh
# Install the Debian packages the Z39.50/SRU harvester and its tests need:
#   libyaz5      the YAZ library (ZOOM C API) loaded through ctypes (libyaz.so.5)
#   libyaz-dev   pqf.properties (CQL -> PQF mapping for the test Zebra server)
#   yaz          yaz-client (the benchmark baseline) and yaz-marcdump
#   idzebra-2.0  the Zebra Z39.50/SRU server the tests harvest from (and `unioncat publish zebra` serves)
#   redis-server the job queue (rq) for distributed runs; tests start their own on loopback
#   postgresql   the production store; tests start a throwaway cluster (initdb + pg_ctl)
#   chromium, fonts-wqy-microhei
#                headless browser tests of the web catalogue, with a font that renders Chinese
#   xmlsec1      signs and checks SAML 2.0 messages and metadata for reader sign-on (pysaml2 runs it)
#   unzip        unpacks the Elasticsearch distribution the tests fetch with Maven
#   maven        fetches that distribution (tests/peers/elastic.py; it runs on Java 21+, not in Debian 12:
#                Temurin 25 in /usr/lib/jvm or UNIONCAT_ES_JAVA_HOME)
#   python3-venv the distribution's interpreter makes the virtualenv (scripts/pick-python.sh: Debian builds it
#                with PGO and LTO, ~10% less CPU than a default source build)
#   gcc, python3-dev
#                compile with Cython: tests/test_compiled.py's toy package, and the record-handling
#                modules where `make compiled` (opt-in, scripts/compile_modules.py) is wanted
# Skips apt entirely when everything is already present; prints what it does.  When another apt or
# dpkg (unattended-upgrades on a fresh machine) holds the lock, waits for it (up to APT_LOCK_TIMEOUT
# seconds, default 600) instead of failing at once.
set -eu
PACKAGES="yaz libyaz5 libyaz-dev idzebra-2.0 redis-server postgresql chromium fonts-wqy-microhei unzip maven xmlsec1 gcc python3-dev python3-venv"
missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    echo "install-system-deps: already installed: $PACKAGES"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-deps: missing:$missing — no apt-get here; install them (or their equivalents) by hand" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install-system-deps: missing:$missing — run as root: apt-get install -y$missing" >&2
        exit 1
    fi
fi
WAIT="-o DPkg::Lock::Timeout=${APT_LOCK_TIMEOUT:-600}"
echo "install-system-deps: installing:$missing (waiting for the dpkg lock if another apt holds it)"
echo "+ $SUDO apt-get $WAIT update"
$SUDO apt-get $WAIT update -qq
echo "+ $SUDO apt-get $WAIT install -y --no-install-recommends$missing"
DEBIAN_FRONTEND=noninteractive $SUDO apt-get $WAIT install -y -qq --no-install-recommends $missing
echo "install-system-deps: done"
