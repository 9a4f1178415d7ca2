"""Every count here comes from the model; every number written here comes from a paper or the lecture."""
import math
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

import cnn_arch
from cnn_arch.summary import summarize


def layer(summary, name):
  return next(l for l in summary['layers'] if l['name'] == name)


def kernel_weights(name, path, **overrides):
  """Number of conv/dense weights (biases and BatchNorm excluded) under `path` of the model."""
  model = cnn_arch.create_model(name, **overrides)
  x = jnp.zeros((1, *cnn_arch.input_shape(name)))
  params = nn.meta.unbox(jax.eval_shape(model.init, jax.random.key(0), x))['params']
  flat = traverse_util.flatten_dict(params)
  return sum(math.prod(v.shape) for k, v in flat.items()
             if k[:len(path)] == path and k[-1] == 'kernel')


# --- AlexNet: the lecture's parameter list, with its two arithmetic slips corrected. ---
ALEXNET_PARAMS = {'conv1': 34_944, 'conv2': 614_656, 'conv3': 885_120, 'conv4': 1_327_488,
                  'conv5': 884_992, 'fc6': 37_752_832, 'fc7': 16_781_312, 'fc8': 4_097_000}


def test_alexnet_one_tower_params():
  s = summarize('alexnet')
  assert {n: layer(s, n)['params'] for n in ALEXNET_PARAMS} == ALEXNET_PARAMS
  assert s['params'] == 62_378_344 == sum(ALEXNET_PARAMS.values())


def test_alexnet_two_towers_params():
  s = summarize('alexnet', groups=2)
  assert s['params'] == 60_965_224
  # conv2, conv4, conv5 see half the input channels; conv3 and the FCs are unchanged.
  assert layer(s, 'conv2')['params'] == 5 * 5 * 48 * 256 + 256
  assert layer(s, 'conv3')['params'] == ALEXNET_PARAMS['conv3']
  assert layer(s, 'fc6')['params'] == ALEXNET_PARAMS['fc6']


def test_alexnet_output_sizes_match_lecture_table():
  s = summarize('alexnet')
  sizes = [layer(s, n)['output_shape'][0] for n in
           ('conv1', 'pool1', 'conv2', 'pool2', 'conv3', 'conv4', 'conv5', 'pool3')]
  assert sizes == [55, 27, 27, 13, 13, 13, 13, 6]
  assert [layer(s, n)['output_shape'][-1] for n in ('conv1', 'conv2', 'conv3', 'conv4',
                                                     'conv5')] == [96, 256, 384, 384, 256]
  assert layer(s, 'fc6')['output_shape'] == [4096]
  assert s['input_shape'] == [227, 227, 3]


def test_alexnet_without_lrn_has_same_params_and_no_norm_layers():
  s = summarize('alexnet', lrn=False)
  assert s['params'] == 62_378_344
  assert not [l for l in s['layers'] if l['name'].startswith('norm')]


def test_alexnet_paper_initialisation():
  model = cnn_arch.create_model('alexnet')
  params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 227, 227, 3)))['params']
  for name in ('conv2', 'conv4', 'conv5', 'fc6', 'fc7'):
    assert jnp.all(params[name]['bias'] == 1.0), name
  for name in ('conv1', 'conv3', 'fc8'):
    assert jnp.all(params[name]['bias'] == 0.0), name
  std = jnp.std(params['fc6']['kernel'])
  assert abs(float(std) - 0.01) < 1e-4
  assert abs(float(jnp.mean(params['fc6']['kernel']))) < 1e-4


def test_alexnet_caffe_positive_bias():
  """positive_bias=0.1: Caffe's bvlc_alexnet value where the paper sets 1; the zeros stay."""
  model = cnn_arch.create_model('alexnet', 10, groups=2, positive_bias=0.1)
  params = nn.meta.unbox(jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 67, 67, 3))))
  params = params['params']
  for name in ('conv2', 'conv4', 'conv5', 'fc6', 'fc7'):
    assert jnp.allclose(params[name]['bias'], 0.1), name
  for name in ('conv1', 'conv3', 'fc8'):
    assert jnp.all(params[name]['bias'] == 0.0), name


