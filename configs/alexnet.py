"""AlexNet with the paper's recipe (Sec. 4-5): batch 128, SGD momentum 0.9, weight decay 5e-4,
lr 0.01 divided by 10 when the validation error stops improving (3 times), ~90 epochs; random
227 crops of the 256-resized image, mirrors, PCA colour noise (std 0.1). The input (Sec. 2): "We
did not pre-process the images in any other way, except for subtracting the mean activity over
the training set from each pixel. So we trained our network on the (centered) raw RGB values of
the pixels" (per channel here): on it the paper's N(0, 0.01) init learns and LRN normalises.

    python train.py --config=configs/alexnet.py:lrn=False,groups=2,dataset=imagenette
    python train.py --config=configs/alexnet.py:towers=2    # the two towers on two devices

`towers=2` is the paper's two-GPU layout: groups=2, and each tower's kernels and activations on
its own device of a pair (the mesh's 'model' axis); with 4 devices, two such pairs split the batch.

`positive_bias=0.1` starts the biases the paper sets to 1 (conv2, conv4, conv5, FC6, FC7) at
Caffe's 0.1 instead (bvlc_alexnet: "initialization to 1 resulted in flat training loss",
BVLC/caffe#327); the two towers on 10 classes need it (docs/sweeps.md).

`initializer=he` swaps the paper's N(0, 0.01) for He's init, and the input for the unit-variance
one it is derived for (on raw pixels its logits are 58 times larger: a first loss in the hundreds).
"""
from configs import common


def get_config(arg=None):
  arg = common.parse_arg(arg, lrn=True, groups=1, towers=1, initializer='paper',
                         positive_bias=1.0, dataset='imagenet2012')
  if arg.towers not in (1, 2):
    raise ValueError(f'configs/alexnet.py: towers={arg.towers}; 1 (one device per model) or 2')
  if arg.towers == 2:
    arg.groups = 2  # two towers on two devices are the two groups
  c = common.set_dataset(common.base(), arg.dataset, image_size=227)
  c.model.name = 'alexnet'
  c.model.overrides = {'lrn': arg.lrn, 'groups': arg.groups, 'initializer': arg.initializer,
                       'positive_bias': arg.positive_bias}
  c.model_axis = arg.towers
  if arg.initializer == 'he':  # He et al. derive it for inputs of unit variance
    c.input.transform = 'standardize'
  c.augment.update(crop='alexnet', resize=256, flip=True, pca_lighting=0.1)
  c.batch_size = 128
  c.num_epochs = 90
  c.lr = 0.01
  c.optimizer.weight_decay = 5e-4
  c.schedule.update(name='plateau', factor=0.1, patience=5, max_reductions=3)
  return c
