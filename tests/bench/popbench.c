/* Benchmark client for tests/bench/run (not part of the daemon, not a test): drives POP3
 * sessions over pipes (a spawned pre-authenticated server) or TCP, and reports wall time,
 * sessions per second and the CPU the server side used.
 *
 *   popbench pipe [-n N] [-c C] [-i FILE] [-P PID] [-r] -- CMD [ARG...]
 *       N sessions (default 1), C at a time (default 1): each spawns CMD with its stdin
 *       and stdout on pipes, writes FILE (the whole script, pipelined), reads until EOF.
 *       Server CPU is the CPU of the spawned processes (RUSAGE_CHILDREN of the workers).
 *       -r LINES: once LINES answer lines are in (greeting included, if the server sends
 *       one) after the script's first line was sent, print the server's VmRSS and VmHWM
 *       (kB) from /proc and send the rest.
 *       "{w}" in CMD's arguments and in environment values becomes the worker's number
 *       (0..C-1): each concurrent client can have its own mailbox.
 *       -x: do not check the answer (for floors: pamtester, a plain exec).
 *   popbench tcp -H HOST -p PORT [-n N] [-c C] [-i FILE] [-g] [-P PID]
 *       The same over TCP connections; -g waits for the greeting before sending the
 *       script (login servers that drop early input).  Server CPU comes from -P: the CPU
 *       of the process tree under PID (utime+stime+cutime+cstime of every process in it),
 *       sampled before and after.
 *
 *   popbench scan DIR...
 *       The readdir+stat floor: reads each directory and stats every entry in it, and
 *       prints "scan entries=N wall=SECONDS cpu=SECONDS".
 *
 * Every session must end with the server closing the connection.  Output, one line:
 *   sessions=N errors=E wall=SECONDS rate=SESSIONS/S server_cpu_ms=MS/SESSION
 *   client_cpu_ms=MS/SESSION bytes=OCTETS/SESSION min=S median=S max=S
 * where min/median/max are per-session wall times.  A session counts as an error when
 * its answer holds "-ERR" at the start of a line or does not end in "+OK ...\r\n" (the
 * QUIT answer) followed by EOF.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int nsess = 1, conc = 1, want_rss, wait_greet;	/* want_rss: answer lines to wait for */
static int no_check;		/* -x: any answer will do (floors: pamtester, a plain exec) */
static char **worker_env;	/* environ with {w} replaced by the worker's number */
static const char *host = "127.0.0.1", *port;
static char *script;
static size_t script_len;
static char **cmd;
static pid_t tree_root;

struct result {
	double		wall;		/* this session */
	uint64_t	bytes;
	int		error;
};

struct msg {
	int		k;		/* session index, or -1: the worker's CPU totals */
	struct result	r;
	double		cpu[2];		/* server, client */
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what)
{
	perror(what);
	exit(2);
}

/* Clock ticks of CPU used by the process tree under root, reaped children included. */
static long long
tree_cpu(pid_t root)
{
	static pid_t pids[65536], ppids[65536];
	static long long cpu[65536];
	int n = 0, i, changed;
	bool in[65536];
	long long sum = 0;
	DIR *d = opendir("/proc");
	struct dirent *de;

	if (d == NULL)
		die("/proc");
	while ((de = readdir(d)) != NULL && n < 65536) {
		char path[300], buf[1024], *p;
		unsigned long ut, st;
		long cut, cst;
		int ppid, fd;
		ssize_t r;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		fd = open(path, O_RDONLY);
		if (fd == -1)
			continue;
		r = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (r <= 0)
			continue;
		buf[r] = '\0';
		p = strrchr(buf, ')');
		if (p == NULL)
			continue;
		/* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime */
		if (sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %ld %ld",
		    &ppid, &ut, &st, &cut, &cst) != 5)
			continue;
		pids[n] = atoi(de->d_name);
		ppids[n] = ppid;
		cpu[n] = (long long)ut + (long long)st + cut + cst;
		n++;
	}
	closedir(d);
	for (i = 0; i < n; i++)
		in[i] = pids[i] == root;
	do {
		changed = 0;
		for (i = 0; i < n; i++) {
			if (in[i])
				continue;
			for (int j = 0; j < n; j++)
				if (in[j] && pids[j] == ppids[i]) {
					in[i] = true;
					changed = 1;
					break;
				}
		}
	} while (changed);
	for (i = 0; i < n; i++)
		if (in[i])
			sum += cpu[i];
	return sum;
}

