/* meta_control.h: the metadata store's calls that steer operations from outside the worker that
 * runs them (storage/meta_control.c): cancel requests, and the one unfinished operation of a kind
 * a database may have (a queued repack is not queued twice).
 *
 * A cancel is recorded in its own table (operation_cancels: the operation, who, when), which also
 * keeps the record of who cancelled once the operation has ended. A Pending operation is ended at
 * once, in the same transaction; an In Progress one is left to the worker running it, which sees
 * the request at its next check (th_job_check) and stops.
 */
#ifndef TABLEHUB_META_CONTROL_H
#define TABLEHUB_META_CONTROL_H

#include <stdint.h>

#include "error.h"
#include "meta.h"

/* The message of an operation ended by a cancel: "cancelled by <user>". */
#define TH_OP_CANCELLED_FMT "cancelled by %s"

/* Cancel operation `id` on behalf of user `by` (1-64 bytes), in one transaction:
 *   Pending      it ends Failed with the message "cancelled by <by>" at once;
 *   In Progress  the request is recorded for its worker to see (th_meta_op_cancel_requested);
 * either way *state_out (may be NULL) gets the state the operation is in afterwards (Failed or
 * In Progress). Cancelling again while it runs changes nothing and is not an error. Returns TH_OK,
 * TH_ENOTFOUND (no such operation), TH_ECONFLICT (it already ended: the message says how),
 * TH_EINVALID (no user) or TH_ESTORE; TH_ERROR when the store's backend cannot cancel. */
int th_meta_op_cancel(th_op_state *state_out, th_meta *m, const char *id, const char *by,
                      th_error *err);

/* Was operation `id` asked to stop? *requested_out = 1 and by_out (may be NULL) the user who
 * asked, or 0 and "". Returns TH_OK, TH_ESTORE or TH_ERROR (as above). */
int th_meta_op_cancel_requested(int *requested_out, char by_out[65], th_meta *m, const char *id,
                                th_error *err);

/* The oldest unfinished (Pending or In Progress) operation of kind `kind` on owner/db: its id into
 * id_out and *found_out = 1, or *found_out = 0. Returns TH_OK, TH_ESTORE or TH_ERROR. */
int th_meta_op_find_unfinished(int *found_out, char id_out[TH_UUID_SIZE], th_meta *m,
                               const char *kind, const char *owner, const char *db, th_error *err);

#endif
