/*
 * The interface of anyposixmq's C shim (_shim.c): what the cffi binding
 * declares to Python (_ffi.py reads the part between the two "cdef" marker
 * comments) and what a C driver may call.  Python never sees mqd_t: queues
 * are opaque apmq_queue pointers.
 *
 * Return values: -1 with errno set on failure, APMQ_CLOSED (without errno)
 * when the queue was closed before or during the call.  "Would block" is
 * always EAGAIN: for a one-try call the queue was full/empty, for a timed
 * call the time ran out.  The caller, who knows which it asked for, names it.
 */
#ifndef ANYPOSIXMQ_SHIM_H
#define ANYPOSIXMQ_SHIM_H

#include <stddef.h>
#include <sys/types.h>

#if defined(__linux__) || defined(__DragonFly__)
   /* mqd_t is a descriptor that poll() watches. */
#  define APMQ_POLLABLE 1
#  define APMQ_FD_IS_MQD 1
#elif defined(__FreeBSD__)
   /* mqd_t is a pointer; mq_getfd_np() gives a pollable descriptor. */
#  define APMQ_POLLABLE 1
#  define APMQ_FD_IS_MQD 0
#elif defined(__NetBSD__)
   /* mqd_t is a descriptor, but poll() does not report its readiness. */
#  define APMQ_POLLABLE 0
#  define APMQ_FD_IS_MQD 1
#else
   /* illumos and others: mqd_t is a pointer with no descriptor behind it. */
#  define APMQ_POLLABLE 0
#  define APMQ_FD_IS_MQD 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#  define APMQ_THREAD_LOCAL __thread
#else
#  define APMQ_THREAD_LOCAL _Thread_local
#endif

/* cdef: what Python sees starts here (each #define becomes "#define NAME ...",
   and APMQ_THREAD_LOCAL goes: cffi finds the variable of the calling thread). */

/* APMQ_POLLABLE above, for Python. */
int apmq_pollable(void);

/* Modes of apmq_send/apmq_receive. */
#define APMQ_PLAIN 0    /* mq_send/mq_receive: honours the queue's O_NONBLOCK */
#define APMQ_TRY 1      /* one attempt, whatever O_NONBLOCK says: EAGAIN when it would block */
#define APMQ_TIMED 2    /* wait up to `timeout` seconds (monotonic), then EAGAIN; < 0 waits forever */
/*
 * No wait in C lasts longer than APMQ_WAIT_SLICE_MS: then the call returns -1
 * with EINTR, and the caller, in Python, calls again with what is left of its
 * timeout.  A signal that comes after Python last ran its handlers and before
 * the kernel began to wait interrupts nothing (it was delivered before the
 * wait); between the calls Python runs its handler, so Ctrl-C stops a wait
 * at most this late, whenever it comes.
 */
#define APMQ_WAIT_SLICE_MS 250
#define APMQ_CLOSED (-2) /* returned when the queue was closed */
#define APMQ_BUSY (-3)  /* the receive block holds another thread's message: use another block */

typedef struct apmq_queue apmq_queue;

apmq_queue *apmq_open(const char *name, int oflag, unsigned int mode,
                      int with_attr, long capacity, long max_message_size);
apmq_queue *apmq_adopt(int fd);
/*
 * Closing.  Messages that receives took and never handed over (see the
 * receive blocks below) are put back in the queue, behind those of their
 * priority, waiting at most APMQ_PUT_BACK_MS in all for room; a message
 * that finds none stays held, and the call returns APMQ_KEPT: take such
 * messages with apmq_take_kept.  Nothing is ever dropped.
 *
 * apmq_close puts back what receives of this thread held (`all`: of every
 * thread, when no caller can be left to hand anything over).  Messages held
 * for other threads keep the descriptor open until they are handed over or
 * put back by those threads' next calls.  Calling it again retries.
 * apmq_kept and apmq_take_kept: see the receive blocks below.
 * apmq_free closes with `all` and releases the queue.
 */
#define APMQ_KEPT (-4)
#define APMQ_PUT_BACK_MS 1000
int apmq_close(apmq_queue *q, int all);
void apmq_free(apmq_queue *q);
/* Give up the descriptor: its number, or APMQ_KEPT (still open) when held
   messages of this thread found no room. */