static void
rss_of(pid_t pid)
{
	char path[64], buf[4096], *p;
	long rss = -1, hwm = -1;
	ssize_t r;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	fd = open(path, O_RDONLY);
	if (fd == -1)
		die(path);
	r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (r <= 0)
		die(path);
	buf[r] = '\0';
	if ((p = strstr(buf, "VmRSS:")) != NULL)
		rss = strtol(p + 6, NULL, 10);
	if ((p = strstr(buf, "VmHWM:")) != NULL)
		hwm = strtol(p + 6, NULL, 10);
	printf("rss_kb=%ld hwm_kb=%ld\n", rss, hwm);
	fflush(stdout);
}

/* The answer is right when no line starts with -ERR and it ends with a +OK line. */
static int
check_answer(const char *buf, size_t len)
{
	size_t i, last = 0;

	if (len < 5 || buf[len - 1] != '\n')
		return 1;
	for (i = 0; i + 1 < len; i++)
		if (buf[i] == '\n')
			last = i + 1;
	if (strncmp(buf + last, "+OK", 3) != 0)
		return 1;
	if (strncmp(buf, "-ERR", 4) == 0)
		return 1;
	return memmem(buf, len, "\n-ERR", 5) != NULL;
}

/* Reads until EOF; keeps the first 64 KiB and the last line for the check. */
struct sink {
	char		*head;
	size_t		 head_len;
	char		 tail[512];
	size_t		 tail_len;
	uint64_t	 total;
	bool		 err;		/* "\n-ERR" seen anywhere */
	char		 prev[4];
};

#define HEAD_MAX (64 * 1024)

static void
sink_add(struct sink *s, const char *p, size_t n)
{
	char joined[8 + 5];
	size_t k;

	if (s->head == NULL)
		s->head = malloc(HEAD_MAX);
	k = HEAD_MAX - s->head_len < n ? HEAD_MAX - s->head_len : n;
	memcpy(s->head + s->head_len, p, k);
	s->head_len += k;
	/* "\n-ERR" across the boundary, then inside. */
	memcpy(joined, s->prev, 4);
	memcpy(joined + 4, p, n < 4 ? n : 4);
	if (memmem(joined, 4 + (n < 4 ? n : 4), "\n-ERR", 5) || memmem(p, n, "\n-ERR", 5))
		s->err = true;
	if (n >= 4)
		memcpy(s->prev, p + n - 4, 4);
	else {
		memmove(s->prev, s->prev + n, 4 - n);
		memcpy(s->prev + 4 - n, p, n);
	}
	if (n >= sizeof(s->tail)) {
		memcpy(s->tail, p + n - sizeof(s->tail), sizeof(s->tail));
		s->tail_len = sizeof(s->tail);
	} else {
		size_t keep = s->tail_len + n > sizeof(s->tail) ? sizeof(s->tail) - n : s->tail_len;

		memmove(s->tail, s->tail + s->tail_len - keep, keep);
		memcpy(s->tail + keep, p, n);
		s->tail_len = keep + n;
	}
	s->total += n;
}

static int
sink_check(struct sink *s)
{
	int bad = s->err || s->head_len < 4 || strncmp(s->head, "-ERR", 4) == 0 ||
	    check_answer(s->tail, s->tail_len);

	if (bad && getenv("POPBENCH_DEBUG"))
		fprintf(stderr, "popbench: bad answer: head <%.*s> tail <%.*s>\n",
		    (int)(s->head_len < 300 ? s->head_len : 300), s->head,
		    (int)s->tail_len, s->tail);
	free(s->head);
	return bad;
}

static char rbuf[1 << 20];

