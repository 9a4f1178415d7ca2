"""timm's ImageNet networks as modules of the zoo: `from_timm(name, state_dict)`, the contract of
`from_torchvision`.

    model, variables = cnn_arch.from_timm('inception_resnet_v2', state_dict)
    logits = model.apply(variables, images_nhwc, train=False)  # = timm's, on NCHW images

timm's Inception-v4 and Inception-ResNet-v2 are ports of the released TF-slim models, which our
tables follow block by block and branch by branch: their conv → BatchNorm units, residual 1×1
convs and classifier come in timm's state dict in the order our tables run them
(`inception.units_in_order`), so the conversion pairs them in order, checking each pair's kind
and shape (and the tests, the logits). timm's ResNets and Inception-v3 have torchvision's names
and layouts.
"""
import jax
import jax.numpy as jnp

from cnn_arch import inception, registry, torchvision_weights

# timm name -> (our name, the options that make our module that network)
NETWORKS = {
    'inception_v4': ('inception_v4', {}),
    'inception_resnet_v2': ('inception_resnet_v2', {}),
    **{name: ours for name, ours in torchvision_weights.NETWORKS.items()
       if name.startswith('resnet')},
    'inception_v3': ('inception_v3', {}),
}
CLASSIFIERS = {'inception_v4': 'last_linear', 'inception_resnet_v2': 'classif'}


def from_timm(name, state_dict, **options):
  """(model, variables) computing what timm's `name` computes with `state_dict`.

  `state_dict`: timm's parameter and buffer names → numpy arrays or torch tensors; its
  classifier's shape sets the number of classes. `options` go to the model (`dtype=...`,
  `dropout_rate=...`). A name, key or shape that does not fit raises a ValueError naming it.
  """
  if name not in NETWORKS:
    raise ValueError(f'from_timm: unknown network {name!r}; choose one of {", ".join(NETWORKS)}')
  if name not in CLASSIFIERS:  # torchvision's names and layouts
    return torchvision_weights.from_torchvision(name, state_dict, **options)
  arrays = {key: torchvision_weights.to_numpy(value) for key, value in state_dict.items()}
  classifier = f'{CLASSIFIERS[name]}.weight'
  if classifier not in arrays:
    raise ValueError(f'from_timm: the state dict has no {classifier!r}: is it {name}?')
  network, fixed = NETWORKS[name]
  model = registry.create_model(network, num_classes=arrays[classifier].shape[0],
                                 **{**fixed, **options})
  expected = jax.eval_shape(model.init, jax.random.key(0),
                            jnp.zeros((1, *registry.input_shape(network)), jnp.float32))
  theirs = list(_their_layers(arrays))
  ours = [*inception.units_in_order(model.layers), ('fc', 'linear')]
  if len(theirs) != len(ours):
    raise ValueError(f'from_timm: the state dict has {len(theirs)} layers, {name} has '
                     f'{len(ours)}: is it {name}?')
  layers = list(zip(theirs, ours))
  for (key, kind), (path, our_kind) in layers:
    if kind != our_kind:
      raise ValueError(f'from_timm: {key!r} is a {kind}, where {name} has the {our_kind} {path}')
  variables = torchvision_weights.convert(
      f"timm's {name}", arrays,
      [entry for (key, kind), (path, _) in layers for entry in _entries(key, path, kind)],
      expected)
  return model, jax.tree.map(jnp.asarray, variables)


def _entries(theirs, ours, kind):
  if kind == 'unit':  # timm's ConvNormAct, our ConvBNReLU
    return [(f'{theirs}.conv', f'{ours}/conv', 'conv_nobias'), (f'{theirs}.bn', f'{ours}/bn', 'bn')]
  return [(theirs, ours, kind)]


def _their_layers(arrays):
  """(module name, kind) in the state dict's order: 'unit', 'conv' (with a bias) or 'linear'."""
  for key, value in arrays.items():
    if key.endswith('.conv.weight') and key.replace('.conv.weight', '.bn.weight') in arrays:
      yield key.removesuffix('.conv.weight'), 'unit'
    elif key.endswith('.weight') and '.bn.' not in key and '.conv.' not in key:
      yield key.removesuffix('.weight'), 'conv' if value.ndim == 4 else 'linear'
