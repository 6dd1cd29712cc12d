#!/usr/bin/env bash
# Copy the small result files of a study (results tables, split, study.yaml and each run's
# config/env/history/metrics/predictions) into a docs folder, without checkpoints or stores:
#   bash benchmarks/copy_small_files.sh runs/kd-pretrained docs/results/pretrained-teachers/kd-pretrained
set -euo pipefail
SRC=$1 DST=$2
mkdir -p "$DST"
for f in results.csv results.parquet split.csv study.yaml; do [ -f "$SRC/$f" ] && cp "$SRC/$f" "$DST/"; done
for run in "$SRC"/runs/* "$SRC"/teachers/*; do
  [ -f "$run/metrics.json" ] || continue
  rel=${run#"$SRC"/}; mkdir -p "$DST/$rel"
  for f in config.yaml env.json history.csv metrics.json predictions.csv; do [ -f "$run/$f" ] && cp "$run/$f" "$DST/$rel/"; done
done
