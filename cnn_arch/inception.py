"""Inception-BN (v2), Inception-v3, Inception-v4 and Inception-ResNet-v1/v2, each written as a
table of branches.

A network is a sequence of named layers. A layer is a `Conv` (conv → BatchNorm → ReLU), a
`Pool`, an Inception block or a `Residual` one. A block is a tuple of branches, each a tuple of
steps applied in order, the branch outputs concatenated on channels. A `Fork` step splits a
branch into two parallel convs (v3/v4's 1×3 | 3×1 pairs). Reading a table row is reading the
paper's figure of that block; v4 and Inception-ResNet-v2 list the branches in the order the
released model (TF-slim) concatenates them, so that its weights fit.
"""
from functools import partial
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax.numpy as jnp

from cnn_arch import layers
from cnn_arch.layers import AvgPool, ConvBNReLU, GlobalAvgPool, MaxPool


class Conv(NamedTuple):
  width: int
  kernel: int | tuple[int, int]
  stride: int = 1
  padding: str | int = 'SAME'


class Pool(NamedTuple):
  kind: str  # 'max' or 'avg'
  window: int = 3
  stride: int = 1
  padding: int = 1
  ceil_mode: bool = False
  count_padding: bool = True  # average pools: Caffe's and torchvision's; TF's SAME pools do not


class Fork(NamedTuple):
  left: Conv
  right: Conv


class Residual(NamedTuple):
  """Inception-ResNet's block (Sec. 3.2): the branches' concatenation, a linear 1×1 conv back to
  the input's width (a bias, no BatchNorm: "not on top of the summations"), scaled by 0.1-0.3
  (Sec. 3.3: "scaling down the residuals before adding them ... stabilize the training"), added
  to the input, then ReLU (the released v2's last block has none)."""
  branches: tuple
  scale: float
  relu: bool = True


MAX_3x3_S2 = Pool('max', 3, 2, 0)
AVG_3x3 = Pool('avg')
AVG_3x3_TF = Pool('avg', count_padding=False)  # TF-slim's SAME average pool (v4, v2)


# --- Inception-BN: Ioffe & Szegedy 2015, Figure 5 (5×5 convs replaced by two 3×3). ---
def _bn_block(n1x1, n3x3_reduce, n3x3, double_reduce, double_3x3, pool, pool_proj, stride=1):
  """One row of Figure 5. Stride-2 rows (3c, 4e) have no 1×1 branch and pass the max pool on."""
  pool_step = Pool('max', 3, 2, 0, ceil_mode=True) if stride == 2 else Pool(pool)
  branches = (
      (Conv(n1x1, 1),),
      (Conv(n3x3_reduce, 1), Conv(n3x3, 3, stride, 1)),
      (Conv(double_reduce, 1), Conv(double_3x3, 3, 1, 1), Conv(double_3x3, 3, stride, 1)),
      (pool_step, Conv(pool_proj, 1)) if pool_proj else (pool_step,),
  )
  return branches if n1x1 else branches[1:]


INCEPTION_BN = (
    ('conv1', Conv(64, 7, 2, 3)),                                     # 112×112×64
    ('pool1', Pool('max', 3, 2, 0, ceil_mode=True)),                  # 56×56×64
    ('conv2_reduce', Conv(64, 1)),
    ('conv2', Conv(192, 3, 1, 1)),                                    # 56×56×192
    ('pool2', Pool('max', 3, 2, 0, ceil_mode=True)),                  # 28×28×192
    ('inception_3a', _bn_block(64, 64, 64, 64, 96, 'avg', 32)),       # 28×28×256
    ('inception_3b', _bn_block(64, 64, 96, 64, 96, 'avg', 64)),       # 28×28×320
    ('inception_3c', _bn_block(0, 128, 160, 64, 96, 'max', 0, 2)),    # 14×14×576
    ('inception_4a', _bn_block(224, 64, 96, 96, 128, 'avg', 128)),   # 14×14×576
    ('inception_4b', _bn_block(192, 96, 128, 96, 128, 'avg', 128)),  # 14×14×576
    ('inception_4c', _bn_block(160, 128, 160, 128, 160, 'avg', 128)),  # 14×14×608
    ('inception_4d', _bn_block(96, 128, 192, 160, 192, 'avg', 128)),  # 14×14×608
    ('inception_4e', _bn_block(0, 128, 192, 192, 256, 'max', 0, 2)),  # 7×7×1056
    ('inception_5a', _bn_block(352, 192, 320, 160, 224, 'avg', 128)),  # 7×7×1024
    ('inception_5b', _bn_block(352, 192, 320, 192, 224, 'max', 128)),  # 7×7×1024
)


