/* Pure protocol helpers: strict number parsing, argument splitting, and the one CRLF + dot-stuffing encoder behind both sizes and RETR/TOP; used before and after login. */
#ifndef MP_PROTO_H
#define MP_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most arguments any command takes, plus the verb. */
#define PROTO_MAX_ARGS	4

/* The one decimal reader: the digits at the start of s[0..len), up to the
 * first non-digit, any number of them (leading zeros are a plain number, as
 * long as the line that carries them).  Returns how many octets it read and
 * sets *val_r, or returns 0 (and leaves *val_r) when there is no digit or the
 * value is over max. */
size_t	proto_scan_u64(const char *s, size_t len, uint64_t max, uint64_t *val_r);

/* A whole string that is a decimal number at most max (no sign, space or
 * 0x; leading zeros allowed): 0, or -1 on anything else. */
int	proto_parse_u64(const char *s, uint64_t max, uint64_t *val_r);

/* Splits line in place at spaces (runs of spaces count as one, so a person
 * typing in telnet is not punished).  Returns the number of words, or
 * PROTO_MAX_ARGS + 1 when there are more than PROTO_MAX_ARGS. */
int	proto_split(char *line, char *argv[PROTO_MAX_ARGS]);

/*
 * The encoder turns message octets into what goes on the wire: every LF
 * that is not already preceded by CR gets one, a line starting with '.'
 * gets another '.' (when stuff is set), and for TOP output stops after the
 * header, the blank line and top_lines body lines.  size counts the octets
 * produced minus the stuffing, which is exactly the RFC 1939 size; running
 * the encoder with stuff off over a whole file is how sizes are computed,
 * so LIST and RETR cannot disagree.
 */
struct enc {
	bool		stuff;		/* dot-stuffing on (sending) or off (sizing) */
	bool		top;		/* stop after the header and top_lines lines */
	uint64_t	top_lines;
	bool		bol;		/* at the beginning of a line */
	bool		cr;		/* the last octet copied was CR */
	bool		in_body;
	bool		done;		/* TOP has sent all it should */
	uint64_t	linelen;
	uint64_t	size;
};

/* Worst-case output for len input octets. */
#define ENC_OUT_MAX(len)	(2 * (len) + 2)

void	enc_init(struct enc *, bool stuff);
void	enc_init_top(struct enc *, uint64_t lines);
/* Encodes in[0..len) into out (room for ENC_OUT_MAX(len)); returns octets written. */
size_t	enc_feed(struct enc *, const char *in, size_t len, char *out);
/* Ends the message: CRLF if the last line had no end.  out needs 2 octets. */
size_t	enc_finish(struct enc *, char *out);

#endif
