"""Time the native image store: loading an archive and unpacking a layer.

Two comparisons, alternating which tool goes first in each round:

* load: ``composer --backend native image load -i bb.tar`` into an empty
  state root against ``docker load -i bb.tar`` after ``docker rmi`` of a
  private tag (``bb.tar`` is ``docker save bb:latest``, re-tagged so that
  the shared ``bb:latest`` is never removed);
* unpack: ``ImageStore.add_layer`` of a synthetic layer (``--files`` small
  files in nested directories plus a few large ones) against GNU
  ``tar -x`` of the same tar, the floor of what any extractor can do.

Prints medians. Our extractor creates every entry relative to a directory
fd, hashes the stream for the DiffID and checks each name, so it is
expected to be slower than ``tar -x``; the figure says by how much.

    bash scripts/engines.sh start            # dockerd and bb:latest
    .venv/bin/python benchmarks/image_bench.py --rounds 5

Not a test: figures go into docs/benchmarks.md with the command used.
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _synthetic_layer(path: Path, files: int) -> None:
    with tarfile.open(path, "w") as tf:
        for i in range(files):
            data = f"file {i}\n".encode() * 20
            info = tarfile.TarInfo(f"d{i % 50}/e{i % 7}/f{i}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for i in range(4):
            data = os.urandom(8 << 20)
            info = tarfile.TarInfo(f"big/blob{i}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def _run(cmd: list[str], root: Path | None = None) -> None:
    env = {**os.environ, "COMPOSER_ROOT": str(root)} if root is not None else None
    subprocess.run(cmd, env=env, check=True, capture_output=True)


def bench_load(work: Path, rounds: int) -> dict[str, list[float]]:
    """docker load of an image whose layers the engine has (they are bb:latest's), against
    composer's load into a state root that has them too (warm) and into an empty one (cold)."""
    tag = f"composer-bench-{uuid.uuid4().hex[:8]}:1"
    _run(["docker", "tag", "bb:latest", tag])
    archive = work / "bb.tar"
    _run(["docker", "save", "-o", str(archive), tag])
    load = [sys.executable, "-m", "composer", "--backend", "native", "image", "load", "-i"]
    load.append(str(archive))
    _run(load, work / "warm")
    times: dict[str, list[float]] = {"cold": [], "warm": [], "docker": []}
    try:
        for n in range(rounds):
            actions: dict[str, Callable[[], object]] = {
                "cold": functools.partial(_run, load, work / f"cold-{n}"),
                "warm": functools.partial(_run, load, work / "warm"),
                "docker": functools.partial(_run, ["docker", "load", "-i", str(archive)]),
            }
            for key in list(actions) if n % 2 == 0 else list(reversed(actions)):
                if key == "docker":
                    _run(["docker", "rmi", tag])
                times[key].append(_timed(actions[key]))
            shutil.rmtree(work / f"cold-{n}")
    finally:
        subprocess.run(["docker", "rmi", tag], capture_output=True, check=False)
    return times


def bench_unpack(work: Path, rounds: int, files: int) -> tuple[list[float], list[float]]:
    sys.path.insert(0, str(ROOT))
    from composer.backends.native.images.store import ImageStore
    from composer.backends.native.state import StateRoot

    layer = work / "layer.tar"
    _synthetic_layer(layer, files)
    ours: list[float] = []
    theirs: list[float] = []
    for n in range(rounds):
        store = ImageStore(StateRoot(work / f"store-{n}"))
        blob = store.ingest_file(layer)
        target = work / f"tar-{n}"
        target.mkdir()

        unpack: Callable[[], object] = functools.partial(store.add_layer, blob)
        gnu_tar: Callable[[], object] = functools.partial(
            _run, ["tar", "-C", str(target), "-xf", str(layer)]
        )
        pair = [(ours, unpack), (theirs, gnu_tar)]
        for bucket, action in pair if n % 2 == 0 else reversed(pair):
            bucket.append(_timed(action))
        shutil.rmtree(work / f"store-{n}")
        shutil.rmtree(target)
    return ours, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--files", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="image-bench-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        load = bench_load(work, args.rounds)
        unpack_ours, unpack_tar = bench_unpack(work, args.rounds, args.files)
    med = statistics.median
    print(f"rounds: {args.rounds}")
    print(
        f"load bb.tar   composer warm {med(load['warm']):.3f} s   cold {med(load['cold']):.3f} s"
        f"   docker load (layers present) {med(load['docker']):.3f} s"
    )
    print(
        f"unpack {args.files} files + 32 MiB   add_layer {med(unpack_ours):.3f} s   "
        f"tar -x {med(unpack_tar):.3f} s   ratio {med(unpack_ours) / med(unpack_tar):.1f}x"
    )


if __name__ == "__main__":
    main()
