/* STAT LIST UIDL RETR TOP DELE RSET NOOP LAST and QUIT after login; runs as the mailbox owner. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"
#include "session.h"

void
cmd_stat(struct session *s, int argc, char **argv, struct reply *r)
{
	uint64_t octets = 0;
	uint32_t n = 0, i;

	(void)argc;
	(void)argv;
	for (i = 0; i < s->md.count; i++)
		if (!(s->md.msgs[i].flags & MSG_DELETED)) {
			n++;
			octets += s->md.msgs[i].size;
		}
	reply_ok(r, "%" PRIu32 " %" PRIu64, n, octets);
}

static void
body_list(struct session *s)
{
	for (uint32_t i = 0; i < s->md.count; i++)
		if (!(s->md.msgs[i].flags & MSG_DELETED))
			lineio_printf(&s->io, "%" PRIu32 " %" PRIu64 "\r\n", i + 1, s->md.msgs[i].size);
}

static void
body_uidl(struct session *s)
{
	char uidl[LIMIT_UIDL_LEN + 1];

	for (uint32_t i = 0; i < s->md.count; i++)
		if (!(s->md.msgs[i].flags & MSG_DELETED)) {
			maildir_uidl(&s->md, i, uidl);
			lineio_printf(&s->io, "%" PRIu32 " %s\r\n", i + 1, uidl);
		}
}

static void
count_undeleted(struct session *s, uint32_t *n_r, uint64_t *octets_r)
{
	*n_r = 0;
	*octets_r = 0;
	for (uint32_t i = 0; i < s->md.count; i++)
		if (!(s->md.msgs[i].flags & MSG_DELETED)) {
			(*n_r)++;
			*octets_r += s->md.msgs[i].size;
		}
}

void
cmd_list(struct session *s, int argc, char **argv, struct reply *r)
{
	uint32_t idx, n;
	uint64_t octets;

	if (argc == 2) {
		if (session_msn(s, argv[1], &idx, r))
			reply_ok(r, "%" PRIu32 " %" PRIu64, idx + 1, s->md.msgs[idx].size);
		return;
	}
	count_undeleted(s, &n, &octets);
	reply_ok(r, "%" PRIu32 " messages (%" PRIu64 " octets)", n, octets);
	r->body = body_list;
}

void
cmd_uidl(struct session *s, int argc, char **argv, struct reply *r)
{
	char uidl[LIMIT_UIDL_LEN + 1];
	uint32_t idx;

	if (argc == 2) {
		if (session_msn(s, argv[1], &idx, r)) {
			maildir_uidl(&s->md, idx, uidl);
			reply_ok(r, "%" PRIu32 " %s", idx + 1, uidl);
		}
		return;
	}
	reply_ok(r, "unique-id listing follows");
	r->body = body_uidl;
}

_Static_assert(ENC_OUT_MAX(LIMIT_FILE_CHUNK) <= LIMIT_OUTBUF,
    "one encoded chunk must fit in the output buffer");

/* Streams the open message through the encoder straight into the output
 * buffer: reads of LIMIT_FILE_CHUNK octets, each encoded in as many pieces
 * as the room left in the buffer takes (the encoder needs room for the
 * worst case, twice its input), so that every write() carries a nearly full
 * buffer.  Never more than one chunk of the message in memory. */
static void
body_message(struct session *s)
{
	static char in[LIMIT_FILE_CHUNK];
	struct enc e;
	size_t off, len;
	ssize_t n;
	char *out;

	if (s->body_top)
		enc_init_top(&e, s->body_lines);
	else
		enc_init(&e, true);
	while (!e.done && !s->io.failed) {
		n = read(s->body_fd, in, sizeof(in));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			/* The +OK is out.  Ending the answer with "." would
			 * pass a truncated message off as whole (and a
			 * client may DELE it next): end the session instead. */
			log_warn("read error in message %" PRIu32 ", closing the connection",
			    s->body_idx + 1);
			lineio_abort(&s->io);
			break;
		}
		if (n == 0)
			break;
		for (off = 0, len = (size_t)n; off < len && !e.done; ) {
			size_t room = lineio_room(&s->io), part;

			if (room < ENC_OUT_MAX(LIMIT_ENC_MIN_PIECE)) {
				if (lineio_flush(&s->io) == -1)
					break;
				room = lineio_room(&s->io);
			}
			part = (room - 2) / 2;
			if (part > len - off)
				part = len - off;
			out = lineio_reserve(&s->io, ENC_OUT_MAX(part));
			if (out == NULL)
				break;
			lineio_commit(&s->io, enc_feed(&e, in + off, part, out));
			off += part;
		}
	}
	out = lineio_reserve(&s->io, 2);
	if (out != NULL)
		lineio_commit(&s->io, enc_finish(&e, out));
	close(s->body_fd);
	s->body_fd = -1;
	if (s->body_top) {
		s->top_count++;
		s->top_octets += e.size;
	} else {
		s->retr_count++;
		s->retr_octets += e.size;
		if (!s->io.failed && e.size != s->md.msgs[s->body_idx].size)
			/* The file changed under us (someone rewrote it):
			 * what was sent is what the file holds now. */
			log_warnx("message %" PRIu32 " size changed: listed %" PRIu64 ", sent %" PRIu64,
			    s->body_idx + 1, s->md.msgs[s->body_idx].size, e.size);
	}
}

