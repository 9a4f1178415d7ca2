"""Top-5 classes of images: python predict.py --workdir=DIR [--checkpoint=latest|best|STEP]
IMAGE... — through the run's own evaluation transform (resize, central crop, normalisation)."""
import sys

from absl import app, flags, logging

from cnn_train import runtime

_WORKDIR = flags.DEFINE_string('workdir', None, 'a run directory (of train.py or weights.py)')
_CHECKPOINT = flags.DEFINE_string('checkpoint', 'latest', 'latest, best or a step number')
_TOP = flags.DEFINE_integer('top', 5, 'classes shown per image')


def main(argv):
  if len(argv) < 2:
    raise app.UsageError('give one or more image files: predict.py --workdir=DIR IMAGE...')
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.ERROR)
  from cnn_train import prediction
  try:
    step, results = prediction.predict(_WORKDIR.value, argv[1:], _CHECKPOINT.value, _TOP.value)
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  print(f'{_WORKDIR.value}, step {step}:')
  for path, top in results:
    print(path)
    for name, probability in top:
      print(f'  {probability:7.2%}  {name}')


if __name__ == '__main__':
  runtime.prepare_process()
  flags.mark_flag_as_required('workdir')
  app.run(main)
