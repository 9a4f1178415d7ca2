"""Sweeps: the commands, a run of every variant, the summary files, and skipping finished ones."""
import csv
import os

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


def test_shipped_sweeps_load_and_have_two_variants():
  root = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'sweeps')
  names = sorted(f for f in os.listdir(root) if f.endswith('.py'))
  assert names == ['alexnet_lrn.py', 'alexnet_towers.py', 'googlenet_aux.py',
                   'resnet_degradation.py', 'resnet_plain.py', 'vgg_lrn.py']
  for name in names:
    plan = sweep.commands(sweep.load_sweep(os.path.join(root, name)), '/runs')
    assert len(plan) == (4 if name == 'resnet_degradation.py' else 2), name
  degradation = sweep.commands(sweep.load_sweep(os.path.join(root, 'resnet_degradation.py')), '/r')
  assert sorted(degradation) == ['variant=20,plain=False', 'variant=20,plain=True',
                                 'variant=56,plain=False', 'variant=56,plain=True']


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
  assert set(rows[0]) == {'variant', 'params', 'macs', 'top1', 'top5', 'train_s',
                          'images_per_s'}
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
  sweep.write_summary([row], str(tmp_path / 'fig6'), 'errors', curves='error')
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


def test_unknown_curves_are_one_line(tmp_path, capsys):
  path = tmp_path / 'bad.py'
  path.write_text('def get_sweep():\n  return {"config": "configs/lenet5.py", "curves": "loss"}\n')
  assert sweep.main([str(path)]) == 2
  assert "curves='loss': choose top1 or error" in capsys.readouterr().err
