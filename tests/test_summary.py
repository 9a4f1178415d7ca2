"""The summary command line (contract 1 of DESIGN.md)."""
import json
import subprocess
import sys

import pytest

import cnn_arch
from cnn_arch import summary


@pytest.mark.parametrize('name', cnn_arch.list_models())
def test_summary_runs_for_every_model(name, capsys):
  assert summary.main([name]) == 0
  out = capsys.readouterr().out
  first, *_, last = out.strip().splitlines()
  assert first.startswith(f'{name}: input ') and last.startswith('total')
  assert summary.main([name, '--json']) == 0
  result = json.loads(capsys.readouterr().out)
  assert set(result) == {'model', 'input_shape', 'params', 'batch_stats', 'macs', 'layers'}
  assert result['params'] == sum(layer['params'] for layer in result['layers'])
  assert result['macs'] == sum(layer['macs'] for layer in result['layers']) > 0
  assert all(set(layer) == {'name', 'output_shape', 'params', 'macs'}
             for layer in result['layers'])


def test_summary_command_line_with_overrides():
  out = subprocess.run(
      [sys.executable, '-m', 'cnn_arch.summary', 'alexnet', 'groups=2', 'lrn=False', '--json',
       '--num-classes', '10'], capture_output=True, text=True, check=True).stdout
  result = json.loads(out)
  assert result['model'] == 'alexnet' and result['input_shape'] == [227, 227, 3]
  assert result['params'] == 60_965_224 - 4_097_000 + 4096 * 10 + 10
  assert not [layer for layer in result['layers'] if layer['name'].startswith('norm')]


def test_summary_input_size_and_depth(capsys):
  assert summary.main(['resnet18', '--input-size', '32', '--depth', '1', '--json']) == 0
  result = json.loads(capsys.readouterr().out)
  assert result['input_shape'] == [32, 32, 3]
  assert [layer['name'] for layer in result['layers']][-3:] == ['conv5_2', 'global_pool', 'fc']
  assert result['layers'][-3]['output_shape'] == [1, 1, 512]


@pytest.mark.parametrize('argv,message', [
    (['resnet19'], 'unknown model'),
    (['alexnet', 'towers=2'], 'unknown option'),
    (['alexnet', 'groups'], 'expected key=value'),
])
def test_summary_errors_are_one_line(argv, message, capsys):
  assert summary.main(argv) == 2
  err = capsys.readouterr().err
  assert err.startswith('error: ') and message in err and len(err.strip().splitlines()) == 1


def test_model_table_lists_every_model():
  table = summary.model_table().splitlines()
  assert len(table) == 2 + len(set(cnn_arch.list_models()) - set(cnn_arch.ALIASES))
  assert '| `alexnet` | Krizhevsky et al. 2012 | 227×227×3 | 62,378,344 |' in table[3]
