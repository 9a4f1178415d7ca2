"""How much each LRN layer normalises: the p1 / p50 / p99 / max of its divisor (k + α Σ a²)^β over
every unit of a batch of evaluation photos, for a trained run or a fresh initialisation.

    python lrn.py --workdir=DIR [--checkpoint=latest|best|STEP] [--images=32]
    python lrn.py --config=configs/alexnet.py:dataset=folder:PATH [--config.image_size=112]

A divisor that is k^β (2^0.75 = 1.68 for AlexNet) at every percentile means LRN only divides by a
constant: the input is too small for it to normalise anything (issue 27).
"""
import sys

from absl import app, flags, logging

import train  # its --config and --workdir, and its one-line config errors
from cnn_train import runtime

_CHECKPOINT = flags.DEFINE_string('checkpoint', 'latest', 'with --workdir: latest, best or a step')
_IMAGES = flags.DEFINE_integer('images', 32, 'how many evaluation photos')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.ERROR)
  workdir, config = train._WORKDIR.value, train._CONFIG.value
  if bool(workdir) == bool(config):
    train.fail('give one of --workdir=DIR (a run) and --config=FILE (a fresh initialisation)')
  from cnn_train import lrn_spread, runs
  try:
    if workdir:
      config, variables, step = runs.load_variables(workdir, _CHECKPOINT.value)
      what = f'{workdir}, step {step}'
    else:
      variables, what = None, f'{flags.FLAGS["config"].config_filename}, fresh initialisation'
    spread = lrn_spread.of_config(config, _IMAGES.value, variables)
  except ValueError as e:
    train.fail(e)
  from cnn_train import augment
  print(f'{config.model.name} ({what}): LRN divisors on {_IMAGES.value} photos of '
        f'{config.dataset} {config.eval_split}; input {augment.describe_input(config)}')
  print('\n'.join(lrn_spread.table(spread)))


if __name__ == '__main__':
  runtime.prepare_process()
  app.run(main, flags_parser=train.parse_flags)
