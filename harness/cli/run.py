"""`harness run`: build and measure the variants, then write the run's outputs."""

from __future__ import annotations

import json
import signal
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from harness.cli import progress
from harness.cli.common import (
    DEFAULT_OUT,
    DEFAULT_VARIANTS,
    ContextDir,
    OutDir,
    VariantsDir,
    err,
    fail,
    fail_for,
    load_warned,
    out,
    run_path,
)
from harness.cli.options import finished, resumed, run_options
from harness.errors import EngineUnavailable, ExitCode, HarnessError

if TYPE_CHECKING:
    from harness.bench.runner import RunOptions
    from harness.model import Run


# `harness run`'s options, declared apart to keep the command itself short.
NamesOpt = Annotated[list[str] | None, typer.Argument(help="Variant names (default: all).")]
RepeatOpt = Annotated[int, typer.Option(
    "--repeat", "-r", min=1, help="Timed builds per scenario of each variant (warm-ups not counted); every "
              "sample is kept.")]
BasesModeOpt = Annotated[str, typer.Option(
    "--bases", help="auto: present, else pull, else build a stand-in; pull: fail when a "
                    "pull fails; present: use only what is there.")]
BasesLockOpt = Annotated[Path | None, typer.Option(
    "--bases-lock", help="Record the bases used; refuse different ones on later runs.")]
UpdateLockOpt = Annotated[bool, typer.Option(
    "--update-lock", help="Accept bases that differ from --bases-lock and rewrite it.")]
AnalyzeOpt = Annotated[bool, typer.Option(
    "--analyze/--no-analyze", help="Read each image's layers: contents, waste, compressed "
                                   "estimate, shell, packages.")]
CheckOpt = Annotated[bool, typer.Option(
    "--check", help="Exit 3 when a size budget is broken (budgets from --budgets or "
                    "variants.toml).")]
BudgetsFileOpt = Annotated[Path | None, typer.Option(
    "--budgets", help="A TOML file of \\[budgets.<variant>] tables.")]
ScenarioOpt = Annotated[list[str] | None, typer.Option(
    "--scenario", "-s", help="cold, no-change, source-change, dependency-change or all "
                       "(repeatable or comma-separated).")]
WarmupOpt = Annotated[int | None, typer.Option(
    min=0, help="Uncounted builds before each scenario's counted ones (default: 1, none "
                "for cold).")]
BuilderOpt = Annotated[list[str] | None, typer.Option(
    "--builder", "-b", help="classic (the SDK), buildkit (the docker CLI) or both; the first "
                      "one's image is measured.")]
TimeoutOpt = Annotated[float | None, typer.Option(
    "--timeout", "-t", min=1, help="Seconds one build may take before it is cancelled and counted as "
                "failed.")]
RuntimeOpt = Annotated[bool, typer.Option(
    "--runtime/--no-runtime", help="Start each image (port on 127.0.0.1, memory and pid "
                                   "limits) and check that it serves.")]
PortOpt = Annotated[int | None, typer.Option(
    "--port", "-p", min=1, max=65535, help="The container port the runtime check probes (default: "
                                     "the one exposed, else 3000); a variant's port wins.")]
HealthPathOpt = Annotated[str | None, typer.Option(
    "--health-path", help="The path the runtime check polls for a 200 (default /healthz), "
                          "when the image has no HEALTHCHECK; a variant's health_path wins.")]
EnvOpt = Annotated[list[str] | None, typer.Option(
    "--env", "-e", help="KEY=VALUE for every container the runtime check starts (repeatable); "
                  "a variant's env wins.")]
BuildArgOpt = Annotated[list[str] | None, typer.Option(
    "--build-arg", help="KEY=VALUE for every variant's build (repeatable), e.g. NODE=24 for "
                        "the bundled variants' Node.js major; a variant's build_args win.")]
RegistryOpt = Annotated[bool, typer.Option(
    "--registry/--no-registry", help="Push to and pull from a loopback registry: exact "
                                     "compressed size, push and pull time.")]
ColdPullOpt = Annotated[bool, typer.Option(
    "--cold-pull/--no-cold-pull", help="With --registry: also time each pull into an empty "
                                       "engine of the harness's own (a private dockerd; "
                                       "needs root), as a host that has none of the "
                                       "layers.")]
KeepImagesOpt = Annotated[bool, typer.Option(
    "--keep-images/--no-keep-images", help="Keep each variant's final image after the "
                                           "run.")]
