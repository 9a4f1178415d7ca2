"""Time the training step of a model, or its input pipeline alone.

    python bench.py --model=alexnet --batch=32                 # the train step, all devices
    python bench.py --model=resnet50 --batch=256 --dtype=bfloat16 --json
    python bench.py --model=alexnet --batch=128 --input=folder:data/imagenette2-224

The model's training config (its family's file in configs/, at the model's variant) gives the
step: optimizer, weight decay, loss, the float augmentation on the device. The step runs on a
synthetic uint8 batch already on the devices: compile time, ms per step, images/s, model FLOP/s
(6 × MACs per image), MFU where the device's peak is known, memory. `--input` times the input
pipeline with the model's training augmentation instead: images/s, the cores it kept busy and
images/s per busy core.
"""
import argparse
import importlib
import json
import sys

from cnn_train import runtime

# name prefix -> (config module, its variant argument)
FAMILIES = (('vgg_', 'vgg', lambda n: n[4:].upper().replace('_', '-')),  # vgg_a_lrn: A-LRN
            ('resnet', 'resnet', lambda n: n[6:]),
            ('inception_', 'inception', lambda n: n[10:]))


def model_config(name, arg=None):
  """The training config of model `name`: its family's config file at that variant, plus the
  config-string arguments `arg` ('towers=2')."""
  import cnn_arch
  name = cnn_arch.ALIASES.get(name, name)
  cnn_arch.input_shape(name)  # an unknown name: the registry's error
  module, variant = name, None
  for prefix, family, variant_of in FAMILIES:
    if name.startswith(prefix):
      module, variant = family, variant_of(name)
  arg = ','.join(a for a in (variant, arg) if a) or None
  config = importlib.import_module(f'configs.{module}').get_config(arg)
  assert config.model.name == name, (config.model.name, name)
  return config


def main(argv=None):
  parser = argparse.ArgumentParser(prog='python bench.py', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--model', required=True, help='a model name (cnn_arch.list_models())')
  parser.add_argument('--batch', type=int, required=True, help='global batch size')
  parser.add_argument('--steps', type=int, default=10, help='timed steps (after 2 warm-up)')
  parser.add_argument('--dtype', default='float32', choices=('float32', 'bfloat16'))
  parser.add_argument('--image-size', type=int, help="default: the model's config")
  parser.add_argument('--config-arg', metavar='ARGS',
                      help="config-string arguments of the model's config: towers=2, lrn=False")
  parser.add_argument('--input', metavar='DATASET', help='time the input pipeline on DATASET')
  parser.add_argument('--json', action='store_true', help='one JSON object, nothing else')
  args = parser.parse_args(argv)
  from cnn_train import bench
  from configs import common
  try:
    config = model_config(args.model, args.config_arg)
    config.update(batch_size=args.batch, dtype=args.dtype,
                  image_size=args.image_size or config.image_size)
    if args.input:
      common.set_dataset(config, args.input, image_size=config.image_size)  # the model's size
      result = bench.input_pipeline(config, args.steps)
    else:
      result = bench.train_step(config, args.steps)
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  if args.json:
    print(json.dumps(result))
  else:
    for key, value in result.items():
      shown = f'{value / 1e9:,.1f} GFLOP/s' if key == 'model_flops_per_s' else value
      print(f'{key:>24}  {shown}')
  return 0


if __name__ == '__main__':
  runtime.prepare_process()
  sys.exit(main())
