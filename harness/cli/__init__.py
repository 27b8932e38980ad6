"""The command line: thin typer commands wiring variants, bases, runner and report."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness import __version__
from harness.errors import HarnessError
from harness.store import PROJECT_ROOT

DEFAULT_VARIANTS = PROJECT_ROOT / "variants"
DEFAULT_OUT = PROJECT_ROOT / "results"

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Build every Dockerfile variant of an app, measure each image, compare them.")
# Piped output (CI logs, files) gets room for wide tables instead of rich's 80 columns.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

VariantsDir = Annotated[Path, typer.Option("--variants-dir", help="Directory of Dockerfiles (+ optional variants.toml).")]
ContextDir = Annotated[Path | None, typer.Option("--context", help="Build context for every variant (default: the manifest's, else ../sample_app).")]


def _version(value: bool) -> None:
    if value:
        out.print(f"harness {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """Which Dockerfile should I ship? Measure them all."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: partial results saved, then exit 143."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _load_warned(variants_dir: Path, context: Path | None, names: list[str] | None = None):
    """The variants and what was wrong with variants.toml (printed as warnings): a bad
    manifest does not stop a run, its Dockerfiles are then found by file name."""
    from harness.bench.variants import load_variants_with_warnings, select

    if context is not None and not context.is_dir():
        raise HarnessError(f"--context {context}: no such directory")
    variants, warnings = load_variants_with_warnings(variants_dir, context)
    for line in warnings:
        err.print(f"[yellow]warning:[/] {line}", highlight=False)
    return select(variants, names or []), warnings


def _load(variants_dir: Path, context: Path | None, names: list[str] | None = None):
    return _load_warned(variants_dir, context, names)[0]


@app.command("list")
def list_cmd(variants_dir: VariantsDir = DEFAULT_VARIANTS, context: ContextDir = None) -> None:
    """The variants: files, labels, targets, the base images they need and whether each is present."""
    from harness import engine
    from harness.bases import standins
    from harness.bench import runner

    try:
        variants = _load(variants_dir, context)
    except HarnessError as exc:
        raise _fail(str(exc))
    try:
        client = engine.connect()
    except HarnessError as exc:
        client = None
        err.print(f"[yellow]note:[/] {exc}; base presence unknown", highlight=False)
    recipes = standins.load_recipes()
    table = Table(title=f"Variants in {variants_dir}")
    for col in ("#", "Name", "Approach", "Dockerfile", "Target", "Base images"):
        table.add_column(col)
    for i, v in enumerate(variants, 1):
        p = runner.plan(v)
        bases_text = p.problem or "\n".join(
            f"{ref} ({_presence(client, ref, recipes)})" for ref in dict.fromkeys(p.refs)) or "scratch"
        table.add_row(str(i), v.name + ("" if v.in_manifest else " (discovered)"), v.label,
                      v.dockerfile.name, v.target or "(last stage)", bases_text)
    out.print(table)


def _presence(client, ref: str, recipes) -> str:
    from docker.errors import ImageNotFound

    from harness.bases import standins

    if client is None:
        return "unknown"
    try:
        client.api.inspect_image(ref)
        return "present"
    except ImageNotFound:
        pass
    recipe = standins.find_recipe(recipes, ref)
    if recipe is None:
        return "missing, no stand-in recipe"
    return "stand-in present" if standins.existing_standin(client, recipe) else "missing; stand-in can be built"


class RichProgress:
    """Which variant, which build step, elapsed time."""

    def __init__(self, progress: Progress):
        self.p = progress
        self.task = progress.add_task("starting", total=None)
        self.head = ""

    def variant(self, name, index, total, repetition, repeat):
        self.head = f"[{index + 1}/{total}] {name} (build {repetition}/{repeat})"
        self.p.reset(self.task, description=self.head)

    def step(self, text):
        self.p.update(self.task, description=f"{self.head}  {text[:70]}" if self.head else text[:90])

    def note(self, text):
        self.p.console.print(text, highlight=False)

    def finished(self, name, ok, detail):
        mark = "[green]ok[/]" if ok else f"[red]failed[/]: {detail}"
        self.p.console.print(f"{name}: {mark}", highlight=False)


