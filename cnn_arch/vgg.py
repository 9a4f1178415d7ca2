"""VGG (Simonyan & Zisserman 2015), configurations A, A-LRN, B, C, D, E of the paper's Table 1,
and B-5x5, Sec. 4.1's shallower B.

Every conv has stride 1 and keeps the size (3×3 pad 1, 5×5 pad 2; C's 1×1 convs pad 0), every
pool is 2×2/2, then FC-4096 → dropout → FC-4096 → dropout → FC-classes, as in Sec. 2.1 and 3.1.
`batch_norm=True` adds BatchNorm after each conv (torchvision's `vgg*_bn`; not in the paper).
"""
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from cnn_arch.layers import LRN, Conv, MaxPool, flatten

# Table 1, column by column, in the paper's own words ("conv<kernel>-<width>").
_A = ('conv3-64', 'pool', 'conv3-128', 'pool', 'conv3-256', 'conv3-256', 'pool',
      'conv3-512', 'conv3-512', 'pool', 'conv3-512', 'conv3-512', 'pool')
CONFIGS = {
    'A': _A,
    'A-LRN': _A[:1] + ('LRN',) + _A[1:],
    'B': ('conv3-64', 'conv3-64', 'pool', 'conv3-128', 'conv3-128', 'pool',
          'conv3-256', 'conv3-256', 'pool', 'conv3-512', 'conv3-512', 'pool',
          'conv3-512', 'conv3-512', 'pool'),
    'C': ('conv3-64', 'conv3-64', 'pool', 'conv3-128', 'conv3-128', 'pool',
          'conv3-256', 'conv3-256', 'conv1-256', 'pool',
          'conv3-512', 'conv3-512', 'conv1-512', 'pool',
          'conv3-512', 'conv3-512', 'conv1-512', 'pool'),
    'D': ('conv3-64', 'conv3-64', 'pool', 'conv3-128', 'conv3-128', 'pool',
          'conv3-256', 'conv3-256', 'conv3-256', 'pool',
          'conv3-512', 'conv3-512', 'conv3-512', 'pool',
          'conv3-512', 'conv3-512', 'conv3-512', 'pool'),
    'E': ('conv3-64', 'conv3-64', 'pool', 'conv3-128', 'conv3-128', 'pool',
          'conv3-256', 'conv3-256', 'conv3-256', 'conv3-256', 'pool',
          'conv3-512', 'conv3-512', 'conv3-512', 'conv3-512', 'pool',
          'conv3-512', 'conv3-512', 'conv3-512', 'conv3-512', 'pool'),
    # Sec. 4.1's shallow net: "derived from B by replacing each pair of 3×3 conv. layers with a
    # single 5×5 conv. layer (which has the same receptive field)"; 7 % more top-1 error than B.
    'B-5x5': ('conv5-64', 'pool', 'conv5-128', 'pool', 'conv5-256', 'pool', 'conv5-512', 'pool',
              'conv5-512', 'pool'),
}


class VGG(nn.Module):
  config: str = 'D'
  num_classes: int = 1000
  batch_norm: bool = False
  dropout_rate: float = 0.5
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    if self.config not in CONFIGS:
      raise ValueError(f'vgg: config={self.config!r}; choose one of {list(CONFIGS)}')
    # Glorot init: the paper's way of training the deep nets without pre-training A first.
    layer_args = dict(kernel_init=nn.initializers.xavier_uniform(), dtype=self.dtype,
                      param_dtype=self.param_dtype)
    block, index = 1, 1  # Caffe's names: conv<block>_<index>, pool<block>
    for layer in CONFIGS[self.config]:
      if layer == 'pool':
        x = MaxPool(2, 2, name=f'pool{block}')(x)
        block, index = block + 1, 1
      elif layer == 'LRN':
        x = LRN(name=f'norm{block}')(x)
      else:
        kernel, width = (int(v) for v in layer.removeprefix('conv').split('-'))
        x = Conv(width, (kernel, kernel), padding=kernel // 2, name=f'conv{block}_{index}',
                 **layer_args)(x)
        if self.batch_norm:
          x = nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype,
                           param_dtype=self.param_dtype, name=f'bn{block}_{index}')(x)
        x = nn.relu(x)
        index += 1
    x = flatten(x)
    for name in ('fc6', 'fc7'):
      x = nn.relu(nn.Dense(4096, name=name, **layer_args)(x))
      x = nn.Dropout(self.dropout_rate, deterministic=not train, name=f'drop{name[2:]}')(x)
    return nn.Dense(self.num_classes, name='fc8', **layer_args)(x)
