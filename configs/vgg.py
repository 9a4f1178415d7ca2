"""VGG (Sec. 3.1 of the paper): batch 256, momentum 0.9, weight decay 5e-4, lr 0.01 divided by 10
when the validation accuracy stops improving (3 times), 74 epochs; 224 crops of the image
rescaled to S = 256, mirrors, RGB colour shift. The input (Sec. 2.1): "The only pre-processing
we do is subtracting the mean RGB value, computed on the training set, from each pixel."

    python train.py --config=configs/vgg.py:A-LRN
    python train.py --config=configs/vgg.py:D,batch_norm=True,dataset=imagenette
"""
from configs import common

# The columns of the paper's Table 1, and B with a 5×5 conv for each pair of 3×3 (Sec. 4.1).
VARIANTS = ('A', 'A-LRN', 'B', 'C', 'D', 'E', 'B-5x5')


def get_config(arg=None):
  arg = common.parse_arg(arg, variant='D', batch_norm=False, dataset='imagenet2012')
  if arg.variant.upper() not in (v.upper() for v in VARIANTS):
    raise ValueError(f'configs/vgg.py:{arg.variant}: choose {", ".join(VARIANTS)}')
  c = common.set_dataset(common.base(), arg.dataset, image_size=224)
  c.model.name = 'vgg_' + arg.variant.lower().replace('-', '_')
  c.model.overrides = {'batch_norm': arg.batch_norm}
  c.augment.update(crop='alexnet', resize=256, flip=True, pca_lighting=0.1)
  c.batch_size = 256
  c.num_epochs = 74
  c.lr = 0.01
  c.schedule.update(name='plateau', factor=0.1, patience=3, max_reductions=3)
  return c
