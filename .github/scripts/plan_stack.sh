#!/usr/bin/env bash
# Offline plan of one stack of one checkout, as JSON: `make plan` of its project. A stack the
# checkout does not have yet (added by the pull request) gets an empty plan, so its difference
# shows everything it adds.
#   plan_stack.sh CHECKOUT PROJECT STACK OUT.json
set -euo pipefail
checkout="$1"
project="$2"
stack="$3"
out="$4"
if [[ ! -f "$checkout/$project/Pulumi.$stack.yaml" ]]; then
  printf '{"project": "", "stack": "%s", "resources": [], "outputs": {}}\n' "$stack" > "$out"
  echo "$project: no stack $stack in $checkout; its plan is empty"
  exit 0
fi
if [[ "$project" == "." ]]; then
  make -C "$checkout" plan STACK="$stack" JSON="$out" >/dev/null
else
  make -C "$checkout" plan PROJECT="$project" STACK="$stack" JSON="$out" >/dev/null
fi
echo "Planned $project stack $stack of $checkout"
