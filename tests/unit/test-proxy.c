/* Unit tests for the PROXY protocol parser, the CIDR lists and the header reader; run unprivileged. */
#include "config.h"
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"
#include "pop3d-limits.h"
#include "proxy.h"

static const unsigned char sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};

/* Parses a copy in a buffer of exactly len octets, so that ASan sees any
 * read past the end. */
static enum proxy_result
parse_exact(const void *data, size_t len, struct proxy_info *info)
{
	unsigned char *copy = malloc(len ? len : 1);
	enum proxy_result r;

	if (copy == NULL)
		abort();
	memcpy(copy, data, len);
	r = proxy_parse(copy, len, info);
	free(copy);
	return r;
}

static enum proxy_result
parse_str(const char *s, struct proxy_info *info)
{
	return parse_exact(s, strlen(s), info);
}

/* Every proper prefix of a valid header must be NEED_MORE. */
static bool
prefixes_need_more(const void *hdr, size_t len)
{
	struct proxy_info info;
	size_t n;

	for (n = 0; n < len; n++)
		if (parse_exact(hdr, n, &info) != PROXY_NEED_MORE) {
			printf("# prefix of %zu octets was not NEED_MORE\n", n);
			return false;
		}
	return true;
}

static const char *
src_text(const struct proxy_info *info, char *buf, size_t size)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&info->src;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&info->src;

	if (info->src.ss_family == AF_INET)
		return inet_ntop(AF_INET, &sin->sin_addr, buf, (socklen_t)size);
	if (info->src.ss_family == AF_INET6)
		return inet_ntop(AF_INET6, &sin6->sin6_addr, buf, (socklen_t)size);
	return "none";
}

static unsigned
src_port(const struct proxy_info *info)
{
	if (info->src.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&info->src)->sin_port);
	if (info->src.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&info->src)->sin6_port);
	return 0;
}

