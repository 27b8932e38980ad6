"""Soak: the bench twice in a row; the engine's images and containers and the harness's
memory must come back to where they were.

    .venv/bin/python benchmarks/soak.py [--repeat 5] [--scenario cold] [-- extra run args]

Each run is the real CLI (`harness run`) in a child process that reports its own peak
RSS (getrusage of itself, exact, not sampled). Before and after each run the script counts
the engine's images (all, including untagged parents), dangling images, containers and
networks. Only the final images of the variants may differ (they are replaced by each
run); anything else left over is a leak and makes the script exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker

from harness.engine import private as private_engine
from harness.engine.cleanup import ancestors

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import resource, sys
from harness.cli import app
code = 0
try:
    app(args=sys.argv[2:], prog_name="harness")
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
finally:
    with open(sys.argv[1], "w") as fh:
        fh.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))
sys.exit(code)
"""


def daemons() -> int:
    """dockerd and containerd processes on the machine: a private engine (the cold pull's)
    left running would add two."""
    return len(private_engine.find(("dockerd", "containerd")))


def engine_state(client: docker.DockerClient) -> dict:
    images = client.api.images(all=True)
    finals = sorted(t for i in images for t in i.get("RepoTags") or [] if t.startswith("harness-bench/"))
    return {
        "images": len(images),
        "dangling": len(client.api.images(filters={"dangling": True}, quiet=True)),
        "containers": len(client.api.containers(all=True)),
        "networks": len(client.api.networks()),
        "daemons": daemons(),
        "final_tags": finals,
        "ids": {i["Id"] for i in images},
        "final_ids": {i["Id"] for i in images if any(
            t.startswith("harness-bench/") for t in i.get("RepoTags") or [])},
    }


def one_run(args: list[str], out: Path) -> tuple[int, int, float]:
    fd, rss_file = tempfile.mkstemp(prefix="soak-rss-")
    os.close(fd)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, rss_file, "run", *args, "--out", str(out)],
                          cwd=ROOT, stdout=subprocess.DEVNULL, check=False)
    seconds = time.perf_counter() - start
    rss = int(Path(rss_file).read_text() or 0)
    Path(rss_file).unlink()
    return proc.returncode, rss, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scenario", default="cold")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("extra", nargs="*", help="more `harness run` arguments")
    ns = parser.parse_args()
    client = docker.from_env(timeout=600)
    out = Path(tempfile.mkdtemp(prefix="harness-soak-"))
    args = ["--repeat", str(ns.repeat), "--scenario", ns.scenario, *ns.extra]
    print(f"soak: harness run {' '.join(args)}, {ns.runs} runs; results in a temporary directory")
    states = [engine_state(client)]
    s = states[0]
    print(f"before: {s['images']} images ({s['dangling']} dangling), {s['containers']} containers, "
          f"{s['networks']} networks; {s['daemons']} dockerd/containerd processes")
    rows = []
    for n in range(ns.runs):
        code, rss, seconds = one_run(args, out)
        states.append(engine_state(client))
        rows.append((n + 1, code, rss, seconds))
        s = states[-1]
        print(f"run {n + 1}: exit {code}, {seconds:.0f} s, peak RSS {rss / 1e6:.1f} MB; engine: "
              f"{s['images']} images ({s['dangling']} dangling), {s['containers']} containers, "
              f"{s['networks']} networks; {s['daemons']} dockerd/containerd processes")
    first, last = states[1], states[-1]
    allowed = ancestors(client.api, list(last["final_ids"]))
    new = (last["ids"] - states[0]["ids"]) - allowed
    leaks = []
    if new:
        leaks.append(f"{len(new)} image(s) that are not final images or their parents")
    for key in ("dangling", "containers", "networks", "daemons"):
        if last[key] > states[0][key]:
            leaks.append(f"{key}: {states[0][key]} before, {last[key]} after")
    if last["images"] != first["images"]:
        leaks.append(f"images: {first['images']} after run 1, {last['images']} after run {ns.runs}")
    rss = [r[2] for r in rows]
    growth = (rss[-1] - rss[0]) / rss[0] if rss[0] else 0.0
    print(f"peak RSS per run: {', '.join(f'{r / 1e6:.1f} MB' for r in rss)} "
          f"(last vs first {growth:+.1%})")
    print("leaks: none" if not leaks else "leaks: " + "; ".join(leaks))
    print(json.dumps({"runs": [{"run": n, "exit": c, "peak_rss_bytes": r, "seconds": round(s, 1)}
                               for n, c, r, s in rows], "leaks": leaks}))
    return 1 if leaks or any(c != 0 for _, c, _, _ in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
