/* error.h: the one error type of tablehub.
 *
 * Every fallible function returns int: TH_OK (0) or a negative th_code, and fills the caller's
 * th_error (which may be NULL) once, where the failure starts. Callers pass the code up and never
 * overwrite the message. `line` and `column` locate bad input in an uploaded file (1-based; 0 when
 * the failure has no place in a file), so an import operation can report them to the client.
 */
#ifndef TABLEHUB_ERROR_H
#define TABLEHUB_ERROR_H

#include <stdint.h>

typedef enum {
	TH_OK = 0,
	TH_ERROR = -1,     /* unexpected: the message says what */
	TH_ENOTFOUND = -2, /* repo, table, ref, job, pull */
	TH_EEXISTS = -3,
	TH_EINVALID = -4,  /* bad CSV / JSON / params: the client's fault */
	TH_ECONFLICT = -5, /* merge conflict, stale base */
	TH_EBUSY = -6,     /* queue full, repo locked: retry later */
	TH_ENOMEM = -7,    /* reported, never abort() */
	TH_ESTORE = -8,    /* libgit2, SQLite or the file system failed */
	TH_ETOOBIG = -9,   /* over a size cap */
	TH_EAUTH = -10,    /* no or bad credentials */
	TH_ELIMIT = -11,   /* a query hit its time, memory or row limit */
	/* signed in, but without the role or scope this needs */
	TH_EFORBIDDEN = -12,
	TH_ENOSPC = -13, /* the disk (or the quota) is full */
} th_code;

typedef struct th_error {
	th_code code;
	uint64_t line;   /* 1-based line in the input file, 0 if none */
	uint32_t column; /* 1-based column in the input file, 0 if none */
	char msg[512];
} th_error;

#define TH_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Set err (may be NULL) to `code` and the formatted message, clearing line and column; returns
 * `code`, so a failure site is `return th_error_set(err, TH_EINVALID, "...")`. */
int th_error_set(th_error *err, th_code code, const char *fmt, ...) TH_PRINTF(3, 4);

/* As th_error_set, and records the place in the input file. Returns `code`. */
int th_error_set_at(th_error *err, th_code code, uint64_t line, uint32_t column, const char *fmt,
                    ...) TH_PRINTF(5, 6);

/* Set err for system call errno `e` failing to `action` ("write") the file `name`, which the
 * caller gives as clients may see it (its place in the data directory, never the server's path):
 * TH_ENOSPC "the disk is full: cannot <action> '<name>'; try again ..." for a full disk or quota,
 * else TH_ESTORE "cannot <action> '<name>': <strerror(e)>". Returns that code. */
int th_error_os(th_error *err, int e, const char *action, const char *name);

/* Reset err to TH_OK with an empty message. */
void th_error_clear(th_error *err);

/* The stable upper-case name of a code ("ENOTFOUND"), for JSON errors and logs. Never NULL. */
const char *th_code_name(int code);

#endif
