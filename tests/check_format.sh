#!/usr/bin/env bash
# check_format: every C file of the project is as clang-format (with the project's .clang-format)
# writes it. Prints the files that are not, and how to fix them; exits 1 then.
set -u
top=${1:-$(dirname "$0")/..}
cd "$top" || exit 2
if ! command -v clang-format >/dev/null; then
	echo "clang-format is missing: run scripts/setup" >&2
	exit 1
fi
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	mapfile -t files < <(git ls-files '*.c' '*.h' | grep -v '/node_modules/')
else
	mapfile -t files < <(find . -path '*/node_modules' -prune -o -path './build*' -prune -o \
		-type f \( -name '*.c' -o -name '*.h' \) -print)
fi
# One run for all: each line it has to change is reported as "<file>:<line>:<col>: error: ...".
mapfile -t bad < <(clang-format --dry-run -Werror "${files[@]}" 2>&1 |
	sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error: .*/\1/p' | sort -u)
if ((${#bad[@]})); then
	printf 'not formatted: %s\n' "${bad[@]}" >&2
	echo "run: clang-format -i ${bad[*]}" >&2
	exit 1
fi
echo "${#files[@]} files formatted"
