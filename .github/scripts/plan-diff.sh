#!/usr/bin/env bash
# Offline plan of every stack in stacks/ at HEAD and at the base revision, and their
# diffs as one Markdown comment (written to OUTPUT.md). Needs no credentials.
#
# Usage: plan-diff.sh OUTPUT.md BASE_REV     (from the root of the checkout)
#
# PYTHON is the Python that runs the plans (default: venv/bin/python of the checkout, what
# `make setup` creates); the base revision is planned with its own code and that Python.
# Plans go to build/head/<stack> and build/base/<stack>.
#
# Exit 0: every stack of this branch plans (whatever the diff says). Exit 1: a plan of this
# branch fails, or a diff errs; the comment is written first, with the error text. Exit 2:
# bad usage (no Python, no such base revision). A stack whose base plan fails is diffed
# against nothing (its head summary is shown); a stack deleted on this branch is reported.
set -euo pipefail
shopt -s nullglob

if [ "$#" -ne 2 ]; then
  echo "usage: $0 OUTPUT.md BASE_REV (run from the root of the checkout)" >&2
  exit 2
fi
out="$1"
base_rev="$2"
root="$(pwd)"
py="${PYTHON:-$root/venv/bin/python}"
case "$py" in
  /*) ;;
  */*) py="$root/$py" ;;  # relative to the checkout: the base plans run from another directory
esac
if ! command -v "$py" >/dev/null 2>&1; then
  echo "plan-diff.sh: no Python at $py: run \`make setup\` (creates venv/), or set PYTHON to a Python" \
       "with requirements-dev.txt installed" >&2
  exit 2
fi
if ! base_commit="$(git rev-parse --verify --quiet "$base_rev^{commit}")"; then
  echo "plan-diff.sh: BASE_REV $base_rev is not a commit of this repository (fetch it, e.g. checkout with" \
       "fetch-depth: 0)" >&2
  exit 2
fi

work="$(mktemp -d)"
base_tree="$work/base"
cleanup() {
  if [ -d "$base_tree" ]; then git worktree remove --force "$base_tree" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
git worktree add --detach "$base_tree" "$base_commit" >/dev/null 2>"$work/worktree.err" || {
  cat "$work/worktree.err" >&2
  exit 2
}
mkdir -p build/head build/base

fenced() {  # a file's text as a fenced block
  local text
  text="$(cat "$1")"
  printf '```\n%s\n```\n' "${text:-(no output)}"
}

nested() {  # a Markdown file (a diff, a plan summary) nested under a `## Stack` heading: its headings
  # (outside fenced blocks) shifted so that its top one is a `###`, the rest keeping their order under it
  awk '
    { line[NR] = $0 }
    /^```/ { fence = !fence; next }
    !fence && /^#+ / { n = index($0, " ") - 1; if (!top || n < top) top = n }
    END {
      shift = top ? 3 - top : 0
      fence = 0
      for (i = 1; i <= NR; i++) {
        l = line[i]
        if (l ~ /^```/) fence = !fence
        else if (!fence && shift > 0 && l ~ /^#+ /) l = substr("######", 1, shift) l
        print l
      }
    }' "$1"
}

stack_name() {  # stacks/Pulumi.<stack>.yaml -> <stack>
  local name
  name="$(basename "$1" .yaml)"
  printf '%s' "${name#Pulumi.}"
}

stacks="$(
  for f in stacks/Pulumi.*.yaml "$base_tree"/stacks/Pulumi.*.yaml; do stack_name "$f"; echo; done | sort -u
)"

body="$work/body.md"
: > "$body"
failed=()
for stack in $stacks; do
  stack_file="stacks/Pulumi.$stack.yaml"
  {
    echo ""
    echo "## Stack \`$stack\`"
    echo ""
  } >> "$body"

  if [ ! -f "$stack_file" ]; then
    {
      echo "**Deleted on this branch:** \`$stack_file\` exists at the base revision, not here. Deleting the file"
      echo "destroys nothing: the stack, its Cilium releases and its CLBs stay as last deployed. To take the mesh"
      echo "off its clusters, run \`pulumi destroy --stack $stack\` (see README, Lifecycle); else restore the file."
    } >> "$body"
    continue
  fi

  head_err="$work/head-$stack.err"
  if ! "$py" -m tools.plan "$stack_file" --out "build/head/$stack" >/dev/null 2>"$head_err"; then
    failed+=("$stack")
    {
      echo "**The plan of this branch fails** (this pull request cannot be deployed as it is):"
      echo ""
      fenced "$head_err"
    } >> "$body"
    continue
  fi

  base_err="$work/base-$stack.err"
  if [ ! -f "$base_tree/$stack_file" ]; then
    base="new"
  elif [ ! -f "$base_tree/tools/plan.py" ]; then
    base="no-tool"
  elif (cd "$base_tree" && "$py" -m tools.plan "$stack_file" --out "$root/build/base/$stack") \
       >/dev/null 2>"$base_err"; then
    base="ok"
  else
    base="failed"
  fi

  case "$base" in
    ok)
      diff_err="$work/diff-$stack.err"
      set +e
      "$py" -m tools.plan diff "build/base/$stack" "build/head/$stack" --format markdown >"$work/diff-$stack.md" \
        2>"$diff_err"
      rc=$?
      set -e
      nested "$work/diff-$stack.md" >> "$body"
      if [ "$rc" -gt 1 ]; then
        failed+=("$stack")
        {
          echo "**The diff fails** (exit $rc):"
          echo ""
          fenced "$diff_err"
        } >> "$body"
      fi
      ;;
    failed)
      {
        echo "**The plan of the base revision fails**, so there is nothing to diff against; its error:"
        echo ""
        fenced "$base_err"
        echo ""
        echo "The plan of this branch:"
        echo ""
        nested "build/head/$stack/summary.md"
      } >> "$body"
      ;;
    new)
      {
        echo "New stack (no \`$stack_file\` at the base revision):"
        echo ""
        nested "build/head/$stack/summary.md"
      } >> "$body"
      ;;
    no-tool)
      {
        echo "The base revision has no offline plan (no tools/plan.py); the plan of this branch:"
        echo ""
        nested "build/head/$stack/summary.md"
      } >> "$body"
      ;;
  esac
done

{
  echo "<!-- tke-cilium-mesh:plan-diff -->"
  echo "# Offline plan diff against \`$(git rev-parse --short "$base_commit")\`"
  if [ "${#failed[@]}" -gt 0 ]; then
    listed="$(printf '`%s`, ' "${failed[@]}")"
    echo ""
    echo "**Failing on this branch: ${listed%, }** (details below)."
  fi
  cat "$body"
} > "$out"

if [ "${#failed[@]}" -gt 0 ]; then
  echo "plan-diff.sh: the plan or diff of this branch fails for: ${failed[*]} (see $out)" >&2
  exit 1
fi
