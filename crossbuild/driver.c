/*
 * A C driver for anyposixmq's shim (anyposixmq/_shim.h), built by
 * `nox -s crossbuild` for other platforms with zig cc.
 *
 * It calls every function of the shim, so that linking it for a target
 * proves that each symbol the shim needs exists in that target's libc.
 * Where it can run (natively, or under qemu-user), it also works a real
 * queue: open, send and receive in every mode, receive blocks (a message
 * taken but not handed over comes back), batches, getattr, timed waits, the
 * nonblocking flag, descriptors, close (a held message is put back, or
 * kept when the queue stays full).  Exit status 0 when every check
 * held, 1 otherwise (each failed check is printed on stderr).
 *
 * The queue is unlinked as soon as it is open (it stays usable), so a failed
 * run leaves nothing behind.
 */
#include "_shim.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CAPACITY 4
#define MAX_MESSAGE_SIZE 64
#define SHORT_WAIT 0.05

static int checks;
static int failures;

#define CHECK(cond)                                                           \
    do {                                                                      \
        int saved_errno_ = errno;                                             \
        checks++;                                                             \
        if (!(cond)) {                                                        \
            failures++;                                                       \
            fprintf(stderr, "driver.c:%d: check failed: %s (errno %d: %s)\n", \
                    __LINE__, #cond, saved_errno_, strerror(saved_errno_));   \
        }                                                                     \
        errno = saved_errno_;                                                 \
    } while (0)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Receive one message with `mode` into `block` (and a copy into a buffer of
   our own), check its text and priority, and hand it over. */
static void expect(apmq_receive_block *block, int mode, const char *text, unsigned int priority)
{
    char copy[MAX_MESSAGE_SIZE];
    ssize_t n = apmq_receive(block, copy, sizeof copy, mode, 1.0);
    CHECK(n == (ssize_t)strlen(text));
    CHECK(n >= 0 && memcmp(block->buf, text, (size_t)n) == 0);
    CHECK(n >= 0 && memcmp(copy, text, (size_t)n) == 0);
    CHECK(block->priority == priority);
    CHECK(block->taken == 1);
    block->taken = 0;
}

static void check_attributes(apmq_queue *q, long nonblocking, long messages)
{
    long attr[4] = {-1, -1, -1, -1};
    CHECK(apmq_getattr(q, attr) == 0);
    CHECK(attr[0] == nonblocking);
    CHECK(attr[1] == CAPACITY);
    CHECK(attr[2] == MAX_MESSAGE_SIZE);
    CHECK(attr[3] == messages);
}

/* A timed call on a full or empty queue waits about SHORT_WAIT, then EAGAIN. */
static void check_timeout(long rc, double started)
{
    double waited = now() - started;
    CHECK(rc == -1 && errno == EAGAIN);
    CHECK(waited >= SHORT_WAIT * 0.9);
    CHECK(waited < SHORT_WAIT + 2.0);
}

static void check_messages(apmq_queue *q, apmq_receive_block *block)
{
    char small[2];
    double started;

    CHECK(apmq_send(q, "low", 3, 1, APMQ_PLAIN, 0.0) == 0 && apmq_last_sent == 1);
    CHECK(apmq_send_plain(q, "high", 4, 7) == 0);
    CHECK(apmq_send_try(q, "mid", 3, 3) == 0);
    CHECK(apmq_send(q, "last", 4, 0, APMQ_TIMED, 1.0) == 0);
    check_attributes(q, 0, CAPACITY);

    /* Full: a try fails at once, a timed send waits, then gives up. */
    CHECK(apmq_send(q, "x", 1, 0, APMQ_TRY, 0.0) == -1 && errno == EAGAIN);
    CHECK(apmq_last_sent == 0);
    started = now();
    check_timeout(apmq_send(q, "x", 1, 0, APMQ_TIMED, SHORT_WAIT), started);

    /* Highest priority first, in every receive mode. */
    expect(block, APMQ_PLAIN, "high", 7);
    CHECK(apmq_receive_plain(block) == 3);
    CHECK(memcmp(block->buf, "mid", 3) == 0 && block->priority == 3 && block->taken == 1);
    block->taken = 0;
    /* A message taken but never handed over comes back with the next call. */
    CHECK(apmq_receive(block, small, sizeof small, APMQ_TRY, 0.0) == -1 && errno == EMSGSIZE);
    expect(block, APMQ_TRY, "low", 1);
    expect(block, APMQ_TIMED, "last", 0);
    check_attributes(q, 0, 0);

    /* Empty: a try fails at once, a timed receive waits, then gives up. */
    CHECK(apmq_receive_try(block) == -1 && errno == EAGAIN);
    started = now();
    check_timeout(apmq_receive(block, NULL, 0, APMQ_TIMED, SHORT_WAIT), started);
}

static void check_receive_many(apmq_queue *q)
{
    apmq_receive_block *block = apmq_block_new(q, MAX_MESSAGE_SIZE, CAPACITY);
    CHECK(block != NULL);
    if (block == NULL)
        return;
    CHECK(apmq_send(q, "a", 1, 2, APMQ_PLAIN, 0.0) == 0);
    CHECK(apmq_send(q, "bb", 2, 5, APMQ_PLAIN, 0.0) == 0);
    CHECK(apmq_send(q, "ccc", 3, 0, APMQ_PLAIN, 0.0) == 0);
    CHECK(apmq_receive_many(block, CAPACITY, APMQ_TRY, 0.0) == 3);
    CHECK(block->lengths[0] == 2 && block->priorities[0] == 5);
    CHECK(memcmp(block->buf, "bb", 2) == 0);
    CHECK(block->lengths[1] == 1 && block->priorities[1] == 2);
    CHECK(block->buf[block->stride] == 'a');
    CHECK(block->lengths[2] == 3 && block->priorities[2] == 0);
    CHECK(memcmp(block->buf + 2 * block->stride, "ccc", 3) == 0);
    block->taken = 0;
    CHECK(apmq_receive_many(block, CAPACITY, APMQ_TRY, 0.0) == -1 && errno == EAGAIN);
    CHECK(apmq_receive_many(block, CAPACITY + 1, APMQ_TRY, 0.0) == -1 && errno == EINVAL);
    apmq_block_free(block);
}

static void check_nonblocking(apmq_queue *q, apmq_receive_block *block)
{
    CHECK(apmq_set_nonblocking(q, 1) == 0);
    check_attributes(q, 1, 0);
    CHECK(apmq_receive(block, NULL, 0, APMQ_PLAIN, 0.0) == -1 && errno == EAGAIN);
    CHECK(apmq_set_nonblocking(q, 0) == 0);
    check_attributes(q, 0, 0);
}

/* mq_notify with a signal: it comes when a message arrives in the empty
   queue.  qemu-user does not emulate mq_notify (ENOSYS): linked, not run. */
static void check_notify(apmq_queue *q, apmq_receive_block *block)
{
    sigset_t usr1;
    struct timespec two_seconds = {2, 0};
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    CHECK(sigprocmask(SIG_BLOCK, &usr1, NULL) == 0);
    int rc = apmq_notify(q, APMQ_NOTIFY_SIGNAL, SIGUSR1, NULL, 0);
    if (rc == -1 && errno == ENOSYS) {
        printf("mq_notify: not emulated here (ENOSYS), not run\n");
        return;
    }
    CHECK(rc == 0);
    CHECK(apmq_send(q, "ring", 4, 0, APMQ_PLAIN, 0.0) == 0);
    CHECK(sigtimedwait(&usr1, NULL, &two_seconds) == SIGUSR1);
    CHECK(apmq_receive(block, NULL, 0, APMQ_TRY, 0.0) == 4);
    block->taken = 0;
    /* One-shot: registering again works; cancelling too. */
    CHECK(apmq_notify(q, APMQ_NOTIFY_SIGNAL, SIGUSR1, NULL, 0) == 0);
    CHECK(apmq_notify(q, APMQ_NOTIFY_NONE, 0, NULL, 0) == 0);
}

static void check_descriptors(apmq_queue *q, apmq_receive_block *block)
{
    int fd = apmq_fileno(q);
    if (APMQ_POLLABLE || APMQ_FD_IS_MQD)
        CHECK(fd >= 0);
    else
        CHECK(fd == -1 && errno == ENOTSUP);

    int copy = apmq_dup(q);
    if (!APMQ_FD_IS_MQD) {
        CHECK(copy == -1 && errno == ENOTSUP);
        CHECK(apmq_adopt(0) == NULL && errno == ENOTSUP);
        return;
    }
    CHECK(copy >= 0 && copy != fd);
    apmq_queue *adopted = apmq_adopt(copy);
    CHECK(adopted != NULL);
    if (adopted == NULL)
        return;
    CHECK(apmq_send(adopted, "via copy", 8, 4, APMQ_PLAIN, 0.0) == 0);
    expect(block, APMQ_TRY, "via copy", 4);
    CHECK(apmq_detach(adopted) == copy);
    CHECK(apmq_closed(adopted) == 1);
    apmq_free(adopted); /* detached: the descriptor stays open */
    CHECK(close(copy) == 0);
}

/* Closing with a message taken and not handed over: it goes back when there
   is room, and is kept (APMQ_KEPT, then apmq_take_kept) when there is none. */
static void check_kept(const char *name)
{
    apmq_queue *q = apmq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, 1, 1, MAX_MESSAGE_SIZE);
    apmq_queue *other = apmq_open(name, O_RDWR, 0, 0, 0, 0);
    CHECK(q != NULL && other != NULL);
    CHECK(apmq_unlink(name) == 0);
    if (q == NULL || other == NULL)
        return;
    apmq_receive_block *held = apmq_block_new(q, MAX_MESSAGE_SIZE, 1);
    CHECK(apmq_send(q, "first", 5, 2, APMQ_PLAIN, 0.0) == 0);
    CHECK(apmq_receive(held, NULL, 0, APMQ_TRY, 0.0) == 5);  /* taken, never handed over */
    CHECK(apmq_kept(q, 0) == 1);
    CHECK(apmq_send(other, "second", 6, 1, APMQ_PLAIN, 0.0) == 0);  /* full again */
    double start = now();
    CHECK(apmq_close(q, 0) == APMQ_KEPT);
    CHECK(now() - start >= APMQ_PUT_BACK_MS / 1000.0 - 0.01);
    CHECK(apmq_kept(q, 0) == 1);
    apmq_receive_block *out = apmq_block_new(q, MAX_MESSAGE_SIZE, 2);
    CHECK(apmq_take_kept(out, 0) == 1);
    CHECK(out->taken == 1 && out->lengths[0] == 5 && out->priorities[0] == 2);
    CHECK(memcmp(out->buf, "first", 5) == 0);
    out->taken = 0;
    CHECK(apmq_kept(q, 0) == 0);
    apmq_block_free(out);
    apmq_block_free(held);
    apmq_free(q);

    /* With room, the held message goes back behind those of its priority. */
    q = apmq_adopt(apmq_dup(other));
    if (q == NULL)  /* no descriptors to copy here: open the queue again */
        q = other;
    held = apmq_block_new(q, MAX_MESSAGE_SIZE, 1);
    CHECK(apmq_receive(held, NULL, 0, APMQ_TRY, 0.0) == 6);
    if (q != other) {
        CHECK(apmq_close(q, 0) == 0);
        apmq_block_free(held);
        apmq_free(q);
        held = apmq_block_new(other, MAX_MESSAGE_SIZE, 1);
        expect(held, APMQ_TRY, "second", 1);
    } else {
        held->taken = 0;
    }
    apmq_block_free(held);
    apmq_free(other);
}