/* An independent CRC32c (RFC 4960 appendix B) for building test headers. */
static uint32_t
test_crc32c(const unsigned char *p, size_t len)
{
	uint32_t crc = 0xFFFFFFFFu;
	size_t i;
	int k;

	for (i = 0; i < len; i++) {
		crc ^= p[i];
		for (k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
	}
	return ~crc;
}

/* Builds a v2 header: signature, ver_cmd, fam, body. Returns its length. */
static size_t
v2(unsigned char *out, unsigned char ver_cmd, unsigned char fam,
    const unsigned char *body, size_t body_len)
{
	memcpy(out, sig, 12);
	out[12] = ver_cmd;
	out[13] = fam;
	out[14] = (unsigned char)(body_len >> 8);
	out[15] = (unsigned char)body_len;
	if (body_len > 0)
		memcpy(out + 16, body, body_len);
	return 16 + body_len;
}

static void
test_v1(void)
{
	struct proxy_info info;
	char text[INET6_ADDRSTRLEN], line[200];
	const char *h;
	size_t n;

	h = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 110\r\n";
	is_int(parse_str(h, &info), PROXY_OK, "v1 TCP4 parses");
	ok(!info.local, "v1 TCP4 is not local");
	is_int(info.src.ss_family, AF_INET, "v1 TCP4 gives AF_INET");
	is_int(info.srclen, sizeof(struct sockaddr_in), "v1 TCP4 srclen");
	is_str(src_text(&info, text, sizeof(text)), "192.0.2.7", "v1 TCP4 source address");
	is_int(src_port(&info), 56324, "v1 TCP4 source port");
	is_int(info.consumed, strlen(h), "v1 TCP4 consumed is the line length");
	ok(prefixes_need_more(h, strlen(h)), "v1 TCP4 truncated at every length is NEED_MORE");

	is_int(parse_str("PROXY TCP4 192.0.2.7 198.51.100.1 56324 110\r\nCAPA\r\n", &info),
	    PROXY_OK, "v1 followed by a command parses");
	is_int(info.consumed, strlen(h), "v1 consumed stops at the CRLF");

	h = "PROXY TCP6 2001:db8::7 2001:db8::1 56324 110\r\n";
	is_int(parse_str(h, &info), PROXY_OK, "v1 TCP6 parses");
	is_int(info.src.ss_family, AF_INET6, "v1 TCP6 gives AF_INET6");
	is_int(info.srclen, sizeof(struct sockaddr_in6), "v1 TCP6 srclen");
	is_str(src_text(&info, text, sizeof(text)), "2001:db8::7", "v1 TCP6 source address");
	is_int(src_port(&info), 56324, "v1 TCP6 source port");
	is_int(info.consumed, strlen(h), "v1 TCP6 consumed");
	ok(prefixes_need_more(h, strlen(h)), "v1 TCP6 truncated at every length is NEED_MORE");

	is_int(parse_str("PROXY TCP6 ::ffff:192.0.2.7 ::ffff:198.51.100.1 1 2\r\n", &info),
	    PROXY_OK, "v1 TCP6 with an IPv4-mapped address (as inet_ntop writes it)");
	is_str(src_text(&info, text, sizeof(text)), "::ffff:192.0.2.7", "v1 TCP6 mapped source");
	is_int(parse_str("PROXY TCP6 FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n", &info),
	    PROXY_OK, "v1 TCP6 longest line (104 octets)");
	is_int(info.consumed, 104, "v1 TCP6 longest line consumed");
	is_int(parse_str("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", &info),
	    PROXY_OK, "v1 TCP4 edge values 0 and 255, ports 0 and 65535");

	h = "PROXY UNKNOWN\r\n";
	is_int(parse_str(h, &info), PROXY_OK, "v1 UNKNOWN short form");
	ok(info.local, "v1 UNKNOWN is local");
	is_int(info.consumed, 15, "v1 UNKNOWN consumed");
	ok(prefixes_need_more(h, strlen(h)), "v1 UNKNOWN truncated is NEED_MORE");
	is_int(parse_str("PROXY UNKNOWN ffff:f::f 1.2.3.4 whatever 99999\r\n", &info),
	    PROXY_OK, "v1 UNKNOWN ignores the rest of the line");
	ok(info.local, "v1 UNKNOWN long form is local");

	/* 107 octets: "PROXY UNKNOWN " (14) + 91 filler + CRLF. */
	memset(line, 0, sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	memset(line + 14, 'x', 91);
	memcpy(line + 105, "\r\n", 2);
	is_int(strlen(line), 107, "the 107-octet line is 107 octets");
	is_int(parse_str(line, &info), PROXY_OK, "v1 line of exactly 107 octets is accepted");
	is_int(info.consumed, 107, "v1 107-octet line consumed");
	ok(prefixes_need_more(line, 107), "v1 107-octet line truncated is NEED_MORE");
	memset(line + 14, 'x', 92);
	memcpy(line + 106, "\r\n", 2);
	is_int(strlen(line), 108, "the 108-octet line is 108 octets");
	is_int(parse_str(line, &info), PROXY_BAD, "v1 line of 108 octets is refused");
	is_int(parse_exact(line, 107, &info), PROXY_BAD, "v1 CR at octet 107 is refused before the LF");
	memset(line, 0, sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	memset(line + 14, 'x', 150);
	is_int(parse_exact(line, 107, &info), PROXY_BAD, "v1 without CRLF in 107 octets is refused");
	is_int(parse_exact(line, 106, &info), PROXY_NEED_MORE, "v1 without CRLF in 106 octets may go on");
	is_int(parse_exact(line, 164, &info), PROXY_BAD, "v1 long line without CRLF is refused");

	is_int(parse_str("PROXY TCP4 192.0.2.7 198.51.100.1 56324 110\n", &info),
	    PROXY_BAD, "v1 ended by a bare LF");
	is_int(parse_str("PROXY TCP4 192.0.2.7 198.51.100.1 56324 110\rX", &info),
	    PROXY_BAD, "v1 ended by a bare CR");
	is_int(parse_str("PROXY TCP4 192.0.2.7 198.51.100.1 56324 110\r", &info),
	    PROXY_NEED_MORE, "v1 CR at the end of the data waits for the LF");
	is_int(parse_str("PROXY UNKNOWN a\nb\r\n", &info), PROXY_BAD, "v1 UNKNOWN with a bare LF inside");
	is_int(parse_str("PROXY TCP4 192.0.2.7 198.51.100.1 56324 110", &info),
	    PROXY_NEED_MORE, "v1 without CRLF yet is NEED_MORE");

	is_int(parse_str("PROXY TCP4 256.1.1.1 198.51.100.1 1 2\r\n", &info), PROXY_BAD, "v1 IPv4 256.1.1.1");
	is_int(parse_str("PROXY TCP4 1.2.3 198.51.100.1 1 2\r\n", &info), PROXY_BAD, "v1 IPv4 1.2.3");
	is_int(parse_str("PROXY TCP4 1.2.3.4.5 198.51.100.1 1 2\r\n", &info), PROXY_BAD, "v1 IPv4 1.2.3.4.5");
	is_int(parse_str("PROXY TCP4 01.2.3.4 198.51.100.1 1 2\r\n", &info), PROXY_BAD, "v1 IPv4 with a leading zero");
	is_int(parse_str("PROXY TCP4 1..3.4 198.51.100.1 1 2\r\n", &info), PROXY_BAD, "v1 IPv4 with an empty part");
	is_int(parse_str("PROXY TCP4 1.2.3.4 198.51.100.1000 1 2\r\n", &info), PROXY_BAD, "v1 IPv4 destination out of range");
	is_int(parse_str("PROXY TCP4 ::1 ::1 1 2\r\n", &info), PROXY_BAD, "v1 TCP4 with IPv6 addresses");
	is_int(parse_str("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", &info), PROXY_BAD, "v1 TCP6 with IPv4 addresses");
	is_int(parse_str("PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", &info), PROXY_BAD, "v1 TCP6 with nine groups");
	is_int(parse_str("PROXY TCP6 1::2::3 ::1 1 2\r\n", &info), PROXY_BAD, "v1 TCP6 with two double colons");
	is_int(parse_str("PROXY TCP6 12345::1 ::1 1 2\r\n", &info), PROXY_BAD, "v1 TCP6 with a 5-digit group");
	is_int(parse_str("PROXY TCP6 x ::1 1 2\r\n", &info), PROXY_BAD, "v1 TCP6 with a non-address");
	is_int(parse_str("PROXY TCP6 0000:0000:0000:0000:0000:0000:0000:0000:0000:1 ::1 1 2\r\n", &info),
	    PROXY_BAD, "v1 TCP6 address text over 45 octets");
	is_int(parse_str("PROXY TCP4 1.2.3.4 5.6.7.8x 1 2\r\n", &info), PROXY_BAD, "v1 junk after the destination address");
	is_int(parse_str("PROXY TCP4 192.0.2.7 198.51.100.1 70000 110\r\n", &info), PROXY_BAD, "v1 port 70000");
	is_int(parse_str("PROXY TCP4 192.0.2.7 198.51.100.1 65536 110\r\n", &info), PROXY_BAD, "v1 port 65536");
	is_int(parse_str("PROXY TCP4 192.0.2.7 198.51.100.1 -1 110\r\n", &info), PROXY_BAD, "v1 port -1");
	is_int(parse_str("PROXY TCP4 192.0.2.7 198.51.100.1 +1 110\r\n", &info), PROXY_BAD, "v1 port +1");
	is_int(parse_str("PROXY TCP4 192.0.2.7 198.51.100.1 08 110\r\n", &info), PROXY_BAD, "v1 port 08");
	is_int(parse_str("PROXY TCP4 192.0.2.7 198.51.100.1 1 0110\r\n", &info), PROXY_BAD, "v1 destination port 0110");
	is_int(parse_str("PROXY TCP4 192.0.2.7 198.51.100.1 1\r\n", &info), PROXY_BAD, "v1 without destination port");
	is_int(parse_str("PROXY TCP4 192.0.2.7 198.51.100.1 1 2 3\r\n", &info), PROXY_BAD, "v1 with a third port");
	is_int(parse_str("PROXY  TCP4 192.0.2.7 198.51.100.1 1 2\r\n", &info), PROXY_BAD, "v1 two spaces after PROXY");
	is_int(parse_str("PROXY TCP4  192.0.2.7 198.51.100.1 1 2\r\n", &info), PROXY_BAD, "v1 two spaces after TCP4");
	is_int(parse_str("PROXY TCP4 192.0.2.7  198.51.100.1 1 2\r\n", &info), PROXY_BAD, "v1 two spaces between addresses");
	is_int(parse_str("PROXY TCP4 192.0.2.7 198.51.100.1 1 2 \r\n", &info), PROXY_BAD, "v1 trailing space");
	is_int(parse_str(" PROXY TCP4 192.0.2.7 198.51.100.1 1 2\r\n", &info), PROXY_BAD, "v1 leading space");
	is_int(parse_str("PROXY\tTCP4 192.0.2.7 198.51.100.1 1 2\r\n", &info), PROXY_BAD, "v1 tab for space");
	is_int(parse_str("proxy TCP4 192.0.2.7 198.51.100.1 1 2\r\n", &info), PROXY_BAD, "v1 lower-case proxy");
	is_int(parse_str("PROXY tcp4 192.0.2.7 198.51.100.1 1 2\r\n", &info), PROXY_BAD, "v1 lower-case tcp4");
	is_int(parse_str("PROXY unknown\r\n", &info), PROXY_BAD, "v1 lower-case unknown");
	is_int(parse_str("PROXY TCP5 192.0.2.7 198.51.100.1 1 2\r\n", &info), PROXY_BAD, "v1 TCP5");
	is_int(parse_str("PROXY UDP4 192.0.2.7 198.51.100.1 1 2\r\n", &info), PROXY_BAD, "v1 UDP4");
	is_int(parse_str("PROXY UNKNOWNX\r\n", &info), PROXY_BAD, "v1 UNKNOWNX");
	is_int(parse_str("PROXY \r\n", &info), PROXY_BAD, "v1 without a protocol");
	is_int(parse_str("PROXY\r\n", &info), PROXY_BAD, "v1 PROXY alone");

	/* Bad prefixes are refused without waiting for more. */
	is_int(parse_str("CAPA\r\n", &info), PROXY_BAD, "a POP3 command instead of a header");
	is_int(parse_str("C", &info), PROXY_BAD, "one wrong octet is enough to refuse");
	is_int(parse_str("PROXY TCP4 256", &info), PROXY_BAD, "v1 bad address refused before the CRLF");
	is_int(parse_str("PROXY TCP4 1.2.3.4 5.6.7.8 08", &info), PROXY_BAD, "v1 leading zero refused before the CRLF");
	is_int(parse_str("PROXY TCPX", &info), PROXY_BAD, "v1 bad protocol refused before the CRLF");
	is_int(parse_exact("", 0, &info), PROXY_NEED_MORE, "empty input is NEED_MORE");
	n = strlen("PROXY TCP4 192.0.2.7 198.51.100.1 56324 110\r\n");
	ok(n == 45, "sanity: TCP4 line length");
}

static void
test_v2(void)
{
	struct proxy_info info;
	unsigned char body[600], hdr[700], big[700];
	char text[INET6_ADDRSTRLEN];
	size_t len, blen;
	uint32_t crc;

	/* TCP over IPv4: 192.0.2.7:56324 -> 198.51.100.1:110 */
	const unsigned char in4[12] = { 192, 0, 2, 7, 198, 51, 100, 1, 0xDC, 0x04, 0, 110 };
	const unsigned char in6[36] = {
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7,
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
		0xDC, 0x04, 0, 110
	};
	const unsigned char tlvs[] = {
		0x01, 0x00, 0x04, 'p', 'o', 'p', '3',	/* ALPN */
		0x04, 0x00, 0x00,			/* NOOP, empty */
		0x20, 0x00, 0x05, 0x01, 0, 0, 0, 0,	/* SSL, client=SSL, verify=0 */
	};

	len = v2(hdr, 0x21, 0x11, in4, sizeof(in4));
	is_int(parse_exact(hdr, len, &info), PROXY_OK, "v2 PROXY TCP4 parses");
	ok(!info.local, "v2 PROXY TCP4 is not local");
	is_int(info.src.ss_family, AF_INET, "v2 TCP4 gives AF_INET");
	is_str(src_text(&info, text, sizeof(text)), "192.0.2.7", "v2 TCP4 source address");
	is_int(src_port(&info), 56324, "v2 TCP4 source port");
	is_int(info.consumed, 28, "v2 TCP4 consumed 16 + 12");
	ok(prefixes_need_more(hdr, len), "v2 TCP4 truncated at every length is NEED_MORE");
	memcpy(hdr + len, "CAPA\r\n", 6);
	is_int(parse_exact(hdr, len + 6, &info), PROXY_OK, "v2 TCP4 followed by a command");
	is_int(info.consumed, 28, "v2 consumed stops at the header's end");

	memcpy(body, in4, sizeof(in4));
	memcpy(body + sizeof(in4), tlvs, sizeof(tlvs));
	blen = sizeof(in4) + sizeof(tlvs);
	len = v2(hdr, 0x21, 0x11, body, blen);
	is_int(parse_exact(hdr, len, &info), PROXY_OK, "v2 TCP4 with TLVs parses");
	is_str(src_text(&info, text, sizeof(text)), "192.0.2.7", "v2 TCP4 with TLVs source address");
	is_int(info.consumed, 16 + blen, "v2 TCP4 with TLVs consumed");
	ok(prefixes_need_more(hdr, len), "v2 TCP4 with TLVs truncated is NEED_MORE");

	len = v2(hdr, 0x21, 0x21, in6, sizeof(in6));
	is_int(parse_exact(hdr, len, &info), PROXY_OK, "v2 PROXY TCP6 parses");
	is_int(info.src.ss_family, AF_INET6, "v2 TCP6 gives AF_INET6");
	is_int(info.srclen, sizeof(struct sockaddr_in6), "v2 TCP6 srclen");
	is_str(src_text(&info, text, sizeof(text)), "2001:db8::7", "v2 TCP6 source address");
	is_int(src_port(&info), 56324, "v2 TCP6 source port");
	is_int(info.consumed, 52, "v2 TCP6 consumed 16 + 36");
	ok(prefixes_need_more(hdr, len), "v2 TCP6 truncated is NEED_MORE");

	memcpy(body, in6, sizeof(in6));
	memcpy(body + sizeof(in6), tlvs, sizeof(tlvs));
	blen = sizeof(in6) + sizeof(tlvs);
	len = v2(hdr, 0x21, 0x21, body, blen);
	is_int(parse_exact(hdr, len, &info), PROXY_OK, "v2 TCP6 with TLVs parses");
	is_int(info.consumed, 16 + blen, "v2 TCP6 with TLVs consumed");
	ok(prefixes_need_more(hdr, len), "v2 TCP6 with TLVs truncated is NEED_MORE");

	/* CRC32c TLV (spec 2.2.3), big-endian, computed with the field zeroed. */
	is_int(test_crc32c((const unsigned char *)"123456789", 9), 0xE3069283u,
	    "sanity: the test's CRC32c matches the RFC 3720 check value");
	memcpy(body, in4, sizeof(in4));
	body[12] = 0x03; body[13] = 0x00; body[14] = 0x04;
	memset(body + 15, 0, 4);
	blen = 19;
	len = v2(hdr, 0x21, 0x11, body, blen);
	crc = test_crc32c(hdr, len);
	hdr[16 + 15] = (unsigned char)(crc >> 24);
	hdr[16 + 16] = (unsigned char)(crc >> 16);
	hdr[16 + 17] = (unsigned char)(crc >> 8);
	hdr[16 + 18] = (unsigned char)crc;
	is_int(parse_exact(hdr, len, &info), PROXY_OK, "v2 with a correct CRC32c");
	hdr[16 + 18] ^= 1;
	is_int(parse_exact(hdr, len, &info), PROXY_BAD, "v2 with a wrong CRC32c");
	hdr[16 + 18] ^= 1;
	hdr[16 + 0] ^= 1;
	is_int(parse_exact(hdr, len, &info), PROXY_BAD, "v2 with a changed address fails the CRC32c");
	body[14] = 0x03;
	len = v2(hdr, 0x21, 0x11, body, 18);
	is_int(parse_exact(hdr, len, &info), PROXY_BAD, "v2 CRC32c TLV of 3 octets");

	/* TLV framing */
	memcpy(body, in4, sizeof(in4));
	body[12] = 0x04; body[13] = 0x00;
	len = v2(hdr, 0x21, 0x11, body, 14);
	is_int(parse_exact(hdr, len, &info), PROXY_BAD, "v2 with a cut TLV header");
	body[12] = 0x04; body[13] = 0x00; body[14] = 0x05; body[15] = 'x';
	len = v2(hdr, 0x21, 0x11, body, 16);
	is_int(parse_exact(hdr, len, &info), PROXY_BAD, "v2 with a TLV longer than the header");

	len = v2(hdr, 0x20, 0x00, NULL, 0);
	is_int(parse_exact(hdr, len, &info), PROXY_OK, "v2 LOCAL parses");
	ok(info.local, "v2 LOCAL is local");
	is_int(info.consumed, 16, "v2 LOCAL consumed 16");
	ok(prefixes_need_more(hdr, len), "v2 LOCAL truncated is NEED_MORE");
	len = v2(hdr, 0x20, 0x11, in4, sizeof(in4));
	is_int(parse_exact(hdr, len, &info), PROXY_OK, "v2 LOCAL with an address block parses");
	ok(info.local, "v2 LOCAL ignores the address block");
	is_int(info.consumed, 28, "v2 LOCAL skips the whole block");
	len = v2(hdr, 0x20, 0xFF, in4, 3);
	is_int(parse_exact(hdr, len, &info), PROXY_OK, "v2 LOCAL ignores the family octet");

	len = v2(hdr, 0x21, 0x00, NULL, 0);
	is_int(parse_exact(hdr, len, &info), PROXY_OK, "v2 PROXY UNSPEC is accepted");
	ok(info.local, "v2 PROXY UNSPEC keeps the real endpoints");
	len = v2(hdr, 0x21, 0x00, in4, sizeof(in4));
	is_int(parse_exact(hdr, len, &info), PROXY_OK, "v2 PROXY UNSPEC with ignored address data");
	ok(info.local, "v2 PROXY UNSPEC with data is local");
	len = v2(hdr, 0x21, 0x12, in4, sizeof(in4));
	is_int(parse_exact(hdr, len, &info), PROXY_OK, "v2 PROXY UDP4 falls back to UNSPEC");
	ok(info.local, "v2 UDP4 is local");
	memset(body, 0, 216);
	len = v2(hdr, 0x21, 0x31, body, 216);
	is_int(parse_exact(hdr, len, &info), PROXY_OK, "v2 PROXY UNIX stream falls back to UNSPEC");
	ok(info.local, "v2 UNIX is local");
	len = v2(hdr, 0x21, 0x31, body, 12);
	is_int(parse_exact(hdr, len, &info), PROXY_BAD, "v2 UNIX with a short address block");

	len = v2(hdr, 0x11, 0x11, in4, sizeof(in4));
	is_int(parse_exact(hdr, len, &info), PROXY_BAD, "v2 version nibble 1");
	is_int(parse_exact(hdr, 13, &info), PROXY_BAD, "v2 bad version refused at 13 octets");
	len = v2(hdr, 0x31, 0x11, in4, sizeof(in4));
	is_int(parse_exact(hdr, len, &info), PROXY_BAD, "v2 version nibble 3");
	len = v2(hdr, 0x22, 0x11, in4, sizeof(in4));
	is_int(parse_exact(hdr, len, &info), PROXY_BAD, "v2 command 2");
	len = v2(hdr, 0x2F, 0x11, in4, sizeof(in4));
	is_int(parse_exact(hdr, len, &info), PROXY_BAD, "v2 command 15");
	len = v2(hdr, 0x21, 0x41, in4, sizeof(in4));
	is_int(parse_exact(hdr, len, &info), PROXY_BAD, "v2 family 4");
	is_int(parse_exact(hdr, 14, &info), PROXY_BAD, "v2 bad family refused at 14 octets");
	len = v2(hdr, 0x21, 0x13, in4, sizeof(in4));
	is_int(parse_exact(hdr, len, &info), PROXY_BAD, "v2 transport 3");
	len = v2(hdr, 0x21, 0x10, in4, sizeof(in4));
	is_int(parse_exact(hdr, len, &info), PROXY_BAD, "v2 AF_INET with UNSPEC transport");
	len = v2(hdr, 0x21, 0x01, in4, sizeof(in4));
	is_int(parse_exact(hdr, len, &info), PROXY_BAD, "v2 UNSPEC family with STREAM transport");

	len = v2(hdr, 0x21, 0x11, in4, 11);
	is_int(parse_exact(hdr, len, &info), PROXY_BAD, "v2 TCP4 body shorter than the address block");
	is_int(parse_exact(hdr, 16, &info), PROXY_BAD, "v2 short body refused at 16 octets");
	len = v2(hdr, 0x21, 0x21, in6, 35);
	is_int(parse_exact(hdr, len, &info), PROXY_BAD, "v2 TCP6 body shorter than the address block");

	memset(body, 0, sizeof(body));
	memcpy(body, in4, sizeof(in4));
	body[12] = 0x04;	/* one NOOP TLV filling the body up to the limit */
	body[13] = (unsigned char)((LIMIT_PROXY_V2_BODY - 15) >> 8);
	body[14] = (unsigned char)(LIMIT_PROXY_V2_BODY - 15);
	len = v2(big, 0x21, 0x11, body, LIMIT_PROXY_V2_BODY);
	is_int(parse_exact(big, len, &info), PROXY_OK, "v2 body of exactly LIMIT_PROXY_V2_BODY");
	is_int(info.consumed, 16 + LIMIT_PROXY_V2_BODY, "v2 longest header consumed");
	body[13] = (unsigned char)((LIMIT_PROXY_V2_BODY - 14) >> 8);
	body[14] = (unsigned char)(LIMIT_PROXY_V2_BODY - 14);
	len = v2(big, 0x21, 0x11, body, LIMIT_PROXY_V2_BODY + 1);
	is_int(parse_exact(big, len, &info), PROXY_BAD, "v2 body over LIMIT_PROXY_V2_BODY");
	is_int(parse_exact(big, 16, &info), PROXY_BAD, "v2 long body refused at 16 octets");
	len = v2(big, 0x20, 0x00, body, LIMIT_PROXY_V2_BODY + 1);
	is_int(parse_exact(big, 16, &info), PROXY_BAD, "v2 LOCAL with a body over the limit");
	big[14] = 0xFF; big[15] = 0xFF;
	is_int(parse_exact(big, 16, &info), PROXY_BAD, "v2 body length 65535");

	memcpy(hdr, sig, 12);
	hdr[5] = 0x0C;
	is_int(parse_exact(hdr, 12, &info), PROXY_BAD, "v2 bad signature octet");
	is_int(parse_exact(hdr, 5, &info), PROXY_NEED_MORE, "v2 good signature prefix");
	is_int(parse_exact(hdr, 6, &info), PROXY_BAD, "v2 bad signature refused at once");
	is_int(parse_exact("\r\n\r\nX", 5, &info), PROXY_BAD, "v2 NUL missing");
	ok(info.consumed == 0 && !info.local, "info is zeroed on PROXY_BAD");
}

static void
test_cidrs(void)
{
	struct proxy_net nets[8];
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr_un sun;
	int n;

	n = proxy_parse_cidrs("10.0.0.0/8,::1,192.0.2.7", nets, 8);
	is_int(n, 3, "CIDR list of three");
	is_int(nets[0].family, AF_INET, "10.0.0.0/8 is AF_INET");
	is_int(nets[0].prefix, 8, "10.0.0.0/8 prefix");
	is_int(nets[1].family, AF_INET6, "::1 is AF_INET6");
	is_int(nets[1].prefix, 128, "bare IPv6 is /128");
	is_int(nets[2].prefix, 32, "bare IPv4 is /32");
	is_int(proxy_parse_cidrs("0.0.0.0/0", nets, 8), 1, "0.0.0.0/0");
	is_int(proxy_parse_cidrs("::/0", nets, 8), 1, "::/0");
	is_int(proxy_parse_cidrs("2001:db8::/32,192.168.0.0/23", nets, 8), 2, "2001:db8::/32,192.168.0.0/23");
	n = proxy_parse_cidrs("::ffff:10.0.0.0/104", nets, 8);
	is_int(n, 1, "IPv4-mapped CIDR parses");
	is_int(nets[0].family, AF_INET, "IPv4-mapped CIDR is stored as IPv4");
	is_int(nets[0].prefix, 8, "IPv4-mapped /104 is IPv4 /8");
	is_int(proxy_parse_cidrs("::ffff:192.0.2.7", nets, 8), 1, "bare IPv4-mapped address");
	is_int(nets[0].family == AF_INET && nets[0].prefix == 32, 1, "bare IPv4-mapped is IPv4 /32");

	errno = 0;
	is_int(proxy_parse_cidrs("10.0.0.0/33", nets, 8), -1, "10.0.0.0/33 refused");
	is_int(errno, EINVAL, "syntax error sets EINVAL");
	is_int(proxy_parse_cidrs("::1/129", nets, 8), -1, "::1/129 refused");
	is_int(proxy_parse_cidrs("", nets, 8), -1, "empty list refused");
	is_int(proxy_parse_cidrs("1.2.3.4/", nets, 8), -1, "1.2.3.4/ refused");
	is_int(proxy_parse_cidrs(",,", nets, 8), -1, ",, refused");
	is_int(proxy_parse_cidrs("10.0.0.0/8,", nets, 8), -1, "trailing comma refused");
	is_int(proxy_parse_cidrs(",10.0.0.0/8", nets, 8), -1, "leading comma refused");
	is_int(proxy_parse_cidrs("10.0.0.0/8, ::1", nets, 8), -1, "space after comma refused");
	is_int(proxy_parse_cidrs("10.0.0.0/8\n", nets, 8), -1, "trailing newline refused");
	is_int(proxy_parse_cidrs("10.0.0.1/8", nets, 8), -1, "host bits beyond the prefix refused");
	is_int(proxy_parse_cidrs("10.0.0.0/08", nets, 8), -1, "prefix with a leading zero refused");
	is_int(proxy_parse_cidrs("10.0.0.0/-8", nets, 8), -1, "negative prefix refused");
	is_int(proxy_parse_cidrs("10.0.0.0/8/8", nets, 8), -1, "two slashes refused");
	is_int(proxy_parse_cidrs("1.2.3", nets, 8), -1, "1.2.3 refused");
	is_int(proxy_parse_cidrs("256.0.0.0", nets, 8), -1, "256.0.0.0 refused");
	is_int(proxy_parse_cidrs("010.0.0.0", nets, 8), -1, "010.0.0.0 refused");
	is_int(proxy_parse_cidrs("::1/", nets, 8), -1, "::1/ refused");
	is_int(proxy_parse_cidrs(":::1", nets, 8), -1, ":::1 refused");
	is_int(proxy_parse_cidrs("/8", nets, 8), -1, "/8 refused");
	is_int(proxy_parse_cidrs("0000:0000:0000:0000:0000:0000:0000:0000:0000:1", nets, 8), -1, "IPv6 text over 45 octets refused");
	is_int(proxy_parse_cidrs(NULL, nets, 8), -1, "NULL list refused");
	is_int(proxy_parse_cidrs("localhost", nets, 8), -1, "host name refused");
	errno = 0;
	is_int(proxy_parse_cidrs("1.1.1.1,2.2.2.2,3.3.3.3", nets, 2), -1, "more entries than room refused");
	is_int(errno, E2BIG, "too many entries sets E2BIG");

	n = proxy_parse_cidrs("10.0.0.0/8,::1,192.0.2.7,192.168.0.0/23,2001:db8::/32", nets, 8);
	is_int(n, 5, "matching list parses");
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	inet_pton(AF_INET, "10.1.2.3", &sin.sin_addr);
	ok(proxy_addr_trusted((struct sockaddr *)&sin, nets, n), "10.1.2.3 is in 10.0.0.0/8");
	inet_pton(AF_INET, "11.0.0.1", &sin.sin_addr);
	ok(!proxy_addr_trusted((struct sockaddr *)&sin, nets, n), "11.0.0.1 is not trusted");
	inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
	ok(proxy_addr_trusted((struct sockaddr *)&sin, nets, n), "192.0.2.7 matches its /32");
	inet_pton(AF_INET, "192.0.2.8", &sin.sin_addr);
	ok(!proxy_addr_trusted((struct sockaddr *)&sin, nets, n), "192.0.2.8 does not match 192.0.2.7");
	inet_pton(AF_INET, "192.168.1.255", &sin.sin_addr);
	ok(proxy_addr_trusted((struct sockaddr *)&sin, nets, n), "192.168.1.255 is in /23");
	inet_pton(AF_INET, "192.168.2.0", &sin.sin_addr);
	ok(!proxy_addr_trusted((struct sockaddr *)&sin, nets, n), "192.168.2.0 is outside /23");
	ok(!proxy_addr_trusted((struct sockaddr *)&sin, nets, 0), "an empty list trusts nobody");
	ok(!proxy_addr_trusted(NULL, nets, n), "no peer is not trusted");

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:10.1.2.3", &sin6.sin6_addr);
	ok(proxy_addr_trusted((struct sockaddr *)&sin6, nets, n), "IPv4-mapped ::ffff:10.1.2.3 matches 10.0.0.0/8");
	inet_pton(AF_INET6, "::ffff:11.0.0.1", &sin6.sin6_addr);
	ok(!proxy_addr_trusted((struct sockaddr *)&sin6, nets, n), "IPv4-mapped ::ffff:11.0.0.1 is not trusted");
	inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
	ok(proxy_addr_trusted((struct sockaddr *)&sin6, nets, n), "::1 matches ::1");
	inet_pton(AF_INET6, "::2", &sin6.sin6_addr);
	ok(!proxy_addr_trusted((struct sockaddr *)&sin6, nets, n), "::2 is not trusted");
	inet_pton(AF_INET6, "2001:db8:ffff::1", &sin6.sin6_addr);
	ok(proxy_addr_trusted((struct sockaddr *)&sin6, nets, n), "2001:db8:ffff::1 is in 2001:db8::/32");
	inet_pton(AF_INET6, "2001:db9::1", &sin6.sin6_addr);
	ok(!proxy_addr_trusted((struct sockaddr *)&sin6, nets, n), "2001:db9::1 is outside 2001:db8::/32");
	inet_pton(AF_INET6, "::a01:203", &sin6.sin6_addr);
	ok(!proxy_addr_trusted((struct sockaddr *)&sin6, nets, n), "IPv4-compatible ::10.1.2.3 is not IPv4");

	n = proxy_parse_cidrs("::ffff:10.0.0.0/104", nets, 8);
	inet_pton(AF_INET, "10.9.9.9", &sin.sin_addr);
	ok(proxy_addr_trusted((struct sockaddr *)&sin, nets, n), "an IPv4 peer matches an IPv4-mapped entry");
	inet_pton(AF_INET6, "::ffff:10.9.9.9", &sin6.sin6_addr);
	ok(proxy_addr_trusted((struct sockaddr *)&sin6, nets, n), "an IPv4-mapped peer matches an IPv4-mapped entry");
	n = proxy_parse_cidrs("::/0", nets, 8);
	ok(!proxy_addr_trusted((struct sockaddr *)&sin, nets, n), "::/0 does not trust IPv4 peers");
	ok(!proxy_addr_trusted((struct sockaddr *)&sin6, nets, n), "::/0 does not trust IPv4-mapped peers");
	n = proxy_parse_cidrs("0.0.0.0/0", nets, 8);
	ok(proxy_addr_trusted((struct sockaddr *)&sin6, nets, n), "0.0.0.0/0 trusts IPv4-mapped peers");
	inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
	ok(!proxy_addr_trusted((struct sockaddr *)&sin6, nets, n), "0.0.0.0/0 does not trust IPv6 peers");

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	ok(!proxy_addr_trusted((struct sockaddr *)&sun, nets, n), "a unix-socket peer is never trusted");
}

/* Writes data on one end of a socketpair and runs proxy_read_header on the other. */
static int
read_via_socketpair(const void *data, size_t len, bool close_after, int timeout_ms,
    struct proxy_info *info, char *rest, size_t restsize)
{
	int sv[2], rc, saved;
	ssize_t got;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	if (len > 0 && write(sv[1], data, len) != (ssize_t)len)
		abort();
	if (close_after)
		shutdown(sv[1], SHUT_WR);
	rc = proxy_read_header(sv[0], timeout_ms, info);
	saved = errno;
	rest[0] = '\0';
	if (rc == 0) {
		shutdown(sv[1], SHUT_WR);
		got = read(sv[0], rest, restsize - 1);
		rest[got > 0 ? got : 0] = '\0';
	}
	close(sv[0]);
	close(sv[1]);
	errno = saved;
	return rc;
}

static void
test_read_header(void)
{
	struct proxy_info info;
	unsigned char hdr[100];
	const unsigned char in4[12] = { 192, 0, 2, 7, 198, 51, 100, 1, 0xDC, 0x04, 0, 110 };
	const char *h;
	char buf[600], rest[600];
	size_t len;
	int sv[2], status;
	pid_t pid;

	h = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 110\r\nCAPA\r\n";
	is_int(read_via_socketpair(h, strlen(h), false, 1000, &info, rest, sizeof(rest)), 0,
	    "read_header v1 TCP4");
	is_int(info.src.ss_family, AF_INET, "read_header v1 gives AF_INET");
	is_int(info.consumed, 45, "read_header v1 consumed");
	is_str(rest, "CAPA\r\n", "read_header v1 leaves CAPA unread");

	h = "PROXY UNKNOWN\r\nCAPA\r\n";
	is_int(read_via_socketpair(h, strlen(h), false, 1000, &info, rest, sizeof(rest)), 0,
	    "read_header shortest v1 (15 octets)");
	ok(info.local, "read_header v1 UNKNOWN is local");
	is_str(rest, "CAPA\r\n", "read_header shortest v1 leaves CAPA unread");

	len = v2(hdr, 0x21, 0x11, in4, sizeof(in4));
	memcpy(buf, hdr, len);
	memcpy(buf + len, "CAPA\r\n", 6);
	is_int(read_via_socketpair(buf, len + 6, false, 1000, &info, rest, sizeof(rest)), 0,
	    "read_header v2 TCP4");
	is_int(info.consumed, 28, "read_header v2 consumed");
	is_str(rest, "CAPA\r\n", "read_header v2 leaves CAPA unread");

	len = v2(hdr, 0x20, 0x00, NULL, 0);
	memcpy(buf, hdr, len);
	memcpy(buf + len, "CAPA\r\n", 6);
	is_int(read_via_socketpair(buf, len + 6, false, 1000, &info, rest, sizeof(rest)), 0,
	    "read_header v2 LOCAL (16 octets)");
	is_str(rest, "CAPA\r\n", "read_header v2 LOCAL leaves CAPA unread");

	errno = 0;
	is_int(read_via_socketpair("CAPA\r\n", 6, false, 1000, &info, rest, sizeof(rest)), -1,
	    "read_header refuses a POP3 command");
	is_int(errno, EPROTO, "read_header malformed is EPROTO");
	errno = 0;
	is_int(read_via_socketpair("PROXY TCP4 1.2.3.4 ", 19, true, 1000, &info, rest, sizeof(rest)), -1,
	    "read_header end of stream inside the header");
	is_int(errno, EPROTO, "read_header truncated is EPROTO");
	errno = 0;
	is_int(read_via_socketpair("PROXY TCP4 1.2.3.4 ", 19, false, 50, &info, rest, sizeof(rest)), -1,
	    "read_header times out on a partial header");
	is_int(errno, ETIMEDOUT, "read_header timeout is ETIMEDOUT");
	errno = 0;
	is_int(read_via_socketpair("", 0, false, 50, &info, rest, sizeof(rest)), -1,
	    "read_header times out on silence");
	is_int(errno, ETIMEDOUT, "read_header silence is ETIMEDOUT");

	/* A header that arrives one octet at a time, then the command. */
	h = "PROXY TCP6 2001:db8::7 2001:db8::1 56324 110\r\nCAPA\r\n";
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	fflush(stdout);
	pid = fork();
	if (pid == -1)
		abort();
	if (pid == 0) {
		size_t i;

		close(sv[0]);
		for (i = 0; h[i] != '\0'; i++) {
			if (write(sv[1], h + i, 1) != 1)
				_exit(1);
			usleep(500);
		}
		_exit(0);
	}
	close(sv[1]);
	is_int(proxy_read_header(sv[0], 5000, &info), 0, "read_header v1 sent octet by octet");
	is_int(info.src.ss_family, AF_INET6, "read_header dribbled v1 gives AF_INET6");
	waitpid(pid, &status, 0);
	len = 0;
	for (;;) {
		ssize_t got = read(sv[0], rest + len, sizeof(rest) - 1 - len);
		if (got <= 0)
			break;
		len += (size_t)got;
	}
	rest[len] = '\0';
	is_str(rest, "CAPA\r\n", "read_header dribbled v1 leaves CAPA unread");
	close(sv[0]);
}

int
main(void)
{
	test_v1();
	test_v2();
	test_cidrs();
	test_read_header();
	return done_testing();
}
