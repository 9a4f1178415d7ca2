"""ResNet (Sec. 3.4 of the paper): batch 256, SGD momentum 0.9, weight decay 1e-4, lr 0.1 divided
by 10 when the error plateaus, ~120 epochs (60·10⁴ iterations), crops with mirrors and AlexNet's
colour augmentation. The input (Sec. 3.4): a crop "with the per-pixel mean subtracted" (per
channel here; Sec. 4.2 the same on CIFAR-10).

    python train.py --config=configs/resnet.py:50
    python train.py --config=configs/resnet.py:18,plain=True    # no shortcuts (Sec. 4.1)
    python train.py --config=configs/resnet.py:56               # CIFAR-10's ResNet-56 (Sec. 4.2)
"""
from configs import common

CIFAR = (20, 32, 44, 56, 110, 1202)


def get_config(arg=None):
  arg = common.parse_arg(arg, variant='50', plain=False, v1_5=False, dataset='')
  if int(arg.variant) in CIFAR:
    return cifar_config(arg)
  if int(arg.variant) not in (18, 34, 50, 101, 152):
    raise ValueError(f'configs/resnet.py:{arg.variant}: choose 18, 34, 50, 101 or 152 '
                     f'(ImageNet), or {", ".join(map(str, CIFAR))} (CIFAR-10)')
  c = common.set_dataset(common.base(), arg.dataset or 'imagenet2012', image_size=224)
  c.model.name = f'resnet{arg.variant}'
  c.model.overrides = {'residual': not arg.plain}
  if arg.v1_5:
    c.model.overrides.stride_in_3x3 = True
  c.augment.update(crop='inception', resize=256, flip=True, pca_lighting=0.1)
  c.batch_size = 256
  c.num_epochs = 120
  c.lr = 0.1
  c.optimizer.weight_decay = 1e-4
  c.schedule.update(name='plateau', factor=0.1, patience=5, max_reductions=3)
  return c


def cifar_config(arg):
  """Sec. 4.2: batch 128, lr 0.1 (ResNet-110: 0.01 for the first 400 iterations), momentum 0.9,
  weight decay 1e-4, ÷10 at 32k and 48k iterations, 64k in all; 4 pixels of zeros around the
  32×32 image, a random 32×32 crop of it, mirrors."""
  if arg.v1_5:
    raise ValueError(f'configs/resnet.py:{arg.variant}: v1_5 is for the bottleneck ResNets')
  c = common.set_dataset(common.base(), arg.dataset or 'cifar10', image_size=32)
  c.model.name = f'resnet{arg.variant}'
  c.model.overrides = {'residual': not arg.plain}
  c.augment.update(crop='pad', pad=4, resize=0, flip=True, pca_lighting=0.0)
  c.batch_size = 128
  c.max_steps = 64_000
  c.lr = 0.1
  c.optimizer.weight_decay = 1e-4
  c.schedule.update(name='step', factor=0.1, decay_steps=(32_000, 48_000))
  if int(arg.variant) == 110:
    c.schedule.update(warmup_steps=400, warmup_factor=0.1)
  return c