SecretArgOpt = Annotated[list[str] | None, typer.Option(
    "--secret-arg", help="A build arg to mask in results, logs and reports (besides names "
                         "containing TOKEN, SECRET, PASSWORD, PASSWD or API_KEY).")]
EngineOpt = Annotated[list[str] | None, typer.Option(
    "--engine", help="NAME=DOCKER_HOST of an engine to measure on (repeatable; unix://, "
                     "tcp:// with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, ssh://). Default: "
                     "DOCKER_HOST or the default socket.")]
EnginesModeOpt = Annotated[str | None, typer.Option(
    "--engines", help="With several --engine: compare (every variant on every engine, one "
                      "engine at a time; the default) or spread (each variant on one engine, "
                      "the engines at once).")]
ShardOpt = Annotated[str | None, typer.Option(
    "--shard", help="K/N: measure only the K-th of N parts of the (variant, engine) jobs, "
                    "the same split on every machine; `harness merge` joins the parts.")]
ResumeOpt = Annotated[Path | None, typer.Option(
    "--resume", help="Complete this run (a run directory, or a run id under ./results): "
                     "measure only the variants it lacks.")]


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: partial results saved, then exit 143."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def run_cmd(
    names: NamesOpt = None,
    repeat: RepeatOpt = 3,
    variants_dir: VariantsDir = DEFAULT_VARIANTS,
    context: ContextDir = None,
    out_dir: OutDir = DEFAULT_OUT,
    bases_mode: BasesModeOpt = "auto",
    bases_lock: BasesLockOpt = None,
    update_lock: UpdateLockOpt = False,
    analyze: AnalyzeOpt = True,
    check: CheckOpt = False,
    budgets_file: BudgetsFileOpt = None,
    scenario: ScenarioOpt = None,
    warmup: WarmupOpt = None,
    builder: BuilderOpt = None,
    timeout: TimeoutOpt = None,
    runtime_check: RuntimeOpt = True,
    port: PortOpt = None,
    health_path: HealthPathOpt = None,
    env: EnvOpt = None,
    build_arg: BuildArgOpt = None,
    use_registry: RegistryOpt = True,
    cold_pull: ColdPullOpt = True,
    keep_images: KeepImagesOpt = True,
    secret_arg: SecretArgOpt = None,
    engine_spec: EngineOpt = None,
    engines_mode: EnginesModeOpt = None,
    shard: ShardOpt = None,
    resume: ResumeOpt = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print a JSON summary on stdout; the tables and notes go to stderr.")] = False,
) -> None:
    """Build and measure the variants; write results.json, results.csv, table.md and charts."""
    given = run_options(names=names, repeat=repeat, variants_dir=variants_dir, context=context,
                        out_dir=out_dir, bases_mode=bases_mode, bases_lock=bases_lock,
                        update_lock=update_lock, analyze=analyze, scenario=scenario,
                        warmup=warmup, builder=builder, timeout=timeout, runtime=runtime_check,
                        registry=use_registry, cold_pull=cold_pull, keep_images=keep_images,
                        secret_arg=secret_arg, port=port, health_path=health_path,
                        env=env, build_arg=build_arg, engines=engine_spec,
                        engines_mode=engines_mode, shard=shard)
    ready = _prepare(given, resume, check, budgets_file)
    run_dir, record, code = _execute(ready)  # the typed run, as results.json holds it
    if ready.manifest_warnings:
        code = 1  # the manifest was not used as written: the nightly must notice
    _write_outputs(record, run_dir, ready.opts.out, err if as_json else out)
    if check:
        check_code = _check_budgets(record, budgets_file or ready.variants_dir, ready.baseline,
                                    err if as_json else out)
        code = code or check_code
    if as_json:
        typer.echo(json.dumps(summary(record, run_dir, code), indent=2))
    raise typer.Exit(code)


@dataclass
class _Ready:
    """A run about to start: its options, variants, engines and jobs."""
    opts: RunOptions
    variants: list
    variants_dir: Path
    manifest_warnings: list[str]
    baseline: dict | None
    client: object  # the first engine's
    targets: list = field(default_factory=list)  # multi.Target, one per engine
    clients: dict = field(default_factory=dict)  # engine name -> its client
    jobs: list = field(default_factory=list)  # shards.Job: what this run measures