def test_alexnet_he_initialisation_keeps_the_signal_scale():
  """initializer='he': N(0, 2/fan_in) kernels (fan-in per tower), zero biases."""
  model = cnn_arch.create_model('alexnet', groups=2, initializer='he')
  params = nn.meta.unbox(jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 67, 67, 3))))
  params = params['params']
  for name, fan_in in (('conv1', 11 * 11 * 3), ('conv2', 5 * 5 * 48), ('conv3', 3 * 3 * 256),
                       ('fc6', 256), ('fc7', 4096)):
    std = float(jnp.std(params[name]['kernel']))
    assert abs(std / (2 / fan_in) ** 0.5 - 1) < 0.05, name
    assert jnp.all(params[name]['bias'] == 0.0), name
  with pytest.raises(ValueError, match="initializer='xavier'"):
    cnn_arch.create_model('alexnet', initializer='xavier').init(
        jax.random.key(0), jnp.zeros((1, 67, 67, 3)))


# --- LeNet-5: 6-16-120-84-10 with full C3. ---
def test_lenet5_params_and_sizes():
  s = summarize('lenet5')
  expected = {'c1': 5 * 5 * 1 * 6 + 6, 'c3': 5 * 5 * 6 * 16 + 16, 'c5': 5 * 5 * 16 * 120 + 120,
              'f6': 120 * 84 + 84, 'output': 84 * 10 + 10}
  assert {n: layer(s, n)['params'] for n in expected} == expected
  assert s['params'] == 61_706
  # The lecture's "LeNet 16x5x5x120 = 48k" is C5's weights.
  assert layer(s, 'c5')['params'] - 120 == 16 * 5 * 5 * 120 == 48_000
  assert [layer(s, n)['output_shape'] for n in ('c1', 's2', 'c3', 's4', 'c5')] == [
      [28, 28, 6], [14, 14, 6], [10, 10, 16], [5, 5, 16], [1, 1, 120]]
  unpadded = summarize('lenet5', conv1_padding=0)
  assert unpadded['input_shape'] == [32, 32, 1] and unpadded['params'] == 61_706


# --- VGG: Table 1 configurations, weights + biases at 224. ---
@pytest.mark.parametrize('name,params', [
    ('vgg_a', 132_863_336), ('vgg_a_lrn', 132_863_336), ('vgg_b', 133_047_848),
    ('vgg_d', 138_357_544), ('vgg_e', 143_667_240),
    ('vgg11', 132_863_336), ('vgg13', 133_047_848), ('vgg16', 138_357_544),
    ('vgg19', 143_667_240)])
def test_vgg_params(name, params):
  assert summarize(name)['params'] == params


def test_vgg_table2_rounded_counts():
  # The paper's Table 2 (millions): A, A-LRN 133; B 133; C 134; D 138; E 144.
  rounded = {n: round(summarize(n)['params'] / 1e6)
             for n in ('vgg_a', 'vgg_a_lrn', 'vgg_b', 'vgg_c', 'vgg_d', 'vgg_e')}
  assert rounded == {'vgg_a': 133, 'vgg_a_lrn': 133, 'vgg_b': 133, 'vgg_c': 134,
                     'vgg_d': 138, 'vgg_e': 144}


def test_vgg_layer_counts_and_lecture_last_layer():
  for name, weight_layers in (('vgg_a', 11), ('vgg_b', 13), ('vgg_c', 16), ('vgg_d', 16),
                              ('vgg_e', 19)):
    s = summarize(name)
    assert sum(l['type'] in ('Conv', 'Dense') for l in s['layers']) == weight_layers, name
  s = summarize('vgg_c')
  assert [l['params'] for l in s['layers'] if l['name'] == 'conv3_3'] == [256 * 256 + 256]
  # The lecture's "VGG 512x7x7x4096 = 102M": FC6's weights.
  assert layer(s, 'fc6')['params'] - 4096 == 512 * 7 * 7 * 4096 == 102_760_448
  assert [l['type'] for l in summarize('vgg_a_lrn')['layers']][:2] == ['Conv', 'LRN']


