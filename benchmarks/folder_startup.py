"""How long a `folder:` dataset takes to start: the listing and checking of every image.

    .venv/bin/python benchmarks/folder_startup.py [--root /tmp/folder-200k] [--files 200000]

Makes an ImageFolder tree of small JPEGs (1,000 classes, ImageNet's layout) unless ROOT has one,
then times `sources.dataset_info` (what train.py does before its first step: the train and
val splits listed and checked) in fresh processes: without the checked-listing cache and with
it, each with the page cache dropped (cold, needs root) and kept (warm).
"""
import argparse
import io
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMED = '''
import sys, time
from configs import lenet5
from cnn_train import sources
config = lenet5.get_config('dataset=folder:' + sys.argv[1])
start = time.perf_counter()
info = sources.dataset_info(config)
print(time.perf_counter() - start, info.num_train, info.num_eval)
'''


def make_tree(root, files, classes=1000):
  rng = np.random.default_rng(0)
  jpegs = []
  for _ in range(50):
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), np.uint8)).save(buffer, 'JPEG')
    jpegs.append(buffer.getvalue())
  per_class = files // classes
  for split, count in (('train', per_class), ('val', max(per_class // 20, 1))):
    for c in range(classes):
      folder = os.path.join(root, split, f'n{c:08d}')
      os.makedirs(folder, exist_ok=True)
      for k in range(count):
        with open(os.path.join(folder, f'n{c:08d}_{k}.JPEG'), 'wb') as f:
          f.write(jpegs[(c + k) % len(jpegs)])


def drop_page_cache():
  try:
    os.sync()
    with open('/proc/sys/vm/drop_caches', 'w') as f:
      f.write('3')
    return True
  except OSError:
    return False


def timed_start(root, cache_home):
  env = {**os.environ, 'XDG_CACHE_HOME': cache_home, 'PYTHONPATH': ROOT}
  out = subprocess.run([sys.executable, '-c', TIMED, root], env=env, check=True,
                       capture_output=True, text=True, cwd=ROOT)
  seconds, train, val = out.stdout.split()
  return float(seconds), int(train) + int(val)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--root', default='/tmp/folder-200k')
  parser.add_argument('--files', type=int, default=200_000, help='train images (val: 1/20)')
  parser.add_argument('--rounds', type=int, default=2)
  args = parser.parse_args()
  if not os.path.isdir(os.path.join(args.root, 'train')):
    print(f'making {args.files:,} train images in {args.root} ...', flush=True)
    make_tree(args.root, args.files)
  cache_home = os.path.join(args.root + '-cache')
  print(f'{"listing cache":>14} {"page cache":>10} {"seconds":>8} {"files":>9}')
  for _ in range(args.rounds):
    for cached in (False, True):
      for cold in (True, False):
        if not cached:
          shutil.rmtree(cache_home, ignore_errors=True)
        if cold and not drop_page_cache():
          continue
        seconds, files = timed_start(args.root, cache_home)
        print(f'{"kept" if cached else "none":>14} {"cold" if cold else "warm":>10} '
              f'{seconds:8.1f} {files:9,}', flush=True)


if __name__ == '__main__':
  main()
