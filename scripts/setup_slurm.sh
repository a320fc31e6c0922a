#!/usr/bin/env bash
# Make a single-node SLURM cluster available on this machine for the slurm tests. Idempotent.
#   1. install slurm-wlm and munge if missing (Debian/Ubuntu, needs root)
#   2. write /etc/slurm/slurm.conf: one node (this host), one partition, no accounting, no
#      cgroups; the node declares more CPUs than the hardware has (config_overrides) so that
#      several 1-CPU array tasks run at once on a small machine
#   3. start munged, slurmctld and slurmd directly in the background (no systemd here; logs in
#      /var/log/slurm/), restarting them when the config changed, and wait until the node is
#      usable (a node left down/drained by an earlier run is resumed)
# Progress goes to stderr; the last line, on stdout, is the partition name.
# Settings: HARNESS_SLURM_PARTITION (debug), HARNESS_SLURM_CPUS (8, declared CPUs of the node).
# Usage: partition=$(scripts/setup_slurm.sh)
set -euo pipefail

PARTITION=${HARNESS_SLURM_PARTITION:-debug}
CPUS=${HARNESS_SLURM_CPUS:-8}
NODE=$(hostname -s)
CONF=/etc/slurm/slurm.conf
LOGDIR=/var/log/slurm
say() { echo "setup_slurm: $*" >&2; }

need=()
for cmd in slurmctld slurmd sinfo sbatch; do command -v $cmd >/dev/null 2>&1 || need=(slurm-wlm); done
command -v munged >/dev/null 2>&1 || need+=(munge)
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The pid in pid file $1 if that process is alive and is named $2 (a stale file may name a reused pid).
daemon_pid() {
    local pid
    [ -s "$1" ] || return 1
    pid=$(cat "$1")
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] && echo "$pid"
}
# Stops that daemon (only that process) and waits until it is gone.
stop_daemon() {
    local pid
    pid=$(daemon_pid "$1" "$2") || return 0
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
}

# munge: a key (the package usually creates one), then the daemon, run as the munge user.
install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
install -d -o munge -g munge -m 0711 /var/lib/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    say "creating /etc/munge/munge.key"
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
fi
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "starting munged (log: /var/log/munge/munged.log)"
    stop_daemon /run/munge/munged.pid munged   # one that stopped answering or is shutting down
    runuser -u munge -- /usr/sbin/munged --force >&2
    for _ in $(seq 1 20); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.25
    done
    munge -n | unmunge >/dev/null || { say "munged does not answer; see /var/log/munge/munged.log"; exit 1; }
fi

# slurm.conf for this machine; replaced (and the daemons restarted) only when it changes.
mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
install -d -m 0755 /etc/slurm "$LOGDIR" /var/spool/slurmctld /var/spool/slurmd
new=$(mktemp)
trap 'rm -f "$new"' EXIT
cat >"$new" <<EOF
# Written by scripts/setup_slurm.sh: a single-node test cluster on $NODE. Rerun the script to update.
ClusterName=harness
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
# No cgroups in this container: track processes through /proc, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
# No accounting daemon (sacct does not work; squeue/scontrol do).
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# The node's declared CPUs/memory are taken from this file, not from the hardware.
SlurmdParameters=config_overrides
ReturnToService=2
# SLURM's default: a scancelled or preempted worker has 30 s after SIGTERM to record its trial
KillWait=30
InactiveLimit=0
MinJobAge=300
SlurmdTimeout=300
SlurmctldTimeout=120
Waittime=0
NodeName=$NODE NodeHostname=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$CPUS ThreadsPerCore=1 RealMemory=$mem_mb State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
changed=
if ! cmp -s "$new" "$CONF"; then
    say "writing $CONF (node $NODE, $CPUS CPUs, ${mem_mb} MB, partition $PARTITION)"
    cp "$new" "$CONF"
    chmod 0644 "$CONF"
    changed=1
fi

if [ -n "$changed" ]; then
    stop_daemon /run/slurmd.pid slurmd
    stop_daemon /run/slurmctld.pid slurmctld
fi

if ! scontrol ping 2>/dev/null | grep -q 'is UP'; then
    say "starting slurmctld (log: $LOGDIR/slurmctld.log)"
    stop_daemon /run/slurmctld.pid slurmctld   # one that stopped answering or is shutting down
    slurmctld -i >&2
    for _ in $(seq 1 60); do
        scontrol ping 2>/dev/null | grep -q 'is UP' && break
        sleep 0.5
    done
    scontrol ping 2>/dev/null | grep -q 'is UP' || { say "slurmctld did not answer in 30s; see $LOGDIR/slurmctld.log"; exit 1; }
fi
start_slurmd() {
    daemon_pid /run/slurmd.pid slurmd >/dev/null && return 0
    say "starting slurmd (log: $LOGDIR/slurmd.log)"
    slurmd -N "$NODE" >&2
}

# Wait until the node takes jobs; resume it if an earlier run left it down or drained.
# slurmd is (re)started inside the loop: one that was shutting down may exit meanwhile.
state=
for _ in $(seq 1 60); do
    start_slurmd
    state=$(sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -n 1)
    case "$state" in
        idle | mixed | allocated | completing) daemon_pid /run/slurmd.pid slurmd >/dev/null && break ;;
        down | drained | draining | drain | fail | failing)
            say "node $NODE is $state: resuming it"
            scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;;
    esac
    sleep 0.5
done
case "$state" in
    idle | mixed | allocated | completing) daemon_pid /run/slurmd.pid slurmd >/dev/null || { say "slurmd exited; see $LOGDIR/slurmd.log"; exit 1; } ;;
    *) say "node $NODE is '${state:-unknown}' after 30s; see $LOGDIR/slurmd.log and $LOGDIR/slurmctld.log"; exit 1 ;;
esac
say "SLURM $(sinfo -V | awk '{print $2}') answers: node $NODE ($CPUS CPUs) is $state in partition $PARTITION"
echo "$PARTITION"
