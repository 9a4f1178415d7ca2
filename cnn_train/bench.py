"""Figures of a config's training: its jitted train step, or its input pipeline alone.

The command line is bench.py at the project root (it loads the model's config).
The train step is the one train.py runs (the config's optimizer, weight decay, loss, and the
float augmentation on the device), on a synthetic uint8 batch already on the devices, so the
figures are the step alone: compile time, ms per step, images/s, the achieved model FLOP/s
(6 × MACs per image and step: forward 2 ×, backward 4 ×), MFU against the device's bf16 peak
where it is known, and memory.
"""
import resource
import sys
import time

# bf16 dense peak FLOP/s of one device, for MFU (model FLOP/s ÷ peak).
PEAK_FLOPS = {'H100': 989e12, 'H200': 989e12, 'A100': 312e12, 'L4': 121e12, 'L40S': 362e12,
              'RTX 4090': 165e12, 'RTX 3090': 71e12, 'V100': 125e12, 'TPU v4': 275e12,
              'TPU v5 lite': 197e12, 'TPU v5p': 459e12}


def peak_flops(device):
  kind = getattr(device, 'device_kind', '')
  return next((v for k, v in PEAK_FLOPS.items() if k.lower() in kind.lower()), None)


def train_step(config, steps=10, devices=None):
  """Figures of config's jitted train step (config.batch_size, config.dtype, config.image_size)
  on a synthetic uint8 batch already on the devices, `steps` timed steps after 2 warm-up ones."""
  import jax
  import numpy as np

  import cnn_arch
  from cnn_train import sharding, sources, train_state
  name, batch, dtype = config.model.name, config.batch_size, config.dtype
  mesh = sharding.create_mesh(devices, config.model_axis)
  sharding.check_batch_size(batch, mesh)
  channels = cnn_arch.input_shape(name)[-1]
  num_classes = 10 if name == 'lenet5' else 1000
  info = sources.DatasetInfo(num_classes, 1_000_000, 50_000, channels)
  init, abstract_state = train_state.train_state_of(config, info, mesh)
  chosen = train_state.choose_cpu_kernels(config, info)
  if chosen:
    print(chosen, file=sys.stderr)
  train_step, _ = train_state.jitted_steps(config, abstract_state, mesh, lambda _: config.lr,
                                       jax.random.key(1))
  state = jax.jit(init, out_shardings=jax.tree.map(lambda s: s.sharding, abstract_state))(
      jax.random.key(0))
  rng = np.random.default_rng(0)
  host_batch = {  # what the input pipeline gives: uint8 images, labels, example indices
      'image': rng.integers(0, 256, (batch, config.image_size, config.image_size, channels),
                            np.uint8),
      'label': rng.integers(0, num_classes, batch).astype(np.int32),
      'index': np.arange(batch, dtype=np.uint32)}
  batch_arrays = jax.device_put(host_batch, sharding.batch_sharding(mesh))

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


def input_pipeline(config, steps=20):
  """Images/s of config's training input pipeline alone (decode, crop, resize, flip, batch: the
  host's work), the CPU cores it kept busy and the images/s per busy core."""
  from cnn_train import input_pipeline as pipeline
  batch = config.batch_size
  batches = pipeline.train_batches(config, batch)
  for _ in range(3):  # warm-up: threads, autotuning, file cache
    next(batches)
  wall, cpu = time.perf_counter(), time.process_time()
  for _ in range(steps):
    next(batches)
  wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
  return {'dataset': config.dataset, 'model': config.model.name, 'batch': batch,
          'images_per_s': round(steps * batch / wall, 1), 'cores': round(cpu / wall, 2),
          'images_per_s_per_core': round(steps * batch / cpu, 1)}


if __name__ == '__main__':  # the command before bench.py: one line that says where it went
  import sys
  print('error: the benchmark command is now `python bench.py ARGS` at the project root (the '
        'same flags and output)', file=sys.stderr)
  sys.exit(2)
