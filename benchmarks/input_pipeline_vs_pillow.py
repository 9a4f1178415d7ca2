"""Our input pipeline (tf.data) against a plain Pillow loop, AlexNet's augmentation, same files.

    .venv/bin/python benchmarks/input_pipeline_vs_pillow.py PATH [--images 1000] [--batch 128]

PATH is an ImageFolder tree (PATH/train/<class>/*.jpg), e.g. imagenette2-224. Both sides: decode
the JPEG, resize the shorter side to 256, take a random 227×227 crop, mirror at random, scale to
float32. Pillow runs in this one process, one image after another; ours is
`python bench.py --input` (every core tf.data wants, with PCA lighting on top).
"""
import argparse
import glob
import json
import os
import random
import subprocess
import sys
import time

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pillow_images_per_s(paths, size=227, resize=256):
  rng = random.Random(0)
  start, cpu = time.perf_counter(), time.process_time()
  for path in paths:
    image = Image.open(path).convert('RGB')
    scale = resize / min(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)),
                         Image.BILINEAR)
    left, top = rng.randint(0, image.width - size), rng.randint(0, image.height - size)
    image = image.crop((left, top, left + size, top + size))
    if rng.random() < 0.5:
      image = image.transpose(Image.FLIP_LEFT_RIGHT)
    np.asarray(image, np.float32) / 255.0
  wall, cpu = time.perf_counter() - start, time.process_time() - cpu
  return len(paths) / wall, cpu / wall


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('path')
  parser.add_argument('--images', type=int, default=1000, help='images for the Pillow loop')
  parser.add_argument('--batch', type=int, default=128)
  args = parser.parse_args()
  paths = sorted(glob.glob(os.path.join(args.path, 'train', '*', '*')))
  paths = random.Random(0).sample(paths, min(args.images, len(paths)))
  pillow, pillow_cores = pillow_images_per_s(paths)
  steps = max(args.images // args.batch, 5)
  out = subprocess.run([sys.executable, 'bench.py', '--model=alexnet',
                        f'--batch={args.batch}', f'--steps={steps}',
                        f'--input=folder:{os.path.abspath(args.path)}', '--json'],
                       cwd=ROOT, check=True, capture_output=True, text=True).stdout
  ours = json.loads(out.strip().splitlines()[-1])
  print(f'{os.cpu_count()} cores\n')
  print('| pipeline | images/s | cores busy | images/s per core |')
  print('|---|---:|---:|---:|')
  print(f'| Pillow loop | {pillow:.0f} | {pillow_cores:.2f} | {pillow / pillow_cores:.0f} |')
  print(f'| ours (tf.data) | {ours["images_per_s"]:.0f} | {ours["cores"]:.2f} | '
        f'{ours["images_per_s_per_core"]:.0f} |')
  print(f'\nours ÷ Pillow: {ours["images_per_s"] / pillow:.2f}× images/s, '
        f'{ours["images_per_s_per_core"] / (pillow / pillow_cores):.2f}× per core')


if __name__ == '__main__':
  main()
