"""Our networks compute what timm's compute: `cnn_arch.from_timm` on random weights and random
BatchNorm statistics, two images at the paper's size, float32; the outputs agree to 1e-4 of their
largest magnitude (tests/test_torchvision.py's measure)."""
import pytest

import cnn_arch
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
