"""LeNet-5 (LeCun et al. 1998): C1 6 → S2 → C3 16 → S4 → C5 120 → F6 84 → output.

C3 is fully connected to S2's six maps (the paper's sparse connection table is replaced by the
full one, as in every modern rebuild). The paper's 32×32 input is our 28×28 MNIST-sized image
padded by 2 in C1 (`conv1_padding=2`, the default); `conv1_padding=0` takes 32×32 images.
"""
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from cnn_arch.layers import AvgPool, Conv, MaxPool, flatten

ACTIVATIONS = {'relu': nn.relu, 'sigmoid': nn.sigmoid, 'tanh': jnp.tanh}
POOLS = {'max': MaxPool, 'avg': AvgPool}


class LeNet5(nn.Module):
  num_classes: int = 10
  activation: str = 'tanh'
  pooling: str = 'avg'
  conv1_padding: int = 2
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train  # no dropout, no BatchNorm
    if self.activation not in ACTIVATIONS:
      raise ValueError(f'lenet5: activation={self.activation!r}; choose one of {list(ACTIVATIONS)}')
    if self.pooling not in POOLS:
      raise ValueError(f'lenet5: pooling={self.pooling!r}; choose one of {list(POOLS)}')
    side = 32 - 2 * self.conv1_padding
    if x.shape[1:3] != (side, side):
      raise ValueError(f'lenet5 with conv1_padding={self.conv1_padding} takes {side}×{side} '
                       f'images, got {x.shape[1]}×{x.shape[2]}')
    act, pool = ACTIVATIONS[self.activation], POOLS[self.pooling]
    conv = lambda features, name, padding=0: Conv(
        features, (5, 5), padding=padding, dtype=self.dtype, param_dtype=self.param_dtype,
        name=name)
    dense = lambda features, name: nn.Dense(
        features, dtype=self.dtype, param_dtype=self.param_dtype, name=name)
    x = pool(2, 2, name='s2')(act(conv(6, 'c1', self.conv1_padding)(x)))
    x = pool(2, 2, name='s4')(act(conv(16, 'c3')(x)))
    x = flatten(act(conv(120, 'c5')(x)))  # 5×5 maps → 1×1×120
    x = act(dense(84, 'f6')(x))
    return dense(self.num_classes, 'output')(x)
