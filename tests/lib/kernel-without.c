/*
 * Test helper, never part of maildir-pop3d: runs a command as if the kernel lacked
 * Landlock or seccomp filters, by loading a seccomp filter that lets every call through
 * except those, which fail as such a kernel fails them, then exec'ing the command.
 *
 *     kernel-without landlock|seccomp COMMAND [ARG...]
 *
 * landlock: landlock_create_ruleset, _add_rule and _restrict_self fail with ENOSYS.
 * seccomp:  seccomp(2) fails with ENOSYS and prctl(PR_SET_SECCOMP) with EINVAL.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	scmp_filter_ctx ctx;
	int r = 0;

	if (argc < 3 || (strcmp(argv[1], "landlock") != 0 && strcmp(argv[1], "seccomp") != 0)) {
		fprintf(stderr, "usage: kernel-without landlock|seccomp COMMAND [ARG...]\n");
		return 64;
	}
	if ((ctx = seccomp_init(SCMP_ACT_ALLOW)) == NULL)
		return 70;
	if (strcmp(argv[1], "landlock") == 0) {
		r |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(landlock_create_ruleset), 0);
		r |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(landlock_add_rule), 0);
		r |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(landlock_restrict_self), 0);
	} else {
		r |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(seccomp), 0);
		r |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EINVAL), SCMP_SYS(prctl), 1,
		    SCMP_A0(SCMP_CMP_EQ, PR_SET_SECCOMP, 0));
	}
	if (r != 0 || seccomp_load(ctx) != 0) {
		fprintf(stderr, "kernel-without: cannot load the filter\n");
		return 70;
	}
	seccomp_release(ctx);
	execvp(argv[2], argv + 2);
	perror(argv[2]);
	return 127;
}
