#!/usr/bin/env bash
# check_layers: the layers run api -> src -> storage -> util and never back. Fails when a file
# includes a header of a higher layer, when a header under include/tablehub/ has no layer here, or
# when a library's header is included outside the one layer allowed to use it.
set -u
top=${1:-$(dirname "$0")/..}
cd "$top" || exit 2

declare -A layer_of=(
	[error.h]=0 [buf.h]=0 [log.h]=0 [hash.h]=0 [dirsync.h]=0 [ids.h]=0 [text.h]=0 [value.h]=0 [password.h]=0
	[datadir.h]=1 [repo.h]=1 [meta.h]=1 [meta_limits.h]=1 [meta_access.h]=1 [files.h]=1
	[meta_control.h]=1 [repo_maint.h]=1 [backup.h]=1 [meta_coord.h]=1 [meta_migrate.h]=1
	[sqlcache.h]=1 [sqlsession.h]=1 [meta_files.h]=1
	[csv.h]=2 [reader.h]=2 [sorter.h]=2 [table.h]=2 [diff.h]=2 [merge.h]=2 [import.h]=2 [jobs.h]=2
	[pulls.h]=2 [review.h]=2 [query.h]=2 [databases.h]=2 [export.h]=2 [fetch.h]=2 [sqlwrite.h]=2
	[saved.h]=2
)
names=(util storage src api)
fail=0
bad() {
	echo "check_layers: $*"
	fail=1
}

for h in include/tablehub/*.h; do
	[[ -n ${layer_of[$(basename "$h")]:-} ]] || bad "$h has no layer: add it to tests/check_layers.sh"
done

# file_layer PATH: the layer a source or shared header belongs to, or nothing for other files.
file_layer() {
	case $1 in
	util/*) echo 0 ;;
	storage/*) echo 1 ;;
	src/*) echo 2 ;;
	api/*) echo 3 ;;
	include/tablehub/*) echo "${layer_of[$(basename "$1")]:-}" ;;
	esac
}

while IFS= read -r f; do
	mine=$(file_layer "$f")
	[[ -n $mine ]] || continue
	while IFS= read -r inc; do
		h=$(basename "$inc")
		theirs=${layer_of[$h]:-}
		[[ -n $theirs ]] || continue # a module's private header
		((theirs <= mine)) ||
			bad "$f (${names[$mine]}) includes $inc (${names[$theirs]}): an arrow may not point up"
	done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
	if grep -Eq '^#include <(git2|sqlite3)\.h>' "$f" && ((mine != 1)); then
		bad "$f includes libgit2 or SQLite: only storage/ may"
	fi
	if grep -Eq '^#include <microhttpd\.h>' "$f" && ((mine != 3)); then
		bad "$f includes libmicrohttpd: only api/ may"
	fi
done < <(find util storage src api include/tablehub -name '*.[ch]' | sort)

if ((fail)); then
	exit 1
fi
echo "check_layers: 1 passed, 0 failed"
