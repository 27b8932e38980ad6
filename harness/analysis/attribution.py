"""Where an image's bytes come from: each layer to the history entry, the Dockerfile
instruction and the stage that made it, and each layer's bytes split into dependencies
(node_modules), the application directory and the rest.

Pure functions over records already taken: `image` is `measure.measure_image`'s result,
`contents` is `layers.analyze_image`'s (optional), `stages` are `dockerfile`'s parsed stages.

History and layers. `RootFS.Layers` has one layer per history entry that made one, in the
same order. The engine's history API does not say which entries did (the image config's
`empty_layer` flag is not exposed), so it is worked out:

* an entry with a size made a layer;
* a metadata instruction (ENV, LABEL, CMD, ARG, USER, EXPOSE, ...) never does;
* a 0-byte RUN, COPY, ADD or WORKDIR may or may not. Seen on engine 20.10's classic
  builder: a step makes a layer iff its diff has any entry, bytes or not. A COPY always
  does (an empty directory still makes a 0-byte layer), a WORKDIR does when it creates
  its directory (`#(nop) WORKDIR /app` on a base without /app: a 0-byte layer), a RUN
  that changes nothing does not (`empty_layer` in the config; a `mkdir` would). So
  neither "non-empty entries" nor "non-#(nop) entries" counts the layers right; the
  layer count decides, then the layers' own sizes (from `contents`: a 0-byte entry can
  only have made a 0-byte layer), then the likelier kind (COPY/ADD, then WORKDIR, then
  RUN), then the earlier entry. An entry another fitting assignment would decide the
  other way is flagged `ambiguous`.

Instructions. The entries above the base's are the final stage's instructions, in order
(the classic builder and BuildKit write one entry per instruction, ARG included), plus
entries the build adds itself (the `labels` of a build become LABEL entries at the end).
They are aligned on their keywords, so a `COPY --from=builder` — whose history text
(`COPY dir:<hash> in ./dist`) does not name its source — is attributed to `builder`.
"""

from __future__ import annotations

import re
from typing import Any

METADATA = frozenset({"ENV", "LABEL", "CMD", "ENTRYPOINT", "EXPOSE", "USER", "ARG", "VOLUME",
                      "STOPSIGNAL", "HEALTHCHECK", "SHELL", "ONBUILD", "MAINTAINER"})
LAYERED = frozenset({"RUN", "COPY", "ADD", "WORKDIR"})
KEYWORDS = METADATA | LAYERED
TEXT_LIMIT = 160

_NOP = re.compile(r"#\(nop\)\s*(.*)$", re.DOTALL)
_SHELL = re.compile(r"^(?:/bin/sh|/bin/bash|sh|bash) -c\s+", re.DOTALL)
_ARGS_PREFIX = re.compile(r"^\|(\d+)\s+")
_BUILDKIT_SUFFIX = re.compile(r"\s*# buildkit\s*$")
_FROM_FLAG = re.compile(r"(?:^|\s)--from=(\"[^\"]*\"|'[^']*'|\S+)")


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TEXT_LIMIT else text[:TEXT_LIMIT - 1] + "…"


def _strip_build_args(command: str) -> str:
    """`|2 A=1 B=2 /bin/sh -c cmd` (a RUN that saw build args) -> `/bin/sh -c cmd`."""
    m = _ARGS_PREFIX.match(command)
    if not m:
        return command
    rest = command[m.end():]
    shell = re.search(r"(?:^|\s)(/bin/sh -c\s)", rest)
    if shell:
        return rest[shell.start(1):]
    return rest.split(" ", int(m.group(1)))[-1]  # the values had no spaces, hopefully


def parse_created_by(created_by: str) -> tuple[str | None, str]:
    """The instruction keyword of a history entry (None when it is not recognisable) and a
    short text of the instruction: `/bin/sh -c #(nop)  ENV A=1` -> ("ENV", "ENV A=1"),
    `/bin/sh -c npm ci` -> ("RUN", "RUN npm ci"), BuildKit's `RUN /bin/sh -c npm ci # buildkit`
    -> ("RUN", "RUN npm ci")."""
    text = (created_by or "").strip()
    if not text:
        return None, ""
    nop = _NOP.search(text)
    if nop:  # the classic builder's metadata, COPY, ADD and WORKDIR
        body = nop.group(1).strip()
        keyword = body.split(" ", 1)[0].upper()
        return (keyword if keyword in KEYWORDS else None), _short(body)
    body = _BUILDKIT_SUFFIX.sub("", text)
    first, _, rest = body.partition(" ")
    if first.upper() in KEYWORDS and (first.isupper() or text != body):  # BuildKit's form
        keyword = first.upper()
        if keyword == "RUN":
            rest = _SHELL.sub("", _strip_build_args(rest.strip()))
        return keyword, _short(f"{keyword} {rest}".strip())
    # The classic builder's RUN: the command itself, shell form or exec form.
    return "RUN", _short("RUN " + _SHELL.sub("", _strip_build_args(body)))


