#!/usr/bin/env python3
"""multinode.py: several `tablehub serve` on one PostgreSQL metadata store and one data dir.

    multinode.py TABLEHUB_BIN [--nodes N] [--uploads U] [--merges M] [--clients C]

TABLEHUB_META must name a PostgreSQL server (tests/pg/pgtmp.sh run sets it); a database of its own
is made for the run. N servers start on free loopback ports with --node-id n1..nN, sharing --data,
each with its own --cache. U uploads (each a table of its own in one database) are sent
round-robin to the nodes by C concurrent clients; as their pulls open, M of them are merged, the
merges sent round-robin too. Half-way through the uploads node 2 is killed with SIGKILL and started
again a moment later. Then:
  - every operation ends Completed or Failed, and a Failed one says why;
  - every completed merge's commit is in main's history, and every merged table is on main;
  - no operation completed twice: each "job <id> completed" log line appears once over all the
    nodes' logs, the killed node's included;
  - the imports' packs were rolled up (repacks ran beside the other nodes' imports and merges);
  - `git fsck --strict` finds nothing wrong in the repository.
Exit 0 when all hold; 1 with the reasons otherwise. Prints the time each phase took.
"""
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

FAILS = []


def fail(msg):
    FAILS.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pg_db_url(base):
    """A new database on the server of `base` (a postgresql:///postgres?host=... URL)."""
    name = "mn%d_%d" % (os.getpid(), random.randint(0, 1 << 30))
    subprocess.run(["psql", "-qAt", base, "-c", "CREATE DATABASE " + name], check=True,
                   stdout=subprocess.DEVNULL)
    return base.replace("/postgres?", "/%s?" % name, 1)


class Node:
    def __init__(self, binary, data, idx, url, workers):
        self.binary, self.data, self.idx, self.url = binary, data, idx, url
        self.workers = workers
        self.port = free_port()
        self.cache = os.path.join(os.path.dirname(data), "cache%d" % idx)
        self.log = os.path.join(os.path.dirname(data), "node%d.log" % idx)
        self.proc = None
        self.base = "http://127.0.0.1:%d/api/v1alpha1" % self.port

    def start(self):
        env = dict(os.environ, TABLEHUB_META=self.url)
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--data", self.data, "--listen",
             "127.0.0.1:%d" % self.port, "--node-id", "n%d" % self.idx, "--cache", self.cache,
             "--workers", str(self.workers), "--rate-per-token", "0", "--rate-per-address", "0",
             "--max-pending-ops", "0"],
            env=env, stderr=logf, stdout=subprocess.DEVNULL)
        logf.close()
        end = time.time() + 30
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("node %d exited at start; see %s" % (self.idx, self.log))
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("node %d did not answer" % self.idx)

    def kill(self, sig):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(60)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


