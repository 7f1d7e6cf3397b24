/* The physical floor for a no-op `up --source DIR`: what any tool must do at least. While the
 * connection is made, list DIR and read and hash every *.up.sql file on as many threads as
 * there are cores, at most 4 as stepwise (no checks), then one round trip, exit.
 * Usage: pq_read CONNINFO DIR */
#define _GNU_SOURCE
#define OPENSSL_SUPPRESS_DEPRECATED
#include <dirent.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { kMaxFiles = 100000, kMaxName = 256, kMaxThreads = 4 };  /* stepwise: at most 4 */
static char names[kMaxFiles][kMaxName];
static int count;
static int dir_fd;
static atomic_int next_file;

static void *read_files(void *unused) {
    (void)unused;
    unsigned char md[SHA256_DIGEST_LENGTH];
    struct stat st;
    for (;;) {
        int i = atomic_fetch_add(&next_file, 1);
        if (i >= count) return NULL;
        int fd = openat(dir_fd, names[i], O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
        if (fd < 0 || fstat(fd, &st) != 0) { perror(names[i]); _exit(1); }
        size_t size = (size_t)st.st_size, got = 0;
        unsigned char *buf = malloc(size > 0 ? size : 1);
        if (buf == NULL) { perror("malloc"); _exit(1); }
        while (got < size) {
            ssize_t n = read(fd, buf + got, size - got);
            if (n < 0) { perror(names[i]); _exit(1); }
            if (n == 0) break;
            got += (size_t)n;
        }
        close(fd);
        SHA256(buf, got, md);
        free(buf);
    }
}

static void *load(void *dir) {
    DIR *d = opendir(dir);
    if (d == NULL) { perror(dir); _exit(1); }
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len <= 7 || strcmp(e->d_name + len - 7, ".up.sql") != 0) continue;
        if (count == kMaxFiles || len >= kMaxName) { fprintf(stderr, "pq_read: too many files or too long a name\n"); _exit(1); }
        memcpy(names[count++], e->d_name, len + 1);
    }
    dir_fd = dirfd(d);
    cpu_set_t set;
    int cores = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    int threads = cores < 1 ? 1 : cores > kMaxThreads ? kMaxThreads : cores;
    pthread_t helper[kMaxThreads];
    for (int t = 1; t < threads; ++t) pthread_create(&helper[t], NULL, read_files, NULL);
    read_files(NULL);
    for (int t = 1; t < threads; ++t) pthread_join(helper[t], NULL);
    closedir(d);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: pq_read CONNINFO DIR\n"); return 2; }
    pthread_t loader;
    pthread_create(&loader, NULL, load, argv[2]);
    PGconn *c = PQconnectdb(argv[1]);
    pthread_join(loader, NULL);
    if (PQstatus(c) != CONNECTION_OK) { fprintf(stderr, "%s", PQerrorMessage(c)); return 1; }
    PGresult *r = PQexec(c, "SELECT 1");
    PQclear(r); PQfinish(c); return 0;
}
