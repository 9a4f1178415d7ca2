"""Published weights → a run directory: python weights.py FILE --from=torchvision|timm
--model=NAME --workdir=DIR [--dataset=imagenet2012|folder:PATH] [--data_dir=DIR]

FILE is a torchvision or timm checkpoint (`.pth`/`.bin`, read with torch's weights_only=True;
needs torch) or a `.safetensors`/`.npz` of the same names (no torch). DIR gets `config.json` (the
model's config with the evaluation transform the weights were published with) and a step-0
checkpoint, so that

    python eval.py --workdir=DIR                                  # the published accuracy
    python predict.py --workdir=DIR photo.jpg                     # top-5 classes
    python train.py --config=configs/resnet.py:50,v1_5=True,dataset=folder:PHOTOS \\
        --config.init_from=DIR                                    # fine-tuning

timm's NAME may carry its pretrained tag (inception_v4.tf_in1k); the tag sets the evaluation
transform (TIMM_EVAL), as does timm's config.json where it lies beside FILE (the Hugging Face
download).
"""
import argparse
import importlib
import json
import math
import os
import sys

import cnn_arch
from cnn_arch import timm_weights, torchvision_weights

IMAGENET = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # mean, std on the [0, 1] scale
# torchvision's evaluation transform: the shorter side resized (bilinear), the central crop.
TORCHVISION_EVAL = {'inception_v3': (342, 299)}  # others: 256 → 224
# timm's evaluation transforms (pretrained_cfg of each default tag; tests/test_timm.py compares
# them with timm's): (tag, image size, crop_pct, interpolation, mean, std). The shorter side is
# resized to floor(size / crop_pct), then the central crop; the size is timm's test size where
# its config has one, as timm's validate.py evaluates.
TIMM_EVAL = {
    'inception_v4': ('tf_in1k', 299, 0.875, 'bicubic', (0.5,) * 3, (0.5,) * 3),
    'inception_resnet_v2': ('tf_in1k', 299, 0.8975, 'bicubic', (0.5,) * 3, (0.5,) * 3),
    # torchvision's weights, which take [-1, 1] (timm's Inception-v3 has no transform_input)
    'inception_v3': ('tv_in1k', 299, 0.875, 'bicubic', (0.5,) * 3, (0.5,) * 3),
    **{f'resnet{depth}': ('a1h_in1k' if depth > 50 else 'a1_in1k', 288, 1.0, 'bicubic', *IMAGENET)
       for depth in (18, 34, 50, 101, 152)},
}
READERS = {'torchvision': (torchvision_weights.NETWORKS, cnn_arch.from_torchvision),
           'timm': (timm_weights.NETWORKS, cnn_arch.from_timm)}


def config_of(ours, model, dataset, data_dir=None):
  """The project's config of our network `ours` as `model` (a module of the zoo) is built."""
  if ours.startswith('vgg'):
    family, arg = 'vgg', ours.removeprefix('vgg_').upper() + (
        ',batch_norm=True' if model.batch_norm else '')
  elif ours.startswith('resnet'):
    family, arg = 'resnet', ours.removeprefix('resnet') + (
        ',v1_5=True' if getattr(model, 'stride_in_3x3', False) else '')
  else:
    family, arg = 'inception', ours.removeprefix('inception_') + (
        ',aux=False' if ours == 'inception_v3' and not model.aux else '')
  config = importlib.import_module(f'configs.{family}').get_config(f'{arg},dataset={dataset}')
  if data_dir:
    config.data_dir = data_dir
  return config


def set_eval_transform(config, size, resize, interpolation, mean, std):
  """The weights' own input, whatever the dataset: (p / 255 - mean) / std with `mean` and `std`
  on the [0, 1] scale, after resizing the shorter side to `resize` and cropping size × size."""
  config.image_size, config.augment.resize, config.augment.interpolation = size, resize, interpolation
  config.input.update(transform='symmetric' if set(mean) | set(std) == {0.5} else 'standardize',
                      mean=tuple(255 * m for m in mean), std=tuple(255 * s for s in std))


def timm_transform(name, file):
  """(size, resize, interpolation, mean, std) of timm's `name` (NAME or NAME.TAG): from timm's
  config.json beside `file` where there is one, else from TIMM_EVAL."""
  network, _, tag = name.partition('.')
  beside = os.path.join(os.path.dirname(os.path.abspath(file)), 'config.json')
  cfg = {}
  if os.path.isfile(beside):
    with open(beside) as f:
      cfg = json.load(f).get('pretrained_cfg', {})
  if cfg:
    size = cfg.get('test_input_size', cfg.get('input_size'))[-1]
    crop_pct = cfg.get('test_crop_pct', cfg.get('crop_pct'))
    return (size, math.floor(size / crop_pct), cfg['interpolation'], tuple(cfg['mean']),
            tuple(cfg['std']))
  default_tag, size, crop_pct, interpolation, mean, std = TIMM_EVAL[network]
  if tag and tag != default_tag:
    raise ValueError(f'--model={name}: the evaluation transform of the tag {tag} is not known '
                     f'here; put timm\'s config.json beside {file}, or use {network}.{default_tag}')
  return size, math.floor(size / crop_pct), interpolation, mean, std


def convert(file, source, name, workdir, dataset='imagenet2012', data_dir=None):
  """FILE's weights as the run directory `workdir`: its config, written; a ValueError names what
  does not fit."""
  networks, reader = READERS[source]
  network = name.partition('.')[0] if source == 'timm' else name
  if network not in networks:
    raise ValueError(f'--model={name}: {source}\'s networks here are {", ".join(networks)}')
  state_dict = torchvision_weights.read_state_dict(file)
  # torchvision's Inception-v3 weights take ImageNet-normalised images (transform_input)
  options = {'transform_input': True} if (source, name) == ('torchvision', 'inception_v3') else {}
  model, variables = reader(network, state_dict, **options)
  config = config_of(networks[network][0], model, dataset, data_dir)
  if source == 'timm':
    set_eval_transform(config, *timm_transform(name, file))
  else:
    resize, size = TORCHVISION_EVAL.get(name, (256, 224))
    set_eval_transform(config, size, resize, 'bilinear', *IMAGENET)
  from cnn_train import pretrained  # after the checks: an error above stays fast
  pretrained.write_run(workdir, config, variables, model.num_classes, source={
      'from': source, 'model': name, 'file': os.path.abspath(file)})
  return config, model.num_classes


def main(argv=None):
  parser = argparse.ArgumentParser(prog='python weights.py', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('file', help='the weights: .pth, .bin, .safetensors or .npz')
  parser.add_argument('--from', dest='source', required=True, choices=list(READERS),
                      help='whose names and layouts the file has')
  parser.add_argument('--model', required=True, help=(
      f'torchvision\'s name ({", ".join(torchvision_weights.NETWORKS)}) or timm\'s '
      f'({", ".join(timm_weights.NETWORKS)}, optionally .TAG)'))
  parser.add_argument('--workdir', required=True, help='the run directory to write')
  parser.add_argument('--dataset', default='imagenet2012',
                      help='what eval.py evaluates on: imagenet2012 (default) or folder:PATH')
  parser.add_argument('--data_dir', help='TFDS data directory')
  args = parser.parse_args(argv)
  try:
    config, num_classes = convert(args.file, args.source, args.model, args.workdir, args.dataset,
                                  args.data_dir)
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(f'{args.workdir}: {config.model.name} from {args.file} ({num_classes} classes); '
        f'evaluate with: python eval.py --workdir={args.workdir}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
