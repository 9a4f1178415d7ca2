"""A run survives SIGTERM, SIGKILL, damaged checkpoints, NaN losses and bad input (issue 5).

The runs train `tiny`: a small network with BatchNorm and dropout, registered by the config file
TINY below, so that resuming has to restore data order, dropout keys, BatchNorm statistics and
the plateau schedule, as AlexNet's and ResNet's runs do.
"""
import glob
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from cnn_train import input_pipeline, optim, sources, trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = '''
"""Conv-BatchNorm-ReLU, global average, Dense-dropout-Dense on 12×12 images."""
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

import cnn_arch
from configs import common


class TinyNet(nn.Module):
  num_classes: int = 3
  width: int = 8
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train=False):
    x = nn.Conv(self.width, (3, 3), dtype=self.dtype)(x)
    x = nn.relu(nn.BatchNorm(use_running_average=not train, dtype=self.dtype)(x)).mean((1, 2))
    x = nn.Dropout(0.5, deterministic=not train)(nn.relu(nn.Dense(16, dtype=self.dtype)(x)))
    return nn.Dense(self.num_classes, dtype=self.dtype)(x)


if 'tiny' not in cnn_arch.list_models():
  cnn_arch.register('tiny', TinyNet, (12, 12, 3))


def get_config(arg=None):
  arg = common.parse_arg(arg, folder='', steps=18, checkpoint_every=1)
  c = common.set_dataset(common.base(), f'folder:{arg.folder}', image_size=12)
  c.model.name = 'tiny'
  c.augment.update(crop='none', resize=0, flip=True)
  c.update(batch_size=4, max_steps=arg.steps, checkpoint_every_steps=arg.checkpoint_every,
           log_every_steps=1, lr=0.1, eval_every_epochs=0.5, keep_checkpoints=2)
  c.schedule.update(patience=1)  # the plateau schedule cuts within the run
  return c
'''


@pytest.fixture(scope='module')
def tiny_file(tmp_path_factory):
  path = tmp_path_factory.mktemp('config') / 'tiny.py'
  path.write_text(TINY)
  return str(path)


@pytest.fixture
def tiny(tiny_file, folder, monkeypatch):
  """In-process configs of the same file: tiny(steps=6, lr=...) with any key changed. The
  registration of 'tiny' lasts for the test only."""
  import importlib.util

  import cnn_arch
  monkeypatch.setattr(cnn_arch.registry, '_MODELS', dict(cnn_arch.registry._MODELS))
  spec = importlib.util.spec_from_file_location('tiny_config', tiny_file)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)

  def make(steps=18, checkpoint_every=1, model=None, width=None, **changes):
    c = module.get_config(f'folder={folder},steps={steps},checkpoint_every={checkpoint_every}')
    if model:
      c.model.update(name=model, overrides={})
    if width:
      c.model.overrides = {'width': width}
    c.update(changes)
    return c

  return make


def train_command(tiny_file, folder, workdir, steps=18, checkpoint_every=1):
  return [sys.executable, os.path.join(ROOT, 'train.py'),
          f'--config={tiny_file}:folder={folder},steps={steps},checkpoint_every={checkpoint_every}',
          f'--workdir={workdir}']


def saved_steps(workdir):
  directory = os.path.join(workdir, 'checkpoints')
  return sorted(int(n) for n in os.listdir(directory) if n.isdigit()) if os.path.isdir(
      directory) else []


def restored_arrays(workdir, step):
  """Every array of checkpoint `step` (params, BatchNorm statistics, momentum, lr factor)."""
  with ocp.CheckpointManager(os.path.join(workdir, 'checkpoints'),
                             options=ocp.CheckpointManagerOptions(read_only=True)) as manager:
    restored = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(), record=ocp.args.JsonRestore()))
  return jax.tree_util.tree_flatten_with_path(jax.device_get(restored.state))[0], restored.record


