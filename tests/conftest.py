import contextlib
import math
import os
import tempfile

# Tests run on the CPU, as two devices so that the data-parallel code paths run too.
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                           ' --xla_force_host_platform_device_count=2').strip()
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# oneDNN forced on, as TensorFlow has it by default on AVX-512 CPUs: its start-up lines then show
# on any x86 CPU if the library stops hiding them. TF_ENABLE_ONEDNN_OPTS=0 runs the suite with it
# off.
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')
# Folder listings are cached under XDG_CACHE_HOME: the tests' own, not the user's.
os.environ['XDG_CACHE_HOME'] = tempfile.mkdtemp(prefix='cnn-zoo-test-cache-')
# torchvision (the reference tests') imported after TensorFlow crashes the process with a
# segmentation fault (torchvision 0.29.1, TensorFlow 2.21); imported first, both work.
try:
  import torchvision  # noqa: E402, F401
except ImportError:
  pass
from cnn_train import runtime  # noqa: E402

runtime.use_eigen_convolutions()  # the convolutions train.py runs

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from configs import lenet5  # noqa: E402


@pytest.fixture
def random_variables():
  """Variables of the model's own shapes, filled on the host without compiling its init.

  Compiling a big model's `init` costs 20-30 s on 2 cores (one random initialiser per
  parameter); the forward-pass tests need realistic values, not the paper's initialisers
  (those are tested on their own). Kernels are N(0, 1/fan_in), BatchNorm is the identity.
  """
  def make(model, x, seed=0):
    shapes = nn.meta.unbox(jax.eval_shape(model.init, jax.random.key(0), x))
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
      name = path[-1].key
      if name in ('scale', 'var'):
        return np.ones(leaf.shape, leaf.dtype)
      if name in ('bias', 'mean'):
        return np.zeros(leaf.shape, leaf.dtype)
      fan_in = math.prod(leaf.shape[:-1])
      return rng.normal(0, 1 / math.sqrt(fan_in), leaf.shape).astype(leaf.dtype)

    return jax.tree_util.tree_map_with_path(fill, shapes)

  return make


@pytest.fixture
def compilations():
  """compilations() is a block in which a list grows by 'compile' for each XLA compilation."""
  @contextlib.contextmanager
  def block():
    events = []

    def listen(event, *args, **kwargs):
      if event == '/jax/core/compile/backend_compile_duration':
        events.append('compile')

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
      yield events
    finally:
      jax.monitoring.unregister_event_duration_listener(listen)

  return block


@pytest.fixture(scope='session')
def fashion_train_images():
  """The 60,000 real Fashion-MNIST training images (uint8, 28×28) of Debian's package, which
  setup.sh installs; without them, the tests that need real images are skipped."""
  from cnn_train import fashion_mnist_debian as fmnist
  if not fmnist.has_source_files():
    pytest.skip("no Fashion-MNIST files (setup.sh installs Debian's dataset-fashion-mnist)")
  return fmnist.read_idx(os.path.join(fmnist.source_dir(), fmnist.FILES['train'][0]))


CLASSES = ('ant', 'bee', 'cat')


@pytest.fixture(scope='session')
def folder(tmp_path_factory):
  """train: 8 images per class; val: 7 images (not a multiple of the batch)."""
  root = tmp_path_factory.mktemp('folder')
  rng = np.random.default_rng(0)
  for split, counts in (('train', (8, 8, 8)), ('val', (3, 2, 2))):
    for label, (name, count) in enumerate(zip(CLASSES, counts)):
      os.makedirs(root / split / name)
      for i in range(count):
        pixels = rng.integers(0, 60, (12, 12, 3)) + 90 * label  # classes differ in brightness
        Image.fromarray(pixels.astype(np.uint8)).save(root / split / name / f'{i}.png')
  return root


@pytest.fixture
def tiny_config(folder):
  """LeNet-5 on the tiny folder: 6 steps an epoch, 2 epochs; keyword arguments change keys."""
  def make(**changes):
    c = lenet5.get_config(f'dataset=folder:{folder}')
    c.image_size = 28
    c.augment.update(crop='none', resize=0)
    c.update(batch_size=4, num_epochs=2, log_every_steps=2, checkpoint_every_steps=100, lr=0.02)
    c.update(changes)
    return c

  return make
