#!/usr/bin/env bash
# Start or stop a clamd of bidproc's own, with the local signature database in config/clamav/.
#   scripts/clamd.sh start [PORT] [RUNDIR]   (defaults: 3310, ./var/clamd)
#   scripts/clamd.sh stop [RUNDIR]
# Prints the clamd address once it answers PING. Production: point DatabaseDirectory at the
# freshclam-updated /var/lib/clamav instead (see config/clamav/README.md).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-start}
if [ "$cmd" = stop ]; then
  rundir=${2:-$here/var/clamd}
  if [ -f "$rundir/clamd.pid" ]; then kill "$(cat "$rundir/clamd.pid")" 2>/dev/null || true; fi
  if [ -f "$rundir/clamd.conf" ]; then
    spool=$(awk '/^TemporaryDirectory /{print $2}' "$rundir/clamd.conf")
    case "$spool" in /dev/shm/bidproc-clamd-*) rm -rf "$spool";; esac
  fi
  exit 0
fi
port=${2:-3310}
rundir=${3:-$here/var/clamd}
mkdir -p "$rundir"
# clamd spools INSTREAM data to its TemporaryDirectory while scanning: keep bid plaintext off disk by
# putting it on tmpfs (/dev/shm) when there is one.
tmpdir="$rundir/tmp"
if [ -d /dev/shm ] && [ -w /dev/shm ]; then tmpdir="/dev/shm/bidproc-clamd-$port"; fi
mkdir -p "$tmpdir" && chmod 700 "$tmpdir"
clamd_bin=$(command -v clamd || echo /usr/sbin/clamd)
[ -x "$clamd_bin" ] || { echo "clamd not found: apt-get install clamav-daemon" >&2; exit 2; }
if [ -f "$rundir/clamd.pid" ] && kill -0 "$(cat "$rundir/clamd.pid")" 2>/dev/null; then
  echo "127.0.0.1:$port"; exit 0
fi
cat > "$rundir/clamd.conf" <<CONF
DatabaseDirectory $here/config/clamav
TCPSocket $port
TCPAddr 127.0.0.1
PidFile $rundir/clamd.pid
LogFile $rundir/clamd.log
TemporaryDirectory $tmpdir
Foreground false
# Bids are large: the defaults (25 MB stream) would refuse them. Content beyond a limit is reported
# (AlertExceedsMax), never silently passed as clean.
StreamMaxLength ${BIDPROC_CLAMD_STREAM_MAX:-4000M}
MaxScanSize ${BIDPROC_CLAMD_MAX_SCAN:-4000M}
MaxFileSize ${BIDPROC_CLAMD_MAX_FILE:-4000M}
AlertExceedsMax yes
MaxRecursion 17
MaxFiles 20000
ScanArchive true
ScanPDF true
ScanOLE2 true
AlertEncrypted false
ReadTimeout 300
MaxThreads 8
SelfCheck 0
CONF
"$clamd_bin" --config-file="$rundir/clamd.conf"
for _ in $(seq 1 150); do
  if python3 - "$port" <<'PY' 2>/dev/null
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.sendall(b"zPING\0"); sys.exit(0 if s.recv(16).startswith(b"PONG") else 1)
PY
  then echo "127.0.0.1:$port"; exit 0; fi
  sleep 0.2
done
echo "clamd did not answer on 127.0.0.1:$port; see $rundir/clamd.log" >&2
exit 2
