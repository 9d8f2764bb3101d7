#!/usr/bin/env bash
# Starts a single-node Slurm on this machine for the cluster tests (idempotent).
# Needs root and Debian's slurm-wlm + munge (installed here when missing). Prints the partition
# name on success; exits non-zero with one line saying why when Slurm cannot be started.
#
#   scripts/slurm_up.sh          start (or reuse) slurmctld, slurmd and munged
#   scripts/slurm_up.sh --down   stop them
set -euo pipefail
PARTITION=${AUTORESEARCH_SLURM_PARTITION:-debug}
STATE=${AUTORESEARCH_SLURM_STATE:-/var/lib/autoresearch-slurm}
CONF=/etc/slurm/slurm.conf

# Stops the daemons this script started, by the pids they wrote.
stop_daemons() {
  for name in slurmd slurmctld; do
    pid=$(cat "$STATE/$name.pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  for _ in $(seq 1 20); do
    pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null || return 0
    sleep 0.5
  done
}
if [ "${1:-}" = "--down" ]; then
  stop_daemons
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "slurm: needs root to start slurmctld/slurmd" >&2; exit 1; }
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge) >/dev/null \
    || { echo "slurm: could not install slurm-wlm and munge with apt-get" >&2; exit 1; }
fi

# munge: a random key owned by the munge user, then the daemon
if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge && chown munge:munge /run/munge /var/log/munge /var/lib/munge
pgrep -x munged >/dev/null || runuser -u munge -- munged

host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
mkdir -p "$STATE/ctld" "$STATE/d" /etc/slurm
want=$(cat <<CONFEOF
# Written by autoresearch-magics scripts/slurm_up.sh: a one-node cluster for tests.
ClusterName=autoresearch
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
# a requeued job waits cred_expire seconds before it may start again (default 120)
AuthInfo=cred_expire=5
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
SchedulerType=sched/backfill
# look at the queue every few seconds, so a requeued job starts soon after its wait
SchedulerParameters=sched_interval=2,bf_interval=2
MpiDefault=none
KillWait=5
MinJobAge=300
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONFEOF
)
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$want" ]; then
  if [ -f "$CONF" ] && ! grep -q "scripts/slurm_up.sh" "$CONF"; then
    echo "slurm: $CONF exists and was not written by this script; not touching it" >&2; exit 1
  fi
  printf '%s\n' "$want" > "$CONF"
  stop_daemons
fi
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 1 30); do
  state=$(sinfo -h -p "$PARTITION" -o %t 2>/dev/null | head -1 || true)
  case "$state" in
    idle*|mix*|alloc*) echo "$PARTITION"; exit 0 ;;
    down*|drain*) scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true ;;
  esac
  sleep 1
done
echo "slurm: node $host did not become idle in 30 s (state: ${state:-none}); see $STATE/slurmctld.log" >&2
exit 1
