/* test_api_limit.c: the login rate limiter (api/limit.c) on a clock the test moves: the burst,
 * then one attempt per interval, Retry-After in whole seconds rounded up, charging failures after
 * the check, forgetting a key after a success, keys independent of each other, long keys, and a
 * full table, where a new key never frees a blocked one while idle entries are left. */
#include <stdio.h>
#include <string.h>

#include "../harness.h"
#include "../../api/limit.h"

static void test_burst_then_interval(void)
{
	api_limiter *l = api_limiter_new(64, 3, 2000);
	int64_t t = 1000000;

	CHECK(l != NULL);
	for (int i = 0; i < 3; i++)
		CHECK(api_limiter_check(l, "a:10.0.0.1", t, 1) == 0);
	/* The fourth waits one interval: 2 s. */
	CHECK(api_limiter_check(l, "a:10.0.0.1", t, 1) == 2);
	CHECK(api_limiter_check(l, "a:10.0.0.1", t + 1001, 1) == 1);
	CHECK(api_limiter_check(l, "a:10.0.0.1", t + 1999, 1) == 1);
	CHECK(api_limiter_check(l, "a:10.0.0.1", t + 2000, 1) == 0);
	CHECK(api_limiter_check(l, "a:10.0.0.1", t + 2000, 1) == 2);
	/* Refused attempts do not move the wait. */
	CHECK(api_limiter_check(l, "a:10.0.0.1", t + 3000, 1) == 1);
	CHECK(api_limiter_check(l, "a:10.0.0.1", t + 4000, 1) == 0);
	/* Other keys have their own bucket. */
	CHECK(api_limiter_check(l, "a:10.0.0.2", t, 1) == 0);
	/* After a long quiet time, the whole burst again. */
	for (int i = 0; i < 3; i++)
		CHECK(api_limiter_check(l, "a:10.0.0.1", t + 60000, 1) == 0);
	CHECK(api_limiter_check(l, "a:10.0.0.1", t + 60000, 1) == 2);
	api_limiter_free(l);
	api_limiter_free(NULL);
}

static void test_charge_failures_and_forget(void)
{
	api_limiter *l = api_limiter_new(64, 2, 60000);
	int64_t t = 5000;

	/* A check without take charges nothing. */
	for (int i = 0; i < 5; i++)
		CHECK(api_limiter_check(l, "u:alice", t, 0) == 0);
	api_limiter_charge(l, "u:alice", t);
	CHECK(api_limiter_check(l, "u:alice", t, 0) == 0);
	api_limiter_charge(l, "u:alice", t);
	CHECK(api_limiter_check(l, "u:alice", t, 0) == 60);
	/* Failures charged past the limit wait out at most one more interval. */
	for (int i = 0; i < 10; i++)
		api_limiter_charge(l, "u:alice", t);
	CHECK(api_limiter_check(l, "u:alice", t, 0) == 60);
	CHECK(api_limiter_check(l, "u:alice", t + 59500, 0) == 1);
	CHECK(api_limiter_check(l, "u:alice", t + 60000, 0) == 0);
	/* A success forgets the failures. */
	api_limiter_charge(l, "u:alice", t + 60000);
	CHECK(api_limiter_check(l, "u:alice", t + 60000, 0) == 60);
	api_limiter_forget(l, "u:alice");
	CHECK(api_limiter_check(l, "u:alice", t + 60000, 0) == 0);
	api_limiter_forget(l, "u:nobody");
	api_limiter_free(l);
}

static void test_long_keys(void)
{
	api_limiter *l = api_limiter_new(8, 1, 1000);
	char a[300], b[300];

	memset(a, 'x', sizeof(a) - 1);
	a[sizeof(a) - 1] = '\0';
	memcpy(b, a, sizeof(b));
	b[200] = 'y'; /* differs only past the cut: the same key */
	CHECK(api_limiter_check(l, a, 10, 1) == 0);
	CHECK(api_limiter_check(l, b, 10, 1) == 1);
	api_limiter_free(l);
}

static void test_full_table(void)
{
	/* One set of 8: blocked keys stay while new keys take the idle entries. */
	api_limiter *l = api_limiter_new(8, 1, 100000);
	char k[32];
	int64_t t = 1000;

	CHECK(api_limiter_check(l, "u:victim", t, 1) == 0);
	CHECK(api_limiter_check(l, "u:victim", t, 1) == 100);
	/* Six more keys blocked for longer; one idle slot is left. */
	for (int i = 0; i < 6; i++) {
		snprintf(k, sizeof(k), "u:spray%d", i);
		CHECK(api_limiter_check(l, k, t + 5000, 1) == 0);
	}
	for (int i = 0; i < 50; i++) {
		snprintf(k, sizeof(k), "u:idle%d", i);
		api_limiter_forget(l, k);
		CHECK(api_limiter_check(l, k, t + 6000, 0) == 0);
	}
	CHECK(api_limiter_check(l, "u:victim", t + 6000, 0) == 94);
	/* With every entry blocked, a new key replaces the one that frees soonest (the limit of a
	 * fixed table: the keyed set hash is what keeps clients from aiming at one set). */
	CHECK(api_limiter_check(l, "u:last", t + 7000, 1) == 0);
	CHECK(api_limiter_check(l, "u:victim", t + 7000, 0) == 93);
	CHECK(api_limiter_check(l, "u:new", t + 7000, 1) == 0);
	CHECK(api_limiter_check(l, "u:victim", t + 7000, 0) == 0);
	CHECK(api_limiter_check(l, "u:spray0", t + 7000, 0) == 98);
	api_limiter_free(l);
}

int main(void)
{
	RUN(test_burst_then_interval);
	RUN(test_charge_failures_and_forget);
	RUN(test_long_keys);
	RUN(test_full_table);
	TH_TEST_END();
}