static struct result
one_pipe(void)
{
	int in[2], out[2];
	posix_spawn_file_actions_t fa;
	struct result res = { 0, 0, 0 };
	struct sink sk;
	double t0 = now();
	pid_t pid;
	ssize_t n;
	int st;
	bool rss_done = !want_rss;
	size_t lines = 0;

	memset(&sk, 0, sizeof(sk));
	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(out, O_CLOEXEC) == -1)
		die("pipe");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	if (posix_spawn(&pid, cmd[0], &fa, NULL, cmd, worker_env) != 0)
		die(cmd[0]);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(out[1]);
	if (want_rss) {
		/* Send the first line only; the rest once RSS is read. */
		char *nl = memchr(script, '\n', script_len);
		size_t first = nl ? (size_t)(nl - script) + 1 : script_len;

		if (write(in[1], script, first) != (ssize_t)first)
			die("write");
		while (!rss_done && (n = read(out[0], rbuf, sizeof(rbuf))) > 0) {
			sink_add(&sk, rbuf, (size_t)n);
			for (ssize_t i = 0; i < n; i++)
				lines += rbuf[i] == '\n';
			if (lines >= (size_t)want_rss) {
				rss_of(pid);
				rss_done = true;
			}
		}
		if (write(in[1], script + first, script_len - first) != (ssize_t)(script_len - first))
			die("write");
	} else if (write(in[1], script, script_len) != (ssize_t)script_len && !no_check) {
		die("write");	/* a floor command may exit without reading */
	}
	close(in[1]);
	while ((n = read(out[0], rbuf, sizeof(rbuf))) > 0)
		sink_add(&sk, rbuf, (size_t)n);
	close(out[0]);
	if (waitpid(pid, &st, 0) == -1)
		die("waitpid");
	res.wall = now() - t0;
	res.bytes = sk.total;
	res.error = no_check ? (free(sk.head), 0) : sink_check(&sk) || !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	return res;
}

static struct result
one_tcp(void)
{
	struct addrinfo hints, *ai;
	struct result res = { 0, 0, 0 };
	struct sink sk;
	double t0 = now();
	int fd, one = 1;
	ssize_t n;

	memset(&sk, 0, sizeof(sk));
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &ai) != 0)
		die("getaddrinfo");
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1 || connect(fd, ai->ai_addr, ai->ai_addrlen) == -1)
		die("connect");
	freeaddrinfo(ai);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (wait_greet) {
		/* One line: the greeting. */
		while (memchr(sk.tail, '\n', sk.tail_len) == NULL &&
		    (n = read(fd, rbuf, sizeof(rbuf))) > 0)
			sink_add(&sk, rbuf, (size_t)n);
	}
	if (script_len && write(fd, script, script_len) != (ssize_t)script_len)
		die("write");
	while ((n = read(fd, rbuf, sizeof(rbuf))) > 0)
		sink_add(&sk, rbuf, (size_t)n);
	close(fd);
	res.wall = now() - t0;
	res.bytes = sk.total;
	res.error = script_len ? sink_check(&sk) : (free(sk.head), 0);
	return res;
}

static int
scan(int n, char **dirs)
{
	struct rusage ru;
	double t0 = now(), cpu;
	long entries = 0;
	int i;

	for (i = 0; i < n; i++) {
		DIR *d = opendir(dirs[i]);
		struct dirent *de;
		struct stat st;

		if (d == NULL)
			die(dirs[i]);
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
				entries++;
		}
		closedir(d);
	}
	getrusage(RUSAGE_SELF, &ru);
	cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	printf("scan entries=%ld wall=%.4f cpu=%.4f\n", entries, now() - t0, cpu);
	return 0;
}

/* s with every "{w}" replaced by the worker number; s itself when it has none. */
static char *
subst_w(char *s, int w)
{
	char *p, *out, num[16];
	size_t n = 0;
	int k = snprintf(num, sizeof(num), "%d", w);

	if (strstr(s, "{w}") == NULL)
		return s;
	out = malloc(strlen(s) * 4 + 16);
	if (out == NULL)
		die("malloc");
	for (p = s; *p; ) {
		if (strncmp(p, "{w}", 3) == 0) {
			memcpy(out + n, num, (size_t)k);
			n += (size_t)k;
			p += 3;
		} else
			out[n++] = *p++;
	}
	out[n] = '\0';
	return out;
}

