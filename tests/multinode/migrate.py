#!/usr/bin/env python3
"""migrate.py: `tablehub meta migrate` moves a single-server installation to PostgreSQL intact.

    migrate.py TABLEHUB_BIN

TABLEHUB_META names a PostgreSQL server (tests/pg/pgtmp.sh run sets it). A data dir is made
through the API of a server on meta.sqlite: two users with tokens (one more made with `token
create`), a database with a collaborator and a protected branch, two uploads (pulls 1 and 2), a
comment and a review on pull 1, pull 1 merged, a failed upload, a release. The answers of the API
about them are kept; the server stops, and the data dir's meta.sqlite is migrated into a new
PostgreSQL database. Then:
  - the command printed the rows of every table, and their sum;
  - a second migrate into the same database is refused (not empty) and changes nothing;
  - a server on PostgreSQL (the same data dir) answers the same about the pulls, the
    operations, the notes and the tokens; each token still authenticates; a new upload gets
    pull 3 and a new operation (the sequences moved past the copied ids).
Exit 0 when all hold.
"""
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

FAILS = []


def check(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL: " + msg, file=sys.stderr)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, binary, data, meta):
        self.port = free_port()
        self.base = "http://127.0.0.1:%d/api/v1alpha1" % self.port
        env = dict(os.environ)
        env.pop("TABLEHUB_META", None)
        if meta:
            env["TABLEHUB_META"] = meta
        self.log = os.path.join(os.path.dirname(data), "serve-%d.log" % self.port)
        with open(self.log, "wb") as logf:
            self.proc = subprocess.Popen([binary, "serve", "--data", data, "--listen",
                                          "127.0.0.1:%d" % self.port, "--node-id", "m1"],
                                         env=env, stderr=logf)
        for _ in range(400):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        raise RuntimeError("server did not start: " + open(self.log).read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)
        with open(self.log, errors="replace") as f:
            text = f.read()
        check("Sanitizer" not in text and "runtime error:" not in text,
              "a sanitizer report in the server's log:\n" + text[-3000:])

    def call(self, method, path, token, data=None, ctype=None):
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if token:
            req.add_header("authorization", "token " + token)
        if ctype:
            req.add_header("content-type", ctype)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def post(self, path, token, obj):
        return self.call("POST", path, token, json.dumps(obj).encode(), "application/json")

    def upload(self, token, table, csv):
        b = "----th%d" % random.randint(0, 1 << 40)
        params = json.dumps({"tableName": table, "fileName": table + ".csv",
                             "branchName": "main", "fileType": "Csv", "importOp": "Create",
                             "primaryKeys": ["id"]})
        body = ("--%s\r\nContent-Disposition: form-data; name=\"params\"\r\n\r\n%s\r\n"
                "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.csv\"\r\n"
                "Content-Type: text/csv\r\n\r\n%s\r\n--%s--\r\n" % (b, params, b, csv, b))
        st, r = self.call("POST", "/alice/shop/upload", token, body.encode(),
                          "multipart/form-data; boundary=" + b)
        assert st == 200, (st, r)
        return r["operation_name"]

    def wait(self, token, path, op):
        q = "?" + urllib.parse.urlencode({"operationName": op})
        for _ in range(600):
            st, r = self.call("GET", path + q, token)
            if r.get("job_status") in ("Completed", "Failed"):
                return r
            time.sleep(0.05)
        raise RuntimeError("operation %s did not end" % op)


# Fields that legitimately differ between two servers' answers: none of the stored ones.
def stable(obj):
    return json.dumps(obj, sort_keys=True)


def main():
    binary = sys.argv[1]
    base = os.environ.get("TABLEHUB_META", "")
    if not base:
        print("migrate: TABLEHUB_META is not set", file=sys.stderr)
        return 2
    top = tempfile.mkdtemp(prefix="th-migrate.")
    data = os.path.join(top, "data")
    name = "mig%d" % os.getpid()
    url = base.replace("/postgres?", "/%s?" % name, 1)
    env = dict(os.environ)
    env.pop("TABLEHUB_META", None)
    try:
        alice = subprocess.run([binary, "user", "add", "--data", data, "alice"], env=env,
                               check=True, capture_output=True, text=True).stdout.strip()
        bob = subprocess.run([binary, "user", "add", "--data", data, "bob"], env=env,
                             check=True, capture_output=True, text=True).stdout.strip()
        alice2 = subprocess.run([binary, "token", "create", "--data", data, "--scope", "read",
                                 "alice"], env=env, check=True, capture_output=True,
                                text=True).stdout.strip()
        s = Server(binary, data, None)
        check(s.post("/database", alice, {"ownerName": "alice", "repoName": "shop"})[0] == 200,
              "create database")
        op1 = s.upload(alice, "t1", "id,v\n1,a\n2,b\n")
        r1 = s.wait(alice, "/alice/shop/upload", op1)
        op2 = s.upload(alice, "t2", "id,v\n1,x\n")
        r2 = s.wait(alice, "/alice/shop/upload", op2)
        op3 = s.upload(alice, "t3", "id,v\n1,x\n1,y\n")  # a duplicate key: Failed
        r3 = s.wait(alice, "/alice/shop/upload", op3)
        check(r1.get("pull_id") == "1" and r2.get("pull_id") == "2", "pulls 1 and 2")
        check(r3.get("job_status") == "Failed", "the bad upload failed")
        s.post("/alice/shop/pulls/1/comments", alice, {"comment": "two rows"})
        check(s.call("PUT", "/alice/shop/collaborators/bob", alice,
                     json.dumps({"role": "write"}).encode(), "application/json")[0] == 200,
              "bob a collaborator")
        check(s.call("PUT", "/alice/shop/branches/main/protection", alice,
                     json.dumps({"requiredApprovals": 1, "allowSelfApproval": False,
                                 "dismissStaleApprovals": False, "mergeRole": "write"}).encode(),
                     "application/json")[0] == 200, "main protected")
        check(s.post("/alice/shop/pulls/1/reviews", bob, {"reviewStatus": "Approved",
                                                          "comment": "fine"})[0] == 200,
              "bob's review")
        st, m = s.call("POST", "/alice/shop/pulls/1/merge", alice, b"")
        check(st == 200, "merge: %s %s" % (st, m))
        rm = s.wait(alice, "/alice/shop/pulls/1/merge", m["operation_name"])
        check(rm.get("job_status") == "Completed", "merge completed: %s" % rm)
        paths = ["/alice/shop/pulls", "/alice/shop/pulls/1", "/alice/shop/pulls/2",
                 "/alice/shop/pulls/1/comments", "/alice/shop/pulls/1/reviews",
                 "/alice/shop/upload?" + urllib.parse.urlencode({"operationName": op1}),
                 "/alice/shop/upload?" + urllib.parse.urlencode({"operationName": op3}),
                 "/alice/shop/pulls/1/merge?" + urllib.parse.urlencode(
                     {"operationName": m["operation_name"]}),
                 "/alice/shop/jobs", "/alice/shop/collaborators", "/alice/shop/events",
                 "/alice/shop/branches/main/protection", "/user", "/user/tokens"]
        before = {p: s.call("GET", p, alice) for p in paths}
        s.stop()

        subprocess.run(["psql", "-qAt", base, "-c", "CREATE DATABASE " + name], check=True,
                       stdout=subprocess.DEVNULL)
        out = subprocess.run([binary, "meta", "migrate", "--from",
                              os.path.join(data, "meta.sqlite"), "--to", url],
                             capture_output=True, text=True, env=env)
        check(out.returncode == 0, "migrate: %s %s" % (out.returncode, out.stderr))
        rows = {}
        for line in out.stdout.splitlines():
            f = line.split()
            if len(f) == 3 and f[2] == "row(s)":
                rows[f[0]] = int(f[1])
        check(rows.get("users") == 2 and rows.get("tokens") == 3 and rows.get("pulls") == 2,
              "rows moved: %s" % out.stdout)
        check(rows.get("operations") == 4 and rows.get("pull_comments") == 1 and
              rows.get("pull_reviews") == 1 and rows.get("collaborators") == 1 and
              rows.get("branch_protection") == 1,
              "rows moved: %s" % out.stdout)
        check("moved %d row(s)" % sum(rows.values()) in out.stdout, "the sum: %s" % out.stdout)
        check(url not in out.stdout + out.stderr, "the URL is never printed")
        again = subprocess.run([binary, "meta", "migrate", "--from",
                                os.path.join(data, "meta.sqlite"), "--to", url],
                               capture_output=True, text=True, env=env)
        check(again.returncode == 1 and "not empty" in again.stderr,
              "a second migrate is refused: %s" % again.stderr)
        bad = subprocess.run([binary, "meta", "migrate", "--from",
                              os.path.join(data, "meta.sqlite"), "--to", "mysql://x/y"],
                             capture_output=True, text=True, env=env)
        check(bad.returncode == 1 and "postgresql://" in bad.stderr, "a bad target is refused")

        s = Server(binary, data, url)
        for p in paths:
            got = s.call("GET", p, alice)
            check(stable(got) == stable(before[p]),
                  "GET %s differs on PostgreSQL:\n  before %s\n  after  %s" %
                  (p, stable(before[p])[:400], stable(got)[:400]))
        for t, who in ((alice, "alice"), (bob, "bob"), (alice2, "alice")):
            st, u = s.call("GET", "/user", t)
            check(st == 200 and u.get("username") == who, "token of %s: %s %s" % (who, st, u))
        check(s.call("GET", "/user", "0" * 40)[0] == 401, "an unknown token is refused")
        op4 = s.upload(alice, "t4", "id,v\n9,z\n")
        r4 = s.wait(alice, "/alice/shop/upload", op4)
        check(r4.get("job_status") == "Completed" and r4.get("pull_id") == "3",
              "a new upload on PostgreSQL: %s" % r4)
        st, c = s.post("/alice/shop/pulls/2/comments", alice, {"comment": "after the move"})
        check(st == 200, "a comment on PostgreSQL: %s %s" % (st, c))
        s.stop()
    finally:
        shutil.rmtree(top, ignore_errors=True)
        subprocess.run(["psql", "-qAt", base, "-c", "DROP DATABASE IF EXISTS " + name],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print("migrate: %d failure(s)" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
