"""The typed results model: a run and everything measured in it.

Frozen dataclasses, validated by pydantic when read. The field names are the key names of
`results.json` (schema version 2); `Run.from_json` / `Run.to_json` are the only places a key
is spelled, and `results_schema()` is the JSON Schema published in
`docs/schema/results.schema.json`. Reading an older version goes through
`harness.migrations`. Sizes are bytes, times seconds, instants ISO 8601 UTC strings.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass as std_dataclass
from dataclasses import field
from typing import Any, Literal

from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

SCHEMA_VERSION = 2

# A variant's status: "running" while in flight, then one of the three others.
RUNNING, OK, FAILED, FAILED_AT_RUNTIME = "running", "ok", "failed", "failed-at-runtime"
MEASURED = (OK, FAILED_AT_RUNTIME)  # its image was built and measured
Status = Literal["running", "ok", "failed", "failed-at-runtime"]

# Unknown keys are an error: a typo in a writer shows up in the tests, not in a report.
_STRICT = ConfigDict(extra="forbid")


def _record(cls):
    return dataclass(frozen=True, config=_STRICT)(cls)


# ------------------------------------------------------------------ the run's context

@_record
class GitState:
    commit: str | None = None
    dirty: bool | None = None


@_record
class HarnessInfo:
    version: str
    git: GitState = field(default_factory=GitState)


@_record
class Machine:
    """The machine the harness ran on (the engine may be elsewhere: see `Engine`)."""
    hostname: str | None = None
    platform: str | None = None
    python: str | None = None
    cpu_count: int | None = None
    memory_bytes: int | None = None


@_record
class Engine:
    """What answered on DOCKER_HOST: product, version, image store and builders."""
    name: str | None = None
    host: str | None = None
    product: str | None = None
    server_version: str | None = None
    api_version: str | None = None
    min_api_version: str | None = None
    client_api_version: str | None = None
    os: str | None = None
    kernel: str | None = None
    architecture: str | None = None
    storage_driver: str | None = None
    store: str | None = None
    cgroup_version: str | None = None
    engine_cpus: int | None = None
    engine_memory_bytes: int | None = None
    engine_name: str | None = None
    default_builder: str | None = None
    builders: list[str] | None = None
    buildkit_unavailable: str | None = None
    can_build: bool | None = None
    can_push: bool | None = None
    can_run: bool | None = None


@_record
class Settings:
    """The options a run was started with; `--resume` reads them back from here."""
    repeat: int = 3
    builder: str = "classic"
    builders: list[str] | None = None
    scenario: str = "cold"
    scenarios: list[str] | None = None
    warmup: int | None = None
    timeout: int | None = None
    runtime: bool = True
    registry: bool = True
    cold_pull: bool = True
    bases_mode: str = "auto"
    manifest_warnings: list[str] = field(default_factory=list)
    variants_dir: str | None = None
    context: str | None = None
    names: list[str] | None = None
    secret_args: list[str] | None = None
    port: int | None = None  # the runtime check's container port (default: exposed, 3000)
    health_path: str | None = None  # the path the runtime check polls (default /healthz)
    env: dict[str, str] | None = None  # extra environment of every container started
    build_args: dict[str, str] | None = None  # `--build-arg`s of every variant (theirs win)
    shard: str | None = None  # `--shard K/N`: this run measured the K-th of N parts
    planned: list[str] | None = None  # every variant of the run, before a shard took its part
    engines: list[str] | None = None  # `--engine` names, in order (None: the default engine)
    engines_mode: Literal["compare", "spread"] | None = None  # with several engines


# ------------------------------------------------------------------ bases

@_record
class BaseResolution:
    """How one base image reference was satisfied: present, pulled, or a local stand-in."""
    requested: str
    status: str | None = None
    image_id: str | None = None
    digest: str | None = None
    size_bytes: int | None = None
    layer_count: int | None = None
    standin: bool = False
    used_ref: str | None = None
    recipe: str | None = None
    recipe_sha256: str | None = None
    standin_description: str | None = None
    node_version: str | None = None
    ca_injected: bool | None = None
    seconds: float | None = None
    error: str | None = None


@_record
class FromLine:
    """One FROM of a variant's Dockerfile and the base it resolved to."""
    stage: int
    from_line: int
    written: str
    requested: str
    final: bool
    kind: str | None = None
    status: str | None = None
    stage_name: str | None = None
    image_id: str | None = None
    digest: str | None = None
    standin: bool = False
    used_ref: str | None = None
    size_bytes: int | None = None
    engine_size_bytes: int | None = None
    layer_count: int | None = None


# ------------------------------------------------------------------ builds

