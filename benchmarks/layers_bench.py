"""How fast is the layer analysis against a plain read of the same `docker save` stream, how
much memory does it take, and how does it compare with dive, on each engine.

    .venv/bin/python benchmarks/layers_bench.py IMAGE [--engine NAME=DOCKER_HOST ...]
                                               [--repeat N] [--copy-from NAME]

Each engine (default: the one DOCKER_HOST or the default socket names) is measured on IMAGE;
`--copy-from NAME` first copies IMAGE from that engine (`docker save` there, `docker load`
here) where it is missing, so one build serves every engine. Each repetition runs, in a
shuffled order (seeded) after the disk is synced and the machine left alone SETTLE_SECONDS:
- read: the save stream through the SDK's public `get_image`, nothing done to it (the floor
  of any reader of the stream);
- contents: analyze_image without the compressed estimate (what dive does: the target);
- analysis: analyze_image with the estimate (what `harness run` does);
- dive: `dive IMAGE --source docker --ci --json` where dive reads that engine's archive.
Each runs in a fresh process that reports its wall time, the time its first byte came, its
peak RSS (VmHWM) and CPU seconds. Medians are printed, and the ratios against the read of
the same repetition. Targets: contents <= 1.5 x read, peak RSS <= 150 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import docker  # noqa: E402

TARGETS = {"contents": 1.5, "rss_mb": 150}
SETTLE_SECONDS = 3
CHUNK = 1 << 20


def peak_rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(mode: str, image: str, host: str) -> None:
    """One step in this process; prints its figures as JSON."""
    from harness.analysis import layers

    client = docker.DockerClient(base_url=host, timeout=600)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    first = None
    extra = {}
    if mode == "read":
        streamed = 0
        for chunk in client.api.get_image(image, chunk_size=CHUNK):
            first = first or time.perf_counter()
            streamed += len(chunk)
        extra["bytes"] = streamed
    else:
        result = layers.analyze_image(client, image, estimate_compressed=mode == "analysis")
        first = start + result["timings"]["first_byte"]
        extra = {"bytes": result["saved_bytes_streamed"], "layout": result["archive_layout"],
                 "files": result["file_count"], "size_bytes": result["layers_size_bytes"]}
    end = time.perf_counter()
    after = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": end - start, "first_byte": first - start, "peak_rss_bytes": peak_rss_bytes(),
                      "cpu_seconds": after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime,
                      **extra}))


def run_child(mode: str, image: str, host: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, image, "--host", host],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_dive(image: str, host: str) -> dict | None:
    dive = shutil.which("dive", path=str(Path(sys.executable).parent)) or shutil.which("dive")
    if not dive:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        done = subprocess.run([dive, image, "--source", "docker", "--ci", "--json", f"{tmp}/d.json"],
                              capture_output=True, env={**os.environ, "DOCKER_HOST": host})
        seconds = time.perf_counter() - start
        if done.returncode != 0 or not Path(f"{tmp}/d.json").exists():
            return {"error": (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()[-1:]}
    return {"seconds": seconds}


def settle() -> None:
    os.sync()
    time.sleep(SETTLE_SECONDS)


def copy_image(image: str, source: docker.DockerClient, target: docker.DockerClient) -> None:
    """IMAGE from one engine into another through a save and a load (no registry needed)."""
    try:
        target.api.inspect_image(image)
        return
    except docker.errors.ImageNotFound:
        pass
    with tempfile.TemporaryFile() as tmp:
        for chunk in source.api.get_image(image, chunk_size=CHUNK):
            tmp.write(chunk)
        tmp.seek(0)
        for message in target.api.load_image(tmp):
            if "error" in message:
                raise SystemExit(f"loading {image}: {message['error']}")
    if ":" in image and not image.startswith("sha256:"):
        repo, tag = image.rsplit(":", 1)
        source_id = source.api.inspect_image(image)["Id"]
        try:
            target.api.inspect_image(image)
        except docker.errors.ImageNotFound:
            target.api.tag(source_id, repo, tag)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def bench(name: str, host: str, image: str, repeat: int, rng: random.Random) -> dict:
    client = docker.DockerClient(base_url=host, timeout=600)
    version = client.version()
    info = client.info()
    print(f"\n## {name}: {host}, {version.get('Version')} (API {version.get('ApiVersion')}), "
          f"driver {info.get('Driver')}")
    run_child("read", image, host)  # warm-up, untimed: the first export is slower
    rounds = []
    for i in range(repeat):
        steps = ["read", "contents", "analysis", "dive"]
        rng.shuffle(steps)
        got = {}
        for step in steps:
            settle()
            got[step] = run_dive(image, host) if step == "dive" else run_child(step, image, host)
        rounds.append(got)
        dive = got["dive"] or {}
        print(f"  round {i + 1} ({', '.join(steps)}): read {got['read']['seconds']:.2f} s, "
              f"contents {got['contents']['seconds']:.2f} s, analysis {got['analysis']['seconds']:.2f} s, "
              f"dive {dive.get('seconds', float('nan')):.2f} s; load {os.getloadavg()[0]:.2f}")
    read = [r["read"]["seconds"] for r in rounds]
    contents = [r["contents"]["seconds"] for r in rounds]
    analysis = [r["analysis"]["seconds"] for r in rounds]
    dives = [r["dive"]["seconds"] for r in rounds if r["dive"] and "seconds" in r["dive"]]
    paired = [r["contents"]["seconds"] / r["read"]["seconds"] for r in rounds]
    rss = max(r[s]["peak_rss_bytes"] for r in rounds for s in ("contents", "analysis")) / 1e6
    summary = {
        "engine": name, "version": version.get("Version"), "driver": info.get("Driver"),
        "layout": rounds[0]["contents"]["layout"], "stream_bytes": rounds[0]["read"]["bytes"],
        "files": rounds[0]["contents"]["files"], "size_bytes": rounds[0]["contents"]["size_bytes"],
        "read_s": median(read), "contents_s": median(contents), "analysis_s": median(analysis),
        "dive_s": median(dives) if dives else None,
        "dive_error": None if dives else (rounds[0]["dive"] or {}).get("error", "dive not installed"),
        "contents_over_read": median(contents) / median(read), "paired": median(paired),
        "analysis_over_read": median(analysis) / median(read),
        "contents_over_dive": median(contents) / median(dives) if dives else None,
        "first_byte_s": median([r["read"]["first_byte"] for r in rounds]),
        "contents_cpu_s": median([r["contents"]["cpu_seconds"] for r in rounds]),
        "peak_rss_mb": rss,
    }
    print(f"  medians of {repeat}: read {summary['read_s']:.2f} s (first byte {summary['first_byte_s']:.2f} s), "
          f"contents {summary['contents_s']:.2f} s = {summary['contents_over_read']:.2f} x read "
          f"(paired {summary['paired']:.2f}; target <= {TARGETS['contents']}), "
          f"analysis {summary['analysis_s']:.2f} s = {summary['analysis_over_read']:.2f} x read, "
          + (f"dive {summary['dive_s']:.2f} s (contents {summary['contents_over_dive']:.2f} x dive)"
             if dives else f"dive: {summary['dive_error']}")
          + f"; peak RSS {rss:.1f} MB (target <= {TARGETS['rss_mb']})")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image")
    parser.add_argument("--engine", action="append", default=[], help="NAME=DOCKER_HOST (repeatable)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--copy-from", help="an --engine NAME that has IMAGE: copy it to the others")
    parser.add_argument("--json", help="write the summaries here")
    parser.add_argument("--child")
    parser.add_argument("--host")
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.image, args.host)
    engines = dict(item.split("=", 1) for item in args.engine) or {
        "default": os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")}
    if args.copy_from:
        source = docker.DockerClient(base_url=engines[args.copy_from], timeout=600)
        for name, host in engines.items():
            if name != args.copy_from:
                copy_image(args.image, source, docker.DockerClient(base_url=host, timeout=600))
    rng = random.Random(19)
    summaries = [bench(name, host, args.image, args.repeat, rng) for name, host in engines.items()]
    if args.json:
        Path(args.json).write_text(json.dumps(summaries, indent=2) + "\n")
    met = all(s["contents_over_read"] <= TARGETS["contents"] and s["peak_rss_mb"] <= TARGETS["rss_mb"]
              for s in summaries)
    print("\ntargets " + ("met" if met else "NOT met") + " on every engine measured")


if __name__ == "__main__":
    main()
