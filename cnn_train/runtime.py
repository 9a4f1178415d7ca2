"""Process set-up for the command-line entry points, before JAX starts."""
import os
import sys

HUGE_PAGES = 'glibc.malloc.hugetlb=1'
THP_SETTING = '/sys/kernel/mm/transparent_hugepage/enabled'


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
  if not sys.platform.startswith('linux') or 'glibc.malloc.hugetlb' in tunables:
    return
  try:
    with open(THP_SETTING) as f:
      if '[never]' in f.read():
        return
  except OSError:
    return
  os.environ['GLIBC_TUNABLES'] = f'{tunables}:{HUGE_PAGES}' if tunables else HUGE_PAGES
  os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