static bool
open_body(struct session *s, uint32_t idx, struct reply *r)
{
	s->body_fd = maildir_open_msg(&s->md, idx);
	if (s->body_fd == -1) {
		if (errno == ENOENT) {
			reply_err(r, NULL, "Message %" PRIu32 " is gone (removed by another session).", idx + 1);
		} else {
			log_warn("cannot open message %" PRIu32, idx + 1);
			reply_err(r, "SYS/TEMP", "Message %" PRIu32 " cannot be read.", idx + 1);
		}
		return false;
	}
	s->body_idx = idx;
	return true;
}

void
cmd_retr(struct session *s, int argc, char **argv, struct reply *r)
{
	uint32_t idx;

	(void)argc;
	if (!session_msn(s, argv[1], &idx, r) || !open_body(s, idx, r))
		return;
	s->body_top = false;
	s->md.msgs[idx].flags |= MSG_RETR;
	if (idx + 1 > s->last_msn)
		s->last_msn = idx + 1;
	reply_ok(r, "%" PRIu64 " octets", s->md.msgs[idx].size);
	r->body = body_message;
}

void
cmd_top(struct session *s, int argc, char **argv, struct reply *r)
{
	uint64_t lines;
	uint32_t idx;

	(void)argc;
	if (!session_msn(s, argv[1], &idx, r))
		return;
	if (proto_parse_u64(argv[2], UINT64_MAX, &lines) == -1) {
		reply_err(r, NULL, "Invalid number of lines.");
		return;
	}
	if (!open_body(s, idx, r))
		return;
	s->body_top = true;
	s->body_lines = lines;
	reply_ok(r, "top of message follows");
	r->body = body_message;
}

void
cmd_dele(struct session *s, int argc, char **argv, struct reply *r)
{
	uint32_t idx;

	(void)argc;
	if (!session_msn(s, argv[1], &idx, r))
		return;
	s->md.msgs[idx].flags |= MSG_DELETED;
	s->dele_count++;
	s->dele_octets += s->md.msgs[idx].size;
	reply_ok(r, "message %" PRIu32 " deleted", idx + 1);
}

void
cmd_rset(struct session *s, int argc, char **argv, struct reply *r)
{
	uint32_t n;
	uint64_t octets;

	(void)argc;
	(void)argv;
	for (uint32_t i = 0; i < s->md.count; i++)
		s->md.msgs[i].flags &= (uint8_t)~MSG_DELETED;
	s->dele_count = 0;
	s->dele_octets = 0;
	s->last_msn = s->last_at_login;	/* RFC 1225: RSET resets LAST */
	count_undeleted(s, &n, &octets);
	reply_ok(r, "maildrop has %" PRIu32 " messages (%" PRIu64 " octets)", n, octets);
}

void
cmd_noop(struct session *s, int argc, char **argv, struct reply *r)
{
	(void)s;
	(void)argc;
	(void)argv;
	reply_ok(r, "%s", "");
}

void
cmd_last(struct session *s, int argc, char **argv, struct reply *r)
{
	(void)argc;
	(void)argv;
	reply_ok(r, "%" PRIu32, s->last_msn);
}

void
trans_quit(struct session *s, struct reply *r)
{
	struct maildir_commit_stats st;

	if (maildir_commit(&s->md, s->opt->flag_updates, &st) == -1)
		reply_err(r, "SYS/TEMP", "Some deleted messages not removed.");
	else
		reply_ok(r, "maildir-pop3d signing off (%" PRIu32 " messages deleted)", st.deleted);
}
