"""Why the BatchNorm networks' input scale is moot (issue 27): their first convolution has no bias
and BatchNorm follows it, so multiplying the input by a number s (and, before a VALID first
convolution, adding a constant per channel) changes neither the loss nor any gradient.

BatchNorm(conv(W, s·x)) = BatchNorm(conv(s·W, x)) = BatchNorm(conv(W, x)); and the gradient with
respect to W of a function invariant to W's scale, taken at s·W, is 1/s times the one at W, which
cancels the s of the chain rule. So SGD (weight decay included) takes the same steps, and the
running statistics differ by s and s², which evaluation divides out. What is left between the
papers' inputs and the unit-variance one is the per-channel part of
1 / std: ImageNet's stds 0.229 / 0.224 / 0.225 are within ±1.1 % of their mean, so the first
kernels' input channels start up to 2.2 % apart — another draw of the same init.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnn_train import augment, train_state
from cnn_train.steps import cross_entropy
from configs import alexnet, inception, resnet

# The recipe's config, and where the first convolution is VALID (then a shift per channel is
# moot too). The Inception nets are cut after their first conv → BatchNorm → ReLU: everything
# after it sees the same input if that layer's output is the same, and 4 images on the 1×1 to
# 4×4 maps deep in the whole nets would magnify BatchNorm's epsilon (the only difference, a
# 1e-3 change with v3's and v4's 1e-3) to percents, as they would any change of 1e-3.
NETWORKS = {
    'resnet18': (lambda: resnet.get_config('18,dataset=imagenette'), False),
    'inception_bn': (lambda: inception.get_config('bn,dataset=imagenette'), False),
    'inception_v3': (lambda: inception.get_config('v3,aux=False,dataset=imagenette'), True),
    'inception_v4': (lambda: inception.get_config('v4,dataset=imagenette'), True),
}


def create_model(config):
  model = train_state.create_model(config, num_classes=10)
  if config.model.name.startswith('inception'):
    model = model.clone(layers=model.layers[:1], dropout_rate=0.0)
  return model


def loss_and_grads(model, variables, images, labels):
  def loss(params):
    logits, _ = model.apply({**variables, 'params': params}, images, train=True,
                            rngs={'dropout': jax.random.key(2)},  # one mask for both inputs
                            mutable=['batch_stats'])
    return cross_entropy(logits, labels).mean()
  return jax.jit(jax.value_and_grad(loss))(variables['params'])


def relative_errors(grads, grads_other):
  """|g' − g| / |g| for each parameter, by its path."""
  errors = jax.tree.map(lambda g, h: float(jnp.linalg.norm(h - g) / (jnp.linalg.norm(g) + 1e-12)),
                        grads, grads_other)
  return {jax.tree_util.keystr(path): e for path, e in jax.tree_util.tree_leaves_with_path(errors)}


@pytest.mark.parametrize('name', NETWORKS)
def test_a_common_scale_of_the_input_changes_no_loss_and_no_gradient(name):
  make_config, valid_stem = NETWORKS[name]
  config = make_config()
  model = create_model(config)
  pixels = jax.random.randint(jax.random.key(0), (4, 75, 75, 3), 0, 256).astype(jnp.float32)
  labels = jnp.arange(4) % 10
  mean, std = augment.input_stats(config)  # the paper's input: minus_mean or symmetric
  paper = augment.normalize(pixels, mean, std)
  # The unit-variance input's overall scale (1 / 57.4 for ImageNet's stds), and its shift where
  # the first convolution is VALID (ImageNet's mean instead of 127.5 for v3 and v4).
  scale = float(np.mean(std) / (255 * np.mean(augment.stats('imagenette')[1])))
  shift = (jnp.asarray([0.1, -0.2, 0.3]) if valid_stem else 0.0)
  variables = model.init(jax.random.key(1), paper[:1])
  loss, grads = loss_and_grads(model, variables, paper, labels)
  loss_scaled, grads_scaled = loss_and_grads(model, variables, paper * scale + shift, labels)
  assert abs(float(loss_scaled - loss)) < 1e-4 * float(loss), (loss, loss_scaled)
  # Every parameter's gradient. BatchNorm's epsilon is the only difference: against the first
  # layer's variance (about 0.4 on [-1, 1] pixels) v3's and v4's 1e-3 moves the first kernel's
  # gradient by 0.5 %; 1e-5 (ResNet, Inception-BN) by less than 0.2 %.
  tolerance = 1e-2 if getattr(model, 'bn_epsilon', 1e-5) > 1e-5 else 2e-3
  worst = max(relative_errors(grads, grads_scaled).items(), key=lambda item: item[1])
  assert worst[1] < tolerance, worst


def test_without_batchnorm_the_same_scale_changes_the_gradients():
  """The control: AlexNet (biases, no BatchNorm) is not invariant to the scale of its input."""
  config = alexnet.get_config('dataset=imagenette')
  model = train_state.create_model(config, num_classes=10)
  pixels = jax.random.randint(jax.random.key(0), (4, 67, 67, 3), 0, 256).astype(jnp.float32)
  paper = augment.normalize(pixels, *augment.input_stats(config))
  variables = model.init(jax.random.key(1), paper[:1])
  _, grads = loss_and_grads(model, variables, paper, jnp.arange(4))
  _, grads_scaled = loss_and_grads(model, variables, paper / 57.4, jnp.arange(4))
  assert max(relative_errors(grads, grads_scaled).values()) > 0.5
