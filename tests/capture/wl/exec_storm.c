/* Adversarial: thousands of threads inside execve at once, every exec failing.
 * argv[1] = threads, argv[2] = attempts per thread. Prints the number of attempts made.
 * With a shared, evicting in-flight table, concurrent execs evicted each other's entries
 * and their failures vanished without a trace; every attempt must now be recorded or counted. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int per_thread;
static pthread_barrier_t go;
static volatile int total;

static void *worker(void *arg)
{
	char name[64];
	char *argv[] = { name, NULL };
	snprintf(name, sizeof(name), "/nonexistent/logira-storm-%ld", (long)arg);
	pthread_barrier_wait(&go);
	for (int i = 0; i < per_thread; i++) {
		execv(name, argv); /* fails with ENOENT */
		__sync_fetch_and_add(&total, 1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int n = atoi(argv[1]);
	per_thread = atoi(argv[2]);
	pthread_t *t = calloc(n, sizeof(*t));
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	pthread_barrier_init(&go, NULL, n);
	int made = 0;
	for (long i = 0; i < n; i++)
		if (pthread_create(&t[made], &attr, worker, (void *)i) == 0)
			made++;
		else
			break;
	if (made != n) {
		fprintf(stderr, "only %d threads\n", made);
		return 2;
	}
	for (int i = 0; i < made; i++)
		pthread_join(t[i], NULL);
	printf("%d\n", total);
	return 0;
}