def http(node, method, path, token, data=None, ctype=None, timeout=60):
    req = urllib.request.Request(node.base + path, data=data, method=method)
    req.add_header("authorization", "token " + token)
    if ctype:
        req.add_header("content-type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, {"raw": body.decode("utf-8", "replace")}


def multipart(params, name, content):
    b = "----th%d" % random.randint(0, 1 << 40)
    parts = [
        "--%s\r\nContent-Disposition: form-data; name=\"params\"\r\n\r\n%s\r\n" % (b, params),
        "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
        "Content-Type: text/csv\r\n\r\n" % (b, name),
    ]
    body = "".join(parts).encode() + content + ("\r\n--%s--\r\n" % b).encode()
    return body, "multipart/form-data; boundary=" + b


class Cluster:
    """Round-robin over the live nodes, retrying a request that met a dead one."""

    def __init__(self, nodes):
        self.nodes = nodes
        self.i = 0
        self.mu = threading.Lock()

    def pick(self):
        with self.mu:
            for _ in range(len(self.nodes)):
                n = self.nodes[self.i % len(self.nodes)]
                self.i += 1
                if n.alive():
                    return n
        return self.nodes[0]

    def call(self, method, path, token, data=None, ctype=None):
        last = None
        for _ in range(40):
            n = self.pick()
            try:
                return http(n, method, path, token, data, ctype)
            except (OSError, urllib.error.URLError) as e:  # the node died under the request
                last = e
                time.sleep(0.1)
        raise RuntimeError("no node answered %s %s: %s" % (method, path, last))


def main():
    args = sys.argv[1:]
    binary = args[0]
    opts = {"--nodes": 2, "--uploads": 100, "--merges": 50, "--clients": 16, "--workers": 2}
    for k in list(opts):
        if k in args:
            opts[k] = int(args[args.index(k) + 1])
    base = os.environ.get("TABLEHUB_META", "")
    if not base:
        print("multinode: TABLEHUB_META is not set (run through tests/pg/pgtmp.sh run)",
              file=sys.stderr)
        return 2
    top = tempfile.mkdtemp(prefix="th-multinode.")
    data = os.path.join(top, "data")
    url = pg_db_url(base)
    t0 = time.time()
    env = dict(os.environ, TABLEHUB_META=url)
    token = subprocess.run([binary, "user", "add", "--data", data, "alice"], env=env,
                           check=True, capture_output=True, text=True).stdout.strip()
    nodes = [Node(binary, data, i + 1, url, opts["--workers"]) for i in range(opts["--nodes"])]
    for n in nodes:
        n.start()
    c = Cluster(nodes)
    try:
        st, body = c.call("POST", "/database", token,
                          json.dumps({"ownerName": "alice", "repoName": "shop"}).encode(),
                          "application/json")
        if st != 200:
            raise RuntimeError("create database: %d %s" % (st, body))
        ops = {}  # op name -> ("import", i) or ("merge", pull_id)
        mu = threading.Lock()
        uploaded = []

        def upload(i):
            params = json.dumps({"tableName": "t%d" % i, "fileName": "f%d.csv" % i,
                                 "branchName": "main", "fileType": "Csv",
                                 "importOp": "Create", "primaryKeys": ["id"]})
            rows = "".join("%d,v%d_%d\n" % (k, i, k) for k in range(100))
            body, ctype = multipart(params, "f%d.csv" % i, ("id,v\n" + rows).encode())
            st, r = c.call("POST", "/alice/shop/upload", token, body, ctype)
            if st != 200:
                fail("upload %d: %d %s" % (i, st, r))
                return
            with mu:
                ops[r["operation_name"]] = ("import", i)
                uploaded.append(r["operation_name"])

        def poll(op, kind):
            path = "/alice/shop/upload" if kind == "import" else "/alice/shop/pulls/%s/merge" % (
                ops[op][1])
            q = "?" + urllib.parse.urlencode({"operationName": op})
            end = time.time() + 120
            while time.time() < end:
                st, r = c.call("GET", path + q, token)
                if st == 200 and r.get("job_status") in ("Completed", "Failed"):
                    return r
                time.sleep(0.2)
            return {"job_status": "timeout"}

        killed = threading.Event()

        def killer():
            # Half-way through the uploads node 2 dies without a word, and comes back.
            while len(uploaded) < opts["--uploads"] // 2:
                time.sleep(0.02)
            nodes[1].kill(signal.SIGKILL)
            killed.set()
            time.sleep(1.0)
            nodes[1].start()

        kt = threading.Thread(target=killer)
        kt.start()
        t1 = time.time()
        with ThreadPoolExecutor(opts["--clients"]) as ex:
            list(ex.map(upload, range(opts["--uploads"])))
            imports = list(ex.map(lambda op: (op, poll(op, "import")), list(uploaded)))
        kt.join()
        t2 = time.time()
        pulls = []
        for op, r in imports:
            if r.get("job_status") == "Completed" and r.get("pull_id"):
                pulls.append((op, r["pull_id"]))
            elif r.get("job_status") == "Failed":
                if not r.get("message"):
                    fail("import %s failed without a reason: %s" % (op, r))
            else:
                fail("import %s did not end: %s" % (op, r))
        merges = []

        def merge(item):
            op, pull = item
            st, r = c.call("POST", "/alice/shop/pulls/%s/merge" % pull, token, b"")
            if st != 200:
                fail("merge of pull %s: %d %s" % (pull, st, r))
                return None
            with mu:
                ops[r["operation_name"]] = ("merge", pull)
            return r["operation_name"]

        with ThreadPoolExecutor(opts["--clients"]) as ex:
            mops = [m for m in ex.map(merge, pulls[:opts["--merges"]]) if m]
            merges = list(ex.map(lambda op: (op, poll(op, "merge")), mops))
        t3 = time.time()
        repo = os.path.join(data, "repos", "alice", "shop.git")
        done_merges = 0
        for op, r in merges:
            s = r.get("job_status")
            if s == "Failed":
                if not r.get("message"):
                    fail("merge %s failed without a reason: %s" % (op, r))
                continue
            if s != "Completed":
                fail("merge %s did not end: %s" % (op, r))
                continue
            done_merges += 1
            pull = ops[op][1]
            st, p = c.call("GET", "/alice/shop/pulls/%s" % pull, token)
            commit = p.get("merge_commit") or p.get("merge_commit_id") or ""
            if st != 200 or p.get("state") != "Merged":
                fail("pull %s after a completed merge: %d %s" % (pull, st, p))
            if commit and subprocess.run(["git", "-C", repo, "merge-base", "--is-ancestor",
                                          commit, "refs/heads/main"]).returncode != 0:
                fail("merge commit %s of pull %s is not in main's history" % (commit, pull))
        # Every table a completed merge brought is on main.
        tables = set(subprocess.run(["git", "-C", repo, "ls-tree", "--name-only",
                                     "refs/heads/main:tables"],
                                    capture_output=True, text=True).stdout.split())
        table_of = {r.get("pull_id"): "t%d" % ops[op][1] for op, r in imports}
        for op, r in merges:
            t = table_of.get(ops[op][1])
            if r.get("job_status") == "Completed" and t not in tables:
                fail("table %s of a completed merge is not on main" % t)
        # Each operation completed at most once over all the logs.
        seen = {}
        for n in nodes:
            with open(n.log, errors="replace") as f:
                for line in f:
                    m = re.search(r"job ([0-9a-f-]{36}) completed", line)
                    if m:
                        seen[m.group(1)] = seen.get(m.group(1), 0) + 1
        twice = [k for k, v in seen.items() if v > 1]
        if twice:
            fail("operations completed more than once: %s" % twice[:5])
        # The imports' packs were rolled up (every import writes one; the default threshold is
        # 20) while other nodes imported and merged: the checks here read across those roll-ups.
        rollups = 0
        for n in nodes:
            with open(n.log, errors="replace") as f:
                rollups += sum(1 for line in f if "repacked alice/shop:" in line)
        if rollups == 0:
            fail("no repack ran beside the imports")
        fsck = subprocess.run(["git", "-C", repo, "fsck", "--strict", "--no-progress"],
                              capture_output=True, text=True)
        if fsck.returncode != 0 or "error" in fsck.stderr:
            fail("git fsck --strict: %s" % fsck.stderr[:500])
        if not killed.is_set():
            fail("node 2 was never killed")
        n_imp = sum(1 for _, r in imports if r.get("job_status") == "Completed")
        print("multinode: %d nodes, %d uploads (%d completed) in %.1f s, %d merges (%d "
              "completed) in %.1f s, %d repacks, node 2 killed and restarted; start %.1f s, "
              "%d failure(s)"
              % (len(nodes), len(uploaded), n_imp, t2 - t1, len(merges), done_merges, t3 - t2,
                 rollups, t1 - t0, len(FAILS)))
    finally:
        for n in nodes:
            n.kill(signal.SIGTERM)
        # Under the sanitizers (scripts/test) a report goes to the node's log.
        for n in nodes:
            with open(n.log, errors="replace") as f:
                text = f.read()
            if "Sanitizer" in text or "runtime error:" in text:
                fail("node %d's log has a sanitizer report" % n.idx)
        if FAILS:
            for n in nodes:
                print("--- %s (last lines)" % n.log, file=sys.stderr)
                with open(n.log, errors="replace") as f:
                    for line in f.readlines()[-15:]:
                        sys.stderr.write(line)
        shutil.rmtree(top, ignore_errors=True)
        subprocess.run(["psql", "-qAt", base, "-c",
                        "DROP DATABASE IF EXISTS " + url.split("///")[1].split("?")[0]],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
