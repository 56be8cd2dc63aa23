/* setgroups/setgid/setuid to the mailbox owner and the proof that it is one-way; runs as root at login. */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "log.h"
#include "privdrop.h"

enum privdrop_result
privdrop_to(const struct auth_account *a)
{
	uid_t uid = a->uid;
	gid_t gid = a->gid;

	if (uid == 0)
		return PRIVDROP_ROOT_REFUSED;
	if (geteuid() != 0) {
		/* Started by an ordinary user: nothing to change, and no
		 * other account can be served. */
		if (getuid() != uid || geteuid() != uid)
			return PRIVDROP_NOT_ROOT;
		umask(077);
		return PRIVDROP_OK;
	}
	if (setgroups((size_t)a->ngroups, a->groups) == -1)
		fatal("setgroups (%d groups of %s)", a->ngroups, a->name);
#ifdef HAVE_SETRESGID
	if (setresgid(gid, gid, gid) == -1)
		fatal("setresgid %u", (unsigned)gid);
#else
	if (setgid(gid) == -1 || setegid(gid) == -1)
		fatal("setgid %u", (unsigned)gid);
#endif
#ifdef HAVE_SETRESUID
	if (setresuid(uid, uid, uid) == -1)
		fatal("setresuid %u", (unsigned)uid);
#else
	if (setuid(uid) == -1 || seteuid(uid) == -1)
		fatal("setuid %u", (unsigned)uid);
#endif
	/* Verify: every id is the user's, and root cannot come back. */
	if (getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid)
		fatalx("privilege drop incomplete");
#if defined(HAVE_GETRESUID) && defined(HAVE_GETRESGID)
	{
		uid_t ru, eu, su;
		gid_t rg, eg, sg;

		if (getresuid(&ru, &eu, &su) == -1 || ru != uid || eu != uid || su != uid ||
		    getresgid(&rg, &eg, &sg) == -1 || rg != gid || eg != gid || sg != gid)
			fatalx("privilege drop incomplete (saved ids)");
	}
#endif
	if (setuid(0) != -1 || seteuid(0) != -1)
		fatalx("privilege drop failed: root came back");
	if (setgid(0) != -1 && gid != 0)
		fatalx("privilege drop failed: group root came back");
	umask(077);
	return PRIVDROP_OK;
}
