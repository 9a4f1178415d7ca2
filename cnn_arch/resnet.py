"""ResNet (He et al. 2016), Table 1 of the paper: 18 and 34 with basic blocks, 50+ with bottlenecks.

Shortcuts are identities, projections (1×1 conv + BatchNorm, option B) only where the shape
changes; every conv is bias-free and followed by BatchNorm. The default is the paper's v1, whose
bottleneck strides in its first 1×1 conv; `stride_in_3x3=True` moves the stride to the 3×3
(the "v1.5" of torchvision and NVIDIA). `residual=False` drops every shortcut: the paper's
"plain" network of the same depth, for the degradation experiment.

`cifar_resnet(depth)` is the paper's CIFAR-10 family (Sec. 4.2): 6n+2 layers, a 3×3 conv of 16
filters, then 2n layers on each of 32×32, 16×16 and 8×8 maps with 16, 32 and 64 filters, global
average pooling and a 10-way FC; its shortcuts are option A: identities, and where the shape
changes a stride-2 subsampling padded with zero channels (no parameters).
"""
from functools import partial
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp

from cnn_arch.layers import Conv, GlobalAvgPool, MaxPool

ModuleDef = Callable[..., nn.Module]
WIDTHS = (64, 128, 256, 512)  # conv2_x … conv5_x; a bottleneck block outputs 4× its width
STAGES = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
          152: (3, 8, 36, 3)}
CIFAR_WIDTHS = (16, 32, 64)
CIFAR_DEPTHS = (20, 32, 44, 56, 110, 1202)  # Table 6: n = 3, 5, 7, 9, 18, 200


class BasicBlock(nn.Module):
  """3×3 → 3×3, the block of ResNet-18/34."""
  width: int
  conv: ModuleDef
  norm: ModuleDef
  strides: int = 1
  residual: bool = True
  zero_pad_shortcut: bool = False  # option A of the paper (its CIFAR nets), else B

  @nn.compact
  def __call__(self, x):
    y = nn.relu(self.norm()(self.conv(self.width, (3, 3), self.strides, padding=1)(x)))
    y = self.norm()(self.conv(self.width, (3, 3), padding=1)(y))
    return nn.relu(y + _shortcut(x, y, self) if self.residual else y)


class Bottleneck(nn.Module):
  """1×1 reduce → 3×3 → 1×1 expand to 4× width, the block of ResNet-50/101/152."""
  width: int
  conv: ModuleDef
  norm: ModuleDef
  strides: int = 1
  residual: bool = True
  stride_in_3x3: bool = False

  @nn.compact
  def __call__(self, x):
    stride_1x1, stride_3x3 = (1, self.strides) if self.stride_in_3x3 else (self.strides, 1)
    y = nn.relu(self.norm()(self.conv(self.width, (1, 1), stride_1x1)(x)))
    y = nn.relu(self.norm()(self.conv(self.width, (3, 3), stride_3x3, padding=1)(y)))
    y = self.norm()(self.conv(4 * self.width, (1, 1))(y))
    return nn.relu(y + _shortcut(x, y, self) if self.residual else y)


def _shortcut(x, y, block):
  """Identity, or where the block changes the shape a strided 1×1 projection + BatchNorm
  (option B) or, with `zero_pad_shortcut`, every `strides`-th pixel with zero channels added
  (option A)."""
  if x.shape == y.shape:
    return x
  if getattr(block, 'zero_pad_shortcut', False):
    x = x[:, ::block.strides, ::block.strides]
    return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, y.shape[-1] - x.shape[-1])))
  x = block.conv(y.shape[-1], (1, 1), block.strides, name='proj_conv')(x)
  return block.norm(name='proj_bn')(x)


def _conv_and_norm(net, train):
  """Every ResNet's convolution (bias-free, He's init) and BatchNorm, in the net's dtypes."""
  conv = partial(Conv, use_bias=False, kernel_init=nn.initializers.he_normal(),
                 dtype=net.dtype, param_dtype=net.param_dtype)
  norm = partial(nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5,
                 dtype=net.dtype, param_dtype=net.param_dtype)
  return conv, norm


class ResNet(nn.Module):
  stage_sizes: Sequence[int]
  block: ModuleDef
  num_classes: int = 1000
  stride_in_3x3: bool = False
  residual: bool = True
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    conv, norm = _conv_and_norm(self, train)
    x = conv(64, (7, 7), 2, padding=3, name='conv1')(x)                 # 112×112
    x = MaxPool(3, 2, padding=1, name='pool1')(nn.relu(norm(name='bn1')(x)))  # 56×56
    block = self.block
    if self.stride_in_3x3:
      if block is not Bottleneck:
        raise ValueError('stride_in_3x3 applies to bottleneck ResNets (50, 101, 152) only')
      block = partial(block, stride_in_3x3=True)
    for stage, (blocks, width) in enumerate(zip(self.stage_sizes, WIDTHS)):
      for i in range(blocks):
        strides = 2 if stage > 0 and i == 0 else 1  # conv3_1, conv4_1, conv5_1 halve the map
        x = block(width, conv, norm, strides, self.residual, name=f'conv{stage + 2}_{i + 1}')(x)
    x = GlobalAvgPool(name='global_pool')(x)
    return nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                    name='fc')(x)


def resnet(depth, **kwargs):
  return ResNet(STAGES[depth], BasicBlock if depth < 50 else Bottleneck, **kwargs)


class CifarResNet(nn.Module):
  """The paper's CIFAR-10 networks (Sec. 4.2): `blocks` basic blocks (2 layers each) per stage."""
  blocks: int
  num_classes: int = 10
  residual: bool = True
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    conv, norm = _conv_and_norm(self, train)
    x = nn.relu(norm(name='bn1')(conv(CIFAR_WIDTHS[0], (3, 3), padding=1, name='conv1')(x)))
    for stage, width in enumerate(CIFAR_WIDTHS):
      for i in range(self.blocks):
        strides = 2 if stage > 0 and i == 0 else 1  # 32×32 → 16×16 → 8×8
        x = BasicBlock(width, conv, norm, strides, self.residual, zero_pad_shortcut=True,
                       name=f'stage{stage + 1}_{i + 1}')(x)
    x = GlobalAvgPool(name='global_pool')(x)
    return nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                    name='fc')(x)


def cifar_resnet(depth, **kwargs):
  if (depth - 2) % 6:
    raise ValueError(f'a CIFAR ResNet has 6n+2 layers, not {depth}')
  return CifarResNet((depth - 2) // 6, **kwargs)
