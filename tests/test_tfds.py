"""TFDS's own preparation: ImageNet from a miniature of its two official tars, through train.py and
eval.py as a user with the real files runs them; a download dataset without a network."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

import imagenet_tars
from cnn_train import evaluation, input_pipeline
from configs import alexnet
from test_train import ROOT, assert_only_our_lines


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
def test_a_download_dataset_offline_fails_in_seconds_naming_the_url(config, url, tmp_path):
  # Every connection goes to a closed port on this machine: the network is "down".
  env = {**os.environ, 'HTTPS_PROXY': 'http://127.0.0.1:9', 'HTTP_PROXY': 'http://127.0.0.1:9',
         'NO_PROXY': ''}
  start = time.time()
  out = run('train.py', f'--config={config}', f'--config.data_dir={tmp_path}',
            f'--workdir={tmp_path / "run"}', env=env)
  assert time.time() - start < 60  # TFDS alone retries each file for 3.5 minutes
  assert out.returncode == 2 and not out.stdout
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1, out.stderr[-3000:]
  name = config.split('=')[-1]
  assert lines[0].startswith(f'error: cannot reach {url}') and f'to download {name}' in lines[0]
  assert f'copy DIR/{name} to' in lines[0] and 'dataset=folder:PATH' in lines[0]
