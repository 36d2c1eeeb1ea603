/* fork + exec of string literals (the .rodata of a fresh fork is not mapped yet:
 * the classic case where sys_enter argv reads fail). Usage: fork_exec N */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1;
	for (int i = 0; i < n; i++) {
		pid_t p = fork();
		if (p == 0) {
			execl("/bin/true", "/bin/true", "--some-arg", "value with spaces", (char *)0);
			_exit(127);
		}
		waitpid(p, 0, 0);
	}
	return 0;
}
