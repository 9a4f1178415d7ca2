"""torchvision's ImageNet networks as modules of the zoo: `from_torchvision(name, state_dict)`.

    model, variables = cnn_arch.from_torchvision('resnet50', state_dict)
    logits = model.apply(variables, images_nhwc, train=False)  # = torchvision's, on NCHW images

Each torchvision network is one of ours built with the options that make it that network
(torchvision's bottleneck ResNets stride in the 3×3 conv: `stride_in_3x3=True`). The layouts
change in one place, `convert`: conv kernels OIHW → HWIO, linear weights (out, in) → (in, out),
and the first linear layer after a flatten reads NHWC instead of NCHW features. BatchNorm's
running mean and variance become `batch_stats`; the epsilons already agree (1e-5, Inception-v3's
1e-3). torch is not needed: the state dict's values may be numpy arrays.
"""
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from cnn_arch import inception, registry, resnet, vgg

_VGG = {11: 'A', 13: 'B', 16: 'D', 19: 'E'}
# torchvision name -> (our name, the options that make our module that network)
NETWORKS = {
    **{f'vgg{depth}{bn}': (f'vgg_{config.lower()}', {'batch_norm': bn == '_bn'})
       for depth, config in _VGG.items() for bn in ('', '_bn')},
    **{f'resnet{depth}': (f'resnet{depth}', {'stride_in_3x3': True} if depth >= 50 else {})
       for depth in resnet.STAGES},
    'inception_v3': ('inception_v3', {}),
}
# The normalisation torchvision's Inception-v3 weights were trained with: [-1, 1] pixels.
# Its `transform_input=True` maps ImageNet-normalised images there, channel by channel.
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

# Inception-v3's modules by torchvision's names, block by block, in the order of our tables.
_V3_STEM = {'conv1a': 'Conv2d_1a_3x3', 'conv2a': 'Conv2d_2a_3x3', 'conv2b': 'Conv2d_2b_3x3',
            'conv3b': 'Conv2d_3b_1x1', 'conv4a': 'Conv2d_4a_3x3'}
_V3_A = ('branch1x1', 'branch5x5_1', 'branch5x5_2', 'branch3x3dbl_1', 'branch3x3dbl_2',
         'branch3x3dbl_3', 'branch_pool')
_V3_B = ('branch3x3', 'branch3x3dbl_1', 'branch3x3dbl_2', 'branch3x3dbl_3')
_V3_C = ('branch1x1', 'branch7x7_1', 'branch7x7_2', 'branch7x7_3', *(
    f'branch7x7dbl_{i}' for i in range(1, 6)), 'branch_pool')
_V3_D = ('branch3x3_1', 'branch3x3_2', *(f'branch7x7x3_{i}' for i in range(1, 5)))
_V3_E = ('branch1x1', 'branch3x3_1', 'branch3x3_2a', 'branch3x3_2b', 'branch3x3dbl_1',
         'branch3x3dbl_2', 'branch3x3dbl_3a', 'branch3x3dbl_3b', 'branch_pool')
_V3_BLOCKS = {'mixed_5b': _V3_A, 'mixed_5c': _V3_A, 'mixed_5d': _V3_A, 'mixed_6a': _V3_B,
              **{f'mixed_6{c}': _V3_C for c in 'bcde'}, 'mixed_7a': _V3_D,
              'mixed_7b': _V3_E, 'mixed_7c': _V3_E}


def from_torchvision(name, state_dict, transform_input=False, **options):
  """(model, variables) computing what torchvision's `name` computes with `state_dict`.

  `state_dict`: torchvision's parameter and buffer names → numpy arrays or torch tensors; its
  classifier's shape sets the number of classes. `transform_input=True` (Inception-v3): the
  network takes ImageNet-normalised images, as torchvision's `inception_v3(weights=...)` does;
  the transform is folded exactly into the first conv and its BatchNorm. `options` go to the
  model (`dtype=jnp.bfloat16`, `dropout_rate=...`), except those that would change the network.
  A name, key or shape that does not fit raises a ValueError naming it.
  """
  if name not in NETWORKS:
    raise ValueError(f'from_torchvision: unknown network {name!r}; choose one of '
                     f'{", ".join(NETWORKS)}')
  ours, fixed = NETWORKS[name]
  if name == 'inception_v3':  # torchvision's aux_logits: whether the state has the head
    fixed = {'aux': any(key.startswith('AuxLogits.') for key in state_dict)}
  clash = sorted(k for k in fixed if k in options and options[k] != fixed[k])
  if clash:
    raise ValueError(f'from_torchvision: {name} has {", ".join(f"{k}={fixed[k]}" for k in clash)}')
  if transform_input and name != 'inception_v3':
    raise ValueError('from_torchvision: transform_input is an option of inception_v3 only')
  arrays = {key: to_numpy(value) for key, value in state_dict.items()}
  classifier = 'fc.weight' if name.startswith(('resnet', 'inception')) else 'classifier.6.weight'
  if classifier not in arrays:
    raise ValueError(f'from_torchvision: the state dict has no {classifier!r}: is it {name}?')
  model = registry.create_model(ours, num_classes=arrays[classifier].shape[0],
                                 **{**fixed, **options})
  expected = jax.eval_shape(model.init, jax.random.key(0),
                            jnp.zeros((1, *registry.input_shape(ours)), jnp.float32))
  layers = {'vgg': _vgg_layers, 'resnet': _resnet_layers, 'inception_v3': _inception_v3_layers}
  family = next(f for f in layers if name.startswith(f))
  variables = convert(f"torchvision's {name}", arrays, layers[family](ours, fixed), expected)
  if transform_input:
    _fold_input_transform(variables, 'conv1a')
  return model, jax.tree.map(jnp.asarray, variables)


