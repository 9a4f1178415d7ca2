"""The checked listing of an ImageFolder tree: what it keeps and skips, and its cache."""
import io
import json
import os
import time

import numpy as np
import pytest
from PIL import Image

from cnn_train import folder_listing

SETTLED = []  # the folder times given so far


def jpeg(seed=0, size=8):
  buffer = io.BytesIO()
  pixels = np.random.default_rng(seed).integers(0, 255, (size, size, 3), np.uint8)
  Image.fromarray(pixels).save(buffer, 'JPEG')
  return buffer.getvalue()


def settle(root):
  """Date every folder of the tree about an hour back (a tree copied a while ago; older than the
  racy window), a second later at each call, as the times of folders changed since would be."""
  SETTLED.append(time.time() - 3600 + len(SETTLED))
  for folder, _, _ in os.walk(root):
    os.utime(folder, (SETTLED[-1], SETTLED[-1]))


@pytest.fixture
def tree(tmp_path, monkeypatch):
  """train/{ant,bee}: 3 and 2 images, one truncated, a .gif, a .txt, a hidden file, a subfolder."""
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
  root = tmp_path / 'tree'
  for name in ('ant', 'bee'):
    (root / 'train' / name).mkdir(parents=True)
  (root / 'train' / 'ant' / 'b.JPEG').write_bytes(jpeg(1))
  (root / 'train' / 'ant' / 'a.jpg').write_bytes(jpeg(2))
  buffer = io.BytesIO()
  Image.new('RGB', (4, 4)).save(buffer, 'PNG')
  (root / 'train' / 'ant' / 'c.png').write_bytes(buffer.getvalue())
  (root / 'train' / 'bee' / 'd.jpeg').write_bytes(jpeg(3))
  (root / 'train' / 'bee' / 'e.jpg').write_bytes(jpeg(4)[:100])  # an interrupted copy
  (root / 'train' / 'bee' / 'f.gif').write_bytes(b'GIF89a')
  (root / 'train' / 'bee' / 'notes.txt').write_text('bees')
  (root / 'train' / 'bee' / '.DS_Store').write_bytes(b'\0')
  (root / 'train' / 'bee' / 'more').mkdir()
  settle(root)
  return root


def listing(root):
  """split_files as a fresh start calls it (the in-process memo cleared)."""
  folder_listing.split_files.cache_clear()
  classes = folder_listing.classes(str(root), 'train')
  paths, labels = folder_listing.split_files(str(root), 'train', classes)
  return [os.path.relpath(p, root / 'train') for p in paths], list(labels)


@pytest.fixture
def checks(monkeypatch):
  """The files read by the listing, in the order of reading."""
  read, check = [], folder_listing._check
  monkeypatch.setattr(folder_listing, '_check', lambda path: read.append(path) or check(path))
  return read


def test_complete_images_sorted_and_the_rest_counted(tree, checks, capsys):
  assert listing(tree) == (['ant/a.jpg', 'ant/b.JPEG', 'ant/c.png', 'bee/d.jpeg'], [0, 0, 0, 1])
  assert len(checks) == 5  # every image once, nothing else
  root = tree / 'train' / 'bee'
  assert capsys.readouterr().err == (
      f"warning: folder dataset {tree}: skipped 3 of 7 files of split 'train': 2 not JPEG or "
      f"PNG (1 .gif, 1 .txt: {root}/f.gif, {root}/notes.txt); 1 empty or incomplete images "
      f"({root}/e.jpg)\n")


def test_a_second_start_reads_no_file_and_warns_the_same(tree, checks, capsys):
  first = listing(tree)
  warning = capsys.readouterr().err
  checks.clear()
  assert listing(tree) == first
  assert checks == []
  assert capsys.readouterr().err == warning
  cache = json.loads(open(folder_listing.cache_path(str(tree), 'train')).read())
  assert cache['root'] == str(tree) and sorted(cache['folders']) == ['ant', 'bee']


def test_only_new_and_changed_files_are_checked_again(tree, checks, capsys):
  listing(tree)
  checks.clear()
  bee = tree / 'train' / 'bee'
  (bee / 'g.jpg').write_bytes(jpeg(5))                # a new file
  (bee / 'e.jpg').write_bytes(jpeg(4))                # the interrupted copy, finished
  os.remove(tree / 'train' / 'ant' / 'a.jpg')         # a removed file
  settle(tree)
  assert listing(tree) == (['ant/b.JPEG', 'ant/c.png', 'bee/d.jpeg', 'bee/e.jpg', 'bee/g.jpg'],
                           [0, 0, 1, 1, 1])
  assert sorted(os.path.basename(p) for p in checks) == ['e.jpg', 'g.jpg']
  assert 'skipped 2 of 7 files' in capsys.readouterr().err  # the .gif and the .txt
  # A file replaced by a rename (rsync's way): the folder changed, the file's size did too.
  checks.clear()
  (tree / 'new.tmp').write_bytes(jpeg(6, size=32))
  os.replace(tree / 'new.tmp', bee / 'd.jpeg')
  settle(tree)
  listing(tree)
  assert [os.path.basename(p) for p in checks] == ['d.jpeg']


def test_a_folder_changed_just_before_the_listing_is_listed_again(tree, checks):
  ant = tree / 'train' / 'ant'
  os.utime(ant)  # now: a change within its time's resolution may still follow, unseen
  listing(tree)
  listed = os.stat(ant)
  (ant / 'h.jpg').write_bytes(jpeg(7))
  os.utime(ant, ns=(listed.st_atime_ns, listed.st_mtime_ns))  # the same time as when listed
  checks.clear()
  assert 'ant/h.jpg' in listing(tree)[0]
  assert [os.path.basename(p) for p in checks] == ['h.jpg']


def test_a_cache_that_cannot_be_written_is_one_warning(tree, monkeypatch, capsys):
  blocker = tree.parent / 'blocker'
  blocker.write_text('a file where the cache folder would be')
  monkeypatch.setenv('XDG_CACHE_HOME', str(blocker))
  assert listing(tree)[1] == [0, 0, 0, 1]
  lines = capsys.readouterr().err.splitlines()
  assert len(lines) == 2 and lines[0].startswith('warning: cannot keep the checked listing of ')


def test_a_damaged_cache_is_ignored(tree, checks):
  first = listing(tree)
  path = folder_listing.cache_path(str(tree), 'train')
  with open(path, 'w') as f:
    f.write('{"version": 1, "folders": {"ant": ')  # cut short
  checks.clear()
  assert listing(tree) == first and len(checks) == 5
