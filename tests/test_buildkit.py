"""BuildKit through the docker CLI: the progress parser, the CLI search, needs_buildkit,
and tiny builds FROM scratch on the real engine."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from conftest import require

from harness.analysis.dockerfile import needs_buildkit
from harness.engine import buildkit
from harness.engine.build import build_image, pack_context
from harness.engine.buildkit import Cli, ProgressParser, build_image_buildkit
from harness.errors import BuildFailed, HarnessError

BUSYBOX = Path("/bin/busybox")
ROOT = Path(__file__).resolve().parent.parent

# --- the progress parser -------------------------------------------------------------------

# As the docker.io 20.10 CLI prints it (vertex digests, a bare error line at the end).
PLAIN_20_10 = """\
#1 [internal] load remote build context
#1 sha256:f6fd1472bfd325f2dc4a117a569a2a3b8ed7be730de9d8090bf21e436c7e1da3
#1 DONE 0.0s

#2 copy /context /
#2 DONE 0.1s

#3 [internal] load metadata for docker.io/library/node:20-alpine
#3 DONE 0.0s

#4 [builder 1/4] FROM docker.io/library/node:20-alpine
#4 CACHED

#5 [builder 2/4] WORKDIR /app
#5 CACHED

#6 [builder 3/4] COPY package*.json ./
#6 DONE 0.1s

#7 [builder 4/4] RUN npm ci
#7 sha256:fc3a31befab52f332e314b42f5d551b0952bf288e52bdfc0062b63b7359e4561
#7 1.021 npm warn deprecated
#7 ERROR: executor failed running [/bin/sh -c npm ci]: exit code: 1
------
 > [builder 4/4] RUN npm ci:
------
executor failed running [/bin/sh -c npm ci]: exit code: 1
"""

# As a current buildx prints it (no digests; error boxes with a Dockerfile excerpt).
PLAIN_BUILDX = """\
#0 building with "default" instance using docker driver

#1 [internal] load build definition from Dockerfile
#1 transferring dockerfile: 180B done
#1 DONE 0.0s

#2 [runner 1/3] FROM docker.io/library/alpine:3.20
#2 DONE 0.0s

#3 [runner 2/3] RUN apk add curl
#3 CACHED

#4 [runner 3/3] RUN false
#4 0.105 some output
#4 ERROR: process "/bin/sh -c false" did not complete successfully: exit code: 1
------
 > [runner 3/3] RUN false:
------
Dockerfile:4
--------------------
   3 |     RUN apk add curl
   4 | >>> RUN false
