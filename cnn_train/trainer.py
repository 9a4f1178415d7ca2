"""train_and_evaluate: the whole run, from a config to a trained, checkpointed, evaluated model."""
import contextlib
import json
import os
import signal
import sys
import time
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm
from clu import metric_writers

import cnn_arch
from cnn_train import (augment, checkpoints, input_pipeline, optim, pretrained, sharding, sources,
                       steps)

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16, 'float16': jnp.float16}
MONITORS = ('val_error', 'val_loss')
EVAL_BATCHES_PER_STOP_CHECK = 16  # in a multi-process run; every batch in a single process


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
  if config.init_from and not os.path.isfile(os.path.join(config.init_from, 'config.json')):
    raise ValueError(f'init_from={config.init_from}: not a run directory (no config.json); give '
                     'the --workdir of a train.py run or of python -m cnn_arch.weights')
  if config.model.name not in cnn_arch.list_models():
    raise ValueError(f'model.name={config.model.name!r} is not a model of the zoo: choose one of '
                     f'{", ".join(cnn_arch.list_models())}')


def create_model(config, num_classes):
  return cnn_arch.create_model(config.model.name, num_classes, dtype=DTYPES[config.dtype],
                               **config.model.overrides)


def make_workdir(workdir):
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise ValueError(f'--workdir={workdir} is a file, not a directory: give a new or a run\'s '
                     'directory')
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:  # no permission, read-only file system, ...
    raise ValueError(f'cannot create the workdir {workdir}: {e.strerror}') from None


def check_workdir(workdir, config):
  """A workdir holds one run: refuse to resume a run of another model in it. Returns the run's
  recorded config, or None."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    previous = ml_collections.ConfigDict(json.load(f))
  if previous.model.name != config.model.name:
    raise ValueError(f'{workdir} holds a run of {previous.model.name}, not {config.model.name}; '
                     'use another --workdir')
  return previous


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


def evaluate(eval_step, state, config, mesh, split=None, crops=1, stop=lambda: False):
  """Loss, top-1, top-5 over every example of the split exactly once (padded, masked; each
  process reads its own shard); None if `stop()` becomes true on the way (asked before every
  batch, or every EVAL_BATCHES_PER_STOP_CHECK-th in a multi-process run: every process has as
  many batches, so all ask at the same ones)."""
  local_batch = config.batch_size // jax.process_count()
  batches = input_pipeline.eval_batches(config, local_batch, split, jax.process_index(),
                                        jax.process_count(), crops)
  totals, every = None, 1 if jax.process_count() == 1 else EVAL_BATCHES_PER_STOP_CHECK
  for i, batch in enumerate(sharding.prefetch(batches, mesh)):
    if i % every == 0 and stop():
      return None
    sums = eval_step(state, batch)
    totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
  totals = jax.device_get(totals)
  count = int(totals['count'])
  return {'val_loss': totals['loss'] / count, 'val_top1': totals['top1'] / count,
          'val_top5': totals['top5'] / count, 'val_examples': count}


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


class Stopped(Exception):
  """The run stopped before its end, its last checkpoint intact; `exit_code` for the shell."""

  def __init__(self, message, exit_code):
    super().__init__(message)
    self.exit_code = exit_code


DIVERGED = 3  # exit code of a run stopped by a NaN or Inf loss
MAX_SKIPPED_IN_A_ROW = 100  # skip_nonfinite_steps gives up after this many
INPUT_BOUND = 0.5  # a log line says input-bound when the loop waits for batches more than this


@contextlib.contextmanager
def stop_requests():
  """The first SIGTERM or SIGINT (Ctrl-C) becomes a request, the list's one entry, honoured after
  the current step (checkpoint, then stop); a second one has the signal's default effect."""
  received = []

  def request(signum, frame):
    if received:
      signal.signal(signum, signal.SIG_DFL)
      os.kill(os.getpid(), signum)
    received.append(signum)
    print(f'\n{signal.Signals(signum).name}: stopping after this step with a checkpoint '
          '(send it again to stop at once)', file=sys.stderr, flush=True)

  try:
    previous = {s: signal.signal(s, request) for s in (signal.SIGTERM, signal.SIGINT)}
  except ValueError:  # not the main thread: signals stay as they are
    previous = {}
  try:
    yield received
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)


