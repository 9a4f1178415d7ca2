"""Our networks compute what timm's compute: `cnn_arch.from_timm` on random weights and random
BatchNorm statistics, two images at the paper's size, float32; the outputs agree to 1e-4 of their
largest magnitude (tests/test_torchvision.py's measure); timm's checkpoints through weights.py,
with timm's evaluation transforms."""
import json
import os

import numpy as np
import pytest
from PIL import Image

import cnn_arch
import weights
from cnn_arch import timm_weights
from cnn_train import evaluation, prediction, runs
from test_torchvision import TOLERANCE, images, randomised, relative_error

torch = pytest.importorskip('torch')
timm = pytest.importorskip('timm')


@pytest.mark.parametrize('name', ['inception_v4', 'inception_resnet_v2', 'resnet50',
                                  'inception_v3'])
def test_timm_network_computes_the_same_function(name):
  torch.manual_seed(0)
  net = randomised(timm.create_model(name, pretrained=False))
  model, variables = cnn_arch.from_timm(name, net.state_dict())
  error = relative_error(model, variables, net, images(224 if name == 'resnet50' else 299))
  print(f'{name}: max |ours - timm| = {error:.1e} × max |timm|')
  assert error <= TOLERANCE


def test_from_timm_names_what_does_not_fit():
  with pytest.raises(ValueError, match="unknown network 'inception_resnet_v3'; choose one of"):
    cnn_arch.from_timm('inception_resnet_v3', {})
  state = timm.create_model('inception_v4').state_dict()
  with pytest.raises(ValueError, match="has no 'classif.weight': is it inception_resnet_v2"):
    cnn_arch.from_timm('inception_resnet_v2', state)
  state['last_linear.weight'] = state['last_linear.weight'][:, :100]  # a classifier of 100 inputs
  with pytest.raises(ValueError, match="'last_linear.weight' has shape"):
    cnn_arch.from_timm('inception_v4', state)
  del state['features.21.branch3.1.conv.weight']
  with pytest.raises(ValueError, match='layers, inception_v4 has'):
    cnn_arch.from_timm('inception_v4', state)


def test_timm_classifier_sets_the_classes():
  net = timm.create_model('inception_resnet_v2', num_classes=10)
  model, variables = cnn_arch.from_timm('inception_resnet_v2', net.state_dict())
  assert model.num_classes == 10 and variables['params']['fc']['kernel'].shape == (1536, 10)


def test_the_weights_commands_eval_transforms_are_timms_pretrained_configs():
  """weights.py's table is timm's pretrained config of each network's default tag, at timm's
  test size (as timm's validate.py evaluates)."""
  for name in timm_weights.NETWORKS:
    cfg = timm.models.get_pretrained_cfg(name)
    assert weights.TIMM_EVAL[name] == (
        cfg.tag, (cfg.test_input_size or cfg.input_size)[-1], cfg.test_crop_pct or cfg.crop_pct,
        cfg.interpolation, cfg.mean, cfg.std), name


