#!/usr/bin/env bash
# A single-node Slurm cluster on localhost, for trying the batch plugins and the array
# templates on one machine (and for t2quant's integration tests). Needs root and Debian's
# slurmctld, slurmd, slurm-client and munge packages.
#
#   pipelines/slurm/local-cluster.sh start DIR   # writes DIR/slurm.conf, starts the daemons
#   pipelines/slurm/local-cluster.sh stop DIR    # stops them (by PID)
#
# After `start`, export SLURM_CONF=DIR/slurm.conf so sbatch, squeue and scontrol find it.
# No accounting database: sbatch, srun, squeue, scontrol and --dependency work; sacct does not.
set -euo pipefail
action="${1:-}"; dir="${2:-}"
if [ -z "$action" ] || [ -z "$dir" ]; then sed -n '2,10p' "$0"; exit 2; fi
mkdir -p "$dir"; dir="$(realpath "$dir")"
conf="$dir/slurm.conf"

start() {
    for tool in slurmctld slurmd munged sinfo; do
        command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] \
            || { echo "local-cluster: $tool is not installed" >&2; exit 3; }
    done
    [ "$(id -u)" = "0" ] || { echo "local-cluster: needs root" >&2; exit 3; }
    local host cpus mem
    host="$(hostname -s)"
    cpus="$(getconf _NPROCESSORS_ONLN)"  # not nproc: it obeys OMP_NUM_THREADS
    mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
    mkdir -p "$dir/state" "$dir/spool" "$dir/log"
    cat > "$conf" <<EOF
ClusterName=local
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerParameters=kill_invalid_depend
MpiDefault=none
ReturnToService=2
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    if ! pgrep -x munged >/dev/null; then
        mkdir -p /run/munge && chown munge:munge /run/munge
        runuser -u munge -- /usr/sbin/munged
    fi
    /usr/sbin/slurmctld -f "$conf"
    /usr/sbin/slurmd -f "$conf"
    for _ in $(seq 1 60); do
        state="$(SLURM_CONF="$conf" sinfo -h -o %T 2>/dev/null || true)"
        if [ "$state" = "idle" ]; then echo "local-cluster: up ($conf)"; return 0; fi
        sleep 0.5
    done
    echo "local-cluster: node not idle after 30 s (state '$state'); logs in $dir/log" >&2
    stop; exit 4
}

stop() {
    for daemon in slurmd slurmctld; do
        if [ -f "$dir/$daemon.pid" ]; then
            kill "$(cat "$dir/$daemon.pid")" 2>/dev/null || true
        fi
    done
    for daemon in slurmd slurmctld; do
        for _ in $(seq 1 40); do
            [ -f "$dir/$daemon.pid" ] && kill -0 "$(cat "$dir/$daemon.pid")" 2>/dev/null \
                || break
            sleep 0.25
        done
    done
    echo "local-cluster: stopped"
}

case "$action" in
    start) start ;;
    stop) stop ;;
    *) echo "local-cluster: unknown action '$action' (start|stop)" >&2; exit 2 ;;
esac
