"""Published weights → a run directory: python -m cnn_arch.weights FILE --from=torchvision
--model=NAME --workdir=DIR [--dataset=imagenet2012|folder:PATH] [--data_dir=DIR]

FILE is a torchvision checkpoint (`.pth`, read with torch's weights_only=True; needs torch) or a
`.safetensors`/`.npz` of the same names (no torch). DIR gets `config.json` (the model's config
with the evaluation transform the weights were trained with) and a step-0 checkpoint, so that

    python eval.py --workdir=DIR                                  # the published accuracy
    python predict.py --workdir=DIR photo.jpg                     # top-5 classes
    python train.py --config=configs/resnet.py:50,v1_5=True,dataset=folder:PHOTOS \\
        --config.init_from=DIR                                    # fine-tuning

An entry point like train.py: it reads the project's configs/ and writes through cnn_train.
"""
import argparse
import importlib
import os
import sys

from cnn_arch import torchvision_weights

# torchvision's evaluation transform: the shorter side resized (bilinear), the central crop.
EVAL_SIZES = {'inception_v3': (342, 299)}  # others: 256 → 224
TORCHVISION_INPUT = (tuple(255 * m for m in (0.485, 0.456, 0.406)),
                     tuple(255 * s for s in (0.229, 0.224, 0.225)))


def config_of(name, options, dataset, data_dir=None):
  """Our config of torchvision's `name` (built with `options`), with its evaluation transform."""
  ours = torchvision_weights.NETWORKS[name][0]
  if ours.startswith('vgg'):
    family, arg = 'vgg', ours.removeprefix('vgg_').upper() + (
        ',batch_norm=True' if options.get('batch_norm') else '')
  elif ours.startswith('resnet'):
    family, arg = 'resnet', ours.removeprefix('resnet') + (
        ',v1_5=True' if options.get('stride_in_3x3') else '')
  else:
    family, arg = 'inception', 'v3' + ('' if options.get('aux', True) else ',aux=False')
  config = importlib.import_module(f'configs.{family}').get_config(f'{arg},dataset={dataset}')
  config.augment.resize, config.image_size = EVAL_SIZES.get(name, (256, 224))
  # torchvision's weights take (p / 255 - mean) / std with ImageNet's mean and std, whatever the
  # dataset (TORCHVISION_INPUT: in pixel units).
  config.input.update(transform='standardize', mean=TORCHVISION_INPUT[0],
                      std=TORCHVISION_INPUT[1])
  if data_dir:
    config.data_dir = data_dir
  return config


def main(argv=None):
  parser = argparse.ArgumentParser(prog='python -m cnn_arch.weights', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('file', help='the weights: .pth, .safetensors or .npz')
  parser.add_argument('--from', dest='source', required=True, choices=['torchvision'],
                      help='whose names and layouts the file has')
  parser.add_argument('--model', required=True,
                      help=f'torchvision\'s name: {", ".join(torchvision_weights.NETWORKS)}')
  parser.add_argument('--workdir', required=True, help='the run directory to write')
  parser.add_argument('--dataset', default='imagenet2012',
                      help='what eval.py evaluates on: imagenet2012 (default) or folder:PATH')
  parser.add_argument('--data_dir', help='TFDS data directory')
  args = parser.parse_args(argv)
  if not os.path.isdir('configs'):
    print('error: run python -m cnn_arch.weights from the project\'s folder (it reads configs/)',
          file=sys.stderr)
    return 2
  try:
    state_dict = torchvision_weights.read_state_dict(args.file)
    transform_input = args.model == 'inception_v3'  # as torchvision's weights are used
    model, variables = torchvision_weights.from_torchvision(args.model, state_dict,
                                                            transform_input=transform_input)
    options = {'batch_norm': getattr(model, 'batch_norm', False),
               'stride_in_3x3': getattr(model, 'stride_in_3x3', False),
               'aux': getattr(model, 'aux', True)}
    config = config_of(args.model, options, args.dataset, args.data_dir)
    from cnn_train import pretrained  # after the checks: an error above stays fast
    pretrained.write_run(args.workdir, config, variables, model.num_classes, source={
        'from': args.source, 'model': args.model, 'file': os.path.abspath(args.file)})
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(f'{args.workdir}: {config.model.name} from {args.file} ({model.num_classes} classes); '
        f'evaluate with: python eval.py --workdir={args.workdir}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
