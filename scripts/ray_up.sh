#!/usr/bin/env bash
# Starts a two-node Ray cluster on this machine for the cluster tests (idempotent): a head and a
# second node, both on the loopback address, each with its own custom resource ("head" and
# "second_node") so a test can place work on either. Prints the head's address.
#
#   scripts/ray_up.sh          start (or reuse) the cluster
#   scripts/ray_up.sh --down   stop both nodes
set -euo pipefail
PORT=${AUTORESEARCH_RAY_PORT:-6390}
CPUS=${AUTORESEARCH_RAY_CPUS:-2}
RAY=${RAY:-ray}
export RAY_AUTH_MODE=${RAY_AUTH_MODE:-disabled}
address=127.0.0.1:$PORT
if [ "${1:-}" = "--down" ]; then
  # `ray stop` ends every Ray process of this machine, so only CI and explicit calls use it
  "$RAY" stop --force >/dev/null 2>&1 || true
  exit 0
fi
command -v "$RAY" >/dev/null || { echo "ray: the 'ray' command is not installed (pip install 'ray[default]')" >&2; exit 1; }
# Live nodes at the address; 0 when nothing answers (a dead address makes ray.init retry for
# minutes, so look at the port first and bound the call).
nodes() {
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || { echo 0; return; }
  timeout 30 python - "$address" <<'PY' 2>/dev/null || echo 0
import sys, ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
print(sum(1 for n in ray.nodes() if n["Alive"]))
PY
}
if [ "$(nodes)" = 2 ]; then echo "$address"; exit 0; fi
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "ray: port $PORT is taken by something that is not a two-node cluster; stop it (scripts/ray_up.sh --down) or set AUTORESEARCH_RAY_PORT" >&2
  exit 1
fi
common=(--node-ip-address=127.0.0.1 --num-cpus="$CPUS" --num-gpus=0 --disable-usage-stats --include-dashboard=false)
"$RAY" start --head --port="$PORT" "${common[@]}" --resources='{"head": 1}' >/tmp/autoresearch-ray-head.log 2>&1 \
  || { echo "ray: the head did not start; see /tmp/autoresearch-ray-head.log" >&2; exit 1; }
"$RAY" start --address="$address" "${common[@]}" --resources='{"second_node": 1}' >/tmp/autoresearch-ray-node.log 2>&1 \
  || { echo "ray: the second node did not start; see /tmp/autoresearch-ray-node.log" >&2; exit 1; }
for _ in $(seq 1 30); do
  if [ "$(nodes)" = 2 ]; then echo "$address"; exit 0; fi
  sleep 1
done
echo "ray: the cluster at $address did not show two live nodes within 30 s" >&2
exit 1
