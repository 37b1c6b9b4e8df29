#!/usr/bin/env bash
# Run a whole cohort on Slurm: one array task per participant, then the group level once
# every task has succeeded (--dependency=afterok). The recommended route for large cohorts:
# each task is an independent Nipype run (MultiProc on the task's CPUs) with its own work
# folder, so a failed task is simply resubmitted and resumes from its cache.
#
#   pipelines/slurm/submit.sh BIDS_DIR OUT_DIR [WORK_DIR] [-- extra sbatch options]
#
# Environment: T2QUANT (default: t2quant on PATH), MAX_PARALLEL (default 50 tasks at once),
# GROUP_CONFIG (default pipelines/asteroid.toml next to this script), PARTICIPANT_ARGS
# (extra options for every participant task, e.g. "--t2-method nonlinear").
set -euo pipefail
if [ $# -lt 2 ]; then
    sed -n '2,12p' "$0"; exit 2
fi
here="$(cd "$(dirname "$0")" && pwd)"
bids="$(realpath "$1")"; out="$(realpath -m "$2")"; work="$(realpath -m "${3:-$out/../work}")"
shift $(( $# >= 3 ? 3 : 2 )); [ "${1:-}" = "--" ] && shift
mkdir -p "$out" "$work/logs"
list="$work/participants.txt"
find "$bids" -maxdepth 1 -type d -name 'sub-*' -printf '%f\n' | sort > "$list"
n=$(wc -l < "$list")
if [ "$n" -eq 0 ]; then echo "no sub-* folders in $bids" >&2; exit 2; fi
export T2QUANT="${T2QUANT:-t2quant}" BIDS_DIR="$bids" OUT_DIR="$out" WORK_DIR="$work" LIST="$list"
export PARTICIPANT_ARGS="${PARTICIPANT_ARGS:-}"
array=$(sbatch --parsable --array="1-$n%${MAX_PARALLEL:-50}" --export=ALL \
        --output="$work/logs/participant_%A_%a.log" "$@" "$here/participant_array.sbatch")
group=$(sbatch --parsable --dependency="afterok:${array}" --export=ALL \
        --output="$work/logs/group_%j.log" "$@" \
        "$here/group.sbatch" "${GROUP_CONFIG:-$here/../asteroid.toml}")
echo "participant array job $array ($n tasks); group job $group after it"
echo "jobs: $array $group"
