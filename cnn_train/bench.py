"""Time the training step of a model, or the input pipeline alone.

    python -m cnn_train.bench --model=alexnet --batch=32                 # train step, all devices
    python -m cnn_train.bench --model=resnet50 --batch=256 --dtype=bfloat16 --json
    python -m cnn_train.bench --model=alexnet --batch=128 --input=folder:data/imagenette2-224

The train step is the one train.py runs (the model's config: its optimizer, weight decay, loss),
on a synthetic batch already on the devices, so the figures are the step alone. It prints compile
time, ms per step, images/s, the achieved model FLOP/s (6 × MACs per image and step: forward
2 ×, backward 4 ×), MFU against the device's bf16 peak where it is known, and peak memory.
`--input` times the input pipeline with the model's training augmentation instead: images/s
and the CPU cores it kept busy.
"""
import argparse
import importlib
import json
import resource
import sys
import time

from cnn_train import runtime

# name prefix -> (config module, its variant argument)
FAMILIES = (('vgg_', 'vgg', lambda n: n[4:].upper().replace('_LRN', '-LRN')),
            ('resnet', 'resnet', lambda n: n[6:]),
            ('inception_', 'inception', lambda n: n[10:]))

# bf16 dense peak FLOP/s of one device, for MFU (model FLOP/s ÷ peak).
PEAK_FLOPS = {'H100': 989e12, 'H200': 989e12, 'A100': 312e12, 'L4': 121e12, 'L40S': 362e12,
              'RTX 4090': 165e12, 'RTX 3090': 71e12, 'V100': 125e12, 'TPU v4': 275e12,
              'TPU v5 lite': 197e12, 'TPU v5p': 459e12}


def model_config(name, arg=None):
  """The training config of model `name`: its family's config file at that variant, plus the
  config-string arguments `arg` ('towers=2')."""
  import cnn_arch
  name = cnn_arch.ALIASES.get(name, name)
  cnn_arch.input_shape(name)  # an unknown name: the registry's error
  module, variant = name, None
  for prefix, family, variant_of in FAMILIES:
    if name.startswith(prefix):
      module, variant = family, variant_of(name)
  arg = ','.join(a for a in (variant, arg) if a) or None
  config = importlib.import_module(f'configs.{module}').get_config(arg)
  assert config.model.name == name, (config.model.name, name)
  return config


def peak_flops(device):
  kind = getattr(device, 'device_kind', '')
  return next((v for k, v in PEAK_FLOPS.items() if k.lower() in kind.lower()), None)