# --- Inception-v3: Szegedy et al. 2016 (Figures 5, 6, 7 and 10), as the authors released it. ---
def _v3_a(pool_proj):  # Figure 5: 35×35
  return ((Conv(64, 1),),
          (Conv(48, 1), Conv(64, 5)),
          (Conv(64, 1), Conv(96, 3), Conv(96, 3)),
          (AVG_3x3, Conv(pool_proj, 1)))


def _v3_c(width_7x7):  # Figure 6 with n = 7: 17×17
  w = width_7x7
  return ((Conv(192, 1),),
          (Conv(w, 1), Conv(w, (1, 7)), Conv(192, (7, 1))),
          (Conv(w, 1), Conv(w, (7, 1)), Conv(w, (1, 7)), Conv(w, (7, 1)), Conv(192, (1, 7))),
          (AVG_3x3, Conv(192, 1)))


_V3_REDUCE_35 = ((Conv(384, 3, 2, 'VALID'),),                       # Figure 10: 35 → 17
                 (Conv(64, 1), Conv(96, 3), Conv(96, 3, 2, 'VALID')),
                 (MAX_3x3_S2,))
_V3_REDUCE_17 = ((Conv(192, 1), Conv(320, 3, 2, 'VALID')),            # 17 → 8
                 (Conv(192, 1), Conv(192, (1, 7)), Conv(192, (7, 1)), Conv(192, 3, 2, 'VALID')),
                 (MAX_3x3_S2,))
_V3_E = ((Conv(320, 1),),                                             # Figure 7: 8×8
         (Conv(384, 1), Fork(Conv(384, (1, 3)), Conv(384, (3, 1)))),
         (Conv(448, 1), Conv(384, 3), Fork(Conv(384, (1, 3)), Conv(384, (3, 1)))),
         (AVG_3x3, Conv(192, 1)))

INCEPTION_V3 = (
    ('conv1a', Conv(32, 3, 2, 'VALID')),    # 149×149×32
    ('conv2a', Conv(32, 3, 1, 'VALID')),    # 147×147×32
    ('conv2b', Conv(64, 3)),                # 147×147×64
    ('pool1', MAX_3x3_S2),                  # 73×73×64
    ('conv3b', Conv(80, 1)),                # 73×73×80
    ('conv4a', Conv(192, 3, 1, 'VALID')),   # 71×71×192
    ('pool2', MAX_3x3_S2),                  # 35×35×192
    ('mixed_5b', _v3_a(32)),                # 35×35×256
    ('mixed_5c', _v3_a(64)),                # 35×35×288
    ('mixed_5d', _v3_a(64)),                # 35×35×288
    ('mixed_6a', _V3_REDUCE_35),            # 17×17×768
    ('mixed_6b', _v3_c(128)),
    ('mixed_6c', _v3_c(160)),
    ('mixed_6d', _v3_c(160)),
    ('mixed_6e', _v3_c(192)),               # 17×17×768, auxiliary head here
    ('mixed_7a', _V3_REDUCE_17),            # 8×8×1280
    ('mixed_7b', _V3_E),                    # 8×8×2048
    ('mixed_7c', _V3_E),                    # 8×8×2048
)
# The auxiliary classifier on the 17×17 grid (with BatchNorm: the paper's "BN-auxiliary").
INCEPTION_V3_AUX = (('pool', Pool('avg', 5, 3, 0)), ('conv0', Conv(128, 1)),
                    ('conv1', Conv(768, 5, 1, 'VALID')))


# --- Inception-v4: Szegedy et al. 2017, Figures 3-8, as the authors released it (TF-slim, as
# timm ports it): the pool branch last, and a stem whose 7×1 | 1×7 pair runs 1×7 first. ---
def _reduction_a(k, l, m, n):  # Figure 7 and Table 1: 35 → 17
  return ((Conv(n, 3, 2, 'VALID'),),
          (Conv(k, 1), Conv(l, 3), Conv(m, 3, 2, 'VALID')),
          (MAX_3x3_S2,))


