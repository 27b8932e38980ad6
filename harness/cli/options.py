"""The command line's arguments -> bench.options.RunOptions, in one place. What a run
records of its options, and reads back on `--resume`, is in bench.options."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from harness.bench.options import RunOptions, Selection, options_from_settings

BUILDERS = ("classic", "buildkit")


def run_options(*, names: list[str] | None, repeat: int, variants_dir: Path, context: Path | None,
                out_dir: Path, bases_mode: str, bases_lock: Path | None, update_lock: bool,
                analyze: bool, scenario: list[str] | None, warmup: int | None,
                builder: list[str] | None, timeout: float | None, runtime: bool, registry: bool,
                cold_pull: bool, keep_images: bool, secret_arg: list[str] | None,
                port: int | None = None, health_path: str | None = None,
                env: list[str] | None = None, build_arg: list[str] | None = None,
                engines: list[str] | None = None, engines_mode: str | None = None,
                shard: str | None = None) -> RunOptions:
    """`harness run`'s options as given; a bad value is a usage error (exit 2)."""
    from harness.bases.resolve import MODES
    from harness.bench import scenarios
    from harness.errors import HarnessError

    if bases_mode not in MODES:
        raise typer.BadParameter(f"must be one of {', '.join(MODES)}", param_hint="--bases")
    if out_dir.exists() and not out_dir.is_dir():
        raise typer.BadParameter(f"{out_dir} exists and is not a directory", param_hint="--out")
    try:
        chosen = scenarios.parse(scenario)
    except HarnessError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scenario") from None
    return RunOptions(
        repeat=repeat, out=out_dir, bases_mode=bases_mode, bases_lock=bases_lock,
        update_lock=update_lock, analyze=analyze, scenarios=tuple(chosen), warmup=warmup,
        builders=tuple(parse_builders(builder)), timeout=timeout, runtime=runtime,
        registry=registry, cold_pull=cold_pull, keep_images=keep_images,
        secret_args=tuple(secret_arg or ()),
        selection=Selection(variants_dir, context, tuple(names or ())),
        port=port, health_path=parse_health_path(health_path), env=parse_env(env),
        build_args=parse_env(build_arg, "--build-arg"), shard=parse_shard(shard),
        engines=tuple(engines or ()), engines_mode=parse_engines_mode(engines_mode, engines))


def parse_shard(value: str | None) -> str | None:
    """`--shard K/N`, checked (1 <= K <= N) and written K/N."""
    from harness.bench import shards

    if value is None:
        return None
    try:
        return str(shards.parse(value))
    except ValueError as exc:
        raise typer.BadParameter(str(exc).partition(": ")[2], param_hint="--shard") from None


def parse_engines_mode(value: str | None, engines: list[str] | None) -> str | None:
    """`--engines compare|spread`; compare when several engines are given without it."""
    from harness.bench.multi import COMPARE, MODES

    if value is not None and value not in MODES:
        raise typer.BadParameter(f"{value!r}: compare or spread", param_hint="--engines")
    if len(engines or ()) < 2:
        if value is not None:
            raise typer.BadParameter(f"{value} needs two or more --engine",
                                     param_hint="--engines")
        return None
    return value or COMPARE


def parse_health_path(value: str | None) -> str | None:
    """`--health-path`, checked like a variant's health_path."""
    from harness.bench.variants import health_path_problem

    if value is not None and health_path_problem(value):
        raise typer.BadParameter(health_path_problem(value), param_hint="--health-path")
    return value


def parse_env(values: list[str] | None, option: str = "--env") -> dict[str, str]:
    """`--env KEY=VALUE` (or `--build-arg`) values (repeatable; a later KEY wins) as a
    mapping."""
    from harness.bench.variants import env_key_problem

    env: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or env_key_problem(key):
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=option)
        env[key] = value
    return env


def parse_builders(values: list[str] | None) -> list[str]:
    """`--builder` values (repeatable, comma-separated, `both`) in order, without repeats."""
    chosen: list[str] = []
    for value in values or ["classic"]:
        for name in (v.strip() for v in value.split(",")):
            for n in list(BUILDERS) if name == "both" else [name]:
                if n not in BUILDERS:
                    raise typer.BadParameter(f"unknown builder {n!r}: classic, buildkit or both",
                                             param_hint="--builder")
                if n not in chosen:
                    chosen.append(n)
    return chosen


def resumed(run_dir: Path, given: RunOptions) -> RunOptions:
    """The options that complete `run_dir` (a run directory or its results.json): the run's
    own settings, written beside it."""
    from harness import store
    from harness.errors import HarnessError

    previous = store.load_run(run_dir)  # HarnessError when there is no run to complete
    if previous.merged_from or len(previous.settings.engines or ()) > 1:
        raise HarnessError(f"{run_dir}: a run of several engines or a merge of runs; --resume "
                           f"completes a run of one engine (resume its parts, then merge)")
    run_dir = run_dir if run_dir.is_dir() else run_dir.parent
    opts = options_from_settings(previous.settings,
                                 replace(given, resume=run_dir, out=run_dir.parent))
    if previous.settings.engines and previous.engine.host:  # one --engine: the same engine
        opts = replace(opts, engines=(f"{previous.settings.engines[0]}={previous.engine.host}",))
    if previous.settings.shard:
        # The shard's own variants, not a new split: the history beside it has grown since.
        opts = replace(opts, shard=None)  # settings.names holds the shard's variants
    return opts


def finished(opts: RunOptions, manifest_warnings: list[str]) -> RunOptions:
    """The options a run starts with: a cold pull only with the registry, and what was wrong
    with variants.toml recorded."""
    return replace(opts, cold_pull=opts.registry and opts.cold_pull,
                   manifest_warnings=tuple(manifest_warnings))
