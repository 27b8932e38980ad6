"""Remove what the harness left on the engine: every object labelled `io.harness.run`.

Only labelled objects are touched. Containers go first (forced: a container keeps its
image), then images by id, children before parents, then networks and volumes. An image
is removed by untagging each of its tags and then its id, never with force, so an image
that something unlabelled still uses (a child image, a container) stays and is reported.
As with `docker rmi`, an image's untagged build parents that nothing else uses go with it.

Labels are inherited: an image built FROM a harness image, and a container started from
one, carry the same `io.harness.run` unless they set it themselves, and are cleaned with
that run. `find` lists what `remove` would take, to show before removing.

The loopback registry is stopped by `registry.stop()`; when it runs as a container, that
container carries the run's label too, so a run killed before it stopped it is cleaned here.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

import docker
from docker.errors import NotFound

from harness.engine import ENGINE_ERRORS, first_line
from harness.errors import HarnessError

LABEL_RUN = "io.harness.run"  # the same label as runner.LABEL_RUN
FINAL_TAGS = "harness-bench/*:latest"  # Variant.image_tag: kept with keep_final
KINDS = ("containers", "images", "networks", "volumes")


def _label_filter(run_id: str | None) -> dict:
    return {"label": LABEL_RUN if run_id is None else f"{LABEL_RUN}={run_id}"}


def _run_of(labels: dict | None) -> str | None:
    return (labels or {}).get(LABEL_RUN)


def find(client: docker.DockerClient, run_id: str | None) -> dict[str, list[dict]]:
    """The objects labelled with the run (any run when `run_id` is None), by kind.

    Each object is a dict: containers {id, name, run}, images {id, tags, run, parent,
    created}, networks {id, name, run}, volumes {name, run}. Images newest first, and
    only the run's own: an untagged labelled image that is the parent of another labelled
    one (a classic build's intermediate LABEL step) is left out: removing its child
    removes it.
    An engine that does not answer is a one-line HarnessError."""
    api, flt = client.api, _label_filter(run_id)
    try:
        containers = [{"id": c["Id"], "name": (c.get("Names") or ["/" + c["Id"][:12]])[0].lstrip("/"),
                       "run": _run_of(c.get("Labels"))}
                      for c in api.containers(all=True, filters=flt)]
        labelled = api.images(all=True, filters=flt)
        # The classic builder adds one LABEL step per label, so the step images between
        # them are labelled too: they are parents of the run's images and go with them.
        parents = {i.get("ParentId") for i in labelled}
        images = []
        for i in labelled:
            tags = [t for t in (i.get("RepoTags") or []) if t != "<none>:<none>"]
            if i["Id"] in parents and not tags:
                continue
            images.append({"id": i["Id"], "tags": tags, "run": _run_of(i.get("Labels")),
                           "parent": i.get("ParentId") or None, "created": i.get("Created", 0)})
        images.sort(key=lambda i: i["created"], reverse=True)  # children before parents
        networks = [{"id": n["Id"], "name": n.get("Name"), "run": _run_of(n.get("Labels"))}
                    for n in api.networks(filters=flt)]
        volumes = [{"name": v["Name"], "run": _run_of(v.get("Labels"))}
                   for v in (api.volumes(filters=flt) or {}).get("Volumes") or []]
    except ENGINE_ERRORS as exc:
        raise HarnessError(f"cannot list the engine's objects: {first_line(exc)}") from None
    return {"containers": containers, "images": images, "networks": networks,
            "volumes": volumes}


def is_final(image: dict) -> bool:
    """An image tagged as a variant's final image (`harness-bench/<name>:latest`)."""
    return any(fnmatch.fnmatchcase(tag, FINAL_TAGS) for tag in image["tags"])


def remove(client: docker.DockerClient, run_id: str | None, keep_final: bool) -> dict:
    """Remove the run's labelled objects (every run's when `run_id` is None).

    Returns {"run": run_id, "removed": {kind: count}, "kept": [tags of images kept],
    "errors": [one line per object that could not be removed]}. With `keep_final`,
    images tagged `harness-bench/*:latest` (and the labelled images they are built on)
    stay. An object already gone counts as removed. Raises HarnessError only when the
    engine cannot be listed at all."""
    found = find(client, run_id)
    api = client.api
    removed = dict.fromkeys(KINDS, 0)
    errors: list[str] = []
    kept: list[str] = []

    def attempt(kind: str, what: str, action: Callable[[], object], last: bool = True) -> bool:
        try:
            action()
        except NotFound:
            pass  # already gone (an image pruned as the parent of another one)
        except ENGINE_ERRORS as exc:
            if last:
                errors.append(f"{kind[:-1]} {what}: {first_line(exc)}")
            return False
        removed[kind] += 1
        return True

    for c in found["containers"]:
        attempt("containers", f"{c['name']} ({c['id'][:12]})",
                lambda c=c: api.remove_container(c["id"], force=True, v=True))

    images = found["images"]
    if keep_final:
        finals = [i for i in images if is_final(i)]
        keep = ancestors(api, [i["id"] for i in finals])
        kept = sorted(t for i in finals for t in i["tags"] if fnmatch.fnmatchcase(t, FINAL_TAGS))
        images = [i for i in images if i["id"] not in keep]
    # Newest first puts children before parents; an image created in the same second as
    # its labelled child can still come first: it is retried after the others.
    for last in (False, True):
        images = [i for i in images
                  if not attempt("images", _image_name(i), lambda i=i: _remove_image(api, i), last)]

    for n in found["networks"]:
        attempt("networks", f"{n['name']} ({n['id'][:12]})",
                lambda n=n: api.remove_network(n["id"]))
    for v in found["volumes"]:
        attempt("volumes", v["name"], lambda v=v: api.remove_volume(v["name"]))
    return {"run": run_id, "removed": removed, "kept": kept, "errors": errors}


def _image_name(image: dict) -> str:
    short = image["id"].split(":", 1)[-1][:12]
    return f"{short} ({', '.join(image['tags'])})" if image["tags"] else short


def _remove_image(api, image: dict) -> None:
    """Untag every tag, then remove the id if the image is still there; never forced."""
    for tag in image["tags"]:
        try:
            api.remove_image(tag)
        except NotFound:
            pass
    try:
        api.inspect_image(image["id"])
    except NotFound:
        return  # the last untag removed it
    api.remove_image(image["id"])


def ancestors(api, image_ids: list[str]) -> set[str]:
    """The images and their parent chains (a classic build's step images)."""
    out: set[str] = set()
    for image_id in image_ids:
        while image_id and image_id not in out:
            out.add(image_id)
            try:
                image_id = api.inspect_image(image_id).get("Parent") or None
            except NotFound:
                break
    return out


def summary_lines(result: dict) -> list[str]:
    """What `remove` did, as lines for the terminal: counts, kept images, then errors."""
    scope = "every run" if result.get("run") is None else f"run {result['run']}"
    counts = result.get("removed") or {}
    total = sum(counts.values())
    lines = []
    if total == 0 and not result.get("errors") and not result.get("kept"):
        lines.append(f"nothing to remove for {scope} (no object labelled {LABEL_RUN}"
                     + ("" if result.get("run") is None else f"={result['run']}") + ")")
    else:
        parts = ", ".join(f"{counts.get(k, 0)} {_noun(k, counts.get(k, 0))}" for k in KINDS)
        lines.append(f"removed {parts} of {scope}")
    kept = result.get("kept") or []
    if kept:
        lines.append(f"kept {len(kept)} final image{'s' if len(kept) != 1 else ''}: "
                     + ", ".join(kept))
    errors = result.get("errors") or []
    if errors:
        lines.append(f"{len(errors)} object{'s' if len(errors) != 1 else ''} could not be removed:")
        lines += [f"  {e}" for e in errors]
    return lines


def _noun(kind: str, n: int) -> str:
    return kind if n != 1 else kind[:-1]