_V4_A = ((Conv(96, 1),),                                               # Figure 4: 35×35×384
         (Conv(64, 1), Conv(96, 3)),
         (Conv(64, 1), Conv(96, 3), Conv(96, 3)),
         (AVG_3x3_TF, Conv(96, 1)))
_V4_B = ((Conv(384, 1),),                                              # Figure 5: 17×17×1024
         (Conv(192, 1), Conv(224, (1, 7)), Conv(256, (7, 1))),
         (Conv(192, 1), Conv(192, (7, 1)), Conv(224, (1, 7)), Conv(224, (7, 1)),
          Conv(256, (1, 7))),
         (AVG_3x3_TF, Conv(128, 1)))
_V4_REDUCTION_B = ((Conv(192, 1), Conv(192, 3, 2, 'VALID')),           # Figure 8
                   (Conv(256, 1), Conv(256, (1, 7)), Conv(320, (7, 1)), Conv(320, 3, 2, 'VALID')),
                   (MAX_3x3_S2,))
_V4_C = ((Conv(256, 1),),                                              # Figure 6: 8×8×1536
         (Conv(384, 1), Fork(Conv(256, (1, 3)), Conv(256, (3, 1)))),
         (Conv(384, 1), Conv(448, (3, 1)), Conv(512, (1, 3)),
          Fork(Conv(256, (1, 3)), Conv(256, (3, 1)))),
         (AVG_3x3_TF, Conv(256, 1)))
_V4_STEM = (                                # Figure 3's first convs, Figure 14's too
    ('conv1', Conv(32, 3, 2, 'VALID')),     # 149×149×32
    ('conv2', Conv(32, 3, 1, 'VALID')),     # 147×147×32
    ('conv3', Conv(64, 3)),                 # 147×147×64
)

INCEPTION_V4 = (
    *_V4_STEM,
    ('stem_a', ((MAX_3x3_S2,), (Conv(96, 3, 2, 'VALID'),))),          # 73×73×160
    ('stem_b', ((Conv(64, 1), Conv(96, 3, 1, 'VALID')),
                (Conv(64, 1), Conv(64, (1, 7)), Conv(64, (7, 1)), Conv(96, 3, 1, 'VALID')))),
    ('stem_c', ((Conv(192, 3, 2, 'VALID'),), (MAX_3x3_S2,))),         # 35×35×384
    *((f'inception_a{i}', _V4_A) for i in range(1, 5)),
    ('reduction_a', _reduction_a(192, 224, 256, 384)),                 # 17×17×1024
    *((f'inception_b{i}', _V4_B) for i in range(1, 8)),
    ('reduction_b', _V4_REDUCTION_B),                                  # 8×8×1536
    *((f'inception_c{i}', _V4_C) for i in range(1, 4)),
)


# --- Inception-ResNet: the same paper, Figures 7 and 9-19. The scales are the released v2's
# (0.17, 0.10, 0.20; the paper says only "between 0.1 and 0.3"). ---
def _resnet_reduction_b(a, b, c, d):  # Figures 12 and 18: 17 → 8
  return ((Conv(256, 1), Conv(a, 3, 2, 'VALID')),
          (Conv(256, 1), Conv(b, 3, 2, 'VALID')),
          (Conv(256, 1), Conv(c, 3), Conv(d, 3, 2, 'VALID')),
          (MAX_3x3_S2,))


_RESNET_V1_A = Residual(((Conv(32, 1),),                               # Figure 10: 35×35×256
                         (Conv(32, 1), Conv(32, 3)),
                         (Conv(32, 1), Conv(32, 3), Conv(32, 3))), 0.17)
_RESNET_V1_B = Residual(((Conv(128, 1),),                              # Figure 11: 17×17×896
                         (Conv(128, 1), Conv(128, (1, 7)), Conv(128, (7, 1)))), 0.10)
_RESNET_V1_C = Residual(((Conv(192, 1),),                              # Figure 13: 8×8×1792
                         (Conv(192, 1), Conv(192, (1, 3)), Conv(192, (3, 1)))), 0.20)

