/* Fork N children that exit at once (N fork + N exit records + 1 exit of the parent).
 * Usage: exit_many N */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1;
	for (int i = 0; i < n; i++) {
		pid_t p = fork();
		if (p == 0)
			_exit(0);
		if (p < 0)
			return 1;
	}
	while (wait(0) > 0)
		;
	return 0;
}
