/* meta_coord.h: what the processes sharing one metadata store coordinate through it
 * (storage/meta_coord.c): the writer lock of a database across nodes, and the notices that wake
 * idle workers when an operation is queued.
 *
 * One process on meta.sqlite (the default) holds the data dir's LOCK, so the job pool's own
 * in-process writer lock and wakeups are all there is: the lock here is taken at once and holds
 * nothing, a notice is not sent, and there is nothing to wait for. On PostgreSQL several `serve`
 * processes share the store and the data dir: the lock is a session advisory lock keyed by the
 * database's name, held on a connection of its own for as long as the writer runs (a node that
 * dies loses it with its connection), and notices are NOTIFY and LISTEN on one channel, so every
 * node's idle workers wake at once.
 */
#ifndef TABLEHUB_META_COORD_H
#define TABLEHUB_META_COORD_H

#include <stdint.h>

#include "error.h"
#include "meta.h"

/* 1 when processes other than this one may share `m` (PostgreSQL), 0 when this process is alone
 * on it (SQLite, under the data dir's LOCK). */
int th_meta_shared(const th_meta *m);

/* A held writer lock (opaque; NULL when the store needs none). */
typedef struct th_meta_dblock th_meta_dblock;

/* The key of owner/db's writer lock, the same in every process: a 64-bit hash of "owner/db". Two
 * databases whose keys collide only take turns. */
int64_t th_meta_dblock_key(const char *owner, const char *db);

/* Take owner/db's writer lock across the nodes sharing `m`, waiting as long as another node holds
 * it: exclusive, or when `shared` beside other shared holders only (jobs.h's TH_JOB_OWN_BRANCH).
 * *out (NULL for a store without nodes) holds it until th_meta_dblock_release. The caller still
 * takes its process's own lock first: this one orders processes, not threads. Returns TH_OK,
 * TH_EINVALID (a bad name) or TH_ESTORE (the store cannot be reached; nothing is held). */
int th_meta_dblock_take(th_meta_dblock **out, th_meta *m, const char *owner, const char *db,
                        int shared, th_error *err);

/* Release a lock th_meta_dblock_take gave (NULL: nothing). Never fails: a lock whose connection is
 * gone was released by the store already. */
void th_meta_dblock_release(th_meta *m, th_meta_dblock *l);

/* Tell every node sharing `m` that an operation was queued or re-queued, so that their waiting
 * workers claim it now. Returns TH_OK (also when the store has no nodes to tell) or TH_ESTORE. */
int th_meta_work_notify(th_meta *m, th_error *err);

/* Wait up to timeout_ms for a notice sent by th_meta_work_notify from any node (a process's own
 * notices included). One thread of a process waits at a time. Returns 1 when a notice came, 0 at
 * the timeout, TH_EINVALID when the store is not shared (th_meta_shared: nothing would ever
 * come), or TH_ESTORE (the caller waits a while and calls again: the store reconnects). */
int th_meta_work_wait(th_meta *m, int64_t timeout_ms, th_error *err);

#endif