def to_numpy(value):
  if hasattr(value, 'detach'):  # a torch tensor (bfloat16 has no numpy twin: through float32)
    value = value.detach().cpu()
    value = value.float() if value.is_floating_point() else value
    return value.numpy()
  return np.asarray(value)


# A layer: (torchvision's module, ours, kind[, (C, H, W)]). Kinds: 'conv' (weight and bias),
# 'conv_nobias', 'bn', 'linear'; (C, H, W): a linear layer reading a flattened NCHW map.
def _vgg_layers(ours, options):
  layers, index, block, conv = [], 0, 1, 1  # torchvision's `features.<index>`
  for layer in vgg.CONFIGS[ours.removeprefix('vgg_').upper()]:
    if layer == 'pool':
      index, block, conv = index + 1, block + 1, 1
      continue
    layers.append((f'features.{index}', f'conv{block}_{conv}', 'conv'))
    if options['batch_norm']:
      layers.append((f'features.{index + 1}', f'bn{block}_{conv}', 'bn'))
    index += 3 if options['batch_norm'] else 2  # conv, (BatchNorm,) ReLU
    conv += 1
  return layers + [('classifier.0', 'fc6', 'linear', (512, 7, 7)),
                   ('classifier.3', 'fc7', 'linear'), ('classifier.6', 'fc8', 'linear')]


def _resnet_layers(ours, options):
  depth = int(ours.removeprefix('resnet'))
  bottleneck = depth >= 50
  layers = [('conv1', 'conv1', 'conv_nobias'), ('bn1', 'bn1', 'bn')]
  for stage, blocks in enumerate(resnet.STAGES[depth], 1):
    for i in range(blocks):
      theirs, block = f'layer{stage}.{i}', f'conv{stage + 1}_{i + 1}'
      for j in range(3 if bottleneck else 2):
        layers += [(f'{theirs}.conv{j + 1}', f'{block}/Conv_{j}', 'conv_nobias'),
                   (f'{theirs}.bn{j + 1}', f'{block}/BatchNorm_{j}', 'bn')]
      if i == 0 and (stage > 1 or bottleneck):  # the shape changes: a projection shortcut
        layers += [(f'{theirs}.downsample.0', f'{block}/proj_conv', 'conv_nobias'),
                   (f'{theirs}.downsample.1', f'{block}/proj_bn', 'bn')]
  return layers + [('fc', 'fc', 'linear')]


def _inception_v3_layers(ours, options):
  units = []  # (torchvision's BasicConv2d, our ConvBNReLU)
  for name, layer in inception.INCEPTION_V3:
    if name in _V3_STEM:
      units.append((_V3_STEM[name], name))
    elif name in _V3_BLOCKS:
      ours_in_order = [path for path, _ in inception.units_in_order(((name, layer),))]
      assert len(ours_in_order) == len(_V3_BLOCKS[name]), name
      units += [(f'Mixed_{name[-2:]}.{theirs}', unit)
                for theirs, unit in zip(_V3_BLOCKS[name], ours_in_order)]
  layers = []
  if options['aux']:
    units += [('AuxLogits.conv0', 'aux_conv0'), ('AuxLogits.conv1', 'aux_conv1')]
    layers.append(('AuxLogits.fc', 'aux_fc', 'linear'))
  for theirs, unit in units:
    layers += [(f'{theirs}.conv', f'{unit}/conv', 'conv_nobias'),
               (f'{theirs}.bn', f'{unit}/bn', 'bn')]
  return layers + [('fc', 'fc', 'linear')]


