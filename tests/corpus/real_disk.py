"""Issue 10, class 5: a submission that tries to fill the grading machine's disk.

One a1 submission, two answer cells that define a correct function and then write:
- ``odd_doubled``: 2 GiB of zeros in 8 MiB files, each far under the per-file limit
  (RLIMIT_FSIZE), in the scratch home; the write error is left to surface;
- ``rank_from_shape``: up to 100,000 empty files spread over every writable place (home, /tmp,
  /dev/shm, fastai's archive folder), for the file-count cap; its errors are swallowed, so the
  cell itself looks fine.
Before the quota (a host folder with only each file's size capped) both wrote everything and the
notebook scored full marks. With the per-submission quota each cell that exhausts it is charged:
the cell counts as failed (skipped on the replay that follows), so its exercise scores 0 and
every other exercise keeps full marks. Small limits (``env``) keep the test fast: it writes at
most 64 MiB and 2,000 files. The grader re-binds a technique exercise's code before questioning
it only from cells that ran without error, so the cell charged here stays charged.
"""
from .real import Case

FILL_BYTES = '''
def odd_doubled(xs):
    return [x * 2 for x in xs if x % 2 == 1]

from pathlib import Path
_chunk = b"\\0" * (8 << 20)
for _i in range(256):                   # 2 GiB in 8 MiB files, each far under the per-file limit
    (Path.home() / f"fill-{_i}.bin").write_bytes(_chunk)
'''

FILL_FILES = '''
def rank_from_shape(shape):
    return len(shape)

from pathlib import Path
_places = [Path("/tmp"), Path("/dev/shm"), Path.home(), Path.home() / ".fastai" / "archive"]
for _i in range(100_000):
    try:
        (_places[_i % 4] / f"f{_i}").touch()
    except OSError:
        break                           # hide the failure: the cell itself ends fine
'''

CASES = [
    Case("a1_pixel_similarity", "disk_filler", "5: fill the disk (bytes, then files)",
         answers={"odd_doubled": FILL_BYTES, "rank_from_shape": FILL_FILES},
         deserves={"odd_doubled": 0.0, "rank_from_shape": 0.0},
         env={"MNISTKIT_LIMIT_DISK_BYTES": str(64 << 20), "MNISTKIT_LIMIT_DISK_FILES": "2000"}),
]
