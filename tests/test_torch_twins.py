"""The lecture's networks that torchvision lacks (its `alexnet` and `googlenet` are other
networks), each against a plain torch.nn twin written here from the paper's table: weights
copied, the same two images, outputs equal to 1e-4 of their largest magnitude."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cnn_arch
from cnn_arch import googlenet, torchvision_weights

torch = pytest.importorskip('torch')
nn, F = torch.nn, torch.nn.functional

TOLERANCE = 1e-4  # of max |twin's output|


class AlexNetTwin(nn.Module):
  """The lecture's table: conv → ReLU (→ LRN) (→ 3×3/2 max pool), FC 4096, 4096, 1000."""

  def __init__(self, groups=1, lrn=True):
    super().__init__()
    self.conv1 = nn.Conv2d(3, 96, 11, 4, 0)
    self.conv2 = nn.Conv2d(96, 256, 5, 1, 2, groups=groups)
    self.conv3 = nn.Conv2d(256, 384, 3, 1, 1)
    self.conv4 = nn.Conv2d(384, 384, 3, 1, 1, groups=groups)
    self.conv5 = nn.Conv2d(384, 256, 3, 1, 1, groups=groups)
    self.fc6, self.fc7, self.fc8 = nn.Linear(256 * 6 * 6, 4096), nn.Linear(4096, 4096), nn.Linear(
        4096, 1000)
    # k = 2, n = 5, α = 1e-4, β = 0.75; PyTorch divides α by n, so it gets n·α.
    self.norm = nn.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2.0) if lrn else nn.Identity()

  def forward(self, x):
    pool = lambda x: F.max_pool2d(x, 3, 2)
    x = pool(self.norm(F.relu(self.conv1(x))))   # 55 → 27
    x = pool(self.norm(F.relu(self.conv2(x))))   # 27 → 13
    x = F.relu(self.conv4(F.relu(self.conv3(x))))
    x = pool(F.relu(self.conv5(x))).flatten(1)   # 6×6×256
    return self.fc8(F.relu(self.fc7(F.relu(self.fc6(x)))))


class InceptionTwin(nn.Module):
  def __init__(self, cin, n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj):
    super().__init__()
    self.convs = nn.ModuleDict({
        '1x1': nn.Conv2d(cin, n1x1, 1), '3x3_reduce': nn.Conv2d(cin, n3x3_reduce, 1),
        '3x3': nn.Conv2d(n3x3_reduce, n3x3, 3, padding=1),
        '5x5_reduce': nn.Conv2d(cin, n5x5_reduce, 1),
        '5x5': nn.Conv2d(n5x5_reduce, n5x5, 5, padding=2), 'pool_proj': nn.Conv2d(cin, pool_proj, 1)})

  def forward(self, x):
    c = lambda name, x: F.relu(self.convs[name](x))
    return torch.cat([c('1x1', x), c('3x3', c('3x3_reduce', x)), c('5x5', c('5x5_reduce', x)),
                      c('pool_proj', F.max_pool2d(x, 3, 1, 1))], 1)


class GoogLeNetTwin(nn.Module):
  """Table 1 of the GoogLeNet paper, as its Caffe model: LRN (k = 1) in the stem, ceil-mode
  pools, real 5×5 convs, no BatchNorm."""

  def __init__(self):
    super().__init__()
    self.conv1 = nn.Conv2d(3, 64, 7, 2, 3)
    self.conv2_reduce = nn.Conv2d(64, 64, 1)
    self.conv2 = nn.Conv2d(64, 192, 3, padding=1)
    self.norm = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
    blocks, cin = {}, 192
    for name, widths in googlenet.INCEPTION.items():
      blocks[f'inception_{name}'] = InceptionTwin(cin, *widths)
      cin = widths[0] + widths[2] + widths[4] + widths[5]
    self.blocks = nn.ModuleDict(blocks)
    self.fc = nn.Linear(1024, 1000)

  def forward(self, x):
    pool = lambda x: F.max_pool2d(x, 3, 2, ceil_mode=True)
    x = self.norm(pool(F.relu(self.conv1(x))))                                  # 56×56
    x = pool(self.norm(F.relu(self.conv2(F.relu(self.conv2_reduce(x))))))      # 28×28
    for name, block in self.blocks.items():
      x = block(x)
      if name in ('inception_3b', 'inception_4e'):
        x = pool(x)
    return self.fc(x.mean((2, 3)))