@_record
class SampleStats:
    """Statistics of a scenario's samples as stored; readers recompute them from samples."""
    n: int
    median: float | None = None
    mad: float | None = None
    mean: float | None = None
    stdev: float | None = None
    min: float | None = None
    max: float | None = None
    outliers: list[Any] = field(default_factory=list)


@_record
class ScenarioSamples:
    """The timed builds of one cache scenario (cold, no-change, source-change, ...)."""
    samples_seconds: list[float] = field(default_factory=list)
    warmup_seconds: list[float] = field(default_factory=list)
    steps_total: int | None = None
    steps_cached: int | None = None
    steps_rebuilt: int | None = None
    changed: str | None = None
    stats: SampleStats | None = None
    skipped: str | None = None  # why this scenario was not timed
    error: str | None = None
    log_tail: list[str] | None = None  # a failed scenario's build log


@_record
class ExtraImage:
    """The image another builder made of the same Dockerfile."""
    id: str
    size_bytes: int | None = None
    layer_count: int | None = None
    history_count: int | None = None


@_record
class Build:
    """One builder's builds of a variant: the cold samples and every scenario."""
    builder: str | None = None
    samples_seconds: list[float] = field(default_factory=list)
    warmup_seconds: list[float] = field(default_factory=list)
    context_bytes: int | None = None
    context_files: int | None = None
    context_seconds: float | None = None
    context_bytes_without_dockerignore: int | None = None
    context_files_without_dockerignore: int | None = None
    steps_total: int | None = None
    steps_cached: int | None = None
    scenarios: dict[str, ScenarioSamples] | None = None
    primed: bool | None = None  # cold not timed: one untimed build primed the cache
    image: ExtraImage | None = None
    error: str | None = None
    log_tail: list[str] | None = None

    def samples_by_scenario(self, scenario: str | None = None) -> dict[str, list[float]]:
        """Raw samples per scenario: `scenarios` when recorded, else the run's one
        `scenario` (a record written before scenarios existed)."""
        if self.scenarios is not None:
            return {name: list(s.samples_seconds) for name, s in self.scenarios.items()}
        return {scenario or "cold": list(self.samples_seconds)}


# ------------------------------------------------------------------ the image

@_record
class HistoryStep:
    """One line of `docker history`, oldest first; `size_bytes` is its layer's file bytes."""
    created_by: str = ""
    size_bytes: int = 0
    id: str | None = None
    created: int | str | None = None
    comment: str = ""
    engine_size_bytes: int | None = None


@_record
class Image:
    """The built image. `size_bytes` is the bytes of the files in its layers (`size_basis`
    "layers"), the same on every engine; the engine's own figures are kept beside it."""
    id: str
    size_bytes: int
    layer_count: int
    layers: list[str] = field(default_factory=list)
    history_count: int | None = None
    history: list[HistoryStep] = field(default_factory=list)
    user: str | None = None
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    exposed_ports: list[str] = field(default_factory=list)
    architecture: str | None = None
    os: str | None = None
    tag: str | None = None
    size_basis: str | None = None
    inspect_size_bytes: int | None = None
    listed_size_bytes: int | None = None
    layers_tar_bytes: int | None = None
    compressed_size_bytes: int | None = None


@_record
class LayerContents:
    diff_id: str
    size_bytes: int
    files_bytes: int | None = None
    tar_bytes: int | None = None
    blob_bytes: int | None = None
    media_type: str | None = None
    file_count: int | None = None
    whiteout_count: int | None = None
    compressed_estimate_bytes: int | None = None
    compressed_estimate_sampled: bool | None = None
    compressed_estimate_fraction: float | None = None
    node_modules_bytes: int | None = None
    app_bytes: int | None = None
    other_bytes: int | None = None


@_record
class PathBytes:
    path: str
    bytes: int