@app.command()
def run(
    names: Annotated[list[str] | None, typer.Argument(help="Variant names (default: all).")] = None,
    repeat: Annotated[int, typer.Option(min=1, help="Cold builds per variant; every sample is kept.")] = 3,
    variants_dir: VariantsDir = DEFAULT_VARIANTS,
    context: ContextDir = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Where run directories are written.")] = DEFAULT_OUT,
    bases_mode: Annotated[str, typer.Option("--bases", help="auto: present, else pull, else build a stand-in; pull: fail when a pull fails; present: use only what is there.")] = "auto",
    bases_lock: Annotated[Path | None, typer.Option("--bases-lock", help="Record the bases used; refuse different ones on later runs.")] = None,
    update_lock: Annotated[bool, typer.Option("--update-lock", help="Accept bases that differ from --bases-lock and rewrite it.")] = False,
    analyze: Annotated[bool, typer.Option("--analyze/--no-analyze", help="Read each image's layers: contents, waste, compressed estimate, shell, packages.")] = True,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 when a size budget is broken (budgets from --budgets or variants.toml).")] = False,
    budgets_file: Annotated[Path | None, typer.Option("--budgets", help="A TOML file of [budgets.<variant>] tables.")] = None,
    scenario: Annotated[list[str] | None, typer.Option("--scenario", help="cold, no-change, source-change, dependency-change or all (repeatable or comma-separated).")] = None,
    warmup: Annotated[int | None, typer.Option(min=0, help="Uncounted builds before each scenario's counted ones (default: 1, none for cold).")] = None,
    builder: Annotated[list[str] | None, typer.Option("--builder", help="classic (the SDK), buildkit (the docker CLI) or both; the first one's image is measured.")] = None,
    timeout: Annotated[float | None, typer.Option(min=1, help="Seconds one build may take before it is cancelled and counted as failed.")] = None,
    runtime_check: Annotated[bool, typer.Option("--runtime/--no-runtime", help="Start each image (port on 127.0.0.1, memory and pid limits) and check that it serves.")] = True,
    use_registry: Annotated[bool, typer.Option("--registry/--no-registry", help="Push to and pull from a loopback registry: exact compressed size, push and pull time.")] = True,
    cold_pull: Annotated[bool, typer.Option("--cold-pull/--no-cold-pull", help="With --registry: also time each pull into an empty engine of the harness's own (a private dockerd; needs root), as a host that has none of the layers.")] = True,
    keep_images: Annotated[bool, typer.Option("--keep-images/--no-keep-images", help="Keep each variant's final image after the run.")] = True,
    secret_arg: Annotated[list[str] | None, typer.Option("--secret-arg", help="A build arg to mask in results, logs and reports (besides names containing TOKEN, SECRET, PASSWORD, PASSWD or API_KEY).")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Complete this run directory: measure only the variants it lacks.")] = None,
) -> None:
    """Build and measure the variants; write results.json, results.csv, table.md and charts."""
    from harness import engine
    from harness.report import markdown as report
    from harness import store as results
    from harness.bench import runner
    from harness.bench import scenarios
    from harness.bases.resolve import MODES

    if bases_mode not in MODES:
        raise typer.BadParameter(f"must be one of {', '.join(MODES)}", param_hint="--bases")
    if out_dir.exists() and not out_dir.is_dir():
        raise typer.BadParameter(f"{out_dir} exists and is not a directory", param_hint="--out")
    try:
        chosen = scenarios.parse(scenario)
    except HarnessError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scenario")
    builders = _builders(builder)
    baseline = None
    try:
        if resume is not None:
            previous = results.load(resume)  # the run's own settings win: one run, one method
            resume = resume if resume.is_dir() else resume.parent
            out_dir = resume.parent
            settings = previous.get("settings") or {}
            repeat = settings.get("repeat", repeat)
            chosen = settings.get("scenarios") or chosen
            builders = settings.get("builders") or builders
            warmup = settings.get("warmup", warmup)
            timeout = settings.get("timeout", timeout)
            runtime_check = settings.get("runtime", runtime_check)
            use_registry = settings.get("registry", use_registry)
            cold_pull = settings.get("cold_pull", cold_pull)
            names = settings.get("names") or names
            if settings.get("variants_dir"):
                variants_dir = Path(settings["variants_dir"])
            if settings.get("context"):
                context = Path(settings["context"])
        if "buildkit" in builders:
            from harness.engine.buildkit import available

            problem = available()
            if problem:
                raise HarnessError(f"--builder buildkit: {problem}")
        variants, manifest_warnings = _load_warned(variants_dir, context, names)
        if not variants:
            raise HarnessError(f"no variants found in {variants_dir}")
        if check:
            from harness.track import budgets

            budgets.load_budgets(budgets_file or variants_dir)  # a bad budget fails before building
            if (out_dir / "latest").exists():
                try:
                    baseline = results.load(out_dir / "latest")
                except HarnessError as exc:
                    err.print(f"note: no baseline for max_growth: {exc}", highlight=False)
        client = engine.connect()
    except HarnessError as exc:
        raise _fail(str(exc))
    opts = runner.RunOptions(repeat=repeat, out=out_dir, bases_mode=bases_mode,
                             bases_lock=bases_lock, update_lock=update_lock, analyze=analyze,
                             scenarios=tuple(chosen), warmup=warmup, builders=tuple(builders),
                             timeout=timeout, runtime=runtime_check, registry=use_registry,
                             cold_pull=use_registry and cold_pull,
                             keep_images=keep_images, secret_args=tuple(secret_arg or ()),
                             resume=resume,
                             settings={"manifest_warnings": manifest_warnings,
                                       "variants_dir": str(variants_dir),
                                       "context": str(context) if context else None,
                                       "names": names or []})
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=err, transient=True) as bar:
            run_dir, record, code = runner.execute(client, variants, opts, RichProgress(bar))
    except HarnessError as exc:
        raise _fail(str(exc))
    except KeyboardInterrupt as exc:
        err.print("interrupted: partial results saved", highlight=False)
        raise typer.Exit(143 if isinstance(exc, Terminated) else 130)
    if manifest_warnings:
        code = 1  # the manifest was not used as written: the nightly must notice
    written = report.write_report(record, run_dir)
    results.point_latest(out_dir, run_dir)
    out.print("\n".join(report.markdown_lines(record)), highlight=False, markup=False)
    out.print()
    for path in (run_dir / results.RESULTS_FILE, written.csv, written.build_times_csv, written.table, *written.charts, written.html):
        out.print(f"wrote {path}", highlight=False)
    out.print(f"latest -> {out_dir / 'latest'}", highlight=False)
    if check:
        from harness.track import budgets

        lines, check_code = budgets.check_main(record, budgets_file or variants_dir, baseline)
        for line in lines:
            out.print(line, highlight=False, markup=False)
        code = code or check_code
    raise typer.Exit(code)


