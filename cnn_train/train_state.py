"""A config's model, its train state (initialiser and abstract, sharded shapes) and its jitted
train and eval steps: what training, evaluation, benchmarks and given weights all build first."""
import os
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp

import cnn_arch
from cnn_train import augment, cpu_kernels, optim, sharding, steps

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16, 'float16': jnp.float16}
MONITORS = ('val_error', 'val_loss')
INTERPOLATIONS = ('bilinear', 'bicubic')  # of every resize (cnn_train/image_ops.py)


def check_config(config):
  """Fail before any compilation, with the offending key named."""
  if config.dtype not in DTYPES:
    raise ValueError(f'dtype={config.dtype!r}: choose one of {", ".join(DTYPES)}')
  if config.schedule.name not in optim.SCHEDULES:
    raise ValueError(f'schedule.name={config.schedule.name!r}: choose one of '
                     f'{", ".join(optim.SCHEDULES)}')
  if config.schedule.monitor not in MONITORS:
    raise ValueError(f'schedule.monitor={config.schedule.monitor!r}: choose one of '
                     f'{", ".join(MONITORS)}')
  for key in ('batch_size', 'image_size', 'keep_checkpoints', 'log_every_steps',
              'checkpoint_every_steps'):
    if config[key] <= 0:
      raise ValueError(f'{key}={config[key]} must be positive')
  if config.augment.get('interpolation', 'bilinear') not in INTERPOLATIONS:
    raise ValueError(f'augment.interpolation={config.augment.interpolation!r}: choose one of '
                     f'{", ".join(INTERPOLATIONS)}')
  if config.num_epochs <= 0 and config.max_steps <= 0:
    raise ValueError('num_epochs or max_steps must be positive')
  if config.init_from and not os.path.isfile(os.path.join(config.init_from, 'config.json')):
    raise ValueError(f'init_from={config.init_from}: not a run directory (no config.json); give '
                     'the --workdir of a train.py or a weights.py run')
  if config.model.name not in cnn_arch.list_models():
    raise ValueError(f'model.name={config.model.name!r} is not a model of the zoo: choose one of '
                     f'{", ".join(cnn_arch.list_models())}')


def create_model(config, num_classes):
  return cnn_arch.create_model(config.model.name, num_classes, dtype=DTYPES[config.dtype],
                               **config.model.overrides)


def train_state_of(config, info, mesh):
  """(init, abstract state): init(key) makes the train state; the abstract one has its shapes and
  its shardings on `mesh` (replicated, but for the layers a model splits over the 'model' axis).
  Model errors surface here, before anything compiles."""
  model = create_model(config, info.num_classes)
  image_shape = (config.image_size, config.image_size, info.channels)
  boxed_init = partial(steps.create_train_state, model=model, tx=optim.create_optimizer(config),
                       image_shape=image_shape)
  try:
    with cnn_arch.no_empty_maps():
      boxed = jax.eval_shape(boxed_init, jax.random.key(0))
  except cnn_arch.EmptyFeatureMap as e:
    name, overrides = config.model.name, config.model.overrides
    smallest = cnn_arch.smallest_input_size(name, info.channels, **overrides)
    paper = cnn_arch.input_shape(name, **overrides)[0]
    raise ValueError(f'image_size={config.image_size} is too small for {name} ({e}); it takes '
                     f'{smallest}×{smallest} and up (its paper: {paper}×{paper})') from None
  shardings = sharding.state_shardings(boxed, mesh)
  if mesh.shape['model'] > 1 and not any(s.spec for s in jax.tree.leaves(shardings)):
    raise ValueError(f'model_axis={mesh.shape["model"]}: {config.model.name} has no layer split '
                     "over the 'model' axis (AlexNet with towers=2 has); use model_axis=1")
  abstract = jax.tree.map(lambda s, where: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=where),
                          nn.meta.unbox(boxed), shardings)
  return lambda key: nn.meta.unbox(boxed_init(key)), abstract


def choose_cpu_kernels(config, info):
  """On a CPU, time the kernels that have a choice for config's train step (once per CPU and
  shape: cnn_train.cpu_kernels); call before the step is first traced. A line for the user, or
  None."""
  images = jax.ShapeDtypeStruct(
      (config.batch_size, config.image_size, config.image_size, info.channels), jnp.float32)
  return cpu_kernels.choose_input_gradients(create_model(config, info.num_classes), images)


def jitted_steps(config, abstract_state, mesh, schedule=None, dropout_key=None):
  """(train_step, eval_step) jitted over `mesh`: the batch split on 'data', the state laid out as
  `abstract_state` says and donated to the train step (updated in place)."""
  state_sharding = jax.tree.map(lambda s: s.sharding, abstract_state)
  replicated, data = sharding.replicated(mesh), sharding.batch_sharding(mesh)
  mean, std = augment.input_stats(config)
  train = partial(steps.train_step, schedule=schedule, dropout_key=dropout_key,
                  images=partial(augment.train_images, seed=config.seed, mean=mean, std=std,
                                 augment=config.augment),
                  aux_loss_weight=config.aux_loss_weight, label_smoothing=config.label_smoothing,
                  skip_nonfinite=config.skip_nonfinite_steps)
  train_step = jax.jit(sharding.in_mesh(train, mesh), in_shardings=(state_sharding, data),
                       out_shardings=(state_sharding, replicated), donate_argnums=0)
  evaluate = partial(steps.eval_step, images=partial(augment.eval_images, mean=mean, std=std))
  eval_step = jax.jit(sharding.in_mesh(evaluate, mesh),
                      in_shardings=(state_sharding, data), out_shardings=replicated)
  return train_step, eval_step
