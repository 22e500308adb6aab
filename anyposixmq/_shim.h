/*
 * The interface of anyposixmq's C shim (_shim.c): what the cffi binding
 * declares to Python (_ffi.py) and what a C driver may call.  Python never
 * sees mqd_t: queues are opaque apmq_queue pointers.
 *
 * Return values: -1 with errno set on failure, APMQ_CLOSED (without errno)
 * when the queue was closed before or during the call.
 */
#ifndef ANYPOSIXMQ_SHIM_H
#define ANYPOSIXMQ_SHIM_H

#include <stddef.h>
#include <sys/types.h>

/* Modes of apmq_send/apmq_receive. */
#define APMQ_PLAIN 0    /* mq_send/mq_receive: honours the queue's O_NONBLOCK */
#define APMQ_TRY 1      /* one attempt, whatever O_NONBLOCK says: EAGAIN when it would block */
#define APMQ_TIMED 2    /* wait up to `timeout` seconds (monotonic); < 0 waits forever */
#define APMQ_CLOSED (-2) /* returned when the queue was closed */

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

typedef struct apmq_queue apmq_queue;

apmq_queue *apmq_open(const char *name, int oflag, unsigned int mode,
                      int with_attr, long capacity, long max_message_size);
apmq_queue *apmq_adopt(int fd);
void apmq_free(apmq_queue *q);
int apmq_close(apmq_queue *q);
int apmq_detach(apmq_queue *q);
int apmq_closed(apmq_queue *q);
int apmq_fileno(apmq_queue *q);
/* out: O_NONBLOCK set (0/1), capacity, max_message_size, current_messages */
int apmq_getattr(apmq_queue *q, long *out);
int apmq_set_nonblocking(apmq_queue *q, int on);
int apmq_dup(apmq_queue *q);

int apmq_send(apmq_queue *q, const char *data, size_t len, unsigned int priority,
              int mode, double timeout);
ssize_t apmq_receive(apmq_queue *q, char *buf, size_t len, unsigned int *priority,
                     int mode, double timeout);
/* Take up to max_messages messages that are there now, without waiting:
   message i goes to buf + i * stride (len bytes available there), its size to
   lengths[i] and its priority to priorities[i].  Returns how many were taken;
   when none, -1 with errno (EAGAIN for an empty queue). */
int apmq_receive_many(apmq_queue *q, char *buf, size_t stride, size_t len,
                      int max_messages, unsigned int *priorities, size_t *lengths);

/* The hot paths: send and receive in APMQ_PLAIN mode with as few arguments
   as possible (cffi's cost grows with each one; a single argument is
   cheapest).  A receive block is filled once per buffer. */
typedef struct {
    unsigned int priority;   /* out */
    apmq_queue *q;
    char *buf;
    size_t len;
} apmq_receive_block;
int apmq_send_plain(apmq_queue *q, const char *data, size_t len, unsigned int priority);
ssize_t apmq_receive_plain(apmq_receive_block *block);

int apmq_unlink(const char *name);
long apmq_priority_max(void);

#endif /* ANYPOSIXMQ_SHIM_H */