BUILDERS = ("classic", "buildkit")


def _builders(values: list[str] | None) -> list[str]:
    chosen: list[str] = []
    for value in values or ["classic"]:
        for name in (v.strip() for v in value.split(",")):
            names = list(BUILDERS) if name == "both" else [name]
            for n in names:
                if n not in BUILDERS:
                    raise typer.BadParameter(f"unknown builder {n!r}: classic, buildkit or both",
                                             param_hint="--builder")
                if n not in chosen:
                    chosen.append(n)
    return chosen


@app.command("clean")
def clean_cmd(
    run_id: Annotated[str | None, typer.Option("--run", help="Remove what this run id created (see results/<run>/results.json).")] = None,
    all_runs: Annotated[bool, typer.Option("--all", help="Remove what every run created.")] = False,
    keep_final: Annotated[bool, typer.Option("--keep-final/--no-keep-final", help="Keep the final images harness-bench/<variant>:latest.")] = False,
) -> None:
    """Remove every container, image, network and volume labelled by a harness run."""
    from harness import engine
    from harness.engine import cleanup

    if (run_id is None) == (not all_runs):
        raise typer.BadParameter("give exactly one of --run ID or --all")
    try:
        result = cleanup.remove(engine.connect(), run_id, keep_final=keep_final)
    except HarnessError as exc:
        raise _fail(str(exc))
    for line in cleanup.summary_lines(result):
        out.print(line, highlight=False, markup=False)
    raise typer.Exit(1 if result.get("errors") else 0)


