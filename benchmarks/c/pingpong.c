/*
 * B4 reference: a round trip between two processes over two queues.
 *   pingpong echo REQUESTS REPLIES COUNT
 *       receive COUNT messages from REQUESTS, send each back to REPLIES
 *   pingpong ping REQUESTS REPLIES COUNT WARMUP SIZE
 *       WARMUP then COUNT round trips of SIZE bytes; prints
 *       "median_ns=... p99_ns=..." of the timed ones
 */
#include <fcntl.h>
#include <mqueue.h>

#include "common.h"

static int by_value(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static mqd_t open_queue(const char *name, int flags)
{
    mqd_t q = mq_open(name, flags);
    if (q == (mqd_t)-1)
        die("mq_open");
    return q;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "echo") == 0) {
        long count = arg_long(argv[4]);
        mqd_t requests = open_queue(argv[2], O_RDONLY);
        mqd_t replies = open_queue(argv[3], O_WRONLY);
        struct mq_attr attr;
        if (mq_getattr(requests, &attr) != 0)
            die("mq_getattr");
        char *buf = malloc((size_t)attr.mq_msgsize);
        unsigned int priority;
        for (long i = 0; i < count; i++) {
            ssize_t n = mq_receive(requests, buf, (size_t)attr.mq_msgsize, &priority);
            if (n < 0)
                die("mq_receive");
            if (mq_send(replies, buf, (size_t)n, priority) != 0)
                die("mq_send");
        }
        return 0;
    }
    if (argc == 7 && strcmp(argv[1], "ping") == 0) {
        long count = arg_long(argv[4]);
        long warmup = arg_long(argv[5]);
        long size = arg_long(argv[6]);
        mqd_t requests = open_queue(argv[2], O_WRONLY);
        mqd_t replies = open_queue(argv[3], O_RDONLY);
        struct mq_attr attr;
        if (mq_getattr(replies, &attr) != 0)
            die("mq_getattr");
        char *out = calloc(1, (size_t)size);
        char *in = malloc((size_t)attr.mq_msgsize);
        long long *times = malloc(sizeof *times * (size_t)(count > 0 ? count : 1));
        unsigned int priority;
        for (long i = 0; i < warmup + count; i++) {
            long long start = now_ns();
            if (mq_send(requests, out, (size_t)size, 0) != 0)
                die("mq_send");
            if (mq_receive(replies, in, (size_t)attr.mq_msgsize, &priority) < 0)
                die("mq_receive");
            if (i >= warmup)
                times[i - warmup] = now_ns() - start;
        }
        qsort(times, (size_t)count, sizeof *times, by_value);
        printf("median_ns=%lld p99_ns=%lld\n", times[count / 2], times[(count * 99) / 100]);
        return 0;
    }
    fprintf(stderr, "usage: pingpong echo REQUESTS REPLIES COUNT\n"
                    "       pingpong ping REQUESTS REPLIES COUNT WARMUP SIZE\n");
    return 2;
}
