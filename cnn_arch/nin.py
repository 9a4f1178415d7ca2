"""Network in Network (Lin, Chen & Yan 2014) as the lecture (after d2l.ai) builds it at 224×224.

AlexNet's conv widths, each conv followed by two 1×1 convs (the "mlpconv" block), and no dense
layers: the last block outputs one map per class, averaged over space into the logits.
"""
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from cnn_arch.layers import Conv, GlobalAvgPool, MaxPool

# First conv of each NiN block: width, kernel, stride, padding (AlexNet's conv1, conv2, conv3).
BLOCKS = ((96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1))


class NiN(nn.Module):
  num_classes: int = 1000
  dropout_rate: float = 0.5
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    layer_args = dict(kernel_init=nn.initializers.xavier_uniform(), dtype=self.dtype,
                      param_dtype=self.param_dtype)

    def nin_block(x, width, kernel, stride, padding, block):
      x = nn.relu(Conv(width, (kernel, kernel), stride, padding=padding,
                       name=f'conv{block}', **layer_args)(x))
      for i in (1, 2):
        x = nn.relu(Conv(width, (1, 1), name=f'mlp{block}_{i}', **layer_args)(x))
      return x

    for block, spec in enumerate(BLOCKS, 1):
      x = MaxPool(3, 2, name=f'pool{block}')(nin_block(x, *spec, block))
    x = nn.Dropout(self.dropout_rate, deterministic=not train, name='drop')(x)
    x = nin_block(x, self.num_classes, 3, 1, 1, len(BLOCKS) + 1)
    return GlobalAvgPool(name='global_pool')(x)
