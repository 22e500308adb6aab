"""The cffi build script of the binding (API mode, compiled at install).

``setup.py`` names ``ffibuilder`` in ``cffi_modules``; the result is the
extension module ``anyposixmq._binding``.  The C lives in real files beside
this one: ``_shim.h`` (the interface) and ``_shim.c`` (the shim over
``mq_open(3)`` and friends, where every platform difference is settled in the
preprocessor).  ``CDEF`` below is what Python sees of ``_shim.h``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent

CDEF = """
typedef struct apmq_queue apmq_queue;

/* Modes of apmq_send/apmq_receive. */
#define APMQ_PLAIN ...      /* mq_send/mq_receive: honours the queue's O_NONBLOCK */
#define APMQ_TRY ...        /* one attempt, whatever O_NONBLOCK says: EAGAIN when it would block */
#define APMQ_TIMED ...      /* wait up to `timeout` seconds (monotonic); < 0 waits forever */
#define APMQ_CLOSED ...     /* returned (negative) when the queue was closed */

/* 1 where the queue descriptor can be polled (Linux, FreeBSD, DragonFly). */
#define APMQ_POLLABLE ...
/* 1 where mqd_t is a file descriptor that dup() can copy. */
#define APMQ_FD_IS_MQD ...

apmq_queue *apmq_open(const char *name, int oflag, unsigned int mode,
                      int with_attr, long capacity, long max_message_size);
apmq_queue *apmq_adopt(int fd);
void apmq_free(apmq_queue *q);
int apmq_close(apmq_queue *q);
int apmq_detach(apmq_queue *q);
int apmq_closed(apmq_queue *q);
int apmq_fileno(apmq_queue *q);
int apmq_getattr(apmq_queue *q, long *out);
int apmq_set_nonblocking(apmq_queue *q, int on);
int apmq_dup(apmq_queue *q);

int apmq_send(apmq_queue *q, const char *data, size_t len, unsigned int priority,
              int mode, double timeout);
ssize_t apmq_receive(apmq_queue *q, char *buf, size_t len, unsigned int *priority,
                     int mode, double timeout);
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
    ...;
} apmq_receive_block;
int apmq_send_plain(apmq_queue *q, const char *data, size_t len, unsigned int priority);
ssize_t apmq_receive_plain(apmq_receive_block *block);

int apmq_unlink(const char *name);
long apmq_priority_max(void);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "anyposixmq._binding",
    '#include "_shim.h"',
    sources=[os.path.relpath(HERE / "_shim.c")],
    include_dirs=[str(HERE)],
    libraries=["rt"] if sys.platform.startswith(("linux", "freebsd", "netbsd", "sunos")) else [],
    extra_compile_args=["-O2"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
