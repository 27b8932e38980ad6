#!/usr/bin/env bash
# Commit results/history.jsonl and the newest run to the data branch, in a temporary worktree.
set -euo pipefail
branch=${1:-results-data}
results=$(cd "${2:-results}" && pwd)
work=$(mktemp -d)
trap 'git worktree remove --force "$work" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
if git fetch -q origin "$branch" 2>/dev/null; then
  git worktree add -q "$work" FETCH_HEAD
else
  git worktree add -q --detach "$work"
  git -C "$work" rm -rq --cached . >/dev/null
  find "$work" -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} +
fi
cp "$results/history.jsonl" "$work/history.jsonl"
rm -rf "$work/latest" && mkdir -p "$work/latest"
cp -L "$results/latest/results.json" "$results/latest/table.md" \
  "$results/latest/report.md" "$work/latest/"
git -C "$work" add history.jsonl latest
git -C "$work" -c user.name="harness nightly" -c user.email="nightly@users.noreply.github.com" \
  commit -q -m "history: $(basename "$(readlink "$results/latest")")" || echo "publish-history: nothing new"
git -C "$work" push -q origin "HEAD:refs/heads/$branch"
