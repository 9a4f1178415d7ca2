"""Sweeps: the commands, a run of every variant, the summary files, and skipping finished ones."""
import csv
import json
import os

import pytest

from cnn_train import sweep

SWEEP = '''"""LeNet-5 activations on a tiny folder"""


def get_sweep():
  return {{
      'config': 'configs/lenet5.py',
      'args': 'dataset=folder:{folder}',
      'axes': {{'activation': ['relu', 'tanh']}},
      'overrides': {{'image_size': 28, 'augment.crop': 'none', 'batch_size': 4,
                    'max_steps': 6, 'eval_every_epochs': 0.5, 'log_every_steps': 2}},
  }}
'''


def test_shipped_sweeps_load_with_their_variants():
  root = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'sweeps')
  names = sorted(f for f in os.listdir(root) if f.endswith('.py'))
  assert names == ['alexnet_lrn.py', 'alexnet_towers.py', 'googlenet_aux.py',
                   'inception_residual.py', 'resnet_degradation.py', 'vgg_depth.py',
                   'vgg_lrn.py', 'zoo.py']
  for name in names:
    plan = sweep.commands(sweep.load_sweep(os.path.join(root, name)), '/runs')
    assert len(plan) == {'resnet_degradation.py': 4, 'inception_residual.py': 4,
                         'zoo.py': 11}.get(name, 2), name
  # each residual network against the plain one of its cost, for as many iterations
  residual = sweep.load_sweep(os.path.join(root, 'inception_residual.py:imagenette'))['variants']
  steps = {name: overrides['max_steps'] for name, (_, overrides) in residual.items()}
  assert steps == {'Inception-v3': 400, 'Inception-ResNet-v1': 400, 'Inception-v4': 200,
                   'Inception-ResNet-v2': 200}
  assert residual['Inception-ResNet-v2'][0] == 'configs/inception.py:resnet_v2,dataset=imagenette'
  zoo = sweep.commands(sweep.load_sweep(os.path.join(root, 'zoo.py')), '/r')
  assert '--config.lr=0.0045' in zoo['Inception-v4, lr 0.0045'][0]  # a model's own override
  assert not any(arg.startswith('--config.lr=') for arg in zoo['Inception-v4'][0])
  degradation = sweep.commands(sweep.load_sweep(os.path.join(root, 'resnet_degradation.py')), '/r')
  assert sorted(degradation) == ['variant=20,plain=False', 'variant=20,plain=True',
                                 'variant=56,plain=False', 'variant=56,plain=True']
  # Offline by default (Fashion-MNIST); the file's argument switches the data, and photos get
  # the paper's recipe (no CPU-sized overrides).
  default = sweep.load_sweep(os.path.join(root, 'vgg_lrn.py'))['variants']['variant=A']
  assert default[0] == 'configs/vgg.py:dataset=fashion_mnist,variant=A'
  assert default[1]['image_size'] == 32
  photos = sweep.load_sweep(os.path.join(root, 'vgg_lrn.py:imagenette'))['variants']
  assert photos['variant=A'] == ('configs/vgg.py:dataset=imagenette,variant=A', {})
  assert sweep.default_workdir('sweeps/zoo.py:folder:/d/x') == 'runs/sweeps/zoo-folder__d_x'
  depth = sweep.load_sweep(os.path.join(root, 'vgg_depth.py'))['variants']
  assert sorted(depth) == ['variant=B', 'variant=B-5x5']


def test_sweep_runs_summarises_and_skips_finished_variants(folder, tmp_path, capsys):
  path = tmp_path / 'acts.py'
  path.write_text(SWEEP.format(folder=folder))
  workdir = tmp_path / 'out'
  assert sweep.main([str(path), f'--workdir={workdir}', '--dry-run']) == 0
  printed = capsys.readouterr().out.splitlines()
  assert len(printed) == 4 and 'activation=relu' in printed[0] and 'eval.py' in printed[1]
  assert not workdir.exists()  # a dry run runs nothing

  assert sweep.main([str(path), f'--workdir={workdir}']) == 0
  with open(workdir / 'summary.csv') as f:
    rows = list(csv.DictReader(f))
  assert [r['variant'] for r in rows] == ['activation=relu', 'activation=tanh']
  assert set(rows[0]) == {'variant', 'params', 'macs', 'epochs', 'top1', 'top5', 'train_s',
                          'images_per_s', 'lrn'}
  assert rows[0]['lrn'] == ''  # LeNet-5 has no LRN to summarise
  assert float(rows[0]['epochs']) == 6 * 4 / 24  # 6 steps of 4 of the 24 training images
  assert int(rows[0]['params']) == 5 * 5 * 3 * 6 + 6 + 2416 + 48_120 + 10_164 + 84 * 3 + 3
  assert all(0 <= float(r['top1']) <= 1 for r in rows)
  assert '| activation=tanh |' in (workdir / 'summary.md').read_text()
  assert (workdir / 'curves.png').read_bytes()[:4] == b'\x89PNG'
  assert (workdir / 'activation=relu' / 'eval' / '6-1crop-val.json').exists()
  # The ResNet paper's Fig. 6 from the same runs: training and validation error by iteration.
  row = sweep.read_run('activation=relu', str(workdir / 'activation=relu'))
  assert [step for step, _ in row['train_errors']] == [2, 3, 4, 6]  # logs, and before evals
  assert [step for step, _ in row['val_errors']] == [3, 6]
  assert row['val_errors'][-1][1] == 1 - row['top1']
  os.makedirs(tmp_path / 'fig6')
  sweep.write_summary([row], str(tmp_path / 'fig6'), 'errors', plot='error')
  assert (tmp_path / 'fig6' / 'curves.png').read_bytes()[:4] == b'\x89PNG'

  stamp = os.path.getmtime(workdir / 'activation=relu' / 'metrics.jsonl')
  capsys.readouterr()
  assert sweep.main([str(path), f'--workdir={workdir}']) == 0
  assert capsys.readouterr().out.count('finished, skipped') == 2
  assert os.path.getmtime(workdir / 'activation=relu' / 'metrics.jsonl') == stamp


