"""Run an ablation sweep: every variant trained and evaluated, then one table and one plot.

    python -m cnn_train.sweep sweeps/alexnet_lrn.py             # run (skips finished variants)
    python -m cnn_train.sweep sweeps/alexnet_lrn.py --dry-run   # print the commands only
    python -m cnn_train.sweep sweeps/alexnet_lrn.py --summary   # only rewrite the summary

A sweep file defines `get_sweep()` returning {'config': a config file, 'args': its config-string
arguments shared by all variants, 'axes': {argument: [values]} (every combination is a variant),
'overrides': {config key: value} passed as --config.KEY=VALUE, optionally 'curves': 'top1'
(validation top-1 against epochs, the default) or 'error' (training and validation error against
iterations, as the ResNet paper's Fig. 6)}. Variant k runs in
WORKDIR/<its axis values>: `train.py` then `eval.py`, as separate processes, so the printed
commands are what a cluster scheduler would run. WORKDIR gets summary.md, summary.csv, curves.png.
"""
import argparse
import csv
import importlib.util
import itertools
import json
import os
import shlex
import subprocess
import sys
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# 'top1': validation top-1 against epochs; 'error': the ResNet paper's Fig. 6, training error
# (thin) and validation error (bold) against iterations.
CURVES = ('top1', 'error')


