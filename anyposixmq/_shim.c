/*
 * The C shim under anyposixmq's cffi binding (see _shim.h for the interface).
 *
 * It hides mqd_t behind an opaque apmq_queue that also counts the calls in
 * flight, so that closing a queue while another thread is blocked in it never
 * closes the descriptor under that thread (the number could be reused by the
 * next open).  Platform differences (mqd_t an int or a pointer, a pollable
 * descriptor or none) are settled here, in the preprocessor.
 *
 * It also keeps what a receive took until its caller has handed it over
 * (the receive blocks below): CPython runs a pending signal handler right
 * after a C call returns, and the handler's exception must not lose the
 * message the call brought back.
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
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

typedef struct apmq_block apmq_block;

struct apmq_queue {
    mqd_t mqd;
    int fd;            /* the pollable descriptor, or -1 */
    int closed;        /* set once by close or detach */
    int detached;      /* the descriptor was handed over: never close it */
    long refs;         /* 1 while open, plus one per call in flight */
    int held_open;     /* closed, but open for messages held for other threads */
    pthread_mutex_t lock;   /* guards the list of blocks and their bookkeeping */
    apmq_block *blocks;     /* every receive block of this queue */
    long holders;      /* the struct: 1 until apmq_free, plus one per block */
    long held;         /* blocks that may hold messages (a hint, see below) */
    unsigned long seq; /* counts the receives that took messages */
    char *name;        /* for a put-back through a descriptor of its own; or NULL */
};

/*
 * Held messages belong to the process whose receive took them.  A forked
 * child has copies of its parent's blocks, and its forking thread has the
 * parent's thread id: without this counter, bumped in every child, the
 * child would return or put back messages that the parent still holds.
 */
static unsigned long apmq_generation;
static pthread_once_t apmq_atfork_once = PTHREAD_ONCE_INIT;

static void apmq_forked(void)
{
    apmq_generation++;
}

static void apmq_watch_forks(void)
{
    pthread_atfork(NULL, NULL, apmq_forked);
}

static void apmq_settle(apmq_queue *q);

