"""What does the harness add to a build, against the raw `docker build --no-cache`?

    .venv/bin/python benchmarks/build_overhead.py [VARIANT ...] [--repeat N] [--docker CLI]

VARIANT defaults to multistage-alpine and three-stage (names from variants/variants.toml).
Every build is cold (no cache) on the classic builder, both ways, in the same cache state:

- raw: `docker build --no-cache --force-rm` with DOCKER_BUILDKIT=0, from the real context
  directory, with the variant's Dockerfile as the harness hands it to the engine (bases
  rewritten to the local stand-ins like harness/bench/runner.py does) written to a temporary
  file outside the repository and passed with -f. Timed: the command's wall time.
- harness: pack_context + build_image, as the runner calls them. Two times: the build
  time the harness records (`outcome.seconds`, context packing excluded) and the wall
  time of the whole call, packing included.

Both get the same target, build args and labels. Within each repetition the two ways
alternate (raw first on even repetitions, harness first on odd ones), variant by variant.
Every image a build makes is removed by id afterwards: the final image (from --iidfile for
the raw command) and the step images its output names; never a prune.

Targets: harness wall / raw <= 1.05, and harness measured / raw within 0.95..1.05. Each
ratio of medians is printed with a 95 % bootstrap interval and the median of the paired
(same repetition) ratios: an interval wider than the 5 % asked for says the repetitions
could not resolve the target, whichever side of it the ratio fell.

`--control N` adds an offline control, built N times each way like the variants: the
three-stage variant's builder stage on its own (`COPY . .`, `npm run build`: tsc and the
post-build script) on top of the variant's deps stage, which is built once beforehand with
the raw command (not timed) and removed by id at the end. The variants' `npm ci` steps
fetch from the npm registry, whose time varies far more between identical builds than
anything the harness adds; the control is a real compile of the sample app with no network,
long enough (~5 s) that the raw command's own start-up (~0.1 s, which the harness's
measured time does not hold) is a small share of it, as it is of a real build.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from docker.errors import APIError
from requests.exceptions import RequestException

from harness import engine
from harness.analysis import dockerfile
from harness.bases import resolve as bases
from harness.bench.variants import Variant, load_variants
from harness.engine.build import build_image, pack_context
from harness.errors import BuildFailed, HarnessError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VARIANTS = ("multistage-alpine", "three-stage")
CONTROL = """\
# build_overhead.py's offline control: the three-stage builder stage, on its deps stage
FROM {deps}
WORKDIR /app
COPY . .
RUN npm run build
"""
CONTROL_FROM = ("three-stage", "deps")  # the variant and stage the control builds on
WALL_TARGET = 1.05
MEASURED_BAND = (0.95, 1.05)
_STEP_IMAGE = re.compile(r"^ ?---> ([0-9a-f]{12})$")
LABEL_RUN, LABEL_VARIANT = "io.harness.run", "io.harness.variant"  # as harness/bench/runner.py labels


def prepare(client, variant, bases_mode: str, workdir: Path) -> dict:
    """The Dockerfile text the engine gets, rewritten as harness/bench/runner.py rewrites it:
    every stage up to the target, each base resolved, stand-ins substituted by FROM index."""
    if variant.problem:
        raise HarnessError(f"{variant.name}: {variant.problem}")
    text = variant.dockerfile.read_text()
    try:
        stages = dockerfile.parse(text, variant.build_args).stages_for(variant.target)
    except ValueError as exc:
        raise HarnessError(f"{variant.dockerfile.name}: {exc}") from None
    refs = [s.base for s in stages if s.needs_resolution]
    resolved = {}
    for ref in dict.fromkeys(refs):
        res = bases.resolve(client, ref, mode=bases_mode)
        if res.image_id is None:
            raise HarnessError(f"{variant.name}: base {ref}: {res.error}")
        resolved[ref] = res
    swaps = {s.index: resolved[s.base].used_ref for s in stages
             if s.needs_resolution and resolved[s.base].used_ref != s.base}
    text = dockerfile.rewrite_from(text, swaps)
    path = workdir / f"{variant.name}.Dockerfile"
    path.write_text(text)
    uses = ", ".join(f"{r} -> {res.used_ref}" for r, res in resolved.items())
    return {"variant": variant, "text": text, "path": path, "bases": uses,
            "name": f".harness.{variant.name}.Dockerfile"}


def raw_build(cli: str, job: dict, labels: dict, workdir: Path) -> tuple[float, str, list[str]]:
    """`docker build --no-cache` with the classic builder; (wall seconds, image id, step images)."""
    v = job["variant"]
    iidfile = workdir / "raw.iid"
    iidfile.unlink(missing_ok=True)
    args = [cli, "build", "--no-cache", "--force-rm", "--iidfile", str(iidfile),
            "-f", str(job["path"])]
    if v.target:
        args += ["--target", v.target]
    for key, value in v.build_args.items():
        args += ["--build-arg", f"{key}={value}"]
    for key, value in labels.items():
        args += ["--label", f"{key}={value}"]
    args.append(str(v.context))
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    start = time.perf_counter()
    proc = subprocess.run(args, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          check=False)
    seconds = time.perf_counter() - start
    steps = [m.group(1) for line in proc.stdout.splitlines() if (m := _STEP_IMAGE.match(line))]
    image_id = iidfile.read_text().strip() if iidfile.exists() else ""
    if proc.returncode != 0 or not image_id:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        raise BuildFailed(f"raw docker build of {v.name} failed: {' | '.join(tail)}", [], steps)
    return seconds, image_id, steps


def harness_build(client, job: dict, labels: dict, made: list[str]) -> tuple[float, float, str]:
    """pack_context + build_image; (wall seconds incl. packing, measured seconds, image).
    The step images are appended to `made` as the build announces them."""
    v = job["variant"]
    start = time.perf_counter()
    context = pack_context(v.context, job["text"], job["name"])
    try:
        outcome = build_image(client, context, tag=None, target=v.target,
                              build_args=v.build_args, nocache=True, labels=labels, made=made)
    finally:
        context.close()
    wall = time.perf_counter() - start
    return wall, outcome.seconds, outcome.image_id


def remove(client, image_id: str | None, steps: list[str]) -> None:
    """Our own images only, by id: the final image, then the step images the build named
    (leaf first; removing one also removes its untagged parents). Tagged images are left;
    one still used by a build's container is retried for a while."""
    pending = [*([image_id] if image_id else []), *reversed(steps)]
    deadline = time.monotonic() + 15.0
    while pending:
        left = []
        for ref in pending:
            try:
                attrs = client.api.inspect_image(ref)
                if [t for t in attrs.get("RepoTags") or [] if t != "<none>:<none>"]:
                    continue
                client.api.remove_image(attrs["Id"], force=False, noprune=False)
            except APIError as exc:
                if exc.status_code != 404 and "container" in str(exc.explanation or exc):
                    left.append(ref)
            except RequestException:
                pass
        if not left or time.monotonic() >= deadline:
            return
        pending = left
        time.sleep(0.5)


