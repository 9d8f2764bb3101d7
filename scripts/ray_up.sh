#!/usr/bin/env bash
# Starts a two-node Ray cluster on this machine for the cluster tests (idempotent): a head and a
# second node, both on the loopback address, each with its own custom resource ("head" and
# "second_node") so a test can place work on either. Prints the head's address.
#
#   scripts/ray_up.sh          start (or reuse, or complete) the cluster
#   scripts/ray_up.sh --down   stop this cluster's processes (other Ray clusters of the machine are left alone)
set -euo pipefail
PORT=${AUTORESEARCH_RAY_PORT:-6390}
CPUS=${AUTORESEARCH_RAY_CPUS:-2}
RAY=${RAY:-ray}
export RAY_AUTH_MODE=${RAY_AUTH_MODE:-disabled} RAY_USAGE_STATS_ENABLED=0
address=127.0.0.1:$PORT

# The session folder of the head listening on $PORT: every process of this cluster names it.
session() {
  ps -eo args= | awk -v port="--gcs_server_port=$PORT" '$0 ~ /gcs_server/ && index($0, port) {
    for (i = 1; i <= NF; i++) if ($i ~ /^--session_dir=/ || $i ~ /^--session-dir=/) { sub(/^--session[-_]dir=/, "", $i); print $i; exit } }'
}
if [ "${1:-}" = "--down" ]; then
  dir=$(session)
  [ -n "$dir" ] || exit 0
  for sig in TERM KILL; do
    # the processes that name the session, and their descendants (workers and agents rename themselves)
    pids=$(ps -eo pid=,ppid=,args= | awk -v dir="$dir" -v gcs=":$PORT " '
      { parent[$1] = $2; if (index($0, dir) || (index($0, "ray.util.client.server") && index($0, gcs))) mine[$1] = 1 }
      END { do { grew = 0; for (p in parent) if (!(p in mine) && (parent[p] in mine)) { mine[p] = 1; grew = 1 } } while (grew)
            for (p in mine) print p }')
    [ -n "$pids" ] && kill -s "$sig" $pids 2>/dev/null || true
    sleep 2
  done
  exit 0
fi
command -v "$RAY" >/dev/null || { echo "ray: the 'ray' command is not installed (pip install 'ray[default]')" >&2; exit 1; }
# Live nodes at the address; 0 when nothing answers (a dead address makes ray.init retry for
# minutes, so look at the port first and bound the call).
nodes() {
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || { echo 0; return; }
  timeout 30 python - "$address" <<'PY' 2>/dev/null || echo -1
import sys, ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
print(sum(1 for n in ray.nodes() if n["Alive"]))
PY
}
common=(--node-ip-address=127.0.0.1 --num-cpus="$CPUS" --num-gpus=0 --disable-usage-stats)
live=$(nodes)
if [ "$live" = 2 ]; then echo "$address"; exit 0; fi
if [ "$live" = 0 ]; then
  "$RAY" start --head --port="$PORT" "${common[@]}" --include-dashboard=false \
    --ray-client-server-port=$((PORT + 1)) --resources='{"head": 1}' >/tmp/autoresearch-ray-head.log 2>&1 \
    || { echo "ray: the head did not start; see /tmp/autoresearch-ray-head.log" >&2; exit 1; }
elif [ "$live" != 1 ]; then
  echo "ray: port $PORT is taken by something that is not a one- or two-node Ray cluster; stop it (scripts/ray_up.sh --down) or set AUTORESEARCH_RAY_PORT" >&2
  exit 1
fi
"$RAY" start --address="$address" "${common[@]}" --resources='{"second_node": 1}' >/tmp/autoresearch-ray-node.log 2>&1 \
  || { echo "ray: the second node did not start; see /tmp/autoresearch-ray-node.log" >&2; exit 1; }
for _ in $(seq 1 30); do
  if [ "$(nodes)" = 2 ]; then echo "$address"; exit 0; fi
  sleep 1
done
echo "ray: the cluster at $address did not show two live nodes within 30 s" >&2
exit 1
