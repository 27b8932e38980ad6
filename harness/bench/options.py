"""How a run is measured: `RunOptions`, and the `model.Settings` a run records of them.

`settings_of` writes the settings into the run; `options_from_settings` reads them back for
`--resume`, so a completed run is measured one way throughout. Both go through the typed
model: no settings key is spelt anywhere else.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.bench import scenarios
from harness.model import Settings


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
        context=str(s.context) if s.context else None, names=list(s.names))


def settings_json(opts: RunOptions) -> dict:
    """`settings_of` as the record's dict (the runner grows a dict until the run is saved)."""
    return dataclasses.asdict(settings_of(opts))


def options_from_settings(s: Settings, overrides: RunOptions) -> RunOptions:
    """The options to complete a run with. Its recorded settings win (one run, one method);
    `overrides`, the command line's options, fill what the record lacks and give what it
    does not hold: where to write, how to get bases, the lock, analysis, images, secrets."""
    given = overrides.selection
    selection = Selection(Path(s.variants_dir) if s.variants_dir else given.variants_dir,
                          Path(s.context) if s.context else given.context,
                          tuple(s.names or given.names))
    return replace(overrides, repeat=s.repeat,
                   scenarios=tuple(s.scenarios or overrides.scenarios),
                   builders=tuple(s.builders or overrides.builders),
                   warmup=s.warmup, timeout=s.timeout, runtime=s.runtime,
                   registry=s.registry, cold_pull=s.cold_pull,
                   selection=selection, manifest_warnings=())
