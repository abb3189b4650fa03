/* test_password: Argon2id hashes (util/password.c): the format and parameters of a new hash,
 * verify of right and wrong passwords, the rules on what a password may be, hashes of other
 * parameters asking to be replaced, unknown users costing as much as wrong passwords, hashing from
 * several threads at once, and the constant-time compare. Prints the time one hash takes. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "tablehub/password.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void test_hash_and_verify(void)
{
	char h1[TH_PASSWORD_HASH_SIZE], h2[TH_PASSWORD_HASH_SIZE];
	const char *pw = "correct horse battery";
	th_error err = { 0 };
	int rehash = -1;
	double t;

	/* The first call also makes the dummy hash of unknown users: keep it out of the timing. */
	CHECK(th_password_verify(NULL, NULL, pw, strlen(pw), &err) == TH_EAUTH);
	t = now_ms();
	CHECK_OK(th_password_hash(h1, pw, strlen(pw), &err), &err);
	t = now_ms() - t;
	printf("one Argon2id hash (t=%d, m=%zu MiB): %.1f ms\n", TH_PASSWORD_OPSLIMIT,
	       TH_PASSWORD_MEMLIMIT >> 20, t);
	CHECK_OK(th_password_hash(h2, pw, strlen(pw), &err), &err);
	/* The parameters are today's, and a random salt makes each hash different. */
	CHECK(strncmp(h1, "$argon2id$v=19$m=32768,t=3,p=1$", 31) == 0);
	CHECK(strcmp(h1, h2) != 0);
	CHECK(strstr(h1, pw) == NULL);

	CHECK_OK(th_password_verify(&rehash, h1, pw, strlen(pw), &err), &err);
	CHECK(rehash == 0);
	CHECK_OK(th_password_verify(NULL, h2, pw, strlen(pw), &err), &err);
	CHECK(th_password_verify(&rehash, h1, "correct horse batterY", strlen(pw), &err) ==
	      TH_EAUTH);
	CHECK_STR(err.msg, "wrong user name or password");
	CHECK(th_password_verify(NULL, h1, pw, strlen(pw) - 1, &err) == TH_EAUTH);
}

static void test_rules(void)
{
	char h[TH_PASSWORD_HASH_SIZE] = "untouched";
	char big[TH_PASSWORD_MAX + 2];
	th_error err = { 0 };

	CHECK(th_password_hash(h, "short", 5, &err) == TH_EINVALID);
	CHECK_STR(err.msg, "password too short: use at least 8 bytes");
	CHECK_STR(h, "untouched");
	memset(big, 'a', sizeof(big));
	CHECK(th_password_check(big, TH_PASSWORD_MAX + 1, &err) == TH_EINVALID);
	CHECK_STR(err.msg, "password too long: use at most 256 bytes");
	CHECK_OK(th_password_check(big, TH_PASSWORD_MAX, &err), &err);
	CHECK(th_password_check("abcdefgh\xff", 9, &err) == TH_EINVALID);
	CHECK_STR(err.msg, "password must be UTF-8 text without NUL characters");
	CHECK(th_password_check("abcd\0efgh", 9, &err) == TH_EINVALID);
	CHECK_OK(th_password_check("pässwörd", strlen("pässwörd"), &err), &err);
	/* A password too long to accept never verifies, even against a hash of its prefix. */
	CHECK_OK(th_password_hash(h, big, TH_PASSWORD_MAX, &err), &err);
	CHECK(th_password_verify(NULL, h, big, TH_PASSWORD_MAX + 1, &err) == TH_EAUTH);
	CHECK_OK(th_password_verify(NULL, h, big, TH_PASSWORD_MAX, &err), &err);
}

