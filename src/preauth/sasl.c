/* Pure SASL helpers: strict base64 decoding and PLAIN message splitting; run in the unprivileged pre-auth process on client input, so every length is checked. */
#include "config.h"

#include <string.h>

#include "sasl.h"

static int
b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '+') return 62;
	if (c == '/') return 63;
	return -1;
}

int
sasl_b64_decode(const char *in, size_t inlen, char *out, size_t outsize, size_t *len_r)
{
	size_t i, n = 0;

	if (inlen == 1 && in[0] == '=') {
		if (outsize < 1)
			return -1;
		out[0] = '\0';
		*len_r = 0;
		return 0;
	}
	if (inlen == 0 || inlen % 4 != 0 || inlen / 4 * 3 + 1 > outsize)
		return -1;
	for (i = 0; i < inlen; i += 4) {
		int v[4], k, pad = 0;

		for (k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)in[i + (size_t)k];

			if (c == '=' && i + 4 == inlen && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad)	/* data after padding */
				return -1;
			v[k] = b64val(c);
			if (v[k] < 0)
				return -1;
		}
		/* Non-canonical encodings (stray low bits) are refused. */
		if ((pad == 2 && (v[1] & 0x0f)) || (pad == 1 && (v[2] & 0x03)))
			return -1;
		out[n++] = (char)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			out[n++] = (char)((v[1] & 0x0f) << 4 | v[2] >> 2);
		if (pad < 1)
			out[n++] = (char)((v[2] & 0x03) << 6 | v[3]);
	}
	out[n] = '\0';
	*len_r = n;
	return 0;
}

bool
sasl_plain_split(char *msg, size_t len, const char **authcid_r, const char **passwd_r)
{
	char *authzid = msg, *authcid, *passwd, *nul;

	nul = memchr(msg, '\0', len);
	if (nul == NULL)
		return false;
	authcid = nul + 1;
	nul = memchr(authcid, '\0', len - (size_t)(authcid - msg));
	if (nul == NULL)
		return false;
	passwd = nul + 1;
	/* The password runs to the end and must hold no NUL of its own. */
	if (memchr(passwd, '\0', len - (size_t)(passwd - msg)) != NULL)
		return false;
	msg[len] = '\0';
	if (*authcid == '\0')
		return false;
	if (*authzid != '\0' && strcmp(authzid, authcid) != 0)
		return false;
	*authcid_r = authcid;
	*passwd_r = passwd;
	return true;
}