@_record
class Contents:
    """What is in the image's layers, read from the engine's export (dive's view)."""
    image_id: str | None = None
    archive_layout: str | None = None
    layer_count: int | None = None
    layers: list[LayerContents] = field(default_factory=list)
    layers_size_bytes: int | None = None
    layers_tar_bytes: int | None = None
    layers_files_bytes: int | None = None
    wasted_bytes: int | None = None
    efficiency: float | None = None
    top_wasted: list[dict[str, Any]] = field(default_factory=list)
    file_count: int | None = None
    files_bytes: int | None = None
    top_paths: list[PathBytes] = field(default_factory=list)
    duplicate_files: int | None = None
    duplicate_bytes: int | None = None
    node_modules_bytes: int | None = None
    app_node_modules_bytes: int | None = None
    other_node_modules_bytes: int | None = None
    node_modules_package_count: int | None = None
    app_node_modules_package_count: int | None = None
    other_node_modules_package_count: int | None = None
    dev_dependencies_present: list[str] = field(default_factory=list)
    source_map_bytes: int | None = None
    typescript_source_bytes: int | None = None
    typescript_declaration_bytes: int | None = None
    setuid_files: list[dict[str, str]] = field(default_factory=list)  # {"path", "mode"}
    has_shell: bool | None = None
    package_managers: dict[str, bool] | None = None
    os_package_db: str | None = None
    os_package_count: int | None = None
    history_empty_layers: list[bool] = field(default_factory=list)
    compressed_estimate_bytes: int | None = None
    compressed_estimate_sampled: bool | None = None
    compressed_estimate_fraction: float | None = None
    cache_hits: int | None = None
    workers: int | None = None
    diff_ids_verified: bool | None = None
    saved_bytes_streamed: int | None = None
    timings: dict[str, float] | None = None
    seconds: float | None = None
    error: str | None = None


@_record
class AttributedLayer:
    """One layer and the Dockerfile line (or base image) that made it."""
    index: int
    diff_id: str
    size_bytes: int
    source: str
    instruction: str | None = None
    history_index: int | None = None
    ambiguous: bool = False
    dockerfile_line: int | None = None
    dockerfile_instruction: str | None = None
    stage: int | str | None = None
    from_stage: str | None = None
    from_image: str | None = None
    node_modules_bytes: int | None = None
    app_bytes: int | None = None
    other_bytes: int | None = None


@_record
class SizeSplit:
    base_bytes: int | None = None
    dependencies_bytes: int | None = None
    app_bytes: int | None = None
    other_bytes: int | None = None


@_record
class Attribution:
    """Where the bytes go: each layer to its Dockerfile line, and base/deps/app/other."""
    history_count: int | None = None
    layer_count: int | None = None
    empty_history_count: int | None = None
    base_history_count: int | None = None
    image_size_bytes: int | None = None
    ambiguous: bool = False
    warnings: list[str] = field(default_factory=list)
    layers: list[AttributedLayer] = field(default_factory=list)
    split: SizeSplit | None = None
    by_stage: dict[str, int] | None = None
    error: str | None = None


# ------------------------------------------------------------------ after the build

# A runtime check's status besides "ok" and "failed": the variant was not started on purpose.
NOT_CHECKED = "not-checked"


@_record
class RuntimeCheck:
    """Whether the image still serves: time to healthy, idle memory, what GET / answered.
    `health_source`: "healthcheck" (the engine's verdict on the image's HEALTHCHECK, in
    `engine_health`) or "http" (`health_path` polled); `skipped`: why a "not-checked"
    variant was not started."""
    status: str
    error: str | None = None
    seconds_to_healthy: float | None = None
    idle_memory_bytes: int | None = None
    memory_basis: str | None = None
    root_status: int | None = None
    root_body: str | None = None
    root_content_type: str | None = None
    container_port: int | None = None
    limits: dict[str, int | str] | None = None
    user: str | None = None
    logs_tail: list[str] | None = None
    health_source: Literal["healthcheck", "http"] | None = None
    health_path: str | None = None
    engine_health: str | None = None
    command: list[str] | None = None
    skipped: str | None = None


@_record
class Registry:
    """Push to and pull from a local registry: the compressed size is the manifest's."""
    server: str | None = None  # what served: "registry:2 container", "Debian's docker-registry"
    push_seconds: float | None = None
    layer_sizes: list[int] = field(default_factory=list)
    compressed_bytes: int | None = None
    estimate_bytes: int | None = None
    estimate_error_pct: float | None = None
    image_removed_before_pull: bool | None = None
    pull_seconds: float | None = None
    pull_layers_present: int | None = None
    pull_layers: int | None = None
    cold_pull_seconds: float | None = None
    cold_pull_layers_present: int | None = None
    cold_pull_error: str | None = None
    error: str | None = None


@_record
class PreviousAttempt:
    status: str | None = None
    error: str | None = None


@_record
class MeasuredOn:
    """Where one row was measured, in a run of several engines, shards or machines."""
    engine: str  # the engine's name (`--engine NAME=...`, or the name `make engines` gave)
    hostname: str | None = None  # the machine the harness ran on
    run_id: str | None = None  # the run the row was measured in (a merged run's part)
    shard: str | None = None


