#!/usr/bin/env bash
# pgtmp.sh: a throwaway PostgreSQL server for the tests, on a unix socket in a temporary folder.
#   pgtmp.sh run CMD [ARG...]   start a server, run CMD with TABLEHUB_META set to its URL, stop
#                               and remove the server whatever happened; exits with CMD's status
#   pgtmp.sh each CMD...        the same with one server for several commands (each a single
#                               word, a test binary), each on a new database of its own, in turn;
#                               stops at the first that fails
#   pgtmp.sh start DIR          start a server in DIR (new or empty) and print its URL
#   pgtmp.sh stop DIR           stop the server of DIR and remove DIR
# Debian's postgresql (initdb, pg_ctl from /usr/lib/postgresql/*/bin, or PG_BIN). The server runs
# as an unprivileged user when started by root (PostgreSQL refuses root): tablehub-test, made by
# scripts/setup. Trust authentication, no TCP (listen_addresses = ''), no fsync: it holds test
# data only. Exits 77 (skipped) when PostgreSQL is not installed, except under CI.
set -euo pipefail

pg_bin() {
	if [[ -n ${PG_BIN:-} ]]; then
		echo "$PG_BIN"
		return
	fi
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
	[[ -n $d && -x $d/initdb ]] || return 1
	echo "$d"
}

# as_owner CMD...: CMD as the server's user (root cannot run PostgreSQL).
as_owner() {
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u tablehub-test -- "$@"
	else
		"$@"
	fi
}

start() {
	local dir=$1 bin
	bin=$(pg_bin) || {
		echo "pgtmp: PostgreSQL is not installed (scripts/setup installs it)" >&2
		return 77
	}
	mkdir -p "$dir"
	if [[ $(id -u) -eq 0 ]]; then
		id tablehub-test >/dev/null 2>&1 || {
			echo "pgtmp: no user tablehub-test to run PostgreSQL (scripts/setup makes it)" >&2
			return 1
		}
		chown tablehub-test "$dir"
		# The server's user must reach the folder through its parents (mkdtemp's are 0700).
		chmod 0711 "$(dirname "$dir")" 2>/dev/null || true
	fi
	as_owner "$bin/initdb" -D "$dir/data" -U tablehub --auth=trust -E UTF8 --locale=C.UTF-8 \
		--no-sync >"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log" >&2
		return 1
	}
	cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 32MB
CONF
	as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start >/dev/null || {
		cat "$dir/server.log" >&2
		return 1
	}
	echo "postgresql:///postgres?host=$dir&user=tablehub"
}

stop() {
	local dir=$1 bin
	if bin=$(pg_bin) && [[ -f $dir/data/postmaster.pid ]]; then
		as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
}

# server_up: a server in a new temporary folder, $dir and $url set; exits 77 when PostgreSQL is
# missing (not under CI), or with start's status when it fails.
server_up() {
	local rc=0
	dir=$(mktemp -d /tmp/th-pg.XXXXXX)
	trap 'stop "$dir"' EXIT
	trap 'exit 130' INT TERM
	url=$(start "$dir") || rc=$?
	if ((rc == 77)) && [[ -z ${CI:-} ]]; then
		exit 77
	fi
	((rc == 0)) || exit "$rc"
}

case ${1:-} in
start) start "$2" ;;
stop) stop "$2" ;;
each)
	shift
	server_up
	bin=$(pg_bin)
	i=0
	for cmd in "$@"; do
		i=$((i + 1))
		"$bin/createdb" -h "$dir" -U tablehub "t$i"
		TABLEHUB_META=${url/\/postgres\?//t$i?} "$cmd" || exit $?
	done
	;;
run)
	shift
	dir=$(mktemp -d /tmp/th-pg.XXXXXX)
	trap 'stop "$dir"' EXIT
	trap 'exit 130' INT TERM
	rc=0
	url=$(start "$dir") || rc=$?
	if ((rc == 77)) && [[ -z ${CI:-} ]]; then
		exit 77
	fi
	((rc == 0)) || exit "$rc"
	rc=0
	TABLEHUB_META=$url "$@" || rc=$?
	exit "$rc"
	;;
*)
	echo "usage: pgtmp.sh run CMD [ARG...] | each CMD... | start DIR | stop DIR" >&2
	exit 2
	;;
esac
