"""Run an ablation sweep: every variant trained and evaluated, then one table and one plot.

    python -m cnn_train.sweep sweeps/alexnet_lrn.py              # run (skips finished variants)
    python -m cnn_train.sweep sweeps/alexnet_lrn.py:imagenette   # the sweep file's argument
    python -m cnn_train.sweep sweeps/alexnet_lrn.py --dry-run    # print the commands only
    python -m cnn_train.sweep sweeps/alexnet_lrn.py --summary    # only rewrite the summary
    python -m cnn_train.sweep sweeps/alexnet_lrn.py --jobs=2     # 2 variants at once, own GPUs
    python -m cnn_train.sweep sweeps/alexnet_lrn.py --config.max_steps=2   # for every variant

A sweep file defines `get_sweep(arg=None)`, `arg` being what follows the file name and ':' (the
sweep's data, say), returning either
  {'config': a config file, 'args': its config-string arguments shared by all variants,
   'axes': {argument: [values]}}       every combination of the axes is a variant, or
  {'variants': {name: 'configs/FILE.py:ARGS' or ('configs/FILE.py:ARGS', {key: value})}}
and optionally 'overrides': {config key: value} (--config.KEY=VALUE for every variant), 'title'
and 'plot': 'top1' (validation top-1 against epochs, the default), 'error' (training and
validation error against iterations, as the ResNet paper's Fig. 6) or 'zoo' (also top-1 against
training images/s, one labelled point per variant).

Variant k runs in WORKDIR/<its name>: `train.py` then `eval.py`, as separate processes, so the
printed commands are what a cluster scheduler would run. With --jobs=N (or
--devices-per-variant=K) N variants run at once, each on its own GPUs (CUDA_VISIBLE_DEVICES),
or on a machine without GPUs each with K forced CPU devices; each one's output then goes to
WORKDIR/<name>/sweep.log. WORKDIR gets summary.md, summary.csv and curves.png.
"""
import argparse
import concurrent.futures
import contextlib
import csv
import importlib.util
import inspect
import itertools
import json
import os
import queue
import shlex
import shutil
import statistics
import subprocess
import sys
import textwrap
import time

from cnn_train import runtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# 'top1': validation top-1 against epochs; 'error': the ResNet paper's Fig. 6, training error
# (thin) and validation error (bold) against iterations; 'zoo': top-1 against images/s too.
PLOTS = ('top1', 'error', 'zoo')
LRN_PHOTOS = 32  # evaluation images on which a variant's LRN divisors are summarised
KEYS = {'config', 'args', 'axes', 'variants', 'overrides', 'title', 'plot'}