def test_vgg_b_5x5_is_b_with_one_5x5_conv_for_each_pair_of_3x3():
  """Sec. 4.1: five 5×5 convs of B's widths, the same receptive field and maps as B's pairs."""
  b, shallow = summarize('vgg_b'), summarize('vgg_b_5x5')
  convs = [l for l in shallow['layers'] if l['type'] == 'Conv']
  assert [l['output_shape'] for l in convs] == [[224, 224, 64], [112, 112, 128], [56, 56, 256],
                                               [28, 28, 512], [14, 14, 512]]
  widths = (3, 64, 128, 256, 512, 512)
  assert [l['params'] for l in convs] == [5 * 5 * i * o + o for i, o in zip(widths, widths[1:])]
  assert layer(shallow, 'fc6')['params'] == layer(b, 'fc6')['params']  # the same 7×7×512 maps
  # Each 3×3 pair sees 5×5: B's pairs end where the 5×5 convs do.
  b_ends = [l['output_shape'] for l in b['layers'] if l['name'].endswith('_2')]
  assert b_ends == [l['output_shape'] for l in convs]


def test_vgg_batch_norm_adds_scale_and_bias_per_channel():
  plain, bn = summarize('vgg_d'), summarize('vgg_d', batch_norm=True)
  conv_channels = 2 * 64 + 2 * 128 + 3 * 256 + 6 * 512
  assert bn['params'] - plain['params'] == 2 * conv_channels
  assert bn['batch_stats'] == 2 * conv_channels


# --- ResNet: Table 1 at 224. Params are torchvision's (identical layout); MACs the paper's FLOPs. ---
@pytest.mark.parametrize('depth,params,gmacs', [
    (18, 11_689_512, 1.8), (34, 21_797_672, 3.6), (50, 25_557_032, 3.8),
    (101, 44_549_160, 7.6), (152, 60_192_808, 11.3)])
def test_resnet_params_and_macs(depth, params, gmacs):
  s = summarize(f'resnet{depth}')
  assert s['params'] == params
  assert abs(s['macs'] / 1e9 - gmacs) / gmacs < 0.02, s['macs']


def test_resnet_stage_output_sizes():
  s = summarize('resnet50')
  last_block = {'conv2_3': [56, 56, 256], 'conv3_4': [28, 28, 512], 'conv4_6': [14, 14, 1024],
                'conv5_3': [7, 7, 2048]}
  for block, shape in last_block.items():
    assert [l for l in s['layers'] if l['name'].startswith(block)][-1]['output_shape'] == shape


def test_resnet_v1_5_moves_stride_but_keeps_params():
  v1, v15 = summarize('resnet50'), summarize('resnet50', stride_in_3x3=True)
  assert v1['params'] == v15['params']
  assert v15['macs'] > v1['macs']  # the 3×3 now runs at the higher resolution
  assert layer(v1, 'conv3_1/Conv_0')['output_shape'] == [28, 28, 128]
  assert layer(v15, 'conv3_1/Conv_0')['output_shape'] == [56, 56, 128]


def test_lecture_bottleneck_example():
  # "3x3x256x256+3x3x256x256=1,179,648" (a basic block at 256 channels: ResNet-34's conv4_x)
  # "1x1x256x64+3x3x64x64+1x1x64x256=69,632" (a bottleneck at 256 channels: ResNet-50's conv2_2)
  assert kernel_weights('resnet34', ('conv4_2',)) == 1_179_648
  assert kernel_weights('resnet50', ('conv2_2',)) == 69_632


def test_plain_resnet_has_no_shortcuts():
  s = summarize('resnet18', residual=False)
  assert not [l for l in s['layers'] if 'proj' in l['name']]
  # ResNet-18's three projection shortcuts (1×1 conv + BatchNorm) are the only difference.
  projections = 64 * 128 + 128 * 256 + 256 * 512 + 2 * (128 + 256 + 512)
  assert summarize('resnet18')['params'] - s['params'] == projections


# --- ResNet on CIFAR-10 (Sec. 4.2): Table 6's sizes, option-A shortcuts without parameters. ---
@pytest.mark.parametrize('depth,millions', [(20, 0.27), (32, 0.46), (44, 0.66), (56, 0.85),
                                            (110, 1.7), (1202, 19.4)])