@app.command("report")
def report_cmd(
    run_dir: Annotated[Path | None, typer.Argument(help="A run directory (default: results/latest).")] = None,
) -> None:
    """Regenerate table.md, results.csv, build_times.csv, the charts and index.html from a results.json; needs no engine."""
    from harness.report import markdown as report
    from harness import store as results

    run_dir = run_dir or DEFAULT_OUT / "latest"
    try:
        record = results.load(run_dir)
    except HarnessError as exc:
        raise _fail(str(exc))
    target = run_dir if run_dir.is_dir() else run_dir.parent
    written = report.write_report(record, target)
    out.print("\n".join(report.markdown_lines(record)), highlight=False, markup=False)
    out.print()
    for path in (written.table, written.csv, written.build_times_csv, *written.charts, written.html):
        out.print(f"wrote {path}", highlight=False)


@app.command("bases")
def bases_cmd(
    variants_dir: VariantsDir = DEFAULT_VARIANTS,
    context: ContextDir = None,
    build: Annotated[bool, typer.Option("--build", help="Build the stand-ins that are missing.")] = False,
    bases_mode: Annotated[str, typer.Option("--bases", help="auto | pull | present")] = "auto",
) -> None:
    """How each base image the variants name resolves; --build makes the missing stand-ins."""
    from harness import engine
    from harness.bases import standins
    from harness.bases import resolve as bases
    from harness.bench import runner
    from harness.report.markdown import human_size

    try:
        variants = _load(variants_dir, context)
        client = engine.connect()
    except HarnessError as exc:
        raise _fail(str(exc))
    refs = list(dict.fromkeys(r for v in variants for r in runner.plan(v).refs))
    recipes = standins.load_recipes()
    if build:  # the stand-ins that have recipes, even when no variant names them yet
        refs += [r.stands_in_for for r in recipes.values() if r.stands_in_for not in refs]
    table = Table(title="Base images")
    for col in ("Requested", "Resolves", "Image id", "Digest", "Size", "Stand-in"):
        table.add_column(col, overflow="fold")
    missing = 0
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("resolving", total=None)
        for ref in refs:
            bar.update(task, description=f"resolving {ref}")
            res = bases.resolve(client, ref, mode=bases_mode, build=build, recipes=recipes,
                                log=lambda line: bar.update(task, description=f"{ref}: {line[:80]}"))
            missing += res.image_id is None
            standin = (f"{res.used_ref} (recipe {res.recipe}, stands in for {ref}; "
                       f"{res.standin_description})") if res.standin else "no"
            table.add_row(ref, res.status + (f" ({res.seconds:.1f} s)" if res.seconds >= 0.05 else ""),
                          (res.image_id or "–").replace("sha256:", "")[:12], res.digest or "–",
                          human_size(res.size_bytes) if res.size_bytes else "–",
                          standin if not res.error else res.error)
    out.print(table)
    if missing:
        raise _fail(f"{missing} base image(s) unresolved" + ("" if build else "; `harness bases --build` builds the stand-ins"))