@_record
class VariantResult:
    """One Dockerfile variant: how it was built, the image, and what was measured of it."""
    name: str
    label: str
    dockerfile: str
    status: Status
    dockerfile_path: str | None = None
    dockerfile_sha256: str | None = None
    context: str | None = None
    context_sha256: str | None = None
    target: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    in_manifest: bool = False
    warnings: list[str] = field(default_factory=list)
    froms: list[FromLine] = field(default_factory=list)
    builder: str | None = None
    error: str | None = None
    log_tail: list[str] | None = None
    dockerfile_rewritten: bool | None = None
    previous_attempt: PreviousAttempt | None = None
    build: Build | None = None
    extra_builds: dict[str, Build] | None = None
    image: Image | None = None
    contents: Contents | None = None
    attribution: Attribution | None = None
    runtime: RuntimeCheck | None = None
    registry: Registry | None = None
    measured_on: MeasuredOn | None = None

    @property
    def engine_name(self) -> str | None:
        return self.measured_on.engine if self.measured_on else None

    @property
    def measured(self) -> bool:
        return self.status in MEASURED and self.image is not None

    def build_samples(self, scenario: str | None = None) -> dict[str, list[float]]:
        """Raw samples per scenario of the measured build (`Build.samples_by_scenario`)."""
        if self.build is None:
            return {scenario or "cold": []}
        return self.build.samples_by_scenario(scenario)

    @property
    def compressed_size_bytes(self) -> int | None:
        """The registry's figure when pushed, else the layer analysis' estimate."""
        if self.registry and self.registry.compressed_bytes:
            return self.registry.compressed_bytes
        if self.image and self.image.compressed_size_bytes:
            return self.image.compressed_size_bytes
        return None


@_record
class Different:
    name: str
    reason: str


@_record
class RuntimeComparison:
    """Whether every variant answers GET / like the first one that served."""
    reference: str | None = None
    same: list[str] = field(default_factory=list)
    different: list[Different] = field(default_factory=list)
    not_serving: list[str] = field(default_factory=list)


@_record
class Run:
    """A run: its context, the bases it resolved and one result per variant."""
    run_id: str
    created_utc: str
    harness: HarnessInfo
    schema_version: Literal[2] = SCHEMA_VERSION
    finished_utc: str | None = None
    resumed_utc: list[str] | None = None
    machine: Machine = field(default_factory=Machine)
    engine: Engine = field(default_factory=Engine)
    settings: Settings = field(default_factory=Settings)
    bases: dict[str, BaseResolution] = field(default_factory=dict)
    variants: list[VariantResult] = field(default_factory=list)
    runtime_comparison: RuntimeComparison | None = None
    # A run of several engines: each one's description by name (`engine` is the first's).
    engines: dict[str, Engine] | None = None
    merged_from: list[str] | None = None  # the run ids `harness merge` made this run of

    def variant(self, name: str) -> VariantResult | None:
        return next((v for v in self.variants if v.name == name), None)

    def engine_names(self) -> list[str]:
        """The engines rows were measured on, in order of first appearance."""
        names = [v.engine_name for v in self.variants if v.engine_name]
        return list(dict.fromkeys([*(self.engines or {}), *names]))

    def on_engine(self, name: str) -> Run:
        """This run with only the rows measured on engine `name`, which is its engine."""
        engine = (self.engines or {}).get(name, self.engine)
        return dataclasses.replace(self, engine=engine, variants=[
            v for v in self.variants if v.engine_name in (name, None)])

    def primary(self) -> Run:
        """The run that tables keyed by variant show: with several engines measuring each
        variant (`--engines compare`), one row per variant, from the earliest engine (in
        `engine_names` order) that has it; else the run itself."""
        rows = [v.name for v in self.variants]
        if len(rows) == len(set(rows)):
            return self
        rank = {name: i for i, name in enumerate(self.engine_names())}
        chosen: dict[str, VariantResult] = {}
        for v in self.variants:
            have = chosen.get(v.name)
            if have is None or rank.get(v.engine_name, len(rank)) < rank.get(
                    have.engine_name, len(rank)):
                chosen[v.name] = v
        first = next(iter(rank), None)
        engine = (self.engines or {}).get(first, self.engine) if first else self.engine
        return dataclasses.replace(self, engine=engine, variants=[
            v for v in self.variants if chosen[v.name] is v])

    @classmethod
    def from_json(cls, data: dict) -> Run:
        """A version-2 record (a dict from `json.load`); a wrong field is a ModelError."""
        try:
            return _RUN.validate_python(data)
        except ValidationError as exc:
            raise ModelError(_first_problem(exc)) from None

    def to_json(self) -> dict:
        """The record as `results.json` stores it: unset (None) fields are left out."""
        return _RUN.dump_python(self, mode="json", exclude_none=True)


