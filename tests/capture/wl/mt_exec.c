/* exec from a non-leader thread: de_thread gives the thread the leader's pid. */
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *run(void *arg)
{
	(void)arg;
	printf("%ld\n", (long)syscall(SYS_gettid));
	fflush(stdout);
	execl("/bin/echo", "echo", "from-thread", (char *)0);
	return 0;
}

int main(void)
{
	pthread_t t;
	pthread_create(&t, 0, run, 0);
	pthread_join(t, 0);
	return 1; /* not reached: the exec replaces the whole process */
}