def test_cifar_resnet_params(depth, millions):
  s = summarize(f'resnet{depth}')
  assert s['input_shape'] == [32, 32, 3] and s['layers'][-1]['output_shape'] == [10]
  assert round(s['params'] / 1e6, 2 if millions < 1 else 1) == millions
  convs = [l for l in s['layers'] if l['name'].endswith(('Conv_0', 'Conv_1')) or
           l['name'] == 'conv1']
  assert len(convs) + 1 == depth  # 6n + 1 convolutions and the FC layer


def test_cifar_resnet_maps_and_zero_padded_shortcuts():
  s = summarize('resnet20')
  # 2n layers on each of 32×32, 16×16, 8×8 maps, with 16, 32 and 64 filters
  for block, shape in {'stage1_3': [32, 32, 16], 'stage2_1': [16, 16, 32],
                       'stage3_3': [8, 8, 64]}.items():
    assert [l for l in s['layers'] if l['name'].startswith(block)][-1]['output_shape'] == shape
  # Option A has no parameters: the plain twin has exactly as many.
  assert summarize('resnet20', residual=False)['params'] == s['params']
  model = cnn_arch.create_model('resnet20')
  x = jax.random.normal(jax.random.key(0), (2, 32, 32, 3))
  variables = model.init(jax.random.key(1), x)
  plain = cnn_arch.create_model('resnet20', residual=False)
  assert not jnp.allclose(model.apply(variables, x), plain.apply(variables, x))


def test_option_a_shortcut_subsamples_and_pads_with_zeros():
  from cnn_arch.resnet import BasicBlock, _shortcut
  x = jnp.arange(2 * 4 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 4, 3)
  block = BasicBlock(6, None, None, strides=2, zero_pad_shortcut=True)
  out = _shortcut(x, jnp.zeros((2, 2, 2, 6)), block)
  assert out.shape == (2, 2, 2, 6)
  assert jnp.array_equal(out[..., :3], x[:, ::2, ::2]) and not out[..., 3:].any()


# --- GoogLeNet: Table 1 and the lecture's Inception-block comparison. ---
def test_googlenet_inception_3a_matches_lecture():
  # The lecture: Inception 0.16 M params, 128 M FLOPs; a 3×3 conv 0.44 M / 346 M; 5×5 1.22 M / 963 M.
  assert kernel_weights('googlenet', ('inception_3a',)) == 163_328
  s = summarize('googlenet', depth=1)
  assert layer(s, 'inception_3a')['macs'] == 128_049_152
  assert layer(s, 'inception_3a')['output_shape'] == [28, 28, 256]
  pixels = 28 * 28
  for k, weights, macs in ((3, 442_368, 346_816_512), (5, 1_228_800, 963_379_200)):
    assert k * k * 192 * 256 == weights and weights * pixels == macs


def test_googlenet_3b_and_1x1_reduction_example():
  assert round(kernel_weights('googlenet', ('inception_3b',)) / 1024) == 379  # Table 1: 380K
  # The lecture's 512 → 1×1 24 → 5×5 64 example is inception 4b's 5×5 branch.
  reduce_ = kernel_weights('googlenet', ('inception_4b', '5x5_reduce'))
  conv5 = kernel_weights('googlenet', ('inception_4b', '5x5'))
  assert (reduce_, conv5, reduce_ + conv5) == (12_288, 38_400, 50_688)


# Table 1's "ops" column (millions of multiply-adds). Rows the paper itself gets wrong are left
# out (see docs/papers.md): conv1 (34M, not 7·7·3·64·112² = 118M) and 5a (54M; its widths give 51M).
GOOGLENET_OPS = {'conv2': 360, 'inception_3a': 128, 'inception_3b': 304, 'inception_4a': 73,
                 'inception_4b': 88, 'inception_4c': 100, 'inception_4d': 119,
                 'inception_4e': 170, 'inception_5b': 71, 'fc': 1}


def test_googlenet_table1_ops_and_sizes():
  s = summarize('googlenet', depth=1, aux=False)
  ops = {n: layer(s, n)['macs'] for n in GOOGLENET_OPS}
  ops['conv2'] += layer(s, 'conv2_reduce')['macs']  # the table's "depth 2" row
  for n, millions in GOOGLENET_OPS.items():  # the table truncates or rounds to millions
    assert abs(ops[n] / 1e6 - millions) < 1, (n, ops[n])
  sizes = [layer(s, n)['output_shape'] for n in
           ('conv1', 'pool1', 'pool2', 'pool3', 'pool4', 'inception_5b')]
  assert sizes == [[112, 112, 64], [56, 56, 64], [28, 28, 192], [14, 14, 480], [7, 7, 832],
                   [7, 7, 1024]]


