"""What the final filesystem shows: the visible files' totals, where the bytes go, and the
facts a reviewer of a Dockerfile asks about (shell, package managers, setuid files, OS packages).

Each inode's bytes count once, under the first of its visible paths in walk order. A content
(size and hash) seen again among the visible inodes is a duplicate: `duplicate_files` and
`duplicate_bytes` count the copies beyond each content's first.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from .filesystem import Node, is_file, lookup, resolve
from .tarparse import APK_DB, DPKG_STATUS, DPKG_STATUS_DIR

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PACKAGE_MANAGERS = {"apk": ("apk",), "dpkg": ("dpkg",), "apt": ("apt-get", "apt"),
                    "npm": ("npm",), "yarn": ("yarn",), "pnpm": ("pnpm",)}
TOP_PATHS = 10
_PACKAGE_JSON = re.compile(r"(?:^|/)node_modules/(?:@[^/]+/)?[^/.@][^/]*/package\.json$")


def top_path(path: str, app_dir: str) -> str:
    """The group a visible file counts under: one level below the app directory and
    below /usr (where a Debian base keeps lib, share and local), the top directory elsewhere."""
    for base in (app_dir.rstrip("/"), "/usr"):
        if path.startswith(base + "/"):
            rest = path[len(base) + 1:]
            return f"{base}/{rest.split('/', 1)[0]}"
    return "/" + path.lstrip("/").split("/", 1)[0]


def _suffix(path: str) -> str:
    return (".d.ts" if path.endswith(".d.ts") else ".ts" if path.endswith(".ts") else
            ".map" if path.endswith(".map") else "")


def visible_totals(files: list[Node], app: str) -> tuple[Counter, Counter, list[dict]]:
    """Counts of the visible files, bytes by top path, and the setuid/setgid files."""
    app_modules = f"{app}/node_modules/".lstrip("/")
    counts: Counter = Counter()
    by_top: Counter = Counter()
    copies: Counter = Counter()
    setuid = []
    seen: set[tuple[int, str]] = set()
    for node in files:
        path = node.entry.path
        counts["file_count"] += 1
        in_modules = "/node_modules/" in "/" + path
        if _PACKAGE_JSON.search("/" + path):
            counts["app_packages" if path.startswith(app_modules) else "other_packages"] += 1
        if node.inode is None or node.inode in seen:
            continue
        seen.add(node.inode)
        content = node.content
        by_top[top_path("/" + path, app)] += content.size
        if content.mode & 0o6000:
            setuid.append({"path": "/" + path, "mode": f"{content.mode & 0o7777:04o}"})
        if not content.size:
            continue
        counts["files_bytes"] += content.size
        key = (content.size, content.digest)
        copies[key] += 1
        if copies[key] > 1:
            counts["duplicate_files"] += 1
            counts["duplicate_bytes"] += content.size
        if in_modules:
            counts["app_modules_bytes" if path.startswith(app_modules) else "other_modules_bytes"] += content.size
        if suffix := _suffix(path):
            counts[suffix] += content.size
    return counts, by_top, sorted(setuid, key=lambda f: f["path"])


def count_os_packages(db: str, texts: list[bytes]) -> int:
    """Installed packages in dpkg status files (stanzas whose Status is installed, or
    with no Status, as distroless's status.d files are) or apk's installed db (P: lines)."""
    if db == "apk":
        return sum(line.startswith(b"P:") for text in texts for line in text.splitlines())
    count = 0
    for text in texts:
        for stanza in re.split(rb"\n\s*\n", text):
            fields = dict(re.findall(rb"^([A-Za-z-]+):[ \t]*(.*)$", stanza, re.MULTILINE))
            installed = fields.get(b"Status", b"install ok installed").strip() == b"install ok installed"
            count += b"Package" in fields and installed
    return count


def package_db(root: Node, captured: list[dict[str, bytes]]) -> tuple[str | None, int | None]:
    """Which package database the image keeps (apk's, or dpkg's status file and the status.d
    directory distroless uses instead), and how many packages it lists, from the visible copy."""
    def content(node: Node) -> bytes:
        index, path = node.inode
        return captured[index].get(path, b"")

    apk = lookup(root, APK_DB)
    if is_file(apk) and apk.inode:
        return "apk", count_os_packages("apk", [content(apk)])
    status_d = lookup(root, DPKG_STATUS_DIR)
    nodes = [lookup(root, DPKG_STATUS), *((status_d.children or {}).values() if status_d else ())]
    texts = [content(node) for node in nodes if is_file(node) and node.inode]
    if not texts:
        return None, None
    return "dpkg", count_os_packages("dpkg", texts)


def search_path(config_env: list[str] | None) -> list[str]:
    for item in config_env or []:
        if item.startswith("PATH="):
            return [d for d in item[5:].split(":") if d]
    return DEFAULT_PATH.split(":")


def describe(root: Node, files: list[Node], captured: list[dict[str, bytes]], *, app_dir: str,
             dev_dependencies: Iterable[str], env: list[str] | None) -> dict:
    app = app_dir.rstrip("/")
    c, by_top, setuid = visible_totals(files, app)
    db, packages = package_db(root, captured)
    path = search_path(env)
    return {
        "file_count": c["file_count"],
        "files_bytes": c["files_bytes"],
        "top_paths": [{"path": p, "bytes": b} for p, b in by_top.most_common(TOP_PATHS)],
        "duplicate_files": c["duplicate_files"],
        "duplicate_bytes": c["duplicate_bytes"],
        "node_modules_bytes": c["app_modules_bytes"] + c["other_modules_bytes"],
        "app_node_modules_bytes": c["app_modules_bytes"],
        "other_node_modules_bytes": c["other_modules_bytes"],
        "node_modules_package_count": c["app_packages"] + c["other_packages"],
        "app_node_modules_package_count": c["app_packages"],
        "other_node_modules_package_count": c["other_packages"],
        "dev_dependencies_present": sorted(
            name for name in dev_dependencies
            if lookup(root, f"{app}/node_modules/{name}".lstrip("/")) is not None),
        "source_map_bytes": c[".map"],
        "typescript_source_bytes": c[".ts"],
        "typescript_declaration_bytes": c[".d.ts"],
        "setuid_files": setuid,
        "has_shell": is_file(resolve(root, "/bin/sh")),
        "package_managers": {
            manager: any(is_file(resolve(root, f"{d}/{exe}")) for d in path for exe in exes)
            for manager, exes in PACKAGE_MANAGERS.items()},
        "os_package_db": db,
        "os_package_count": packages,
    }