# ------------------------------------------------------------------ history

HISTORY_SCHEMA_VERSION = 1  # of a history.jsonl line; bump when its keys change
HISTORY_BASE_KEYS = ("stage", "requested", "image_id", "digest", "standin", "final")


@std_dataclass(frozen=True)
class HistoryEntry:
    """One line of `history.jsonl`: a variant's headline figures in one finished run, the
    figures `harness compare` compares. Its own format (version 1 since the first round),
    checked by hand so a bad line is reported in a few words and skipped, never fatal."""
    run_id: str
    created_utc: str
    hostname: str | None
    git_commit: str | None
    git_dirty: bool | None
    variant: str
    label: str
    status: str | None
    dockerfile_sha256: str | None
    context_sha256: str | None
    size_bytes: int | None
    layer_count: int | None
    compressed_size_bytes: int | None
    build_samples: dict[str, list[float]]  # scenario -> every sample, in seconds
    bases: list[dict]  # per FROM of an image: stage, requested, image_id, digest, standin, final

    @property
    def when(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.created_utc)

    @classmethod
    def of(cls, run: Run, variant: VariantResult) -> HistoryEntry:
        """The line of `variant` in `run`: what `harness compare` and the history compare."""
        image, git = variant.image, run.harness.git
        return cls(
            run_id=run.run_id, created_utc=run.created_utc,
            hostname=(variant.measured_on and variant.measured_on.hostname) or run.machine.hostname,
            git_commit=git.commit, git_dirty=git.dirty, variant=variant.name,
            label=variant.label or variant.name, status=variant.status,
            dockerfile_sha256=variant.dockerfile_sha256, context_sha256=variant.context_sha256,
            size_bytes=image.size_bytes if image else None,
            layer_count=image.layer_count if image else None,
            compressed_size_bytes=image.compressed_size_bytes if image else None,
            build_samples=variant.build_samples(run.settings.scenario),
            bases=[{k: getattr(f, k) for k in HISTORY_BASE_KEYS}
                   for f in variant.froms if f.image_id or f.digest])

    def to_json(self) -> str:
        """The line, without its newline: the schema version first, then the keys in order."""
        return json.dumps({"schema_version": HISTORY_SCHEMA_VERSION, **dataclasses.asdict(self)})

    @classmethod
    def from_json(cls, line: bytes | str) -> HistoryEntry:
        """The entry of one line; ValueError says in a few words what is wrong with it."""
        try:
            d = json.loads(line.decode("utf-8") if isinstance(line, bytes) else line)
        except UnicodeDecodeError:
            raise ValueError("not UTF-8 text") from None
        except ValueError:
            raise ValueError("not valid JSON (a truncated line?)") from None
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")
        if d.get("schema_version") != HISTORY_SCHEMA_VERSION:
            raise ValueError(f"schema version {d.get('schema_version')!r} is not one this "
                             f"harness reads ({HISTORY_SCHEMA_VERSION})")
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in d]
        if missing:
            raise ValueError(f"missing key(s) {', '.join(missing)}")
        entry = cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)})
        problem = entry._problem()
        if problem:
            raise ValueError(problem)
        return entry

    def _problem(self) -> str | None:
        for name in ("run_id", "created_utc", "variant"):
            if not isinstance(getattr(self, name), str):
                return f"{name} is not a string"
        try:
            if self.when.tzinfo is None:
                return f"created_utc {self.created_utc!r} has no time zone"
        except ValueError:
            return f"created_utc {self.created_utc!r} is not an ISO 8601 time"
        for name in ("size_bytes", "layer_count", "compressed_size_bytes"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                return f"{name} is not an integer"
        if not isinstance(self.build_samples, dict) or not all(
                isinstance(s, list) and all(_is_number(x) for x in s)
                for s in self.build_samples.values()):
            return "build_samples is not a mapping of scenario to a list of seconds"
        if not isinstance(self.bases, list) or not all(
                isinstance(b, dict) and isinstance(b.get("requested"), str) for b in self.bases):
            return "bases is not a list of FROM records"
        return None


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


class ModelError(ValueError):
    """A record that does not fit the model; the message is one line naming the field."""


def _first_problem(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "(record)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


_RUN = TypeAdapter(Run)


def results_schema() -> dict[str, Any]:
    """The JSON Schema of `results.json` (version 2), as published in docs/schema/."""
    schema = _RUN.json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "results.schema.json"
    schema["title"] = "results.json of one harness run (schema version 2)"
    return schema


if __name__ == "__main__":  # `python -m harness.model` prints the schema docs/schema/ publishes
    import json
    print(json.dumps(results_schema(), indent=2))