/* Take a reference for one call; 0 when the queue is closed. */
static int apmq_enter(apmq_queue *q)
{
    long r = __atomic_load_n(&q->refs, __ATOMIC_ACQUIRE);
    do {
        if (r == 0 || __atomic_load_n(&q->closed, __ATOMIC_ACQUIRE)) {
            apmq_settle(q);
            return 0;
        }
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
    pthread_once(&apmq_atfork_once, apmq_watch_forks);
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
    q->held_open = 0;
    q->blocks = NULL;
    q->holders = 1;
    q->held = 0;
    q->seq = 0;
    q->name = NULL;
    if (pthread_mutex_init(&q->lock, NULL) != 0) {
        mq_close(mqd);
        free(q);
        errno = ENOMEM;
        return NULL;
    }
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
    char *copy = strdup(name);
    if (copy == NULL) {
        mq_close(mqd);
        errno = ENOMEM;
        return NULL;
    }
#if APMQ_FD_IS_MQD
    /* Queues we open are close-on-exec: glibc does it already, make sure of
       it elsewhere.  An adopted descriptor (apmq_adopt) keeps its flag. */
    {
        int flags = fcntl((int)mqd, F_GETFD);
        if (flags >= 0 && !(flags & FD_CLOEXEC))
            fcntl((int)mqd, F_SETFD, flags | FD_CLOEXEC);
    }
#endif
    apmq_queue *q = apmq_wrap(mqd);
    if (q == NULL)
        free(copy);
    else
        q->name = copy;
    return q;
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

#if APMQ_POLLABLE
/* Wait until the descriptor may be ready, at most `seconds`, measured on the
   monotonic clock since the wait is relative.  -1 with errno (EINTR
   included: the caller lets Python run its handlers). */
static int apmq_wait(apmq_queue *q, short events, double seconds)
{
    struct pollfd pfd;
    struct timespec ts;
    pfd.fd = q->fd;
    pfd.events = events;
    pfd.revents = 0;
    apmq_to_timespec(seconds, &ts);
    return ppoll(&pfd, 1, &ts, NULL) < 0 ? -1 : 0;
}
#endif

#if !APMQ_POLLABLE
/* `seconds` from now on CLOCK_REALTIME, as mq_timed* want it: the caller
   re-checks the monotonic clock after every expiry, so a clock jump cannot
   end a wait early. */
static void apmq_realtime_deadline(double seconds, struct timespec *ts)
{
    struct timespec now, rel;
    clock_gettime(CLOCK_REALTIME, &now);
    apmq_to_timespec(seconds, &rel);
    ts->tv_sec = now.tv_sec + rel.tv_sec;
    ts->tv_nsec = now.tv_nsec + rel.tv_nsec;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec += 1;
        ts->tv_nsec -= 1000000000L;
    }
}
#endif

/* The cheapest realtime clock: a slice's end needs no precision. */
#if defined(CLOCK_REALTIME_COARSE)
#  define APMQ_COARSE_CLOCK CLOCK_REALTIME_COARSE
#elif defined(CLOCK_REALTIME_FAST)
#  define APMQ_COARSE_CLOCK CLOCK_REALTIME_FAST
#else
#  define APMQ_COARSE_CLOCK CLOCK_REALTIME
#endif

#define APMQ_SLICE (APMQ_WAIT_SLICE_MS / 1000.0)

/* How long the next wait may last: to the deadline (timeout < 0: none),
   within the slice. */
static double apmq_round(double now, double slice_end, double deadline, double timeout)
{
    if (timeout >= 0 && deadline < slice_end)
        return deadline - now;
    return slice_end - now;
}

/* A deadline long past: one attempt, never a wait.  Not const: qemu-user
   (7.2) writes the timeout back after mq_timedsend/mq_timedreceive
   succeed, and fails them with EFAULT, the message already sent or taken,
   when it lies in read-only memory. */
static struct timespec apmq_epoch = {0, 0};

/* One message to send (data) or to receive (buf), for either direction. */
typedef struct {
    int sending;
    const char *data;
    char *buf;
    size_t len;
    unsigned int priority;      /* sending */
    unsigned int *priority_out; /* receiving */
} apmq_transfer;

/* One kernel call, waiting at most until `deadline` (CLOCK_REALTIME) if the
   queue is not O_NONBLOCK. */
static ssize_t apmq_kernel(apmq_queue *q, apmq_transfer *t, const struct timespec *deadline)
{
    if (t->sending)
        return mq_timedsend(q->mqd, t->data, t->len, t->priority, deadline);
    return mq_timedreceive(q->mqd, t->buf, t->len, t->priority_out, deadline);
}

/*
 * The one wait of both directions: attempt as `mode` says, waiting when it
 * asks to, for one slice (APMQ_WAIT_SLICE_MS) at most.  A message size
 * (receiving) or 0 (sending) on success; -1 with errno otherwise: EAGAIN
 * for every "would block" (full or empty on a try, the time run out on a
 * timed call), EINTR for a signal or the end of a slice.
 */
static ssize_t apmq_transfer_wait(apmq_queue *q, apmq_transfer *t, int mode, double timeout)
{
    ssize_t n;
    if (mode == APMQ_PLAIN) {
        /* One call that waits (unless O_NONBLOCK) for a slice at most: the
           kernel hands a message to a waiting receiver directly. */
        struct timespec ts;
        clock_gettime(APMQ_COARSE_CLOCK, &ts);
        ts.tv_nsec += APMQ_WAIT_SLICE_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec += 1;
            ts.tv_nsec -= 1000000000L;
        }
        n = apmq_kernel(q, t, &ts);
        if (n < 0 && errno == ETIMEDOUT)
            errno = EINTR;
        return n;
    }
    if (mode == APMQ_TRY) {
        /* A deadline long past fails an attempt that would wait with
           ETIMEDOUT, and an O_NONBLOCK queue's with EAGAIN. */
        n = apmq_kernel(q, t, &apmq_epoch);
        if (n < 0 && errno == ETIMEDOUT)
            errno = EAGAIN;
        return n;
    }
    double now = apmq_now();
    double deadline = now + timeout, slice_end = now + APMQ_SLICE;
    for (;;) {
#if APMQ_POLLABLE
        n = apmq_kernel(q, t, &apmq_epoch);
#else
        struct timespec ts;
        apmq_realtime_deadline(apmq_round(now, slice_end, deadline, timeout), &ts);
        n = apmq_kernel(q, t, &ts);
#endif
        if (n >= 0 || (errno != ETIMEDOUT && errno != EAGAIN))
            return n;
        now = apmq_now();
        if (timeout >= 0 && deadline <= now)
            break;
        if (now >= slice_end) {
            errno = EINTR;
            return -1;
        }
#if APMQ_POLLABLE
        if (apmq_wait(q, t->sending ? POLLOUT : POLLIN,
                      apmq_round(now, slice_end, deadline, timeout)) < 0)
            return -1;
#else
        if (errno == EAGAIN) {
            /* O_NONBLOCK queue: no kernel wait, so sleep briefly. */
            struct timespec nap = {0, 1000000L};
            nanosleep(&nap, NULL);
        }
#endif
        now = apmq_now();
    }
    errno = EAGAIN;
    return -1;
}

