"""How much a freshly initialised network's layers depend on the image: why a recipe starts slowly.

    .venv/bin/python benchmarks/init_signal.py --config=configs/alexnet.py --data=folder:PATH
    .venv/bin/python benchmarks/init_signal.py --config=configs/alexnet.py:initializer=he --data=…

For a batch of real photos through the model as its config initialises it, as the first train
step sees them (BatchNorm normalising with the batch's statistics; inference mode for networks
without BatchNorm, so that dropout does not add to the spread), prints for each top-level
layer the spread of its outputs across images (the std over the batch, averaged over units)
relative to their size (mean |value|): near 0, every image gives the same output, and the
gradient of the loss carries almost nothing about the image back to the first layers — the run
stays at chance until the weights have grown the signal. Also the first batch's loss, and the
relative gradient |∇W| / |W| of each layer's kernel for one batch.
"""
import argparse
import importlib
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--config', required=True, help='configs/FILE.py[:ARGS]')
  parser.add_argument('--data', required=True, help='a dataset: folder:PATH, fashion_mnist, …')
  parser.add_argument('--image-size', type=int, default=128)
  parser.add_argument('--batch', type=int, default=64)
  args = parser.parse_args()

  import jax
  import numpy as np
  import optax

  import cnn_arch
  from cnn_train import augment, input_pipeline, sources
  path, _, config_arg = args.config.partition(':')
  module = importlib.import_module('configs.' + os.path.splitext(os.path.basename(path))[0])
  config = module.get_config(','.join(filter(None, [config_arg, f'dataset={args.data}'])))
  config.image_size, config.augment.resize = args.image_size, 0
  info = sources.dataset_info(config)
  # The eval split in its stored order is sorted by class: shuffle the train split instead.
  batch = next(input_pipeline.train_batches(config, args.batch))
  # The model's input as the config feeds it (the uint8 batch is transformed on the device).
  batch['image'] = augment.normalize(batch['image'], *augment.input_stats(config))
  model = cnn_arch.create_model(config.model.name, info.num_classes, **config.model.overrides)
  variables = model.init(jax.random.key(config.seed), batch['image'][:1])
  # In inference mode a fresh BatchNorm (mean 0, variance 1) is the identity: not what training
  # sees. Its batch statistics are what the first steps normalise with.
  train = 'batch_stats' in variables
  mode = dict(train=True, rngs={'dropout': jax.random.key(0)}) if train else {}
  mutable = ['batch_stats'] if train else []

  def forward(params, **kwargs):
    return model.apply({**variables, 'params': params}, batch['image'], **mode, **kwargs)

  _, state = forward(variables['params'], capture_intermediates=True,
                     mutable=mutable + ['intermediates'])
  print(f'{config.model.name} {config.model.overrides.to_dict()}, {args.batch} images of '
        f'{config.dataset} at {args.image_size}×{args.image_size}')
  print(f'{"layer":24s} {"mean |output|":>14s} {"spread":>10s} {"spread/size":>12s}')
  for name, outputs in state['intermediates'].items():
    if '__call__' not in outputs:
      continue
    out = np.asarray(outputs['__call__'][0]).reshape(args.batch, -1)
    size, spread = np.abs(out.mean(0)).mean(), out.std(0).mean()
    print(f'{name:24s} {size:14.3e} {spread:10.3e} {spread / size:12.2%}')

  def loss(params):
    logits = forward(params, mutable=mutable)[0]  # a list, even empty: apply returns a pair
    logits = logits[0] if isinstance(logits, tuple) else logits  # no auxiliary heads
    return optax.softmax_cross_entropy_with_integer_labels(logits, batch['label']).mean()

  value, grads = jax.value_and_grad(loss)(variables['params'])
  print(f'loss {value:.3f} (chance: ln {info.num_classes} = {np.log(info.num_classes):.3f})')
  def names(path):  # dict keys only: grouped (towers) kernels are boxed, a `.value` below
    return [str(k.key) for k in path if hasattr(k, 'key')]
  kernels = {'/'.join(names(p)[:-1]): (g, w) for (p, g), w in zip(
      jax.tree_util.tree_flatten_with_path(grads)[0], jax.tree.leaves(variables['params']))
      if names(p)[-1] == 'kernel'}
  print('|∇W| / |W| of each kernel, one batch:')
  print('  ' + ', '.join(f'{name} {np.linalg.norm(g) / np.linalg.norm(w):.1e}'
                         for name, (g, w) in kernels.items()))


if __name__ == '__main__':
  main()