int apmq_detach(apmq_queue *q);
int apmq_closed(apmq_queue *q);
int apmq_fileno(apmq_queue *q);
/* out: O_NONBLOCK set (0/1), capacity, max_message_size, current_messages */
int apmq_getattr(apmq_queue *q, long *out);
int apmq_set_nonblocking(apmq_queue *q, int on);
int apmq_dup(apmq_queue *q);

/*
 * Sending.  apmq_send_plain is the hot path (mode APMQ_PLAIN, as few
 * arguments as possible: cffi's cost grows with each).  apmq_last_sent
 * (one per thread) tells whether the last send call made by this thread put
 * its message in the queue: a caller that sees an exception raised right
 * after the call (a signal handler's) learns from it whether the message
 * went, reading a variable rather than making another call.
 */
int apmq_send(apmq_queue *q, const char *data, size_t len, unsigned int priority,
              int mode, double timeout);
int apmq_send_plain(apmq_queue *q, const char *data, size_t len, unsigned int priority);
/* One attempt (mode APMQ_TRY), in as few arguments: the async layer's path. */
int apmq_send_try(apmq_queue *q, const char *data, size_t len, unsigned int priority);
extern APMQ_THREAD_LOCAL int apmq_last_sent;

/*
 * Receiving, into a receive block: slots for `capacity` messages of up to
 * `stride` bytes, made by apmq_block_new and owned by its queue.
 *
 * A receive that gets messages from the kernel marks the block `taken`
 * before it returns: the caller clears `taken` once it has handed the
 * messages over.  Until then they belong to the block.  The next receive
 * call of the same thread on the queue, of any kind, returns them first
 * (the call that took them evidently never handed them over), and
 * apmq_close/apmq_free put them back.  A block whose owner frees it while
 * `taken` stays with the queue until its messages are returned or put back.
 */
typedef struct {
    unsigned int priority;   /* out: the priority of a single message */
    unsigned int taken;      /* set by a receive, cleared by its caller; it
                                follows `priority` (a two-cell array to cffi) */
    char *buf;               /* message i at buf + i * stride */
    size_t stride;
    unsigned int *priorities;
    size_t *lengths;
} apmq_receive_block;
apmq_receive_block *apmq_block_new(apmq_queue *q, size_t stride, int capacity);
void apmq_block_free(apmq_receive_block *block);
/* One message into slot 0 (mode APMQ_PLAIN): its size, or < 0. */
ssize_t apmq_receive_plain(apmq_receive_block *block);
/* One attempt into slot 0 (mode APMQ_TRY): its size, or < 0. */
ssize_t apmq_receive_try(apmq_receive_block *block);
/* One message into slot 0 and, if `into` is not NULL, copied there too
   (`into_len` bytes available): its size, or < 0. */
ssize_t apmq_receive(apmq_receive_block *block, char *into, size_t into_len,
                     int mode, double timeout);
/* The first message as `mode` says (as apmq_receive), then as many of
   those there now as make up max_messages (at most the block's capacity),
   without waiting: how many, in slots 0...; or < 0. */
int apmq_receive_many(apmq_receive_block *block, int max_messages, int mode, double timeout);
/* How many messages apmq_close(q, all) would put back now, or keep. */
int apmq_kept(apmq_queue *q, int all);
/* Move those messages into `block` (at most its capacity), which is then
   taken as by a receive: how many. */
int apmq_take_kept(apmq_receive_block *block, int all);

/*
 * mq_notify(3).  APMQ_NOTIFY_NONE cancels this process's registration,
 * APMQ_NOTIFY_SIGNAL asks for signal `signo`, APMQ_NOTIFY_THREAD for a call
 * of `callback(key)` in a new thread, when a message arrives in the empty
 * queue.  -1 with errno (EBUSY: another process holds the registration).
 */
#define APMQ_NOTIFY_NONE 0
#define APMQ_NOTIFY_SIGNAL 1
#define APMQ_NOTIFY_THREAD 2
int apmq_notify(apmq_queue *q, int how, int signo, void (*callback)(int), int key);

int apmq_unlink(const char *name);
long apmq_priority_max(void);

/* cdef: what Python sees ends here. */

#endif /* ANYPOSIXMQ_SHIM_H */