/* -- sending ---------------------------------------------------------------- */

APMQ_THREAD_LOCAL int apmq_last_sent;

int apmq_send(apmq_queue *q, const char *data, size_t len, unsigned int priority,
              int mode, double timeout)
{
    apmq_transfer t = {1, data, NULL, len, priority, NULL};
    apmq_last_sent = 0;
    if (!apmq_enter(q))
        return APMQ_CLOSED;
    int rc = (int)apmq_transfer_wait(q, &t, mode, timeout);
    apmq_last_sent = rc == 0;
    apmq_leave(q);
    return rc;
}

int apmq_send_plain(apmq_queue *q, const char *data, size_t len, unsigned int priority)
{
    return apmq_send(q, data, len, priority, APMQ_PLAIN, 0.0);
}

int apmq_send_try(apmq_queue *q, const char *data, size_t len, unsigned int priority)
{
    return apmq_send(q, data, len, priority, APMQ_TRY, 0.0);
}

/* -- receive blocks ----------------------------------------------------------
 *
 * Every block is on its queue's list.  `taken` is written by the receive
 * that fills the block, by whoever returns or puts back its messages (last,
 * after `counted`), and by the caller when it has handed them over.
 * `counted` says that q->held counts the block: a hint that some block may
 * hold messages, so that a receive scans the list only then.  The caller's
 * clear leaves it counted, and so does the block's next receive that takes
 * messages: one thread receiving again and again changes no counter.
 */
struct apmq_block {
    apmq_receive_block pub;     /* first: the caller's view */
    apmq_queue *q;
    apmq_block *prev, *next;
    int capacity;
    int count;                  /* messages held, while taken ... */
    int first;                  /* ... from this one on */
    int counted;
    int orphaned;               /* freed by its caller while taken */
    unsigned long seq;          /* when the held messages left the kernel */
    unsigned long generation;   /* ... in which process (apmq_generation) */
    pthread_t owner;            /* ... and by which thread */
    size_t one_length;          /* `lengths` of a one-message block */
};

/* `taken` follows `priority`: the caller may see both as one array. */
typedef char apmq_taken_follows_priority[
    offsetof(apmq_receive_block, taken) == sizeof(unsigned int) ? 1 : -1];

static int apmq_taken(apmq_block *b)
{
    return (int)__atomic_load_n(&b->pub.taken, __ATOMIC_ACQUIRE);
}

static void apmq_uncount(apmq_block *b)
{
    if (__atomic_exchange_n(&b->counted, 0, __ATOMIC_ACQ_REL))
        __atomic_sub_fetch(&b->q->held, 1, __ATOMIC_ACQ_REL);
}

/* The block now holds `count` messages taken by this thread. */
static void apmq_hold(apmq_block *b, int count, unsigned long seq)
{
    b->count = count;
    b->first = 0;
    b->seq = seq;
    b->generation = apmq_generation;
    b->owner = pthread_self();
    __atomic_store_n(&b->pub.taken, 1, __ATOMIC_RELEASE);
    if (!__atomic_load_n(&b->counted, __ATOMIC_ACQUIRE)
        && !__atomic_exchange_n(&b->counted, 1, __ATOMIC_ACQ_REL))
        __atomic_add_fetch(&b->q->held, 1, __ATOMIC_ACQ_REL);
}

static void apmq_unlink_block(apmq_block *b)
{
    apmq_queue *q = b->q;
    if (b->prev)
        b->prev->next = b->next;
    else
        q->blocks = b->next;
    if (b->next)
        b->next->prev = b->prev;
    q->holders--;
}

/* Its messages are gone (returned or put back): hand the block back.  Locked. */
static void apmq_release_held(apmq_block *b)
{
    apmq_uncount(b);
    __atomic_store_n(&b->pub.taken, 0, __ATOMIC_RELEASE);
    if (b->orphaned) {
        apmq_unlink_block(b);
        free(b);
    }
}

