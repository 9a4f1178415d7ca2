"""The benchmark command (bench.py), and no recompilation during training (issue 6)."""
import json
import os
import subprocess
import sys

import pytest

import bench
from cnn_train import input_pipeline, runtime, trainer


def test_training_compiles_nothing_after_its_first_steps_and_eval(tiny_config, tmp_path,
                                                                   monkeypatch, compilations):
  """Once the second eval starts, the train step, the eval step and the plateau schedule have
  all run: the 6 steps and 3 evals that follow must compile nothing."""
  real_eval_batches = input_pipeline.eval_batches
  with compilations() as events:
    def eval_batches(*args, **kwargs):
      events.append('eval')
      return real_eval_batches(*args, **kwargs)

    monkeypatch.setattr(input_pipeline, 'eval_batches', eval_batches)
    trainer.train_and_evaluate(tiny_config(max_steps=12, eval_every_epochs=0.5),
                               str(tmp_path / 'run'))
  evals = [i for i, e in enumerate(events) if e == 'eval']
  assert len(evals) == 4 and events.index('eval') > 0
  assert events[evals[1]:] == ["eval"] * 3, " ".join(events)


def test_bench_train_step_prints_the_contract(capsys):
  assert bench.main(['--model=lenet5', '--batch=8', '--steps=2', '--json']) == 0
  result = json.loads(capsys.readouterr().out)
  assert {'model', 'batch', 'devices', 'compile_s', 'ms_per_step', 'images_per_s',
          'model_flops_per_s', 'peak_rss_mb'} <= set(result)
  assert result['devices'] == 2 and result['batch'] == 8
  # FLOP/s = 6 × LeNet-5's MACs per image (tested against the paper elsewhere) × images/s.
  from cnn_arch.summary import summarize
  macs = summarize('lenet5')['macs']
  assert result['model_flops_per_s'] == pytest.approx(6 * macs * result['images_per_s'], rel=0.01)


def test_bench_input_pipeline(folder, capsys):
  assert bench.main(['--model=lenet5', '--batch=4', '--steps=3', f'--input=folder:{folder}',
                     '--json']) == 0
  result = json.loads(capsys.readouterr().out)
  assert result['images_per_s'] > 0 and result['cores'] > 0
  assert result['images_per_s_per_core'] == pytest.approx(
      result['images_per_s'] / result['cores'], rel=0.02)


def test_the_library_never_imports_configs():
  code = ('import sys, cnn_train.bench, cnn_train.trainer, cnn_train.sweep, cnn_train.evaluation; '
          'print(sorted(m for m in sys.modules if m.split(".")[0] == "configs"))')
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert out.stdout.strip() == '[]', out.stderr[-2000:]


def test_bench_resolves_every_model_to_its_config():
  import cnn_arch
  for name in cnn_arch.list_models():
    assert bench.model_config(name).model.name == cnn_arch.ALIASES.get(name, name)
  assert bench.main(['--model=resnet19', '--batch=8']) == 2


