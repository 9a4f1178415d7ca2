"""Our networks compute what torchvision's compute: `cnn_arch.from_torchvision` on random weights
and random BatchNorm statistics, two images at the paper's size, float32; the outputs agree to
1e-4 of their largest magnitude."""
import numpy as np
import pytest

import cnn_arch

torch = pytest.importorskip('torch')
torchvision = pytest.importorskip('torchvision')

TOLERANCE = 1e-4  # of max |torchvision's output|


def randomised(net, seed=0):
  """`net` in eval mode with BatchNorm's statistics and affine parameters drawn at random, so
  that inference-mode BatchNorm is not the identity."""
  generator = torch.Generator().manual_seed(seed)
  uniform = lambda t, low, high: t.copy_(low + (high - low) * torch.rand(t.shape, generator=generator))
  with torch.no_grad():
    for module in net.modules():
      if isinstance(module, torch.nn.BatchNorm2d):
        uniform(module.weight, 0.5, 1.5)
        uniform(module.bias, -0.2, 0.2)
        uniform(module.running_mean, -0.2, 0.2)
        uniform(module.running_var, 0.5, 1.5)
  return net.eval()


def relative_error(model, variables, net, images):
  """max |ours − theirs| / max |theirs| on NCHW `images` (ours see them as NHWC)."""
  with torch.no_grad():
    theirs = net(torch.from_numpy(images)).numpy()
  ours = np.asarray(model.apply(variables, images.transpose(0, 2, 3, 1), train=False))
  assert ours.shape == theirs.shape
  return float(np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs)))


def images(size, channels=3, seed=0):
  return np.random.default_rng(seed).standard_normal((2, channels, size, size), np.float32)


NETWORKS = [*(f'vgg{d}{bn}' for d in (11, 13, 16, 19) for bn in ('', '_bn')),
            *(f'resnet{d}' for d in (18, 34, 50, 101, 152)), 'inception_v3',
            'inception_v3 transform_input']  # as torchvision runs its published weights


@pytest.mark.parametrize('network', NETWORKS)
def test_torchvision_network_computes_the_same_function(network):
  name, _, option = network.partition(' ')
  torch.manual_seed(0)
  extra = {'aux_logits': True, 'init_weights': True} if name == 'inception_v3' else {}
  if option:
    extra[option] = True
  net = randomised(getattr(torchvision.models, name)(weights=None, **extra))
  options = {option: True} if option else {}
  model, variables = cnn_arch.from_torchvision(name, net.state_dict(), **options)
  size = 299 if name == 'inception_v3' else 224
  error = relative_error(model, variables, net, images(size))
  print(f'{network}: max |ours - torchvision| = {error:.1e} × max |torchvision|')
  assert error <= TOLERANCE