static void apmq_forget(apmq_queue *q)
{
    pthread_mutex_lock(&q->lock);
    int last = --q->holders == 0;
    pthread_mutex_unlock(&q->lock);
    if (last) {
        pthread_mutex_destroy(&q->lock);
        free(q->name);
        free(q);
    }
}

apmq_receive_block *apmq_block_new(apmq_queue *q, size_t stride, int capacity)
{
    if (capacity < 1 || stride == 0 || (size_t)capacity > ((size_t)-1 / 2 - sizeof(apmq_block)) / (stride + sizeof(size_t) + sizeof(unsigned int))) {
        errno = EINVAL;
        return NULL;
    }
    size_t extra = capacity > 1 ? (size_t)capacity * (sizeof(size_t) + sizeof(unsigned int)) : 0;
    apmq_block *b = malloc(sizeof *b + extra + (size_t)capacity * stride);
    if (b == NULL)
        return NULL;
    memset(b, 0, sizeof *b);
    b->q = q;
    b->capacity = capacity;
    b->pub.stride = stride;
    if (capacity > 1) {
        b->pub.lengths = (size_t *)(void *)(b + 1);
        b->pub.priorities = (unsigned int *)(void *)(b->pub.lengths + capacity);
        b->pub.buf = (char *)(b->pub.priorities + capacity);
    } else {
        b->pub.lengths = &b->one_length;
        b->pub.priorities = &b->pub.priority;
        b->pub.buf = (char *)(b + 1);
    }
    pthread_mutex_lock(&q->lock);
    b->next = q->blocks;
    if (q->blocks)
        q->blocks->prev = b;
    q->blocks = b;
    q->holders++;
    pthread_mutex_unlock(&q->lock);
    return &b->pub;
}

static int apmq_release_if_idle(apmq_queue *q);

void apmq_block_free(apmq_receive_block *block)
{
    apmq_block *b = (apmq_block *)(void *)block;
    apmq_queue *q = b->q;
    pthread_mutex_lock(&q->lock);
    if (apmq_taken(b) && b->generation == apmq_generation) {
        /* Its messages were never handed over: anyone may return them. */
        b->orphaned = 1;
        pthread_mutex_unlock(&q->lock);
        return;
    }
    apmq_uncount(b);
    apmq_unlink_block(b);
    int last = q->holders == 0;
    /* A closed queue kept open for held messages may be idle now. */
    int release = !last && apmq_release_if_idle(q);
    pthread_mutex_unlock(&q->lock);
    free(b);
    if (release)
        apmq_leave(q);
    if (last) {
        pthread_mutex_destroy(&q->lock);
        free(q->name);
        free(q);
    }
}

/* Whether `b` holds messages of this process not yet returned or put back. */
static int apmq_holds(apmq_block *b)
{
    return apmq_taken(b) && b->first < b->count && b->generation == apmq_generation;
}

/* Whether this thread may return (or put back) what `b` holds. */
static int apmq_ours(apmq_block *b, int all)
{
    return apmq_holds(b)
        && (all || b->orphaned || pthread_equal(b->owner, pthread_self()));
}

/* The held block to return or put back first (the oldest).  Locked. */
static apmq_block *apmq_oldest_held(apmq_queue *q, apmq_block *except, int all)
{
    apmq_block *best = NULL;
    for (apmq_block *o = q->blocks; o != NULL; o = o->next)
        if (o != except && apmq_ours(o, all) && (best == NULL || o->seq < best->seq))
            best = o;
    return best;
}

/* Move up to `max` of the messages that `o` holds into `b`, from slot
   `at` on; `o` is released once empty.  How many.  Locked. */
static int apmq_move_held(apmq_block *b, int at, apmq_block *o, int max)
{
    int k = o->count - o->first;
    if (k > max)
        k = max;
    for (int i = 0; i < k; i++) {
        size_t n = o->pub.lengths[o->first + i];
        if (n > b->pub.stride)  /* never: both blocks are of one queue */
            n = b->pub.stride;
        memcpy(b->pub.buf + (size_t)(at + i) * b->pub.stride,
               o->pub.buf + (size_t)(o->first + i) * o->pub.stride, n);
        b->pub.lengths[at + i] = n;
        b->pub.priorities[at + i] = o->pub.priorities[o->first + i];
    }
    o->first += k;
    if (o->first == o->count)
        apmq_release_held(o);
    return k;
}

