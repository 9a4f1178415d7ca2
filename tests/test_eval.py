"""eval.py: restore a run's checkpoint, count every example once, AlexNet's 10-crop test."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from cnn_train import augment, evaluation, image_ops, input_pipeline, sources, train_state, trainer

ROOT = os.path.dirname(os.path.dirname(__file__))


@pytest.fixture(scope='module')
def run(folder, tmp_path_factory):
  """A finished tiny run: LeNet-5 on the folder, 12 steps, evaluated at steps 6 and 12."""
  workdir = str(tmp_path_factory.mktemp('run'))
  from configs import lenet5
  config = lenet5.get_config(f'dataset=folder:{folder}')
  config.augment.update(crop='none', resize=32)
  config.update(image_size=28, batch_size=4, num_epochs=2, log_every_steps=2, lr=0.02)
  final = trainer.train_and_evaluate(config, workdir)
  return workdir, config, final


def test_eval_matches_training_and_counts_every_example(run):
  workdir, _, final = run
  result = evaluation.evaluate_checkpoint(workdir, 'latest', crops=1)
  assert result['step'] == 12 and result['examples'] == 7 and result['split'] == 'val'
  assert result['top1'] == pytest.approx(float(final['val_top1']))
  assert result['loss'] == pytest.approx(float(final['val_loss']), rel=1e-5)
  with open(os.path.join(workdir, 'eval', '12-1crop-val.json')) as f:
    written = json.load(f)
  assert set(written) == {'step', 'split', 'crops', 'examples', 'top1', 'top5', 'loss',
                          'images_per_s'}
  train_split = evaluation.evaluate_checkpoint(workdir, '6', crops=1, split='train')
  assert train_split['examples'] == 24 and train_split['step'] == 6


def test_ten_crops_average_the_ten_single_crop_softmaxes(run, capsys):
  workdir, config, _ = run
  result = evaluation.evaluate_checkpoint(workdir, 'latest', crops=10)
  assert result['examples'] == 7 and result['crops'] == 10
  # The run trained on whole images (crop='none'): one line says what ten crops mean for it.
  assert capsys.readouterr().err == (
      f"warning: {workdir} was trained without crops (augment.crop='none'): its ten crops are "
      'shifted views of a kind it never saw, so they may score below --crops=1; evaluating them '
      'all the same\n')
  # The same by hand: each of the ten crops through the model alone, softmax, mean.
  from cnn_train import checkpoints, sharding
  mesh = sharding.create_mesh()
  info = sources.dataset_info(config)
  _, abstract = train_state.train_state_of(config, info, mesh)
  manager = checkpoints.create_manager(workdir, config, read_only=True)
  state, _ = checkpoints.restore(manager, abstract, 12)
  means, labels = [], []
  for batch in input_pipeline.eval_batches(config, 4, crops=10):
    assert batch['image'].shape == (4, 10, 28, 28, 3)
    assert batch['image'].dtype == np.uint8  # normalised on the device
    images = augment.normalize(batch['image'], *augment.input_stats(config))
    probs = [jax.nn.softmax(state.apply_fn({'params': state.params}, images[:, crop]))
             for crop in range(10)]
    means.append(np.mean(probs, axis=0)[batch['mask']])
    labels.append(batch['label'][batch['mask']])
  mean, labels = np.concatenate(means), np.concatenate(labels)
  assert result['top1'] == pytest.approx(np.mean(mean.argmax(-1) == labels))
  assert result['loss'] == pytest.approx(-np.mean(np.log(mean[np.arange(7), labels])), rel=1e-5)


def test_ten_crops_are_corners_centre_and_mirrors():
  import ml_collections
  import tensorflow as tf
  config = ml_collections.ConfigDict({'dataset': 'mnist', 'image_size': 4,
                                      'augment': {'resize': 6}})
  image = tf.reshape(tf.cast(tf.range(36), tf.uint8), (6, 6, 1))
  pixels = image_ops.ten_crops(image, config, 1).numpy()[..., 0]
  grid = np.arange(36).reshape(6, 6)
  expected = [grid[:4, :4], grid[:4, 2:], grid[2:, :4], grid[2:, 2:], grid[1:5, 1:5]]
  np.testing.assert_allclose(pixels[:5], expected)
  np.testing.assert_allclose(pixels[5:], [e[:, ::-1] for e in expected])


@pytest.mark.parametrize('args,message', [
    (['--workdir=/nonexistent/run'], 'no run directory'),
    (['--workdir={empty}'], 'has no config.json'),
    (['--workdir={run}', '--checkpoint=999'], 'use latest, best or one of the kept steps'),
])
def test_eval_errors_are_one_line(run, tmp_path, args, message):
  args = [a.format(empty=tmp_path, run=run[0]) for a in args]
  out = subprocess.run([sys.executable, 'eval.py', *args], capture_output=True, text=True,
                       cwd=ROOT)
  assert out.returncode == 2 and len(out.stderr.splitlines()) == 1, out.stderr[-2000:]
  assert out.stderr.startswith('error: ')
  assert message in out.stderr


def test_checkpoint_of_another_model_is_refused(run, tmp_path):
  workdir, _, _ = run
  other = tmp_path / 'other'
  os.makedirs(other)
  os.symlink(os.path.join(workdir, 'checkpoints'), other / 'checkpoints')
  with open(os.path.join(workdir, 'config.json')) as f:
    config = json.load(f)
  config['model'] = {'name': 'resnet18', 'overrides': {}}
  (other / 'config.json').write_text(json.dumps(config))
  with pytest.raises(ValueError, match='does not fit resnet18'):
    evaluation.evaluate_checkpoint(str(other))


def test_best_checkpoint_has_the_lowest_monitored_error(run):
  workdir, _, _ = run
  lines = [json.loads(l) for l in open(os.path.join(workdir, 'metrics.jsonl'))]
  errors = {l['step']: 1 - l['val_top1'] for l in lines if 'val_top1' in l}
  best = evaluation.evaluate_checkpoint(workdir, 'best')
  assert errors[best['step']] == min(errors.values())
