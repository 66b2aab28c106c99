/* replay.c — runs a fuzz target without libFuzzer: every file named on the
 * command line, and every regular file of every directory named there (in
 * name order, so runs are repeatable), is passed once to
 * LLVMFuzzerTestOneInput.  A property violation aborts, which fails the
 * meson test; an empty corpus fails too, so a moved directory is noticed.
 * (dav1d's tools/dav1d_fuzzer replay driver does the same.) */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            break;
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        unsigned char *b = realloc(buf, cap * 2);
        if (!b) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = b;
        cap *= 2;
    }
    int bad = ferror(f) || !buf;
    fclose(f);
    if (bad) {
        fprintf(stderr, "%s: cannot read\n", path);
        free(buf);
        return -1;
    }
    /* A copy of exactly n bytes, so a read past the end is caught. */
    unsigned char *in = malloc(n ? n : 1);
    if (!in) {
        free(buf);
        return -1;
    }
    memcpy(in, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(in, n);
    free(in);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static long run_dir(const char *dir)
{
    struct dirent **ents;
    int m = scandir(dir, &ents, NULL, by_name);
    if (m < 0) {
        perror(dir);
        return -1;
    }
    long done = 0;
    for (int i = 0; i < m; i++) {
        char path[4096];
        struct stat st;
        int len = snprintf(path, sizeof path, "%s/%s", dir, ents[i]->d_name);
        if (len > 0 && (size_t)len < sizeof path && ents[i]->d_name[0] != '.' &&
            stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(path) != 0)
                done = -1;
            else if (done >= 0)
                done++;
        }
        free(ents[i]);
    }
    free(ents);
    return done;
}

int main(int argc, char **argv)
{
    long total = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 1;
        }
        long k = S_ISDIR(st.st_mode) ? run_dir(argv[i])
                                     : (run_file(argv[i]) == 0 ? 1 : -1);
        if (k < 0)
            return 1;
        total += k;
    }
    printf("replayed %ld inputs\n", total);
    return total > 0 ? 0 : 1;
}