def test_googlenet_auxiliary_heads():
  with_aux, without = summarize('googlenet'), summarize('googlenet', aux=False)
  aux_layers = [l for l in with_aux['layers'] if l['name'].startswith('aux')]
  assert {l['name'] for l in aux_layers} == {f'aux{i}/{n}' for i in (1, 2) for n in
                                             ('pool', 'conv', 'fc1', 'drop', 'fc2')}
  assert layer(with_aux, 'aux1/pool')['output_shape'] == [4, 4, 512]   # after 4a
  assert layer(with_aux, 'aux2/pool')['output_shape'] == [4, 4, 528]   # after 4d
  head = lambda c: c * 128 + 128 + 2048 * 1024 + 1024 + 1024 * 1000 + 1000  # noqa: E731
  assert with_aux['params'] - without['params'] == head(512) + head(528)


# --- The BN-era Inceptions: their papers' grids; counts as the authors' released models. ---
def test_inception_bn_grid_sizes():
  s = summarize('inception_bn', depth=1)
  shapes = {n: layer(s, f'inception_{n}')['output_shape'] for n in
            ('3a', '3b', '3c', '4a', '4c', '4e', '5b')}
  # Ioffe & Szegedy 2015, Figure 5.
  assert shapes == {'3a': [28, 28, 256], '3b': [28, 28, 320], '3c': [14, 14, 576],
                    '4a': [14, 14, 576], '4c': [14, 14, 608], '4e': [7, 7, 1056],
                    '5b': [7, 7, 1024]}
  assert not [l for l in s['layers'] if l['type'] == 'Dropout']  # "remove dropout"


def test_inception_v3_params_and_grids():
  # 23,834,568 without and 27,161,264 with the auxiliary head: the released model's counts
  # (torchvision's inception_v3 and Keras' InceptionV3 plus BatchNorm scales).
  assert summarize('inception_v3', aux=False)['params'] == 23_834_568
  s = summarize('inception_v3', depth=1)
  assert s['params'] == 27_161_264
  assert s['input_shape'] == [299, 299, 3]
  grids = {n: layer(s, n)['output_shape'] for n in ('pool2', 'mixed_5d', 'mixed_6e', 'mixed_7c')}
  # The paper's Table 1: 35×35×288, 17×17×768, 8×8×2048.
  assert grids == {'pool2': [35, 35, 192], 'mixed_5d': [35, 35, 288],
                   'mixed_6e': [17, 17, 768], 'mixed_7c': [8, 8, 2048]}
  assert abs(s['macs'] / 1e9 - 5.7) < 0.1  # ≈ 2.5 × GoogLeNet's 1.5 G (Sec. 6 of the paper)


def test_inception_v4_params_and_grids():
  s = summarize('inception_v4', depth=1)
  assert s['params'] == 42_679_816  # the released model's count (timm's inception_v4)
  grids = {n: layer(s, n)['output_shape'] for n in ('stem_a', 'stem_b', 'stem_c',
                                                    'inception_a4', 'reduction_a',
                                                    'inception_b7', 'inception_c3')}
  # The paper's Figures 3-8.
  assert grids == {'stem_a': [73, 73, 160], 'stem_b': [71, 71, 192], 'stem_c': [35, 35, 384],
                   'inception_a4': [35, 35, 384], 'reduction_a': [17, 17, 1024],
                   'inception_b7': [17, 17, 1024], 'inception_c3': [8, 8, 1536]}


