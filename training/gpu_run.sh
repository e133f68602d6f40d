#!/usr/bin/env bash
# Train both bundled models at 224 px on one GPU, with their held-out-source tables and
# shortcut audits, in one command:
#
#     training/gpu_run.sh OUT_DIR [--data DIR] [--profile gpu|gpu-shortcut] [-- EXTRA...]
#
# Writes OUT_DIR/models/ (weights, JSON and Markdown cards, splits, histories, audits),
# OUT_DIR/logs/ (one log per model, the hardware) and OUT_DIR/work/ (checkpoints: run the
# same command again after an interruption and it continues from them). Nothing is
# written into the repository; copy OUT_DIR/models/* into models/ to ship.
#
# Data: --data, else shared/data beside the repository root (the GPU machine's copy of
# the working tree), else ../shared/data. EXTRA goes to train_bundled.py for both models
# (the CPU smoke test passes --device cpu --limit 12 --epochs 1 --size 32).
#
# Time budget on one H200 (an estimate, not a measurement: no GPU was lent while this was
# written; the logs record the real images/s per epoch). ResNet-50 at 224 px in bf16 with
# channels_last trains at about 2,500-3,000 images/s on an H100-class GPU. The images are
# decoded once and kept in memory, but augmentation runs per image on the CPU threads
# (16, one per core): on the 2-core development CPU it measured 5-25 ms an image under
# load, so 16 threads may deliver only 1,500-3,000 images/s; the epochs are sized so that
# even 1,500 images/s fits:
#   chest-3class: 24 epochs x 9.7k training images            233k images
#                 4 held-out runs, 6 epochs x 29k images       175k images
#   pediatric-pneumonia: 30 epochs x 3.6k training images     109k images
# 517k images: 3 minutes at 2,800/s, 6 at 1,500/s, plus about a minute for the data
# check (16 threads, once per process), evaluation, audits and start-up. --time-budget
# stops each command at its share (5.5 and 2 minutes) and ships the best epoch so far, so
# the whole run stays under 8 minutes whatever the throughput.
set -euo pipefail

if [[ $# -lt 1 || "$1" == -* ]]; then
    echo "usage: $0 OUT_DIR [--data DIR] [--profile gpu|gpu-shortcut] [-- EXTRA...]" >&2
    exit 2
fi
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
shift
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=""
PROFILE=gpu
EXTRA=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --data) DATA=$2; shift 2 ;;
        --profile) PROFILE=$2; shift 2 ;;
        --) shift; EXTRA=("$@"); break ;;
        *) echo "$0: unknown option $1" >&2; exit 2 ;;
    esac
done
if [[ -z "$DATA" ]]; then
    if [[ -d "$ROOT/shared/data" ]]; then DATA="$ROOT/shared/data"; else DATA="$ROOT/../shared/data"; fi
fi
if [[ ! -f "$DATA/kermany-pediatric/manifest.csv" ]]; then
    echo "$0: no pools in $DATA; give --data DIR" >&2
    exit 2
fi
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT/models" "$OUT/logs" "$OUT/work"
{
    date -u
    nvidia-smi 2>/dev/null || echo "no nvidia-smi"
    nproc
    "$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
} > "$OUT/logs/hardware.txt" 2>&1

started=$(date +%s)
run() {  # NAME BUDGET_MINUTES
    "$PYTHON" -u "$ROOT/training/train_bundled.py" "$1" --profile "$PROFILE" --data "$DATA" \
        --out "$OUT/models" --work "$OUT/work" --held-out --time-budget "$2" ${EXTRA[@]+"${EXTRA[@]}"} \
        2>&1 | tee "$OUT/logs/$1.log"
}
run chest-3class 5.5
run pediatric-pneumonia 2
echo "both models in $OUT/models after $(( $(date +%s) - started )) s" | tee -a "$OUT/logs/hardware.txt"
