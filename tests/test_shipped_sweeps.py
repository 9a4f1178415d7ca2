"""Every variant of every shipped sweep, as shipped (offline, on Fashion-MNIST), for two steps."""
import os

import numpy as np
import pytest

from cnn_train import sources, sweep
from configs import common
from test_input_pipeline import write_idx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWEEPS = sorted(f for f in os.listdir(os.path.join(ROOT, 'sweeps')) if f.endswith('.py'))


@pytest.fixture(scope='module')
def fashion_dir(tmp_path_factory):
  """A TFDS data_dir holding a random Fashion-MNIST as large as the sweeps' splits (20,000
  train, 2,000 test images), prepared from gz idx files of the Debian package's format."""
  src = tmp_path_factory.mktemp('fashion_src')
  rng = np.random.default_rng(0)
  for prefix, n in (('train', 20_000), ('t10k', 2_000)):
    write_idx(src / f'{prefix}-images-idx3-ubyte.gz', rng.integers(0, 256, (n, 28, 28)))
    write_idx(src / f'{prefix}-labels-idx1-ubyte.gz', rng.integers(0, 10, n))
  data_dir = str(tmp_path_factory.mktemp('tfds'))
  config = common.set_dataset(common.base(), 'fashion_mnist')
  config.data_dir = data_dir
  old = os.environ.get('FASHION_MNIST_DIR')
  os.environ['FASHION_MNIST_DIR'] = str(src)
  try:
    sources.dataset_info(config)  # prepared once, before variants run side by side
  finally:
    if old is None:
      del os.environ['FASHION_MNIST_DIR']
    else:
      os.environ['FASHION_MNIST_DIR'] = old
  return data_dir


@pytest.mark.slow
@pytest.mark.parametrize('name', SWEEPS)
def test_every_variant_trains_two_steps_offline(name, fashion_dir, tmp_path, capsys):
  path = os.path.join(ROOT, 'sweeps', name)
  plan = sweep.commands(sweep.load_sweep(path), str(tmp_path))
  assert all('dataset=fashion_mnist' in train[2] for train, _, _ in plan.values())
  assert sweep.main([path, f'--workdir={tmp_path}', '--jobs=2', '--config.max_steps=2',
                     '--config.eval_every_steps=2', '--config.eval_split=test[:128]',
                     f'--config.data_dir={fashion_dir}']) == 0
  printed = capsys.readouterr().out
  assert printed.count(': finished\n') == len(plan)
  with open(tmp_path / 'summary.csv') as f:
    assert len(f.read().splitlines()) == 1 + len(plan)
  if name in ('alexnet_lrn.py', 'vgg_lrn.py'):  # each LRN layer's divisor spread, at the end
    assert 'LRN divisor p1/p50/p99 |' in (tmp_path / 'summary.md').read_text()
  for _, _, run_dir in plan.values():
    log = open(os.path.join(run_dir, 'sweep.log')).read()
    assert 'final: step 2 ' in log, log[-2000:]
