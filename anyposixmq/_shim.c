/*
 * The C shim under anyposixmq's cffi binding (see _shim.h for the interface).
 *
 * It hides mqd_t behind an opaque apmq_queue that also counts the calls in
 * flight, so that closing a queue while another thread is blocked in it never
 * closes the descriptor under that thread (the number could be reused by the
 * next open).  Platform differences (mqd_t an int or a pointer, a pollable
 * descriptor or none) are settled here, in the preprocessor.
 *
 * The file stands alone: it compiles with any C99 compiler against the
 * system's <mqueue.h>, outside Python (see crossbuild/).
 */
#define _GNU_SOURCE 1  /* ppoll() on glibc */

#include "_shim.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How a queue descriptor is found (APMQ_POLLABLE and APMQ_FD_IS_MQD: _shim.h). */
#if defined(__FreeBSD__)
#  define APMQ_FD(mqd) mq_getfd_np(mqd)
#elif APMQ_FD_IS_MQD
#  define APMQ_FD(mqd) ((int)(mqd))
#else
#  define APMQ_FD(mqd) (-1)
#endif

struct apmq_queue {
    mqd_t mqd;
    int fd;            /* the pollable descriptor, or -1 */
    int closed;        /* set once by close or detach */
    int detached;      /* the descriptor was handed over: never close it */
    long refs;         /* 1 while open, plus one per call in flight */
};

