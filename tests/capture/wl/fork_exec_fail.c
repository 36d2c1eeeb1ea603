/* fork + failed exec of string literals (the child's .rodata is not mapped yet when
 * sys_enter_execve runs, so the filename must be recovered at sys_exit). */
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	pid_t p = fork();
	if (p == 0) {
		execl("/nonexistent/logira-literal", "lit-argv0", "lit-arg1", (char *)0);
		_exit(42);
	}
	int st = 0;
	waitpid(p, &st, 0);
	return WIFEXITED(st) && WEXITSTATUS(st) == 42 ? 0 : 1;
}
