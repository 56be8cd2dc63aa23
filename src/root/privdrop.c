/* The irrevocable changes of identity: root to the mailbox owner at login, and root to the pre-auth user in its empty chroot; each verified; runs as root. */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#ifdef HAVE_SYS_PRCTL_H
#include <sys/prctl.h>
#endif

#include "log.h"
#include "privdrop.h"

void
privdrop_nodump(void)
{
#if defined(HAVE_SYS_PRCTL_H) && defined(PR_SET_DUMPABLE)
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		fatal("prctl PR_SET_DUMPABLE");
#endif
}

/* setresgid, setresuid, then proof that every id is the new one and that
 * root cannot come back; fatal otherwise. */
static void
become(uid_t uid, gid_t gid)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (setresgid(gid, gid, gid) == -1 || setresuid(uid, uid, uid) == -1)
		fatal("setresgid/setresuid %u/%u", (unsigned)uid, (unsigned)gid);
	if (getresuid(&ru, &eu, &su) == -1 || ru != uid || eu != uid || su != uid ||
	    getresgid(&rg, &eg, &sg) == -1 || rg != gid || eg != gid || sg != gid)
		fatalx("privilege drop incomplete");
	if (setuid(0) != -1 || seteuid(0) != -1 || (gid != 0 && setgid(0) != -1))
		fatalx("privilege drop failed: root came back");
	/* setresuid reset it to fs.suid_dumpable. */
	privdrop_nodump();
	umask(077);
}

enum privdrop_result
privdrop_to(const struct auth_account *a)
{
	if (a->uid == 0)
		return PRIVDROP_ROOT_REFUSED;
	if (geteuid() != 0) {
		/* Started by an ordinary user: nothing to change, and no
		 * other account can be served. */
		if (getuid() != a->uid || geteuid() != a->uid)
			return PRIVDROP_NOT_ROOT;
		umask(077);
		return PRIVDROP_OK;
	}
	if (setgroups((size_t)a->ngroups, a->groups) == -1)
		fatal("setgroups (%d groups of %s)", a->ngroups, a->name);
	become(a->uid, a->gid);
	return PRIVDROP_OK;
}

static const char *
setting(const char *var, const char *built_in)
{
	const char *v = secure_getenv(var);

	return v != NULL && *v != '\0' ? v : built_in;
}

int
privdrop_preauth_lookup(struct privdrop_preauth *p, char *why, size_t whysize)
{
	const char *user = setting("MAILDIR_POP3D_PREAUTH_USER", MP_PREAUTH_USER);
	const char *dir = setting("MAILDIR_POP3D_PREAUTH_CHROOT", MP_PREAUTH_CHROOT);
	struct passwd *pw;
	struct stat st;

	memset(p, 0, sizeof(*p));
	if ((p->as_root = geteuid() == 0) == false)
		return 0;
	if ((pw = getpwnam(user)) == NULL || pw->pw_uid == 0 || pw->pw_gid == 0) {
		snprintf(why, whysize, "pre-auth user %s: %s", user, pw == NULL ?
		    "no such user (create it: see maildir-pop3d(8), SECURITY)" : "must not be root");
		return -1;
	}
	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & 022) != 0 || dir[0] != '/' || strlen(dir) >= sizeof(p->chroot)) {
		snprintf(why, whysize, "pre-auth chroot %s: %s", dir, errno == ENOENT ?
		    "missing (make install creates it)" :
		    "not an absolute path to a root-owned directory writable by root only");
		return -1;
	}
	p->uid = pw->pw_uid;
	p->gid = pw->pw_gid;
	snprintf(p->user, sizeof(p->user), "%s", user);
	memcpy(p->chroot, dir, strlen(dir) + 1);
	return 0;
}

void
privdrop_preauth(const struct privdrop_preauth *p)
{
	if (!p->as_root)
		return;
	if (chroot(p->chroot) == -1 || chdir("/") == -1)
		fatal("chroot %s", p->chroot);
	if (setgroups(0, NULL) == -1)
		fatal("setgroups");
	become(p->uid, p->gid);
}
