"""train_and_evaluate: the whole run, from a config to a trained, checkpointed, evaluated model."""
import json
import os
import sys
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import tqdm
from clu import metric_writers

import cnn_arch
from cnn_train import checkpoints, input_pipeline, optim, sharding, steps

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16, 'float16': jnp.float16}
MONITORS = ('val_error', 'val_loss')


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
  if config.num_epochs <= 0 and config.max_steps <= 0:
    raise ValueError('num_epochs or max_steps must be positive')


def create_model(config, num_classes):
  return cnn_arch.create_model(config.model.name, num_classes, dtype=DTYPES[config.dtype],
                               **config.model.overrides)


def check_workdir(workdir, config):
  """A workdir holds one run: refuse to resume a run of another model in it."""
  path = os.path.join(workdir, 'config.json')
  if os.path.exists(path):
    with open(path) as f:
      previous = json.load(f)['model']['name']
    if previous != config.model.name:
      raise ValueError(f'{workdir} holds a run of {previous}, not {config.model.name}; '
                       'use another --workdir')


class MetricsLog:
  """metrics.jsonl (one JSON object per line), TensorBoard events (clu) and the terminal."""

  def __init__(self, workdir):
    is_main = jax.process_index() == 0
    self.writer = metric_writers.create_default_writer(workdir, just_logging=not is_main)
    self.jsonl = open(os.path.join(workdir, 'metrics.jsonl'), 'a') if is_main else None

  def write(self, step, epoch, metrics):
    metrics = {k: float(v) for k, v in metrics.items()}
    self.writer.write_scalars(step, metrics)
    if self.jsonl:
      self.jsonl.write(json.dumps({'step': step, 'epoch': round(epoch, 4), **metrics}) + '\n')
      self.jsonl.flush()

  def close(self):
    self.writer.flush()
    if self.jsonl:
      self.jsonl.close()


def evaluate(eval_step, state, config, mesh, split=None, crops=1):
  """Loss, top-1, top-5 over every example of the split exactly once (padded, masked)."""
  local_batch = config.batch_size // jax.process_count()
  batches = input_pipeline.eval_batches(config, local_batch, split, jax.process_index(),
                                        jax.process_count(), crops)
  totals = None
  for batch in sharding.prefetch(batches, mesh):
    sums = eval_step(state, batch)
    totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
  totals = jax.device_get(totals)
  count = int(totals['count'])
  return {'val_loss': totals['loss'] / count, 'val_top1': totals['top1'] / count,
          'val_top5': totals['top5'] / count, 'val_examples': count}


def train_state_of(config, info, mesh):
  """(init, abstract state): init(key) makes the train state; the abstract one has its shapes and
  its (replicated) shardings on `mesh`. Model errors surface here, before anything compiles."""
  model = create_model(config, info.num_classes)
  image_shape = (config.image_size, config.image_size, info.channels)
  init = partial(steps.create_train_state, model=model, tx=optim.create_optimizer(config),
                 image_shape=image_shape)
  replicated = sharding.replicated(mesh)
  abstract = jax.eval_shape(init, jax.random.key(0))
  return init, jax.tree.map(
      lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated), abstract)


