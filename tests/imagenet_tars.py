"""A miniature of ImageNet's two official files, for TFDS's own `imagenet2012` builder.

`ILSVRC2012_img_train.tar` holds one `nXXXXXXXX.tar` per synset with `nXXXXXXXX_k.JPEG` members;
`ILSVRC2012_img_val.tar` holds `ILSVRC2012_val_%08d.JPEG`, which TFDS labels from its own
validation-labels file in sorted order (so the miniature's first N images get its first N labels).
The photos are real JPEG encodings of the sizes and modes ImageNet has: landscape and portrait,
tiny and over 1,000 px, greyscale.
"""
import io
import os
import tarfile

import numpy as np
from PIL import Image

SYNSETS = ('n01440764', 'n01443537', 'n01484850')  # the first three of TFDS's labels.txt
# (width, height, mode) of the images, train and validation alike.
SHAPES = ((500, 375, 'RGB'), (375, 500, 'RGB'), (1200, 800, 'RGB'), (97, 130, 'RGB'),
          (320, 240, 'L'))
NUM_VAL = 7


def _jpeg(width, height, mode, rng):
  """A smooth random picture (JPEG compresses it as it does a photo), encoded."""
  coarse = rng.integers(0, 256, (max(height // 32, 2), max(width // 32, 2), 3), np.uint8)
  image = Image.fromarray(coarse).resize((width, height), Image.BILINEAR).convert(mode)
  buffer = io.BytesIO()
  image.save(buffer, format='JPEG', quality=90)
  return buffer.getvalue()


def _add(tar, name, data):
  info = tarfile.TarInfo(name)
  info.size = len(data)
  tar.addfile(info, io.BytesIO(data))


def write(manual_dir, synsets=SYNSETS, shapes=SHAPES, num_val=NUM_VAL, seed=0):
  """Write both tars into `manual_dir`; returns (train images, validation images)."""
  rng = np.random.default_rng(seed)
  os.makedirs(manual_dir, exist_ok=True)
  with tarfile.open(os.path.join(manual_dir, 'ILSVRC2012_img_train.tar'), 'w') as train:
    for synset in synsets:
      inner = io.BytesIO()
      with tarfile.open(fileobj=inner, mode='w') as class_tar:
        for k, shape in enumerate(shapes):
          _add(class_tar, f'{synset}_{k + 1}.JPEG', _jpeg(*shape, rng))
      _add(train, f'{synset}.tar', inner.getvalue())
  with tarfile.open(os.path.join(manual_dir, 'ILSVRC2012_img_val.tar'), 'w') as val:
    for i in range(num_val):
      _add(val, f'ILSVRC2012_val_{i + 1:08d}.JPEG', _jpeg(*shapes[i % len(shapes)], rng))
  return len(synsets) * len(shapes), num_val
