/* meta_store.h: the metadata store under test, on either backend. Without TABLEHUB_META the tests
 * open DIR/meta.sqlite as they always did; with it (tests/pg/pgtmp.sh run sets it to a throwaway
 * server) every data dir gets a PostgreSQL database of its own, made on first use, so that each
 * test starts from an empty store and a reopen of the same dir finds its data again.
 * sql_int reads (or writes) the store behind the API's back through a connection of its own.
 */
#ifndef TABLEHUB_TESTS_META_STORE_H
#define TABLEHUB_TESTS_META_STORE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "tablehub/meta.h"

/* True when the tests run on PostgreSQL. */
static inline int meta_on_pg(void)
{
	const char *u = getenv("TABLEHUB_META");
	return u != NULL && u[0] != '\0';
}

/* The URL of dir's own database on the test server, into url (made when missing). */
static inline int meta_pg_url(char *url, size_t size, const char *dir)
{
	const char *base = getenv("TABLEHUB_META"), *q = strstr(base, "/postgres?");
	unsigned long h = 5381;
	char sql[96];
	PGconn *c;
	PGresult *r;
	const char *p;

	for (p = dir; *p; p++)
		h = h * 33 + (unsigned char)*p;
	if (q == NULL)
		return -1;
	snprintf(url, size, "%.*s/t%lx%s", (int)(q - base), base, h, q + strlen("/postgres"));
	c = PQconnectdb(base);
	if (PQstatus(c) != CONNECTION_OK) {
		PQfinish(c);
		return -1;
	}
	snprintf(sql, sizeof(sql), "CREATE DATABASE t%lx", h);
	r = PQexec(c, sql); /* fails harmlessly when it exists */
	PQclear(r);
	PQfinish(c);
	return 0;
}

/* th_meta_open_with on dir's store (opts may be NULL). */
static inline int meta_open_with(th_meta **m, const char *dir, const th_meta_options *opts,
                                 th_error *err)
{
	th_meta_options o = { NULL, NULL };
	char url[512];

	if (opts)
		o = *opts;
	if (meta_on_pg() && o.url == NULL) {
		if (meta_pg_url(url, sizeof(url), dir) < 0)
			return th_error_set(err, TH_ESTORE, "test: cannot reach the test server");
		o.url = url;
	}
	return th_meta_open_with(m, dir, &o, err);
}

static inline int meta_open(th_meta **m, const char *dir, th_error *err)
{
	return meta_open_with(m, dir, NULL, err);
}

/* One integer from `sql` on dir's store (a query's first column; a write's changed rows), -1 on
 * error. */
static inline int64_t sql_int(const char *dir, const char *sql)
{
	char path[4096];
	int64_t v = -1;

	if (meta_on_pg()) {
		PGconn *c;
		PGresult *r;
		if (meta_pg_url(path, sizeof(path), dir) < 0)
			return -1;
		c = PQconnectdb(path);
		r = PQexec(c, sql);
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
			v = PQgetvalue(r, 0, 0)[0] == 't' ? 1
			    : PQgetvalue(r, 0, 0)[0] == 'f'
			            ? 0
			            : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		else if (PQresultStatus(r) == PGRES_COMMAND_OK)
			v = strtoll(PQcmdTuples(r), NULL, 10);
		PQclear(r);
		PQfinish(c);
		return v;
	}
	{
		sqlite3 *db;
		sqlite3_stmt *st;
		snprintf(path, sizeof(path), "%s/meta.sqlite", dir);
		if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
			return -1;
		if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
			int rc = sqlite3_step(st);
			if (rc == SQLITE_ROW)
				v = sqlite3_column_int64(st, 0);
			else if (rc == SQLITE_DONE)
				v = sqlite3_changes(db);
		}
		sqlite3_finalize(st);
		sqlite3_close(db);
	}
	return v;
}

#endif