static void test_old_parameters_and_foreign_hashes(void)
{
	/* Made by libsodium with m=19 MiB, t=2 for "correct horse". */
	static const char old[] = "$argon2id$v=19$m=19456,t=2,p=1$+OaydpC8D9tTbNAOxJiiiw$"
	                          "JT9PqNSL5U1t02IbhUTbCxM8BfBvpHCIeXWYFj+r39E";
	th_error err = { 0 };
	int rehash = 0;

	CHECK_OK(th_password_verify(&rehash, old, "correct horse", 13, &err), &err);
	CHECK(rehash == 1);
	CHECK(th_password_verify(&rehash, old, "correct horses", 14, &err) == TH_EAUTH);
	CHECK(rehash == 0);
	/* Not Argon2id, not a hash at all, empty, corrupt. */
	CHECK(th_password_verify(NULL, "$2b$12$abcdefghijklmnopqrstuv", "correct horse", 13,
	                         &err) == TH_EAUTH);
	CHECK(th_password_verify(NULL, "correct horse", "correct horse", 13, &err) == TH_EAUTH);
	CHECK(th_password_verify(NULL, "", "correct horse", 13, &err) == TH_EAUTH);
	CHECK(th_password_verify(NULL, "$argon2id$v=19$m=19456,t=2,p=1$+Oayd", "correct horse", 13,
	                         &err) == TH_EAUTH);
}

static void test_unknown_user_costs_a_verify(void)
{
	char h[TH_PASSWORD_HASH_SIZE];
	th_error err = { 0 };
	double t_wrong, t_unknown;

	CHECK_OK(th_password_hash(h, "correct horse", 13, &err), &err);
	CHECK(th_password_verify(NULL, NULL, "correct horse", 13, &err) == TH_EAUTH); /* warm */
	t_wrong = now_ms();
	CHECK(th_password_verify(NULL, h, "wrong horse!", 12, &err) == TH_EAUTH);
	t_wrong = now_ms() - t_wrong;
	t_unknown = now_ms();
	CHECK(th_password_verify(NULL, NULL, "wrong horse!", 12, &err) == TH_EAUTH);
	CHECK_STR(err.msg, "wrong user name or password");
	t_unknown = now_ms() - t_unknown;
	printf("verify: wrong password %.1f ms, unknown user %.1f ms\n", t_wrong, t_unknown);
	/* Both run Argon2id over 32 MiB, which takes milliseconds on any machine, far from the
	 * microseconds of a check that skipped the hash. (Their ratio is not checked: a loaded
	 * machine makes it anything.) */
	CHECK(t_wrong > 5 && t_unknown > 5);
}

#define NTHREADS 5

static void *hash_thread(void *arg)
{
	char h[TH_PASSWORD_HASH_SIZE];
	const char *pw = arg;
	th_error err = { 0 };

	if (th_password_hash(h, pw, strlen(pw), &err) != TH_OK ||
	    th_password_verify(NULL, h, pw, strlen(pw), &err) != TH_OK)
		return (void *)1;
	return NULL;
}

static void test_threads(void)
{
	static const char *pws[NTHREADS] = { "password one", "password two", "password three",
		                             "password four", "password five" };
	pthread_t t[NTHREADS];
	void *r;

	for (int i = 0; i < NTHREADS; i++)
		CHECK(pthread_create(&t[i], NULL, hash_thread, (void *)(uintptr_t)pws[i]) == 0);
	for (int i = 0; i < NTHREADS; i++) {
		CHECK(pthread_join(t[i], &r) == 0);
		CHECK(r == NULL);
	}
}

static void test_ct_equal(void)
{
	char a[32], b[32];

	memset(a, 7, sizeof(a));
	memcpy(b, a, sizeof(b));
	CHECK(th_ct_equal(a, b, sizeof(a)) == 1);
	b[31] = 8;
	CHECK(th_ct_equal(a, b, sizeof(a)) == 0);
	CHECK(th_ct_equal(a, b, 31) == 1);
	CHECK(th_ct_equal(a, b, 0) == 1);
	th_secure_zero(a, sizeof(a));
	memset(b, 0, sizeof(b));
	CHECK(memcmp(a, b, sizeof(a)) == 0);
}

int main(void)
{
	RUN(test_hash_and_verify);
	RUN(test_rules);
	RUN(test_old_parameters_and_foreign_hashes);
	RUN(test_unknown_user_costs_a_verify);
	RUN(test_threads);
	RUN(test_ct_equal);
	TH_TEST_END();
}