def photo(path, height, width, seed=0):
  """A photo-like RGB image (smooth shapes and edges at several scales), saved as PNG."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:height, 0:width] / max(height, width)
  channels = []
  for _ in range(3):
    wave = sum(np.sin(2 * np.pi * (f * x * rng.uniform(-1, 1) + f * y * rng.uniform(-1, 1)) +
                      rng.uniform(0, 6)) / f for f in (1, 3, 9, 27))
    channels.append(wave)
  pixels = np.stack(channels, -1)
  pixels = (pixels - pixels.min()) / (pixels.max() - pixels.min()) * 255
  Image.fromarray(pixels.astype(np.uint8)).save(path)


@pytest.mark.parametrize('name', ['inception_resnet_v2', 'resnet50'])
def test_our_eval_pixels_are_those_of_timms_transform(name, tmp_path):
  """The run's evaluation transform (resize to floor(size / crop_pct), central crop, bicubic)
  gives the pixels timm's does, on photos larger and smaller than the crop, to rounding and the
  order of crop and resample (we crop the window, then resample it; timm the other way)."""
  config = weights.config_of(timm_weights.NETWORKS[name][0],
                             cnn_arch.create_model(timm_weights.NETWORKS[name][0]),
                             'imagenet2012')
  weights.set_eval_transform(config, *weights.timm_transform(name, str(tmp_path / 'x')))
  data = timm.data.resolve_model_data_config(timm.create_model(name), use_test_size=True)
  theirs_transform = timm.data.create_transform(**data)
  mean, std = np.array(data['mean']), np.array(data['std'])
  for i, (height, width) in enumerate([(375, 500), (500, 333), (240, 260)]):
    path = str(tmp_path / f'{i}.png')
    photo(path, height, width, seed=i)
    ours = prediction.load_image(path, config).astype(np.float32)
    theirs = theirs_transform(Image.open(path)).numpy().transpose(1, 2, 0)
    theirs = (theirs * std + mean) * 255
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).mean() < 1.5, (height, width, np.abs(ours - theirs).mean())


def test_a_timm_checkpoint_becomes_a_run_that_evaluates_and_predicts_as_timm(folder, tmp_path):
  """A 3-class timm ResNet-18 as Hugging Face gives it (model.safetensors with timm's
  config.json beside it, here a pretrained config of [-1, 1] and crop_pct 0.875): the run has
  that transform, and eval.py's top-1 and predict.py's classes are timm's own network's on the
  images the transform makes."""
  from safetensors.torch import save_file
  torch.manual_seed(0)
  net = randomised(timm.create_model('resnet18', num_classes=3))
  hub = tmp_path / 'hub'
  hub.mkdir()
  save_file(net.state_dict(), str(hub / 'model.safetensors'))
  pretrained_cfg = {'input_size': [3, 160, 160], 'crop_pct': 0.875, 'interpolation': 'bicubic',
                    'mean': [0.5, 0.5, 0.5], 'std': [0.5, 0.5, 0.5], 'num_classes': 3}
  (hub / 'config.json').write_text(json.dumps({'architecture': 'resnet18', 'num_classes': 3,
                                               'pretrained_cfg': pretrained_cfg}))
  workdir = str(tmp_path / 'run')
  assert weights.main([str(hub / 'model.safetensors'), '--from=timm', '--model=resnet18',
                       f'--workdir={workdir}', f'--dataset=folder:{folder}']) == 0
  config = runs.load_config(workdir)
  assert (config.image_size, config.augment.resize, config.augment.interpolation) == (
      160, 182, 'bicubic')  # floor(160 / 0.875)
  assert config.input.transform == 'symmetric'

  paths, labels = [], []
  for label, name in enumerate(sorted(os.listdir(folder / 'val'))):
    for file in sorted(os.listdir(folder / 'val' / name)):
      paths.append(str(folder / 'val' / name / file))
      labels.append(label)
  images = np.stack([prediction.load_image(p, config) for p in paths])
  images = (images / 255 - 0.5) / 0.5  # timm's normalisation of its pretrained config
  with torch.no_grad():
    theirs = net(torch.from_numpy(images.transpose(0, 3, 1, 2).astype(np.float32)))
    theirs = theirs.softmax(-1).numpy()
  result = evaluation.evaluate_checkpoint(workdir)
  assert result['top1'] == pytest.approx(np.mean(theirs.argmax(-1) == np.array(labels)))
  _, predicted = prediction.predict(workdir, paths[:2], top=3)
  for (_, top), p in zip(predicted, theirs):
    np.testing.assert_allclose([q for _, q in top], np.sort(p)[::-1][:3], rtol=1e-4)


def test_the_weights_commands_errors_are_one_line(tmp_path, capsys):
  state = {k: v.numpy() for k, v in timm.create_model('resnet18').state_dict().items()}
  np.savez(tmp_path / 'r.npz', **state)
  argv = [str(tmp_path / 'r.npz'), '--from=timm', f'--workdir={tmp_path / "run"}']
  assert weights.main([*argv, '--model=resnet18.fb_ssl_yfcc100m_ft_in1k']) == 2
  assert 'the evaluation transform of the tag fb_ssl_yfcc100m_ft_in1k is not known' in (
      capsys.readouterr().err)
  assert weights.main([*argv, '--model=vgg16']) == 2
  assert "--model=vgg16: timm's networks here are inception_v4" in capsys.readouterr().err