--------------------
ERROR: failed to solve: process "/bin/sh -c false" did not complete successfully: exit code: 1
"""


def _parse(text: str) -> tuple[ProgressParser, list[str]]:
    parser, announced = ProgressParser(), []
    for line in text.splitlines():
        label = parser.feed(line)
        if label:
            announced.append(label)
    return parser, announced


def test_parser_counts_steps_not_internal_work_nor_from():
    parser, announced = _parse(PLAIN_20_10)
    assert announced == ["[builder 1/4] FROM docker.io/library/node:20-alpine",
                         "[builder 2/4] WORKDIR /app", "[builder 3/4] COPY package*.json ./",
                         "[builder 4/4] RUN npm ci"]
    assert parser.steps_total == 3  # FROM is resolved, not built: as with the classic builder
    assert parser.steps_cached == 1  # WORKDIR; FROM's CACHED is not a step's


def test_parser_failure_names_the_step_and_the_error():
    parser, _ = _parse(PLAIN_20_10)
    assert parser.failure() == ("[builder 4/4] RUN npm ci: executor failed running "
                                "[/bin/sh -c npm ci]: exit code: 1")
    parser, _ = _parse(PLAIN_BUILDX)
    assert parser.failure() == ('[runner 3/3] RUN false: process "/bin/sh -c false" did not '
                                "complete successfully: exit code: 1")
    assert parser.steps_total == 2 and parser.steps_cached == 1


def test_parser_without_a_failing_vertex_uses_the_error_line():
    parser, _ = _parse("#1 [internal] load remote build context\n#1 DONE 0.0s\n"
                       "failed to solve with frontend dockerfile.v0: failed to create LLB "
                       "definition: dockerfile parse error line 2: Unknown flag: link\n")
    assert parser.failure().endswith("dockerfile parse error line 2: Unknown flag: link")
    parser, _ = _parse("ERROR: failed to solve: node:99: not found\n------\n")
    assert parser.failure() == "failed to solve: node:99: not found"
    assert ProgressParser().failure() == "the docker CLI failed without a message"


def test_parser_internal_vertex_failure_is_named():
    parser, _ = _parse("#3 [internal] load metadata for docker.io/library/nope:1\n"
                       "#3 ERROR: pull access denied for nope\n")
    assert parser.failure() == "[internal] load metadata for docker.io/library/nope:1: pull access denied for nope"
    assert parser.steps_total == 0


def test_parser_counts_a_step_once_when_its_name_line_repeats():
    parser, announced = _parse(
        "#5 [deps 2/3] RUN npm ci\n#6 [builder 2/2] COPY . .\n#5 0.5 added 10 packages\n"
        "#6 DONE 0.1s\n#5 [deps 2/3] RUN npm ci\n#5 1.0 done\n#5 DONE 1.1s\n#6 CACHED\n")
    assert announced == ["[deps 2/3] RUN npm ci", "[builder 2/2] COPY . ."]
    assert parser.steps_total == 2 and parser.steps_cached == 1


def test_parser_unnamed_stage_and_tail():
    parser, announced = _parse("#3 [1/2] COPY busybox /bin/busybox\n" + "#3 0.1 x\n" * 30)
    assert announced == ["[1/2] COPY busybox /bin/busybox"]
    assert len(parser.tail) == 20 and parser.tail[-1] == "#3 0.1 x"
    parser, _ = _parse(PLAIN_20_10)
    assert not any("sha256:fc3a31" in line for line in parser.tail)  # digest lines are noise


# --- the command line ------------------------------------------------------------------------

class _Ctx:
    dockerfile_name = ".harness.v.Dockerfile"


def test_command_is_an_argument_list_with_build_args_in_the_environment(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/elsewhere.sock")
    cli = Cli("/usr/bin/docker", buildx=False, version="20.10.24", engine_api="1.41")
    args, env = buildkit.command(cli, _Ctx(), tag="t:1", target="runner",
                                 build_args={"NPM_TOKEN": "s3cret", "HTTP_PROXY": "http://p",
                                             "weird-name": "x"},
                                 nocache=True, labels={"io.harness.run": "r1"}, iidfile="/x/iid")
    assert args == ["/usr/bin/docker", "build", "--progress=plain", "--iidfile", "/x/iid",
                    "-f", ".harness.v.Dockerfile", "-t", "t:1", "--target", "runner",
                    "--build-arg", "NPM_TOKEN", "--build-arg", "HTTP_PROXY=http://p",
                    "--build-arg", "weird-name=x", "--label", "io.harness.run=r1",
                    "--no-cache", "-"]
    assert not any("s3cret" in a for a in args)  # the value is in the environment only
    assert env["NPM_TOKEN"] == "s3cret" and env["DOCKER_BUILDKIT"] == "1"
    assert env["DOCKER_HOST"] == "unix:///tmp/elsewhere.sock"


def test_command_with_buildx_loads_the_image():
    cli = Cli("/x/docker", buildx=True, version="28.2.2", engine_api="1.47")
    args, env = buildkit.command(cli, _Ctx(), tag=None, target=None, build_args={},
                                 nocache=False, labels=None, iidfile="/x/iid")
    assert args[:4] == ["/x/docker", "buildx", "build", "--load"] and args[-1] == "-"
    assert "-t" not in args and "--no-cache" not in args and "DOCKER_BUILDKIT" not in env


# --- finding a CLI -------------------------------------------------------------------------

def _fake_cli(directory: Path, version: str, buildx: bool, api: str = "1.41",
              components: str = "Engine;containerd;runc;docker-init;",
              status: str = '[["Backing Filesystem","extfs"]]') -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "docker"
    path.write_text(f"""#!/bin/sh
