"""Several processes training one model, and AlexNet's two towers on two devices (issue 7)."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from cnn_train import runtime, sharding, sources, train_state, trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def train_command(folder, workdir, steps):
  """LeNet-5 on the 24 training images, all of them in every (global) batch: the batch, hence
  the step, is the same however the processes split the data, so runs must agree to rounding.
  On the standardised input the loss falls smoothly: on LeNet-5's paper input these 24 images
  (of three brightness levels, no background) make it spike at lr 0.05, which magnifies the
  float32 rounding of the per-process sums past any tolerance."""
  return [sys.executable, os.path.join(ROOT, 'train.py'),
          f'--config=configs/lenet5.py:dataset=folder:{folder}', f'--workdir={workdir}',
          '--config.image_size=28', '--config.augment.crop=none', '--config.augment.resize=0',
          '--config.augment.flip=False', '--config.batch_size=24', f'--config.max_steps={steps}',
          '--config.log_every_steps=1', '--config.eval_every_epochs=20',
          '--config.checkpoint_every_steps=1000', '--config.input.transform=standardize']


def same_config(folder, steps):
  """train_command's config, for a run in this process."""
  from configs import lenet5
  config = lenet5.get_config(f'dataset=folder:{folder}')
  config.augment.update(crop='none', resize=0, flip=False)
  config.update(image_size=28, batch_size=24, max_steps=steps, log_every_steps=1,
                eval_every_epochs=20, checkpoint_every_steps=1000)
  config.input.transform = 'standardize'
  return config


def start(command, devices, process_id=None, port=None):
  env = {**os.environ, 'XLA_FLAGS': f'--xla_force_host_platform_device_count={devices}'}
  if process_id is not None:
    command = [*command, f'--coordinator_address=localhost:{port}', '--num_processes=2',
               f'--process_id={process_id}']
  return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)


