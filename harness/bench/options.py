"""How a run is measured: `RunOptions`, and the `model.Settings` a run records of them.

`settings_of` writes the settings into the run; `options_from_settings` reads them back for
`--resume`, so a completed run is measured one way throughout. Both go through the typed
model: no settings key is spelt anywhere else.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.analysis import secrets
from harness.bench import scenarios
from harness.bench.variants import Variant
from harness.model import Settings

DEFAULT_HEALTH_PATH = "/healthz"  # harness.engine.runtime's, without importing the engine


@dataclass(frozen=True)
class Selection:
    """Which variants a run measures: recorded, so that `--resume` measures the same ones."""
    variants_dir: Path | None = None
    context: Path | None = None
    names: tuple[str, ...] = ()  # empty: all of them


@dataclass
class RunOptions:
    repeat: int = 3
    out: Path = Path("results")
    bases_mode: str = "auto"
    bases_lock: Path | None = None
    update_lock: bool = False
    analyze: bool = True  # read each image's layers: contents, waste, compressed estimate
    scenarios: tuple[str, ...] = (scenarios.COLD,)  # the CLI's default is all four
    warmup: int | None = None  # uncounted builds per scenario (None: 1, none for cold)
    builders: tuple[str, ...] = ("classic",)  # the first one's image is the one measured
    timeout: float | None = None  # seconds per build
    runtime: bool = False  # start each image and check that it serves
    registry: bool = False  # push to and pull from a loopback registry: exact compressed size
    cold_pull: bool = False  # with registry: also pull into an empty engine of our own
    keep_images: bool = True  # keep each variant's final image after the run
    secret_args: tuple[str, ...] = ()  # masked too, besides harness.secrets.SECRET_WORDS
    resume: Path | None = None  # a run directory to complete instead of starting a new one
    selection: Selection = field(default_factory=Selection)  # recorded, for --resume
    manifest_warnings: tuple[str, ...] = ()  # what was wrong with variants.toml
    # The runtime check's defaults for every variant; a variant's own settings win.
    port: int | None = None  # container port (None: the one exposed, else 3000)
    health_path: str | None = None  # None: /healthz
    env: dict[str, str] = field(default_factory=dict)  # extra environment of each container
    # Build args of every variant (`--build-arg NODE=24`); a variant's own build_args win.
    build_args: dict[str, str] = field(default_factory=dict)
    shard: str | None = None  # `--shard K/N`, as given (recorded; the CLI picks the jobs)
    planned: tuple[str, ...] = ()  # every variant of the run before a shard took its part
    engines: tuple[str, ...] = ()  # `--engine NAME=HOST`s (empty: the default engine alone)
    engines_mode: str | None = None  # "compare" or "spread" with several engines


@dataclass(frozen=True)
class Probe:
    """How one variant's runtime check starts and probes its image: runtime.check's
    keyword arguments."""
    port: int | None = None
    health_path: str = DEFAULT_HEALTH_PATH
    expect_status: int | None = None  # None: 200
    env: dict[str, str] = field(default_factory=dict)
    command: tuple[str, ...] | None = None

    def check_kwargs(self) -> dict:
        return {"port": self.port, "health_path": self.health_path,
                "expect_status": self.expect_status, "env": dict(self.env),
                "command": list(self.command) if self.command else None}


def probe_for(variant: Variant, opts: RunOptions) -> Probe | None:
    """The variant's runtime check: its own settings, else the run's, else the defaults;
    None when it is not checked (`runtime = false`, or the run's --no-runtime)."""
    if not (opts.runtime and variant.runtime):
        return None
    return Probe(port=variant.port if variant.port is not None else opts.port,
                 health_path=variant.health_path or opts.health_path or DEFAULT_HEALTH_PATH,
                 expect_status=variant.expect_status, env={**opts.env, **variant.env},
                 command=variant.command)


def settings_of(opts: RunOptions) -> Settings:
    """The settings a run records."""
    s = opts.selection
    return Settings(
        repeat=opts.repeat, builder=opts.builders[0], builders=list(opts.builders),
        scenario=opts.scenarios[0], scenarios=list(opts.scenarios), warmup=opts.warmup,
        timeout=opts.timeout, runtime=opts.runtime, registry=opts.registry,
        cold_pull=opts.cold_pull, bases_mode=opts.bases_mode,
        manifest_warnings=list(opts.manifest_warnings),
        variants_dir=str(s.variants_dir) if s.variants_dir else None,
        context=str(s.context) if s.context else None, names=list(s.names),
        port=opts.port, health_path=opts.health_path,
        env=secrets.mask_args(opts.env, opts.secret_args) or None,
        build_args=secrets.mask_args(opts.build_args, opts.secret_args) or None,
        shard=opts.shard, planned=list(opts.planned) or None,
        engines=[spec.partition("=")[0] for spec in opts.engines] or None,
        engines_mode=opts.engines_mode)


def settings_json(opts: RunOptions) -> dict:
    """`settings_of` as the record's dict (the runner grows a dict until the run is saved)."""
    return dataclasses.asdict(settings_of(opts))


def options_from_settings(s: Settings, overrides: RunOptions) -> RunOptions:
    """The options to complete a run with. Its recorded settings win (one run, one method);
    `overrides`, the command line's options, fill what the record lacks and give what it
    does not hold: where to write, how to get bases, the lock, analysis, images, secrets,
    and the value of an environment variable the record masked."""
    given = overrides.selection
    env = {key: overrides.env.get(key, value) if value == secrets.MASK else value
           for key, value in (s.env or {}).items()}
    env = {key: value for key, value in env.items() if value != secrets.MASK}
    args = {key: overrides.build_args.get(key, value) if value == secrets.MASK else value
            for key, value in (s.build_args or {}).items()}
    args = {key: value for key, value in args.items() if value != secrets.MASK}
    selection = Selection(Path(s.variants_dir) if s.variants_dir else given.variants_dir,
                          Path(s.context) if s.context else given.context,
                          tuple(s.names or given.names))
    return replace(overrides, repeat=s.repeat,
                   scenarios=tuple(s.scenarios or overrides.scenarios),
                   builders=tuple(s.builders or overrides.builders),
                   warmup=s.warmup, timeout=s.timeout, runtime=s.runtime,
                   registry=s.registry, cold_pull=s.cold_pull,
                   port=s.port if s.port is not None else overrides.port,
                   health_path=s.health_path or overrides.health_path,
                   env={**overrides.env, **env} if s.env is None else env,
                   build_args={**overrides.build_args, **args} if s.build_args is None else args,
                   selection=selection, manifest_warnings=())
