#!/usr/bin/env bash
# Offline plan of every stack in stacks/ at HEAD and at the base revision, and their
# diffs as one Markdown comment (written to $1). Needs no credentials.
# Usage: plan-diff.sh OUTPUT.md BASE_REV
set -euo pipefail
out="$1"
base_rev="$2"
root="$(pwd)"
py="$root/venv/bin/python"
base_tree="$(mktemp -d)/base"
git worktree add --detach "$base_tree" "$base_rev" >/dev/null

{
  echo "<!-- tke-cilium-mesh:plan-diff -->"
  echo "# Offline plan diff against \`$(git rev-parse --short "$base_rev")\`"
} > "$out"

for stack_file in stacks/Pulumi.*.yaml; do
  stack="$(basename "$stack_file" .yaml)"; stack="${stack#Pulumi.}"
  echo "" >> "$out"
  echo "## Stack \`$stack\`" >> "$out"
  if ! "$py" -m tools.plan "$stack_file" --out "build/head/$stack" 2> "build/head-$stack.err"; then
    echo '**The plan of this branch fails:**' >> "$out"
    printf '```\n%s\n```\n' "$(cat "build/head-$stack.err")" >> "$out"
    continue
  fi
  if [ -f "$base_tree/$stack_file" ] && [ -f "$base_tree/tools/plan.py" ] \
     && (cd "$base_tree" && "$py" -m tools.plan "$stack_file" --out "$root/build/base/$stack") 2>/dev/null; then
    set +e
    "$py" -m tools.plan diff "build/base/$stack" "build/head/$stack" --format markdown >> "$out"
    rc=$?
    set -e
    [ "$rc" -le 1 ] || { echo "diff failed for $stack" >&2; exit "$rc"; }
  else
    echo "New stack (no plan on the base branch):" >> "$out"
    echo "" >> "$out"
    cat "build/head/$stack/summary.md" >> "$out"
  fi
done
git worktree remove --force "$base_tree"
