#!/usr/bin/env bash
# Teachers on isic9, cpu profile (112 px, 12 epochs, fp32), on the random and the
# source-shift split: pretrained EfficientNet-Lite0/1/2 with partial (last 3 block groups
# + head) and full fine-tuning, against ResNet-50 from scratch. Each run is resumable;
# the summary is docs/results/pretrained-teachers.md (benchmarks/pretrained_teachers.py).
#   [SPLITS="random source-shift"] [THREADS=2] bash benchmarks/pretrained_teachers.sh [runs/pretrained-teachers]
set -euo pipefail
OUT=${1:-runs/pretrained-teachers}
DATA=${DATA:-../shared/data/isic9/Train}
DERMKD=${DERMKD:-.venv/bin/dermkd}
SPLITS=${SPLITS:-random source-shift}
THREADS=${THREADS:-2}
train() {  # split name model stages pretrained
  local split=$1 name=$2 model=$3 stages=$4 pre=$5
  /usr/bin/time -f "%e s wall, %M KB peak" "$DERMKD" train --data "$DATA" --profile cpu --out "$OUT/$split" \
    --name "$name" --model "$model" --pretrained "$pre" --trainable-stages "$stages" --split-strategy "$split" \
    --threads "$THREADS"
}
for split in $SPLITS; do
  for n in 0 1 2; do train "$split" "lite$n-partial3" "efficientnet_lite$n" 3 imagenet; done
  train "$split" lite0-full efficientnet_lite0 all imagenet
done
for split in $SPLITS; do train "$split" resnet50-scratch resnet50 all none; done
for split in $SPLITS; do
  for n in 1 2; do train "$split" "lite$n-full" "efficientnet_lite$n" all imagenet; done
done
