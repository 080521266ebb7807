"""Set one image reference in a stack file, editing only that value so comments and layout stay.

    python .github/scripts/bump_image.py Pulumi.dev.yaml config/app-platform:apps/comments/image \
        ghcr.io/acme/comments:sha-0123abc@sha256:...

The key path names nested block-mapping keys, separated by `/`. Only the scalar after the last
key changes (its quoting kept); the file is written only if, parsed again, it equals the old one
with just that value replaced. Exit status: 0 changed or already current, 1 on any error.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

# A registry reference: no spaces, quotes or YAML indicators that would need escaping.
IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:-]*(@sha256:[0-9a-f]{64})?$")


class BumpError(Exception):
    pass


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _key_pattern(key: str) -> re.Pattern[str]:
    quoted = "|".join(re.escape(k) for k in (key, f'"{key}"', f"'{key}'"))
    return re.compile(rf"^(?P<indent> *)(?:{quoted})[ \t]*:(?=[ \t\r\n]|$)")


def _block_end(lines: list[str], start: int, indent: int) -> int:
    """First line after `start` that is back at `indent` or shallower."""
    for index in range(start + 1, len(lines)):
        if _is_content(lines[index]) and _indent(lines[index]) <= indent:
            return index
    return len(lines)


def find_key(lines: list[str], path: list[str]) -> int:
    """The line index of the last key of `path`, each key looked up in its parent's block."""
    start, end, parent_indent = 0, len(lines), -1
    found = -1
    for depth, key in enumerate(path):
        children = [i for i in range(start, end) if _is_content(lines[i])]
        if not children:
            raise BumpError(f"{'/'.join(path[:depth])} has no keys below it")
        child_indent = _indent(lines[children[0]])
        if child_indent <= parent_indent:
            raise BumpError(f"{'/'.join(path[:depth])} is not a block mapping")
        pattern = _key_pattern(key)
        matches = [
            i for i in children if _indent(lines[i]) == child_indent and pattern.match(lines[i])
        ]
        if len(matches) != 1:
            where = "/".join(path[: depth + 1])
            raise BumpError(f"key {where} found {len(matches)} times (expected once)")
        found = matches[0]
        start, end, parent_indent = found + 1, _block_end(lines, found, child_indent), child_indent
    return found


def _replace_scalar(line: str, key_end: int, value: str) -> str:
    head, rest = line[:key_end], line[key_end:]
    body = rest.lstrip(" \t")
    gap = rest[: len(rest) - len(body)]
    if not body or body.startswith("#") or body.startswith(("|", ">", "{", "[", "&", "*", "!")):
        raise BumpError(f"the value on line {line.strip()!r} is not a plain or quoted scalar")
    if body[0] in "\"'":
        quote = body[0]
        close = 1
        while True:
            close = body.find(quote, close)
            if close < 0:
                raise BumpError(f"unterminated quote on line {line.strip()!r}")
            if quote == "'" and body[close : close + 2] == "''":
                close += 2
                continue
            if quote == '"' and body[close - 1] == "\\":
                close += 1
                continue
            break
        tail = body[close + 1 :]
        return f"{head}{gap}{quote}{value}{quote}{tail}"
    comment = re.search(r"[ \t]+#", body)
    tail = body[comment.start() :] if comment else ""
    return f"{head}{gap}{value}{tail}"


def _set_in(data: Any, path: list[str], value: str) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


def bump(text: str, path: list[str], value: str) -> str:
    if not IMAGE.match(value):
        raise BumpError(f"{value!r} is not an image reference this script writes")
    lines = text.splitlines(keepends=True)
    index = find_key(lines, path)
    line = lines[index].rstrip("\r\n")
    newline = lines[index][len(line) :]
    match = _key_pattern(path[-1]).match(line)
    assert match  # find_key matched this line with the same pattern
    lines[index] = _replace_scalar(line, match.end(), value) + newline
    updated = "".join(lines)

    expected = yaml.safe_load(text)
    _set_in(expected, path, value)
    if yaml.safe_load(updated) != expected:
        raise BumpError("the edit would change more than the one value; file left as it was")
    return updated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("key_path", help="nested keys separated by '/', e.g. config/ns:key/image")
    parser.add_argument("image", help="the new image reference")
    args = parser.parse_args(argv)
    try:
        text = args.file.read_text()
        updated = bump(text, args.key_path.split("/"), args.image)
    except (OSError, BumpError, KeyError, TypeError) as why:
        print(f"bump_image: {args.file}: {why}", file=sys.stderr)
        return 1
    if updated == text:
        print(f"{args.file}: {args.key_path} is already {args.image}")
        return 0
    args.file.write_text(updated)
    print(f"{args.file}: {args.key_path} set to {args.image}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
