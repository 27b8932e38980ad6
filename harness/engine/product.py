"""Which product answers on an engine's socket: Docker or Podman (pure, no I/O)."""

from __future__ import annotations

DOCKER = "Docker"
PODMAN = "Podman"
PODMAN_REASON = ("Podman serves no BuildKit: its Docker-compatible API builds with buildah "
                 "(--builder classic builds there)")


def product_of(version: dict) -> str:
    """Docker or Podman: Podman's version answer has a component "Podman Engine"."""
    names = {str(c.get("Name", "")) for c in version.get("Components") or [] if isinstance(c, dict)}
    return PODMAN if any(n.startswith("Podman") for n in names) else DOCKER
