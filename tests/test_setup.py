"""setup.sh's choice of JAX build, run against stand-ins: no network, no apt, no real pip.

Each test copies setup.sh and the requirements files it reads into a tmp dir. The PATH there
holds only stand-ins (`nvidia-smi` when the test wants a driver, `python3`, `sudo`, `apt-get`)
and the few real tools setup.sh calls; `.venv/bin/python` only logs its arguments.
"""
import pathlib
import re
import shutil
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
JAX_MIN = re.search(r'^jax>=([0-9.]+)', (REPO / 'requirements.txt').read_text(), re.M)[1]
REAL_TOOLS = ('dirname', 'id', 'sed', 'sort')  # what setup.sh runs besides the stand-ins
DRIVER_580 = '580.65.06'


def _script(path, body):
  path.write_text('#!/bin/sh\n' + body)
  path.chmod(0o755)


def run_setup(tmp_path, *flags, driver=None, cap='8.9', smi_fails=False):
  """Runs `bash setup.sh FLAGS`; returns the finished process and the fake python's calls.

  driver: the version the fake nvidia-smi reports for each of two GPUs (None: no nvidia-smi),
  cap: the first GPU's compute capability (the second's is 9.0).
  """
  for name in ('setup.sh', 'requirements.txt', 'requirements-test.txt'):
    shutil.copy(REPO / name, tmp_path / name)
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  for tool in REAL_TOOLS:
    (bin_dir / tool).symlink_to(shutil.which(tool))
  _script(bin_dir / 'python3', 'exit 0\n')  # `import ensurepip, venv` works
  _script(bin_dir / 'sudo', 'exec "$@"\n')
  _script(bin_dir / 'apt-get', 'exit 0\n')  # for Fashion-MNIST, where this machine lacks it
  if smi_fails:  # what nvidia-smi prints when no driver is loaded
    _script(bin_dir / 'nvidia-smi', "echo \"NVIDIA-SMI has failed because it couldn't"
            ' communicate with the NVIDIA driver."\nexit 9\n')
  elif driver is not None:
    _script(bin_dir / 'nvidia-smi', f'case "$1" in\n'
            f"  --query-gpu=driver_version) echo '{driver}'; echo '{driver}' ;;\n"
            f'  --query-gpu=compute_cap) echo 9.0; echo {cap} ;;\n'
            f'  *) exit 6 ;;\nesac\n')
  log = tmp_path / 'pip.log'
  (tmp_path / '.venv' / 'bin').mkdir(parents=True)
  _script(tmp_path / '.venv' / 'bin' / 'python', f'echo "$*" >> "{log}"\n')
  proc = subprocess.run([shutil.which('bash'), str(tmp_path / 'setup.sh'), *flags],
                        env={'PATH': str(bin_dir), 'HOME': str(tmp_path)},
                        capture_output=True, text=True, timeout=300)
  calls = log.read_text().splitlines() if log.exists() else []
  return proc, calls


def choice_line(proc):
  """setup.sh's one line on the JAX build, once it ran to the end."""
  assert proc.returncode == 0, proc.stderr
  lines = [line for line in proc.stdout.splitlines() if "JAX's" in line]
  assert len(lines) == 1, proc.stdout
  return lines[0]


def assert_installs(calls, requirements, build):
  """The requirements file first, then jax[build] at requirements.txt's bound (none for cpu)."""
  first = calls.index(f'-m pip install -q -r {requirements}')
  jax_installs = [i for i, call in enumerate(calls) if 'jax[' in call]
  if build == 'cpu':
    assert jax_installs == [], calls
  else:
    assert [calls[i] for i in jax_installs] == [f'-m pip install -q jax[{build}]>={JAX_MIN}']
    assert jax_installs[0] > first


def test_driver_580_installs_cuda13_and_says_so_as_the_readme_shows(tmp_path):
  proc, calls = run_setup(tmp_path, driver=DRIVER_580)
  line = choice_line(proc)
  assert line == ("setup.sh: NVIDIA driver 580.65.06 found: installing JAX's CUDA 13 build"
                  ' (jax[cuda13]); --jax=cpu to skip')
  assert f'\n{line}\n' in (REPO / 'README.md').read_text()
  assert_installs(calls, 'requirements.txt', 'cuda13')
  assert '-m pip uninstall -qq -y jax-cuda12-plugin jax-cuda12-pjrt' in calls


@pytest.mark.parametrize('driver', ['525.60.13', '550.54.14', '575.57.08'])
def test_drivers_525_to_579_install_cuda12(tmp_path, driver):
  proc, calls = run_setup(tmp_path, driver=driver)
  assert choice_line(proc) == (f"setup.sh: NVIDIA driver {driver} found: installing JAX's CUDA 12"
                               ' build (jax[cuda12]); --jax=cpu to skip')
  assert_installs(calls, 'requirements.txt', 'cuda12')


