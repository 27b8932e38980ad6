"""What the engine says about a built image: size, layers, history per instruction."""

from __future__ import annotations

import docker


def measure_image(client: docker.DockerClient, image_id: str) -> dict:
    """Figures exactly as `docker image inspect` and `docker history` give them."""
    attrs = client.api.inspect_image(image_id)
    history = client.api.history(image_id)
    cfg = attrs.get("Config") or {}
    entries = [
        {
            "id": h.get("Id"),
            "created_by": h.get("CreatedBy", ""),
            "size_bytes": int(h.get("Size") or 0),
            "created": h.get("Created"),
            "comment": h.get("Comment") or "",
        }
        for h in reversed(history)  # oldest first, like the Dockerfile reads
    ]
    return {
        "id": attrs["Id"],
        "size_bytes": int(attrs["Size"]),  # the engine's; harness.analysis.sizes redefines it
        "inspect_size_bytes": int(attrs["Size"]),
        "listed_size_bytes": _listed_size(client, attrs["Id"]),
        "layer_count": len((attrs.get("RootFS") or {}).get("Layers") or []),
        "layers": list((attrs.get("RootFS") or {}).get("Layers") or []),
        "history_count": len(entries),
        "history": entries,
        "user": cfg.get("User") or "",
        "entrypoint": cfg.get("Entrypoint"),
        "cmd": cfg.get("Cmd"),
        "exposed_ports": sorted((cfg.get("ExposedPorts") or {}).keys()),
        "architecture": attrs.get("Architecture"),
        "os": attrs.get("Os"),
    }


def _listed_size(client: docker.DockerClient, image_id: str) -> int | None:
    """The SIZE `docker images` shows for the image (its own figure on each store)."""
    for image in client.api.images(all=True):
        if image.get("Id") == image_id or image_id.endswith(str(image.get("Id"))):
            return image.get("Size")
    return None

