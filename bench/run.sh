#!/usr/bin/env bash
# make bench: Kwit against the fixed floor (../shared/bench), back to back, same conditions.
#   1. webhook ingestion   2. duplicate storm   3. invoice pipeline   4. archive export
# Needs PostgreSQL and Redis (see README); installs wrk from Debian's packages if missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
shared=${KWIT_SHARED:-$root/../shared}
export PATH="$root/.venv/bin:$PATH"

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)…"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk; else sudo apt-get install -y wrk; fi
fi
[ -f "$shared/bench/floor.py" ] || { echo "floor not found at $shared/bench (set KWIT_SHARED)"; exit 2; }

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(python3 --version 2>&1), $(date -u +%FT%TZ)"
SECONDS_RUN=${BENCH_SECONDS:-20}
python "$here/webhooks.py" --shared "$shared" --seconds "$SECONDS_RUN"
python "$here/pipeline.py" --orders "${BENCH_ORDERS:-2000}" ${BENCH_PIPELINE_ARGS:-}
python "$here/archive_memory.py" ${BENCH_ARCHIVE_ARGS:-}
