"""Evaluate a training run: python eval.py --workdir=DIR [--checkpoint=latest|best|STEP]
[--crops=1|10] [--split=SPLIT]. Prints the result and writes DIR/eval/<step>-<crops>crop-<split>.json.
"""
import sys

from absl import app, flags, logging

from cnn_train import runtime

_WORKDIR = flags.DEFINE_string('workdir', None, 'the run directory of train.py')
_CHECKPOINT = flags.DEFINE_string('checkpoint', 'latest', 'latest, best or a step number')
_CROPS = flags.DEFINE_enum('crops', '1', ['1', '10'], '1: central crop; 10: AlexNet\'s test')
_SPLIT = flags.DEFINE_string('split', None, 'the split (default: the run\'s eval_split)')
initialize_distributed = runtime.define_distributed_flags()
flags.adopt_module_key_flags(runtime)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.ERROR)  # orbax warns that a read-only manager is read-only
  initialize_distributed()
  import jax

  from cnn_train import evaluation
  try:
    r = evaluation.evaluate_checkpoint(_WORKDIR.value, _CHECKPOINT.value, int(_CROPS.value),
                                       _SPLIT.value)
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  if jax.process_index() > 0:
    return
  print(f'{"step":>8} {"split":>12} {"crops":>5} {"examples":>8} {"top-1":>7} {"top-5":>7} '
        f'{"loss":>7} {"images/s":>8}')
  print(f'{r["step"]:>8} {r["split"]:>12} {r["crops"]:>5} {r["examples"]:>8} {r["top1"]:>7.4f} '
        f'{r["top5"]:>7.4f} {r["loss"]:>7.4f} {r["images_per_s"]:>8.1f}')


if __name__ == '__main__':
  runtime.prepare_process()
  flags.mark_flag_as_required('workdir')
  app.run(main)
