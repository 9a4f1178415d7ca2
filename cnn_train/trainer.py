"""train_and_evaluate: the whole run, from a config to a trained, checkpointed, evaluated model."""
import contextlib
import json
import os
import signal
import sys
import time

import jax
import numpy as np
import tqdm
from clu import metric_writers

from cnn_train import (augment, checkpoints, evaluation, input_pipeline, optim, pretrained, runs,
                       sharding, sources, train_state)



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
  train_state.check_config(config)
  mesh = sharding.create_mesh(devices, config.model_axis)
  sharding.check_batch_size(config.batch_size, mesh)
  runs.make_workdir(workdir)
  recorded = runs.check_workdir(workdir, config)
  info = sources.dataset_info(config)
  steps_per_epoch = max(info.num_train // config.batch_size, 1)
  total_steps = config.max_steps or config.num_epochs * steps_per_epoch
  eval_every = config.eval_every_steps or max(int(config.eval_every_epochs * steps_per_epoch), 1)
  schedule = optim.create_schedule(config, steps_per_epoch, total_steps)
  init_key, dropout_key = jax.random.split(jax.random.key(config.seed))
  init, abstract_state = train_state.train_state_of(config, info, mesh)
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

  chosen = train_state.choose_cpu_kernels(config, info)
  if chosen:
    say(chosen)
  train_step, eval_step = train_state.jitted_steps(config, abstract_state, mesh, schedule,
                                                   dropout_key)

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
    result = evaluation.evaluate(eval_step, state, config, mesh,
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
    result = evaluation.evaluate(eval_step, state, config, mesh)
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
