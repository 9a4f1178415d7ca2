"""Train a model of the zoo: python train.py --config=configs/alexnet.py[:ARGS] [--workdir=DIR].

Without --workdir the run goes to runs/<config name>[-<args>]; rerunning with the same workdir
resumes from its latest checkpoint. Any config key can be overridden: --config.batch_size=256.

Several processes (hosts) train one model together when started with --coordinator_address,
--num_processes and --process_id (or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID),
or by SLURM's srun; see docs/training.md.

Exit codes: 0 trained to the end; 2 a config, data or workdir problem (one line; nothing
compiled, no checkpoint touched); 3 the loss became NaN/Inf (the last good checkpoint is kept);
143 / 130 stopped by SIGTERM / Ctrl-C after writing a checkpoint of the current step (the same
command resumes); 1 anything else.
"""
import os
import re
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from cnn_train import runtime

_CONFIG = config_flags.DEFINE_config_file('config', None, 'configs/<family>.py[:args]',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'run directory (default: runs/<config>)')
initialize_distributed = runtime.define_distributed_flags()
flags.adopt_module_key_flags(runtime)


def parse_flags(argv):
  """absl's parsing, with config mistakes reported in one line instead of a stack trace."""
  try:
    argv = flags.FLAGS(argv)
  except (KeyError, AttributeError) as e:  # ml_collections: --config.KEY for a missing KEY
    key = str(e).strip('"\'')
    bad = [a for a in argv if a.startswith('--config.') and key in a.split('=')[0]]
    fail(f'unknown config key {key!r} in {" ".join(bad) or "the command line"} '
         '(the keys are listed in configs/common.py)')
  except flags.Error as e:  # a bad value, or an error raised by the config file itself
    fail(re.sub(r'^\w+Error: ', '', str(e).strip().splitlines()[-1].strip()))
  # ml_collections defers a missing file's error to the first use of the config.
  config = flags.FLAGS['config']  # lrn.py takes --workdir alone
  path = (config.config_filename or '' if config.present else '').partition(':')[0]
  if path and not os.path.isfile(path):
    configs = sorted(f for f in os.listdir('configs') if f.endswith('.py') and f != 'common.py'
                     ) if os.path.isdir('configs') else []
    fail(f'--config={path}: no such file' +
         (f'; the configs are configs/{{{",".join(c[:-3] for c in configs)}}}.py'
          if configs else ''))
  return argv


def fail(message):
  print(f'error: {message}', file=sys.stderr)
  sys.exit(2)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  if not flags.FLAGS['verbosity'].present:  # orbax and TFDS log every step at INFO; -v 0 shows it
    logging.set_verbosity(logging.WARNING)
  initialize_distributed()  # a multi-process run: before JAX touches a device
  from cnn_train import trainer  # after flag parsing: --help stays fast
  workdir = _WORKDIR.value or os.path.join(
      'runs', runtime.run_name(flags.FLAGS['config'].config_filename))
  try:
    trainer.train_and_evaluate(_CONFIG.value, workdir)
  except ValueError as e:  # a configuration or data problem: one line, no stack trace
    fail(e)
  except trainer.Stopped as e:
    print(e, file=sys.stderr, flush=True)
    sys.exit(e.exit_code)


if __name__ == '__main__':
  runtime.prepare_process()
  flags.mark_flag_as_required('config')
  app.run(main, flags_parser=parse_flags)