def test_driver_580_with_a_gpu_older_than_turing_installs_cuda12(tmp_path):
  proc, calls = run_setup(tmp_path, driver=DRIVER_580, cap='6.1')
  assert choice_line(proc) == (
      'setup.sh: NVIDIA driver 580.65.06 found with a GPU of compute capability 6.1 (CUDA 13'
      " needs >= 7.5): installing JAX's CUDA 12 build (jax[cuda12]); --jax=cpu to skip")
  assert_installs(calls, 'requirements.txt', 'cuda12')


@pytest.mark.parametrize('driver', ['470.82.01', '520.61.05'])
def test_drivers_before_525_are_too_old_so_cpu(tmp_path, driver):
  proc, calls = run_setup(tmp_path, driver=driver)
  assert choice_line(proc) == (f"setup.sh: NVIDIA driver {driver} is too old for JAX's CUDA"
                               " builds (they need >= 525): installing JAX's CPU build")
  assert_installs(calls, 'requirements.txt', 'cpu')


@pytest.mark.parametrize('driver, smi_fails', [(None, False), (None, True), ('[N/A]', False)],
                         ids=['no-nvidia-smi', 'failing-nvidia-smi', 'no-version'])
def test_no_driver_so_cpu(tmp_path, driver, smi_fails):
  proc, calls = run_setup(tmp_path, driver=driver, smi_fails=smi_fails)
  assert choice_line(proc) == ("setup.sh: no NVIDIA driver found (nvidia-smi): installing JAX's"
                               ' CPU build')
  assert_installs(calls, 'requirements.txt', 'cpu')


def test_jax_cpu_with_a_driver_installs_cpu_and_drops_earlier_cuda_plugins(tmp_path):
  proc, calls = run_setup(tmp_path, '--jax=cpu', driver=DRIVER_580)
  assert choice_line(proc) == "setup.sh: --jax=cpu: installing JAX's CPU build"
  assert_installs(calls, 'requirements.txt', 'cpu')
  assert ('-m pip uninstall -qq -y jax-cuda12-plugin jax-cuda12-pjrt jax-cuda13-plugin'
          ' jax-cuda13-pjrt') in calls


@pytest.mark.parametrize('driver', [DRIVER_580, None])
def test_jax_cuda12_forced(tmp_path, driver):
  proc, calls = run_setup(tmp_path, '--jax=cuda12', driver=driver)
  assert choice_line(proc) == ("setup.sh: --jax=cuda12: installing JAX's CUDA 12 build"
                               ' (jax[cuda12])')
  assert_installs(calls, 'requirements.txt', 'cuda12')
  assert '-m pip uninstall -qq -y jax-cuda13-plugin jax-cuda13-pjrt' in calls


@pytest.mark.parametrize('driver, line, build', [
    ('550.54.14', "NVIDIA driver 550.54.14 found: installing JAX's CUDA 12 build (jax[cuda12])",
     'cuda12'),
    (None, "no NVIDIA driver found (nvidia-smi), yet --jax=cuda: installing JAX's CUDA 13 build"
     ' (jax[cuda13])', 'cuda13')])
def test_jax_cuda_chooses_by_driver_and_without_one_takes_cuda13(tmp_path, driver, line, build):
  proc, calls = run_setup(tmp_path, '--jax=cuda', driver=driver)
  assert choice_line(proc) == 'setup.sh: ' + line
  assert_installs(calls, 'requirements.txt', build)


@pytest.mark.parametrize('flags', [['--test'], ['--test', '--jax=cpu'], ['--jax=cpu', '--test']])
def test_test_flag_installs_the_test_requirements_in_any_order(tmp_path, flags):
  proc, calls = run_setup(tmp_path, *flags, driver=DRIVER_580)
  build = 'cpu' if '--jax=cpu' in flags else 'cuda13'
  assert ("JAX's CPU build" if build == 'cpu' else 'jax[cuda13]') in choice_line(proc)
  assert '-m pip install -q -r requirements.txt' not in calls
  assert_installs(calls, 'requirements-test.txt', build)


@pytest.mark.parametrize('flags', [['--gpu'], ['--test', '--jax=rocm'], ['--jax'], ['test']])
def test_unknown_flag_is_one_line_and_exit_2(tmp_path, flags):
  proc, calls = run_setup(tmp_path, *flags, driver=DRIVER_580)
  assert proc.returncode == 2
  assert proc.stdout == ''
  assert len(proc.stderr.splitlines()) == 1, proc.stderr
  assert proc.stderr.startswith(f"setup.sh: unknown flag '{flags[-1]}'; usage: ./setup.sh")
  assert '[--test] [--jax=auto|cpu|cuda|cuda12|cuda13]' in proc.stderr
  assert calls == []  # nothing installed


def test_setup_sh_parses():
  subprocess.run([shutil.which('bash'), '-n', str(REPO / 'setup.sh')], check=True)
  if shutil.which('shellcheck'):
    subprocess.run(['shellcheck', str(REPO / 'setup.sh')], check=True)