def test_bad_sweep_file_is_one_line(tmp_path, capsys):
  path = tmp_path / 'bad.py'
  path.write_text('def get_sweep():\n  return {"config": "configs/lenet5.py", "axis": {}}\n')
  assert sweep.main([str(path)]) == 2
  assert 'unknown: axis' in capsys.readouterr().err


def test_unknown_plot_is_one_line(tmp_path, capsys):
  path = tmp_path / 'bad.py'
  path.write_text('def get_sweep():\n  return {"config": "configs/lenet5.py", "plot": "loss"}\n')
  assert sweep.main([str(path)]) == 2
  assert "plot='loss': choose top1, error, zoo" in capsys.readouterr().err
  assert sweep.main([f'{path}:cifar10']) == 2
  assert 'get_sweep() takes no argument' in capsys.readouterr().err
  assert sweep.main([str(tmp_path / 'nope.py')]) == 2
  assert 'nope.py: no such sweep file' in capsys.readouterr().err


def test_config_overrides_from_the_command_line_win(tmp_path, capsys):
  path = tmp_path / 'steps.py'
  path.write_text(SWEEP.format(folder='/data'))
  assert sweep.main([str(path), '--dry-run', '--config.max_steps=2', '--config.seed=3']) == 0
  train = capsys.readouterr().out.splitlines()[0]
  assert '--config.max_steps=2' in train and '--config.max_steps=6' not in train
  assert train.endswith('--config.seed=3')
  assert sweep.main([str(path), '--dry-run', '--max-steps=2']) == 2
  assert 'unknown argument --max-steps=2; config keys are given as --config.KEY=VALUE' in (
      capsys.readouterr().err)


def fake_nvidia_smi(tmp_path, monkeypatch, count):
  """A stand-in nvidia-smi on the PATH that lists `count` GPUs."""
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  script = bin_dir / 'nvidia-smi'
  script.write_text('#!/bin/sh\n' + ''.join(f'echo {i}\n' for i in range(count)))
  script.chmod(0o755)
  monkeypatch.setenv('PATH', f'{bin_dir}:{os.environ["PATH"]}')
  monkeypatch.delenv('CUDA_VISIBLE_DEVICES', raising=False)


def test_jobs_share_out_the_gpus(tmp_path, monkeypatch, capsys):
  path = tmp_path / 'acts.py'
  path.write_text(SWEEP.format(folder='/data'))
  fake_nvidia_smi(tmp_path, monkeypatch, 4)
  assert sweep.device_slots(jobs=2) == [{'CUDA_VISIBLE_DEVICES': '0,1'},
                                        {'CUDA_VISIBLE_DEVICES': '2,3'}]
  assert sweep.device_slots(per_variant=1) == [{'CUDA_VISIBLE_DEVICES': g} for g in '0123']
  assert sweep.device_slots() == [{}]  # one variant at a time on every GPU, as train.py alone
  assert sweep.main([str(path), '--dry-run', '--devices-per-variant=2']) == 0
  printed = capsys.readouterr().out.splitlines()
  assert [line.split()[0] for line in printed] == ['CUDA_VISIBLE_DEVICES=0,1'] * 2 + [
      'CUDA_VISIBLE_DEVICES=2,3'] * 2
  assert sweep.main([str(path), '--dry-run', '--jobs=3', '--devices-per-variant=2']) == 2
  assert ('--jobs=3 × --devices-per-variant=2 needs 6 GPUs; 4 are visible (0,1,2,3)'
          in capsys.readouterr().err)
  monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '5,7')  # what this process may use wins
  assert sweep.device_slots(jobs=2) == [{'CUDA_VISIBLE_DEVICES': '5'},
                                        {'CUDA_VISIBLE_DEVICES': '7'}]


@pytest.mark.slow  # 4 runs (100 s on CI); the device slots are tested above, in the default run
def test_variants_side_by_side_on_forced_cpu_devices(folder, tmp_path, monkeypatch, capsys):
  """Two variants at once, each on its own 2 CPU devices, summarise as when run one by one."""
  path = tmp_path / 'acts.py'
  path.write_text(SWEEP.format(folder=folder))
  fake_nvidia_smi(tmp_path, monkeypatch, 0)  # a machine without GPUs
  assert sweep.main([str(path), f'--workdir={tmp_path / "one"}', '--devices-per-variant=2']) == 0
  capsys.readouterr()
  assert sweep.main([str(path), f'--workdir={tmp_path / "two"}', '--jobs=2',
                     '--devices-per-variant=2']) == 0
  printed = capsys.readouterr().out
  assert printed.count('--xla_force_host_platform_device_count=2') == 2
  assert printed.count(': finished\n') == 2

  def rows(name):
    with open(tmp_path / name / 'summary.csv') as f:
      return [{k: r[k] for k in ('variant', 'params', 'macs', 'top1', 'top5')}
              for r in csv.DictReader(f)]

  assert rows('two') == rows('one')
  runs = []
  for variant in ('activation=relu', 'activation=tanh'):
    log = (tmp_path / 'two' / variant / 'sweep.log').read_text()
    assert 'training lenet5 on 2 cpu device(s): 2 replica(s) × 1' in log
    with open(tmp_path / 'two' / variant / 'sweep.json') as f:
      runs.append(json.load(f))
  assert runs[0]['started'] < runs[1]['ended'] and runs[1]['started'] < runs[0]['ended']
