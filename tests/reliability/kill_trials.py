#!/usr/bin/env python3
"""kill_trials.py: kill -9 trials of `tablehub serve`, for scripts/reliability.

    kill_trials.py TH_BIN KILLREF_BIN GEN_CSV WORKDIR TRIALS

Each trial makes a fresh data directory under WORKDIR, runs one scenario on a server and kills it
with SIGKILL mid-way, then starts the production binary TH_BIN on the same directory and checks
what it finds once every operation has had its chance to end. Scenarios, in turn:

  import  three uploads of a 20,000-row CSV (GEN_CSV makes it), each into its own table
  merge   four pull requests made first (uploads run to the end), then their four merges
  burst   40 small uploads from 4 client threads at once

and, in turn, two kinds of kill moment:

  random    SIGKILL from this script after a random delay into the scenario
  targeted  the server kills itself right before or right after its N-th ref move (N random in
            the range the scenario's moves span): KILLREF_BIN is the same server linked with ld
            --wrap around libgit2's ref updates (tests/reliability/killref.c, TH_KILL_REF)

The scenario runs on KILLREF_BIN in both kinds (without TH_KILL_REF it only passes calls on).
After the restart (TH_BIN, the production binary) the checks are:

  corrupt   `git fsck --strict` fails on a repository
  stuck     an operation still Pending or In Progress 90 s after the restart (the restart
            re-queues at once what the dead process held, so the lease does not delay it)
  wrong     an operation that ended wrongly: Failed without a reason; an upload answered with an
            operation that is not in the store; a Completed import without its pull request or
            branch; a merge whose pull's branch is on the target but did not end Completed, or
            that ended Completed (or its pull Merged) without it; a table at any branch head that
            cannot be queried or whose count(*) is not the rows of its upload (a half table)

Prints one summary (and a line per problem) on stdout; a progress line on stderr when it is a
terminal. Exit status 0 when nothing was corrupt, stuck or wrong.
"""
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

TH, KILLREF, GEN_CSV, WORK = sys.argv[1:5]
TRIALS = int(sys.argv[5])
TTY = sys.stderr.isatty()
CHECK_FLAGS = ["--rate-per-token", "0", "--rate-per-address", "0", "--query-per-user", "0",
               "--max-connections-per-ip", "0", "--max-pending-ops", "0"]
IMPORT_ROWS = 20000


def progress(msg):
    if TTY:
        sys.stderr.write("\r\033[K" + msg)
        sys.stderr.flush()


