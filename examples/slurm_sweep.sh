#!/usr/bin/env bash
# A keras-adv sweep on a SLURM cluster: a job array whose tasks each run a
# share of the sweep's units (one trained model each), then one job that
# merges them into results.json, results.csv, report.md and the figures.
#
#   bash examples/slurm_sweep.sh                  # submits both jobs
#   CONFIG=my_sweep.toml SHARDS=8 bash examples/slurm_sweep.sh
#
# CONFIG: the sweep's settings (the keys of `keras-adv sweep --config`);
# it must name the run (`name = "..."`) or RUN_DIR must be given. The run's
# folder must be on storage every node sees. A task that fails or runs out
# of time loses only its unit; resubmitting the same script resumes, skipping
# every finished unit. Copy the script and edit the #SBATCH lines (time,
# partition, GPUs) for your cluster.
#
#SBATCH --job-name=keras-adv-sweep
#SBATCH --cpus-per-task=8
#SBATCH --gres=gpu:1
#SBATCH --time=04:00:00
#SBATCH --output=keras-adv-%A_%a.out
set -euo pipefail

CONFIG=${CONFIG:-sweep.toml}
SHARDS=${SHARDS:-4}
OUT=${OUT:-runs}
NAME=${NAME:-$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$CONFIG")}
NAME=${NAME:-default}
KERAS_ADV=${KERAS_ADV:-keras-adv}

if [[ -z "${SLURM_ARRAY_TASK_ID:-}" ]]; then
    # Submitted by hand: the array, then the report once every task ended
    # (afterany: a report of the units that finished, naming those missing).
    export CONFIG SHARDS OUT NAME KERAS_ADV
    array=$(sbatch --parsable --export=ALL --array="0-$((SHARDS - 1))" "$0")
    sbatch --parsable --export=ALL --dependency="afterany:${array%%;*}" \
        --job-name=keras-adv-report --wrap="$KERAS_ADV report $OUT/$NAME"
    echo "submitted the array ($SHARDS tasks) and its report: $OUT/$NAME/report.md"
    exit 0
fi

# One array task: its share of the units (SLURM_ARRAY_TASK_ID of
# SLURM_ARRAY_TASK_COUNT, counted from SLURM_ARRAY_TASK_MIN).
$KERAS_ADV sweep --config "$CONFIG" --out "$OUT" --name "$NAME" --shard slurm