INCEPTION_RESNET_V1 = (
    *_V4_STEM,                              # Figure 14, the stem
    ('pool1', MAX_3x3_S2),                  # 73×73×64
    ('conv4', Conv(80, 1)),                 # 73×73×80
    ('conv5', Conv(192, 3, 1, 'VALID')),    # 71×71×192
    ('conv6', Conv(256, 3, 2, 'VALID')),    # 35×35×256
    *((f'inception_resnet_a{i}', _RESNET_V1_A) for i in range(1, 6)),
    ('reduction_a', _reduction_a(192, 192, 256, 384)),                 # 17×17×896
    *((f'inception_resnet_b{i}', _RESNET_V1_B) for i in range(1, 11)),
    ('reduction_b', _resnet_reduction_b(384, 256, 256, 256)),          # 8×8×1792
    *((f'inception_resnet_c{i}', _RESNET_V1_C) for i in range(1, 6)),
)

# v2 as released (TF-slim's inception_resnet_v2, timm's port), not as Figures 15-19 draw it: a
# v3-like stem and an Inception block (mixed_5b) to 35×35×320 in place of Figure 3's stem, the
# blocks 320/1088/2080 wide (the figures' 384/1154/2048 do not add up across Reduction-B),
# 10/20/10 of them (Figure 15: 5/10/5), the last without its ReLU, and a 1×1 conv to 1536
# before the pool.
_RESNET_V2_A = Residual(((Conv(32, 1),),                               # Figure 16: 35×35×320
                         (Conv(32, 1), Conv(32, 3)),
                         (Conv(32, 1), Conv(48, 3), Conv(64, 3))), 0.17)
_RESNET_V2_B = Residual(((Conv(192, 1),),                              # Figure 17: 17×17×1088
                         (Conv(128, 1), Conv(160, (1, 7)), Conv(192, (7, 1)))), 0.10)
_RESNET_V2_C = ((Conv(192, 1),),                                       # Figure 19: 8×8×2080
                (Conv(192, 1), Conv(224, (1, 3)), Conv(256, (3, 1))))

INCEPTION_RESNET_V2 = (
    *_V4_STEM,
    ('pool1', MAX_3x3_S2),                  # 73×73×64
    ('conv4', Conv(80, 1)),                 # 73×73×80
    ('conv5', Conv(192, 3, 1, 'VALID')),    # 71×71×192
    ('pool2', MAX_3x3_S2),                  # 35×35×192
    ('mixed_5b', ((Conv(96, 1),),           # 35×35×320
                  (Conv(48, 1), Conv(64, 5)),
                  (Conv(64, 1), Conv(96, 3), Conv(96, 3)),
                  (AVG_3x3_TF, Conv(64, 1)))),
    *((f'inception_resnet_a{i}', _RESNET_V2_A) for i in range(1, 11)),
    ('reduction_a', _reduction_a(256, 256, 384, 384)),                 # 17×17×1088
    *((f'inception_resnet_b{i}', _RESNET_V2_B) for i in range(1, 21)),
    ('reduction_b', _resnet_reduction_b(384, 288, 288, 320)),          # 8×8×2080
    *((f'inception_resnet_c{i}', Residual(_RESNET_V2_C, 0.20)) for i in range(1, 10)),
    ('inception_resnet_c10', Residual(_RESNET_V2_C, 1.0, relu=False)),
    ('conv7', Conv(1536, 1)),               # 8×8×1536
)


def _apply(step, x, unit, conv, name):
  """Apply one table entry (conv, pool, fork or a whole block) to `x`; `unit` makes a
  conv → BatchNorm → ReLU, `conv` a plain convolution (a residual block's linear 1×1)."""
  if isinstance(step, Conv):
    kernel = (step.kernel,) * 2 if isinstance(step.kernel, int) else step.kernel
    return unit(step.width, kernel, strides=step.stride, padding=step.padding, name=name)(x)
  if isinstance(step, Pool):
    if step.kind == 'max':
      return MaxPool(step.window, step.stride, step.padding, step.ceil_mode, name=name)(x)
    return AvgPool(step.window, step.stride, step.padding, step.count_padding, name=name)(x)
  if isinstance(step, Fork):
    return jnp.concatenate([_apply(c, x, unit, conv, f'{name}{side}') for side, c in
                            (('_1', step.left), ('_2', step.right))], axis=-1)
  if isinstance(step, Residual):
    return ResidualBlock(step, unit, conv, name=name)(x)
  return Block(step, unit, conv, name=name)(x)