int main(void)
{
    char name[64];
    snprintf(name, sizeof name, "/apmq-crossbuild-%ld", (long)getpid());

    apmq_queue *q = apmq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, 1, CAPACITY,
                              MAX_MESSAGE_SIZE);
    CHECK(q != NULL);
    if (q == NULL)
        return 1;
    CHECK(apmq_unlink(name) == 0);
    CHECK(apmq_closed(q) == 0);
    check_attributes(q, 0, 0);
    CHECK(apmq_priority_max() >= 31);
    CHECK(apmq_pollable() == APMQ_POLLABLE);

    apmq_receive_block *block = apmq_block_new(q, MAX_MESSAGE_SIZE, 1);
    CHECK(block != NULL);
    if (block == NULL)
        return 1;
    check_messages(q, block);
    check_receive_many(q);
    check_nonblocking(q, block);
    check_notify(q, block);
    check_descriptors(q, block);
    apmq_block_free(block);

    CHECK(apmq_close(q, 0) == 0);
    CHECK(apmq_closed(q) == 1);
    CHECK(apmq_close(q, 0) == 0);
    CHECK(apmq_send(q, "x", 1, 0, APMQ_TRY, 0.0) == APMQ_CLOSED);
    CHECK(apmq_getattr(q, (long[4]){0}) == APMQ_CLOSED);
    apmq_free(q);
    CHECK(apmq_unlink(name) == -1 && errno == ENOENT);
    check_kept(name);

    printf("%s: %d checks, %d failed (%d-bit long, %d-bit pointers)\n", name, checks, failures,
           (int)sizeof(long) * 8, (int)sizeof(void *) * 8);
    return failures == 0 ? 0 : 1;
}