# ---------------------------------------------------------------- history entries -> layers


# How likely a 0-byte entry of each kind is to have made a layer, to choose among the
# assignments the layer count allows: a COPY or ADD always leaves entries (the files, or
# at least the directory), a WORKDIR only when it creates its directory, a RUN only when
# it changed something.
_TAKE_WEIGHT = {"COPY": 3, "ADD": 3, "WORKDIR": 2, "RUN": 1, None: 1}


def _candidates(history: list[dict]) -> list[tuple[str, int]]:
    """Per entry: ("yes", _) it has bytes, ("no", _) metadata, or ("maybe", weight) a 0-byte
    RUN/COPY/ADD/WORKDIR or an entry whose text says nothing."""
    out = []
    for entry in history:
        keyword, _ = parse_created_by(entry.get("created_by") or "")
        if int(entry.get("size_bytes") or 0) > 0:
            out.append(("yes", 0))
        elif keyword in METADATA:
            out.append(("no", 0))
        else:
            out.append(("maybe", _TAKE_WEIGHT.get(keyword, 1)))
    return out


_LOST = float("-inf")


def _best_weights(kinds: list[tuple[str, int]], m: int, can_take, can_skip) -> list[list[float]]:
    """best[i][j]: the best weight with which entries i.. make exactly layers j.. (_LOST:
    they cannot)."""
    n = len(kinds)
    best = [[_LOST] * (m + 1) for _ in range(n + 1)]
    best[n][m] = 0
    for i in range(n - 1, -1, -1):
        for j in range(m, -1, -1):
            take = kinds[i][1] + best[i + 1][j + 1] if can_take(i, j) else _LOST
            skip = best[i + 1][j] if can_skip(i) else _LOST
            best[i][j] = max(take, skip)
    return best


def _reachable(n: int, m: int, can_take, can_skip) -> list[list[bool]]:
    """ahead[i][j]: entries ..i-1 can make exactly layers ..j-1."""
    ahead = [[False] * (m + 1) for _ in range(n + 1)]
    ahead[0][0] = True
    for i in range(n):
        for j in range(m + 1):
            if not ahead[i][j]:
                continue
            if can_take(i, j):
                ahead[i + 1][j + 1] = True
            if can_skip(i):
                ahead[i + 1][j] = True
    return ahead


def _assign(kinds: list[tuple[str, int]], sizes: list[int],
            layer_sizes: list[int | None]) -> tuple[list[int | None], list[bool]] | None:
    """Which layer each entry made (None: none), in order, and for each entry whether
    another assignment that fits would decide it the other way. None when none fits.

    An entry with bytes must meet a layer of its size when `layer_sizes[j]` is known, a
    0-byte candidate a layer of 0 bytes. Of the assignments that fit, the one taking the
    likeliest candidates (`_TAKE_WEIGHT`), then the earliest, is chosen."""
    n, m = len(kinds), len(layer_sizes)

    def can_take(i: int, j: int) -> bool:
        return j < m and kinds[i][0] != "no" and layer_sizes[j] in (None, sizes[i])

    def can_skip(i: int) -> bool:
        return kinds[i][0] != "yes"

    best = _best_weights(kinds, m, can_take, can_skip)
    if best[0][0] == _LOST:
        return None
    ahead = _reachable(n, m, can_take, can_skip)
    out: list[int | None] = []
    open_: list[bool] = []
    j = 0
    for i in range(n):
        take = can_take(i, j) and kinds[i][1] + best[i + 1][j + 1] == best[i][j]
        out.append(j if take else None)
        j += take
        could_take = any(ahead[i][k] and can_take(i, k) and best[i + 1][k + 1] != _LOST for k in range(m))
        could_skip = can_skip(i) and any(ahead[i][k] and best[i + 1][k] != _LOST for k in range(m + 1))
        open_.append(could_take and could_skip)
    return out, open_


# ---------------------------------------------------------------- history entries -> Dockerfile