def assert_same_checkpoint(workdir_a, workdir_b, step):
  (arrays_a, record_a), (arrays_b, record_b) = (restored_arrays(w, step)
                                                for w in (workdir_a, workdir_b))
  assert [p for p, _ in arrays_a] == [p for p, _ in arrays_b]
  for (path, a), (_, b) in zip(arrays_a, arrays_b):
    np.testing.assert_array_equal(a, b, err_msg=jax.tree_util.keystr(path))
  assert record_a == record_b  # plateau schedule state, epoch, monitored metric


def val_curve(workdir):
  lines = [json.loads(line) for line in open(os.path.join(workdir, 'metrics.jsonl'))]
  return {line['step']: line['val_top1'] for line in lines if 'val_top1' in line}


def snapshot(directory):
  """Names, sizes and modification times of everything under `directory`."""
  return {os.path.relpath(p, directory): (os.path.getsize(p), os.path.getmtime(p))
          for p in glob.glob(os.path.join(directory, '**'), recursive=True)}


def test_sigkill_at_any_moment_then_resume_equals_the_straight_run(tiny_file, folder, tmp_path):
  straight, killed = str(tmp_path / 'straight'), str(tmp_path / 'killed')
  subprocess.run(train_command(tiny_file, folder, straight), check=True, capture_output=True)
  lrs = {m['lr'] for m in map(json.loads, open(os.path.join(straight, 'metrics.jsonl')))
         if 'lr' in m}
  assert len(lrs) > 1, 'the plateau schedule should cut the learning rate within the run'

  rng = random.Random(0)
  for reached in (4, 11):  # two kills: once early, once after a plateau cut
    process = subprocess.Popen(train_command(tiny_file, folder, killed),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600  # a hang guard, not a speed limit
    while not any(s >= reached for s in saved_steps(killed)) and process.poll() is None:
      assert time.time() < deadline
      time.sleep(0.02)
    time.sleep(rng.uniform(0, 0.3))  # an arbitrary moment: mid-step, mid-eval or mid-save
    process.send_signal(signal.SIGKILL)
    process.wait()
  result = subprocess.run(train_command(tiny_file, folder, killed), capture_output=True,
                          text=True)
  assert result.returncode == 0, result.stderr
  assert 'resumed from step' in result.stdout

  assert_same_checkpoint(straight, killed, 18)
  assert val_curve(straight) == val_curve(killed)
  for workdir in (straight, killed):  # disk: the 2 latest plus the best, no half-written left
    names = os.listdir(os.path.join(workdir, 'checkpoints'))
    assert len(saved_steps(workdir)) <= 3 and all(n.isdigit() for n in names), names


def test_a_half_written_checkpoint_is_never_read(tiny, tmp_path, capsys):
  workdir = str(tmp_path / 'run')
  trainer.train_and_evaluate(tiny(steps=6, checkpoint_every=2), workdir)
  # What a process killed while writing step 8 leaves: orbax's temporary folder, partly filled.
  complete = os.path.join(workdir, 'checkpoints', '6')
  partial = os.path.join(workdir, 'checkpoints', '8.orbax-checkpoint-tmp-1764329000')
  shutil.copytree(complete, partial)
  for path in glob.glob(os.path.join(partial, 'state', '**', 'd', '*'), recursive=True):
    open(path, 'r+b').truncate(5)
  capsys.readouterr()
  trainer.train_and_evaluate(tiny(steps=8, checkpoint_every=2), workdir)
  assert 'resumed from step 6' in capsys.readouterr().out
  assert not os.path.exists(partial)
  assert 8 in saved_steps(workdir)


# Ctrl-C takes the same path as SIGTERM (one handler): it runs with the slow tests.
@pytest.mark.parametrize('signum', [signal.SIGTERM,
                                    pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_a_stop_signal_checkpoints_the_current_step_and_the_rerun_resumes(
    tiny_file, folder, tmp_path, signum):
  workdir = str(tmp_path / 'run')
  command = train_command(tiny_file, folder, workdir, steps=100_000, checkpoint_every=1000)
  process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  metrics = os.path.join(workdir, 'metrics.jsonl')
  deadline = time.time() + 600  # a hang guard, not a speed limit
  while not (os.path.exists(metrics) and len(open(metrics).readlines()) >= 3):
    assert time.time() < deadline and process.poll() is None
    time.sleep(0.05)
  process.send_signal(signum)
  out, err = process.communicate(timeout=300)  # a hang guard, not a speed limit
  assert process.returncode == 128 + signum, err
  stopped_at = saved_steps(workdir)[-1]
  assert stopped_at % 1000 != 0  # written because of the signal, not the schedule
  assert f'stopped by {signal.Signals(signum).name} at step {stopped_at}' in err
  assert 'Traceback' not in err

  command = train_command(tiny_file, folder, workdir, steps=stopped_at + 2)
  result = subprocess.run(command, capture_output=True, text=True)
  assert result.returncode == 0, result.stderr
  assert f'resumed from step {stopped_at}' in result.stdout


def test_a_stop_during_an_eval_resumes_with_that_eval(tiny, tmp_path, monkeypatch):
  straight, stopped = str(tmp_path / 'straight'), str(tmp_path / 'stopped')
  trainer.train_and_evaluate(tiny(steps=9, checkpoint_every=100), straight)

  real_eval_batches, calls = input_pipeline.eval_batches, []

  def eval_batches_with_sigterm(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:  # the eval at step 6: the job scheduler's SIGTERM arrives during it
      os.kill(os.getpid(), signal.SIGTERM)
    return real_eval_batches(*args, **kwargs)

  monkeypatch.setattr(input_pipeline, 'eval_batches', eval_batches_with_sigterm)
  with pytest.raises(trainer.Stopped) as stop:
    trainer.train_and_evaluate(tiny(steps=9, checkpoint_every=100), stopped)
  assert stop.value.exit_code == 128 + signal.SIGTERM
  assert saved_steps(stopped) == [3, 6]
  monkeypatch.setattr(input_pipeline, 'eval_batches', real_eval_batches)
  trainer.train_and_evaluate(tiny(steps=9, checkpoint_every=100), stopped)
  assert val_curve(stopped) == val_curve(straight)  # the eval at step 6 done on resuming
  assert_same_checkpoint(straight, stopped, 9)


def damage_by_truncation(checkpoint):
  for path in glob.glob(os.path.join(checkpoint, 'state', '**', 'd', '*'), recursive=True):
    open(path, 'r+b').truncate(os.path.getsize(path) // 2)


def damage_by_deletion(checkpoint):
  os.remove(os.path.join(checkpoint, 'state', '_METADATA'))


@pytest.mark.parametrize('damage', [damage_by_truncation, damage_by_deletion])
def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(tiny, tmp_path, capsys,
                                                                    monkeypatch, damage):
  workdir = str(tmp_path / 'run')
  trainer.train_and_evaluate(tiny(steps=5, checkpoint_every=2), workdir)
  assert saved_steps(workdir)[-2:] == [4, 5]
  damage(os.path.join(workdir, 'checkpoints', '5'))
  capsys.readouterr()
  unraisable = []  # what would reach the terminal as tracebacks
  monkeypatch.setattr(sys, 'unraisablehook', unraisable.append)
  result = trainer.train_and_evaluate(tiny(steps=7, checkpoint_every=2), workdir)
  out, err = capsys.readouterr()
  assert 'warning: checkpoint 5 is damaged' in err
  assert not unraisable, [str(u.exc_value) for u in unraisable]  # the warning line only
  assert 'resumed from step 4' in out
  assert os.path.isdir(os.path.join(workdir, 'corrupt_checkpoints', '5'))
  assert result['val_examples'] == 7 and 7 in saved_steps(workdir)


def test_a_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny, tmp_path, monkeypatch):
  # A learning rate that becomes infinite at step 7: the parameters turn NaN/Inf there.
  monkeypatch.setattr(optim, 'create_schedule', lambda *_: lambda step: jnp.where(
      step < 6, 0.1, jnp.inf))
  config = tiny(steps=12, checkpoint_every=100)
  workdir = str(tmp_path / 'run')
  with pytest.raises(trainer.Stopped) as stop:
    trainer.train_and_evaluate(config, workdir)
  assert stop.value.exit_code == trainer.DIVERGED
  message = str(stop.value)
  assert 'at step 7' in message and 'last good checkpoint, step 6' in message
  assert saved_steps(workdir)[-1] == 6
  arrays, _ = restored_arrays(workdir, 6)
  assert all(np.all(np.isfinite(a)) for _, a in arrays)

  # The same run skipping such steps: it ends, with the parameters and statistics of step 6.
  config.update(skip_nonfinite_steps=True, keep_checkpoints=5)
  skipping = str(tmp_path / 'skipping')
  trainer.train_and_evaluate(config, skipping)
  learned = lambda step: [a for p, a in restored_arrays(skipping, step)[0]
                          if p[0].key in ('params', 'batch_stats')]
  for a, b in zip(learned(6), learned(12), strict=True):
    np.testing.assert_array_equal(a, b)


@pytest.fixture(scope='module')
def finished_run(tiny_file, folder, tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('finished') / 'run')
  subprocess.run(train_command(tiny_file, folder, workdir, steps=4), check=True,
                 capture_output=True)
  return workdir


@pytest.mark.parametrize('changes, message', [
    ({'width': 16}, 'does not restore for this config'),  # same model, other shapes
    ({'eval_split': 'tset'}, "no split folder .*tset"),
    ({'dataset': 'folder:/no/such/folder'}, 'is not a directory'),
    ({'dataset': 'imagenet'}, "unknown dataset 'imagenet'"),
    ({'batch_size': 3}, 'batch_size=3 .*2 devices'),
    ({'model': 'lenet5'}, 'holds a run of tiny'),
])
def test_bad_input_is_one_clear_error_before_compiling_and_touches_nothing(
    tiny, finished_run, changes, message, compilations):
  before = snapshot(finished_run)
  with compilations() as compiled, pytest.raises(ValueError, match=message):
    trainer.train_and_evaluate(tiny(steps=8, **changes), finished_run)
  assert snapshot(finished_run) == before
  assert not compiled


def test_an_input_too_small_for_the_model_names_the_smallest(tiny, tmp_path, compilations):
  config = tiny(model='alexnet', image_size=50)
  with compilations() as compiled, pytest.raises(
      ValueError, match=r'image_size=50 is too small for alexnet \(layer pool3 outputs an empty '
      r'0×0 map\); it takes 67×67 and up \(its paper: 227×227\)'):
    trainer.train_and_evaluate(config, str(tmp_path / 'run'))
  assert not compiled


def test_damaged_and_non_image_files_of_a_folder_are_skipped_and_counted(folder, tmp_path, tiny,
                                                                         capsys):
  root = tmp_path / 'folder'
  shutil.copytree(folder, root)
  good = (root / 'train' / 'ant' / '0.png').read_bytes()
  (root / 'train' / 'ant' / 'truncated.png').write_bytes(good[:len(good) // 2])
  (root / 'train' / 'bee' / 'empty.jpg').write_bytes(b'')
  (root / 'train' / 'cat' / 'notes.jpg').write_text('not an image')
  config = tiny(steps=3, dataset=f'folder:{root}')
  assert sources.dataset_info(config).num_train == 24
  assert 'skipped 3 of 27 files' in capsys.readouterr().err
  result = trainer.train_and_evaluate(config, str(tmp_path / 'run'))
  assert result['val_examples'] == 7
