/* Maildir file names, pure: the unique part, the delivery time, the ,W= size, the UIDL of a name, the name with the seen flag; runs as the mailbox owner (and in the fuzzers). */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "maildir.h"
#include "proto.h"

size_t
maildir_uniq_len(const char *name, size_t len)
{
	const char *colon = memchr(name, ':', len);

	return colon ? (size_t)(colon - name) : len;
}

uint64_t
maildir_delivery(const char *name, size_t len)
{
	uint64_t v = 0;

	/* Absurdly long (over UINT64_MAX) reads as none: it only orders. */
	proto_scan_u64(name, len, UINT64_MAX, &v);
	return v;
}

/* The digits at name[0..len), at most max: a longer number reads as max.
 * *n_r gets how many digits there were. */
static uint64_t
clamped(const char *name, size_t len, uint64_t max, size_t *n_r)
{
	uint64_t v = 0;
	size_t n = 0;

	while (n < len && name[n] >= '0' && name[n] <= '9')
		n++;
	if (n > 0 && proto_scan_u64(name, n, max, &v) == 0)
		v = max;
	*n_r = n;
	return v;
}

uint64_t
maildir_arrival(const char *name, size_t len)
{
	uint64_t secs, usecs = 0;
	size_t i, k, n;

	secs = clamped(name, len, (1ULL << 44) - 1, &i);
	/* ".<uniqueness>.<host>": the first 'M' in the uniqueness. */
	if (i < len && name[i] == '.') {
		for (k = i + 1; k < len && name[k] != '.' && name[k] != 'M'; k++)
			;
		if (k < len && name[k] == 'M')
			usecs = clamped(name + k + 1, len - k - 1, (1ULL << 20) - 1, &n);
	}
	return secs << 20 | usecs;
}

bool
maildir_name_wsize(const char *name, size_t uniq_len, uint64_t *w_r)
{
	size_t i;

	/* ",W=<digits>" followed by ',' or the end of the unique part. */
	for (i = 0; i + 3 < uniq_len; i++) {
		if (name[i] != ',' || name[i + 1] != 'W' || name[i + 2] != '=')
			continue;
		size_t j = i + 3, k;
		uint64_t v = 0;

		k = proto_scan_u64(name + j, uniq_len - j, UINT64_MAX, &v);
		j += k;
		if (k == 0 || (j < uniq_len && name[j] != ','))
			return false;
		*w_r = v;
		return true;
	}
	return false;
}

/* FNV-1a with the 128-bit parameters, on two 64-bit halves: portable,
 * stable, and only needs to tell names apart, not resist an attacker (names
 * come from the delivery agent). */
static void
fnv128(const char *s, size_t len, uint64_t *hi_r, uint64_t *lo_r)
{
	uint64_t hi = 0x6c62272e07bb0142ULL, lo = 0x62b821756295c58dULL;

	for (size_t i = 0; i < len; i++) {
		uint64_t l0, l1, a, b, nlo, nhi;

		lo ^= (unsigned char)s[i];
		/* (hi:lo) *= 2^88 + 0x13b, modulo 2^128 */
		l0 = lo & 0xffffffffULL;
		l1 = lo >> 32;
		a = l0 * 0x13b;
		b = l1 * 0x13b + (a >> 32);
		nlo = (b << 32) | (a & 0xffffffffULL);
		nhi = hi * 0x13b + (b >> 32) + (lo << 24);
		hi = nhi;
		lo = nlo;
	}
	*hi_r = hi;
	*lo_r = lo;
}

void
maildir_uidl_of(const char *uniq, size_t len, char *out)
{
	bool plain = len >= 1 && len <= LIMIT_UIDL_LEN;
	uint64_t hi, lo;

	for (size_t i = 0; plain && i < len; i++)
		if ((unsigned char)uniq[i] < 0x21 || (unsigned char)uniq[i] > 0x7e)
			plain = false;
	if (plain) {
		memcpy(out, uniq, len);
		out[len] = '\0';
		return;
	}
	fnv128(uniq, len, &hi, &lo);
	snprintf(out, LIMIT_UIDL_LEN + 1, "%016" PRIx64 "%016" PRIx64, hi, lo);
}

bool
maildir_seen_name(const char *name, size_t len, char *out, size_t outsize)
{
	size_t ul = maildir_uniq_len(name, len), n;
	const char *flags;
	size_t flen, i;

	if (outsize < len + 5)
		return false;
	if (ul == len) {
		memcpy(out, name, len);
		memcpy(out + len, ":2,S", 5);
		return true;
	}
	if (len - ul < 3 || name[ul + 1] != '2' || name[ul + 2] != ',')
		return false;	/* an info we do not understand: leave it alone */
	flags = name + ul + 3;
	flen = len - ul - 3;
	if (memchr(flags, 'S', flen) != NULL)
		return false;
	/* Flags stay in ASCII order, as the Maildir rules ask. */
	n = ul + 3;
	memcpy(out, name, n);
	for (i = 0; i < flen && (unsigned char)flags[i] < 'S'; i++)
		out[n++] = flags[i];
	out[n++] = 'S';
	memcpy(out + n, flags + i, flen - i);
	n += flen - i;
	out[n] = '\0';
	return true;
}

