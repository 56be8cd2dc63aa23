/* libFuzzer target for the PROXY protocol parser and the --proxy-from CIDR list parser; runs unprivileged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3d-limits.h"
#include "proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_info info, again;
	struct proxy_net nets[16];
	enum proxy_result r;
	char *spec;
	int n;

	r = proxy_parse(data, size, &info);
	if (r == PROXY_OK) {
		/* The header is self-delimiting: the same bytes alone parse the
		 * same way, and one octet less is only a prefix. */
		if (info.consumed == 0 || info.consumed > size)
			abort();
		if (proxy_parse(data, info.consumed, &again) != PROXY_OK ||
		    again.consumed != info.consumed || again.local != info.local ||
		    again.srclen != info.srclen ||
		    memcmp(&again.src, &info.src, sizeof(info.src)) != 0)
			abort();
		if (proxy_parse(data, info.consumed - 1, &again) != PROXY_NEED_MORE)
			abort();
		if (!info.local && info.src.ss_family != AF_INET &&
		    info.src.ss_family != AF_INET6)
			abort();
	} else if (r == PROXY_NEED_MORE) {
		/* Nothing longer than a maximal header can still be incomplete. */
		if (size >= 16 + LIMIT_PROXY_V2_BODY)
			abort();
	}

	spec = malloc(size + 1);
	if (spec == NULL)
		return 0;
	memcpy(spec, data, size);
	spec[size] = '\0';
	n = proxy_parse_cidrs(spec, nets, 16);
	if (n == 0 || n > 16)
		abort();
	if (n > 0 && r == PROXY_OK && !info.local)
		(void)proxy_addr_trusted((const struct sockaddr *)&info.src, nets, n);
	free(spec);
	return 0;
}