static void
per_worker(int w)
{
	size_t n = 0, i;

	for (i = 0; cmd[i]; i++)
		cmd[i] = subst_w(cmd[i], w);
	while (environ[n])
		n++;
	worker_env = calloc(n + 1, sizeof(*worker_env));
	if (worker_env == NULL)
		die("calloc");
	for (i = 0; i < n; i++)
		worker_env[i] = subst_w(environ[i], w);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	const char *mode, *file = NULL;
	int ch, tcp, w, p[2];
	struct result *all;
	long long cpu0 = 0, cpu1 = 0, ticks = sysconf(_SC_CLK_TCK);
	double t0, t1, *walls, server_cpu = 0, client_cpu = 0;
	uint64_t bytes = 0;
	int errors = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: popbench pipe|tcp|scan [options] (see the source)\n");
		return 2;
	}
	mode = argv[1];
	if (strcmp(mode, "scan") == 0)
		return scan(argc - 2, argv + 2);
	tcp = strcmp(mode, "tcp") == 0;
	if (!tcp && strcmp(mode, "pipe") != 0) {
		fprintf(stderr, "popbench: mode must be pipe or tcp\n");
		return 2;
	}
	optind = 2;
	while ((ch = getopt(argc, argv, "+n:c:i:H:p:P:gr:x")) != -1) {
		switch (ch) {
		case 'n': nsess = atoi(optarg); break;
		case 'c': conc = atoi(optarg); break;
		case 'i': file = optarg; break;
		case 'H': host = optarg; break;
		case 'p': port = optarg; break;
		case 'P': tree_root = atoi(optarg); break;
		case 'g': wait_greet = 1; break;
		case 'r': want_rss = atoi(optarg); break;
		case 'x': no_check = 1; break;
		default: return 2;
		}
	}
	if (nsess < 1 || conc < 1 || (tcp && port == NULL) || (!tcp && optind >= argc)) {
		fprintf(stderr, "popbench: bad arguments\n");
		return 2;
	}
	cmd = argv + optind;
	if (conc > nsess)
		conc = nsess;
	if (file) {
		FILE *f = fopen(file, "rb");

		if (f == NULL)
			die(file);
		script = malloc(1 << 16);
		script_len = fread(script, 1, 1 << 16, f);
		fclose(f);
	} else {
		script = strdup("QUIT\r\n");
		script_len = 6;
	}
	signal(SIGPIPE, SIG_IGN);
	all = calloc((size_t)nsess, sizeof(*all));
	walls = calloc((size_t)nsess, sizeof(*walls));
	if (pipe(p) == -1)
		die("pipe");
	if (tree_root)
		cpu0 = tree_cpu(tree_root);
	t0 = now();
	/* C workers, each doing its share one after the other; results come back on a pipe. */
	for (w = 0; w < conc; w++) {
		pid_t pid = fork();

		if (pid == -1)
			die("fork");
		if (pid == 0) {
			struct rusage ru;
			double cpu[2];
			int k;

			close(p[0]);
			per_worker(w);
			for (k = w; k < nsess; k += conc) {
				struct msg m;

				m.k = k;
				m.r = tcp ? one_tcp() : one_pipe();
				/* One write: atomic on a pipe, never mixed with another worker's. */
				if (write(p[1], &m, sizeof(m)) != sizeof(m))
					_exit(3);
			}
			getrusage(RUSAGE_CHILDREN, &ru);
			cpu[0] = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
			    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
			getrusage(RUSAGE_SELF, &ru);
			cpu[1] = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
			    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
			{
				struct msg m;

				memset(&m, 0, sizeof(m));
				m.k = -1;
				m.cpu[0] = cpu[0];
				m.cpu[1] = cpu[1];
				if (write(p[1], &m, sizeof(m)) != sizeof(m))
					_exit(3);
			}
			_exit(0);
		}
	}
	close(p[1]);
	for (;;) {
		struct msg m;

		if (read(p[0], &m, sizeof(m)) != sizeof(m))
			break;
		if (m.k == -1) {
			server_cpu += m.cpu[0];
			client_cpu += m.cpu[1];
			continue;
		}
		all[m.k] = m.r;
	}
	while (wait(NULL) > 0)
		;
	t1 = now();
	if (tree_root) {
		cpu1 = tree_cpu(tree_root);
		server_cpu = (double)(cpu1 - cpu0) / (double)ticks;
	}
	for (w = 0; w < nsess; w++) {
		walls[w] = all[w].wall;
		bytes += all[w].bytes;
		errors += all[w].error;
	}
	qsort(walls, (size_t)nsess, sizeof(*walls), cmp_double);
	printf("sessions=%d errors=%d wall=%.4f rate=%.1f server_cpu_ms=%.3f client_cpu_ms=%.3f "
	    "bytes=%llu min=%.4f median=%.4f max=%.4f\n",
	    nsess, errors, t1 - t0, nsess / (t1 - t0), server_cpu * 1000 / nsess,
	    client_cpu * 1000 / nsess, (unsigned long long)(bytes / (uint64_t)nsess),
	    walls[0], walls[nsess / 2], walls[nsess - 1]);
	return errors ? 1 : 0;
}