class NiNTwin(nn.Module):
  """Three mlpconv blocks (AlexNet's conv widths, each + two 1×1 convs) with 3×3/2 pools, a
  fourth with one map per class, global average pooling."""

  def __init__(self, classes=1000):
    super().__init__()
    specs = ((3, 96, 11, 4, 0), (96, 256, 5, 1, 2), (256, 384, 3, 1, 1), (384, classes, 3, 1, 1))
    self.blocks = nn.ModuleDict()
    for b, (cin, width, k, s, p) in enumerate(specs, 1):
      self.blocks[f'conv{b}'] = nn.Conv2d(cin, width, k, s, p)
      self.blocks[f'mlp{b}_1'] = nn.Conv2d(width, width, 1)
      self.blocks[f'mlp{b}_2'] = nn.Conv2d(width, width, 1)

  def forward(self, x):
    for b in range(1, 5):
      for name in (f'conv{b}', f'mlp{b}_1', f'mlp{b}_2'):
        x = F.relu(self.blocks[name](x))
      if b < 4:
        x = F.max_pool2d(x, 3, 2)
    return x.mean((2, 3))


class LeNet5Twin(nn.Module):
  """C1 6@5×5 (padded by 2: MNIST's 28×28 as the paper's 32×32) → S2 → C3 16 → S4 → C5 120 →
  F6 84 → 10, tanh, average pools."""

  def __init__(self):
    super().__init__()
    self.c1, self.c3, self.c5 = nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5), nn.Conv2d(16, 120, 5)
    self.f6, self.output = nn.Linear(120, 84), nn.Linear(84, 10)

  def forward(self, x):
    x = F.avg_pool2d(torch.tanh(self.c1(x)), 2)
    x = F.avg_pool2d(torch.tanh(self.c3(x)), 2)
    x = torch.tanh(self.c5(x)).flatten(1)
    return self.output(torch.tanh(self.f6(x)))


def layers_of(twin, flattened=None):
  """(twin's module, our path, kind) for each conv and linear layer: twin and ours share names
  (a twin's container names dropped); `flattened` (C, H, W) for the first linear layer."""
  layers = []
  for name, module in twin.named_modules():
    path = name.replace('convs.', '').replace('blocks.', '').replace('.', '/')
    if isinstance(module, nn.Conv2d):
      layers.append((name, path, 'conv'))
    elif isinstance(module, nn.Linear):
      layers.append((name, path, 'linear', flattened))
      flattened = None
  return layers


TWINS = {  # name: (our model, its options, twin, input, twin's flattened map)
    'alexnet': ('alexnet', {}, AlexNetTwin, (227, 3), (256, 6, 6)),
    'alexnet, two towers': ('alexnet', {'groups': 2}, lambda: AlexNetTwin(groups=2), (227, 3),
                            (256, 6, 6)),
    'alexnet without LRN': ('alexnet', {'lrn': False}, lambda: AlexNetTwin(lrn=False), (227, 3),
                            (256, 6, 6)),
    'googlenet': ('googlenet', {}, GoogLeNetTwin, (224, 3), None),
    'nin': ('nin', {}, NiNTwin, (224, 3), None),
    'lenet5': ('lenet5', {}, LeNet5Twin, (28, 1), None),
}


@pytest.mark.parametrize('name', TWINS)
def test_network_computes_what_its_torch_twin_computes(name):
  ours, options, make_twin, (size, channels), flattened = TWINS[name]
  torch.manual_seed(0)
  twin = make_twin().eval()
  # He's scale keeps the activations up through the layers, and the images are large: LRN's
  # α term is then a fair part of k, so that a wrong α shows.
  with torch.no_grad():
    for module in twin.modules():
      if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(module.weight)
        nn.init.uniform_(module.bias, -0.1, 0.1)
  model = cnn_arch.create_model(ours, **options)
  expected = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, size, size, channels)))
  arrays = {k: v.numpy() for k, v in twin.state_dict().items()}
  variables = torchvision_weights.convert(f'the {name} twin', arrays, layers_of(twin, flattened),
                                          expected)
  x = 30 * np.random.default_rng(0).standard_normal((2, channels, size, size), np.float32)
  with torch.no_grad():
    theirs = twin(torch.from_numpy(x)).numpy()
  got = np.asarray(model.apply(variables, x.transpose(0, 2, 3, 1), train=False))
  error = float(np.max(np.abs(got - theirs)) / np.max(np.abs(theirs)))
  print(f'{name}: max |ours - twin| = {error:.1e} × max |twin|')
  assert error <= TOLERANCE
