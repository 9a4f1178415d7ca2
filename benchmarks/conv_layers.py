"""Where a train step's time goes on a CPU: each convolution of a model, ours against PyTorch's.

    ./setup.sh --test       # torch is a test requirement
    .venv/bin/python benchmarks/conv_layers.py --model resnet18 [--batch 32] [--threads 2]

The convolutions are read off our model's forward pass (shapes, strides, padding, groups), and
each distinct one is timed on both sides, alternating, best of `--repeats`: the forward pass
alone, and forward with the gradients a train step needs (the kernel's, and the input's except
for the first layer, whose input is the image). Ours is `cnn_arch.cpu_conv` under `jax.jit`
(the kernels train.py gets); PyTorch's is `torch.nn.functional.conv2d` in channels-last or
NCHW, whichever is faster for that layer. The totals, times each layer's count, set against
each side's whole train step (`--step`, from `benchmarks/pytorch_train_step.py` and `bench.py`)
give what is left besides the convolutions: normalisation, activations, pooling, the
classifier, the optimizer.
"""
import argparse
import os
import sys
import time
from collections import Counter

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from benchmarks import pytorch_train_step
from cnn_train import cpu_kernels, runtime


def conv_layers(name, batch):
  """Counter of (input shape NHWC, kernel HWIO, strides, padding, groups) over the model's
  forward pass, first layer first; the strided ones' input gradients chosen as train.py does."""
  import jax
  import jax.numpy as jnp

  import bench
  from cnn_train import train_state
  config = bench.model_config(name)
  model = train_state.create_model(config, 1000)
  images = jax.ShapeDtypeStruct((batch, config.image_size, config.image_size, 3), jnp.float32)
  chosen = cpu_kernels.choose_input_gradients(model, images)
  if chosen:
    print(chosen)
  return Counter({layer[:5]: count
                  for layer, count in cpu_kernels.convolutions(model, images).items()})


def best_ms(fn, repeats):
  fn(), fn()  # compile, allocate
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return 1e3 * min(times)


def ours(layer, first, repeats):
  import jax
  import jax.numpy as jnp

  from cnn_arch import cpu_conv
  lhs, rhs, strides, padding, groups = layer
  conv = lambda x, k: cpu_conv.conv_general_dilated(
      x, k, strides, padding, dimension_numbers=cpu_conv.NHWC, feature_group_count=groups)
  x = jax.random.normal(jax.random.key(0), lhs)
  kernel = 0.01 * jax.random.normal(jax.random.key(1), rhs)
  grad = jnp.ones(jax.eval_shape(conv, x, kernel).shape)
  forward = jax.jit(conv)
  def with_gradients(x, kernel):  # the output too: else XLA drops the forward, which
    # neither gradient of a convolution needs
    if first:
      y, vjp = jax.vjp(lambda k: conv(x, k), kernel)
    else:
      y, vjp = jax.vjp(conv, x, kernel)
    return y, vjp(grad)
  backward = jax.jit(with_gradients)
  return (best_ms(lambda: jax.block_until_ready(forward(x, kernel)), repeats),
          best_ms(lambda: jax.block_until_ready(backward(x, kernel)), repeats))


def theirs(layer, first, repeats):
  lhs, rhs, strides, padding, groups = layer
  n, h, w, c = lhs
  kh, kw, _, out = rhs
  best = None
  for layout in (torch.channels_last, torch.contiguous_format):
    x = torch.randn(n, c, h, w).to(memory_format=layout)
    kernel = (0.01 * torch.randn(out, c // groups, kh, kw)).to(memory_format=layout)
    x.requires_grad_(not first)
    kernel.requires_grad_()
    # torch pads symmetrically: an asymmetric padding (TF's SAME at stride 2) pads x first
    (top, bottom), (left, right) = padding
    pad = lambda t: torch.nn.functional.pad(t, (left, right, top, bottom))
    conv = lambda: torch.nn.functional.conv2d(pad(x), kernel, stride=strides, groups=groups)
    grad = torch.ones_like(conv())

    def forward():
      with torch.no_grad():
        conv()

    def backward():
      conv().backward(grad)
    times = best_ms(forward, repeats), best_ms(backward, repeats)
    best = min(best or times, times, key=sum)
  return best


def gflop(layer):
  (n, *_), (kh, kw, cin, cout), strides, padding, groups = layer
  size = [(s + sum(p) - k) // st + 1 for s, p, k, st in
          zip(layer[0][1:3], padding, (kh, kw), strides)]
  return 2 * n * size[0] * size[1] * kh * kw * cin * cout / 1e9


def step_seconds(name, batch, steps):
  """Both sides' whole train step, as benchmarks/pytorch_train_step.py times them."""
  ours_s = pytorch_train_step.ours(name, batch, steps)['ms_per_step'] / 1e3
  theirs_s = min(pytorch_train_step.torch_step_seconds(name, batch, steps, layout)
                 for layout in (torch.contiguous_format, torch.channels_last))
  return ours_s, theirs_s


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--model', default='resnet18')
  parser.add_argument('--batch', type=int, default=32)
  parser.add_argument('--threads', type=int, default=os.cpu_count())
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--step', action='store_true',
                      help="also time both sides' whole train step (3 steps each)")
  args = parser.parse_args()
  torch.set_num_threads(args.threads)
  print(f'{runtime.cpu_description()}\ntorch {torch.__version__}, {args.threads} threads; '
        f'{args.model}, batch {args.batch}, float32, best of {args.repeats}, ms\n')
  print('| input (N, H, W, C) | kernel (H, W, I, O) | stride | groups | × | GFLOP | ours fwd '
        '| PyTorch fwd | ours fwd+grads | PyTorch fwd+grads | PyTorch ÷ ours |')
  print('|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|')
  layers = conv_layers(args.model, args.batch)
  totals = Counter()
  for i, (layer, count) in enumerate(layers.items()):
    (f_ours, b_ours), (f_theirs, b_theirs) = (side(layer, i == 0, args.repeats)
                                              for side in (ours, theirs))
    totals.update({'ours': count * b_ours, 'theirs': count * b_theirs,
                   'gflop': count * gflop(layer)})
    print(f'| {layer[0]} | {layer[1]} | {layer[2][0]} | {layer[4]} | {count} | '
          f'{gflop(layer):.2f} | {f_ours:.1f} | {f_theirs:.1f} | {b_ours:.1f} | '
          f'{b_theirs:.1f} | {b_theirs / b_ours:.2f}× |', flush=True)
  print(f'\nall convolutions, forward and gradients: ours {totals["ours"]:.0f} ms, PyTorch '
        f'{totals["theirs"]:.0f} ms ({totals["theirs"] / totals["ours"]:.2f}×); forward '
        f'{totals["gflop"]:.0f} GFLOP')
  if args.step:
    ours_s, theirs_s = step_seconds(args.model, args.batch, 3)
    print(f'whole train step: ours {1e3 * ours_s:.0f} ms (besides the convolutions '
          f'{1e3 * ours_s - totals["ours"]:.0f}), PyTorch {1e3 * theirs_s:.0f} ms (besides '
          f'{1e3 * theirs_s - totals["theirs"]:.0f})')


if __name__ == '__main__':
  runtime.prepare_process()  # our convolutions and allocator, for both sides
  main()