def train_and_evaluate(config, workdir, devices=None):
  """Train `config` in `workdir` (resuming from its latest checkpoint); returns the final eval."""
  check_config(config)
  mesh = sharding.create_mesh(devices)
  sharding.check_batch_size(config.batch_size, mesh)
  os.makedirs(workdir, exist_ok=True)
  check_workdir(workdir, config)
  info = input_pipeline.dataset_info(config)
  steps_per_epoch = max(info.num_train // config.batch_size, 1)
  total_steps = config.max_steps or config.num_epochs * steps_per_epoch
  eval_every = max(int(config.eval_every_epochs * steps_per_epoch), 1)
  schedule = optim.create_schedule(config, steps_per_epoch, total_steps)
  init_key, dropout_key = jax.random.split(jax.random.key(config.seed))
  init, abstract_state = train_state_of(config, info, mesh)
  replicated, data = sharding.replicated(mesh), sharding.batch_sharding(mesh)
  state_sharding = jax.tree.map(lambda s: s.sharding, abstract_state)

  manager = checkpoints.create_manager(workdir, config)
  plateau = optim.plateau_init(config)
  if manager.latest_step() is not None:
    state, record = checkpoints.restore(manager, abstract_state)
    plateau = optim.plateau_from_json(config, record['plateau'])
    print(f'resumed from step {int(state.step)} of {workdir}', flush=True)
  else:
    state = jax.jit(init, out_shardings=state_sharding)(init_key)
  if jax.process_index() == 0:
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      f.write(config.to_json_best_effort(indent=2))

  train_step = jax.jit(
      partial(steps.train_step, schedule=schedule, dropout_key=dropout_key,
              aux_loss_weight=config.aux_loss_weight, label_smoothing=config.label_smoothing),
      in_shardings=(state_sharding, data), out_shardings=(state_sharding, replicated),
      donate_argnums=0)
  eval_step = jax.jit(steps.eval_step, in_shardings=(state_sharding, data),
                      out_shardings=replicated)

  log = MetricsLog(workdir)
  start = int(state.step)
  local_batch = config.batch_size // jax.process_count()
  batches = sharding.prefetch(input_pipeline.train_batches(
      config, local_batch, start, jax.process_index(), jax.process_count()), mesh)
  bar = tqdm.tqdm(total=total_steps, initial=start, unit='step', dynamic_ncols=True,
                  disable=not sys.stderr.isatty() or jax.process_index() > 0)
  pending, last_time, last_step, result = [], time.time(), start, None

  def record_of(epoch, monitor=None):
    return {'plateau': optim.plateau_to_json(plateau), 'epoch': epoch, 'monitor': monitor}

  for step in range(start + 1, total_steps + 1):
    state, metrics = train_step(state, next(batches))
    pending.append(metrics)
    epoch = step / steps_per_epoch
    if step % config.log_every_steps == 0 or step == total_steps:
      pending = jax.device_get(pending)  # the only wait for the device between evals
      now = time.time()
      summary = {k: np.mean([m[k] for m in pending]) for k in pending[0]}
      summary['images_per_s'] = (step - last_step) * config.batch_size / (now - last_time)
      log.write(step, epoch, summary)
      bar.set_postfix(loss=f'{summary["train_loss"]:.4f}',
                      img_s=f'{summary["images_per_s"]:.0f}', refresh=False)
      if bar.disable:
        print(f'step {step}/{total_steps} epoch {epoch:.2f} loss {summary["train_loss"]:.4f} '
              f'lr {summary["lr"]:.2e} {summary["images_per_s"]:.0f} images/s', flush=True)
      pending, last_time, last_step = [], now, step
    bar.update(1)
    if step % eval_every == 0 or step == total_steps:
      result = evaluate(eval_step, state, config, mesh)
      monitor = 1 - result['val_top1'] if config.schedule.monitor == 'val_error' else (
          result['val_loss'])
      if config.schedule.name == 'plateau' and step % eval_every == 0:  # not the run's tail
        plateau = optim.plateau_update(config, plateau, monitor)
        state = state.replace(lr_scale=jax.device_put(np.float32(plateau.scale), replicated))
      log.write(step, epoch, {k: v for k, v in result.items() if k != 'val_examples'})
      bar.write(f'eval at step {step} (epoch {epoch:.2f}): val_loss {result["val_loss"]:.4f} '
                f'top-1 {result["val_top1"]:.4f} top-5 {result["val_top5"]:.4f}')
      checkpoints.save(manager, state, record_of(epoch, float(monitor)), monitor)
      last_time, last_step = time.time(), step  # images/s counts training only
    elif step % config.checkpoint_every_steps == 0:
      checkpoints.save(manager, state, record_of(epoch))
  bar.close()
  if result is None:  # resumed a finished run: evaluate it again
    result = evaluate(eval_step, state, config, mesh)
  checkpoints.save(manager, state, record_of(int(state.step) / steps_per_epoch))
  log.close()
  manager.close()
  print(f'final: step {int(state.step)} val_top1 {result["val_top1"]:.4f} '
        f'val_top5 {result["val_top5"]:.4f} ({result["val_examples"]} examples)', flush=True)
  return result
