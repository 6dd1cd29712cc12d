#!/usr/bin/env bash
# The tuned KD study (src/dermkd/configs/study-kd-tuned.yaml, or its source-shift twin
# study-kd-tuned-shift.yaml given as CONFIG) as two studies side by side at one torch thread
# each into one study folder: seeds 0, 2, 4 with the KD runs first (so the shared teacher and
# its logit store are made at once), and seeds 1, 3 with the baselines first (by the time
# they need the teacher, it is done). A last pass fills the results table with every
# finished run.
#   [CONFIG=...yaml] [SEEDS_A="0, 2, 4" SEEDS_B="1, 3" (empty: one lane) FINAL=1] bash benchmarks/kd_tuned.sh
#   python benchmarks/kd_seeds.py runs/<study name>
set -euo pipefail
DERMKD=${DERMKD:-.venv/bin/dermkd}
CONFIG=${CONFIG:-src/dermkd/configs/study-kd-tuned.yaml}
NAME=$(sed -n 's/^name: *//p' "$CONFIG")
part() {  # $1: the seeds, comma separated; $2: the strategy order
  local tmp; tmp=$(mktemp --suffix=.yaml)
  sed -e "s/^seeds: .*/seeds: [$1]/" -e "s/^base:$/base:\n  train: {threads: 1}/" \
      -e "s/strategy: \[baseline, standard\]/strategy: [$2]/" "$CONFIG" > "$tmp"
  "$DERMKD" study "$tmp" > "runs/$NAME-${1//, /}.log" 2>&1
  rm -f "$tmp"
}
mkdir -p runs
part "${SEEDS_A:-0, 2, 4}" "standard, baseline" & first=$!
sleep 60  # the first one pins the study's split
SEEDS_B=${SEEDS_B-1, 3}  # empty: one lane only
if [ -n "$SEEDS_B" ]; then part "$SEEDS_B" "baseline, standard"; fi
wait $first
if [ "${FINAL:-1}" = 1 ]; then part "0, 1, 2, 3, 4" "baseline, standard"; fi