def cli_version(cli: str) -> str:
    out = subprocess.run([cli, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip()


def control_job(client, opts, known: dict, deps_tag: str, deps_steps: list[str],
                workdir: Path) -> dict:
    """The offline control's job: its deps stage built once with the raw command (untimed;
    the only step that needs the network), tagged `deps_tag` for the control's FROM."""
    name, stage = CONTROL_FROM
    source = known[name]
    deps = Variant("control-deps", "the control's deps stage", source.dockerfile, source.context,
                   target=stage)
    seconds, image_id, steps = raw_build(opts.docker, prepare(client, deps, opts.bases, workdir),
                                         {}, workdir)
    deps_steps.extend([*steps, image_id])
    client.api.tag(image_id, *deps_tag.split(":"))
    print(f"  control: {name}'s {stage} stage built once in {seconds:.2f} s (not timed), "
          f"tagged {deps_tag}", flush=True)
    (workdir / "control").mkdir()
    control_file = workdir / "control" / "control.Dockerfile"
    control_file.write_text(CONTROL.format(deps=deps_tag))
    return prepare(client, Variant("control-offline", "offline control", control_file,
                                   source.context), opts.bases, workdir)


def measure(client, opts, jobs: list[dict], workdir: Path) -> dict[str, dict[str, list[float]]] | None:
    """Every job, raw and harness alternating, repetition by repetition; the samples, or
    None when a build failed (its error printed)."""
    samples: dict[str, dict[str, list[float]]] = {}
    run_id = f"build-overhead-{os.getpid()}-{int(time.time())}"
    for job in jobs:
        print(f"  {job['variant'].name}: bases {job['bases']}", flush=True)
        samples[job["variant"].name] = {"raw": [], "wall": [], "measured": []}
    for rep in range(max(opts.repeat, opts.control)):
        for job in jobs:
            if rep >= (opts.control if job["variant"].name == "control-offline" else opts.repeat):
                continue
            name = job["variant"].name
            labels = {LABEL_RUN: run_id, LABEL_VARIANT: name}
            order = ("raw", "harness") if rep % 2 == 0 else ("harness", "raw")
            for way in order:
                image_id, steps = None, []  # steps: filled as the harness build goes
                try:
                    if way == "raw":
                        seconds, image_id, named = raw_build(opts.docker, job, labels, workdir)
                        steps.extend(named)
                        samples[name]["raw"].append(seconds)
                        shown = f"raw {seconds:7.2f} s"
                    else:
                        wall, measured, image_id = harness_build(client, job, labels, steps)
                        samples[name]["wall"].append(wall)
                        samples[name]["measured"].append(measured)
                        shown = f"harness wall {wall:7.2f} s, measured {measured:7.2f} s"
                except BuildFailed as exc:
                    steps.extend(exc.step_images)
                    print(f"error: {exc}", file=sys.stderr)
                    return None
                finally:  # on success, failure or Ctrl-C: whatever the build made
                    remove(client, image_id, steps)
                print(f"  rep {rep + 1} {name:20s} {shown}  "
                      f"(load {os.getloadavg()[0]:.2f})", flush=True)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", default=list(DEFAULT_VARIANTS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--control", type=int, default=0, metavar="N",
                        help="also build the offline control N times each way (0: none)")
    parser.add_argument("--variants-dir", type=Path, default=ROOT / "variants")
    parser.add_argument("--docker", default=shutil.which("docker") or "docker",
                        help="the docker CLI for the raw builds (default: the first on PATH)")
    parser.add_argument("--bases", default="present", choices=bases.MODES,
                        help="how base images are resolved, as `harness run --bases` (default "
                             "present: local images or stand-ins already built, never a pull)")
    opts = parser.parse_args()

    client = engine.connect()
    known = {v.name: v for v in load_variants(opts.variants_dir)}
    missing = [n for n in opts.variants if n not in known]
    if missing:
        parser.error(f"unknown variant(s) {', '.join(missing)}; known: {', '.join(known)}")
    info = engine.describe(client)
    print(f"build_overhead: {opts.repeat} repetitions (control: {opts.control}), cold (--no-cache), classic builder; "
          f"raw CLI {opts.docker} ({cli_version(opts.docker)}); engine {info['server_version']} "
          f"(API {info['api_version']}), {info['engine_cpus']} CPUs; load {os.getloadavg()[0]:.2f}",
          flush=True)

    with tempfile.TemporaryDirectory(prefix="build-overhead-") as tmp:
        workdir = Path(tmp)
        jobs = [prepare(client, known[n], opts.bases, workdir) for n in opts.variants]
        deps_tag, deps_steps = f"build-overhead/control-deps:{os.getpid()}", []
        try:
            if opts.control:
                jobs.append(control_job(client, opts, known, deps_tag, deps_steps, workdir))
            samples = measure(client, opts, jobs, workdir)
        finally:  # the deps image: its tag first (remove() leaves tagged images alone)
            if deps_steps:
                try:
                    client.api.remove_image(deps_tag)
                except APIError:
                    pass
                remove(client, None, deps_steps)
    if samples is None:
        return 1
    print()
    print(f"{'variant':20s} {'raw':>9s} {'h. wall':>9s} {'h. meas.':>9s} "
          f"{'wall/raw':>9s} {'meas./raw':>9s}  medians, s")
    verdicts = []
    for name, s in samples.items():
        if not (s["raw"] and s["wall"]):
            continue
        raw, wall, measured = (statistics.median(s[k]) for k in ("raw", "wall", "measured"))
        r_wall, r_meas = wall / raw, measured / raw
        verdicts.append((name, r_wall, r_meas))
        print(f"{name:20s} {raw:9.2f} {wall:9.2f} {measured:9.2f} {r_wall:9.3f} {r_meas:9.3f}")
        print(f"{'':20s} samples raw {_fmt(s['raw'])} | wall {_fmt(s['wall'])} "
              f"| measured {_fmt(s['measured'])}")
        for key in ("wall", "measured"):
            lo, hi = ratio_interval(s[key], s["raw"])
            paired = statistics.median(x / r for x, r in zip(s[key], s["raw"], strict=False))
            print(f"{'':20s} {key}/raw: 95 % bootstrap interval {lo:.3f}..{hi:.3f}, median of "
                  f"the paired ratios {paired:.3f}")
    print()
    for name, r_wall, r_meas in verdicts:
        print(f"{name}: wall/raw {r_wall:.3f} (target <= {WALL_TARGET}: "
              f"{'met' if r_wall <= WALL_TARGET else 'NOT met'}); measured/raw {r_meas:.3f} "
              f"(target {MEASURED_BAND[0]}..{MEASURED_BAND[1]}: "
              f"{'met' if MEASURED_BAND[0] <= r_meas <= MEASURED_BAND[1] else 'NOT met'})")
    return 0


def ratio_interval(a: list[float], b: list[float], resamples: int = 4000) -> tuple[float, float]:
    """A 95 % percentile-bootstrap interval of median(a) / median(b), each side resampled
    on its own (seeded: the same samples give the same interval). When it spans the
    target, the repetitions could not tell met from missed."""
    rng = random.Random(0)
    ratios = sorted(statistics.median(rng.choices(a, k=len(a))) /
                    statistics.median(rng.choices(b, k=len(b))) for _ in range(resamples))
    return ratios[int(0.025 * resamples)], ratios[int(0.975 * resamples) - 1]


def _fmt(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