def _prepare(given: RunOptions, resume: Path | None, check: bool,
             budgets_file: Path | None) -> _Ready:
    """Everything that can fail before a build does, each failure one line and exit 1."""
    try:
        if resume is not None and given.engines:
            raise HarnessError("--resume completes a run on the engine it was measured on; "
                               "leave out --engine")
        opts = resumed(run_path(resume, given.out), given) if resume is not None else given
        chosen = opts.selection
        variants, warnings = load_warned(chosen.variants_dir, chosen.context, list(chosen.names))
        if not variants:
            raise HarnessError(f"no variants found in {chosen.variants_dir}; `harness init "
                               f"APP_DIR --out {chosen.variants_dir}` writes five for your app")
        baseline = None
        if check:
            from harness.track import budgets

            budgets.load_budgets(budgets_file or chosen.variants_dir)  # a bad budget fails before building
            baseline = _baseline(opts.out)
        targets = _targets(opts)
        jobs, opts = _jobs(opts, variants, targets)
        targets = [t for t in targets if any(j.engine == t.name for j in jobs)]  # with work
        _check_buildkit(opts, targets)
        clients = _connect(targets)
    except HarnessError as exc:
        raise fail_for(exc) from None
    measured = {j.variant for j in jobs}
    return _Ready(finished(opts, warnings), [v for v in variants if v.name in measured],
                  chosen.variants_dir, warnings, baseline, next(iter(clients.values())),
                  targets, clients, jobs)


def _check_buildkit(opts: RunOptions, targets: list) -> None:
    """`--builder buildkit` needs a BuildKit CLI for every engine measured on."""
    if "buildkit" not in opts.builders:
        return
    from harness.engine.buildkit import available

    for t in targets:
        problem = available(t.host)
        if problem:
            where = f" on engine {t.name}" if t.host else ""
            raise HarnessError(f"--builder buildkit{where}: {problem}")


def _targets(opts: RunOptions) -> list:
    """The engines to measure on: each --engine, else the default one."""
    from harness.bench.multi import Target
    from harness.bench.shards import DEFAULT_ENGINE
    from harness.engine.discovery import parse_spec

    targets: list[Target] = []
    for spec in opts.engines:
        try:
            ref = parse_spec(spec)
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        if any(t.name == ref.name for t in targets):
            raise BadInput(f"engine {ref.name}: named twice in --engine")
        targets.append(Target(ref.name, ref.host))
    return targets or [Target(DEFAULT_ENGINE, None)]


def _jobs(opts: RunOptions, variants: list, targets: list) -> tuple[list, RunOptions]:
    """The (variant, engine) jobs of this run, `--shard` applied; and the options with the
    run's whole plan recorded. Balanced by the history's medians when there are some."""
    from dataclasses import replace

    from harness import store
    from harness.bench import shards
    from harness.bench.multi import SPREAD

    names, engines = [v.name for v in variants], [t.name for t in targets]
    history, _ = store.read_history(opts.out / store.HISTORY_FILE)
    weights = shards.weights_from_history(history)
    jobs = (shards.spread(names, engines, weights) if opts.engines_mode == SPREAD
            else shards.jobs_of(names, engines))
    if opts.shard:
        shard = shards.parse(opts.shard)
        jobs = shards.select(jobs, shard, weights)
        if not jobs:
            raise BadInput(f"--shard {shard}: no work in this shard ({len(names)} variant(s) "
                           f"on {len(engines)} engine(s) over {shard.count} shards)")
        # Recorded: `--resume` completes these, whatever the history later says.
        opts = replace(opts, selection=replace(opts.selection, names=tuple(
            dict.fromkeys(j.variant for j in jobs))))
    return jobs, replace(opts, planned=tuple(names))


def _connect(targets: list) -> dict:
    """A client of every engine, before any build: an engine that does not answer is named
    in one line."""
    from harness import engine

    clients = {}
    for t in targets:
        try:
            clients[t.name] = engine.connect(host=t.host)
        except EngineUnavailable as exc:
            if t.host is None:
                raise
            raise BadInput(f"engine {t.name}: {exc}") from None
    return clients


class BadInput(HarnessError):
    """A bad --engine or --shard: exit 2."""


def _baseline(out_dir: Path) -> dict | None:
    """The latest run, against which budgets' max_growth is checked."""
    from harness import store

    if not (out_dir / "latest").exists():
        return None
    try:
        return store.load(out_dir / "latest")
    except HarnessError as exc:
        err.print(f"note: no baseline for max_growth: {exc}", highlight=False)
        return None