/*
 * Messages taken earlier and never handed over, returned before any other:
 * how many are now in `b` (slots 0...), 0 when there are none, APMQ_BUSY when
 * `b` holds another thread's messages.
 */
static int apmq_reclaim(apmq_block *b, int max)
{
    apmq_queue *q = b->q;
    if (apmq_taken(b) && b->generation != apmq_generation) {
        /* Held for the parent process before a fork: the parent has them. */
        pthread_mutex_lock(&q->lock);
        apmq_release_held(b);
        pthread_mutex_unlock(&q->lock);
    }
    if (apmq_taken(b)) {
        int k = b->count - b->first;
        if (!pthread_equal(b->owner, pthread_self()) || k > max)
            return APMQ_BUSY;
        /* Our own: the receive that took them never handed them over. */
        if (b->first > 0) {
            memmove(b->pub.buf, b->pub.buf + (size_t)b->first * b->pub.stride,
                    (size_t)k * b->pub.stride);
            memmove(b->pub.lengths, b->pub.lengths + b->first, (size_t)k * sizeof(size_t));
            memmove(b->pub.priorities, b->pub.priorities + b->first,
                    (size_t)k * sizeof(unsigned int));
            b->count = k;
            b->first = 0;
        }
        return k;
    }
    /* Any held block but this one (still counted for its last messages,
       which its caller has handed over: it stays counted if it gets more)? */
    if (__atomic_load_n(&q->held, __ATOMIC_ACQUIRE) == (long)b->counted)
        return 0;
    int k = 0;
    pthread_mutex_lock(&q->lock);
    apmq_block *o = apmq_oldest_held(q, b, 0);
    if (o != NULL) {
        unsigned long seq = o->seq;
        k = apmq_move_held(b, 0, o, max);
        apmq_hold(b, k, seq);
    }
    pthread_mutex_unlock(&q->lock);
    return k;
}

/* A write-only descriptor of q's name in *w (only its mqd and fd are
   set), for putting back what a descriptor without write access holds. */
static int apmq_open_writer(apmq_queue *q, apmq_queue *w)
{
    if (q->name == NULL)
        return 0;
    memset(w, 0, sizeof *w);
    w->mqd = mq_open(q->name, O_WRONLY | O_CLOEXEC);
    if (w->mqd == (mqd_t)-1)
        return 0;
    w->fd = APMQ_FD(w->mqd);
    return 1;
}

/*
 * Put back what may be put back (`all`: everything held), oldest first,
 * behind the messages of the same priority, waiting at most `timeout`
 * seconds in all for room.  A message that finds none stays held: nothing
 * is ever dropped here.  How many of those that may be put back are left
 * (0: all went back).  Locked.
 */
static int apmq_put_back(apmq_queue *q, int all, double timeout)
{
    double deadline = apmq_now() + timeout;
    apmq_queue writer, *target = q;
    apmq_block *o;
    int left = 0;
    while ((o = apmq_oldest_held(q, NULL, all)) != NULL) {
        for (; o->first < o->count; o->first++) {
            apmq_transfer t = {1, o->pub.buf + (size_t)o->first * o->pub.stride, NULL,
                               o->pub.lengths[o->first], o->pub.priorities[o->first], NULL};
            for (;;) {
                double remaining = deadline - apmq_now();
                if (apmq_transfer_wait(target, &t, APMQ_TIMED, remaining > 0 ? remaining : 0) == 0)
                    break;
                if (errno == EBADF && target == q && apmq_open_writer(q, &writer)) {
                    target = &writer;  /* opened read-only: send through the name */
                    continue;
                }
                if (errno != EINTR || remaining <= 0)
                    goto stuck;
            }
        }
        apmq_release_held(o);
    }
stuck:
    if (target != q)
        mq_close(writer.mqd);
    for (o = q->blocks; o != NULL; o = o->next)
        if (apmq_ours(o, all))
            left += o->count - o->first;
    return left;
}

/* Take up to `max` messages into `b`: those held first, then the kernel's
   (the first as `mode` says, the others only if there now). */
