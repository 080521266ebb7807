#!/usr/bin/env bash
# Post FILE as a comment on pull request PR, or edit this workflow's earlier comment there: the
# one by github-actions[bot] whose body starts with FILE's first line (a hidden marker).
#   upsert_comment.sh PR FILE      (needs GH_TOKEN and GITHUB_REPOSITORY)
set -euo pipefail
pr="$1"
file="$2"
[[ "$pr" =~ ^[0-9]+$ ]] || { echo "not a pull request number: $pr" >&2; exit 1; }
marker="$(head -n 1 "$file")"
[[ "$marker" == "<!--"*"-->" ]] || { echo "$file does not start with a <!-- marker -->" >&2; exit 1; }

existing="$(
  MARKER="$marker" gh api --paginate "repos/$GITHUB_REPOSITORY/issues/$pr/comments" \
    --jq '.[] | select(.user.login == "github-actions[bot]")
              | select(.body | startswith(env.MARKER)) | .id' | head -n 1
)"
if [[ -n "$existing" ]]; then
  gh api --method PATCH "repos/$GITHUB_REPOSITORY/issues/comments/$existing" -F "body=@$file" >/dev/null
  echo "Edited comment $existing on #$pr"
else
  gh api --method POST "repos/$GITHUB_REPOSITORY/issues/$pr/comments" -F "body=@$file" >/dev/null
  echo "Commented on #$pr"
fi