def _workload(ready: _Ready) -> list:
    """The builds ahead, weighted by the medians of the history beside the results."""
    from harness import store
    from harness.bench.estimate import workload

    opts = ready.opts
    history, _ = store.read_history(opts.out / store.HISTORY_FILE)
    return workload([v.name for v in ready.variants], tuple(opts.scenarios), opts.repeat,
                    opts.warmup, len(opts.builders), history)


def _execute(ready: _Ready) -> tuple[Path, Run, int]:
    """The bench, with a progress line; Ctrl-C or SIGTERM keeps the partial results."""
    from harness.bench import runner

    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if len(ready.clients) > 1:
            return _execute_engines(ready)
        port = _named_port(ready)
        if not sys.stderr.isatty():  # a log: one line per build, a line every 30 s at least
            plain = progress.PlainProgress(sys.stderr)
            try:
                return runner.execute(ready.client, ready.variants, ready.opts, plain, port=port)
            finally:
                plain.close()
        with progress.bar(err) as shown:
            overall = progress.BarProgress(shown, _workload(ready))
            return runner.execute(ready.client, ready.variants, ready.opts, overall, port=port)
    except EngineUnavailable as exc:
        raise fail(str(exc), ExitCode.NO_ENGINE) from None
    except HarnessError as exc:  # mid-run: what was measured is saved, the run is not whole
        raise fail(str(exc), ExitCode.FAILED) from None
    except KeyboardInterrupt as exc:
        err.print("interrupted: partial results saved", highlight=False)
        raise typer.Exit(143 if isinstance(exc, Terminated) else ExitCode.INTERRUPTED) from None


def _named_port(ready: _Ready):
    """One --engine: that engine, recorded by its name and host; None: the default one."""
    t = ready.targets[0]
    if t.host is None:
        return None
    from harness.bench.engine_port import DockerEngine

    return DockerEngine(ready.client, host=t.host, name=t.name)


def _execute_engines(ready: _Ready) -> tuple[Path, Run, int]:
    """Several engines: one plain progress line per build, each naming its engine."""
    from harness.bench import multi

    opened: list = []

    def progress_for(target):
        plain = progress.PlainProgress(sys.stderr)
        opened.append(plain)
        return multi.PrefixProgress(plain, target.name)

    try:
        return multi.execute(ready.targets, ready.jobs, ready.variants, ready.opts,
                             ready.opts.engines_mode or multi.COMPARE,
                             lambda t: ready.clients[t.name], progress_for)
    finally:
        for plain in opened:
            plain.close()


def summary(run: Run, run_dir: Path, code: int) -> dict:
    """What `harness run --json` prints: the run, and each variant's headline figures."""
    def medians(v) -> dict:
        return {name: statistics.median(s) for name, s in v.build_samples(
            run.settings.scenario).items() if s}

    return {"run_id": run.run_id, "run_dir": str(run_dir), "exit_code": int(code),
            "engine": run.engine.name, "variants": [
                {"name": v.name, "label": v.label, "engine": v.engine_name or run.engine.name,
                 "status": v.status, "error": v.error,
                 "size_bytes": v.image.size_bytes if v.image else None,
                 "layer_count": v.image.layer_count if v.image else None,
                 "compressed_size_bytes": v.compressed_size_bytes,
                 "build_seconds_median": medians(v),
                 "runtime": v.runtime.status if v.runtime else None}
                for v in run.variants]}


def _write_outputs(record: Run, run_dir: Path, out_dir: Path, console=None) -> None:
    from harness import store
    from harness.report.markdown import table_lines
    from harness.report.verdict import verdict
    from harness.report.writer import write_outputs

    console = console or out  # stderr under --json: stdout holds the summary alone
    written = write_outputs(record, run_dir)
    store.point_latest(out_dir, run_dir)
    # The article's table and the answer; the rest is in report.md and index.html.
    console.print("\n".join(table_lines(record)), highlight=False, markup=False)
    console.print()
    console.print(verdict(record.primary()).why, highlight=False, markup=False)
    console.print()
    for path in (run_dir / store.RESULTS_FILE, written.csv, written.build_times_csv,
                 written.table, written.report, *written.charts, written.html):
        console.print(f"wrote {path}", highlight=False)
    console.print(f"latest -> {out_dir / 'latest'}", highlight=False)


def _check_budgets(record: Run, budgets_source: Path, baseline: dict | None,
                   console=None) -> int:
    from harness.track import budgets

    lines, code = budgets.check_main(record, budgets_source, baseline)
    for line in lines:
        (console or out).print(line, highlight=False, markup=False)
    return code
