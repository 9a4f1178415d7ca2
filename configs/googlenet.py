"""GoogLeNet (Sec. 6 of the paper): SGD momentum 0.9, learning rate × 0.96 every 8 epochs,
crops of 8-100 % of the area with aspect 3/4-4/3, photometric distortions, mirrors; each
auxiliary loss weighted 0.3 in training. The paper gives no base lr or epoch count: we use
bvlc_googlenet's 0.01 and batch 128 (its 32 × 4 GPUs), and its input: 0-255 pixels minus the
per-channel mean.

    python train.py --config=configs/googlenet.py:aux=False
"""
from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, aux=True, dataset='imagenet2012')
  c = common.set_dataset(common.base(), arg.dataset, image_size=224)
  c.model.name = 'googlenet'
  c.model.overrides = {'aux': arg.aux}
  c.aux_loss_weight = 0.3 if arg.aux else 0.0
  c.augment.update(crop='inception', resize=256, flip=True, color_jitter=0.5)
  c.batch_size = 128
  c.num_epochs = 90
  c.lr = 0.01
  c.optimizer.weight_decay = 2e-4
  c.schedule.update(name='step', factor=0.96, decay_epochs=tuple(range(8, 90, 8)))
  return c