case "$1" in
  --version) echo "Docker version {version}, build abc" ;;
  buildx) {'exit 0' if buildx else 'echo "unknown command: docker buildx" >&2; exit 1'} ;;
  version) echo "{api} {components}" ;;
  info) echo '{status}' ;;
  *) exit 2 ;;
esac
""")
    path.chmod(0o755)
    return path


@pytest.fixture
def fresh_cli_search(monkeypatch, tmp_path):
    """A search that sees only the fakes a test makes: no plugin directories of the
    machine, an empty HARNESS_CACHE and docker config."""
    monkeypatch.delenv(buildkit.CLI_ENV, raising=False)
    monkeypatch.setattr(buildkit, "PLUGIN_DIRS", ())
    monkeypatch.setenv(buildkit.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    buildkit._find_cli.cache_clear()
    yield tmp_path
    buildkit._find_cli.cache_clear()


def test_a_new_cli_without_buildx_is_skipped_for_an_old_one(tmp_path, monkeypatch, fresh_cli_search):
    new = _fake_cli(tmp_path / "a", "28.2.2", buildx=False)
    old = _fake_cli(tmp_path / "b", "20.10.24+dfsg1", buildx=False)
    monkeypatch.setenv("PATH", f"{new.parent}:{old.parent}")
    cli = buildkit.find_cli()
    assert (cli.path, cli.buildx, cli.version, cli.engine_api) == (str(old), False, "20.10.24+dfsg1", "1.41")


def test_buildx_is_preferred(tmp_path, monkeypatch, fresh_cli_search):
    old = _fake_cli(tmp_path / "a", "20.10.24", buildx=False)
    new = _fake_cli(tmp_path / "b", "28.2.2", buildx=True)
    monkeypatch.setenv("PATH", f"{old.parent}:{new.parent}")
    assert buildkit.find_cli().path == str(new) and buildkit.find_cli().buildx


def test_unavailable_says_why_in_one_line(tmp_path, monkeypatch, fresh_cli_search):
    new = _fake_cli(tmp_path / "a", "28.2.2", buildx=False)
    monkeypatch.setenv("PATH", str(new.parent))
    reason = buildkit.available()
    assert reason and "\n" not in reason and "no buildx plugin" in reason and "28.2.2" in reason
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    buildkit._find_cli.cache_clear()
    assert buildkit.available().startswith("no docker CLI on PATH and no docker-buildx (")
    old = _fake_cli(tmp_path / "c", "18.06.0", buildx=False, api="1.38")
    monkeypatch.setenv("PATH", str(old.parent))
    buildkit._find_cli.cache_clear()
    assert "too old for BuildKit" in buildkit.available()
    with pytest.raises(BuildFailed, match="BuildKit unavailable: the engine's API 1.38"):
        build_image_buildkit(_Ctx(), tag=None, target=None, build_args={}, nocache=True)


def test_explicit_cli(tmp_path, monkeypatch, fresh_cli_search):
    old = _fake_cli(tmp_path / "a", "20.10.24", buildx=False)
    monkeypatch.setenv(buildkit.CLI_ENV, str(old))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert buildkit.find_cli().path == str(old)
    monkeypatch.setenv(buildkit.CLI_ENV, str(tmp_path / "nope"))
    with pytest.raises(HarnessError, match="no such executable"):
        buildkit.find_cli()


def _fake_buildx(path: Path, version: str = "0.13.1+ds1", driver: str = "docker",
                 status: str = "running") -> Path:
    """A standalone docker-buildx: `version` and `inspect` (of the default builder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""#!/bin/sh
case "$1" in
  version) echo "github.com/docker/buildx {version} 0.13.1+ds1-3" ;;
  inspect) printf 'Name:   default\\nDriver: {driver}\\n\\nNodes:\\nName: default\\nStatus: {status}\\n' ;;
  *) exit 2 ;;
