#!/usr/bin/env bash
# A run's test split predicted in the ISIC submission format and scored twice: by dermkd
# and by the official scorer (isic-challenge-scoring; 5.6.0 is the newest on Python 3.11,
# so it lives in its own venv: python3.11 -m venv /tmp/isic && /tmp/isic/bin/pip install
# isic-challenge-scoring==5.6.0, then SCORER=/tmp/isic/bin/isic-challenge-scoring).
#   bash benchmarks/isic_scoring.sh RUN [DATA_ROOT] [OUT_DIR]
set -euo pipefail
RUN=$1; DATA=${2:-../shared/data/isic9/Train}; OUT=${3:-runs/isic-scoring}
DERMKD=${DERMKD:-.venv/bin/dermkd}; SCORER=${SCORER:-isic-challenge-scoring}
mkdir -p "$OUT"
# the run's test images, as absolute paths (a CSV list's relative paths are read from its own folder)
python3 - "$RUN/split.csv" "$DATA" "$OUT/test-images.csv" <<'PY'
import csv, os, sys
split, root, out = sys.argv[1:]
with open(split, newline="") as fh, open(out, "w", newline="") as dst:
    w = csv.writer(dst); w.writerow(["path"])
    w.writerows([os.path.abspath(os.path.join(root, r["path"]))] for r in csv.DictReader(fh) if r["split"] == "test")
PY
"$DERMKD" predict "$RUN" "$OUT/test-images.csv" --out "$OUT/predictions.csv"
"$DERMKD" evaluate "$OUT/predictions.csv" --data "$DATA" --truth-out "$OUT/truth.csv" --output "$OUT/dermkd-metrics.json"
# The official scorer fails on a category without a positive in the truth (its AUC above 80%
# sensitivity has no points): isic9's default split has no seborrheic keratosis in test. Such
# columns are dropped from both files, the predictions renormalised over the rest.
python3 - "$OUT" <<'PY'
import csv, sys
out = sys.argv[1]
truth = list(csv.DictReader(open(f"{out}/truth.csv")))
pred = {r["image"]: r for r in csv.DictReader(open(f"{out}/predictions.csv"))}
cols = [c for c in truth[0] if c != "image"]
keep = [c for c in cols if any(float(r[c]) for r in truth)]
print("categories without a test image, left out for the official scorer:", [c for c in cols if c not in keep] or "none")
for name, rows in (("truth", truth), ("predictions", [pred[r["image"]] for r in truth])):
    with open(f"{out}/{name}-scored.csv", "w", newline="") as fh:
        w = csv.writer(fh); w.writerow(["image", *keep])
        for r in rows:
            total = sum(float(r[c]) for c in keep)
            w.writerow([r["image"], *(f"{float(r[c]) / total:.6f}" for c in keep)])
PY
"$SCORER" classification "$OUT/truth-scored.csv" "$OUT/predictions-scored.csv" > "$OUT/official-score.txt" 2>/dev/null
echo "official: $(grep balanced_accuracy "$OUT/official-score.txt")"
python3 -c "import json,sys; print('dermkd:   balanced_accuracy', json.load(open(sys.argv[1]))['balanced_accuracy'])" "$OUT/dermkd-metrics.json"
