"""AlexNet with and without LRN (Fashion-MNIST at 67×67, CPU-sized)

The VGG paper's claim (Sec. 4.1): local response normalisation does not improve accuracy. On a
CPU, AlexNet runs at 67×67 (its layers shrink to 15/7/3/1 maps, fc6 sees 256 inputs) on
Fashion-MNIST upsampled; on a GPU drop the overrides and use `args='dataset=imagenette'`.
"""


def get_sweep():
  return {
      'config': 'configs/alexnet.py',
      'args': 'dataset=fashion_mnist',
      'axes': {'lrn': [True, False]},
      'overrides': {'image_size': 67, 'augment.crop': 'none', 'augment.pca_lighting': 0.0,
                    'batch_size': 64, 'max_steps': 300, 'eval_every_epochs': 0.1,
                    # lr 0.01 with the paper's init overshoots on 10 classes (each logit gets
                    # ~100× the gradient it gets among 1000) and the net dies; 0.001 trains.
                    'lr': 0.001},
  }