def _align(keywords: list[str | None], instructions: list) -> dict[int, Any]:
    """Entry position -> instruction, by the longest common subsequence of keywords."""
    n, m = len(keywords), len(instructions)
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            if keywords[i] is not None and keywords[i] == instructions[j].keyword:
                best[i][j] = 1 + best[i + 1][j + 1]
            else:
                best[i][j] = max(best[i + 1][j], best[i][j + 1])
    out, i, j = {}, 0, 0
    while i < n and j < m:
        if keywords[i] is not None and keywords[i] == instructions[j].keyword \
                and best[i][j] == 1 + best[i + 1][j + 1]:
            out[i] = instructions[j]
            i, j = i + 1, j + 1
        elif best[i + 1][j] >= best[i][j + 1]:
            i += 1
        else:
            j += 1
    return out


def stage_label(stage) -> str | int:
    return stage.name if stage.name else stage.index


def _source_stage(instruction, stages: list) -> tuple[str | int | None, str | None]:
    """For COPY/ADD --from=X: the stage X names (its label), else the image it names."""
    if instruction is None or instruction.keyword not in ("COPY", "ADD"):
        return None, None
    m = _FROM_FLAG.search(instruction.args)
    if not m:
        return None, None
    ref = m.group(1).strip("\"'")
    for stage in stages:
        if (stage.name and stage.name == ref.lower()) or (ref.isdigit() and stage.index == int(ref)):
            return stage_label(stage), None
    return None, ref


# ---------------------------------------------------------------- the entry point


def _usable_contents(contents: dict | None, diff_ids: list[str], warnings: list[str]) -> list[dict] | None:
    if not contents:
        return None
    if contents.get("error"):
        warnings.append(f"no layer contents: {contents['error']}")
        return None
    per_layer = contents.get("layers") or []
    if [layer.get("diff_id") for layer in per_layer] != diff_ids:
        warnings.append("layer contents do not list the image's layers; ignored")
        return None
    return per_layer


def _layer_count(image: dict, diff_ids: list[str]) -> int:
    count = image.get("layer_count")
    return int(count if count is not None else len(diff_ids))


def _base_count(base_history_count: int | None, history_count: int, warnings: list[str]) -> int:
    """The base's history entries, clamped to the image's (warned when it claims more)."""
    if (base_history_count or 0) > history_count:
        warnings.append(f"the base has {base_history_count} history entries, the image {history_count}")
    return min(max(int(base_history_count or 0), 0), history_count)


def _map_entries(history: list[dict], per_layer: list[dict] | None, layer_count: int,
                 warnings: list[str]) -> tuple[list[int | None], list[bool]]:
    """`_assign`'s answer, first with the layers' own sizes, then without; when neither
    fits, the sized entries in order, every entry undecided."""
    kinds = _candidates(history)
    sizes = [int(h.get("size_bytes") or 0) for h in history]
    known = [layer.get("size_bytes") for layer in per_layer] if per_layer else [None] * layer_count
    assigned = _assign(kinds, sizes, known) or _assign(kinds, sizes, [None] * layer_count)
    if assigned is not None:
        return assigned
    warnings.append("the history does not account for the layers; matched by order of sized entries")
    made = [i for i, (k, _) in enumerate(kinds) if k == "yes"][:layer_count]
    mapping: list[int | None] = [None] * len(history)
    for j, i in enumerate(made):
        mapping[i] = j
    return mapping, [True] * len(history)


def _final_stage(stages: list | None, final_stage_index: int | None):
    if not stages:
        return None
    if final_stage_index is None:
        return stages[-1]
    return next((s for s in stages if s.index == final_stage_index), None)


def _layer_sources(mapping: list[int | None], base_count: int, matched: dict[int, Any],
                   layer_count: int) -> list[tuple[int | None, bool, Any]]:
    """Per layer: the history entry that made it (None: none), whether it is the base's,
    and the final stage's instruction it was aligned with (None for the base's)."""
    entry_of = {j: i for i, j in enumerate(mapping) if j is not None}
    base_layers = sum(1 for x in mapping[:base_count] if x is not None)
    out = []
    for j in range(layer_count):
        i = entry_of.get(j)
        base = j < base_layers
        instruction = matched.get(i - base_count) if i is not None and not base else None
        out.append((i, base, instruction))
    return out


def _split_layer(j: int, size: int | None, content: dict,
                 warnings: list[str]) -> tuple[int | None, int | None, int | None]:
    """A layer's dependencies, app and other bytes; other from the history size when it
    covers the contents' bytes, else the contents' own figure."""
    nm, app = content.get("node_modules_bytes"), content.get("app_bytes")
    other = size - nm - app if None not in (size, nm, app) else None
    if other is not None and other < 0:
        warnings.append(f"layer {j}: history size {size} below its contents' bytes")
        other = content.get("other_bytes")
    return nm, app, other