def _entries(theirs, ours, kind, flattened=None):
  """(torchvision key, our collection/path, layout change) of one layer's arrays."""
  conv = lambda w: w.transpose(2, 3, 1, 0)  # OIHW → HWIO
  linear = lambda w: w.T
  if flattened:  # NCHW flatten → NHWC flatten: reorder the input axis
    c, h, w = flattened
    linear = lambda x: x.reshape(-1, c, h, w).transpose(2, 3, 1, 0).reshape(h * w * c, -1)
  same = lambda x: x
  if kind == 'bn':
    return [(f'{theirs}.weight', f'params/{ours}/scale', same),
            (f'{theirs}.bias', f'params/{ours}/bias', same),
            (f'{theirs}.running_mean', f'batch_stats/{ours}/mean', same),
            (f'{theirs}.running_var', f'batch_stats/{ours}/var', same)]
  entries = [(f'{theirs}.weight', f'params/{ours}/kernel',
              conv if kind.startswith('conv') else linear)]
  if kind != 'conv_nobias':
    entries.append((f'{theirs}.bias', f'params/{ours}/bias', same))
  return entries


def convert(name, arrays, layers, expected):
  """Our variables from a PyTorch state dict of numpy `arrays`, layer by layer.

  `layers`: (PyTorch module name, our module path 'a/b', kind[, (C, H, W)]) as above;
  `expected`: our variables' shapes (`jax.eval_shape` of `model.init`). Every key must be used
  (BatchNorm's `num_batches_tracked` aside) and every shape fit; `name` is for the errors.
  """
  shapes = traverse_util.flatten_dict(nn.meta.unbox(expected), sep='/')  # towers box theirs
  entries = [e for layer in layers for e in _entries(*layer)]
  wanted = {key for key, _, _ in entries}
  extra = sorted(k for k in arrays if k not in wanted and not k.endswith('.num_batches_tracked'))
  missing = [key for key, _, _ in entries if key not in arrays]
  for keys, what in ((missing, 'has no'), (extra, 'has an unexpected key')):
    if keys:
      more = f' (and {len(keys) - 1} more)' if len(keys) > 1 else ''
      raise ValueError(f'from_torchvision: the state dict {what} {keys[0]!r}{more}: '
                       f'is it {name}?')
  flat = {}
  for key, path, layout in entries:
    value = layout(arrays[key].astype(np.float32))
    if value.shape != shapes[path].shape:
      raise ValueError(f'from_torchvision: {key!r} has shape {arrays[key].shape}, which does not '
                       f'fit {name} (ours: {path} of shape {shapes[path].shape})')
    flat[path] = value
  return traverse_util.unflatten_dict(flat, sep='/')


def _fold_input_transform(variables, first_unit):
  """Make the first conv take ImageNet-normalised x instead of x' = a·x + b ([-1, 1] pixels).

  conv(a·x + b) = conv'(x) + Σ kernel·b, with conv' the kernel scaled by a on its input channels;
  the constant (exact: the first conv is unpadded) moves into BatchNorm's running mean."""
  scale = np.asarray(IMAGENET_STD) / 0.5
  shift = (np.asarray(IMAGENET_MEAN) - 0.5) / 0.5
  kernel = variables['params'][first_unit]['conv']['kernel']
  variables['params'][first_unit]['conv']['kernel'] = (kernel * scale[:, None]).astype(np.float32)
  stats = variables['batch_stats'][first_unit]['bn']
  stats['mean'] = (stats['mean'] - np.einsum('hwio,i->o', kernel, shift)).astype(np.float32)


def read_state_dict(path):
  """A state dict from a file: a torch `.pth`/`.pt`/`.bin` (needs torch; read with
  `weights_only=True`, so that no pickled code runs), or a `.safetensors` or `.npz` of the same
  names."""
  if not os.path.isfile(path):
    raise ValueError(f'{path}: no such file')
  if path.endswith('.npz'):
    with np.load(path) as arrays:
      return dict(arrays)
  if path.endswith('.safetensors'):
    from safetensors.numpy import load_file
    return load_file(path)
  if path.endswith(('.pth', '.pt', '.bin')):
    try:
      import torch
    except ImportError:
      raise ValueError(f'{path}: reading a .pth needs torch (pip install torch), or give the '
                       'weights as .safetensors or .npz') from None
    try:
      state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # pickled code, a truncated file, not a checkpoint at all
      raise ValueError(f'{path}: not a torch state dict that loads safely '
                       f'({type(e).__name__}: {str(e).splitlines()[0][:120]})') from None
    if not isinstance(state, dict) or not all(hasattr(v, 'shape') for v in state.values()):
      raise ValueError(f'{path}: holds a {type(state).__name__}, not a state dict of tensors')
    return state
  raise ValueError(f'{path}: give a .pth, .bin, .safetensors or .npz file')
