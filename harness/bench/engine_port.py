"""What the runner asks of an engine, as one small interface.

`EnginePort` lists the operations a bench run performs per variant; `DockerEngine` does
them through the Docker SDK and harness.engine / bases / analysis exactly as the runner
always has. A test hands the runner a fake instead, and runs it without an engine.

Failures keep their native form: a method raises what the wrapped call raises (BuildFailed,
one of engine.ENGINE_ERRORS, HarnessError...), and the runner decides what each means.
Only look-ups whose failure means "not there" (exists, tagged, base_history) answer so.

Also here, because only the real engine needs them: the run's shared services (loopback
registry, empty engine for cold pulls), publishing to them, and removing our own images.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import docker
from docker.errors import APIError
from requests.exceptions import RequestException

from harness import engine
from harness.analysis import layers
from harness.bases import resolve as bases
from harness.bench.options import Probe
from harness.engine import private as private_engine
from harness.engine import registry, runtime
from harness.engine.build import BuildOutcome, Context, build_image
from harness.engine.buildkit import build_image_buildkit
from harness.engine.inspect import measure_image
from harness.errors import HarnessError


class EnginePort(Protocol):
    """The engine operations of a bench run."""

    def describe(self) -> dict:
        """What the engine is (engine.describe's record)."""

    def exists(self, image_id: str) -> bool:
        """Whether the engine still has the image."""

    def tagged(self, tag: str) -> str | None:
        """The id of the image `tag` names, None when there is none."""

    def resolve_base(self, ref: str, *, mode: str,
                     log: Callable[[str], None]) -> bases.Resolution:
        """A FROM reference made available (present, pulled or a stand-in)."""

    def build(self, builder: str, context: Context, *, tag: str | None, target: str | None,
              build_args: dict[str, str], nocache: bool, labels: dict[str, str],
              on_line: Callable[[str], None], timeout: float | None,
              made: list[str]) -> BuildOutcome:
        """One timed build; raises BuildFailed when the Dockerfile does not build."""

    def measure(self, image_id: str) -> dict:
        """The image's figures as inspect and history give them (measure_image's record)."""

    def analyze(self, image_id: str, *, cache: dict, app_dev_dependencies: set[str]) -> dict:
        """The image's layer contents (layers.analyze_image's record)."""

    def base_history(self, image_id: str) -> int | None:
        """How many history entries the image has; None when it cannot be read."""

    def runtime_check(self, image_id: str, *, labels: dict[str, str],
                      probe: Probe | None = None) -> dict:
        """Start the image and check that it serves (runtime.check's record); `probe`: how
        (port, health path, env, command), the defaults when None."""

    def publish(self, services: Services, image_id: str, image_tag: str,
                estimate: int | None) -> dict:
        """Push to the loopback registry and pull back (and cold, if asked)."""

    def remove(self, ref: str) -> bool:
        """Remove an image without force; False when the engine refuses."""

    def remove_untagged(self, step_images: list[str], keep: str | None,
                        require_label: str | None = None, patience: float = 0.0) -> None:
        """Drop the untagged images our own builds made (see `remove_untagged`)."""


class ServiceOptions(Protocol):
    """What Services reads of the run's options (runner.RunOptions has it; the runner
    imports this module, so not the other way round)."""
    cold_pull: bool


class DockerEngine:
    """The EnginePort of a Docker (or Podman) engine, through its SDK client."""

    def __init__(self, client: docker.DockerClient, host: str | None = None,
                 name: str | None = None):
        self.client = client
        self.host, self.name = host, name  # None: the default engine, named as found

    def describe(self) -> dict:
        return engine.describe(self.client, host=self.host, name=self.name)

    def exists(self, image_id: str) -> bool:
        return _exists(self.client, image_id)

    def tagged(self, tag: str) -> str | None:
        try:
            return self.client.api.inspect_image(tag)["Id"]
        except (APIError, RequestException):
            return None

    def resolve_base(self, ref: str, *, mode: str,
                     log: Callable[[str], None]) -> bases.Resolution:
        return bases.resolve(self.client, ref, mode=mode, log=log)

    def build(self, builder: str, context: Context, **kwargs) -> BuildOutcome:
        if builder == "buildkit":
            return build_image_buildkit(context, host=self.host, **kwargs)
        return build_image(self.client, context, **kwargs)

    def measure(self, image_id: str) -> dict:
        return measure_image(self.client, image_id)

    def analyze(self, image_id: str, *, cache: dict, app_dev_dependencies: set[str]) -> dict:
        return layers.analyze_image(self.client, image_id, cache=cache,
                                    app_dev_dependencies=app_dev_dependencies)

    def base_history(self, image_id: str) -> int | None:
        try:
            return len(self.client.api.history(image_id))
        except (APIError, RequestException):
            return None

    def runtime_check(self, image_id: str, *, labels: dict[str, str],
                      probe: Probe | None = None) -> dict:
        return runtime.check(self.client, image_id, labels=labels,
                             **(probe or Probe()).check_kwargs())

    def publish(self, services: Services, image_id: str, image_tag: str,
                estimate: int | None) -> dict:
        return publish(self.client, services, image_id, image_tag, estimate)

    def remove(self, ref: str) -> bool:
        try:
            self.client.api.remove_image(ref, force=False, noprune=False)
            return True
        except (APIError, RequestException):
            return False  # still used by a tag, a child or a container: leave it, never force

    def remove_untagged(self, step_images: list[str], keep: str | None,
                        require_label: str | None = None, patience: float = 0.0) -> None:
        remove_untagged(self.client, step_images, keep, require_label=require_label,
                        patience=patience)


def _exists(client, image_id: str) -> bool:
    try:
        client.api.inspect_image(image_id)
        return True
    except (APIError, RequestException):
        return False


class Services:
    """The run's shared helpers, started on first use and stopped at the end: the
    loopback registry and the empty engine cold pulls go to."""

    def __init__(self, opts: ServiceOptions, engine_facts: dict | None = None,
                 labels: dict | None = None):
        self.engine = engine_facts or {}  # engine.describe's: which store sizes come from
        self.opts = opts
        self.labels = labels or {}  # on the registry's container: `harness clean` finds it
        self._registry: registry.Registry | None = None
        self.registry_error: str | None = None
        self._cold: private_engine.PrivateEngine | None = None
        self._cold_client: docker.DockerClient | None = None
        self.cold_error: str | None = None

    def registry(self, client: docker.DockerClient | None = None) -> registry.Registry | None:
        """The loopback registry: the registry image's container on `client`'s engine,
        else Debian's binary (engine.registry)."""
        if self._registry is None and self.registry_error is None:
            try:
                self._registry = registry.start(client, labels=self.labels)
            except HarnessError as exc:
                self.registry_error = str(exc)
        return self._registry

    def cold_engine(self) -> docker.DockerClient | None:
        """A client of a private dockerd with an empty data root (harness.private_engine)."""
        if self._cold is None and self.cold_error is None:
            self.cold_error = private_engine.missing()
            if self.cold_error is None:
                try:
                    self._cold = private_engine.start(bridge="hcp", subnet="10.213.78.1/24")
                except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                    self.cold_error = f"the empty engine did not start: {engine.first_line(exc)}"
                else:
                    self._cold_client = self._cold.client(timeout=600)
        return self._cold_client

    @property
    def cold_root(self) -> Path | None:
        """The empty engine's directory, while it runs."""
        return self._cold.root if self._cold is not None else None

    def close(self) -> None:
        try:
            if self._cold is not None:
                self._cold.close()  # closes its clients too
                self._cold, self._cold_client = None, None
        finally:
            if self._registry is not None:
                registry.stop(self._registry)
                self._registry = None


def publish(client, services: Services, image_id: str, image_tag: str,
            estimate: int | None) -> dict:
    """Push to the loopback registry (exact compressed sizes, push time), then remove
    the local image and pull it back (pull time); the image keeps its tags and id.
    `estimate`: the layer analysis's compressed estimate, to record how close it came."""
    reg = services.registry(client)
    if reg is None:
        return {"error": services.registry_error}
    name, tag = image_tag.split(":")[0], "bench"
    out: dict = {"server": reg.server}
    try:
        out["push_seconds"] = registry.push(client, image_id, reg, name, tag)
        sizes = registry.layer_sizes(reg, name, tag)
        out.update(layer_sizes=sizes, compressed_bytes=sum(sizes))
        if estimate:
            out["estimate_bytes"] = estimate
            out["estimate_error_pct"] = round(100.0 * (estimate - sum(sizes)) / sum(sizes), 3)
        tags = client.api.inspect_image(image_id).get("RepoTags") or []
        for t in tags:
            client.api.remove_image(t, noprune=False)
        out["image_removed_before_pull"] = not _exists(client, image_id)
        pulled = registry.pull(client, reg, name, tag)
        out.update(pull_seconds=pulled.seconds, pull_layers_present=pulled.layers_present,
                   pull_layers=len(sizes))
        for t in tags:
            if not t.startswith(reg.host + "/"):
                repo, _, t_tag = t.rpartition(":")
                client.api.tag(image_id, repo, t_tag)
    except (HarnessError, APIError, RequestException, OSError) as exc:
        out["error"] = engine.first_line(exc)
    else:
        if services.opts.cold_pull:
            out.update(_cold_pull(services, reg, name, tag))
    finally:
        try:
            registry.untag(client, reg, name, tag)
        except (APIError, RequestException):
            pass
    return out


def _cold_pull(services: Services, reg: registry.Registry, name: str, tag: str) -> dict:
    """The pull of a host that has none of the image's layers: into the empty engine, then
    the image is removed there (by id) so that the next variant's pull is cold too."""
    cold = services.cold_engine()
    if cold is None:
        return {"cold_pull_error": f"not measured: {services.cold_error}"}
    try:
        pulled = registry.pull(cold, reg, name, tag)
        cold.api.remove_image(f"{reg.repository(name)}:{tag}", force=True)
    except (HarnessError, APIError, RequestException, OSError) as exc:
        return {"cold_pull_error": engine.first_line(exc)}
    return {"cold_pull_seconds": pulled.seconds, "cold_pull_layers_present": pulled.layers_present}


def remove_untagged(client, step_images: list[str], keep: str | None,
                    require_label: str | None = None, patience: float = 0.0) -> None:
    """Drop the untagged images our own builds made (other stages, earlier repetitions).

    Only ids read from our build streams are touched, never a prune, so another build
    on the same engine keeps its images. Removing a leaf also removes its untagged
    parents; a parent with children refuses, which is fine.
    """
    keep_short = (keep or "").replace("sha256:", "")[:12]
    pending = [s for s in reversed(step_images) if s.replace("sha256:", "")[:12] != keep_short]
    deadline = time.monotonic() + patience
    while pending:
        pending = [s for s in pending if not _remove_if_ours(client, s, require_label)]
        if not pending or time.monotonic() >= deadline:
            return
        time.sleep(0.5)


def _remove_if_ours(client, short: str, require_label: str | None) -> bool:
    """True when the image is gone (or is not ours to remove)."""
    try:
        attrs = client.api.inspect_image(short)
    except (APIError, RequestException):
        return True  # already gone with a child removed before it
    tags = [t for t in attrs.get("RepoTags") or [] if t != "<none>:<none>"]
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    if tags or (require_label is not None and require_label not in labels):
        return True
    try:
        client.api.remove_image(attrs["Id"], force=False, noprune=False)
        return True
    except APIError as exc:
        # Only a container still using it is worth waiting for; children are final.
        return "container" not in str(exc.explanation or exc)
    except RequestException:
        return True
