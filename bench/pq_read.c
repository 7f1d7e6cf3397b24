/* The physical floor for a no-op `up --source DIR`: what any tool must do at least. While the
 * connection is made, list DIR and read and hash every *.up.sql file on as many threads as
 * there are cores (no checks, no allocation), then one round trip, exit.
 * Usage: pq_read CONNINFO DIR */
#define _GNU_SOURCE
#define OPENSSL_SUPPRESS_DEPRECATED
#include <dirent.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { kMaxFiles = 20000, kMaxName = 256, kMaxThreads = 8 };
static char names[kMaxFiles][kMaxName];
static int count;
static int dir_fd;
static atomic_int next_file;

static void *read_files(void *unused) {
    (void)unused;
    static _Thread_local char buf[1 << 16];
    unsigned char md[SHA256_DIGEST_LENGTH];
    struct stat st;
    for (;;) {
        int i = atomic_fetch_add(&next_file, 1);
        if (i >= count) return NULL;
        int fd = openat(dir_fd, names[i], O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
        if (fd < 0 || fstat(fd, &st) != 0) { perror(names[i]); _exit(1); }
        ssize_t n = read(fd, buf, st.st_size < (off_t)sizeof buf ? (size_t)st.st_size : sizeof buf);
        close(fd);
        SHA256((const unsigned char *)buf, n > 0 ? (size_t)n : 0, md);
    }
}

static void *load(void *dir) {
    DIR *d = opendir(dir);
    if (d == NULL) { perror(dir); _exit(1); }
    const struct dirent *e;
    while ((e = readdir(d)) != NULL && count < kMaxFiles) {
        size_t len = strlen(e->d_name);
        if (len > 7 && len < kMaxName && strcmp(e->d_name + len - 7, ".up.sql") == 0)
            memcpy(names[count++], e->d_name, len + 1);
    }
    dir_fd = dirfd(d);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = cores < 1 ? 1 : cores > kMaxThreads ? kMaxThreads : (int)cores;
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
