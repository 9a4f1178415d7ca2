"""AlexNet (Krizhevsky, Sutskever & Hinton 2012) at the lecture's 227×227×3 input.

conv1 → ReLU → LRN → pool → conv2 → ReLU → LRN → pool → conv3 → conv4 → conv5 → pool →
FC6 → dropout → FC7 → dropout → FC8. With `groups=2` conv2, conv4 and conv5 see only their own
tower's half of the channels, as on the paper's two GPUs; conv3 and the FCs see both towers.

With `groups=2`, every conv's output channels and FC6/FC7's units carry the logical axis name
'tower' (flax partitioning annotations: kernels and biases come boxed from `init`, unbox them with
`flax.linen.meta.unbox`). Outside a mesh they do nothing; the trainer maps 'tower' to its mesh's
'model' axis, so that with towers=2 each device of a pair holds one tower, as each GPU did, and
XLA adds the communication where the towers meet (conv3, FC6, FC7, FC8).
"""
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from cnn_arch.layers import LRN, Conv, MaxPool, flatten

# The lecture's table. Per conv: width, kernel, stride, padding, LRN after it, pool after it,
# split into towers (groups=2), positive initial bias (Sec. 5: "We initialized the neuron biases
# in the second, fourth, and fifth convolutional layers, as well as in the fully-connected hidden
# layers, with the constant 1"; the others 0).
CONVS = (
    # name    width  k  s  p  lrn    pool   tower  positive bias
    ('conv1',  96, 11, 4, 0, True,  True,  False, False),
    ('conv2', 256,  5, 1, 2, True,  True,  True,  True),
    ('conv3', 384,  3, 1, 1, False, False, False, False),
    ('conv4', 384,  3, 1, 1, False, False, True,  True),
    ('conv5', 256,  3, 1, 1, False, True,  True,  True),
)
HIDDEN = (('fc6', 4096), ('fc7', 4096))  # positive biases, dropout after each

# The paper's N(0, 0.01) is meant for its input, raw pixels minus the mean (std ≈ 58): on it the
# net learns. He's init is derived for inputs of unit variance (the config then feeds those).
# Value: (kernel init, keep the paper's positive biases).
INITS = {'paper': (nn.initializers.normal(0.01), True),
         'he': (nn.initializers.he_normal(), False)}


class AlexNet(nn.Module):
  num_classes: int = 1000
  lrn: bool = True
  groups: int = 1
  dropout_rate: float = 0.5
  initializer: str = 'paper'  # 'paper': N(0, 0.01) weights, biases 0/1; 'he': He normal, biases 0
  # The paper's 1; Caffe's bvlc_alexnet uses 0.1 ("initialization to 1 resulted in flat training
  # loss", BVLC/caffe#327).
  positive_bias: float = 1.0
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    if self.groups not in (1, 2):
      raise ValueError(f'alexnet: groups={self.groups}; 1 (one tower) or 2 (two towers)')
    if self.initializer not in INITS:
      raise ValueError(f'alexnet: initializer={self.initializer!r}; one of {", ".join(INITS)}')
    weights, paper_biases = INITS[self.initializer]
    if self.groups == 1:  # one tower: nothing to lay out
      split, laid_out = (lambda init, _: init), (lambda x, _: x)
    else:
      split, laid_out = nn.with_logical_partitioning, nn.with_logical_constraint
    dtypes = dict(dtype=self.dtype, param_dtype=self.param_dtype)
    positive = self.positive_bias if paper_biases else 0.0
    bias = lambda is_positive: split(nn.initializers.constant(positive if is_positive else 0.0),
                                     ('tower',))
    norms = pools = 0  # the lecture numbers them norm1, norm2 and pool1 … pool3
    for name, width, k, s, p, lrn, pool, tower, is_positive in CONVS:
      x = Conv(width, (k, k), s, padding=p, feature_group_count=self.groups if tower else 1,
               kernel_init=split(weights, (None, None, None, 'tower')),
               bias_init=bias(is_positive), name=name, **dtypes)(x)
      x = laid_out(nn.relu(x), ('batch', None, None, 'tower'))
      if lrn and self.lrn:
        norms += 1
        x = LRN(name=f'norm{norms}')(x)
      if pool:
        pools += 1
        x = MaxPool(3, 2, name=f'pool{pools}')(x)
    x = laid_out(flatten(x), ('batch', None))  # FC6 sees both towers
    for name, width in HIDDEN:
      x = nn.Dense(width, kernel_init=split(weights, (None, 'tower')), bias_init=bias(True),
                   name=name, **dtypes)(x)
      x = laid_out(nn.relu(x), ('batch', 'tower'))
      x = nn.Dropout(self.dropout_rate, deterministic=not train, name=f'drop{name[2:]}')(x)
    return nn.Dense(self.num_classes, kernel_init=weights, name='fc8', **dtypes)(x)