def metrics(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def train(lines):
  return {m['step']: m['train_loss'] for m in lines if 'train_loss' in m}


def evals(lines):
  return [(m['step'], m['val_top1'], m['val_loss']) for m in lines if 'val_top1' in m]


def test_two_processes_train_as_one_and_stop_together(folder, tmp_path):
  """Two train.py processes (one CPU device each, Gloo collectives over loopback) against one
  process with two devices: the same losses, the same exact eval; one metrics file, one
  checkpoint folder, one voice. SIGTERM to one process stops both at the same step with a
  checkpoint, and both resume from it."""
  steps = 60
  one, two = str(tmp_path / 'one'), str(tmp_path / 'two')
  trainer.train_and_evaluate(same_config(folder, steps), one)  # this process: 2 devices

  port = free_port()
  processes = [start(train_command(folder, two, steps), 1, i, port) for i in (0, 1)]
  deadline = time.time() + 600  # a hang guard, not a speed limit
  while not (os.path.exists(os.path.join(two, 'metrics.jsonl')) and len(metrics(two)) >= 5):
    assert time.time() < deadline and all(p.poll() is None for p in processes)
    time.sleep(0.05)
  processes[1].send_signal(signal.SIGTERM)  # the other process never receives one
  results = [p.communicate(timeout=600) for p in processes]
  assert [p.returncode for p in processes] == [143, 143], results[0][1][-3000:]
  stopped_at = {int(err.split('stopped by SIGTERM at step ')[1].split(':')[0])
                for _, err in results}
  assert len(stopped_at) == 1 and 5 <= min(stopped_at) < steps
  assert os.listdir(os.path.join(two, 'checkpoints')) == [str(*stopped_at)]

  port = free_port()
  processes = [start(train_command(folder, two, steps), 1, i, port) for i in (0, 1)]
  results = [p.communicate(timeout=600) for p in processes]
  assert [p.returncode for p in processes] == [0, 0], results[0][1][-3000:]
  assert f'resumed from step {stopped_at.pop()}' in results[0][0]
  assert 'step' not in results[1][0]  # process 0 speaks for the run (Gloo says hello)

  straight, split = metrics(one), metrics(two)
  assert sorted(train(split)) == list(range(1, steps + 1))  # every step logged once
  # float32 rounding of the per-process partial sums grows over 60 steps: 3e-6 by the end,
  # where the loss is down to 0.03
  np.testing.assert_allclose([train(split)[s] for s in range(1, steps + 1)],
                             [train(straight)[s] for s in range(1, steps + 1)], rtol=1e-4,
                             atol=1e-5)
  assert [e[:2] for e in evals(split)] == [e[:2] for e in evals(straight)]
  np.testing.assert_allclose([e[2] for e in evals(split)], [e[2] for e in evals(straight)],
                             rtol=1e-4)
  assert '(7 examples)' in results[0][0]  # the 7 validation images, 4 + 3, counted once


AGREE = '''
import json
import sys

import jax
from jax._src import distributed

jax.distributed.initialize(f'localhost:{sys.argv[1]}', 2, int(sys.argv[2]))
from cnn_train import sharding  # noqa: E402

me, client = jax.process_index(), distributed.global_state.client
results = [sharding.on_any_process(me == 1, 'only process 1'),
           sharding.on_any_process(False, 'neither'),
           sharding.on_any_process(me == 0, 'only process 0'),
           sharding.on_any_process(True, 'both')]
client.wait_at_barrier('all read', 60_000)
keys = sorted(key for key, _ in client.key_value_dir_get('cnn_zoo/'))
client.wait_at_barrier('keys read', 60_000)  # before process 1 writes the key of its extra check
sharding.STOP_CHECK_TIMEOUT_S, error = 1, None
if me == 1:  # a check process 0 never makes
  try:
    sharding.on_any_process(True, 'step 7')
  except RuntimeError as e:
    error = str(e)
print(json.dumps({'results': results, 'keys': keys, 'error': error}))
'''


def run_two(script, tmp_path, *args, timeout=600):
  """Two processes of `script`, joined by JAX's distributed runtime: their last stdout lines,
  as JSON."""
  path = tmp_path / 'two.py'
  path.write_text(script)
  env = {**os.environ, 'PYTHONPATH': ROOT, 'XLA_FLAGS': '--xla_force_host_platform_device_count=1'}
  port, logs = str(free_port()), [tmp_path / f'process{i}.log' for i in (0, 1)]
  processes = [subprocess.Popen([sys.executable, str(path), port, str(i), *map(str, args)],
                                env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=open(logs[i], 'w'), text=True) for i in (0, 1)]
  outs = [p.communicate(timeout=timeout) for p in processes]  # stdout: a line or two
  assert [p.returncode for p in processes] == [0, 0], '\n'.join(
      log.read_text()[-3000:] for log in logs)
  return [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]


def test_processes_agree_over_the_coordination_service(tmp_path):
  """on_any_process over two processes: true on both when the flag is set on either, false on
  both when on neither; the keys of all but the last two checks are deleted; a process that
  waits for a check another never makes gets a one-line error."""
  zero, one = run_two(AGREE, tmp_path)
  assert zero['results'] == one['results'] == [True, False, True, True]
  assert zero['keys'] == [f'cnn_zoo/on_any_process/{n}/{what}/{i}'
                          for n, what in ((2, 'only process 0'), (3, 'both')) for i in (0, 1)]
  assert zero['error'] is None
  assert one['error'] == 'process 0 did not reach step 7 (check 4) within 1 s; is it stuck?'


COUNTED_TRAINING = '''
import json
import os
import signal
import sys

import jax

jax.distributed.initialize(f'localhost:{sys.argv[1]}', 2, int(sys.argv[2]))
from jax.experimental import multihost_utils  # noqa: E402

from cnn_train import input_pipeline, sharding, trainer  # noqa: E402
from configs import lenet5  # noqa: E402

calls = []
agree, gather, read = sharding.on_any_process, multihost_utils.process_allgather, (
    input_pipeline.train_batches)
sharding.on_any_process = lambda flag, what: calls.append(what) or agree(flag, what)
multihost_utils.process_allgather = lambda *a, **k: calls.append('all-gather') or gather(*a, **k)


def signalled(*args):  # process 1 receives SIGTERM as it reads batch 7, during step 5
  for i, batch in enumerate(read(*args)):
    if i == 6 and jax.process_index() == 1:
      os.kill(os.getpid(), signal.SIGTERM)
    yield batch


input_pipeline.train_batches = signalled
config = lenet5.get_config(f'dataset=folder:{sys.argv[3]}')
config.augment.update(crop='none', resize=0, flip=False)
config.update(image_size=28, batch_size=24, max_steps=12, log_every_steps=4,
              eval_every_steps=8, checkpoint_every_steps=1000)
try:
  trainer.train_and_evaluate(config, sys.argv[4])
  stopped = None
except trainer.Stopped as e:
  stopped = str(e).split(':')[0]
print(json.dumps({'calls': calls, 'stopped': stopped,
                  'checkpoints': os.listdir(os.path.join(sys.argv[4], 'checkpoints'))}))
'''


def test_several_processes_agree_at_log_steps_only(folder, tmp_path):
  """Two processes, a log every 4 steps, an eval every 8: they agree whether to stop at steps 4
  and 8 and in the eval (over the coordination service), not at every step, and make no
  all-gather in between (orbax makes its own when it creates the checkpoint manager and when it
  saves). SIGTERM to one of them during step 5 stops both at step 8, with its checkpoint."""
  runs = run_two(COUNTED_TRAINING, tmp_path, folder, tmp_path / 'run')
  for run in runs:
    calls, checks = run['calls'], [c for c in run['calls'] if c != 'all-gather']
    assert checks == ['step 4', 'step 8', 'eval at step 8']
    assert calls[calls.index(checks[0]):calls.index(checks[-1]) + 1] == checks
    assert run['stopped'] == 'stopped by SIGTERM at step 8'
  assert runs[0]['checkpoints'] == ['8']  # one folder, both processes' parts


TOWERS = '''
import json

import jax
import numpy as np

from cnn_train import sharding, sources, train_state, trainer
from configs import alexnet

rng = np.random.default_rng(0)
batches = [{'image': rng.integers(0, 256, (8, 67, 67, 3), np.uint8),
            'label': rng.integers(0, 10, 8).astype(np.int32),
            'index': np.arange(8 * i, 8 * i + 8, dtype=np.uint32)} for i in range(2)]
info = sources.DatasetInfo(10, 1000, 100, 3)
start = None

def train(devices, towers):
  global start
  config = alexnet.get_config(f'towers={towers},groups=2,initializer=he')
  config.update(image_size=67, batch_size=8)
  mesh = sharding.create_mesh(devices, config.model_axis)
  init, abstract = train_state.train_state_of(config, info, mesh)
  where = jax.tree.map(lambda s: s.sharding, abstract)
  if start is None:
    start = jax.device_get(jax.jit(init)(jax.random.key(0)))
  state = jax.tree.unflatten(jax.tree.structure(abstract), [  # the same start everywhere
      jax.device_put(x, s) for x, s in zip(jax.tree.leaves(start), jax.tree.leaves(where))])
  step, _ = train_state.jitted_steps(config, abstract, mesh, lambda _: 0.01, jax.random.key(1))
  step = step.lower(state, sharding.to_global(batches[0], mesh)).compile()
  memory = step.memory_analysis()  # per device
  losses = []
  for batch in batches:
    state, metrics = step(state, sharding.to_global(batch, mesh))
    losses.append(float(metrics['train_loss']))
  kernel = state.params['conv2']['kernel']
  return {'losses': losses, 'params': jax.device_get(state.params),
          'conv2_spec': str(kernel.sharding.spec),
          'conv2_on_one_device': kernel.addressable_shards[0].data.shape,
          'state_mb': memory.argument_size_in_bytes / 2**20}

one = train(jax.devices()[:1], 1)
for devices, towers in ((jax.devices()[:2], 2), (jax.devices(), 2)):
  run = train(devices, towers)
  difference = max(jax.tree.leaves(jax.tree.map(lambda a, b: float(np.max(np.abs(a - b))),
                                                one['params'], run['params'])))
  print(json.dumps({'devices': len(devices), 'towers': towers, 'losses': run['losses'],
                    'one_device_losses': one['losses'], 'max_param_difference': difference,
                    'conv2_spec': run['conv2_spec'], 'conv2_shard': run['conv2_on_one_device'],
                    'state_mb': run['state_mb'], 'one_device_state_mb': one['state_mb']}))
'''


def test_alexnet_towers_on_two_and_four_devices_equal_one_device(tmp_path):
  """towers=2 on 2 devices (the two towers) and on 4 (two pairs splitting the batch) against
  one device, from the same start: the same losses and parameters after two steps. Each device
  holds half of every split kernel: about half the state that data parallelism replicates.
  (The README's table compares step time and memory with data parallelism: cnn_train.bench.)"""
  script = tmp_path / 'towers.py'
  script.write_text(TOWERS)
  env = {**os.environ, 'XLA_FLAGS': '--xla_force_host_platform_device_count=4',
         'PYTHONPATH': ROOT}
  out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                       cwd=ROOT, timeout=600, check=False)
  assert out.returncode == 0, out.stderr[-3000:]
  runs = [json.loads(line) for line in out.stdout.strip().splitlines()]
  assert [(run['devices'], run['towers']) for run in runs] == [(2, 2), (4, 2)]
  for run in runs:
    np.testing.assert_allclose(run['losses'], run['one_device_losses'], rtol=1e-5)
    assert run['max_param_difference'] < 1e-5, run
    assert run['conv2_spec'] == "P(None, None, None, 'model')"
    assert run['conv2_shard'] == [5, 5, 48, 128]  # one tower: 48 channels in, 128 kernels
    assert run['state_mb'] < 0.6 * run['one_device_state_mb']  # data parallelism: 1×