def bench_train_step(name, batch, steps=10, dtype='float32', image_size=None, devices=None,
                     config_arg=None):
  import jax
  import numpy as np

  import cnn_arch
  from cnn_train import input_pipeline, sharding, trainer
  config = model_config(name, config_arg)
  config.update(batch_size=batch, dtype=dtype, image_size=image_size or config.image_size)
  mesh = sharding.create_mesh(devices, config.model_axis)
  sharding.check_batch_size(batch, mesh)
  channels = cnn_arch.input_shape(name)[-1]
  num_classes = 10 if name == 'lenet5' else 1000
  info = input_pipeline.DatasetInfo(num_classes, 1_000_000, 50_000, channels)
  init, abstract_state = trainer.train_state_of(config, info, mesh)
  train_step, _ = trainer.jitted_steps(config, abstract_state, mesh, lambda _: config.lr,
                                       jax.random.key(1))
  state = jax.jit(init, out_shardings=jax.tree.map(lambda s: s.sharding, abstract_state))(
      jax.random.key(0))
  rng = np.random.default_rng(0)
  images = rng.standard_normal((batch, config.image_size, config.image_size, channels), np.float32)
  labels = rng.integers(0, num_classes, batch).astype(np.int32)
  data = sharding.batch_sharding(mesh)
  batch_arrays = {'image': jax.device_put(images, data), 'label': jax.device_put(labels, data)}

  start = time.perf_counter()
  compiled = train_step.lower(state, batch_arrays).compile()
  compile_s = time.perf_counter() - start
  memory = compiled.memory_analysis()  # per device: the program XLA runs on each
  for _ in range(2):  # warm-up: allocations, autotuning
    state, metrics = compiled(state, batch_arrays)
  jax.block_until_ready(metrics)
  start = time.perf_counter()
  for _ in range(steps):
    state, metrics = compiled(state, batch_arrays)
  jax.block_until_ready((state, metrics))
  seconds = (time.perf_counter() - start) / steps

  from cnn_arch.summary import summarize
  macs = summarize(name, config.image_size, num_classes, channels=channels,
                   **config.model.overrides)['macs']
  flops = 6 * macs * batch / seconds
  result = {'model': name, 'batch': batch, 'dtype': dtype, 'image_size': config.image_size,
            'devices': mesh.size, 'model_axis': mesh.shape['model'],
            'device_kind': mesh.devices.flat[0].device_kind,
            'compile_s': round(compile_s, 2), 'ms_per_step': round(1000 * seconds, 2),
            'images_per_s': round(batch / seconds, 1), 'model_flops_per_s': flops,
            'peak_rss_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
  if memory is not None:  # on one device: the state and batch it holds; the step's temporaries
    result['device_state_mb'] = round(memory.argument_size_in_bytes / 2**20)
    result['device_temp_mb'] = round(memory.temp_size_in_bytes / 2**20)
  peak = peak_flops(mesh.devices.flat[0])
  if peak:
    result['mfu'] = round(flops / (peak * mesh.size), 4)
  stats = mesh.devices.flat[0].memory_stats() or {}
  if 'peak_bytes_in_use' in stats:
    result['peak_device_mb'] = round(stats['peak_bytes_in_use'] / 2**20)
  return result


def bench_input(name, dataset, batch, steps=20):
  """Images/s of the training input pipeline (decode, augment, batch) and the cores it used."""
  from cnn_train import input_pipeline
  from configs import common
  config = model_config(name)
  common.set_dataset(config, dataset, image_size=config.image_size)  # the model's size
  config.batch_size = batch
  batches = input_pipeline.train_batches(config, batch)
  for _ in range(3):  # warm-up: threads, autotuning, file cache
    next(batches)
  wall, cpu = time.perf_counter(), time.process_time()
  for _ in range(steps):
    next(batches)
  wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
  return {'dataset': dataset, 'model': name, 'batch': batch,
          'images_per_s': round(steps * batch / wall, 1), 'cores': round(cpu / wall, 2),
          'images_per_s_per_core': round(steps * batch / cpu, 1)}


def main(argv=None):
  parser = argparse.ArgumentParser(prog='python -m cnn_train.bench', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--model', required=True, help='a model name (cnn_arch.list_models())')
  parser.add_argument('--batch', type=int, required=True, help='global batch size')
  parser.add_argument('--steps', type=int, default=10, help='timed steps (after 2 warm-up)')
  parser.add_argument('--dtype', default='float32', choices=('float32', 'bfloat16'))
  parser.add_argument('--image-size', type=int, help="default: the model's config")
  parser.add_argument('--config-arg', metavar='ARGS',
                      help="config-string arguments of the model's config: towers=2, lrn=False")
  parser.add_argument('--input', metavar='DATASET', help='time the input pipeline on DATASET')
  parser.add_argument('--json', action='store_true', help='one JSON object, nothing else')
  args = parser.parse_args(argv)
  try:
    if args.input:
      result = bench_input(args.model, args.input, args.batch, args.steps)
    else:
      result = bench_train_step(args.model, args.batch, args.steps, args.dtype, args.image_size,
                                config_arg=args.config_arg)
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  if args.json:
    print(json.dumps(result))
  else:
    for key, value in result.items():
      shown = f'{value / 1e9:,.1f} GFLOP/s' if key == 'model_flops_per_s' else value
      print(f'{key:>24}  {shown}')
  return 0


if __name__ == '__main__':
  runtime.prepare_process()
  sys.exit(main())
