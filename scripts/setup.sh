#!/usr/bin/env bash
# Install everything bidproc needs on a fresh Debian machine, and start the local services the test
# suite talks to (PostgreSQL, Redis). Idempotent: run it as often as you like.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

need_apt=()
command -v clamd >/dev/null 2>&1 || [ -x /usr/sbin/clamd ] || need_apt+=(clamav-daemon)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
[ -e /usr/lib/x86_64-linux-gnu/libmagic.so.1 ] || [ -e /usr/lib/aarch64-linux-gnu/libmagic.so.1 ] || need_apt+=(libmagic1)
command -v pg_ctlcluster >/dev/null 2>&1 || need_apt+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
python3 -c "import venv, ensurepip" 2>/dev/null || need_apt+=(python3-venv)
# PDF reports: WeasyPrint lays them out with Pango/HarfBuzz and DejaVu fonts; poppler-utils (pdftoppm,
# pdftotext) renders them back for the tests and for a person to look at.
for lib in libpangoft2-1.0.so.0 libharfbuzz-subset.so.0; do
  ldconfig -p | grep "$lib" >/dev/null || need_apt+=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0)
done
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
command -v pdftoppm >/dev/null 2>&1 || need_apt+=(poppler-utils)
# The verification page is tested in a real browser: Debian's Chromium and its driver (Selenium).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
# The durability test watches the local stores' fsync of directories with strace.
command -v strace >/dev/null 2>&1 || need_apt+=(strace)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# Debian starts clamav-daemon/freshclam with the package; bidproc runs its own clamd (scripts/clamd.sh),
# and freshclam has no network here.

# PostgreSQL on 127.0.0.1:5432 with trust auth for local tests.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  version=$(ls /etc/postgresql | sort -n | tail -1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  if ! grep -q "bidproc-tests" "$hba"; then
    $SUDO sed -i '1i host all all 127.0.0.1/32 trust # bidproc-tests\nlocal all all trust # bidproc-tests' "$hba"
  fi
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || $SUDO pg_ctlcluster "$version" main start
  for _ in $(seq 1 50); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.2; done
fi
# Redis on 127.0.0.1:6379, nothing kept on disk.
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  mkdir -p /tmp/bidproc-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir /tmp/bidproc-redis
  for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && break; sleep 0.2; done
fi

# RabbitMQ on 127.0.0.1:5672 (guest/guest), for the test that runs the pipeline on it.
if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq rabbitmq-server >/dev/null
  fi
  $SUDO rabbitmq-server -detached || true
  for _ in $(seq 1 150); do (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && break; sleep 0.4; done
fi

# Python environment.
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install -q -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import bidproc, pyhanko, pikepdf, magic, dramatiq, minio" 
echo "setup: ready (.venv, clamd binary, PostgreSQL, Redis, RabbitMQ)"