esac
""")
    path.chmod(0o755)
    return path


class _FakeSdk:
    """What the standalone probe asks the engine through the SDK."""

    def __init__(self, version: dict):
        self.answer, self.closed = version, False

    def version(self):
        return self.answer

    def close(self):
        self.closed = True


DOCKER26_VERSION = {"Version": "26.1.5+dfsg1", "ApiVersion": "1.45", "MinAPIVersion": "1.24",
                    "Components": [{"Name": "Engine", "Version": "26.1.5+dfsg1"}]}
PODMAN_VERSION = {"Version": "4.3.1", "ApiVersion": "1.41", "MinAPIVersion": "1.24",
                  "Components": [{"Name": "Podman Engine", "Version": "4.3.1"},
                                 {"Name": "Conmon", "Version": "conmon version 2.1.6"}]}


@pytest.fixture
def fake_sdk(monkeypatch):
    from harness.engine import client as engine_client

    asked: list[str | None] = []
    answer = {"version": DOCKER26_VERSION}

    def open_client(host=None, timeout=600):
        asked.append(host)
        return _FakeSdk(answer["version"])

    monkeypatch.setattr(engine_client, "open_client", open_client)
    return answer, asked


def _prefix_buildx(cache: Path) -> Path:
    return cache / "docker26" / "usr" / "libexec" / "docker" / "cli-plugins" / "docker-buildx"


def test_the_standalone_buildx_of_the_prefix_beats_an_old_cli(tmp_path, monkeypatch,
                                                               fresh_cli_search, fake_sdk):
    _, asked = fake_sdk
    old = _fake_cli(tmp_path / "a", "20.10.24+dfsg1", buildx=False)
    new = _fake_cli(tmp_path / "b", "28.2.2", buildx=False)  # unusable: no plugin
    bx = _fake_buildx(_prefix_buildx(tmp_path / "cache"))
    monkeypatch.setenv("PATH", f"{new.parent}:{old.parent}")
    monkeypatch.setenv("DOCKER_CONTEXT", "elsewhere")
    cli = buildkit.find_cli("unix:///tmp/engine26.sock")
    assert (cli.path, cli.buildx, cli.standalone, cli.version, cli.engine_api) == (
        str(bx), True, True, "0.13.1+ds1", "1.45")
    assert asked == ["unix:///tmp/engine26.sock"]
    args, env = buildkit.command(cli, _Ctx(), tag="t:1", target=None, build_args={},
                                 nocache=False, labels=None, iidfile="/x/iid")
    assert args[:4] == [str(bx), "build", "--load", "--provenance=false"] and args[-1] == "-"
    assert env["DOCKER_HOST"] == "unix:///tmp/engine26.sock"
    assert "DOCKER_BUILDKIT" not in env and "DOCKER_CONTEXT" not in env
    # Without a host, the environment's engine: DOCKER_HOST is passed on as it is.
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/env.sock")
    cli = buildkit.find_cli()
    assert cli.standalone and cli.host is None and asked[-1] is None
    assert buildkit.command(cli, _Ctx(), tag=None, target=None, build_args={}, nocache=False,
                            labels=None, iidfile="/x/iid")[1]["DOCKER_HOST"] == "unix:///tmp/env.sock"


def test_a_docker_cli_with_the_plugin_beats_the_standalone_buildx(tmp_path, monkeypatch,
                                                                  fresh_cli_search, fake_sdk):
    _fake_buildx(tmp_path / "docker-config" / "cli-plugins" / "docker-buildx")
    with_plugin = _fake_cli(tmp_path / "a", "26.1.5", buildx=True, api="1.45")
    monkeypatch.setenv("PATH", str(with_plugin.parent))
    cli = buildkit.find_cli()
    assert cli.path == str(with_plugin) and cli.buildx and not cli.standalone


def test_explicit_standalone_buildx(tmp_path, monkeypatch, fresh_cli_search, fake_sdk):
    bx = _fake_buildx(tmp_path / "x" / "docker-buildx")
    monkeypatch.setenv(buildkit.CLI_ENV, str(bx))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    cli = buildkit.find_cli()
    assert cli.path == str(bx) and cli.standalone


def test_podman_serves_no_buildkit(tmp_path, monkeypatch, fresh_cli_search, fake_sdk):
    answer, _ = fake_sdk
    old = _fake_cli(tmp_path / "a", "20.10.24", buildx=False, components="Podman Engine;Conmon;")
    monkeypatch.setenv("PATH", str(old.parent))
    assert buildkit.available() == buildkit.PODMAN_REASON
    assert "\n" not in buildkit.PODMAN_REASON and "buildah" in buildkit.PODMAN_REASON
    # The standalone buildx asks the engine first: Podman, refused before buildx runs.
    answer["version"] = PODMAN_VERSION
    _fake_buildx(_prefix_buildx(tmp_path / "cache"), driver="docker-container", status="inactive")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    buildkit._find_cli.cache_clear()
    assert buildkit.available("unix:///tmp/podman.sock") == buildkit.PODMAN_REASON
    with pytest.raises(BuildFailed, match="^BuildKit unavailable: Podman serves no BuildKit"):
        build_image_buildkit(_Ctx(), tag=None, target=None, build_args={}, nocache=True,
                             host="unix:///tmp/podman.sock")


def test_a_buildx_that_would_start_a_builder_of_its_own_is_refused(tmp_path, monkeypatch,
                                                                   fresh_cli_search, fake_sdk):
    _fake_buildx(_prefix_buildx(tmp_path / "cache"), driver="docker-container", status="inactive")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    reason = buildkit.available("unix:///tmp/other.sock")
    assert reason.startswith("the engine at DOCKER_HOST=unix:///tmp/other.sock serves no BuildKit "
                             "of its own (docker-buildx found driver docker-container")


def test_an_old_cli_cannot_feed_the_containerd_store(tmp_path, monkeypatch, fresh_cli_search):
    # Its BuildKit fails to `load remote build context` there: buildx, or nothing.
    old = _fake_cli(tmp_path / "a", "20.10.24+dfsg1", buildx=False, api="1.45",
                    status='[["driver-type","io.containerd.snapshotter.v1"]]')
    monkeypatch.setenv("PATH", str(old.parent))
    reason = buildkit.available()
    assert reason.startswith("docker CLI 20.10.24+dfsg1 (BuildKit built in) cannot send a build "
                             "context to the containerd image store's BuildKit") and "\n" not in reason
    with_plugin = _fake_cli(tmp_path / "b", "26.1.5", buildx=True, api="1.45",
                            status='[["driver-type","io.containerd.snapshotter.v1"]]')
    monkeypatch.setenv("PATH", f"{old.parent}:{with_plugin.parent}")
    buildkit._find_cli.cache_clear()
    assert buildkit.find_cli().path == str(with_plugin)


def test_an_old_buildx_gets_no_provenance_flag():
    cli = Cli("/x/docker", buildx=True, version="20.10.24", engine_api="1.41", buildx_version="0.9.1")
    assert "--provenance=false" not in cli.base_args()
    cli = Cli("/x/docker", buildx=True, version="26.1.5", engine_api="1.45", buildx_version="0.13.1")
    assert cli.base_args()[-1] == "--provenance=false"


# --- needs_buildkit --------------------------------------------------------------------------

def test_the_bench_variants_need_no_buildkit():
    for path in sorted((ROOT / "variants").glob("*.Dockerfile")):
        assert needs_buildkit(path.read_text()) is None, path.name


@pytest.mark.parametrize("text, reason", [
    (("FROM a\nWORKDIR /app\nCOPY package*.json ./\n\n# cache\n\n"
      "RUN --mount=type=cache,target=/root/.npm npm ci\n"), "RUN --mount=type=cache (line 7)"),
    ("FROM a\nRUN --mount=target=/src npm ci\n", "RUN --mount=type=bind (line 2)"),
    ("FROM a\nRUN --network=none true\n", "RUN --network=none (line 2)"),
    ("FROM a\nRUN --security=insecure true\n", "RUN --security=insecure (line 2)"),
    ("FROM a\nCOPY --link a b\n", "COPY --link (line 2)"),
    ("FROM a\nCOPY --chown=1:1 --chmod=755 a b\n", "COPY --chmod (line 2)"),
    ("FROM a\nADD --checksum=sha256:00 https://x/y /y\n", "ADD --checksum (line 2)"),
    ("FROM a\nRUN echo a && \\\n    echo b\nrun \\\n  --mount=type=secret,id=npm \\\n  npm ci\n",
     "RUN --mount=type=secret (line 4)"),
    ("FROM a\nRUN <<EOF\nset -e\nnpm ci\nEOF\n", "RUN heredoc <<EOF (line 2)"),
    ("FROM a\nCOPY <<-'END' /etc/x\n\thello\n\tEND\n", "COPY heredoc <<END (line 2)"),
])
def test_needs_buildkit_names_the_feature_and_line(text, reason):
    assert needs_buildkit(text) == reason


@pytest.mark.parametrize("text", [
    "FROM a\nCOPY --chown=node:node --from=builder /app /app\n",  # classic builds these
    "FROM a\nCOPY --chown=$UID:$GID a b\n",
    "FROM a\nRUN cat <<<hello\n",  # a here-string, not a heredoc
    "FROM a\nRUN echo <<EOF > /x\n",  # no closing line: the shell's business, not a heredoc
    "FROM a\n# RUN --mount=type=cache npm ci\nRUN npm ci\n",
    "FROM a\nRUN npm ci --mount=x\n",  # a flag of the command, not of RUN
    "FROM a\nENV X=--link\n",
])
def test_needs_buildkit_leaves_what_classic_builds(text):
    assert needs_buildkit(text) is None


def test_needs_buildkit_is_one_line_for_many():
    text = "FROM a\n" + "".join(f"RUN --mount=type=cache,target=/c{i} true\n" for i in range(5)) \
        + "COPY --link a b\n"
    reason = needs_buildkit(text)
    assert "\n" not in reason
    assert reason == ("RUN --mount=type=cache (line 2), RUN --mount=type=cache (line 3), "
                      "RUN --mount=type=cache (line 4) and 3 more")


# --- on the engine -----------------------------------------------------------------------------

TINY = """\
FROM scratch AS base
COPY busybox /bin/busybox
ARG GREETING=none
LABEL greeting=$GREETING
RUN ["/bin/busybox", "sh", "-c", "echo $GREETING > /greeting"]