def load_sweep(spec):
  """The sweep of 'FILE[:ARG]', checked: {'title', 'plot', 'variants': {name: (config,
  overrides)}}."""
  path, _, arg = spec.partition(':')
  if not os.path.isfile(path):
    raise ValueError(f'{path}: no such sweep file')
  module_spec = importlib.util.spec_from_file_location('sweep_file', path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  if arg and not inspect.signature(module.get_sweep).parameters:
    raise ValueError(f'{path}: get_sweep() takes no argument, and {spec} gives one')
  sweep = module.get_sweep(arg) if arg else module.get_sweep()
  unknown = set(sweep) - KEYS
  if unknown or ('config' in sweep) == ('variants' in sweep):
    raise ValueError(f'{path}: get_sweep() must return config, args, axes, overrides, or '
                     f'variants, overrides (unknown: {", ".join(sorted(unknown)) or "none"})')
  plot = sweep.get('plot', 'top1')
  if plot not in PLOTS:
    raise ValueError(f'{path}: plot={plot!r}: choose {", ".join(PLOTS)}')
  shared = sweep.get('overrides', {})
  if 'variants' in sweep:
    runs = {}
    for name, value in sweep['variants'].items():
      config, overrides = (value, {}) if isinstance(value, str) else value
      runs[name] = (config, {**shared, **overrides})
  else:
    runs = {name: (sweep['config'] + (f':{args}' if args else ''), dict(shared))
            for name, args in _combinations(sweep)}
  title = sweep.get('title') or (module.__doc__ or '').strip().split('\n')[0]
  return {'title': title or os.path.basename(path), 'plot': plot, 'variants': runs}


def _combinations(sweep):
  """(name, config-string arguments) of every combination of the axes."""
  axes = sweep.get('axes', {})
  for values in itertools.product(*axes.values()):
    pairs = [f'{k}={v}' for k, v in zip(axes, values)]
    yield ','.join(pairs) or 'base', ','.join(filter(None, [sweep.get('args', ''), *pairs]))


def default_workdir(spec):
  """runs/sweeps/alexnet_lrn for sweeps/alexnet_lrn.py, runs/sweeps/zoo-folder_.._x for
  sweeps/zoo.py:folder:../x."""
  return os.path.join('runs', 'sweeps', runtime.run_name(spec))


def commands(sweep, workdir, extra=None):
  """{variant: (train command, eval command, its workdir)}; `extra` overrides win."""
  result = {}
  for name, (config, overrides) in sweep['variants'].items():
    run_dir = os.path.join(workdir, name)
    train = [sys.executable, os.path.join(ROOT, 'train.py'), f'--config={config}',
             f'--workdir={run_dir}',
             *(f'--config.{k}={v}' for k, v in {**overrides, **(extra or {})}.items())]
    evaluate = [sys.executable, os.path.join(ROOT, 'eval.py'), f'--workdir={run_dir}']
    result[name] = (train, evaluate, run_dir)
  return result


def visible_gpus():
  """The GPU indices this process may use: CUDA_VISIBLE_DEVICES, else those nvidia-smi lists."""
  if os.environ.get('CUDA_VISIBLE_DEVICES') is not None:
    return [g for g in os.environ['CUDA_VISIBLE_DEVICES'].split(',') if g.strip()]
  if not shutil.which('nvidia-smi'):
    return []
  try:
    listed = subprocess.run(['nvidia-smi', '--query-gpu=index', '--format=csv,noheader'],
                            capture_output=True, text=True, timeout=30, check=True).stdout
  except (OSError, subprocess.SubprocessError):
    return []
  return [line.strip() for line in listed.splitlines() if line.strip()]


def device_slots(jobs=None, per_variant=None):
  """One environment per variant that may run at once: its own GPUs, or (no GPUs) K CPU devices.

  Neither given: one slot and every device, as train.py alone would use them.
  """
  if jobs is None and per_variant is None:
    return [{}]
  gpus = visible_gpus()
  if gpus:
    per_variant = per_variant or max(len(gpus) // (jobs or 1), 1)
    jobs = jobs or max(len(gpus) // per_variant, 1)
    if jobs * per_variant > len(gpus):
      raise ValueError(f'--jobs={jobs} × --devices-per-variant={per_variant} needs '
                       f'{jobs * per_variant} GPUs; {len(gpus)} are visible ({",".join(gpus)})')
    return [{'CUDA_VISIBLE_DEVICES': ','.join(gpus[i * per_variant:(i + 1) * per_variant])}
            for i in range(jobs)]
  if not per_variant or per_variant == 1:
    return [{}] * (jobs or 1)
  flags = ' '.join(f for f in os.environ.get('XLA_FLAGS', '').split()
                   if not f.startswith('--xla_force_host_platform_device_count'))
  return [{'XLA_FLAGS': f'{flags} --xla_force_host_platform_device_count={per_variant}'.strip(),
           'JAX_PLATFORMS': 'cpu'}] * (jobs or 1)


def finished(run_dir):
  """A variant is done once its evaluation has been written (eval.py runs after training)."""
  return os.path.exists(os.path.join(run_dir, 'sweep.json'))


def run_variant(train, evaluate, run_dir, slot=None, log=None):
  """train.py then eval.py with the device `slot`'s variables added to our environment, their
  output to `log` (a path) if given."""
  env = {**os.environ, **(slot or {})}
  start = time.time()
  if log:
    os.makedirs(run_dir, exist_ok=True)
  with open(log, 'a') if log else contextlib.nullcontext() as out:
    streams = {'stdout': out, 'stderr': subprocess.STDOUT} if log else {}
    subprocess.run(train, check=True, cwd=ROOT, env=env, **streams)
    seconds = time.time() - start
    subprocess.run(evaluate, check=True, cwd=ROOT, env=env, **streams)
  with open(os.path.join(run_dir, 'sweep.json'), 'w') as f:  # the "finished" mark
    json.dump({'train_seconds': seconds, 'started': start, 'ended': time.time(),
               'devices': slot or {}}, f)


def _with_devices(slot, command):
  """The command line as a shell runs it in `slot`: 'CUDA_VISIBLE_DEVICES=0,1 python …'."""
  return ' '.join([*(f'{k}={shlex.quote(v)}' for k, v in slot.items()), shlex.join(command)])


def read_run(name, run_dir):
  """One summary row, from what train.py and eval.py wrote in `run_dir`."""
  from cnn_arch.summary import summarize
  from cnn_train import runs, sources
  config = runs.load_config(run_dir)
  info = sources.dataset_info(config)
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
  lrn = ''
  if any(layer['type'] == 'LRN' for layer in model['layers']):  # how much it normalised
    from cnn_train import lrn_spread
    _, variables, _ = runs.load_variables(run_dir)
    lrn = lrn_spread.summary(lrn_spread.of_config(config, LRN_PHOTOS, variables))
  return {
      'variant': name, 'params': model['params'], 'macs': model['macs'],
      'chance': 1 / info.num_classes,
      'epochs': round(lines[-1]['epoch'], 2) if lines else 0,
      'top1': result['top1'], 'top5': result['top5'], 'train_s': round(seconds),
      # The upper quartile of the logged speeds: the first interval holds the compilation, and
      # on a shared machine other work slows some intervals, never speeds one up.
      'images_per_s': round(_upper_quartile(speeds[1:] or speeds), 1), 'lrn': lrn,
      'curve': [(line['epoch'], line['val_top1']) for line in lines if 'val_top1' in line],
      'val_errors': [(line['step'], 1 - line['val_top1']) for line in lines
                     if 'val_top1' in line],
      'train_errors': [(line['step'], 1 - line['train_top1']) for line in lines
                       if 'train_top1' in line],
  }


def _upper_quartile(values):
  return statistics.quantiles(values, n=4)[2] if len(values) >= 4 else statistics.median(values)


def write_summary(rows, workdir, title, plot='top1'):
  columns = ('variant', 'params', 'macs', 'epochs', 'top1', 'top5', 'train_s', 'images_per_s',
             'lrn')
  with open(os.path.join(workdir, 'summary.csv'), 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(columns)
    writer.writerows([[row[c] for c in columns] for row in rows])
  lrn = any(r['lrn'] for r in rows)  # LRN's divisor p1/p50/p99 per layer, at the end
  lines = [f'# {title}', '',
           '| variant | params | MACs | epochs | top-1 | top-5 | train time | images/s |'
           + (' LRN divisor p1/p50/p99 |' if lrn else ''),
           '|---|---:|---:|---:|---:|---:|---:|---:|' + ('---|' if lrn else '')]
  for r in rows:
    lines.append(f'| {r["variant"]} | {r["params"]:,} | {r["macs"] / 1e6:,.1f} M | '
                 f'{r["epochs"]} | '
                 f'{r["top1"]:.4f} | {r["top5"]:.4f} | {r["train_s"]} s | '
                 f'{r["images_per_s"]} |' + (f' {r["lrn"] or "-"} |' if lrn else ''))
  with open(os.path.join(workdir, 'summary.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')

  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  panels = 2 if plot == 'zoo' else 1
  fig, axes = plt.subplots(1, panels, figsize=(7 * panels, 4.5), dpi=120, squeeze=False)
  (_plot_errors if plot == 'error' else _plot_top1)(axes[0, 0], rows)
  if plot == 'zoo':
    _plot_zoo(axes[0, 1], rows)
  fig.suptitle(textwrap.fill(title, 70 * panels), fontsize=10)  # long titles wrap, never clip
  for ax in axes.flat:
    ax.grid(alpha=0.3)
  # Many variants: the legend beside the curves, not over them.
  axes[0, 0].legend(fontsize=8 if len(rows) > 4 else 10,
                    **(dict(loc='upper left', bbox_to_anchor=(1.01, 1)) if len(rows) > 8 else {}))
  fig.tight_layout()
  fig.savefig(os.path.join(workdir, 'curves.png'))
  plt.close(fig)


def _plot_zoo(ax, rows):
  """The model-zoo chart: final top-1 against training speed, one labelled point per model."""
  import matplotlib.ticker
  for r, colour in zip(rows, _colours(rows)):
    ax.scatter(r['images_per_s'], 100 * r['top1'], color=colour, s=40)
    ax.annotate(r['variant'], (r['images_per_s'], 100 * r['top1']), fontsize=8,
                xytext=(4, 4), textcoords='offset points')
  ax.axhline(100 * rows[0]['chance'], color='grey', linestyle='--', linewidth=1)
  ax.annotate('chance', (0, 100 * rows[0]['chance']), xycoords=('axes fraction', 'data'),
              xytext=(4, 3), textcoords='offset points', fontsize=8, color='grey')
  ax.set_xscale('log')
  ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
  ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())  # 20, not 2×10¹
  ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
  ax.margins(x=0.15, y=0.1)  # room for the labels at the edges
  ax.set_xlabel('training images/s (log scale)')
  ax.set_ylabel('validation top-1 accuracy (%)')


def _colours(rows):
  """One colour per variant: matplotlib's ten, or its twenty for more variants (the zoo)."""
  import matplotlib
  palette = matplotlib.colormaps['tab10' if len(rows) <= 10 else 'tab20']
  return [palette(i % palette.N) for i in range(len(rows))]


def _plot_top1(ax, rows):
  for r, colour in zip(rows, _colours(rows)):
    epochs, top1 = zip(*r['curve']) if r['curve'] else ((), ())
    ax.plot(epochs, [100 * t for t in top1], marker='o', color=colour, label=f'{r["variant"]} '
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
  for r, colour in zip(rows, _colours(rows)):
    for points, width, label in ((r['train_errors'], 0.8, None),
                                 (r['val_errors'], 2.4, f'{r["variant"]} (final '
                                  f'{100 * (1 - r["top1"]):.1f} %)')):
      steps, errors = zip(*points) if points else ((), ())
      ax.plot(steps, [100 * e for e in errors], color=colour, linewidth=width, label=label)
  ax.set_xlabel('iterations')
  ax.set_ylabel('error (%): training thin, validation bold')


def config_overrides(extra):
  """['--config.max_steps=2', …] → {'max_steps': '2'}; anything else is a mistake."""
  result = {}
  for arg in extra:
    key, sep, value = arg.partition('=')
    if not key.startswith('--config.') or not sep:
      raise ValueError(f'unknown argument {arg}; config keys are given as --config.KEY=VALUE')
    result[key[len('--config.'):]] = value
  return result


def run_all(plan, slots):
  """Run the unfinished variants, len(slots) at once, each in its slot's environment; the
  variants that failed."""
  free = queue.Queue()
  for slot in slots:
    free.put(slot)
  parallel = len(slots) > 1

  def run(variant, train, evaluate, run_dir):
    slot = free.get()
    try:
      print(f'{variant}: {_with_devices(slot, train)}', flush=True)
      log = os.path.join(run_dir, 'sweep.log') if parallel else None
      try:
        run_variant(train, evaluate, run_dir, slot, log)
      except subprocess.CalledProcessError as e:
        last = open(log).read().strip().splitlines()[-1:] if log else []
        print(f'error: variant {variant} failed (exit code {e.returncode})'
              + (f': {last[0]} (all of it in {log})' if last else '')
              + '; rerun to resume it', file=sys.stderr, flush=True)
        return variant
      if parallel:
        print(f'{variant}: finished', flush=True)
    finally:
      free.put(slot)

  todo = []
  for variant, (train, evaluate, run_dir) in plan.items():
    if finished(run_dir):
      print(f'{variant}: finished, skipped', flush=True)
    else:
      todo.append((variant, train, evaluate, run_dir))
  if not parallel:  # one after another, stopping at the first failure
    for job in todo:
      if run(*job):
        return [job[0]]
    return []
  with concurrent.futures.ThreadPoolExecutor(len(slots)) as pool:
    return [v for v in pool.map(lambda job: run(*job), todo) if v]


def main(argv=None):
  parser = argparse.ArgumentParser(prog='python -m cnn_train.sweep', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('sweep', help='a sweep file and its argument: sweeps/alexnet_lrn.py[:ARG]')
  parser.add_argument('--workdir', help='default: runs/sweeps/<sweep file name>[-<ARG>]')
  parser.add_argument('--dry-run', action='store_true', help='print the commands, run nothing')
  parser.add_argument('--summary', action='store_true', help='only (re)write the summary')
  parser.add_argument('--jobs', type=int, help='variants run at once (default 1; with GPUs: '
                      'the GPUs ÷ --devices-per-variant)')
  parser.add_argument('--devices-per-variant', type=int, metavar='K',
                      help='GPUs of each variant (without GPUs: K forced CPU devices)')
  args, extra = parser.parse_known_args(argv)
  workdir = os.path.abspath(args.workdir or default_workdir(args.sweep))
  try:
    if any(n is not None and n < 1 for n in (args.jobs, args.devices_per_variant)):
      raise ValueError('--jobs and --devices-per-variant must be at least 1')
    sweep = load_sweep(args.sweep)
    plan = commands(sweep, workdir, config_overrides(extra))
    slots = device_slots(args.jobs, args.devices_per_variant)
  except (OSError, ValueError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  if args.dry_run:
    for i, (train, evaluate, _) in enumerate(plan.values()):
      print(_with_devices(slots[i % len(slots)], train))
      print(_with_devices(slots[i % len(slots)], evaluate))
    return 0
  if not args.summary and run_all(plan, slots):
    return 1
  done = [(variant, run_dir) for variant, (_, _, run_dir) in plan.items() if finished(run_dir)]
  if not done:
    print('error: no finished variant to summarise', file=sys.stderr)
    return 2
  rows = [read_run(variant, run_dir) for variant, run_dir in done]
  write_summary(rows, workdir, sweep['title'], sweep['plot'])
  print(open(os.path.join(workdir, 'summary.md')).read())
  print(f'wrote {workdir}/summary.md, summary.csv and curves.png')
  return 0


if __name__ == '__main__':
  sys.exit(main())