def load_sweep(path):
  spec = importlib.util.spec_from_file_location('sweep_file', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  sweep = module.get_sweep()
  sweep.setdefault('title', (module.__doc__ or '').strip().split('\n')[0])
  sweep.setdefault('curves', 'top1')
  unknown = set(sweep) - {'config', 'args', 'axes', 'overrides', 'title', 'curves'}
  if unknown or 'config' not in sweep:
    raise ValueError(f'{path}: get_sweep() must return config, args, axes, overrides '
                     f'(unknown: {", ".join(sorted(unknown)) or "none"})')
  if sweep['curves'] not in CURVES:
    raise ValueError(f'{path}: curves={sweep["curves"]!r}: choose {" or ".join(CURVES)}')
  return sweep


def variants(sweep):
  """(name, config-string arguments) of every combination of the axes."""
  axes = sweep.get('axes', {})
  for values in itertools.product(*axes.values()):
    pairs = [f'{k}={v}' for k, v in zip(axes, values)]
    yield ','.join(pairs) or 'base', ','.join(filter(None, [sweep.get('args', ''), *pairs]))


def commands(sweep, workdir):
  """{variant: (train command, eval command, its workdir)}."""
  result = {}
  overrides = [f'--config.{k}={v}' for k, v in sweep.get('overrides', {}).items()]
  for name, args in variants(sweep):
    run_dir = os.path.join(workdir, name)
    train = [sys.executable, os.path.join(ROOT, 'train.py'),
             f'--config={sweep["config"]}' + (f':{args}' if args else ''),
             f'--workdir={run_dir}', *overrides]
    evaluate = [sys.executable, os.path.join(ROOT, 'eval.py'), f'--workdir={run_dir}']
    result[name] = (train, evaluate, run_dir)
  return result


def finished(run_dir):
  """A variant is done once its evaluation has been written (eval.py runs after training)."""
  return os.path.exists(os.path.join(run_dir, 'sweep.json'))


def run_variant(train, evaluate, run_dir):
  start = time.time()
  subprocess.run(train, check=True, cwd=ROOT)
  seconds = time.time() - start
  subprocess.run(evaluate, check=True, cwd=ROOT)
  with open(os.path.join(run_dir, 'sweep.json'), 'w') as f:  # the "finished" mark
    json.dump({'train_seconds': seconds}, f)


def read_run(name, run_dir):
  """One summary row, from what train.py and eval.py wrote in `run_dir`."""
  from cnn_arch.summary import summarize
  from cnn_train import evaluation, input_pipeline
  config = evaluation.load_config(run_dir)
  info = input_pipeline.dataset_info(config)
  model = summarize(config.model.name, config.image_size, info.num_classes,
                    channels=info.channels, **config.model.overrides)
  lines = [json.loads(line) for line in open(os.path.join(run_dir, 'metrics.jsonl'))]
  evals = sorted(os.listdir(os.path.join(run_dir, 'eval')),
                 key=lambda f: int(f.split('-')[0]))
  with open(os.path.join(run_dir, 'eval', [f for f in evals if '-1crop-' in f][-1])) as f:
    result = json.load(f)
  with open(os.path.join(run_dir, 'sweep.json')) as f:
    seconds = json.load(f)['train_seconds']
  speeds = [line['images_per_s'] for line in lines if 'images_per_s' in line]
  return {
      'variant': name, 'params': model['params'], 'macs': model['macs'],
      'top1': result['top1'], 'top5': result['top5'], 'train_s': round(seconds),
      'images_per_s': round(sum(speeds) / len(speeds), 1),
      'curve': [(line['epoch'], line['val_top1']) for line in lines if 'val_top1' in line],
      'val_errors': [(line['step'], 1 - line['val_top1']) for line in lines
                     if 'val_top1' in line],
      'train_errors': [(line['step'], 1 - line['train_top1']) for line in lines
                       if 'train_top1' in line],
  }


def write_summary(rows, workdir, title, curves='top1'):
  columns = ('variant', 'params', 'macs', 'top1', 'top5', 'train_s', 'images_per_s')
  with open(os.path.join(workdir, 'summary.csv'), 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(columns)
    writer.writerows([[row[c] for c in columns] for row in rows])
  lines = [f'# {title}', '',
           '| variant | params | MACs | top-1 | top-5 | train time | images/s |',
           '|---|---:|---:|---:|---:|---:|---:|']
  for r in rows:
    lines.append(f'| {r["variant"]} | {r["params"]:,} | {r["macs"] / 1e6:,.1f} M | '
                 f'{r["top1"]:.4f} | {r["top5"]:.4f} | {r["train_s"]} s | '
                 f'{r["images_per_s"]} |')
  with open(os.path.join(workdir, 'summary.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')

  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
  if curves == 'error':
    _plot_errors(ax, rows)
  else:
    _plot_top1(ax, rows)
  ax.set_title(textwrap.fill(title, 70), fontsize=10)  # long titles wrap, never clip
  ax.grid(alpha=0.3)
  ax.legend()
  fig.tight_layout()
  fig.savefig(os.path.join(workdir, 'curves.png'))
  plt.close(fig)


def _plot_top1(ax, rows):
  for r in rows:
    epochs, top1 = zip(*r['curve']) if r['curve'] else ((), ())
    ax.plot(epochs, [100 * t for t in top1], marker='o', label=f'{r["variant"]} '
            f'(final {100 * r["top1"]:.1f} %)')
  low, high = ax.get_ylim()
  if high - low < 5:  # flat curves: show a few points around them, not a magnified 0.1 %
    middle = (high + low) / 2
    ax.set_ylim(max(0, middle - 2.5), middle + 2.5)
  ax.set_xlabel('epoch')
  ax.set_ylabel('validation top-1 accuracy (%)')


def _plot_errors(ax, rows):
  """Fig. 6 of the ResNet paper: one colour per variant, training error thin, validation
  (test) error bold."""
  for r, colour in zip(rows, itertools.cycle(f'C{i}' for i in range(10))):
    for points, width, label in ((r['train_errors'], 0.8, None),
                                 (r['val_errors'], 2.4, f'{r["variant"]} (final '
                                  f'{100 * (1 - r["top1"]):.1f} %)')):
      steps, errors = zip(*points) if points else ((), ())
      ax.plot(steps, [100 * e for e in errors], color=colour, linewidth=width, label=label)
  ax.set_xlabel('iterations')
  ax.set_ylabel('error (%): training thin, validation bold')


def main(argv=None):
  parser = argparse.ArgumentParser(prog='python -m cnn_train.sweep', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('sweep', help='a sweep file, e.g. sweeps/alexnet_lrn.py')
  parser.add_argument('--workdir', help='default: runs/sweeps/<sweep file name>')
  parser.add_argument('--dry-run', action='store_true', help='print the commands, run nothing')
  parser.add_argument('--summary', action='store_true', help='only (re)write the summary')
  args = parser.parse_args(argv)
  try:
    sweep = load_sweep(args.sweep)
  except (OSError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  name = os.path.splitext(os.path.basename(args.sweep))[0]
  workdir = os.path.abspath(args.workdir or os.path.join('runs', 'sweeps', name))
  plan = commands(sweep, workdir)
  if args.dry_run:
    for train, evaluate, _ in plan.values():
      print(shlex.join(train))
      print(shlex.join(evaluate))
    return 0
  if not args.summary:
    for variant, (train, evaluate, run_dir) in plan.items():
      if finished(run_dir):
        print(f'{variant}: finished, skipped', flush=True)
        continue
      print(f'{variant}: {shlex.join(train)}', flush=True)
      try:
        run_variant(train, evaluate, run_dir)
      except subprocess.CalledProcessError as e:
        print(f'error: variant {variant} failed (exit code {e.returncode}); rerun to resume it',
              file=sys.stderr)
        return 1
  done = [(variant, run_dir) for variant, (_, _, run_dir) in plan.items() if finished(run_dir)]
  if not done:
    print('error: no finished variant to summarise', file=sys.stderr)
    return 2
  rows = [read_run(variant, run_dir) for variant, run_dir in done]
  write_summary(rows, workdir, sweep['title'] or name, sweep['curves'])
  print(open(os.path.join(workdir, 'summary.md')).read())
  print(f'wrote {workdir}/summary.md, summary.csv and curves.png')
  return 0


if __name__ == '__main__':
  sys.exit(main())
