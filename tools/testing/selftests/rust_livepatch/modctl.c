// SPDX-License-Identifier: GPL-2.0
/*
 * modctl - load and unload modules on request, for the tests' shell.
 *
 * Reads requests from stdin, one per line, and answers each with one line
 * on stdout: "0", or the errno and its message ("22 Invalid argument").
 *
 *   load PATH [PARAM...]   finit_module() of PATH with the parameters, as
 *                          insmod does
 *   unload NAME            delete_module(NAME, O_NONBLOCK), as rmmod does
 *
 * functions.sh runs it as a coprocess, once per test: under TCG on the debug
 * kernel a fork and exec costs about a second, and the ps_lock cycles alone
 * load and unload 120 modules.  Linked statically, so that its one start
 * maps no shared library.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void answer(int err)
{
	if (err)
		printf("%d %s\n", err, strerror(err));
	else
		printf("0\n");
	fflush(stdout);
}

static int load(char *args)
{
	char *path = strsep(&args, " ");
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	if (syscall(SYS_finit_module, fd, args ? args : "", 0))
		err = errno;
	close(fd);
	return err;
}

static int unload(const char *name)
{
	return syscall(SYS_delete_module, name, O_NONBLOCK) ? errno : 0;
}

int main(void)
{
	char line[4096];

	while (fgets(line, sizeof(line), stdin)) {
		char *args = line, *op;

		line[strcspn(line, "\n")] = '\0';
		op = strsep(&args, " ");
		if (!strcmp(op, "load") && args && *args)
			answer(load(args));
		else if (!strcmp(op, "unload") && args && *args)
			answer(unload(args));
		else
			answer(EINVAL);
	}
	return 0;
}
