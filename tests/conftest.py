import math
import os

# Tests run on the CPU, as two devices so that the data-parallel code paths run too.
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                           ' --xla_force_host_platform_device_count=2').strip()
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def random_variables():
  """Variables of the model's own shapes, filled on the host without compiling its init.

  Compiling a big model's `init` costs 20-30 s on 2 cores (one random initialiser per
  parameter); the forward-pass tests need realistic values, not the paper's initialisers
  (those are tested on their own). Kernels are N(0, 1/fan_in), BatchNorm is the identity.
  """
  def make(model, x, seed=0):
    shapes = jax.eval_shape(model.init, jax.random.key(0), x)
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
