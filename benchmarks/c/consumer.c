/*
 * B2 reference consumer: receive COUNT messages from the existing queue NAME.
 * The clock starts when the first message is there, as for every consumer.
 * usage: consumer NAME COUNT  ->  prints "ns=<elapsed from message 1 to COUNT>"
 */
#include <fcntl.h>
#include <mqueue.h>

#include "common.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: consumer NAME COUNT\n");
        return 2;
    }
    long count = arg_long(argv[2]);
    mqd_t q = mq_open(argv[1], O_RDONLY);
    if (q == (mqd_t)-1)
        die("mq_open");
    struct mq_attr attr;
    if (mq_getattr(q, &attr) != 0)
        die("mq_getattr");
    char *buf = malloc((size_t)attr.mq_msgsize);
    unsigned int priority;
    if (mq_receive(q, buf, (size_t)attr.mq_msgsize, &priority) < 0)
        die("mq_receive");
    long long start = now_ns();
    for (long i = 1; i < count; i++) {
        if (mq_receive(q, buf, (size_t)attr.mq_msgsize, &priority) < 0)
            die("mq_receive");
    }
    long long elapsed = now_ns() - start;
    printf("ns=%lld\n", elapsed);
    mq_close(q);
    return 0;
}
