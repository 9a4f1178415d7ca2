"""GoogLeNet (Szegedy et al. 2014), Table 1 of the paper, with its two auxiliary classifiers.

As in the paper and its Caffe model: convs with bias and ReLU, no BatchNorm, real 5×5 convs,
LRN after the stem's first and last conv, max pools rounded up (Caffe's ceil mode) so the maps
are 112/56/28/14/7, dropout 40 % before the classifier. The auxiliary classifiers (after 4a and
4d) exist only in training: with `train=True` and `aux=True` the model returns
`(logits, (aux1, aux2))`; the main logits never depend on them.
"""
from functools import partial
from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp

from cnn_arch.layers import LRN, AvgPool, Conv, GlobalAvgPool, MaxPool, flatten

# Table 1: #1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj.
INCEPTION = {
    '3a': (64, 96, 128, 16, 32, 32),
    '3b': (128, 128, 192, 32, 96, 64),
    '4a': (192, 96, 208, 16, 48, 64),
    '4b': (160, 112, 224, 24, 64, 64),
    '4c': (128, 128, 256, 24, 64, 64),
    '4d': (112, 144, 288, 32, 64, 64),
    '4e': (256, 160, 320, 32, 128, 128),
    '5a': (256, 160, 320, 32, 128, 128),
    '5b': (384, 192, 384, 48, 128, 128),
}
BODY = ('3a', '3b', 'pool', '4a', '4b', '4c', '4d', '4e', 'pool', '5a', '5b')
AUX_AFTER = ('4a', '4d')
# The Caffe model's LRN: local_size 5, alpha 1e-4 divided by the size (see layers.LRN), k = 1.
STEM_LRN = dict(size=5, k=1.0, alpha=1e-4 / 5, beta=0.75)


class Inception(nn.Module):
  """Four branches concatenated: 1×1 | 1×1 → 3×3 | 1×1 → 5×5 | 3×3 max pool → 1×1."""
  widths: tuple[int, ...]
  conv: Callable[..., nn.Module]

  @nn.compact
  def __call__(self, x):
    n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj = self.widths
    conv = lambda y, width, k, name: nn.relu(self.conv(width, (k, k), name=name)(y))
    return jnp.concatenate([
        conv(x, n1x1, 1, '1x1'),
        conv(conv(x, n3x3_reduce, 1, '3x3_reduce'), n3x3, 3, '3x3'),
        conv(conv(x, n5x5_reduce, 1, '5x5_reduce'), n5x5, 5, '5x5'),
        conv(MaxPool(3, 1, padding=1, name='pool')(x), pool_proj, 1, 'pool_proj'),
    ], axis=-1)


class AuxClassifier(nn.Module):
  """The lecture's auxiliary head: avg pool 5×5/3 → 1×1 conv 128 → FC 1024 → dropout 70 % → FC."""
  num_classes: int
  conv: Callable[..., nn.Module]
  dense: Callable[..., nn.Module]

  @nn.compact
  def __call__(self, x, train):
    x = AvgPool(5, 3, name='pool')(x)  # 14×14 → 4×4
    x = flatten(nn.relu(self.conv(128, (1, 1), name='conv')(x)))
    x = nn.relu(self.dense(1024, name='fc1')(x))
    x = nn.Dropout(0.7, deterministic=not train, name='drop')(x)
    return self.dense(self.num_classes, name='fc2')(x)


class GoogLeNet(nn.Module):
  num_classes: int = 1000
  aux: bool = True
  dropout_rate: float = 0.4
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    # bvlc_googlenet's initialisation: Xavier weights, biases 0.2.
    layer_args = dict(kernel_init=nn.initializers.xavier_uniform(),
                      bias_init=nn.initializers.constant(0.2),
                      dtype=self.dtype, param_dtype=self.param_dtype)
    conv = partial(Conv, padding='SAME', **layer_args)
    dense = partial(nn.Dense, **layer_args)
    pool = partial(MaxPool, 3, 2, ceil_mode=True)

    x = nn.relu(conv(64, (7, 7), 2, padding=3, name='conv1')(x))          # 112×112×64
    x = LRN(**STEM_LRN, name='norm1')(pool(name='pool1')(x))             # 56×56×64
    x = nn.relu(conv(64, (1, 1), name='conv2_reduce')(x))
    x = LRN(**STEM_LRN, name='norm2')(nn.relu(conv(192, (3, 3), name='conv2')(x)))
    x = pool(name='pool2')(x)                                            # 28×28×192
    # Auxiliary heads are built at init (so their parameters exist) and run only in training.
    with_aux = self.aux and (train or self.is_initializing())
    aux_logits, pools = [], 2
    for name in BODY:
      if name == 'pool':
        pools += 1
        x = pool(name=f'pool{pools}')(x)
        continue
      x = Inception(INCEPTION[name], conv, name=f'inception_{name}')(x)
      if with_aux and name in AUX_AFTER:
        head = AuxClassifier(self.num_classes, conv, dense, name=f'aux{len(aux_logits) + 1}')
        aux_logits.append(head(x, train))
    # The paper's 7×7 average pool is global at 224×224; global keeps other sizes working.
    x = GlobalAvgPool(name='avg_pool')(x)                                # 1024
    x = nn.Dropout(self.dropout_rate, deterministic=not train, name='drop')(x)
    logits = dense(self.num_classes, name='fc')(x)
    return (logits, tuple(aux_logits)) if train and self.aux else logits
