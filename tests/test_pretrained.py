"""Given weights: torchvision checkpoints → run directories (eval.py, predict.py read them),
fine-tuning from a run with `init_from`, and the one-line errors of each."""
import os

import jax
import numpy as np
import pytest
from flax import traverse_util
from PIL import Image

import cnn_arch
import weights
from cnn_arch import torchvision_weights
from cnn_train import (evaluation, prediction, pretrained, runs, sharding, sources, train_state,
                       trainer)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def two_class_folder(tmp_path):
  root = tmp_path / 'two'
  rng = np.random.default_rng(3)
  for split, count in (('train', 6), ('val', 3)):
    for label, name in enumerate(('dark', 'light')):
      os.makedirs(root / split / name)
      for i in range(count):
        pixels = rng.integers(0, 80, (12, 12, 3)) + 150 * label
        Image.fromarray(pixels.astype(np.uint8)).save(root / split / name / f'{i}.png')
  return root


def flat(tree):
  return traverse_util.flatten_dict(jax.device_get(tree), sep='/')


def test_converted_torchvision_run_evaluates_and_predicts_as_torchvision(folder, tmp_path,
                                                                         monkeypatch):
  """weights.py's run of a 3-class torchvision ResNet-18: eval.py's top-1 on the folder and
  predict.py's classes are torchvision's own on the images our evaluation transform makes."""
  torch = pytest.importorskip('torch')
  torchvision = pytest.importorskip('torchvision')
  from test_torchvision import randomised
  torch.manual_seed(0)
  net = randomised(torchvision.models.resnet18(num_classes=3))
  torch.save(net.state_dict(), tmp_path / 'resnet18.pth')
  monkeypatch.chdir(REPO)
  workdir = str(tmp_path / 'run')
  assert weights.main([str(tmp_path / 'resnet18.pth'), '--from=torchvision', '--model=resnet18',
                       f'--workdir={workdir}', f'--dataset=folder:{folder}']) == 0
  config = runs.load_config(workdir)
  assert (config.image_size, config.augment.resize) == (224, 256)  # torchvision's transform

  paths, labels = [], []
  for label, name in enumerate(sorted(os.listdir(folder / 'val'))):
    for file in sorted(os.listdir(folder / 'val' / name)):
      paths.append(str(folder / 'val' / name / file))
      labels.append(label)
  images = np.stack([prediction.load_image(p, config) for p in paths])  # uint8, as the host makes
  # torchvision's transform (its documentation's ImageNet mean and std), written out
  images = (images / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
  images = images.astype(np.float32)
  with torch.no_grad():
    theirs = net(torch.from_numpy(images.transpose(0, 3, 1, 2))).softmax(-1).numpy()
  result = evaluation.evaluate_checkpoint(workdir)
  assert result['examples'] == len(paths)
  assert result['top1'] == pytest.approx(np.mean(theirs.argmax(-1) == np.array(labels)))

  step, predicted = prediction.predict(workdir, paths[:2], top=3)
  assert step == 0
  for (path, top), p in zip(predicted, theirs):
    assert [name for name, _ in top] == [sorted(os.listdir(folder / 'val'))[i]
                                         for i in np.argsort(-p)[:3]]
    np.testing.assert_allclose([q for _, q in top], np.sort(p)[::-1][:3], rtol=1e-4)


def test_npz_safetensors_and_pth_give_the_same_variables(tmp_path):
  torch = pytest.importorskip('torch')
  torchvision = pytest.importorskip('torchvision')
  from safetensors.numpy import save_file
  state = torchvision.models.resnet18(num_classes=4).state_dict()
  arrays = {k: v.numpy() for k, v in state.items()}
  torch.save(state, tmp_path / 'r.pth')
  np.savez(tmp_path / 'r.npz', **arrays)
  save_file(arrays, str(tmp_path / 'r.safetensors'))
  _, from_pth = cnn_arch.from_torchvision(
      'resnet18', torchvision_weights.read_state_dict(str(tmp_path / 'r.pth')))
  for other in ('r.npz', 'r.safetensors'):
    _, variables = cnn_arch.from_torchvision(
        'resnet18', torchvision_weights.read_state_dict(str(tmp_path / other)))
    jax.tree.map(np.testing.assert_array_equal, from_pth, variables)


def test_a_pth_that_would_run_code_is_refused(tmp_path):
  torch = pytest.importorskip('torch')
  torch.save({'conv1.weight': torch.zeros(1), 'trap': Image.new('RGB', (1, 1))},
             tmp_path / 'evil.pth')
  with pytest.raises(ValueError, match='not a torch state dict that loads safely'):
    torchvision_weights.read_state_dict(str(tmp_path / 'evil.pth'))


def resnet18_arrays():
  """torchvision's ResNet-18 names with arrays of its shapes (zeros), made without torch."""
  shapes = traverse_util.flatten_dict(jax.eval_shape(
      cnn_arch.create_model('resnet18').init, jax.random.key(0),
      np.zeros((1, 224, 224, 3), np.float32)), sep='/')
  torch_shape = lambda s: (s[3], s[2], s[0], s[1]) if len(s) == 4 else s[::-1]
  return {key: np.zeros(torch_shape(shapes[path].shape), np.float32)
          for layer in torchvision_weights._resnet_layers('resnet18', {})
          for key, path, _ in torchvision_weights._entries(*layer)}


@pytest.mark.parametrize('change, message', [
    (lambda a: a.pop('layer2.0.downsample.1.running_var'),
     "has no 'layer2.0.downsample.1.running_var'"),
    (lambda a: a.update({'layer5.0.conv1.weight': np.ones(1)}),
     "has an unexpected key 'layer5.0.conv1.weight'"),
    (lambda a: a.update({'layer1.0.conv2.weight': np.ones((64, 64, 5, 5))}),
     r"'layer1.0.conv2.weight' has shape \(64, 64, 5, 5\), which does not fit"),
])
def test_a_state_dict_that_does_not_fit_is_one_error_naming_the_key(change, message):
  arrays = resnet18_arrays()
  cnn_arch.from_torchvision('resnet18', arrays)  # as it is, it fits
  change(arrays)
  with pytest.raises(ValueError, match=message):
    cnn_arch.from_torchvision('resnet18', arrays)


def test_unknown_network_and_contradicting_options_are_errors():
  with pytest.raises(ValueError, match='unknown network .resnet19.; choose one of vgg11'):
    cnn_arch.from_torchvision('resnet19', {})
  with pytest.raises(ValueError, match='resnet50 has stride_in_3x3=True'):
    cnn_arch.from_torchvision('resnet50', {}, stride_in_3x3=False)


def test_fine_tuning_starts_from_the_source_and_reinitialises_the_classifier(
    tiny_config, two_class_folder, tmp_path, capsys):
  """A 3-class LeNet-5 run, fine-tuned on a 2-class folder: at step 0 every parameter but the
  classifier's is the source's; the classifier is the fresh one, and one line says so."""
  source = str(tmp_path / 'source')
  source_config = tiny_config(max_steps=3)
  source_config.input.transform = 'standardize'  # as torchvision's weights take it
  trainer.train_and_evaluate(source_config, source)
  _, source_variables, _ = runs.load_variables(source)

  config = tiny_config(dataset=f'folder:{two_class_folder}', init_from=source, max_steps=2)
  info = sources.dataset_info(config)
  init, _ = train_state.train_state_of(config, info, sharding.create_mesh(None, 1))
  fresh = init(jax.random.key(0))
  started = pretrained.init_from(fresh, config, info.num_classes)
  err = capsys.readouterr().err
  assert 'output re-initialised for 2 classes' in err
  # The weights' own input, not LeNet-5's paper's (-0.1 to 1.175): one line says so.
  assert 'init_from: the input its weights were trained on, standardize: (p - (123.7' in err
  assert config.input.transform == 'standardize'
  ours, theirs, initial = flat(started.params), flat(source_variables['params']), flat(fresh.params)
  for path in ours:
    expected = initial[path] if path.startswith('output/') else theirs[path]
    np.testing.assert_array_equal(ours[path], expected)
  assert trainer.train_and_evaluate(config, str(tmp_path / 'tuned'))['val_examples'] == 6


def test_init_from_errors_are_one_line(tiny_config, tmp_path):
  with pytest.raises(ValueError, match='not a run directory'):
    trainer.train_and_evaluate(tiny_config(init_from=str(tmp_path / 'none')), str(tmp_path / 'a'))
  source = str(tmp_path / 'source')
  trainer.train_and_evaluate(tiny_config(max_steps=1), source)
  config = tiny_config(init_from=source)
  config.model.name = 'nin'
  with pytest.raises(ValueError, match='holds lenet5, not nin'):
    pretrained.init_from(None, config, 3)
  grey = sources.DatasetInfo(3, 0, 0, 1)  # the source saw RGB images
  init, _ = train_state.train_state_of(tiny_config(), grey, sharding.create_mesh(None, 1))
  with pytest.raises(ValueError, match=r'params/c1/kernel has shape \(5, 5, 3, 6\), the '
                                       r"model's is \(5, 5, 1, 6\)"):
    pretrained.init_from(init(jax.random.key(0)), tiny_config(init_from=source), 3)


def test_imagenet_class_names_are_tfds_label_order_with_torchvision_names():
  """The shipped names file: TFDS's WordNet IDs in label order, each with the name torchvision
  gives that label."""
  import tensorflow_datasets as tfds
  synsets = tfds.builder('imagenet2012').info.features['label'].names
  classes = prediction.imagenet_classes()
  assert list(classes) == synsets
  meta = pytest.importorskip('torchvision.models._meta')
  assert list(classes.values()) == meta._IMAGENET_CATEGORIES


def test_an_image_that_is_not_there_or_not_an_image_is_one_error(tiny_config, tmp_path):
  (tmp_path / 'notes.txt').write_text('not a photo')
  with pytest.raises(ValueError, match='notes.txt: not a JPEG or PNG image'):
    prediction.load_image(str(tmp_path / 'notes.txt'), tiny_config())
  with pytest.raises(ValueError, match='missing.jpg: no such file'):
    prediction.load_image(str(tmp_path / 'missing.jpg'), tiny_config())