@app.command("engines")
def engines_cmd(
    engine_specs: Annotated[list[str] | None, typer.Option("--engine", help="Also ask this engine: NAME=DOCKER_HOST (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
) -> None:
    """Every engine that answers: the default one, the ones `make engines` started, and each --engine; product, versions, image store, builders."""
    import json

    from harness import engine

    refs, errors, notes = engine.resolve(engine_specs)
    given = {r.name for r in refs if r.source == "given"}
    found = engine.survey(refs)
    for s in found:
        if s.error:
            # A given engine that does not answer is an error; another one, a note.
            (errors if s.ref.name in given else notes).append(s.error)
    answered = [s for s in found if s.description is not None]
    if as_json:
        typer.echo(json.dumps([engine.summary(s) for s in answered], indent=2))
    elif answered:
        from harness.engine.survey import TABLE_COLUMNS, table_row

        table = Table(title="Engines")
        for col in TABLE_COLUMNS:
            table.add_column(col, overflow="fold")
        for s in answered:
            table.add_row(*(str(v) for v in table_row(s)))
        out.print(table)
    for line in notes:
        err.print(f"[yellow]note:[/] {line}", highlight=False, soft_wrap=True)
    for line in errors:
        err.print(f"[bold red]error:[/] {line}", highlight=False, soft_wrap=True)
    if not answered and not errors:
        errors.append("no engine answers")
        err.print(f"[bold red]error:[/] no engine answers; {engine.START_HINT}", highlight=False, soft_wrap=True)
    raise typer.Exit(1 if errors else 0)


@app.command("history")
def history_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="The results directory holding history.jsonl.")] = DEFAULT_OUT,
    factor: Annotated[float, typer.Option(help="A build-time change counts only beyond this ratio of medians (and when significant).")] = 1.10,
    alpha: Annotated[float, typer.Option(help="Significance level of the Mann-Whitney U test on build-time samples.")] = 0.05,
    import_runs: Annotated[bool, typer.Option("--import", help="First append the run directories under --out that the history lacks.")] = False,
) -> None:
    """Changes between consecutive runs of each variant: sizes and layers exactly, build time when significant."""
    from harness.track import history

    path = out_dir / history.HISTORY_FILE
    try:
        if import_runs:
            for line in history.backfill(path, out_dir):
                typer.echo(line)
        lines, code = history.history_main(path, factor, alpha)
    except HarnessError as exc:
        raise _fail(str(exc))
    typer.echo("\n".join(lines))
    entries = history.read_history(path)[0] if path.exists() else []
    if entries:
        from harness.report import charts

        for written in charts.save(charts.trends(entries), out_dir / "trends"):
            typer.echo(f"wrote {written}")
    raise typer.Exit(code)


@app.command("compare")
def compare_cmd(
    baseline: Annotated[Path, typer.Argument(help="A run directory (or results.json), or a variant name with --run.")],
    current: Annotated[Path, typer.Argument(help="A run directory (or results.json), or a variant name with --run.")],
    run_dir: Annotated[Path | None, typer.Option("--run", help="Compare two variants of this run: BASELINE and CURRENT are variant names.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="md | json | csv")] = "md",
    check: Annotated[bool, typer.Option("--check", help="Exit 1 when CURRENT breaks a budget.")] = False,
    budgets_file: Annotated[Path | None, typer.Option("--budgets", help="A TOML file of [budgets.<variant>] tables (default: variants.toml).")] = None,
    variants_dir: VariantsDir = DEFAULT_VARIANTS,
    factor: Annotated[float, typer.Option(help="Build-time ratio that counts as a change.")] = 1.10,
    alpha: Annotated[float, typer.Option(help="Significance level for build times.")] = 0.05,
) -> None:
    """A table of differences fit for a pull-request comment; with --check, a CI gate on budgets."""
    from harness.track import compare

    if fmt not in ("md", "json", "csv"):
        raise typer.BadParameter("must be md, json or csv", param_hint="--format")
    try:
        if run_dir is not None:
            from harness import store as results

            rows = compare.compare_variants(results.load(run_dir), str(baseline), str(current),
                                            factor, alpha)
            text, lines, code = compare.FORMATS[fmt](rows), [], 0
        else:
            text, lines, code = compare.compare_main(baseline, current, fmt, check,
                                                     budgets_file or variants_dir, factor, alpha)
    except HarnessError as exc:
        raise _fail(str(exc))
    typer.echo(text)
    for line in lines:
        typer.echo(line, err=True)
    raise typer.Exit(code)


def main() -> None:
    try:
        app()
    except HarnessError as exc:  # a domain error that escaped a command: still one line
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)