def train_and_evaluate(config, workdir, devices=None):
  """Train `config` in `workdir` (resuming from its latest checkpoint); returns the final eval.

  Raises ValueError for a config, data or workdir problem (before compiling anything or touching
  a checkpoint), Stopped after SIGTERM/SIGINT or at a non-finite loss.
  """
  check_config(config)
  mesh = sharding.create_mesh(devices, config.model_axis)
  sharding.check_batch_size(config.batch_size, mesh)
  make_workdir(workdir)
  recorded = check_workdir(workdir, config)
  info = sources.dataset_info(config)
  steps_per_epoch = max(info.num_train // config.batch_size, 1)
  total_steps = config.max_steps or config.num_epochs * steps_per_epoch
  eval_every = config.eval_every_steps or max(int(config.eval_every_epochs * steps_per_epoch), 1)
  schedule = optim.create_schedule(config, steps_per_epoch, total_steps)
  init_key, dropout_key = jax.random.split(jax.random.key(config.seed))
  init, abstract_state = train_state_of(config, info, mesh)
  replicated = sharding.replicated(mesh)
  state_sharding = jax.tree.map(lambda s: s.sharding, abstract_state)

  manager = checkpoints.create_manager(workdir, config)
  plateau = optim.plateau_init(config)
  restored = checkpoints.restore_latest(manager, abstract_state)
  if restored:
    state, record = restored
    plateau = optim.plateau_from_json(config, record['plateau'])
    say(f'resumed from step {int(state.step)} of {workdir}')
    if recorded and augment.take_input(config, recorded):
      say('warning: the run goes on with the input it was trained on: '
          f'{augment.describe_input(config)}')
  else:
    state, record = jax.jit(init, out_shardings=state_sharding)(init_key), {}
    if config.init_from:  # a fresh run only: a resumed one goes on from its own checkpoint
      state = pretrained.init_from(state, config, info.num_classes)
  say(f'training {config.model.name} on {mesh.devices.size} {mesh.devices.flat[0].platform} '
      f'device(s): {mesh.shape["data"]} replica(s) × {mesh.shape["model"]}')
  augment.resolve_input(config)
  if jax.process_index() == 0:
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      f.write(config.to_json_best_effort(indent=2))

  train_step, eval_step = jitted_steps(config, abstract_state, mesh, schedule, dropout_key)

  log = MetricsLog(workdir)
  start = int(state.step)
  local_batch = config.batch_size // jax.process_count()
  batches = sharding.prefetch(input_pipeline.train_batches(
      config, local_batch, start, jax.process_index(), jax.process_count()), mesh)
  bar = tqdm.tqdm(total=total_steps, initial=start, unit='step', dynamic_ncols=True,
                  disable=not sys.stderr.isatty() or jax.process_index() > 0)
  pending, last_time, last_step, skipped_in_a_row = [], time.time(), start, 0
  input_wait = 0.0  # seconds the loop waited for the next batch since the last log step

  def save(step, monitor=None, eval_pending=False):
    checkpoints.save(manager, state, {
        'plateau': optim.plateau_to_json(plateau), 'epoch': step / steps_per_epoch,
        'monitor': monitor, 'eval_pending': eval_pending}, monitor)

  def flush(step):
    """Bring the pending step metrics to the host (the only wait for the device between evals),
    log their mean and stop at a non-finite loss."""
    nonlocal pending, last_time, last_step, skipped_in_a_row, input_wait
    pending, now = jax.device_get(pending), time.time()
    for offset, metrics in enumerate(pending):
      skipped_in_a_row = skipped_in_a_row + 1 if metrics['nonfinite'] else 0
      bad_step = last_step + 1 + offset
      if metrics['nonfinite'] and not config.skip_nonfinite_steps:
        raise Stopped(diverged_message(bad_step, metrics['train_loss'], manager), DIVERGED)
      if skipped_in_a_row >= MAX_SKIPPED_IN_A_ROW:
        raise Stopped(diverged_message(bad_step, metrics['train_loss'], manager,
                                       skipped=skipped_in_a_row), DIVERGED)
    summary = {k: np.mean([m[k] for m in pending]) for k in pending[0] if k != 'nonfinite'}
    summary['images_per_s'] = (step - last_step) * config.batch_size / (now - last_time)
    # The share of the time the host waited for input; the rest it waited for the devices.
    summary['input_wait'] = min(input_wait / (now - last_time), 1.0)
    input_bound = summary['input_wait'] > INPUT_BOUND
    if config.skip_nonfinite_steps:
      summary['skipped_steps'] = sum(m['nonfinite'] for m in pending)
    log.write(step, step / steps_per_epoch, summary)
    waited = f'{100 * summary["input_wait"]:.0f}%' + (' input-bound' if input_bound else '')
    bar.set_postfix(loss=f'{summary["train_loss"]:.4f}', img_s=f'{summary["images_per_s"]:.0f}',
                    input=waited, refresh=False)
    if bar.disable:
      say(f'step {step}/{total_steps} epoch {step / steps_per_epoch:.2f} loss '
          f'{summary["train_loss"]:.4f} lr {summary["lr"]:.2e} '
          f'{summary["images_per_s"]:.0f} images/s, waiting for input {waited}')
    pending, last_time, last_step, input_wait = [], now, step, 0.0

  def evaluate_and_save(step):
    """The periodic (and final) eval: plateau schedule, log, checkpoint. None if a stop request
    cut it short; the checkpoint then says so and the resumed run evaluates first."""
    nonlocal state, plateau, last_time
    result = evaluate(eval_step, state, config, mesh,
                      stop=lambda: sharding.on_any_process(stop, f'eval at step {step}'))
    if result is None:
      save(step, eval_pending=True)
      return None
    monitor = 1 - result['val_top1'] if config.schedule.monitor == 'val_error' else (
        result['val_loss'])
    if config.schedule.name == 'plateau' and step % eval_every == 0:  # not the run's tail
      plateau = optim.plateau_update(config, plateau, monitor)
      state = state.replace(lr_scale=jax.device_put(np.float32(plateau.scale), replicated))
    log.write(step, step / steps_per_epoch, {k: v for k, v in result.items()
                                             if k != 'val_examples'})
    say(f'eval at step {step} (epoch {step / steps_per_epoch:.2f}): val_loss '
        f'{result["val_loss"]:.4f} top-1 {result["val_top1"]:.4f} top-5 '
        f'{result["val_top5"]:.4f}')
    save(step, float(monitor))
    last_time = time.time()  # images/s counts training only
    return result

  def stopped(step):
    signum = stop[0] if stop else signal.SIGTERM  # another process received it
    return Stopped(f'stopped by {signal.Signals(signum).name} at step {step}: checkpoint in '
                   f'{manager.directory}; the same command resumes from it', 128 + signum)

  result = None
  try:
    with stop_requests() as stop:
      if record.get('eval_pending'):  # stopped during this step's eval last time
        result = evaluate_and_save(start)
        if result is None:
          raise stopped(start)
      for step in range(start + 1, total_steps + 1):
        waiting = time.perf_counter()
        batch = next(batches)
        input_wait += time.perf_counter() - waiting
        state, metrics = train_step(state, batch)
        pending.append(metrics)
        bar.update(1)
        evaluating = step % eval_every == 0 or step == total_steps
        checkpointing = step % config.checkpoint_every_steps == 0
        # A signal reaches a cluster's processes at different moments; all stop at one step,
        # agreed at the log, eval and checkpoint steps, where the loop waits anyway (a single
        # process stops at once). Not JAX's reached_preemption_sync_point: it hears SIGTERM only
        # through its own handler, which stop_requests replaces, and never Ctrl-C.
        check = step % config.log_every_steps == 0 or evaluating or checkpointing
        stopping = (check or jax.process_count() == 1) and sharding.on_any_process(
            stop, f'step {step}')
        if check or stopping:
          flush(step)
        if evaluating:
          result = evaluate_and_save(step)
          if result is None:  # a stop request cut the eval short
            raise stopped(step)
        elif checkpointing or stopping:
          save(step)
        if stopping:
          raise stopped(step)
  finally:
    bar.close()
    log.close()
  if result is None:  # resumed a finished run: evaluate it again
    result = evaluate(eval_step, state, config, mesh)
  save(int(state.step))
  manager.close()
  say(f'final: step {int(state.step)} val_top1 {result["val_top1"]:.4f} '
      f'val_top5 {result["val_top5"]:.4f} ({result["val_examples"]} examples)')
  return result


def say(line):
  """Print on the first process only: the others' lines would repeat it."""
  if jax.process_index() == 0:
    tqdm.tqdm.write(line, file=sys.stdout)
    sys.stdout.flush()


def diverged_message(step, loss, manager, skipped=0):
  last = manager.latest_step()
  kept = (f'the last good checkpoint, step {last} in {manager.directory}, is kept'
          if last is not None else 'no checkpoint was written before it')
  what = (f'{skipped} steps in a row had a NaN or Inf loss, gradient or parameter (the last: '
          f'step {step})' if skipped else
          f'NaN or Inf in the loss, gradient or parameters at step {step} (loss {loss})')
  return (f'error: {what}; {kept}. Lower the learning rate (or use float32), or skip such steps '
          'with --config.skip_nonfinite_steps=True')
