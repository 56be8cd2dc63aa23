/* Pure SASL helpers: strict base64 and the PLAIN message (RFC 4616); run in the unprivileged pre-auth process. */
#ifndef MP_SASL_H
#define MP_SASL_H

#include <stdbool.h>
#include <stddef.h>

/* Decodes strict base64 (padding required, no white space) into out, which
 * gets a NUL after the data.  "=" alone is the empty response (RFC 5034).
 * -1 on bad input or when out (outsize octets) is too small. */
int	sasl_b64_decode(const char *in, size_t inlen, char *out, size_t outsize, size_t *len_r);

/* Splits a decoded PLAIN message "authzid NUL authcid NUL passwd" in place.
 * false when malformed, or when authzid is set and differs from authcid
 * (we do not let one user act as another). */
bool	sasl_plain_split(char *msg, size_t len, const char **authcid_r, const char **passwd_r);

#endif
