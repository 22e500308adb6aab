/*
 * B2/B3 producer: send COUNT messages of SIZE bytes to the existing queue
 * NAME as fast as it takes them (blocking when it is full).
 * usage: producer NAME COUNT SIZE
 */
#include <fcntl.h>
#include <mqueue.h>

#include "common.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: producer NAME COUNT SIZE\n");
        return 2;
    }
    long count = arg_long(argv[2]);
    long size = arg_long(argv[3]);
    mqd_t q = mq_open(argv[1], O_WRONLY);
    if (q == (mqd_t)-1)
        die("mq_open");
    char *data = malloc((size_t)size);
    memset(data, 'x', (size_t)size);
    for (long i = 0; i < count; i++) {
        if (mq_send(q, data, (size_t)size, 0) != 0)
            die("mq_send");
    }
    mq_close(q);
    return 0;
}