def _entry_fields(i: int | None, parsed: list[tuple[str | None, str]],
                  undecided: list[bool]) -> dict:
    """The history entry that made a layer (None: none found), its text, and whether
    another fitting assignment would have decided it the other way."""
    if i is None:
        return {"history_index": None, "ambiguous": False, "instruction": None}
    return {"history_index": i, "ambiguous": bool(undecided[i]), "instruction": parsed[i][1]}


def _dockerfile_fields(instruction) -> dict:
    if instruction is None:
        return {"dockerfile_line": None, "dockerfile_instruction": None}
    return {"dockerfile_line": instruction.line,
            "dockerfile_instruction": _short(f"{instruction.keyword} {instruction.args}")}


def _image_split(layers: list[dict], per_layer: list[dict] | None) -> dict:
    """Base bytes, and the three-way split above the base (None unless every layer above
    the base has every figure)."""
    above = [layer for layer in layers if layer["source"] == "instruction"]
    split_known = per_layer is not None and all(
        layer[key] is not None for layer in above
        for key in ("size_bytes", "node_modules_bytes", "app_bytes", "other_bytes"))

    def total(key: str) -> int | None:
        return sum(layer[key] for layer in above) if split_known else None

    return {
        "base_bytes": sum(layer["size_bytes"] or 0 for layer in layers if layer["source"] == "base"),
        "dependencies_bytes": total("node_modules_bytes"),
        "app_bytes": total("app_bytes"),
        "other_bytes": total("other_bytes"),
    }


def _bytes_by_stage(layers: list[dict], final_label: str | int | None) -> dict[str, int]:
    """Bytes above the base per stage: a `COPY --from=X` layer counts for X, the rest for
    the final stage ("final" when there are no stages)."""
    own = str(final_label) if final_label is not None else "final"
    by_stage: dict[str, int] = {own: 0}
    for layer in layers:
        if layer["source"] != "instruction":
            continue
        key = str(layer["from_stage"]) if layer["from_stage"] is not None else own
        by_stage[key] = by_stage.get(key, 0) + (layer["size_bytes"] or 0)
    return by_stage


def attribute(image: dict, contents: dict | None, base_history_count: int | None,
              stages: list, final_stage_index: int | None = None) -> dict:
    """Each layer of the final image to its source ("base" or "instruction"), its history
    text, the Dockerfile instruction and stage, and its bytes split three ways; plus the
    image's split (base, dependencies, app, other; the last three above the base) and the
    bytes each stage contributed above the base (a `COPY --from=X` layer counts for X).

    `base_history_count`: history entries of the final stage's base image (None or 0 for
    FROM scratch). `final_stage_index`: the final stage's index (default: the last stage)."""
    history = list(image.get("history") or [])
    diff_ids = list(image.get("layers") or [])
    layer_count = _layer_count(image, diff_ids)
    warnings: list[str] = []
    base_count = _base_count(base_history_count, len(history), warnings)
    per_layer = _usable_contents(contents, diff_ids, warnings)
    mapping, undecided = _map_entries(history, per_layer, layer_count, warnings)
    final = _final_stage(stages, final_stage_index)
    final_label = stage_label(final) if final is not None else None
    parsed = [parse_created_by(h.get("created_by") or "") for h in history]
    matched = _align([k for k, _ in parsed[base_count:]], list(final.instructions)) if final else {}

    out_layers = []
    for j, (i, base, instruction) in enumerate(_layer_sources(mapping, base_count, matched, layer_count)):
        content = per_layer[j] if per_layer else {}
        size = int(history[i].get("size_bytes") or 0) if i is not None else content.get("size_bytes")
        nm, app, other = _split_layer(j, size, content, warnings)
        from_stage, from_image = _source_stage(instruction, stages or [])
        out_layers.append({
            "index": j,
            "diff_id": diff_ids[j] if j < len(diff_ids) else None,
            "size_bytes": size,
            "source": "base" if base else "instruction",
            **_entry_fields(i, parsed, undecided),
            **_dockerfile_fields(instruction),
            "stage": None if base else final_label,
            "from_stage": from_stage,
            "from_image": from_image,
            "node_modules_bytes": nm,
            "app_bytes": app,
            "other_bytes": other,
        })

    return {
        "history_count": len(history),
        "layer_count": layer_count,
        "empty_history_count": sum(1 for x in mapping if x is None),
        "base_history_count": base_count,
        "image_size_bytes": image.get("size_bytes"),
        "ambiguous": any(undecided),
        "warnings": warnings,
        "layers": out_layers,
        "split": _image_split(out_layers, per_layer),
        "by_stage": _bytes_by_stage(out_layers, final_label),
    }
