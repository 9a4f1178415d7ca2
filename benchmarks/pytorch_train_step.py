"""Our jitted train step against PyTorch's eager one, same architecture, batch and threads.

    ./setup.sh --test       # torch is a test requirement (the release measured: 2.14.1)
    .venv/bin/python benchmarks/pytorch_train_step.py [--steps 3] [--threads 2] [--rounds 2]
        [--models alexnet,resnet18,vgg16,resnet50,inception_v3] [--checkout DIR]

Both sides: SGD with momentum 0.9 and weight decay 5e-4, softmax cross-entropy, float32, a
synthetic batch, 2 warm-up steps then `--steps` timed ones. The PyTorch networks are written
here in plain torch.nn as the lecture lays them out (torchvision's resnet18 and vgg11 are the
same; its alexnet and googlenet are not: other widths, BatchNorm, no LRN), including
GoogLeNet's auxiliary classifiers and their 0.3-weighted losses, which our googlenet config
trains too; VGG-16, ResNet-50 and Inception-v3 are torchvision's, the same networks as ours
(`cnn_arch.from_torchvision` reads their weights), Inception-v3 with its auxiliary head and
its 0.4-weighted loss, as our inception config trains it. PyTorch runs in both of its
layouts, NCHW (its default) and channels-last (NHWC, ours; oneDNN's faster one on CPUs for some
nets), and the ratio is against the faster. Ours is
`python bench.py` in a subprocess (the step train.py runs: from a uint8 batch, normalised and
augmented on the device, while PyTorch's step is given float32 images ready for the network).
`--checkout DIR` also times another checkout of this project (`git worktree add DIR COMMIT`)
in the same round, with this environment: a before/after table from one run.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from cnn_train import runtime

# model: batch (the issues' figures)
CASES = {'alexnet': 32, 'resnet18': 32, 'vgg_a': 16, 'googlenet': 32, 'vgg16': 16,
         'resnet50': 32, 'inception_v3': 16}


def lrn(k=2.0, alpha=1e-4, size=5):
  # torch divides alpha by the size; ours (the lecture's formula) does not.
  return nn.LocalResponseNorm(size, alpha=alpha * size, beta=0.75, k=k)


def alexnet():
  return nn.Sequential(
      nn.Conv2d(3, 96, 11, 4), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2),
      nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(), lrn(), nn.MaxPool2d(3, 2),
      nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),
      nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(),
      nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(),
      nn.Linear(9216, 4096), nn.ReLU(), nn.Dropout(0.5),
      nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 1000))


def vgg_a():
  layers, width = [], 3
  for v in (64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'):
    if v == 'M':
      layers.append(nn.MaxPool2d(2, 2))
    else:
      layers += [nn.Conv2d(width, v, 3, padding=1), nn.ReLU()]
      width = v
  return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512 * 7 * 7, 4096), nn.ReLU(),
                       nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
                       nn.Linear(4096, 1000))


class BasicBlock(nn.Module):
  def __init__(self, cin, width, stride):
    super().__init__()
    self.body = nn.Sequential(
        nn.Conv2d(cin, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width))
    self.shortcut = (nn.Sequential(nn.Conv2d(cin, width, 1, stride, bias=False),
                                   nn.BatchNorm2d(width))
                     if stride != 1 or cin != width else nn.Identity())

  def forward(self, x):
    return torch.relu(self.body(x) + self.shortcut(x))


def resnet18():
  layers, cin = [], 64
  for i, width in enumerate((64, 128, 256, 512)):
    for j in range(2):
      layers.append(BasicBlock(cin, width, 2 if i > 0 and j == 0 else 1))
      cin = width
  return nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                       nn.MaxPool2d(3, 2, 1), *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                       nn.Linear(512, 1000))


class Inception(nn.Module):
  def __init__(self, cin, n1, r3, n3, r5, n5, proj):
    super().__init__()
    conv = lambda i, o, k: nn.Sequential(nn.Conv2d(i, o, k, padding=k // 2), nn.ReLU())
    self.b1 = conv(cin, n1, 1)
    self.b3 = nn.Sequential(conv(cin, r3, 1), conv(r3, n3, 3))
    self.b5 = nn.Sequential(conv(cin, r5, 1), conv(r5, n5, 5))
    self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), conv(cin, proj, 1))

  def forward(self, x):
    return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1)


def aux_head(cin):
  return nn.Sequential(nn.AvgPool2d(5, 3), nn.Conv2d(cin, 128, 1), nn.ReLU(), nn.Flatten(),
                       nn.Linear(2048, 1024), nn.ReLU(), nn.Dropout(0.7), nn.Linear(1024, 1000))


class GoogLeNet(nn.Module):
  def __init__(self):
    super().__init__()
    pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)
    self.stem = nn.Sequential(
        nn.Conv2d(3, 64, 7, 2, 3), nn.ReLU(), pool(), lrn(1.0, 1e-4 / 5),
        nn.Conv2d(64, 64, 1), nn.ReLU(), nn.Conv2d(64, 192, 3, padding=1), nn.ReLU(),
        lrn(1.0, 1e-4 / 5), pool())
    self.a3 = nn.Sequential(Inception(192, 64, 96, 128, 16, 32, 32),
                            Inception(256, 128, 128, 192, 32, 96, 64), pool(),
                            Inception(480, 192, 96, 208, 16, 48, 64))
    self.b4 = nn.Sequential(Inception(512, 160, 112, 224, 24, 64, 64),
                            Inception(512, 128, 128, 256, 24, 64, 64),
                            Inception(512, 112, 144, 288, 32, 64, 64))
    self.e4 = nn.Sequential(Inception(528, 256, 160, 320, 32, 128, 128), pool(),
                            Inception(832, 256, 160, 320, 32, 128, 128),
                            Inception(832, 384, 192, 384, 48, 128, 128))
    self.aux1, self.aux2 = aux_head(512), aux_head(528)
    self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.4),
                              nn.Linear(1024, 1000))

  def forward(self, x):
    x4a = self.a3(self.stem(x))
    x4d = self.b4(x4a)
    return self.head(self.e4(x4d)), self.aux1(x4a), self.aux2(x4d)


def torchvision_model(name, **options):
  import torchvision
  return lambda: getattr(torchvision.models, name)(**options)


# model: (constructor, image size, weight of each auxiliary loss)
MODELS = {'alexnet': (alexnet, 227, 0), 'vgg_a': (vgg_a, 224, 0),
          'resnet18': (resnet18, 224, 0), 'googlenet': (GoogLeNet, 224, 0.3),
          'vgg16': (torchvision_model('vgg16'), 224, 0),
          'resnet50': (torchvision_model('resnet50'), 224, 0),
          'inception_v3': (torchvision_model('inception_v3', aux_logits=True, init_weights=False),
                           299, 0.4)}


def torch_step_seconds(name, batch, steps, layout=torch.contiguous_format):
  make, size, aux_weight = MODELS[name]
  model = make().train().to(memory_format=layout)
  optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
  images = torch.randn(batch, 3, size, size).to(memory_format=layout)
  labels = torch.randint(0, 1000, (batch,))
  loss_fn = nn.CrossEntropyLoss()

  def step():
    optimizer.zero_grad(set_to_none=True)
    outputs = model(images)
    if isinstance(outputs, tuple):  # GoogLeNet's or Inception-v3's auxiliary classifiers
      loss = loss_fn(outputs[0], labels) + aux_weight * sum(loss_fn(o, labels)
                                                            for o in outputs[1:])
    else:
      loss = loss_fn(outputs, labels)
    loss.backward()
    optimizer.step()

  for _ in range(2):
    step()
  start = time.perf_counter()
  for _ in range(steps):
    step()
  return (time.perf_counter() - start) / steps


def ours(name, batch, steps, root=ROOT):
  out = subprocess.run([sys.executable, 'bench.py', f'--model={name}',
                        f'--batch={batch}', f'--steps={steps}', '--json'],
                       cwd=root, check=True, capture_output=True, text=True).stdout
  return json.loads(out.strip().splitlines()[-1])


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--steps', type=int, default=3)
  parser.add_argument('--threads', type=int, default=os.cpu_count())
  parser.add_argument('--models', default=','.join(CASES))
  parser.add_argument('--rounds', type=int, default=1,
                      help='alternate the two sides over the models this many times')
  parser.add_argument('--checkout', metavar='DIR',
                      help="another checkout of this project, timed beside ours (its bench.py)")
  args = parser.parse_args()
  if args.checkout and not os.path.isfile(os.path.join(args.checkout, 'bench.py')):
    parser.error(f'--checkout {args.checkout}: no bench.py there; make one with '
                 '`git worktree add DIR COMMIT`')
  torch.set_num_threads(args.threads)
  print(f'{runtime.cpu_description()}\ntorch {torch.__version__}, {args.threads} threads; '
        'ours: jax on all local devices\n')
  if args.checkout:
    print(f'checkout: {args.checkout} ({checkout_commit(args.checkout)})\n')
  extra = ' checkout images/s | checkout ÷ PyTorch\'s faster |' if args.checkout else ''
  print('| model | batch | round | PyTorch NCHW images/s | PyTorch channels-last '
        f'| ours images/s | ours ÷ PyTorch\'s faster | our compile |{extra}')
  print('|---|---:|---:|---:|---:|---:|---:|---:|' + '---:|' * (2 if args.checkout else 0))
  rounds = range(1, args.rounds + 1)
  for round_, name in ((r, n) for r in rounds for n in args.models.split(',')):
    batch = CASES[name]
    nchw, nhwc = (batch / torch_step_seconds(name, batch, args.steps, layout)
                  for layout in (torch.contiguous_format, torch.channels_last))
    faster = max(nchw, nhwc)
    result = ours(name, batch, args.steps)
    line = (f'| {name} | {batch} | {round_} | {nchw:.1f} | {nhwc:.1f} | '
            f'{result["images_per_s"]:.1f} | {result["images_per_s"] / faster:.2f}× | '
            f'{result["compile_s"]:.0f} s |')
    if args.checkout:
      other = ours(name, batch, args.steps, args.checkout)['images_per_s']
      line += f' {other:.1f} | {other / faster:.2f}× |'
    print(line, flush=True)


def checkout_commit(path):
  return subprocess.run(['git', '-C', path, 'log', '-1', '--format=%h %s'], capture_output=True,
                        text=True).stdout.strip()[:72] or 'not a git checkout'


if __name__ == '__main__':
  runtime.restart_with_huge_pages()  # the same allocator setting as our side's
  main()