static int apmq_take(apmq_block *b, int max, int mode, double timeout)
{
    apmq_queue *q = b->q;
    int k = apmq_reclaim(b, max);
    if (k != 0)
        return k;
    apmq_transfer t = {0, NULL, b->pub.buf, b->pub.stride, 0, b->pub.priorities};
    ssize_t n = apmq_transfer_wait(q, &t, mode, timeout);
    if (n < 0) {
        apmq_uncount(b);
        return -1;
    }
    b->pub.lengths[0] = (size_t)n;
    for (k = 1; k < max; k++) {
        t.buf = b->pub.buf + (size_t)k * b->pub.stride;
        t.priority_out = &b->pub.priorities[k];
        n = apmq_kernel(q, &t, &apmq_epoch);
        if (n < 0)
            break;
        b->pub.lengths[k] = (size_t)n;
    }
    /* Only an order among held messages: two receives at once may share a
       number, and a plain load and store cost less than an atomic add. */
    unsigned long seq = __atomic_load_n(&q->seq, __ATOMIC_RELAXED) + 1;
    __atomic_store_n(&q->seq, seq, __ATOMIC_RELAXED);
    apmq_hold(b, k, seq);
    return k;
}

ssize_t apmq_receive(apmq_receive_block *block, char *into, size_t into_len,
                     int mode, double timeout)
{
    apmq_block *b = (apmq_block *)(void *)block;
    if (!apmq_enter(b->q))
        return APMQ_CLOSED;
    ssize_t n = apmq_take(b, 1, mode, timeout);
    if (n > 0) {
        n = (ssize_t)block->lengths[0];
        if (into != NULL) {
            if ((size_t)n > into_len) {
                errno = EMSGSIZE;
                n = -1;
            } else {
                memcpy(into, block->buf, (size_t)n);
            }
        }
    }
    apmq_leave(b->q);
    return n;
}

ssize_t apmq_receive_plain(apmq_receive_block *block)
{
    return apmq_receive(block, NULL, 0, APMQ_PLAIN, 0.0);
}

ssize_t apmq_receive_try(apmq_receive_block *block)
{
    return apmq_receive(block, NULL, 0, APMQ_TRY, 0.0);
}

int apmq_receive_many(apmq_receive_block *block, int max_messages, int mode, double timeout)
{
    apmq_block *b = (apmq_block *)(void *)block;
    if (max_messages < 1 || max_messages > b->capacity) {
        errno = EINVAL;
        return -1;
    }
    if (!apmq_enter(b->q))
        return APMQ_CLOSED;
    int k = apmq_take(b, max_messages, mode, timeout);
    apmq_leave(b->q);
    return k;
}

/* -- closing ------------------------------------------------------------------
 *
 * Closing puts back what receives of this thread (or of blocks freed while
 * they held messages) took and never handed over, waiting a bounded time
 * for room.  What finds no room stays held, and apmq_close says so
 * (APMQ_KEPT): the caller takes it with apmq_take_kept and hands it on.
 * Messages held for another thread keep the descriptor open (held_open)
 * until that thread hands them over or its next call puts them back.
 */

/* Whether any block holds messages of this process.  Locked. */
static int apmq_any_held(apmq_queue *q)
{
    for (apmq_block *o = q->blocks; o != NULL; o = o->next)
        if (apmq_holds(o))
            return 1;
    return 0;
}

/* A closed queue kept open for held messages, and none is held any more:
   1 when the caller must now drop the open reference (apmq_leave).  Locked. */
static int apmq_release_if_idle(apmq_queue *q)
{
    if (!__atomic_load_n(&q->held_open, __ATOMIC_ACQUIRE) || apmq_any_held(q))
        return 0;
    __atomic_store_n(&q->held_open, 0, __ATOMIC_RELEASE);
    return 1;
}

int apmq_close(apmq_queue *q, int all)
{
    if (!__atomic_exchange_n(&q->closed, 1, __ATOMIC_ACQ_REL))
        __atomic_store_n(&q->held_open, 1, __ATOMIC_RELEASE);
    else if (!__atomic_load_n(&q->held_open, __ATOMIC_ACQUIRE))
        return 0;  /* closed, and nothing was held */
    pthread_mutex_lock(&q->lock);
    int left = apmq_put_back(q, all, APMQ_PUT_BACK_MS / 1000.0);
    /* Another thread's receive may be between its return and the caller's
       hand-over (a few bytecodes, but it needs the GIL, which this call
       released): give it up to 100 ms. */
    for (int i = 0; !left && i < 1000 && apmq_any_held(q); i++) {
        struct timespec nap = {0, 100000L};
        pthread_mutex_unlock(&q->lock);
        nanosleep(&nap, NULL);
        pthread_mutex_lock(&q->lock);
        left = apmq_put_back(q, all, 0.0);
    }
    int release = apmq_release_if_idle(q);
    pthread_mutex_unlock(&q->lock);
    int rc = release ? apmq_leave(q) : 0;
    return left ? APMQ_KEPT : rc;
}