def _tunables_after_restart(env):
  code = ('from cnn_train import runtime; runtime.restart_with_huge_pages(); import os; '
          'print(os.environ.get("GLIBC_TUNABLES"), os.getpid())')
  env = {k: v for k, v in os.environ.items() if k != 'GLIBC_TUNABLES'} | env
  process = subprocess.Popen([sys.executable, '-c', code], env=env, stdout=subprocess.PIPE,
                             text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
  out, _ = process.communicate(timeout=300)
  tunables, pid = out.split()
  assert int(pid) == process.pid  # restarted in place: signals still reach it
  return tunables


@pytest.mark.skipif(not runtime.huge_pages_available(), reason='no transparent huge pages here')
def test_entry_points_restart_once_with_huge_pages():
  assert _tunables_after_restart({}) == 'glibc.malloc.hugetlb=1'
  assert (_tunables_after_restart({'GLIBC_TUNABLES': 'glibc.malloc.arena_max=2'})
          == 'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1')
  assert _tunables_after_restart({'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=0'}) == (
      'glibc.malloc.hugetlb=0')  # the user's opt-out is kept


needs_ynn_flag = pytest.mark.skipif(not runtime.jaxlib_knows_ynn_fusions(),
                                    reason='a jaxlib not measured with the YNNPACK flag')


@needs_ynn_flag
def test_entry_points_keep_a_users_xla_flags(monkeypatch):
  monkeypatch.setenv('XLA_FLAGS', '--xla_force_host_platform_device_count=2')
  runtime.use_eigen_convolutions()
  assert os.environ['XLA_FLAGS'] == (
      '--xla_force_host_platform_device_count=2 '
      '--xla_cpu_experimental_ynn_fusion_type=-individual_convolution')
  monkeypatch.setenv('XLA_FLAGS', '--xla_cpu_experimental_ynn_fusion_type=individual_dot')
  runtime.use_eigen_convolutions()  # the user's own choice stands
  assert os.environ['XLA_FLAGS'] == '--xla_cpu_experimental_ynn_fusion_type=individual_dot'


_CONV_HLO = ('import jax; S = jax.ShapeDtypeStruct; f = lambda x, k: jax.lax.conv_general_dilated('
             'x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")); print(jax.jit(f)'
             '.lower(S((2, 16, 16, 32), "float32"), S((3, 3, 32, 32), "float32"))'
             '.compile().as_text())')


@needs_ynn_flag
@pytest.mark.parametrize('eigen', [False, True])
def test_xla_computes_convolutions_itself_after_use_eigen_convolutions(eigen):
  """The flag is one XLA knows (it aborts on others) and does what runtime says: without it,
  jaxlib hands the convolution to a YNNPACK fusion. If that default changes, the flag and the
  README's figures need measuring again."""
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'} | {'JAX_PLATFORMS': 'cpu'}
  if eigen:
    env['XLA_FLAGS'] = runtime.EIGEN_CONVOLUTIONS
  hlo = subprocess.run([sys.executable, '-c', _CONV_HLO], env=env, capture_output=True,
                       text=True, timeout=120, check=True).stdout
  assert ' convolution(' in hlo
  assert ('__ynn_fusion' in hlo) != eigen


def test_the_old_module_command_says_where_the_benchmark_went():
  out = subprocess.run([sys.executable, '-m', 'cnn_train.bench', '--model=alexnet'],
                       capture_output=True, text=True, timeout=300,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  assert out.returncode == 2 and out.stderr.count('\n') == 1
  assert 'python bench.py' in out.stderr


def test_the_cpu_is_named_with_its_vector_extensions(tmp_path):
  cpuinfo = tmp_path / 'cpuinfo'
  block = ('processor\t: {i}\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n'
           'model name\t: AMD EPYC 9R14\nflags\t\t: fpu sse2 avx fma avx2 avx512f avx512_vnni\n\n')
  cpuinfo.write_text(block.format(i=0) + block.format(i=1))
  described = runtime.cpu_description(str(cpuinfo))
  assert described == (f'AMD EPYC 9R14 (family 25 model 17), {os.cpu_count()} CPUs; '
                       'avx2 fma avx512f avx512_vnni')
  cpuinfo.write_text('processor\t: 0\nmodel name\t: Old\nflags\t\t: sse2\n')
  assert runtime.cpu_description(str(cpuinfo)).endswith('CPUs; no AVX2')


def _benchmark(name):
  import importlib.util
  path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      'benchmarks', f'{name}.py')
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.parametrize('model, convolutions, first, stride', [
    # He et al., Table 1: 17 convolutions of the 18 layers, plus 3 projection shortcuts
    ('resnet18', 20, (7, 7, 3, 64), 2),
    # Krizhevsky et al., Section 3.5: five convolutional layers, the first 96 11×11×3 at stride 4
    ('alexnet', 5, (11, 11, 3, 96), 4)])
def test_the_layer_profile_reads_every_convolution_of_the_model(model, convolutions, first,
                                                                stride):
  layers = _benchmark('conv_layers').conv_layers(model, batch=1)
  assert sum(layers.values()) == convolutions
  (_, kernel, strides, _, _), count = next(iter(layers.items()))
  assert (kernel, strides, count) == (first, (stride, stride), 1)


def test_the_pytorch_comparison_says_how_to_make_a_checkout(tmp_path):
  pytest.importorskip('torch')
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  out = subprocess.run([sys.executable, os.path.join(root, 'benchmarks', 'pytorch_train_step.py'),
                        '--checkout', str(tmp_path)], capture_output=True, text=True, timeout=300)
  assert out.returncode == 2 and out.stdout == ''
  assert f'--checkout {tmp_path}: no bench.py there' in out.stderr.splitlines()[-1]
  assert 'git worktree add DIR COMMIT' in out.stderr.splitlines()[-1]
