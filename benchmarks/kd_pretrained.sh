#!/usr/bin/env bash
# The KD-over-seeds study (src/dermkd/configs/study-kd-pretrained[-shift].yaml), seeds
# added a few at a time so that a cut-off session still leaves finished pairs:
#   bash benchmarks/kd_pretrained.sh random "0 1" "0 1 2" "0 1 2 3 4"
# THREADS (default 2) sets torch's threads per run: two studies side by side at THREADS=1
# train about 1.2x more images per second in all than one at 2 on this 2-core machine.
# Teachers already trained by benchmarks/pretrained_teachers.sh (same profile, data,
# split and seed) are reused instead of trained again.
set -euo pipefail
SPLIT=$1; shift
DERMKD=${DERMKD:-.venv/bin/dermkd}
THREADS=${THREADS:-2}
CONFIG=src/dermkd/configs/study-kd-pretrained.yaml
[ "$SPLIT" = source-shift ] && CONFIG=src/dermkd/configs/study-kd-pretrained-shift.yaml
NAME=$(sed -n 's/^name: //p' "$CONFIG")
TEACHERS=runs/pretrained-teachers/$SPLIT
mkdir -p "runs/$NAME/teachers"
for n in 0 1; do
  src=$TEACHERS/lite$n-partial3 dst=runs/$NAME/teachers/efficientnet_lite$n-s0
  if [ -f "$src/metrics.json" ] && [ ! -e "$dst" ]; then
    cp -r "$src" "$dst"
    [ -f "runs/$NAME/split.csv" ] || cp "$src/split.csv" "runs/$NAME/split.csv"
  fi
done
for seeds in "$@"; do
  tmp=$(mktemp --suffix=.yaml)
  sed -e "s/^seeds: .*/seeds: [$(echo $seeds | sed 's/ /, /g')]/" \
      -e "s/^base:$/base:\n  train: {threads: $THREADS}/" "$CONFIG" > "$tmp"
  "$DERMKD" study "$tmp"
  rm -f "$tmp"
done
