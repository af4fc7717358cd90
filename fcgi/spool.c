/* spool.c: a ring of BSON records in a shared file mapping (spool.h). The kernel keeps a
 * MAP_SHARED page's bytes when the process dies, so what a record's put wrote is there for
 * the next process; head moves only after the bytes are in place, so a half-written record is
 * never seen. Positions only grow; a record never straddles the end (a zero length word says
 * "continue at the start"). */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define SPOOL_MAGIC  0x4c4f4f5053504c31ULL /* "LOOPSPL1" */
#define SPOOL_HEADER 64
#define ALIGN8(n)    (((n) + 7) & ~(uint64_t)7)

struct spool_header {
    uint64_t magic;
    uint64_t size; /* of the data area */
    _Atomic uint64_t head, tail;
};

struct spool {
    struct spool_header *h;
    uint8_t *data;
    size_t map_len;
    int fd; /* -1: in memory only */
    char path[4096];
};

_Static_assert(sizeof(struct spool_header) <= SPOOL_HEADER, "header fits");

static struct spool *spool_map(int fd, const char *path, size_t bytes, bool keep)
{
    struct spool *s = calloc(1, sizeof *s);
    void *p;

    if (s == NULL)
        return NULL;
    s->map_len = SPOOL_HEADER + bytes;
    p = mmap(NULL, s->map_len, PROT_READ | PROT_WRITE,
             fd >= 0 ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS, fd, 0);
    if (p == MAP_FAILED) {
        free(s);
        return NULL;
    }
    s->h = p;
    s->data = (uint8_t *)p + SPOOL_HEADER;
    s->fd = fd;
    snprintf(s->path, sizeof s->path, "%s", path ? path : "");
    /* A valid ring of the same size is kept (a dead process's records); anything else is new. */
    if (!keep || s->h->magic != SPOOL_MAGIC || s->h->size != bytes ||
        atomic_load(&s->h->tail) > atomic_load(&s->h->head) ||
        atomic_load(&s->h->head) - atomic_load(&s->h->tail) > bytes) {
        s->h->size = bytes;
        atomic_store(&s->h->head, 0);
        atomic_store(&s->h->tail, 0);
        s->h->magic = SPOOL_MAGIC;
    }
    return s;
}

struct spool *spool_open(const char *dir, size_t bytes, char *err)
{
    char path[4096];
    int fd = -1;
    struct stat st;
    struct spool *s;

    err[0] = '\0';
    bytes = (size_t)ALIGN8(bytes);
    if (dir) {
        snprintf(path, sizeof path, "%s/audit-%ld.spool", dir, (long)getpid());
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0 || fstat(fd, &st) != 0 ||
            ((size_t)st.st_size != SPOOL_HEADER + bytes &&
             ftruncate(fd, (off_t)(SPOOL_HEADER + bytes)) != 0)) {
            snprintf(err, 256, "%.200s: %s", path, strerror(errno));
            if (fd >= 0)
                close(fd);
            fd = -1;
        }
    }
    s = spool_map(fd, fd >= 0 ? path : NULL, bytes, fd >= 0);
    if (s == NULL && fd >= 0) {
        snprintf(err, 256, "%.200s: cannot map it", path);
        close(fd);
        unlink(path);
        s = spool_map(-1, NULL, bytes, false);
    }
    return s;
}

void spool_close(struct spool *s)
{
    if (s == NULL)
        return;
    if (s->fd >= 0 && spool_empty(s))
        unlink(s->path); /* before the lock goes: no one adopts an empty file in between */
    munmap(s->h, s->map_len);
    if (s->fd >= 0)
        close(s->fd);
    free(s);
}

bool spool_durable(const struct spool *s)
{
    return s->fd >= 0;
}

bool spool_empty(const struct spool *s)
{
    return atomic_load(&s->h->head) == atomic_load(&s->h->tail);
}

size_t spool_used(const struct spool *s)
{
    return (size_t)(atomic_load(&s->h->head) - atomic_load(&s->h->tail));
}

size_t spool_size(const struct spool *s)
{
    return (size_t)s->h->size;
}

bool spool_fits(const struct spool *s, const bson_t *doc)
{
    return ALIGN8(doc->len) <= s->h->size / 4;
}

bool spool_put(struct spool *s, const bson_t *doc)
{
    uint64_t size = s->h->size, head = atomic_load(&s->h->head), tail = atomic_load(&s->h->tail);
    uint64_t need = ALIGN8(doc->len), off = head % size, skip = 0;

    if (!spool_fits(s, doc))
        return false;
    if (off + need > size)
        skip = size - off; /* the rest of the ring: a zero length word says so */
    if (head + skip + need - tail > size)
        return false;
    if (skip) {
        memset(s->data + off, 0, 4);
        off = 0;
    }
    memcpy(s->data + off, bson_get_data(doc), doc->len);
    atomic_store_explicit(&s->h->head, head + skip + need, memory_order_release);
    return true;
}

size_t spool_peek(struct spool *s, bson_t *docs, size_t max, uint64_t *end)
{
    uint64_t size = s->h->size, pos = atomic_load(&s->h->tail);
    uint64_t head = atomic_load_explicit(&s->h->head, memory_order_acquire);
    size_t n = 0;

    while (n < max && pos < head) {
        uint64_t off = pos % size;
        uint32_t len;

        memcpy(&len, s->data + off, 4);
        len = BSON_UINT32_FROM_LE(len);
        if (len == 0) {
            pos += size - off;
            continue;
        }
        /* A length that cannot be a record here (a file damaged outside this program): what is
         * left is unreadable; drop it rather than read past the ring. */
        if (len < 5 || off + len > size || pos + ALIGN8(len) > head ||
            !bson_init_static(&docs[n], s->data + off, len)) {
            log_error("audit spool %s: damaged at %llu; %llu bytes dropped", s->path,
                      (unsigned long long)pos, (unsigned long long)(head - pos));
            pos = head;
            break;
        }
        pos += ALIGN8(len);
        n++;
    }
    *end = pos;
    return n;
}

void spool_commit(struct spool *s, uint64_t end)
{
    atomic_store_explicit(&s->h->tail, end, memory_order_release);
}

struct spool *spool_adopt(const char *dir, const struct spool *own)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    struct spool *s = NULL;

    if (d == NULL)
        return NULL;
    while (s == NULL && (e = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;
        size_t len = strlen(e->d_name);
        int fd;

        if (strncmp(e->d_name, "audit-", 6) != 0 || len < 7 ||
            strcmp(e->d_name + len - 6, ".spool") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (own && strcmp(path, own->path) == 0)
            continue;
        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            continue;
        /* Locked: its process runs. Unlinked meanwhile: another process adopted it first. */
        if (flock(fd, LOCK_EX | LOCK_NB) != 0 || fstat(fd, &st) != 0 || st.st_nlink == 0 ||
            st.st_size <= SPOOL_HEADER || (st.st_size - SPOOL_HEADER) % 8 != 0) {
            close(fd);
            continue;
        }
        s = spool_map(fd, path, (size_t)st.st_size - SPOOL_HEADER, true);
        if (s == NULL)
            close(fd);
    }
    closedir(d);
    return s;
}