def _branches(branches, x, unit, conv):
  """The branches side by side, concatenated on channels (inside a block's compact call)."""
  outputs = []
  for b, steps in enumerate(branches):
    y = x
    for s, step in enumerate(steps):
      y = _apply(step, y, unit, conv, f'branch{b}_{s}')
    outputs.append(y)
  return jnp.concatenate(outputs, axis=-1)


class Block(nn.Module):
  """An Inception block."""
  branches: tuple
  unit: Callable[..., nn.Module]
  conv: Callable[..., nn.Module]

  @nn.compact
  def __call__(self, x):
    return _branches(self.branches, x, self.unit, self.conv)


class ResidualBlock(nn.Module):
  """An Inception-ResNet block (`Residual`)."""
  block: Residual
  unit: Callable[..., nn.Module]
  conv: Callable[..., nn.Module]

  @nn.compact
  def __call__(self, x):
    y = _branches(self.block.branches, x, self.unit, self.conv)
    y = self.conv(x.shape[-1], (1, 1), name='up')(y)  # linear, with a bias
    x = x + self.block.scale * y
    return nn.relu(x) if self.block.relu else x


def units_in_order(table):
  """(path, kind) of every convolution of a table, in the order the network runs them: 'unit'
  (conv → BatchNorm → ReLU) or 'conv' (a residual block's linear 1×1). The released models'
  state dicts list their weights in this order."""
  for name, layer in table:
    yield from _units_of(layer, name)


def _units_of(step, name):
  if isinstance(step, Conv):
    yield name, 'unit'
  elif isinstance(step, Fork):
    yield from ((f'{name}_1', 'unit'), (f'{name}_2', 'unit'))
  elif not isinstance(step, Pool):
    for b, steps in enumerate(step.branches if isinstance(step, Residual) else step):
      for s, inner in enumerate(steps):
        yield from _units_of(inner, f'{name}/branch{b}_{s}')
    if isinstance(step, Residual):
      yield f'{name}/up', 'conv'


class InceptionNet(nn.Module):
  """A BN-era Inception network from its table; global average pool, dropout, linear."""
  layers: tuple
  num_classes: int = 1000
  dropout_rate: float = 0.0
  aux: bool = False
  aux_layers: tuple = ()
  aux_after: str = ''
  bn_epsilon: float = 1e-3
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    if self.aux and not self.aux_layers:
      raise ValueError('this Inception network has no auxiliary classifier: drop aux=True')
    conv = partial(layers.Conv, kernel_init=nn.initializers.he_normal(), dtype=self.dtype,
                   param_dtype=self.param_dtype)
    norm = partial(nn.BatchNorm, use_running_average=not train, momentum=0.9,
                   epsilon=self.bn_epsilon, dtype=self.dtype, param_dtype=self.param_dtype)
    unit = partial(ConvBNReLU, conv=conv, norm=norm)
    dense = partial(nn.Dense, dtype=self.dtype, param_dtype=self.param_dtype)
    # The auxiliary head is built at init (so its parameters exist) and runs only in training.
    with_aux = self.aux and (train or self.is_initializing())
    aux_logits = ()
    for name, layer in self.layers:
      x = _apply(layer, x, unit, conv, name)
      if with_aux and name == self.aux_after:
        y = x
        for aux_name, step in self.aux_layers:
          y = _apply(step, y, unit, conv, f'aux_{aux_name}')
        aux_logits = (dense(self.num_classes, name='aux_fc')(GlobalAvgPool(name='aux_global_pool')(y)),)
    x = GlobalAvgPool(name='global_pool')(x)
    if self.dropout_rate:
      x = nn.Dropout(self.dropout_rate, deterministic=not train, name='drop')(x)
    logits = dense(self.num_classes, name='fc')(x)
    return (logits, aux_logits) if train and self.aux else logits


inception_bn = partial(InceptionNet, INCEPTION_BN, bn_epsilon=1e-5)
inception_v3 = partial(InceptionNet, INCEPTION_V3, dropout_rate=0.2, aux=True,
                       aux_layers=INCEPTION_V3_AUX, aux_after='mixed_6e')
inception_v4 = partial(InceptionNet, INCEPTION_V4, dropout_rate=0.2)
# Figures 9 and 15: dropout (keep 0.8) before the classifier, as in v4.
inception_resnet_v1 = partial(InceptionNet, INCEPTION_RESNET_V1, dropout_rate=0.2)
inception_resnet_v2 = partial(InceptionNet, INCEPTION_RESNET_V2, dropout_rate=0.2)
