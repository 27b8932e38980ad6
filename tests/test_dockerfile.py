import pytest

from harness.analysis import dockerfile

ARTICLE_THREE_STAGE = """\
# Stage 1: Install all dependencies
FROM node:20-alpine AS deps
WORKDIR /app
COPY package*.json ./
RUN npm ci

FROM node:20-alpine AS builder
COPY --from=deps /app/node_modules ./node_modules
RUN npm run build

FROM node:20-alpine AS runner
ENV NODE_ENV=production
USER node
CMD ["node", "dist/index.js"]
"""


def test_stages_and_target():
    df = dockerfile.parse(ARTICLE_THREE_STAGE)
    assert [s.name for s in df.stages] == ["deps", "builder", "runner"]
    assert [s.base for s in df.stages] == ["node:20-alpine"] * 3
    assert df.stage("builder").index == 1
    assert [s.name for s in df.stages_for("builder")] == ["deps", "builder"]
    assert df.stage(None).name == "runner"
    with pytest.raises(ValueError, match="'nope' not found"):
        df.stage("nope")


def test_arg_parameterised_from_uses_defaults_and_build_args():
    text = "ARG NODE=20\nARG FLAVOUR\nFROM node:${NODE}${FLAVOUR:+-}${FLAVOUR}\nARG LATE\n"
    assert dockerfile.parse(text).stages[0].base == "node:20"
    assert dockerfile.parse(text, {"FLAVOUR": "alpine"}).stages[0].base == "node:20-alpine"
    assert dockerfile.parse(text, {"NODE": "22"}).stages[0].base == "node:22"
    assert dockerfile.parse(text).declared_args == {"NODE", "FLAVOUR", "LATE"}


def test_scratch_and_earlier_stage_need_no_resolution():
    df = dockerfile.parse("FROM scratch AS a\nFROM a AS b\nFROM --platform=linux/amd64 busybox:1\n")
    assert [s.needs_resolution for s in df.stages] == [False, False, True]
    assert df.stages[2].platform == "linux/amd64"


def test_continuations_and_comments():
    text = "FROM alpine\nRUN echo a \\\n  # a comment inside\n  && echo b\n"
    ins = dockerfile.logical_lines(text)
    assert [i.keyword for i in ins] == ["FROM", "RUN"]
    assert ins[1].args == "echo a && echo b"
    assert (ins[1].line, ins[1].end_line) == (2, 4)


def test_rewrite_from_changes_only_the_image_token():
    text = "FROM node:20 AS build\nRUN x\nfrom  --platform=$P gcr.io/distroless/nodejs20-debian12 as run # tail\n"
    out = dockerfile.rewrite_from(text, {0: "stand/node:20", 1: "stand/dl:12"})
    assert out == ("FROM stand/node:20 AS build\nRUN x\n"
                   "from  --platform=$P stand/dl:12 as run # tail\n")
    assert dockerfile.rewrite_from(text, {}) == text


# Mistakes found before the first build ---------------------------------------------------

def test_an_unknown_instruction_is_named_with_its_line():
    found = dockerfile.problems(dockerfile.parse("FROM alpine\nRUNN echo hi\n"))
    assert found == ["line 2: unknown instruction RUNN (did you mean RUN?)"]


def test_copy_from_a_stage_that_does_not_exist():
    text = ("FROM alpine AS deps\nFROM alpine\nCOPY --from=deps /a /a\nCOPY --from=nowhere /b /b\n"
            "COPY --from=nginx:1.27 /c /c\nCOPY --from=0 /d /d\nCOPY --from=1 /e /e\n")
    assert dockerfile.problems(dockerfile.parse(text)) == [
        "line 4: COPY --from=nowhere names no earlier stage (stages: deps)",
        "line 7: COPY --from=1 names no earlier stage (stages: deps)"]


def test_the_bundled_variants_have_no_problems():
    from pathlib import Path

    for path in sorted((Path(__file__).parent.parent / "variants").glob("*.Dockerfile")):
        assert dockerfile.problems(dockerfile.parse(path.read_text())) == [], path.name


def test_copy_sources_the_context_will_not_hold_are_named_before_any_build(tmp_path):
    """A COPY source that .dockerignore keeps out, or that the context lacks, is one line
    each; wildcards, directories, `.`, other stages and variables are read as the builder
    reads them (a variable only the builder can resolve is left to it)."""
    from harness.bench import runner
    from harness.bench.variants import Variant

    ctx = tmp_path / "app"
    (ctx / "src").mkdir(parents=True)
    (ctx / "src" / "index.ts").write_text("x")
    (ctx / "secrets").mkdir()
    (ctx / "secrets" / "key").write_text("k")
    (ctx / "package.json").write_text("{}")
    (ctx / "package-lock.json").write_text("{}")
    (ctx / ".dockerignore").write_text("secrets\n*.md\n")
    (ctx / "NOTES.md").write_text("n")
    text = ("FROM node:22-alpine AS builder\nCOPY package*.json ./\nCOPY . .\n"
            "COPY ./src/ /app/src\nCOPY [\"src/index.ts\", \"/x\"]\nCOPY secrets/key /k\n"
            "COPY --chown=node NOTES.md /\nCOPY lib/ /lib\nCOPY ${DIR} /d\nCOPY *.yaml /\n"
            "FROM node:22-alpine\nCOPY --from=builder /app /app\nADD https://x.invalid/a /a\n")
    dockerfile = tmp_path / "v.Dockerfile"
    dockerfile.write_text(text)
    p = runner.plan(Variant("v", "v", dockerfile, ctx))
    assert p.problem == ("v.Dockerfile: line 6: COPY secrets/key: excluded by .dockerignore; "
                         "line 7: COPY NOTES.md: excluded by .dockerignore; "
                         "line 8: COPY lib/: not in the build context; "
                         "line 10: COPY *.yaml: not in the build context")
    dockerfile.write_text("FROM node:22-alpine\nCOPY package*.json ./\nCOPY src ./src\n")
    assert runner.plan(Variant("v", "v", dockerfile, ctx)).problem is None