FROM base AS final
RUN ["/bin/busybox", "true"]
"""


@pytest.fixture
def tiny_context(tmp_path, docker_client):
    require(BUSYBOX.exists(), "needs Debian's busybox-static")
    problem = buildkit.available()
    require(problem is None, f"BuildKit: {problem}")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    shutil.copy(BUSYBOX, ctx / "busybox")
    (ctx / "unsent.log").write_text("x\n")
    (ctx / ".dockerignore").write_text("*.log\n")
    return ctx


def _tag() -> str:
    return f"harness-test/buildkit:{uuid.uuid4().hex[:12]}"


@pytest.mark.engine
def test_build_image_id_labels_steps_and_cache(docker_client, tiny_context, image_janitor):
    # A unique value so that the first build cannot be served from an earlier run's cache.
    greeting = uuid.uuid4().hex
    context = pack_context(tiny_context, TINY, ".harness.tiny.Dockerfile")
    tag, lines, made = _tag(), [], []
    try:
        first = build_image_buildkit(context, tag=tag, target="final",
                                     build_args={"GREETING": greeting}, nocache=True,
                                     labels={"io.harness.run": "bk-test"}, on_line=lines.append,
                                     made=made)
        image_janitor.append(first.image_id)
        attrs = docker_client.api.inspect_image(tag)
        assert first.image_id == attrs["Id"]  # from --iidfile, the same as the tag's
        labels = attrs["Config"]["Labels"]
        assert labels["io.harness.run"] == "bk-test" and labels["greeting"] == greeting
        assert (first.steps_total, first.steps_cached) == (3, 0)  # COPY, RUN, RUN; LABEL folds
        assert lines == ["[base 1/2] COPY busybox /bin/busybox",  # ARG and LABEL run nothing
                         # BuildKit shows the instruction with the build arg expanded
                         f'[base 2/2] RUN ["/bin/busybox", "sh", "-c", "echo {greeting} > /greeting"]',
                         '[final 1/1] RUN ["/bin/busybox", "true"]']
        assert made == [] and first.step_images == []  # BuildKit makes no step images
        assert first.seconds > 0 and first.log_tail

        second = build_image_buildkit(context, tag=None, target="final",
                                      build_args={"GREETING": greeting}, nocache=False,
                                      labels={"io.harness.run": "bk-test"})
        assert second.image_id == first.image_id
        assert second.steps_total == second.steps_cached == 3
    finally:
        context.close()


@pytest.mark.engine
def test_failing_run_names_the_step(docker_client, tiny_context, image_janitor):
    text = 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sh", "-c", "echo no; exit 3"]\n'
    context = pack_context(tiny_context, text, "Dockerfile.fail")
    try:
        with pytest.raises(BuildFailed) as info:
            build_image_buildkit(context, tag=None, target=None, build_args={}, nocache=True)
    finally:
        context.close()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith('[2/2] RUN ["/bin/busybox", "sh", "-c", "echo no; exit 3"]: ')
    assert "exit code: 3" in message
    assert any("no" in line for line in info.value.log_tail)


@pytest.mark.engine
def test_run_mount_cache_builds_on_buildkit_not_on_classic(docker_client, tiny_context, image_janitor):
    text = ("FROM scratch\nCOPY busybox /bin/busybox\n"
            "RUN --mount=type=cache,target=/cache [\"/bin/busybox\", \"sh\", \"-c\", "
            "\"echo x > /cache/x && /bin/busybox cp /cache/x /copied\"]\n")
    assert needs_buildkit(text) == "RUN --mount=type=cache (line 3)"
    context = pack_context(tiny_context, text, "Dockerfile.mount")
    made: list[str] = []
    try:
        outcome = build_image_buildkit(context, tag=None, target=None, build_args={}, nocache=True)
        image_janitor.append(outcome.image_id)
        assert outcome.steps_total == 2
        # The classic builder refuses it, which is what needs_buildkit predicts.
        with pytest.raises(BuildFailed, match="--mount option requires BuildKit"):
            build_image(docker_client, context, tag=None, target=None, build_args={},
                        nocache=True, made=made)
    finally:
        context.close()
        for short in reversed(made):
            image_janitor.insert(0, short)  # the janitor removes from the end: leaves first


@pytest.mark.engine
def test_timeout_kills_the_cli(docker_client, tiny_context):
    text = ("FROM scratch\nCOPY busybox /bin/busybox\n"
            f"RUN [\"/bin/busybox\", \"sleep\", \"60\"]\nLABEL nonce={uuid.uuid4().hex}\n")
    context = pack_context(tiny_context, text, "Dockerfile.slow")
    start = time.monotonic()
    try:
        with pytest.raises(BuildFailed, match=r"^timed out after 3 s"):
            build_image_buildkit(context, tag=None, target=None, build_args={}, nocache=True,
                                 timeout=3)
    finally:
        context.close()
    assert time.monotonic() - start < 20


@pytest.mark.engine
def test_interrupt_stops_the_cli_and_propagates(docker_client, tiny_context, monkeypatch):
    started: list[subprocess.Popen] = []
    real_popen = subprocess.Popen

    def recording_popen(*args, **kwargs):
        proc = real_popen(*args, **kwargs)
        started.append(proc)
        return proc

    monkeypatch.setattr(buildkit.subprocess, "Popen", recording_popen)

    def interrupt(line: str) -> None:
        if "sleep" in line:
            raise KeyboardInterrupt

    text = 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sleep", "60"]\n'
    context = pack_context(tiny_context, text, "Dockerfile.int")
    start = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            build_image_buildkit(context, tag=None, target=None, build_args={}, nocache=True,
                                 on_line=interrupt)
    finally:
        context.close()
    assert len(started) == 1 and started[0].poll() is not None  # the CLI is gone
    assert time.monotonic() - start < 30
