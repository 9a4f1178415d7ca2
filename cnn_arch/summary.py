"""Per-layer summary of a model: output size, kernel/stride, parameters and multiply-adds.

    python -m cnn_arch.summary alexnet                   # the lecture's AlexNet table
    python -m cnn_arch.summary alexnet groups=2 --json   # one JSON object
    python -m cnn_arch.summary googlenet --depth 1       # one row per Inception block
    python -m cnn_arch.summary --all                     # one row per model (README table)

Nothing is computed: the model is traced abstractly with `jax.eval_shape`, and every module
call is recorded on the way. MACs are counted for conv and dense layers, one image.
"""
import argparse
import ast
import copy
import json
import math
import sys
from functools import lru_cache, partial

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import traverse_util

import cnn_arch

PAPERS = {
    'lenet5': 'LeCun et al. 1998',
    'alexnet': 'Krizhevsky et al. 2012',
    'vgg_a': 'Simonyan & Zisserman 2015', 'vgg_a_lrn': 'Simonyan & Zisserman 2015',
    'vgg_b': 'Simonyan & Zisserman 2015', 'vgg_c': 'Simonyan & Zisserman 2015',
    'vgg_d': 'Simonyan & Zisserman 2015', 'vgg_e': 'Simonyan & Zisserman 2015',
    'vgg_b_5x5': 'Simonyan & Zisserman 2015, Sec. 4.1',
    'nin': 'Lin et al. 2014',
    'googlenet': 'Szegedy et al. 2015',
    'inception_bn': 'Ioffe & Szegedy 2015',
    'inception_v3': 'Szegedy et al. 2016',
    'inception_v4': 'Szegedy et al. 2017',
    'inception_resnet_v1': 'Szegedy et al. 2017',
    'inception_resnet_v2': 'Szegedy et al. 2017',
    **{f'resnet{d}': 'He et al. 2016' for d in (18, 34, 50, 101, 152)},
    **{f'resnet{d}': 'He et al. 2016 (CIFAR-10)' for d in (20, 32, 44, 56, 110, 1202)},
}


def _size(tree):
  return sum(math.prod(x.shape) for x in jax.tree.leaves(tree))


def _kernel(module):
  """'11×11/4'-style kernel and stride of a conv or pooling module, '' for the rest."""
  if isinstance(module, nn.Conv):
    strides = module.strides or 1
    stride = strides if isinstance(strides, int) else strides[0]
    return f'{"×".join(map(str, module.kernel_size))}/{stride}'
  if hasattr(module, 'window'):
    return f'{module.window}×{module.window}/{module.stride}'
  return ''


def _macs(module, in_shape, out_shape):
  """Multiply-adds of one conv or dense call (batch 1): every output × its fan-in."""
  outputs = math.prod(out_shape[1:])
  if isinstance(module, nn.Conv):
    return outputs * math.prod(module.kernel_size) * in_shape[-1] // module.feature_group_count
  if isinstance(module, nn.Dense):
    return outputs * in_shape[-1]
  return 0


def summarize(name, input_size=None, num_classes=None, depth=None, channels=None, **overrides):
  """The summary of `name` as a dict (the `--json` object of the command line).

  `depth=None` lists every leaf layer; `depth=d` groups the rows into the modules `d` levels
  below the model (e.g. GoogLeNet's Inception blocks at depth 1), summing their params and MACs.
  Kept per process: tracing a deep model takes seconds (ResNet-1202: 10), and the model table
  and the tests ask for the same models again.
  """
  args = (name, input_size, num_classes, depth, channels, tuple(sorted(overrides.items())))
  try:
    hash(args)
  except TypeError:  # an unhashable option value (a list): computed, not kept
    return _summary.__wrapped__(*args)
  return copy.deepcopy(_summary(*args))  # the caller may change its copy


