"""Resolve every base image a variant names, before any build is timed.

Order: the image present locally, else a pull (never timed), else a stand-in built
from the recipe in `harness/bases/recipes/`. The result says which, so no table can
present a stand-in as the real thing. A lock file pins what was used.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import docker
from docker.errors import APIError, ImageNotFound

from harness.bases import families, standins
from harness.engine import first_line
from harness.errors import HarnessError
from harness.store import write_atomic

MODES = ("auto", "pull", "present")
LOCK_VERSION = 1


@dataclass
class Resolution:
    requested: str  # the reference as the Dockerfile names it (ARGs expanded)
    status: str  # present | pulled | stand-in | stand-in built | missing
    image_id: str | None = None
    digest: str | None = None  # a repo digest when the engine knows one
    size_bytes: int | None = None
    layer_count: int | None = None
    standin: bool = False
    used_ref: str | None = None  # what the build's FROM actually names
    recipe: str | None = None
    recipe_sha256: str | None = None
    standin_description: str | None = None
    node_version: str | None = None
    ca_injected: bool | None = None
    seconds: float = 0.0  # time spent resolving (pull or stand-in build), never a build time
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _inspect(client: docker.DockerClient, ref: str) -> dict | None:
    try:
        return client.api.inspect_image(ref)
    except ImageNotFound:
        return None


def _from_attrs(res: Resolution, attrs: dict) -> Resolution:
    res.image_id = attrs["Id"]
    digests = attrs.get("RepoDigests") or []
    res.digest = digests[0].split("@", 1)[1] if digests else None
    res.size_bytes = int(attrs["Size"])
    res.layer_count = len((attrs.get("RootFS") or {}).get("Layers") or [])
    return res


def _standin(res: Resolution, recipe: standins.Recipe, attrs: dict, status: str) -> Resolution:
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    res.status = status
    res.standin = True
    res.used_ref = recipe.tag
    res.recipe = recipe.slug
    res.recipe_sha256 = labels.get("io.harness.standin.recipe-sha256")
    # The label has the exact Node.js version a family recipe's description leaves open.
    res.standin_description = (labels.get("org.opencontainers.image.description")
                               or standins.describe(recipe, labels.get(standins.LABEL_NODE, "")))
    res.node_version = labels.get("io.harness.standin.node-version")
    res.ca_injected = labels.get("io.harness.standin.ca-injected") == "true"
    return _from_attrs(res, attrs)


def resolve(
    client: docker.DockerClient,
    ref: str,
    *,
    mode: str = "auto",
    build: bool = True,
    recipes: dict[str, standins.Recipe] | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> Resolution:
    """Resolve one reference; a failure is returned as status 'missing' with the reasons."""
    if mode not in MODES:
        raise HarnessError(f"--bases must be one of {', '.join(MODES)}, not {mode!r}")
    recipes = standins.load_recipes() if recipes is None else recipes
    res = Resolution(requested=ref, status="missing")
    attrs = _inspect(client, ref)
    if attrs is not None:
        res.status, res.used_ref = "present", ref
        return _from_attrs(res, attrs)

    tried = ["not present locally"]
    if mode in ("auto", "pull"):
        start = time.perf_counter()
        try:
            log(f"pulling {ref}")
            client.api.pull(ref)
            attrs = _inspect(client, ref)
        except (APIError, OSError) as exc:
            tried.append(f"pull failed ({first_line(exc)})")
        res.seconds = time.perf_counter() - start
        if attrs is not None:
            res.status, res.used_ref = "pulled", ref
            return _from_attrs(res, attrs)
        if mode == "pull":
            res.error = f"{ref}: " + "; ".join(tried)
            return res
    else:
        tried.append("not pulled (--bases=present)")

    # A directory recipe for the exact reference, else its family's for this tag.
    recipe, why_not = families.find(recipes, ref)
    if recipe is None:
        tried.append(why_not)
        res.error = f"{ref}: " + "; ".join(tried)
        return res
    attrs = standins.existing_standin(client, recipe)
    if attrs is not None:
        return _standin(res, recipe, attrs, "stand-in")
    if mode == "present" or not build:
        tried.append(f"stand-in {recipe.tag} not built (run `harness bases --build`)")
        res.error = f"{ref}: " + "; ".join(tried)
        return res
    start = time.perf_counter()
    try:
        built = standins.ensure_standin(client, recipe, log=log)
    except HarnessError as exc:
        tried.append(f"stand-in build failed ({exc})")
        res.error = f"{ref}: " + "; ".join(tried)
        return res
    res = _standin(res, recipe, client.api.inspect_image(built.image_id), "stand-in built")
    res.seconds = time.perf_counter() - start
    return res


# --- lock file --------------------------------------------------------------------------

def lock_entries(resolutions: dict[str, Resolution]) -> dict:
    return {
        "lock_version": LOCK_VERSION,
        "bases": {
            ref: {"image_id": r.image_id, "digest": r.digest, "standin": r.standin,
                  "used_ref": r.used_ref, "recipe_sha256": r.recipe_sha256}
            for ref, r in sorted(resolutions.items()) if r.image_id
        },
    }


def check_lock(path: Path, resolutions: dict[str, Resolution]) -> list[str]:
    """Differences between the lock at `path` and what resolved now (empty: same bases)."""
    try:
        lock = json.loads(path.read_text())
        pinned = lock["bases"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HarnessError(f"bases lock {path}: unreadable ({exc})") from None
    problems = []
    for ref, res in sorted(resolutions.items()):
        want = pinned.get(ref)
        if want is None:
            problems.append(f"{ref} is not in the lock")
        elif res.image_id != want.get("image_id"):
            problems.append(f"{ref} resolves to {_short_id(res.image_id)}, "
                            f"the lock pins {_short_id(want.get('image_id'))}")
    return problems


def write_lock(path: Path, resolutions: dict[str, Resolution]) -> None:
    write_atomic(path, json.dumps(lock_entries(resolutions), indent=2) + "\n")


def _short_id(image_id: str | None) -> str:
    return (image_id or "nothing").replace("sha256:", "")[:12]
