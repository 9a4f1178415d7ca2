"""The zoo's registry: each model's name, constructor and the input its paper's figures hold at;
`create_model` with its options checked, and the check that an input is large enough."""
import contextlib
import dataclasses
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp

from cnn_arch import inception, resnet
from cnn_arch.alexnet import AlexNet
from cnn_arch.googlenet import GoogLeNet
from cnn_arch.lenet import LeNet5
from cnn_arch.nin import NiN
from cnn_arch.vgg import VGG

# name -> (constructor, input (H, W, C) at which the paper's figures hold)
_MODELS = {
    'lenet5': (LeNet5, (28, 28, 1)),
    'alexnet': (AlexNet, (227, 227, 3)),
    **{f'vgg_{c.lower().replace("-", "_")}': (partial(VGG, config=c), (224, 224, 3))
       for c in ('A', 'A-LRN', 'B', 'C', 'D', 'E', 'B-5x5')},
    'nin': (NiN, (224, 224, 3)),
    'googlenet': (GoogLeNet, (224, 224, 3)),
    'inception_bn': (inception.inception_bn, (224, 224, 3)),
    'inception_v3': (inception.inception_v3, (299, 299, 3)),
    'inception_v4': (inception.inception_v4, (299, 299, 3)),
    'inception_resnet_v1': (inception.inception_resnet_v1, (299, 299, 3)),
    'inception_resnet_v2': (inception.inception_resnet_v2, (299, 299, 3)),
    **{f'resnet{d}': (partial(resnet.resnet, d), (224, 224, 3)) for d in resnet.STAGES},
    **{f'resnet{d}': (partial(resnet.cifar_resnet, d), (32, 32, 3)) for d in resnet.CIFAR_DEPTHS},
}
ALIASES = {'vgg11': 'vgg_a', 'vgg13': 'vgg_b', 'vgg16': 'vgg_d', 'vgg19': 'vgg_e'}


def register(name, constructor, input_shape):
  """Add a model of your own to the zoo, for train.py, eval.py and the summary tool:
  `constructor(num_classes=..., dtype=..., **options)` returns a Linen module whose
  `__call__(x, train)` takes NHWC images of `input_shape` (H, W, C) at its paper's size."""
  if name in _MODELS or name in ALIASES:
    raise ValueError(f'model {name!r} is already in the zoo')
  _MODELS[name] = (constructor, tuple(input_shape))


def list_models():
  """Every model name, aliases included."""
  return sorted([*_MODELS, *ALIASES])


def _lookup(name):
  key = ALIASES.get(name, name)
  if key not in _MODELS:
    raise ValueError(f'unknown model {name!r}; known models: {", ".join(list_models())}')
  return _MODELS[key]


def create_model(name, num_classes=None, **overrides):
  """The network `name`, with `num_classes` outputs (default: its paper's, 1000 or LeNet's 10).

  `overrides` are the model's own options (`groups=2`, `lrn=False`, `aux=False`,
  `batch_norm=True`, `stride_in_3x3=True`, `dtype=jnp.bfloat16`, ...); an unknown one is an
  error that names it and lists the accepted ones.
  """
  constructor, _ = _lookup(name)
  accepted = {f.name for f in dataclasses.fields(constructor())} - {'parent', 'name'}
  unknown = sorted(set(overrides) - accepted)
  if unknown:
    raise ValueError(f'{name}: unknown option(s) {", ".join(unknown)}; '
                     f'it accepts {", ".join(sorted(accepted))}')
  if num_classes is not None:
    overrides['num_classes'] = num_classes
  return constructor(**overrides)


def input_shape(name, **overrides):
  """(H, W, C) of the images the model takes at its paper's size."""
  _, shape = _lookup(name)
  if ALIASES.get(name, name) == 'lenet5' and overrides.get('conv1_padding', 2) == 0:
    return (32, 32, 1)  # the paper's unpadded 32×32 input
  return shape


class EmptyFeatureMap(ValueError):
  """A layer's output map has no pixels: the input is too small for the model."""


@contextlib.contextmanager
def no_empty_maps():
  """Inside it, running or tracing a model raises EmptyFeatureMap at the first layer whose output
  feature map is empty: the input is too small for the model (say AlexNet below 67×67), which
  would otherwise flatten zero features and train a classifier that never sees the image."""
  def check(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    for leaf in jax.tree.leaves(out):
      if getattr(leaf, 'ndim', 0) == 4 and 0 in leaf.shape[1:3]:
        layer = '/'.join(context.module.path) or context.module.name
        raise EmptyFeatureMap(f'layer {layer} outputs an empty {leaf.shape[1]}×{leaf.shape[2]} map')
    return out

  with nn.intercept_methods(check):
    yield


def smallest_input_size(name, channels=3, **overrides):
  """The smallest square input the model runs on without an empty feature map (None: none)."""
  model = create_model(name, **overrides)

  def runs(size):
    x = jax.ShapeDtypeStruct((1, size, size, channels), jnp.float32)
    try:
      with no_empty_maps():
        jax.eval_shape(model.init, jax.random.key(0), x)
    except (ValueError, TypeError, ZeroDivisionError):
      return False
    return True

  low, high = 1, 1024
  if not runs(high):
    return None
  while low < high:  # the model runs at `high`, not below `low`
    middle = (low + high) // 2
    low, high = (low, middle) if runs(middle) else (middle + 1, high)
  return high