/* Take a reference for one call; 0 when the queue is closed. */
static int apmq_enter(apmq_queue *q)
{
    long r = __atomic_load_n(&q->refs, __ATOMIC_ACQUIRE);
    do {
        if (r == 0 || __atomic_load_n(&q->closed, __ATOMIC_ACQUIRE))
            return 0;
    } while (!__atomic_compare_exchange_n(&q->refs, &r, r + 1, 1,
                                          __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
    return 1;
}

/* Drop a reference; the last one closes the descriptor.  errno is kept. */
static int apmq_leave(apmq_queue *q)
{
    int rc = 0;
    if (__atomic_sub_fetch(&q->refs, 1, __ATOMIC_ACQ_REL) == 0
        && !__atomic_load_n(&q->detached, __ATOMIC_ACQUIRE)) {
        int saved = errno;
        rc = mq_close(q->mqd);
        if (rc == 0)
            errno = saved;
    }
    return rc;
}

static apmq_queue *apmq_wrap(mqd_t mqd)
{
    apmq_queue *q = malloc(sizeof *q);
    if (q == NULL) {
        int saved = errno;
        mq_close(mqd);
        errno = saved;
        return NULL;
    }
    q->mqd = mqd;
    q->fd = APMQ_FD(mqd);
    q->closed = 0;
    q->detached = 0;
    q->refs = 1;
    return q;
}

apmq_queue *apmq_open(const char *name, int oflag, unsigned int mode,
                             int with_attr, long capacity, long max_message_size)
{
    mqd_t mqd;
    if (with_attr) {
        struct mq_attr attr;
        memset(&attr, 0, sizeof attr);
        attr.mq_maxmsg = capacity;
        attr.mq_msgsize = max_message_size;
        mqd = mq_open(name, oflag, (mode_t)mode, &attr);
    } else {
        mqd = mq_open(name, oflag, (mode_t)mode, NULL);
    }
    if (mqd == (mqd_t)-1)
        return NULL;
#if APMQ_FD_IS_MQD
    /* Queues we open are close-on-exec: glibc does it already, make sure of
       it elsewhere.  An adopted descriptor (apmq_adopt) keeps its flag. */
    {
        int flags = fcntl((int)mqd, F_GETFD);
        if (flags >= 0 && !(flags & FD_CLOEXEC))
            fcntl((int)mqd, F_SETFD, flags | FD_CLOEXEC);
    }
#endif
    return apmq_wrap(mqd);
}

apmq_queue *apmq_adopt(int fd)
{
#if APMQ_FD_IS_MQD
    struct mq_attr attr;
    if (mq_getattr((mqd_t)fd, &attr) != 0)
        return NULL;
    return apmq_wrap((mqd_t)fd);
#else
    (void)fd;
    errno = ENOTSUP;
    return NULL;
#endif
}

int apmq_close(apmq_queue *q)
{
    if (__atomic_exchange_n(&q->closed, 1, __ATOMIC_ACQ_REL))
        return 0;
    return apmq_leave(q);
}

int apmq_detach(apmq_queue *q)
{
    if (q->fd < 0 || !APMQ_FD_IS_MQD) {
        errno = ENOTSUP;
        return -1;
    }
    if (__atomic_exchange_n(&q->closed, 1, __ATOMIC_ACQ_REL)) {
        errno = EBADF;
        return APMQ_CLOSED;
    }
    __atomic_store_n(&q->detached, 1, __ATOMIC_RELEASE);
    apmq_leave(q);
    return q->fd;
}

void apmq_free(apmq_queue *q)
{
    apmq_close(q);
    free(q);
}

int apmq_closed(apmq_queue *q)
{
    return __atomic_load_n(&q->closed, __ATOMIC_ACQUIRE);
}

int apmq_fileno(apmq_queue *q)
{
    if (!apmq_enter(q))
        return APMQ_CLOSED;
    int fd = q->fd;
    apmq_leave(q);
    if (fd < 0)
        errno = ENOTSUP;
    return fd;
}

/* out: flags (O_NONBLOCK set or not), capacity, max_message_size, current_messages */
int apmq_getattr(apmq_queue *q, long *out)
{
    struct mq_attr attr;
    if (!apmq_enter(q))
        return APMQ_CLOSED;
    int rc = mq_getattr(q->mqd, &attr);
    apmq_leave(q);
    if (rc == 0) {
        out[0] = (attr.mq_flags & O_NONBLOCK) ? 1 : 0;
        out[1] = attr.mq_maxmsg;
        out[2] = attr.mq_msgsize;
        out[3] = attr.mq_curmsgs;
    }
    return rc;
}

int apmq_set_nonblocking(apmq_queue *q, int on)
{
    struct mq_attr attr;
    if (!apmq_enter(q))
        return APMQ_CLOSED;
    memset(&attr, 0, sizeof attr);
    attr.mq_flags = on ? O_NONBLOCK : 0;
    int rc = mq_setattr(q->mqd, &attr, NULL);
    apmq_leave(q);
    return rc;
}

int apmq_dup(apmq_queue *q)
{
#if APMQ_FD_IS_MQD
    if (!apmq_enter(q))
        return APMQ_CLOSED;
    int fd = fcntl(q->fd, F_DUPFD_CLOEXEC, 0);
    apmq_leave(q);
    return fd;
#else
    (void)q;
    errno = ENOTSUP;
    return -1;
#endif
}

static double apmq_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void apmq_to_timespec(double seconds, struct timespec *ts)
{
    if (seconds < 0)
        seconds = 0;
    /* A double past time_t is undefined to convert (and the kernel rejects
       what comes out): cap at ~31 years; the callers wait again if needed. */
    if (seconds > 1e9)
        seconds = 1e9;
    ts->tv_sec = (time_t)seconds;
    ts->tv_nsec = (long)((seconds - (double)ts->tv_sec) * 1e9);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec += 1;
        ts->tv_nsec -= 1000000000L;
    }
}

/*
 * Wait until the queue may be ready, at most `remaining` seconds (< 0: no
 * limit).  Returns 0 when it is worth another attempt, -1 with errno set
 * otherwise (EINTR included: the caller lets Python run signal handlers).
 * Where the descriptor can be polled, the wait is relative and so measured on
 * the monotonic clock.  Elsewhere mq_timed* need an absolute CLOCK_REALTIME
 * deadline: the caller re-checks the monotonic clock after every expiry, so
 * a forward clock jump cannot end the wait early.
 */
#if APMQ_POLLABLE
static int apmq_wait(apmq_queue *q, short events, double remaining)
{
    struct pollfd pfd;
    struct timespec ts;
    pfd.fd = q->fd;
    pfd.events = events;
    pfd.revents = 0;
    if (remaining >= 0)
        apmq_to_timespec(remaining, &ts);
    int rc = ppoll(&pfd, 1, remaining >= 0 ? &ts : NULL, NULL);
    if (rc < 0)
        return -1;
    return 0;
}
#endif

#if !APMQ_POLLABLE
static void apmq_realtime_deadline(double remaining, struct timespec *ts)
{
    struct timespec now, rel;
    clock_gettime(CLOCK_REALTIME, &now);
    apmq_to_timespec(remaining, &rel);
    ts->tv_sec = now.tv_sec + rel.tv_sec;
    ts->tv_nsec = now.tv_nsec + rel.tv_nsec;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec += 1;
        ts->tv_nsec -= 1000000000L;
    }
}
#endif

/* A deadline long past: one attempt, never a wait.  Not const: qemu-user
   (7.2) writes the timeout back after mq_timedsend/mq_timedreceive
   succeed, and fails them with EFAULT, the message already sent or taken,
   when it lies in read-only memory. */
static struct timespec apmq_epoch = {0, 0};