def test_inception_resnet_v1_grids_and_blocks():
  s = summarize('inception_resnet_v1', depth=1)
  grids = {n: layer(s, n)['output_shape'] for n in ('conv6', 'inception_resnet_a5',
                                                    'reduction_a', 'inception_resnet_b10',
                                                    'reduction_b', 'inception_resnet_c5')}
  # The paper's Figure 14 (stem: 35×35×256), Table 1 (Reduction-A's k, l, m, n = 192, 192, 256,
  # 384: 256 + 384 + 256 = 896 maps) and Figures 10-13 (5 A, 10 B, 5 C blocks; 1792 maps).
  assert grids == {'conv6': [35, 35, 256], 'inception_resnet_a5': [35, 35, 256],
                   'reduction_a': [17, 17, 896], 'inception_resnet_b10': [17, 17, 896],
                   'reduction_b': [8, 8, 1792], 'inception_resnet_c5': [8, 8, 1792]}
  assert not any(n.startswith('inception_resnet_a6') for n in (l['name'] for l in s['layers']))
  # "roughly the computational cost of Inception-v3" (Sec. 3.1): v3 is 5.7 G multiply-adds.
  assert abs(s['macs'] / summarize('inception_v3', aux=False)['macs'] - 1) < 0.15


def test_inception_resnet_blocks_add_scaled_linear_residuals():
  """Sec. 3.2-3.3: a linear 1×1 conv back to the input's width with a bias and no BatchNorm, the
  residual scaled before the addition, ReLU after it: ReLU(x + scale · (W·branches + b))."""
  variables = jax.eval_shape(cnn_arch.create_model('inception_resnet_v1').init, jax.random.key(0),
                             jnp.zeros((1, 299, 299, 3)))
  assert variables['params']['inception_resnet_b1']['up']['kernel'].shape == (1, 1, 256, 896)
  assert set(variables['params']['inception_resnet_b1']['up']) == {'kernel', 'bias'}
  assert 'up' not in variables['batch_stats']['inception_resnet_b1']
  conv = cnn_arch.layers.Conv
  unit = partial(cnn_arch.layers.ConvBNReLU, conv=conv,
                 norm=partial(nn.BatchNorm, use_running_average=True))
  last_c = cnn_arch.inception.INCEPTION_RESNET_V1[-1][1]
  block = cnn_arch.inception.ResidualBlock(last_c, unit, conv)
  x = jax.random.normal(jax.random.key(1), (2, 8, 8, 1792))
  v = block.init(jax.random.key(2), x)
  up = {'kernel': jnp.zeros_like(v['params']['up']['kernel']),
        'bias': jnp.linspace(-1, 1, 1792)}  # the branches no longer count: W = 0
  fixed = {**v, 'params': {**v['params'], 'up': up}}
  np.testing.assert_allclose(block.apply(fixed, x), jax.nn.relu(x + 0.20 * up['bias']), atol=1e-6)
  assert float(jnp.abs(block.apply(v, x) - jax.nn.relu(x)).max()) > 1e-3  # W does count


def test_inception_resnet_v2_params_and_grids():
  s = summarize('inception_resnet_v2', depth=1)
  assert s['params'] == 55_843_464  # the released model's count (timm's inception_resnet_v2)
  grids = {n: layer(s, n)['output_shape'] for n in ('mixed_5b', 'inception_resnet_a10',
                                                    'reduction_a', 'inception_resnet_b20',
                                                    'reduction_b', 'inception_resnet_c10',
                                                    'conv7')}
  # Table 1: Reduction-A's k, l, m, n = 256, 256, 384, 384 (384 + 384 + 320 = 1088 maps);
  # Figure 18's Reduction-B (384 + 288 + 320 + 1088 = 2080).
  assert grids == {'mixed_5b': [35, 35, 320], 'inception_resnet_a10': [35, 35, 320],
                   'reduction_a': [17, 17, 1088], 'inception_resnet_b20': [17, 17, 1088],
                   'reduction_b': [8, 8, 2080], 'inception_resnet_c10': [8, 8, 2080],
                   'conv7': [8, 8, 1536]}
  assert [l['type'] for l in s['layers']][-2:] == ['Dropout', 'Dense']  # keep 0.8, then the fc


def test_nin_has_no_dense_layers():
  s = summarize('nin')
  assert not [l for l in s['layers'] if l['type'] == 'Dense']
  assert s['layers'][-1]['type'] == 'GlobalAvgPool'
  assert layer(s, 'mlp4_2')['output_shape'] == [5, 5, 1000]
  assert layer(s, 'conv1')['output_shape'] == [54, 54, 96]
