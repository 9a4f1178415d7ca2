"""Process set-up for the command-line entry points, before JAX starts: XLA:CPU's convolutions,
huge pages, and JAX's distributed runtime for runs over several processes or hosts."""
import os
import re
import sys

HUGE_PAGES = 'glibc.malloc.hugetlb=1'
THP_SETTING = '/sys/kernel/mm/transparent_hugepage/enabled'
# XLA:CPU (jaxlib 0.10) hands convolutions to YNNPACK by default; its own (Eigen) convolutions
# are up to 2.5x faster on these nets' shapes, forward and backward (docs/performance.md).
YNN_FUSIONS = '--xla_cpu_experimental_ynn_fusion_type'
EIGEN_CONVOLUTIONS = f'{YNN_FUSIONS}=-individual_convolution'


# The vector extensions that decide which CPU kernels are fastest (oneDNN's, YNNPACK's, Eigen's).
VECTOR_FEATURES = ('avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'amx_bf16')


def cpu_description(cpuinfo='/proc/cpuinfo'):
  """'AMD EPYC (family 25 model 17), 2 CPUs; avx2 fma avx512f ...': the CPU beside a
  benchmark's figures. Where /proc/cpuinfo is missing, the platform's processor string."""
  import platform
  fields = {}
  try:
    with open(cpuinfo) as f:
      for line in f:
        key, sep, value = line.partition(':')
        if not sep:
          if fields:
            break  # the first processor's block is enough
          continue
        fields.setdefault(key.strip(), value.strip())
  except OSError:
    return f'{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs'
  flags = set(fields.get('flags', '').split())
  family = (f' (family {fields["cpu family"]} model {fields["model"]})'
            if 'cpu family' in fields and 'model' in fields else '')
  features = ' '.join(f for f in VECTOR_FEATURES if f in flags) or 'no AVX2'
  return f'{fields.get("model name", platform.machine())}{family}, {os.cpu_count()} CPUs; {features}'


def drop_log_lines(*texts):
  """Drop the absl log records that contain any of `texts`: library warnings that say nothing
  to our users."""
  import logging
  logging.getLogger('absl').addFilter(
      lambda record: not any(text in record.getMessage() for text in texts))


def run_name(spec):
  """'alexnet-lrn=False,groups=2' for 'configs/alexnet.py:lrn=False,groups=2' (a config or a
  sweep file and its argument): the name of its default run directory."""
  path, _, arg = spec.partition(':')
  name = os.path.splitext(os.path.basename(path))[0]
  return name + (f'-{re.sub(r"[^A-Za-z0-9=,._-]", "_", arg)}' if arg else '')


def prepare_process():
  """What train.py, eval.py and the benchmark do first: the faster CPU convolutions, then
  the restart with huge pages (which keeps the environment)."""
  use_eigen_convolutions()
  restart_with_huge_pages()


def use_eigen_convolutions():
  """Have XLA:CPU compute convolutions itself rather than through YNNPACK (matrix products
  still go to YNNPACK). XLA reads XLA_FLAGS when JAX first starts a backend, so call this
  before that. A user's own setting of the YNNPACK fusion types is left alone."""
  flags = os.environ.get('XLA_FLAGS', '')
  if YNN_FUSIONS not in flags and jaxlib_knows_ynn_fusions():
    os.environ['XLA_FLAGS'] = f'{flags} {EIGEN_CONVOLUTIONS}'.strip()


def jaxlib_knows_ynn_fusions():
  """XLA aborts on a flag it does not know: the flag is experimental, so only the jaxlib
  versions measured with it (0.10, 0.11) get it."""
  from importlib import metadata
  try:
    major, minor = (int(part) for part in metadata.version('jaxlib').split('.')[:2])
  except (metadata.PackageNotFoundError, ValueError):
    return False
  return (0, 10) <= (major, minor) < (0, 12)


def restart_with_huge_pages():
  """Restart this command once with glibc backing large allocations by 2 MiB pages.

  XLA:CPU allocates each step's temporaries afresh (gigabytes for AlexNet or ResNet at batch 32)
  and the kernel maps them in 4 KiB pages, zeroing each on first touch: 740,000 page faults per
  ResNet-18 step, a quarter of its time. glibc's `hugetlb` tunable asks for transparent huge
  pages instead, but glibc reads GLIBC_TUNABLES only when a process starts, hence the restart
  (same PID, same arguments). Does nothing off Linux, where transparent huge pages are off, or
  when GLIBC_TUNABLES already sets it (`GLIBC_TUNABLES=glibc.malloc.hugetlb=0` opts out).
  """
  tunables = os.environ.get('GLIBC_TUNABLES', '')
  if 'glibc.malloc.hugetlb' in tunables or not huge_pages_available():
    return
  os.environ['GLIBC_TUNABLES'] = f'{tunables}:{HUGE_PAGES}' if tunables else HUGE_PAGES
  os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def huge_pages_available():
  """Linux, with transparent huge pages not switched off."""
  if not sys.platform.startswith('linux'):
    return False
  try:
    with open(THP_SETTING) as f:
      return '[never]' not in f.read()
  except OSError:
    return False


def initialize_distributed(coordinator_address=None, num_processes=None, process_id=None):
  """Join a multi-process run (several hosts, or several processes of one) if this is one.

  A run is multi-process when a coordinator address is given (flag or JAX_COORDINATOR_ADDRESS)
  or when SLURM started this process as one of several tasks (srun); JAX then detects the
  coordinator (the job's first node), the process count and this process's id itself. The count
  and id can also come from JAX_NUM_PROCESSES and JAX_PROCESS_ID (e.g. a Kubernetes indexed Job).
  Returns whether it initialised JAX's distributed runtime.
  """
  coordinator_address = coordinator_address or os.environ.get('JAX_COORDINATOR_ADDRESS')
  if num_processes is None and 'JAX_NUM_PROCESSES' in os.environ:
    num_processes = int(os.environ['JAX_NUM_PROCESSES'])
  if process_id is None and 'JAX_PROCESS_ID' in os.environ:
    process_id = int(os.environ['JAX_PROCESS_ID'])
  slurm_tasks = int(os.environ.get('SLURM_STEP_NUM_TASKS', 1))  # tasks of this srun
  if not coordinator_address and slurm_tasks <= 1:
    return False
  import jax
  jax.distributed.initialize(coordinator_address, num_processes, process_id)
  return True


def define_distributed_flags():
  """--coordinator_address, --num_processes, --process_id (absl flags of train.py and eval.py);
  returns a function that initialises from their values."""
  from absl import flags
  defined = (
      flags.DEFINE_string('coordinator_address', None, 'multi-process runs: host:port of process '
                          '0 (default: JAX_COORDINATOR_ADDRESS, or found by SLURM\'s srun)'),
      flags.DEFINE_integer('num_processes', None, 'multi-process runs: how many processes '
                           '(default: JAX_NUM_PROCESSES, or SLURM\'s task count)'),
      flags.DEFINE_integer('process_id', None, 'multi-process runs: this process, 0 … '
                           'num_processes - 1 (default: JAX_PROCESS_ID, or SLURM\'s task id)'))
  return lambda: initialize_distributed(*(flag.value for flag in defined))
