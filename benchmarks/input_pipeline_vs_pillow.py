"""Our input pipeline (tf.data) against a plain Pillow loop, AlexNet's augmentation, same files.

    .venv/bin/python benchmarks/input_pipeline_vs_pillow.py PATH [--images 1000] [--batch 128]
        [--repeats 2] [--checkout DIR]

PATH is an ImageFolder tree (PATH/train/<class>/*.jpg), e.g. imagenette2-224. Both sides do the
host's work of a training image: decode the JPEG, resize the shorter side to 256 (ours: the
227 × 256/short window of it), take a random 227×227 crop, mirror at random, as uint8 (the
float work runs on the devices). Pillow runs in this one process, one image after another; ours
is `python bench.py --input` (every core tf.data wants). The two alternate `--repeats` times;
`--checkout DIR` times the pipeline of another checkout of this project (an older commit) too.
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
    np.asarray(image)
  wall, cpu = time.perf_counter() - start, time.process_time() - cpu
  return len(paths) / wall, cpu / wall


def ours(root, path, batch, steps):
  """images/s, cores busy, images/s per core of `root`'s pipeline (its bench command)."""
  command = ([sys.executable, 'bench.py'] if os.path.exists(os.path.join(root, 'bench.py'))
             else [sys.executable, '-m', 'cnn_train.bench'])  # commits before bench.py
  out = subprocess.run([*command, '--model=alexnet', f'--batch={batch}', f'--steps={steps}',
                        f'--input=folder:{os.path.abspath(path)}', '--json'],
                       cwd=root, check=True, capture_output=True, text=True,
                       env={**os.environ, 'PYTHONPATH': root}).stdout
  result = json.loads(out.strip().splitlines()[-1])
  return result['images_per_s'], result['cores'], result['images_per_s_per_core']


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('path')
  parser.add_argument('--images', type=int, default=1000, help='images for the Pillow loop')
  parser.add_argument('--batch', type=int, default=128)
  parser.add_argument('--repeats', type=int, default=2)
  parser.add_argument('--checkout', help='another checkout of this project to time as well')
  args = parser.parse_args()
  paths = sorted(glob.glob(os.path.join(args.path, 'train', '*', '*')))
  paths = random.Random(0).sample(paths, min(args.images, len(paths)))
  steps = max(args.images // args.batch, 5)
  sides = {'ours': ROOT} | ({'checkout': os.path.abspath(args.checkout)} if args.checkout else {})
  rows = []
  for repeat in range(args.repeats):
    pillow, cores = pillow_images_per_s(paths)
    rows.append(('Pillow loop', repeat, pillow, cores, pillow / cores))
    for name, root in sides.items():
      rows.append((name, repeat, *ours(root, args.path, args.batch, steps)))
  print(f'{os.cpu_count()} cores, {len(paths)} images of {args.path}\n')
  print('| pipeline | run | images/s | cores busy | images/s per core | ÷ Pillow per core |')
  print('|---|---:|---:|---:|---:|---:|')
  for name, repeat, speed, cores, per_core in rows:
    pillow_per_core = next(r[4] for r in rows if r[0] == 'Pillow loop' and r[1] == repeat)
    print(f'| {name} | {repeat + 1} | {speed:.0f} | {cores:.2f} | {per_core:.0f} | '
          f'{per_core / pillow_per_core:.2f}× |')


if __name__ == '__main__':
  main()
