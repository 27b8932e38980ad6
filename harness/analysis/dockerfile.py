"""Just enough Dockerfile parsing to resolve base images and rewrite FROM lines.

Pure functions: text in, data out. The engine remains the judge of syntax; this
module only needs the stages, their bases and the declared ARGs.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field

_VAR = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-+])?(?P<word>[^}]*)\}"  # ${A:-w}
                  r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")  # $A
_ESCAPE_DIRECTIVE = re.compile(r"^#\s*escape\s*=\s*(\S)\s*$", re.IGNORECASE)
_DIRECTIVE = re.compile(r"^#\s*[a-zA-Z]+\s*=")


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case, e.g. "FROM"
    args: str  # the rest of the logical line, continuations joined
    line: int  # 1-based line of its first physical line
    end_line: int  # 1-based line of its last physical line


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None  # the AS name, lower-cased like the engine does
    base: str  # the FROM reference after ARG expansion
    base_raw: str  # the FROM reference as written
    from_line: int
    platform: str | None = None
    base_is_stage: bool = False  # FROM <earlier stage>
    instructions: tuple[Instruction, ...] = ()

    @property
    def is_scratch(self) -> bool:
        return self.base.lower() == "scratch"

    @property
    def needs_resolution(self) -> bool:
        return not (self.is_scratch or self.base_is_stage)


@dataclass(frozen=True)
class Dockerfile:
    instructions: tuple[Instruction, ...]
    stages: tuple[Stage, ...]
    global_args: dict[str, str | None]  # ARGs before the first FROM and their defaults
    declared_args: frozenset[str] = field(default_factory=frozenset)

    def stage(self, target: str | None) -> Stage:
        """The stage a build with `target` ends at (the last one without a target)."""
        if not self.stages:
            raise ValueError("no FROM instruction")
        if target is None:
            return self.stages[-1]
        for st in self.stages:
            if st.name == target.lower():
                return st
        names = ", ".join(s.name for s in self.stages if s.name) or "none"
        raise ValueError(f"target stage {target!r} not found (stages: {names})")

    def stages_for(self, target: str | None) -> list[Stage]:
        """Every stage up to the target, as the classic builder builds them."""
        last = self.stage(target)
        return [s for s in self.stages if s.index <= last.index]


def logical_lines(text: str) -> list[Instruction]:
    """Split into instructions: comments dropped, continuations joined."""
    escape = "\\"
    lines = text.splitlines()
    # Parser directives sit at the very top, before any other line.
    for raw in lines:
        m = _ESCAPE_DIRECTIVE.match(raw.strip())
        if m:
            escape = m.group(1)
            continue
        if _DIRECTIVE.match(raw.strip()):
            continue
        break
    out: list[Instruction] = []
    buf: list[str] = []
    start = 0
    for no, raw in enumerate(lines, 1):
        stripped = raw.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if buf and stripped.startswith("#"):
            continue  # comments inside a continued instruction are skipped
        if not buf:
            start = no
        if stripped.endswith(escape):
            buf.append(stripped[: -len(escape)].rstrip())
            continue
        buf.append(stripped)
        out.append(_instruction(" ".join(p for p in buf if p), start, no))
        buf = []
    if buf:
        out.append(_instruction(" ".join(p for p in buf if p), start, len(lines)))
    return out


def _instruction(logical: str, start: int, end: int) -> Instruction:
    keyword, _, args = logical.partition(" ")
    return Instruction(keyword.upper(), args.strip(), start, end)


def expand(value: str, env: dict[str, str | None]) -> str:
    """Substitute $VAR, ${VAR}, ${VAR:-default} and ${VAR:+alt} like the builder."""

    def sub(m: re.Match[str]) -> str:
        name = m.group("braced") or m.group("bare")
        current = env.get(name)
        op = m.group("op")
        word = m.group("word") or ""
        if op in (":-", "-"):
            return current if current else word
        if op in (":+", "+"):
            return word if current else ""
        return current or ""

    return _VAR.sub(sub, value)


def _split_arg(args: str) -> tuple[str, str | None]:
    name, eq, default = args.partition("=")
    default = default.strip()
    if len(default) >= 2 and default[0] == default[-1] and default[0] in "\"'":
        default = default[1:-1]
    return name.strip(), (default if eq else None)


def parse(text: str, build_args: dict[str, str] | None = None) -> Dockerfile:
    """Parse a Dockerfile and resolve each FROM with the global ARGs and `build_args`."""
    build_args = build_args or {}
    instructions = logical_lines(text)
    global_args: dict[str, str | None] = {}
    declared: set[str] = set()
    stages: list[Stage] = []
    current: dict | None = None
    body: list[Instruction] = []

    def close() -> None:
        if current is not None:
            stages.append(Stage(**current, instructions=tuple(body)))

    for ins in instructions:
        if ins.keyword == "ARG":
            for token in ins.args.split():
                name, default = _split_arg(token)
                declared.add(name)
                if current is None:
                    global_args[name] = build_args.get(name, default)
        if ins.keyword != "FROM":
            if current is not None:
                body.append(ins)
            continue
        close()
        body = []
        tokens = ins.args.split()
        platform = None
        while tokens and tokens[0].startswith("--"):
            flag = tokens.pop(0)
            if flag.startswith("--platform="):
                platform = flag.split("=", 1)[1]
        if not tokens:
            raise ValueError(f"line {ins.line}: FROM without an image")
        raw = tokens[0]
        name = tokens[2].lower() if len(tokens) >= 3 and tokens[1].lower() == "as" else None
        base = expand(raw, global_args)
        earlier = {s.name for s in stages if s.name}
        current = dict(
            index=len(stages),
            name=name,
            base=base,
            base_raw=raw,
            from_line=ins.line,
            platform=platform,
            base_is_stage=base.lower() in earlier,
        )
    close()
    return Dockerfile(tuple(instructions), tuple(stages), global_args, frozenset(declared))


def rewrite_from(text: str, replacements: dict[int, str]) -> str:
    """Return `text` with the image of FROM number i replaced by replacements[i].

    Only the image token changes; flags, the AS name, comments and line numbers stay,
    so the engine's error messages still point at the user's own lines.
    """
    if not replacements:
        return text
    lines = text.splitlines(keepends=True)
    froms = [ins for ins in logical_lines(text) if ins.keyword == "FROM"]
    for index, new_ref in replacements.items():
        ins = froms[index]
        raw_line = lines[ins.line - 1]
        tokens = ins.args.split()
        image = next(t for t in tokens if not t.startswith("--"))
        # The image is on the FROM line itself in every Dockerfile seen in practice;
        # a continuation before it would leave the line unchanged, caught below.
        pos = raw_line.find(image, raw_line.upper().find("FROM") + 4)
        if pos < 0:
            raise ValueError(f"line {ins.line}: cannot locate the image {image!r} to substitute")
        lines[ins.line - 1] = raw_line[:pos] + new_ref + raw_line[pos + len(image):]
    return "".join(lines)


# --- features the classic builder cannot build -------------------------------------------

# Flags the classic builder refuses ("the --mount option requires BuildKit", "Unknown flag:
# link"): every one of them is certain to fail there and is understood by BuildKit.
_BUILDKIT_FLAGS = {
    "RUN": ("mount", "network", "security", "device"),
    "COPY": ("chmod", "link", "parents", "exclude"),
    "ADD": ("chmod", "link", "checksum", "keep-git-dir", "exclude"),
}
_HEREDOC = re.compile(r"(?<!<)<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")


def needs_buildkit(text: str) -> str | None:
    """Why the classic builder cannot build this Dockerfile (one line), or None.

    Only certain cases: a flag the classic builder refuses on RUN, COPY or ADD, and a
    heredoc (`RUN <<EOF` ... `EOF`: the classic parser reads its body as instructions).
    Each reason names the feature and its line, e.g. "RUN --mount=type=cache (line 7)".
    """
    lines = text.splitlines()
    reasons: list[str] = []
    for ins in logical_lines(text):
        flags = _BUILDKIT_FLAGS.get(ins.keyword)
        if flags is None:
            continue
        tokens = ins.args.split()
        for token in tokens:
            if not token.startswith("--"):
                break
            name, _, value = token[2:].partition("=")
            if name.lower() in flags:
                reasons.append(f"{ins.keyword} {_flag_text(name.lower(), value)} (line {ins.line})")
        heredoc = _heredoc(ins, lines)
        if heredoc:
            reasons.append(f"{ins.keyword} heredoc <<{heredoc} (line {ins.line})")
    if not reasons:
        return None
    reasons = list(dict.fromkeys(reasons))
    more = len(reasons) - 3
    return ", ".join(reasons[:3]) + (f" and {more} more" if more > 0 else "")


def _flag_text(name: str, value: str) -> str:
    if name == "mount":
        fields = dict(f.partition("=")[::2] for f in value.split(",") if f)
        return f"--mount=type={fields.get('type') or 'bind'}"
    if name in ("network", "security") and value:
        return f"--{name}={value}"
    return f"--{name}"


def _heredoc(ins: Instruction, lines: list[str]) -> str | None:
    """The delimiter of a heredoc the instruction opens, when its closing line follows."""
    m = _HEREDOC.search(ins.args)
    if not m:
        return None
    word = m.group(3)
    after = lines[ins.end_line:]
    strip_tabs = m.group(1) == "-"
    for line in after:
        body = line.lstrip("\t") if strip_tabs else line
        if body.rstrip() == word:
            return word
    return None


# --- mistakes the engine would only find mid-run ------------------------------------------

# Every instruction the Dockerfile reference knows (BuildKit's and the classic builder's).
INSTRUCTIONS = frozenset({
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK",
    "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME",
    "WORKDIR",
})
_FROM_FLAG = re.compile(r"(?:^|\s)--from=(\S+)")


def problems(parsed: Dockerfile) -> list[str]:
    """What would make the build fail, found without an engine, one line each: an unknown
    instruction, and a `COPY --from` naming no earlier stage. An image in `--from` is
    written with a tag, digest or registry (`--from=nginx:1.27`); a bare word that names
    no stage is taken for a misspelt stage, as it almost always is."""
    out = [f"line {ins.line}: unknown instruction {ins.keyword}"
           + (f" (did you mean {_close(ins.keyword)}?)" if _close(ins.keyword) else "")
           for ins in parsed.instructions if ins.keyword not in INSTRUCTIONS]
    for stage in parsed.stages:
        earlier = {s.name for s in parsed.stages[:stage.index] if s.name}
        for ins in stage.instructions:
            m = _FROM_FLAG.search(ins.args) if ins.keyword in ("COPY", "ADD") else None
            if m and not _names_a_source(m.group(1), earlier, stage.index):
                out.append(f"line {ins.line}: {ins.keyword} --from={m.group(1)} names no earlier "
                           f"stage" + (f" (stages: {', '.join(sorted(earlier))})" if earlier else ""))
    return out


def _names_a_source(value: str, earlier: set[str], index: int) -> bool:
    if value.isdigit():
        return int(value) < index
    if value.lower() in earlier or "$" in value:
        return True
    return any(c in value for c in ":/@.")  # an image reference


def _close(keyword: str) -> str | None:
    import difflib

    match = difflib.get_close_matches(keyword, sorted(INSTRUCTIONS), n=1, cutoff=0.75)
    return match[0] if match else None


# ---------------------------------------------------------------------- COPY sources

_WILDCARD = re.compile(r"[*?\[]")


def copy_sources(ins: Instruction) -> list[str] | None:
    """The context paths a COPY or ADD reads (None when it reads another stage or an
    image, a heredoc or a URL, or names a variable: what only the builder can resolve)."""
    if ins.keyword not in ("COPY", "ADD") or _FROM_FLAG.search(ins.args) or "<<" in ins.args:
        return None
    rest = ins.args.strip()
    if rest.startswith("["):
        try:
            tokens = [str(t) for t in json.loads(rest)]
        except ValueError:
            return None
    else:
        tokens = [t for t in rest.split() if not t.startswith("--")]
    sources = tokens[:-1]
    if not sources or any("$" in t or "://" in t or t.startswith("git@") for t in sources):
        return None
    return sources


def _matches(source: str, paths: set[str]) -> bool:
    """Whether a COPY source names something among `paths` (context-relative files and
    directories): itself, a directory's contents, or a wildcard in one path segment each."""
    s = source.strip().lstrip("/")
    while s.startswith("./"):
        s = s[2:]
    s = s.rstrip("/")
    if s in ("", "."):
        return True
    if _WILDCARD.search(s):
        depth = s.count("/")
        return any(p.count("/") == depth and fnmatch.fnmatchcase(p, s) for p in paths)
    return s in paths or any(p.startswith(s + "/") for p in paths)


def copy_source_problems(stages: tuple[Stage, ...] | list[Stage], sent: set[str],
                         present: set[str]) -> list[str]:
    """COPY and ADD sources the build will not find, one line each: those `.dockerignore`
    keeps out of the context (`sent`: what is sent after it) and those not in the context
    at all (`present`: every path in it). Only the stages built are read."""
    out = []
    for stage in stages:
        for ins in stage.instructions:
            for source in copy_sources(ins) or []:
                if _matches(source, sent):
                    continue
                why = ("excluded by .dockerignore" if _matches(source, present)
                       else "not in the build context")
                out.append(f"line {ins.line}: {ins.keyword} {source}: {why}")
    return out