class Server:
    """A `tablehub serve` on a free loopback port (it logs the port it bound)."""

    def __init__(self, binary, data, env=None):
        self.data = data
        self.log = os.path.join(data, "serve.log")
        e = dict(os.environ)
        e.update(env or {})
        # The log holds the lines of the servers before this one: read only what follows.
        start = os.path.getsize(self.log) if os.path.exists(self.log) else 0
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [binary, "serve", "--data", data, "--listen", "127.0.0.1:0"] + CHECK_FLAGS,
                stdout=subprocess.DEVNULL, stderr=log, env=e)
        self.base = None
        for _ in range(400):
            with open(self.log, "rb") as f:
                f.seek(start)
                m = re.findall(rb"on http://127\.0\.0\.1:(\d+)/api/v1alpha1", f.read())
            if m:
                self.base = "http://127.0.0.1:%s/api/v1alpha1" % m[-1].decode()
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("the server did not start: see " + self.log)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def http(method, url, token, body=None, ctype=None, timeout=30):
    """(status, parsed JSON or None); status -1 when the connection failed."""
    req = urllib.request.Request(url, data=body, method=method)
    req.add_header("authorization", "token " + token)
    if ctype:
        req.add_header("content-type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    except (OSError, urllib.error.URLError):
        return -1, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, None


def upload(base, token, db, table, data):
    """POST an upload; returns the operation's id (the uuid) or None when it was not answered."""
    params = json.dumps({"tableName": table, "fileName": table + ".csv", "branchName": "main",
                         "fileType": "Csv", "importOp": "Create", "primaryKeys": ["id"]})
    b = "----th%016x" % random.getrandbits(64)
    body = (("--%s\r\nContent-Disposition: form-data; name=\"params\"\r\n\r\n%s\r\n"
             "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s.csv\"\r\n"
             "Content-Type: text/csv\r\n\r\n") % (b, params, b, table)).encode()
    body += data + ("\r\n--%s--\r\n" % b).encode()
    st, j = http("POST", "%s/%s/upload" % (base, db), token, body,
                 "multipart/form-data; boundary=" + b)
    if st == 200 and j and j.get("operation_name"):
        return j["operation_name"].rsplit("/", 1)[-1]
    return None


def meta(data):
    return sqlite3.connect("file:%s?mode=ro" % os.path.join(data, "meta.sqlite"), uri=True,
                           timeout=10)


def unfinished(data):
    with meta(data) as c:
        return c.execute("SELECT count(*) FROM operations WHERE state IN "
                         "('Pending', 'In Progress')").fetchone()[0]


def wait_quiet(data, seconds):
    end = time.time() + seconds
    while time.time() < end:
        if unfinished(data) == 0:
            return True
        time.sleep(0.2)
    return unfinished(data) == 0


def git(repo, *args):
    r = subprocess.run(["git", "--git-dir", repo] + list(args), capture_output=True, text=True)
    return r.returncode, r.stdout.strip(), r.stderr.strip()


class Totals:
    def __init__(self):
        self.trials = {"random": 0, "targeted": 0}
        self.by_scenario = {}
        self.corrupt = self.stuck = self.wrong = 0
        self.ops = {"Completed": 0, "Failed": 0}
        self.failed_reasons = {}
        self.repos = self.branches = self.tables = 0
        self.late = 0
        self.self_killed = 0
        self.in_flight = 0
        self.trials_in_flight = 0
        self.problems = []

    def problem(self, kind, trial, what):
        setattr(self, kind, getattr(self, kind) + 1)
        self.problems.append("  %s (trial %d): %s" % (kind, trial, what))


def small_csv(i):
    n = 1 + i % 5
    return ("id,name,qty\n" + "".join("%d,r%d_%d,%d\n" % (k, i, k, k * i) for k in range(n))).encode(), n


def scenario_setup(data, token, kind, import_csv):
    """Runs on a plain server before the trial's server; returns {table: rows} made there."""
    made = {}
    if kind != "merge":
        return made
    s = Server(TH, data)
    try:
        ops = []
        for i in range(4):
            csv, n = small_csv(i + 7)
            made["m%d" % i] = n
            ops.append(upload(s.base, token, "alice/db", "m%d" % i, csv))
        if None in ops or not wait_quiet(data, 60):
            raise RuntimeError("merge setup: the uploads did not complete")
    finally:
        s.stop()
    return made


def run_scenario(srv, token, kind, import_csv, answered, expect_rows):
    """Drive the scenario on the trial's server until it dies or the work is done."""
    db = "alice/db"
    if kind == "import":
        for i in range(3):
            if srv.proc.poll() is not None:
                return
            expect_rows["imp%d" % i] = IMPORT_ROWS
            op = upload(srv.base, token, db, "imp%d" % i, import_csv)
            if op:
                answered.append(op)
    elif kind == "merge":
        for pull in range(1, 5):
            if srv.proc.poll() is not None:
                return
            st, j = http("POST", "%s/%s/pulls/%d/merge" % (srv.base, db, pull), token, b"")
            if st == 200 and j and j.get("operation_name"):
                answered.append(j["operation_name"].rsplit("/", 1)[-1])
    else:
        lock = threading.Lock()

        def client(t):
            for i in range(t, 40, 4):
                if srv.proc.poll() is not None:
                    return
                csv, n = small_csv(i)
                with lock:
                    expect_rows["b%d" % i] = n
                op = upload(srv.base, token, db, "b%d" % i, csv)
                if op:
                    with lock:
                        answered.append(op)

        threads = [threading.Thread(target=client, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


# How many ref moves each scenario makes, measured on its first run without a kill; the
# targeted kills pick N in 1..moves.
MOVES = {}


def count_moves(kind, import_csv):
    d = os.path.join(WORK, "calibrate-" + kind)
    shutil.rmtree(d, ignore_errors=True)
    token = make_data(d)
    expect = scenario_setup(d, token, kind, import_csv)
    log = os.path.join(d, "moves.log")
    srv = Server(KILLREF, d, {"TH_KILL_LOG": log})
    answered = []
    run_scenario(srv, token, kind, import_csv, answered, expect)
    wait_quiet(d, 120)
    srv.stop()
    with open(log) if os.path.exists(log) else open(os.devnull) as f:
        MOVES[kind] = max(1, len(f.readlines()))
    shutil.rmtree(d, ignore_errors=True)


def make_data(d):
    os.makedirs(d)
    token = subprocess.run([TH, "user", "add", "--data", d, "alice"], capture_output=True,
                           text=True, check=True).stdout.strip()
    subprocess.run([TH, "db", "create", "--data", d, "alice/db"], capture_output=True,
                   check=True)
    return token


def check(trial, d, token, answered, expect_rows, tot):
    srv = Server(TH, d)
    try:
        if not wait_quiet(d, 90):
            with meta(d) as c:
                for oid, kind, st in c.execute(
                        "SELECT id, kind, state FROM operations WHERE state IN "
                        "('Pending', 'In Progress')"):
                    tot.problem("stuck", trial, "%s operation %s still %s" % (kind, oid, st))
        for repo in sorted(os.path.join(d, "repos", o, r)
                           for o in os.listdir(os.path.join(d, "repos"))
                           for r in os.listdir(os.path.join(d, "repos", o))
                           if r.endswith(".git")):
            tot.repos += 1
            rc, _, err = git(repo, "fsck", "--strict", "--no-dangling", "--no-progress")
            if rc != 0:
                tot.problem("corrupt", trial, "git fsck --strict %s: %s" % (repo, err[:300]))
        repo = os.path.join(d, "repos", "alice", "db.git")
        with meta(d) as c:
            ops = c.execute("SELECT id, kind, state, coalesce(error_message, ''), pull_id "
                            "FROM operations WHERE kind IN ('import', 'merge')").fetchall()
            pulls = {p: (st, fb, tb, mc) for p, st, fb, tb, mc in c.execute(
                "SELECT pull_id, state, from_branch, to_branch, merge_commit FROM pulls")}
        ids = {o[0] for o in ops}
        for op in answered:
            if op not in ids:
                tot.problem("wrong", trial, "the answered upload or merge %s is not stored" % op)
        merge_ops = {}
        for oid, kind, st, msg, pull in ops:
            if st in ("Completed", "Failed"):
                tot.ops[st] += 1
            if st == "Failed":
                if not msg:
                    tot.problem("wrong", trial, "%s %s Failed without a reason" % (kind, oid))
                key = re.sub(r"[0-9a-f]{8,}|#\d+|\d+", "N", msg)[:90]
                tot.failed_reasons[key] = tot.failed_reasons.get(key, 0) + 1
            if kind == "import" and st == "Completed":
                if pull not in pulls:
                    tot.problem("wrong", trial, "import %s Completed without its pull" % oid)
                elif pulls[pull][0] == "Open" and git(repo, "rev-parse", "--verify", "-q",
                                                       "refs/heads/" + pulls[pull][1])[0] != 0:
                    tot.problem("wrong", trial, "import %s: the branch of its open pull #%d "
                                "is gone" % (oid, pull))
            if kind == "merge":
                merge_ops.setdefault(pull, []).append((oid, st, msg))
        for pull, lst in merge_ops.items():
            if pull not in pulls:
                tot.problem("wrong", trial, "merge of unknown pull #%d" % pull)
                continue
            pst, fb, tb, mc = pulls[pull]
            rc, tip, _ = git(repo, "rev-parse", "--verify", "-q", "refs/heads/" + fb)
            on_target = rc == 0 and git(repo, "merge-base", "--is-ancestor", tip,
                                        "refs/heads/" + tb)[0] == 0
            done = [o for o in lst if o[1] == "Completed"]
            if on_target and not done:
                tot.problem("wrong", trial, "pull #%d is on %s but its merge ended %s" %
                            (pull, tb, "; ".join("%s %s" % (o[1], o[2]) for o in lst)))
            if done and (not on_target or pst != "Merged"):
                tot.problem("wrong", trial, "merge of pull #%d Completed but the pull is %s "
                            "and its branch %s on %s" % (pull, pst,
                                                         "is" if on_target else "is not", tb))
            if pst == "Merged" and (not mc or git(repo, "merge-base", "--is-ancestor", mc,
                                                  "refs/heads/" + tb)[0] != 0):
                tot.problem("wrong", trial, "pull #%d Merged but its commit is not on %s" %
                            (pull, tb))
        # Every table at every branch head: queryable, with the rows of its upload.
        _, refs, _ = git(repo, "for-each-ref", "--format=%(objectname) %(refname:short)",
                         "refs/heads")
        for line in refs.splitlines():
            sha, name = line.split(" ", 1)
            tot.branches += 1
            st, j = http("GET", "%s/alice/db/tables?ref=%s" % (srv.base, sha), token)
            if st != 200 or j is None:
                tot.problem("wrong", trial, "tables of branch %s: HTTP %d" % (name, st))
                continue
            for t in j.get("tables", []):
                tname = t.get("table_name") or t.get("name")
                tot.tables += 1
                q = urllib.parse.quote('SELECT count(*) AS n FROM "%s"' % tname)
                st, r = http("GET", "%s/alice/db/%s?q=%s" % (srv.base, sha, q), token)
                rows = r.get("rows") if r else None
                if st != 200 or not rows:
                    tot.problem("wrong", trial, "table %s at branch %s cannot be queried: "
                                "HTTP %d %s" % (tname, name, st, (r or {}).get("message", "")))
                    continue
                n = int(rows[0]["n"])
                if tname in expect_rows and n != expect_rows[tname]:
                    tot.problem("wrong", trial, "half table: %s at branch %s has %d rows, "
                                "not %d" % (tname, name, n, expect_rows[tname]))
    finally:
        srv.stop()


def main():
    random.seed(int(os.environ.get("TH_RELIABILITY_SEED", "14")))
    os.makedirs(WORK, exist_ok=True)
    import_csv_path = os.path.join(WORK, "import.csv")
    subprocess.run([GEN_CSV, str(IMPORT_ROWS), import_csv_path], check=True)
    with open(import_csv_path, "rb") as f:
        import_csv = f.read()
    kinds = ["import", "merge", "burst"]
    for k in kinds:
        progress("kill trials: counting the ref moves of the %s scenario" % k)
        count_moves(k, import_csv)
    tot = Totals()
    t0 = time.time()
    for trial in range(1, TRIALS + 1):
        kind = kinds[(trial - 1) % 3]
        mode = "targeted" if ((trial - 1) // 3) % 2 else "random"
        tot.trials[mode] += 1
        tot.by_scenario[kind] = tot.by_scenario.get(kind, 0) + 1
        progress("kill trial %d/%d: %s, %s (%.0f s)" % (trial, TRIALS, kind, mode,
                                                         time.time() - t0))
        d = os.path.join(WORK, "trial-%03d" % trial)
        shutil.rmtree(d, ignore_errors=True)
        token = make_data(d)
        expect = scenario_setup(d, token, kind, import_csv)
        env = {}
        if mode == "targeted":
            env["TH_KILL_REF"] = str(random.randint(1, MOVES[kind]))
            env["TH_KILL_WHEN"] = random.choice(["before", "after"])
        srv = Server(KILLREF, d, env)
        answered = []
        killer = None
        if mode == "random":
            delay = random.uniform(0.05, {"import": 2.0, "merge": 0.4, "burst": 2.5}[kind])
            killer = threading.Timer(delay, srv.kill)
            killer.start()
        run_scenario(srv, token, kind, import_csv, answered, expect)
        if killer:
            killer.join()
        else:
            # The server kills itself at its N-th move; one that outlived the scenario's work
            # (the moves came out fewer this time) is killed once it is idle.
            end = time.time() + 60
            while srv.proc.poll() is None and time.time() < end and unfinished(d) > 0:
                time.sleep(0.05)
            if srv.proc.poll() is None:
                tot.late += 1
            elif srv.proc.returncode == -signal.SIGKILL:
                tot.self_killed += 1
        srv.kill()
        # What the kill interrupted: operations the store holds unfinished (every upload the
        # server answered is in the store before its answer).
        n = unfinished(d)
        tot.in_flight += n
        tot.trials_in_flight += n > 0
        check(trial, d, token, answered, expect, tot)
        shutil.rmtree(d, ignore_errors=True)
    progress("")
    total = sum(tot.trials.values())
    print("kill -9 trials: %d (%s; %d at a random moment, %d right before or after the N-th ref "
          "move%s), %.0f s" % (
              total, ", ".join("%s %d" % kv for kv in tot.by_scenario.items()),
              tot.trials["random"], tot.trials["targeted"],
              "; %d outlived their N and were killed idle" % tot.late if tot.late else "",
              time.time() - t0))
    print("  ref moves per scenario run: %s; %d servers killed themselves at their N-th move; "
          "%d trials left operations unfinished at the kill (%d operations in all)" % (
              ", ".join("%s %d" % kv for kv in MOVES.items()), tot.self_killed,
              tot.trials_in_flight, tot.in_flight))
    print("  after restart: corrupt %d, stuck %d, wrong final states %d (target 0/0/0)" %
          (tot.corrupt, tot.stuck, tot.wrong))
    print("  checked: %d repositories (git fsck --strict), %d operations (%d Completed, %d "
          "Failed with a reason), %d branch heads, %d tables queried" % (
              tot.repos, tot.ops["Completed"] + tot.ops["Failed"], tot.ops["Completed"],
              tot.ops["Failed"], tot.branches, tot.tables))
    for reason, n in sorted(tot.failed_reasons.items(), key=lambda kv: -kv[1]):
        print("  Failed %dx: %s" % (n, reason))
    for p in tot.problems[:40]:
        print(p)
    return 0 if tot.corrupt + tot.stuck + tot.wrong == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