/* A call found the queue closed: if it was kept open for held messages,
   put back this thread's own (never handed over), and let the descriptor
   go once nothing is held. */
static void apmq_settle(apmq_queue *q)
{
    if (!__atomic_load_n(&q->held_open, __ATOMIC_ACQUIRE))
        return;
    pthread_mutex_lock(&q->lock);
    apmq_put_back(q, 0, APMQ_PUT_BACK_MS / 1000.0);
    int release = apmq_release_if_idle(q);
    pthread_mutex_unlock(&q->lock);
    if (release)
        apmq_leave(q);
}

int apmq_kept(apmq_queue *q, int all)
{
    int count = 0;
    pthread_mutex_lock(&q->lock);
    for (apmq_block *o = q->blocks; o != NULL; o = o->next)
        if (apmq_ours(o, all))
            count += o->count - o->first;
    pthread_mutex_unlock(&q->lock);
    return count;
}

int apmq_take_kept(apmq_receive_block *block, int all)
{
    apmq_block *b = (apmq_block *)(void *)block;
    apmq_queue *q = b->q;
    int k = 0;
    pthread_mutex_lock(&q->lock);
    if (!apmq_taken(b)) {
        apmq_block *o;
        while (k < b->capacity && (o = apmq_oldest_held(q, b, all)) != NULL)
            k += apmq_move_held(b, k, o, b->capacity - k);
        if (k > 0)
            apmq_hold(b, k, 0);
    }
    pthread_mutex_unlock(&q->lock);
    return k;
}

int apmq_detach(apmq_queue *q)
{
    if (q->fd < 0 || !APMQ_FD_IS_MQD) {
        errno = ENOTSUP;
        return -1;
    }
    if (apmq_closed(q)) {
        errno = EBADF;
        return APMQ_CLOSED;
    }
    pthread_mutex_lock(&q->lock);
    int left = apmq_put_back(q, 0, APMQ_PUT_BACK_MS / 1000.0);
    pthread_mutex_unlock(&q->lock);
    if (left)
        return APMQ_KEPT;  /* still open: the next receive returns them */
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
    /* No caller is left to hand anything over: put back all that is held. */
    if (apmq_close(q, 1) == APMQ_KEPT) {
        /* The Python object reports what it can before it lets go of the
           queue (MessageQueue.__del__); this is the last resort, reached
           only when that did not run. */
        pthread_mutex_lock(&q->lock);
        int lost = 0;
        apmq_block *o, *next;
        for (o = q->blocks; o != NULL; o = next) {
            next = o->next;
            if (apmq_holds(o)) {
                lost += o->count - o->first;
                apmq_release_held(o);
            }
        }
        int release = apmq_release_if_idle(q);
        pthread_mutex_unlock(&q->lock);
        fprintf(stderr, "anyposixmq: %d message(s) taken from queue %s could not be put back "
                "(no room) and are lost\n", lost, q->name ? q->name : "(unnamed)");
        if (release)
            apmq_leave(q);
    }
    apmq_forget(q);
}

int apmq_unlink(const char *name)
{
    return mq_unlink(name);
}

/* What apmq_notify's threads call (one callback serves the process). */
static void (*apmq_notify_callback)(int);

static void apmq_notify_thread(union sigval value)
{
    apmq_notify_callback(value.sival_int);
}

int apmq_notify(apmq_queue *q, int how, int signo, void (*callback)(int), int key)
{
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    if (how == APMQ_NOTIFY_SIGNAL) {
        ev.sigev_notify = SIGEV_SIGNAL;
        ev.sigev_signo = signo;
    } else if (how == APMQ_NOTIFY_THREAD) {
        apmq_notify_callback = callback;
        ev.sigev_notify = SIGEV_THREAD;
        ev.sigev_notify_function = apmq_notify_thread;
        ev.sigev_value.sival_int = key;
    }
    if (!apmq_enter(q))
        return APMQ_CLOSED;
    int rc = mq_notify(q->mqd, how == APMQ_NOTIFY_NONE ? NULL : &ev);
    apmq_leave(q);
    return rc;
}

int apmq_pollable(void)
{
    return APMQ_POLLABLE;
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
