/*
 * B1 reference: send and receive one SIZE-byte message in a loop, in one
 * process, on a fresh queue of capacity 10.  The loop never waits, so it is
 * timed on the thread's CPU clock, which other processes do not disturb.
 * usage: pairs NAME COUNT SIZE  ->  prints "ns=<CPU time of COUNT pairs>"
 */
#include <fcntl.h>
#include <mqueue.h>

#include "common.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: pairs NAME COUNT SIZE\n");
        return 2;
    }
    long count = arg_long(argv[2]);
    long size = arg_long(argv[3]);
    struct mq_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.mq_maxmsg = 10;
    attr.mq_msgsize = size;
    mqd_t q = mq_open(argv[1], O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
    if (q == (mqd_t)-1)
        die("mq_open");
    mq_unlink(argv[1]);
    char *out = calloc(1, (size_t)size);
    char *in = malloc((size_t)size);
    unsigned int priority;
    for (long i = 0; i < count / 10 + 1; i++) { /* warm up */
        if (mq_send(q, out, (size_t)size, 0) != 0 || mq_receive(q, in, (size_t)size, &priority) < 0)
            die("warm-up");
    }
    long long start = cpu_ns();
    for (long i = 0; i < count; i++) {
        if (mq_send(q, out, (size_t)size, 0) != 0)
            die("mq_send");
        if (mq_receive(q, in, (size_t)size, &priority) < 0)
            die("mq_receive");
    }
    long long elapsed = cpu_ns() - start;
    printf("ns=%lld\n", elapsed);
    mq_close(q);
    return 0;
}
