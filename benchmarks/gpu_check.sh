#!/usr/bin/env bash
# The GPU check, in under five minutes: the train step of ResNet-50 and AlexNet in bfloat16 on
# every GPU, and the input pipeline on every core, each writing its JSON to OUT_DIR.
#
#     benchmarks/gpu_check.sh [OUT_DIR] [PHOTOS]
#
# OUT_DIR defaults to $OUT or gpu_check/. PHOTOS is an ImageFolder tree (PHOTOS/train/<class>/);
# without one, 1,000 JPEGs of ImageNet's median size (500×375) are written to OUT_DIR/photos.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu_check}}
photos=${2:-}
python=${PYTHON:-.venv/bin/python}
[[ -x $python ]] || python=python3
mkdir -p "$out"
"$python" -c 'import jax; print(jax.devices())' | tee "$out/devices.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
  > "$out/nvidia-smi.txt" 2>&1 || true

bench() {  # NAME ARGS...: one bench.py run, its JSON in OUT_DIR/NAME.json, a line on screen
  local name=$1; shift
  timeout 150 "$python" bench.py "$@" --json > "$out/$name.json" 2> "$out/$name.err" ||
    echo "{\"error\": \"bench.py $* failed: see $name.err\"}" > "$out/$name.json"
  echo "$name: $(cat "$out/$name.json")"
}

bench resnet50_bf16 --model=resnet50 --batch=256 --dtype=bfloat16 --steps=20
bench alexnet_bf16 --model=alexnet --batch=512 --dtype=bfloat16 --steps=20

if [[ -z $photos ]]; then  # stand-in photos: smooth random images, JPEG-encoded as cameras do
  photos=$out/photos
  "$python" - "$photos" <<'PY'
import os, sys
import numpy as np
from PIL import Image
root, rng = sys.argv[1], np.random.default_rng(0)
for i in range(1000):
  folder = os.path.join(root, 'train', f'class{i % 10}')
  os.makedirs(folder, exist_ok=True)
  small = rng.integers(0, 256, (30, 40, 3), np.uint8)
  Image.fromarray(small).resize((500, 375), Image.BICUBIC).save(
      os.path.join(folder, f'{i}.jpg'), quality=90)
os.makedirs(os.path.join(root, 'val', 'class0'), exist_ok=True)
PY
fi
bench input_alexnet --model=alexnet --batch=256 --steps=15 --input="folder:$(realpath "$photos")"
