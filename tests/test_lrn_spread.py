"""LRN normalises on the papers' input (issue 27): the spread of its divisor (k + α Σ a²)^β over
a batch of images, and the command that prints it."""
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import cnn_arch
from cnn_train import augment, lrn_spread

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K_BETA = 2.0 ** 0.75  # AlexNet's k = 2, β = 0.75: the divisor of units with no activity
K_BETA_LOW = K_BETA * (1 - 3 * 2.0 ** -23)  # computed in float32: up to 3 ulps under k ** β


def clothes(images, count, size):
  """The first `count` of Fashion-MNIST `images`, enlarged to size × size, as RGB uint8."""
  images = images[:count]
  images = np.asarray(jax.image.resize(images[..., None].astype(np.float32),
                                       (count, size, size, 1), 'bilinear'))
  return np.clip(np.round(images), 0, 255).astype(np.uint8).repeat(3, axis=-1)


def test_lrn_normalises_raw_pixels_and_only_scales_a_unit_variance_input(fashion_train_images):
  images = clothes(fashion_train_images, 16, 96)
  model = cnn_arch.create_model('alexnet', 10)  # the paper's init: N(0, 0.01), biases 0 and 1
  variables = jax.jit(lambda k: model.init(k, images[:1].astype(np.float32), train=False))(
      jax.random.key(0))
  spreads = {transform: lrn_spread.divisor_spread(model, variables, augment.normalize(
      images, *augment.TRANSFORMS[transform](*augment.stats('imagenet2012'))))
             for transform in ('minus_mean', 'standardize')}
  assert list(spreads['minus_mean']) == ['norm1', 'norm2']
  for name, (p1, p50, p99, largest) in spreads['standardize'].items():
    assert K_BETA_LOW <= p1 and largest < K_BETA * 1.001, (name, p1, largest)  # a constant
  # At the paper's init the first LRN varies most (it does more once trained: `lrn.py`).
  for name, (p1, p50, p99, largest) in spreads['minus_mean'].items():
    assert p1 >= K_BETA_LOW and largest > K_BETA * 1.01, (name, p1, largest)  # 10 × the above
  assert spreads['minus_mean']['norm1'][2] > K_BETA * 1.05  # p99 of the first


@pytest.mark.slow  # 45 s: two processes that compile AlexNet; the library is tested above
def test_the_command_prints_each_lrn_layer_and_refuses_a_network_without(folder):
  command = [sys.executable, 'lrn.py', f'--config=configs/alexnet.py:dataset=folder:{folder}',
             '--config.image_size=67', '--images=4']
  out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
  assert out.returncode == 0 and out.stderr == '', out.stderr[-2000:]
  lines = out.stdout.splitlines()
  assert lines[0].startswith('alexnet (configs/alexnet.py:dataset=folder:')
  assert 'minus_mean' in lines[0]
  assert lines[1].split() == ['layer', 'p1', 'p50', 'p99', 'max']
  assert [line.split()[0] for line in lines[2:]] == ['norm1', 'norm2']
  assert all(float(v) >= K_BETA - 1e-4 for line in lines[2:] for v in line.split()[1:])

  out = subprocess.run(
      [sys.executable, 'lrn.py', f'--config=configs/nin.py:dataset=folder:{folder}'],
      capture_output=True, text=True, cwd=ROOT, timeout=300)
  assert out.returncode == 2 and out.stderr == "error: nin with {} has no LRN layer\n"
