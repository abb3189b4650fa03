#!/usr/bin/env bash
# quickstart: the README's quickstart, run as a newcomer runs it, so that it stays true. The ```sh
# blocks of "## Quickstart" up to the SQL write's (every one a newcomer can paste as it is: the
# first, `scripts/serve`, is this test's own server) run in order in one shell, in a fresh folder
# whose ./data the server serves, with the server's port for 8080 and the binary under test for
# build/api/tablehub. A curl that gets an HTTP error fails the test; a poll (operationName=) is
# repeated until its operation has ended, as the README says to. Then the answers the README
# shows are checked: the upload and the merge Completed, pull request 1, the query's rows, the CSV.
#
#   quickstart.sh TABLEHUB_BINARY README
set -uo pipefail
bin=$1
readme=$2
work=$(mktemp -d)
srv=
cleanup() {
	[[ -n $srv ]] && kill "$srv" 2>/dev/null && wait "$srv" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1

# The steps: the README's blocks, as text.
python3 - "$readme" >steps.sh <<'EOF' || exit 1
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
start = text.index("\n## Quickstart")
end = text.index("\n## ", start + 1)
blocks = re.findall(r"\n```sh\n(.*?)\n```", text[start:end], re.S)
steps = []
for b in blocks:
    if b.strip().startswith("scripts/serve"):
        continue
    steps.append(b)
    if "/write/" in b:  # the SQL write is the last step run
        break
else:
    sys.exit("quickstart: no SQL write block in the README's quickstart")
out = "\n".join(steps).replace("build/api/tablehub", '"$TH"')
print(out.replace("127.0.0.1:8080", "127.0.0.1:$PORT"))
EOF

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" serve --data ./data --listen "127.0.0.1:$port" 2>serve.log &
srv=$!
for _ in $(seq 200); do
	command curl -s -o /dev/null "http://127.0.0.1:$port/api/v1alpha1/databases" && break
	sleep 0.05
done

cat >run.sh <<'EOF'
set -eo pipefail
# curl as the README runs it, failing on an HTTP error (its answer on stderr), and repeating a poll
# until the operation has ended.
curl() {
	local hdr=$PWD/.hdr body=$PWD/.body status i a saves=0
	for a in "$@"; do
		case $a in -o | -O | -OJ | -JO | --output | --remote-name) saves=1 ;; esac
	done
	for i in $(seq 600); do
		rm -f "$body"
		if ((saves)); then
			command curl -D "$hdr" "$@" || { echo "curl failed: ${*: -1}" >&2; return 1; }
		else
			command curl -D "$hdr" -o "$body" "$@" || { echo "curl failed: ${*: -1}" >&2; return 1; }
		fi
		case "$*" in *operationName=*) ;; *) break ;; esac
		grep -q '"job_status":"\(Pending\|In Progress\)"' "$body" || break
		sleep 0.1
	done
	status=$(awk '/^HTTP\//{s=$2} END{print s}' "$hdr")
	if [[ -f $body ]]; then
		cat "$body"
		{ cat "$body"; echo; } >>answers.txt
	fi
	if [[ -n $status && $status -ge 400 ]]; then
		echo "quickstart: HTTP $status from: ${*: -1}" >&2
		[[ -f $body ]] && cat "$body" >&2
		return 1
	fi
}
EOF
cat steps.sh >>run.sh
if ! TH="$bin" PORT=$port bash run.sh >out.txt 2>err.txt; then
	echo "quickstart: a step failed" >&2
	cat err.txt >&2
	echo "--- the steps:" >&2
	cat steps.sh >&2
	exit 1
fi
fail=0
want() { # want TEXT WHY: answers.txt (every answer) holds TEXT
	grep -qF -- "$1" answers.txt || { echo "quickstart: no answer has $1 ($2)" >&2; fail=1; }
}
want '"username":"alice"' "GET /user"
want '"job_status":"Completed","pull_id":"1"' "the upload's poll"
want '"pull_state":"Merged"' "the merge's poll"
want '"rows":[{"item":"pear","qty":"5"},{"item":"apple","qty":"3"}]' "the SQL read"
want '"rows_added":1,"rows_modified":1,"rows_removed":0' "the SQL write"
grep -qx 'id,item,qty' answers.txt && grep -qx '2,pear,5' answers.txt ||
	{ echo "quickstart: the CSV download is not the table" >&2; fail=1; }
[[ -s shop.zip && -s orders.json ]] || { echo "quickstart: shop.zip or orders.json missing" >&2; fail=1; }
grep -q 'count(\*)' out.txt || { echo "quickstart: the local query printed nothing" >&2; fail=1; }
# The server stops cleanly, with no sanitizer's report in its log.
kill "$srv" && wait "$srv"
rc=$?
srv=
if ((rc != 0)) || grep -q 'Sanitizer\|runtime error:' serve.log; then
	echo "quickstart: the server stopped with status $rc:" >&2
	cat serve.log >&2
	fail=1
fi
((fail)) && { cat out.txt >&2; exit 1; }
echo "quickstart: $(grep -c . steps.sh) lines of the README run, every answer as it says"