@pytest.mark.parametrize('env, flags, expected', [
    ({}, (None, None, None), None),  # one process: the runtime stays off
    ({'SLURM_STEP_NUM_TASKS': '1'}, (None, None, None), None),
    ({'SLURM_STEP_NUM_TASKS': '4'}, (None, None, None), (None, None, None)),  # JAX asks SLURM
    ({'JAX_COORDINATOR_ADDRESS': 'h:1', 'JAX_NUM_PROCESSES': '2', 'JAX_PROCESS_ID': '1'},
     (None, None, None), ('h:1', 2, 1)),
    ({'JAX_NUM_PROCESSES': '8'}, ('node0:5', 2, 0), ('node0:5', 2, 0)),  # flags win
])
def test_when_and_how_the_distributed_runtime_starts(env, flags, expected, monkeypatch):
  for key in ('SLURM_STEP_NUM_TASKS', 'JAX_COORDINATOR_ADDRESS', 'JAX_NUM_PROCESSES',
              'JAX_PROCESS_ID'):
    monkeypatch.delenv(key, raising=False)
  for key, value in env.items():
    monkeypatch.setenv(key, value)
  calls = []
  monkeypatch.setattr(jax.distributed, 'initialize', lambda *args: calls.append(args))
  assert runtime.initialize_distributed(*flags) == (expected is not None)
  assert calls == ([expected] if expected else [])


def test_a_model_axis_the_model_cannot_use_is_named(tiny_config):
  with pytest.raises(ValueError, match='model_axis=3 must divide the 2 devices'):
    sharding.create_mesh(jax.devices()[:2], 3)
  mesh = sharding.create_mesh(jax.devices()[:2], 2)
  config = tiny_config(model_axis=2)
  info = sources.dataset_info(config)
  with pytest.raises(ValueError, match="model_axis=2: lenet5 has no layer split over the 'model'"):
    train_state.train_state_of(config, info, mesh)