@lru_cache(maxsize=None)
def _summary(name, input_size, num_classes, depth, channels, overrides):
  overrides = dict(overrides)
  model = cnn_arch.create_model(name, num_classes, **overrides)
  h, w, c = cnn_arch.input_shape(name, **overrides)
  if input_size:
    h = w = input_size
  c = channels or c
  calls, stack = [], []

  def record(next_fun, args, kwargs, context):
    if context.method_name != '__call__':
      return next_fun(*args, **kwargs)
    call = {'module': context.module, 'path': context.module.path, 'leaf': True}
    if stack:
      stack[-1]['leaf'] = False
    stack.append(call)
    calls.append(call)
    out = next_fun(*args, **kwargs)
    stack.pop()
    call['in_shape'], call['out_shape'] = args[0].shape, jax.tree.leaves(out)[0].shape
    return out

  with nn.intercept_methods(record):
    variables = nn.meta.unbox(jax.eval_shape(partial(model.init, train=False), jax.random.key(0),
                                             jnp.zeros((1, h, w, c), jnp.float32)))
  params = traverse_util.flatten_dict(variables.get('params', {}))
  for call in calls:
    call['macs'] = _macs(call['module'], call['in_shape'], call['out_shape'])
  leaves = [call for call in calls if call['leaf'] and call['path']]

  def under(prefix):
    return [call for call in leaves if call['path'][:len(prefix)] == prefix]

  if depth is None:
    rows = leaves
  else:
    rows = [call for call in calls if call['path'] and (
        len(call['path']) == depth or (call['leaf'] and len(call['path']) < depth))]
  layers = []
  for call in rows:
    path = call['path']
    layers.append({
        'name': '/'.join(path),
        'type': type(call['module']).__name__,
        'output_shape': list(call['out_shape'][1:]),
        'kernel': _kernel(call['module']) if call['leaf'] else '',
        'params': sum(math.prod(v.shape) for k, v in params.items() if k[:len(path)] == path),
        'macs': sum(leaf['macs'] for leaf in under(path)),
    })
  return {
      'model': name,
      'input_shape': [h, w, c],
      'params': _size(variables.get('params', {})),
      'batch_stats': _size(variables.get('batch_stats', {})),
      'macs': sum(call['macs'] for call in leaves),
      'layers': layers,
  }


def format_table(summary):
  """The summary as a fixed-width text table, totals last."""
  rows = [(layer['name'], layer['type'], '×'.join(map(str, layer['output_shape'])),
           layer['kernel'], f'{layer["params"]:,}', f'{layer["macs"]:,}')
          for layer in summary['layers']]
  header = ('layer', 'type', 'output', 'kernel/stride', 'params', 'MACs')
  total = ('total', '', '', '', f'{summary["params"]:,}', f'{summary["macs"]:,}')
  widths = [max(len(r[i]) for r in [header, total, *rows]) for i in range(len(header))]
  line = lambda r: '  '.join(c.rjust(w) if i >= 4 else c.ljust(w)  # noqa: E731
                             for i, (c, w) in enumerate(zip(r, widths))).rstrip()
  rule = '-' * len(line(header))
  title = (f'{summary["model"]}: input {"×".join(map(str, summary["input_shape"]))}, '
           f'{summary["params"]:,} parameters, {summary["batch_stats"]:,} BatchNorm statistics, '
           f'{summary["macs"] / 1e9:.3f} GMACs per image')
  return '\n'.join([title, rule, line(header), rule, *map(line, rows), rule, line(total)])


def model_table():
  """A Markdown table of every model at its paper's input size (the README's model table)."""
  lines = ['| model | paper | input | params | MACs |', '|---|---|---|---:|---:|']
  for name in sorted(PAPERS, key=list(PAPERS).index):
    s = summarize(name)
    size = '×'.join(map(str, s['input_shape']))
    macs = f'{s["macs"] / 1e9:.2f} G' if s['macs'] > 1e8 else f'{s["macs"] / 1e6:.2f} M'
    lines.append(f'| `{name}` | {PAPERS[name]} | {size} | {s["params"]:,} | {macs} |')
  return '\n'.join(lines)


def _parse_override(text):
  key, sep, value = text.partition('=')
  if not sep or not key:
    raise ValueError(f'expected key=value, got {text!r}')
  try:
    return key, ast.literal_eval(value)
  except (ValueError, SyntaxError):
    return key, value  # a bare word such as activation=relu


def main(argv=None):
  parser = argparse.ArgumentParser(prog='python -m cnn_arch.summary', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('name', nargs='?', help='model name (see --list)')
  parser.add_argument('overrides', nargs='*', metavar='key=value',
                      help='model options, values as Python literals (groups=2 lrn=False)')
  parser.add_argument('--input-size', type=int, help='square input side (default: the paper\'s)')
  parser.add_argument('--num-classes', type=int, help='outputs (default: the paper\'s)')
  parser.add_argument('--depth', type=int, help='group rows into modules at this depth')
  parser.add_argument('--json', action='store_true', help='print one JSON object')
  parser.add_argument('--all', action='store_true', help='one Markdown row per model')
  parser.add_argument('--list', action='store_true', help='print the model names')
  args = parser.parse_intermixed_args(argv)
  try:
    if args.list:
      print('\n'.join(cnn_arch.list_models()))
    elif args.all:
      print(model_table())
    elif not args.name:
      parser.error('give a model name, --all or --list')
    else:
      overrides = dict(map(_parse_override, args.overrides))
      summary = summarize(args.name, args.input_size, args.num_classes, args.depth, **overrides)
      if args.json:
        for layer in summary['layers']:
          del layer['type'], layer['kernel']
        print(json.dumps(summary))
      else:
        print(format_table(summary))
  except (ValueError, TypeError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main())
