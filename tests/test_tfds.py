"""TFDS's own preparation: ImageNet from a miniature of its two official tars, through train.py and
eval.py as a user with the real files runs them; a download dataset without a network."""
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow_datasets as tfds

import imagenet_tars
from cnn_train import evaluation, input_pipeline
from configs import alexnet
from test_train import ROOT, assert_only_our_lines


@contextlib.contextmanager
def closed_proxy():
  """A proxy on loopback that closes every connection at once (the network is "down"); yields
  its address and the list of connections it received."""
  server = socket.create_server(('127.0.0.1', 0))
  connections = []

  def serve():
    while True:
      try:
        connection, _ = server.accept()
      except OSError:  # closed: the block is over
        return
      connections.append(connection.getpeername())
      connection.close()

  thread = threading.Thread(target=serve, daemon=True)
  thread.start()
  try:
    yield f'http://127.0.0.1:{server.getsockname()[1]}', connections
  finally:
    server.close()
    thread.join(timeout=10)


def run(*args, env=None):
  return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT,
                        env=env)


def test_imagenet_from_the_official_tars_trains_and_evaluates_every_image(tmp_path):
  data_dir, workdir = tmp_path / 'tfds', tmp_path / 'run'
  num_train, num_val = imagenet_tars.write(data_dir / 'downloads' / 'manual')
  out = run('train.py', '--config=configs/alexnet.py', f'--config.data_dir={data_dir}',
            f'--workdir={workdir}', '--config.batch_size=4', '--config.max_steps=3')
  assert out.returncode == 0, out.stderr[-3000:]
  assert_only_our_lines(out.stdout + out.stderr)
  assert f'prepared imagenet2012 (train {num_train}, validation {num_val} examples)' in out.stdout
  assert out.stdout.strip().splitlines()[-1].endswith(f'({num_val} examples)')

  # TFDS labelled the validation images from its own file, in sorted order; we read each once.
  config = alexnet.get_config()
  config.data_dir = str(data_dir)
  labels_file = tfds.core.tfds_path('datasets/imagenet2012/validation_labels.txt')
  names = tfds.builder('imagenet2012', data_dir=str(data_dir)).info.features['label'].names
  expected = [names.index(w) for w in labels_file.read_text().split()[:num_val]]
  batches = list(input_pipeline.eval_batches(config, 4))
  labels = np.concatenate([b['label'][b['mask']] for b in batches])
  assert sorted(labels) == sorted(expected)
  assert batches[0]['image'].shape == (4, 227, 227, 3)  # greyscale JPEGs read as RGB too

  # eval.py's command for the ten crops; its library call for the central one (a process less).
  out = run('eval.py', f'--workdir={workdir}', '--crops=10')
  assert out.returncode == 0, out.stderr[-3000:]
  assert_only_our_lines(out.stderr)
  assert evaluation.evaluate_checkpoint(str(workdir), crops=1)['examples'] == num_val
  for crops in (1, 10):
    with open(workdir / 'eval' / f'3-{crops}crop-validation.json') as f:
      result = json.load(f)
    assert result['examples'] == num_val and result['crops'] == crops


@pytest.mark.parametrize('config, url', [
    ('configs/lenet5.py:dataset=mnist', 'https://storage.googleapis.com/cvdf-datasets/mnist/'),
    # The file of the builder's own config (imagenette has six), not the first of its list.
    ('configs/alexnet.py:dataset=imagenette',
     'https://s3.amazonaws.com/fast-ai-imageclas/imagenette2.tgz to download imagenette '),
])
def test_a_download_dataset_offline_fails_at_the_first_try_naming_the_url(config, url, tmp_path):
  """Offline, each host is tried once and each file once, not TFDS's 10 retries a file (3.5
  minutes): counted as the connections a proxy that answers none of them receives."""
  with closed_proxy() as (address, connections):
    env = {**os.environ, 'HTTPS_PROXY': address, 'HTTP_PROXY': address, 'NO_PROXY': ''}
    out = run('train.py', f'--config={config}', f'--config.data_dir={tmp_path}',
              f'--workdir={tmp_path / "run"}', env=env)
  files = len(tfds.builder(config.split('=')[-1], data_dir=str(tmp_path)).url_infos or ()) or 1
  assert 1 <= len(connections) <= 1 + files, len(connections)  # the quick check, then each file
  assert out.returncode == 2 and not out.stdout
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1, out.stderr[-3000:]
  name = config.split('=')[-1]
  assert lines[0].startswith(f'error: cannot reach {url}') and f'to download {name}' in lines[0]
  assert f'copy DIR/{name} to' in lines[0] and 'dataset=folder:PATH' in lines[0]
