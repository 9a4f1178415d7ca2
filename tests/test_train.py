"""The train loop end to end on a tiny ImageFolder made here: outputs, exact eval, resume, errors."""
import json
import os
import re
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from cnn_train import input_pipeline, trainer

ROOT = os.path.dirname(os.path.dirname(__file__))

def final_state(workdir):
  steps = sorted(int(s) for s in os.listdir(os.path.join(workdir, 'checkpoints')) if s.isdigit())
  path = os.path.join(workdir, 'checkpoints', str(steps[-1]), 'state')
  return steps[-1], ocp.StandardCheckpointer().restore(os.path.abspath(path))


def test_train_writes_metrics_checkpoints_and_counts_every_eval_example(tiny_config, tmp_path):
  result = trainer.train_and_evaluate(tiny_config(), str(tmp_path))
  assert result['val_examples'] == 7  # 2 batches of 4, the last one padded and masked
  assert 0 <= result['val_top1'] <= result['val_top5'] <= 1
  config = json.loads((tmp_path / 'config.json').read_text())
  assert config['model']['name'] == 'lenet5' and config['batch_size'] == 4
  lines = [json.loads(l) for l in (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert all('step' in l and 'epoch' in l for l in lines)
  train = [l for l in lines if 'train_loss' in l]
  evals = [l for l in lines if 'val_top1' in l]
  assert {'train_loss', 'train_top1', 'lr', 'images_per_s'} <= set(train[0])
  assert [l['step'] for l in evals] == [6, 12] and evals[-1]['epoch'] == 2  # 24 / 4 per epoch
  assert any(f.startswith('events.out.tfevents') for f in os.listdir(tmp_path))
  step, _ = final_state(str(tmp_path))
  assert step == 12


def test_resumed_run_equals_uninterrupted_run(tiny_config, tmp_path):
  """Bit for bit, with every random augmentation on: crop and flip on the host, PCA lighting
  and colour jitter on the device."""
  straight, stopped = str(tmp_path / 'straight'), str(tmp_path / 'stopped')

  def config(steps):
    c = tiny_config(max_steps=steps)
    c.augment.update(crop='inception', flip=True, pca_lighting=0.1, color_jitter=0.4)
    return c

  trainer.train_and_evaluate(config(10), straight)
  trainer.train_and_evaluate(config(4), stopped)  # mid-epoch stop
  trainer.train_and_evaluate(config(10), stopped)
  (step_a, a), (step_b, b) = final_state(straight), final_state(stopped)
  assert step_a == step_b == 10
  jax.tree.map(np.testing.assert_array_equal, a, b)
  losses = lambda d: [json.loads(l).get('train_loss') for l in  # noqa: E731
                      open(os.path.join(d, 'metrics.jsonl'))]
  assert [l for l in losses(straight) if l][-1] == [l for l in losses(stopped) if l][-1]


def test_a_run_from_before_config_input_evaluates_and_resumes_as_it_was_trained(
    tiny_config, tmp_path, capsys):
  """A run directory written before each family fed its paper's input (issue 27) has no `input`
  in its config.json and was trained on (p / 255 - mean) / std: eval.py gives the top-1 and
  loss its training gave, and a rerun resumes with that input, not the config's new one."""
  from cnn_train import evaluation
  workdir = str(tmp_path / 'run')
  old = tiny_config(max_steps=6)
  old.input.transform = 'standardize'
  trained = trainer.train_and_evaluate(old, workdir)
  path = tmp_path / 'run' / 'config.json'
  recorded = json.loads(path.read_text())
  del recorded['input']  # as such a run wrote it
  path.write_text(json.dumps(recorded))

  result = evaluation.evaluate_checkpoint(workdir)
  assert (result['top1'], result['loss']) == pytest.approx(
      (trained['val_top1'], trained['val_loss']), rel=1e-6)
  capsys.readouterr()
  new = tiny_config(max_steps=8)
  assert new.input.transform == 'lenet'
  trainer.train_and_evaluate(new, workdir)
  assert ('warning: the run goes on with the input it was trained on: standardize: '
          '(p - (123.7, 116.3, 103.5)) / (58.4') in capsys.readouterr().out  # ImageNet's
  assert json.loads(path.read_text())['input'] == {
      'transform': 'standardize', 'mean': pytest.approx([255 * m for m in (0.485, 0.456, 0.406)]),
      'std': pytest.approx([255 * s for s in (0.229, 0.224, 0.225)])}


def test_plateau_state_is_restored_on_resume(tiny_config, tmp_path):
  # lr 0 never improves: patience 1 cuts the rate at every eval after the first; the state
  # (best value, count) survives the restart, and the fourth cut is refused.
  config = tiny_config(lr=0.0, num_epochs=5)
  config.schedule.update(patience=1, min_delta=0.5)
  workdir = str(tmp_path)
  trainer.train_and_evaluate(tiny_config(lr=0.0, max_steps=13,
                                         schedule=config.schedule), workdir)
  trainer.train_and_evaluate(config, workdir)
  _, state = final_state(workdir)
  assert float(state['lr_scale']) == pytest.approx(0.001)  # three cuts, then no more


def test_workdir_of_another_model_is_refused(tiny_config, tmp_path):
  trainer.train_and_evaluate(tiny_config(max_steps=1), str(tmp_path))
  config = tiny_config(max_steps=1)
  config.model.name = 'resnet18'
  with pytest.raises(ValueError, match='holds a run of lenet5, not resnet18'):
    trainer.train_and_evaluate(config, str(tmp_path))


@pytest.mark.parametrize('args,message', [
    (['--config=configs/lenet5.py', '--config.nonsense=1'], "unknown config key 'nonsense'"),
    (['--config=configs/alexnet.py:gpus=2'], "unknown config argument 'gpus'"),
    (['--config=configs/lenet5.py', '--config.batch_size=abc'], 'batch_size'),
    (['--config=configs/lenet5.py', '--config.schedule.name=linear'], "schedule.name='linear'"),
    (['--config=configs/lenet5.py', '--config.batch_size=7'], 'does not divide over 2 devices'),
    (['--config=configs/nope.py'], '--config=configs/nope.py: no such file; the configs are '
                                   'configs/{alexnet,'),
    # The config's own argument, before the missing ImageNet is noticed.
    (['--config=configs/vgg.py:F'], 'configs/vgg.py:F: choose A, A-LRN, B, C, D, E'),
    (['--config=configs/resnet.py:19'], 'configs/resnet.py:19: choose 18, 34'),
])
def test_config_errors_are_one_line(args, message, tmp_path):
  env = {**os.environ, 'XLA_FLAGS': '--xla_force_host_platform_device_count=2'}
  out = subprocess.run([sys.executable, 'train.py', f'--workdir={tmp_path}', *args],
                       capture_output=True, text=True, env=env, cwd=ROOT)
  assert out.returncode == 2, out.stderr[-2000:]
  assert len(out.stderr.strip().splitlines()) == 1, out.stderr[-2000:]
  assert out.stderr.startswith('error: ') and message in out.stderr
  assert not out.stdout
  assert not os.listdir(tmp_path)  # nothing was written


def test_a_workdir_that_is_a_file_is_one_line(tmp_path):
  (tmp_path / 'run').write_text('not a run')
  out = subprocess.run([sys.executable, 'train.py', '--config=configs/lenet5.py',
                        f'--workdir={tmp_path / "run"}'], capture_output=True, text=True, cwd=ROOT)
  assert out.returncode == 2
  assert out.stderr == f'error: --workdir={tmp_path / "run"} is a file, not a directory: give a ' \
                       "new or a run's directory\n"


@pytest.mark.parametrize('onednn', ['1', '0'])  # TensorFlow's oneDNN forced on and off
def test_train_command_line_runs_on_a_folder_and_prints_only_its_own_lines(folder, tmp_path,
                                                                           onednn):
  env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn)
  env.pop('TF_CPP_MIN_LOG_LEVEL', None)  # as a user's shell has it: TF would print C++ lines
  out = subprocess.run(
      [sys.executable, 'train.py', f'--config=configs/lenet5.py:dataset=folder:{folder}',
       f'--workdir={tmp_path}', '--config.image_size=28', '--config.augment.crop=none',
       '--config.batch_size=4', '--config.max_steps=3', '--config.log_every_steps=1'],
      capture_output=True, text=True, cwd=ROOT, env=env)
  assert out.returncode == 0, out.stderr[-3000:]
  last = out.stdout.strip().splitlines()[-1]
  assert last.startswith('final: step 3 val_top1 ') and '(7 examples)' in last
  assert_only_our_lines(out.stdout + out.stderr)


OUR_LINES = re.compile(r'(training \w+ on \d+ \w+ device|step \d+/\d+ epoch |eval at step '
                       r'|final: step |resumed from step |preparing \w+ in |prepared \w+ \('
                       r'|warning: )')


def assert_only_our_lines(output):
  """No line from TensorFlow's or absl's C++ logging (I0000 00:00:…, 'oneDNN custom operations',
  'All log messages before absl::InitializeLog()'), nor from TFDS's Python logging."""
  strangers = [line for line in output.splitlines() if line and not OUR_LINES.match(line)]
  assert not strangers, '\n'.join(strangers[:10])


def test_log_lines_say_how_much_of_the_time_waited_for_input(tiny_config, tmp_path,
                                                              monkeypatch, capsys):
  """A pipeline made slow (0.3 s a batch, far more than LeNet-5's step) shows as input-bound."""
  real = input_pipeline.train_batches

  def slow(*args, **kwargs):
    for batch in real(*args, **kwargs):
      time.sleep(0.3)
      yield batch

  monkeypatch.setattr(input_pipeline, 'train_batches', slow)
  trainer.train_and_evaluate(tiny_config(max_steps=9, log_every_steps=3), str(tmp_path / 'run'))
  waits = [json.loads(line)['input_wait'] for line in open(tmp_path / 'run' / 'metrics.jsonl')
           if 'input_wait' in line]
  # The first interval also holds the compilation of the step.
  assert len(waits) == 3 and 0 < waits[0] <= 1 and all(0.5 < w <= 1 for w in waits[1:])
  lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith('step ')]
  assert len(lines) == 3 and all(l.endswith('input-bound') for l in lines[1:]), lines
  assert re.search(r'waiting for input \d+%', lines[0])
