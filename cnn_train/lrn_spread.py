"""How much each LRN layer normalises: the spread of its divisor (k + α Σ a²)^β over every unit of
a batch of photos. On the papers' raw-pixel input it varies from unit to unit; on a unit-variance
input the activations are so small that it is k^β everywhere, and LRN only divides by a constant
(issue 27)."""
import flax.linen as nn
import jax
import jax.numpy as jnp

from cnn_arch import layers
from cnn_train import augment, input_pipeline, sources, train_state

PERCENTILES = (1, 50, 99)


def divisor_spread(model, variables, images):
  """{LRN layer name: (p1, p50, p99, max) of its divisor} on the float model input `images`."""
  def forward(variables, images):
    divisors = {}

    def record(next_fun, args, kwargs, context):
      lrn = context.module
      if isinstance(lrn, layers.LRN) and context.method_name == '__call__':
        divisors['/'.join(lrn.path)] = layers.lrn_divisor(args[0], lrn.size, lrn.k, lrn.alpha,
                                                          lrn.beta)
      return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
      model.apply(variables, images, train=False)
    return {name: jnp.append(jnp.percentile(d, jnp.asarray(PERCENTILES)), d.max())
            for name, d in divisors.items()}

  return {name: tuple(map(float, values))
          for name, values in jax.jit(forward)(variables, images).items()}


def photos(config, count):
  """`count` photos of config's evaluation split, as its evaluation transform makes them
  (uint8), then the model's input."""
  batch = next(input_pipeline.eval_batches(config, count))
  images = batch['image'][batch['mask']]
  return augment.normalize(images, *augment.input_stats(config))


def of_config(config, count=32, variables=None):
  """divisor_spread of config's model on `count` of its evaluation photos, with `variables` (a
  run's) or a fresh initialisation from config.seed."""
  info = sources.dataset_info(config)
  model = train_state.create_model(config, info.num_classes)
  images = photos(config, count)
  if variables is None:
    variables = jax.jit(lambda key: model.init(key, images[:1], train=False))(
        jax.random.key(config.seed))
  spread = divisor_spread(model, variables, images)
  if not spread:
    raise ValueError(f'{config.model.name} with {dict(config.model.overrides)} has no LRN layer')
  return spread


def table(spread):
  """The lines that print `spread`."""
  lines = [f'{"layer":<24}{"p1":>10}{"p50":>10}{"p99":>10}{"max":>10}']
  lines += [f'{name:<24}' + ''.join(f'{v:>10.4f}' for v in values)
            for name, values in spread.items()]
  return lines


def summary(spread):
  """p1/p50/p99 of each layer in one cell of a sweep's table: 'norm1 1.68/1.70/3.53, norm2 …'."""
  return ', '.join(f'{name.split("/")[-1]} {p1:.2f}/{p50:.2f}/{p99:.2f}'
                   for name, (p1, p50, p99, _) in spread.items())