static int apmq_send_once(apmq_queue *q, const char *data, size_t len,
                          unsigned int priority, int mode, double timeout)
{
    int rc;
    if (mode == APMQ_PLAIN)
        return mq_send(q->mqd, data, len, priority);
    if (mode == APMQ_TRY) {
        rc = mq_timedsend(q->mqd, data, len, priority, &apmq_epoch);
        if (rc < 0 && errno == ETIMEDOUT)
            errno = EAGAIN;
        return rc;
    }
    double deadline = apmq_now() + timeout;
    for (;;) {
#if APMQ_POLLABLE
        rc = mq_timedsend(q->mqd, data, len, priority, &apmq_epoch);
        if (rc == 0 || (errno != ETIMEDOUT && errno != EAGAIN))
            return rc;
        double remaining = timeout < 0 ? -1.0 : deadline - apmq_now();
        if (timeout >= 0 && remaining <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (apmq_wait(q, POLLOUT, remaining) < 0)
            return -1;
#else
        struct timespec ts;
        double remaining = timeout < 0 ? 86400.0 : deadline - apmq_now();
        apmq_realtime_deadline(remaining, &ts);
        rc = mq_timedsend(q->mqd, data, len, priority, &ts);
        if (rc == 0 || (errno != ETIMEDOUT && errno != EAGAIN))
            return rc;
        if (errno == EAGAIN) {
            /* O_NONBLOCK queue: no kernel wait, so sleep briefly. */
            struct timespec nap = {0, 1000000L};
            nanosleep(&nap, NULL);
        }
        if (timeout >= 0 && deadline - apmq_now() <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
#endif
    }
}

int apmq_send(apmq_queue *q, const char *data, size_t len,
                     unsigned int priority, int mode, double timeout)
{
    if (!apmq_enter(q))
        return APMQ_CLOSED;
    int rc = apmq_send_once(q, data, len, priority, mode, timeout);
    apmq_leave(q);
    return rc;
}

static ssize_t apmq_receive_once(apmq_queue *q, char *buf, size_t len,
                                 unsigned int *priority, int mode, double timeout)
{
    ssize_t n;
    if (mode == APMQ_PLAIN)
        return mq_receive(q->mqd, buf, len, priority);
    if (mode == APMQ_TRY) {
        n = mq_timedreceive(q->mqd, buf, len, priority, &apmq_epoch);
        if (n < 0 && errno == ETIMEDOUT)
            errno = EAGAIN;
        return n;
    }
    double deadline = apmq_now() + timeout;
    for (;;) {
#if APMQ_POLLABLE
        n = mq_timedreceive(q->mqd, buf, len, priority, &apmq_epoch);
        if (n >= 0 || (errno != ETIMEDOUT && errno != EAGAIN))
            return n;
        double remaining = timeout < 0 ? -1.0 : deadline - apmq_now();
        if (timeout >= 0 && remaining <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (apmq_wait(q, POLLIN, remaining) < 0)
            return -1;
#else
        struct timespec ts;
        double remaining = timeout < 0 ? 86400.0 : deadline - apmq_now();
        apmq_realtime_deadline(remaining, &ts);
        n = mq_timedreceive(q->mqd, buf, len, priority, &ts);
        if (n >= 0 || (errno != ETIMEDOUT && errno != EAGAIN))
            return n;
        if (errno == EAGAIN) {
            struct timespec nap = {0, 1000000L};
            nanosleep(&nap, NULL);
        }
        if (timeout >= 0 && deadline - apmq_now() <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
#endif
    }
}

ssize_t apmq_receive(apmq_queue *q, char *buf, size_t len,
                            unsigned int *priority, int mode, double timeout)
{
    if (!apmq_enter(q))
        return APMQ_CLOSED;
    ssize_t n = apmq_receive_once(q, buf, len, priority, mode, timeout);
    apmq_leave(q);
    return n;
}

int apmq_send_plain(apmq_queue *q, const char *data, size_t len, unsigned int priority)
{
    return apmq_send(q, data, len, priority, APMQ_PLAIN, 0.0);
}

ssize_t apmq_receive_plain(apmq_receive_block *block)
{
    return apmq_receive(block->q, block->buf, block->len, &block->priority, APMQ_PLAIN, 0.0);
}

/*
 * Take up to max_messages messages that are there now, without waiting:
 * message i goes to buf + i * stride (len bytes available there), its size to
 * lengths[i] and its priority to priorities[i].  Returns how many were taken;
 * when none, -1 with errno (EAGAIN for an empty queue).
 */
int apmq_receive_many(apmq_queue *q, char *buf, size_t stride, size_t len,
                             int max_messages, unsigned int *priorities, size_t *lengths)
{
    int taken = 0;
    if (!apmq_enter(q))
        return APMQ_CLOSED;
    while (taken < max_messages) {
        ssize_t n = mq_timedreceive(q->mqd, buf + (size_t)taken * stride, len,
                                    &priorities[taken], &apmq_epoch);
        if (n < 0) {
            if (errno == ETIMEDOUT)
                errno = EAGAIN;
            break;
        }
        lengths[taken] = (size_t)n;
        taken++;
    }
    apmq_leave(q);
    return taken > 0 ? taken : -1;
}

int apmq_unlink(const char *name)
{
    return mq_unlink(name);
}

long apmq_priority_max(void)
{
    long n = sysconf(_SC_MQ_PRIO_MAX);
#ifdef MQ_PRIO_MAX
    if (n <= 0)
        n = MQ_PRIO_MAX;
#endif
    return n > 0 ? n - 1 : 31;
}
