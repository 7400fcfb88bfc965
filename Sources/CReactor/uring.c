#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/io_uring.h>
#include "CReactor.h"

_Static_assert(CREACTOR_CQE_F_BUFFER == IORING_CQE_F_BUFFER, "IORING_CQE_F_BUFFER");
_Static_assert(CREACTOR_CQE_F_MORE == IORING_CQE_F_MORE, "IORING_CQE_F_MORE");
_Static_assert(CREACTOR_CQE_BUFFER_SHIFT == IORING_CQE_BUFFER_SHIFT, "IORING_CQE_BUFFER_SHIFT");
#ifdef IORING_CQE_F_BUF_MORE
_Static_assert(CREACTOR_CQE_F_BUF_MORE == IORING_CQE_F_BUF_MORE, "IORING_CQE_F_BUF_MORE");
#endif
// Incremental buffer consumption (6.12), by value: the headers of older systems lack it.
enum { CREACTOR_PBUF_RING_INC = 2 };
// IORING_REGISTER_PBUF_RING's argument, declared here: its flags field is `pad` in the headers before 6.4 and
// `flags` after, so neither name compiles everywhere. The layout is the kernel's ABI.
struct creactor_buf_reg {
    uint64_t ring_addr;
    uint32_t ring_entries;
    uint16_t bgid;
    uint16_t flags;
    uint64_t resv[3];
};
_Static_assert(sizeof(struct creactor_buf_reg) == sizeof(struct io_uring_buf_reg), "io_uring_buf_reg");
// The wait's extended argument, declared here for the same reason: its third field is `pad` before 6.12 and
// `min_wait_usec` after. The layout is the kernel's ABI.
struct creactor_getevents_arg {
    uint64_t sigmask;
    uint32_t sigmask_sz;
    uint32_t min_wait_usec;
    uint64_t ts;
};
_Static_assert(sizeof(struct creactor_getevents_arg) == sizeof(struct io_uring_getevents_arg), "io_uring_getevents_arg");
_Static_assert(offsetof(struct creactor_getevents_arg, sigmask_sz) == offsetof(struct io_uring_getevents_arg, sigmask_sz), "sigmask_sz");
_Static_assert(offsetof(struct creactor_getevents_arg, ts) == offsetof(struct io_uring_getevents_arg, ts), "ts");
// The kernel honours min_wait_usec (6.12), by value for older headers.
enum { CREACTOR_FEAT_MIN_TIMEOUT = 1u << 15 };
#ifdef IORING_FEAT_MIN_TIMEOUT
_Static_assert(CREACTOR_FEAT_MIN_TIMEOUT == IORING_FEAT_MIN_TIMEOUT, "IORING_FEAT_MIN_TIMEOUT");
#endif

static int uring_register(int fd, unsigned opcode, void *arg, unsigned count) {
    return (int)syscall(__NR_io_uring_register, fd, opcode, arg, count);
}

// io_uring by hand: io_uring_setup, the three regions mapped with mmap, io_uring_enter. The kernel's ABI asks for
// acquire loads of what it writes (the completion tail, the submission head) and release stores of what we hand
// it (the submission tail, the completion head); everything else in the rings is plain memory.

static int uring_setup(unsigned entries, struct io_uring_params *params) {
    return (int)syscall(__NR_io_uring_setup, entries, params);
}

static int uring_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags, void *arg, size_t size) {
    return (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, arg, size);
}

int creactor_uring_init(struct creactor_uring *ring, unsigned entries, unsigned cq_entries) {
    memset(ring, 0, sizeof(*ring));
    ring->fd = -1;
    struct io_uring_params params;
    // Completions' work (a receive's copy) runs only inside our own io_uring_enter, batched, instead of
    // interrupting whatever system call the loop is in (6.1+). That binds the ring to one thread: it starts
    // disabled and the first enter, on the loop's thread, enables it for that thread.
    memset(&params, 0, sizeof(params));
    params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED;
    params.cq_entries = cq_entries;
    int fd = uring_setup(entries, &params);
    // No fallback to a ring without these: deferred task running (6.1) is also the floor for the multishot
    // receives (6.0) the transports rely on, and an older kernel refuses in one line rather than failing each
    // connection later.
    if (fd < 0) return errno == EINVAL ? -ENOTSUP : -errno;
    ring->disabled = (params.flags & IORING_SETUP_R_DISABLED) != 0;
    ring->features = params.features;
    ring->batch_completions = 1;
    ring->batch_max_delay_usec = 0;
    // A wait with a timeout needs IORING_ENTER_EXT_ARG (5.11); completions never dropped needs NODROP (5.5).
    if (!(params.features & IORING_FEAT_EXT_ARG) || !(params.features & IORING_FEAT_NODROP)
        || !(params.features & IORING_FEAT_SINGLE_MMAP)) {
        close(fd);
        return -ENOTSUP;
    }
    size_t sq_size = params.sq_off.array + params.sq_entries * sizeof(unsigned);
    size_t cq_size = params.cq_off.cqes + params.cq_entries * sizeof(struct io_uring_cqe);
    size_t ring_size = sq_size > cq_size ? sq_size : cq_size;
    void *rings = mmap(0, ring_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
    if (rings == MAP_FAILED) {
        int code = errno;
        close(fd);
        return -code;
    }
    size_t sqes_size = params.sq_entries * sizeof(struct io_uring_sqe);
    void *sqes = mmap(0, sqes_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
    if (sqes == MAP_FAILED) {
        int code = errno;
        munmap(rings, ring_size);
        close(fd);
        return -code;
    }
    char *base = rings;
    ring->fd = fd;
    ring->rings = rings;
    ring->rings_size = ring_size;
    ring->sqes = sqes;
    ring->sqes_size = sqes_size;
    ring->sq_head = (unsigned *)(base + params.sq_off.head);
    ring->sq_tail = (unsigned *)(base + params.sq_off.tail);
    ring->sq_mask = *(unsigned *)(base + params.sq_off.ring_mask);
    ring->sq_entries = params.sq_entries;
    ring->sq_array = (unsigned *)(base + params.sq_off.array);
    ring->cq_head = (unsigned *)(base + params.cq_off.head);
    ring->cq_tail = (unsigned *)(base + params.cq_off.tail);
    ring->cq_mask = *(unsigned *)(base + params.cq_off.ring_mask);
    ring->cqes = base + params.cq_off.cqes;
    ring->local_tail = *ring->sq_tail;
    return 0;
}

void creactor_uring_exit(struct creactor_uring *ring) {
    if (ring->fd < 0) return;
    munmap(ring->sqes, ring->sqes_size);
    munmap(ring->rings, ring->rings_size);
    close(ring->fd);
    ring->fd = -1;
}

// The next free submission entry, or 0 when the ring is full (the caller enters to make room).
static struct io_uring_sqe *next_sqe(struct creactor_uring *ring) {
    unsigned head = __atomic_load_n(ring->sq_head, __ATOMIC_ACQUIRE);
    if (ring->local_tail - head >= ring->sq_entries) return 0;
    unsigned index = ring->local_tail & ring->sq_mask;
    struct io_uring_sqe *sqe = (struct io_uring_sqe *)ring->sqes + index;
    memset(sqe, 0, sizeof(*sqe));
    ring->sq_array[index] = index;
    ring->local_tail++;
    return sqe;
}

int creactor_uring_poll_add(struct creactor_uring *ring, int fd, unsigned mask, uint64_t user_data) {
    struct io_uring_sqe *sqe = next_sqe(ring);
    if (!sqe) return -EBUSY;
    sqe->opcode = IORING_OP_POLL_ADD;
    sqe->fd = fd;
    sqe->poll32_events = mask;
    sqe->user_data = user_data;
    return 0;
}

int creactor_uring_poll_watch(struct creactor_uring *ring, int fd, uint64_t user_data) {
    struct io_uring_sqe *sqe = next_sqe(ring);
    if (!sqe) return -EBUSY;
    sqe->opcode = IORING_OP_POLL_ADD;
    sqe->fd = fd;
    // No events asked for: the kernel adds errors and hang-ups to every poll. Multishot, so it reports each of
    // them as it happens rather than once for a condition that lasts (a peer's FIN would fire it at every arm).
    sqe->poll32_events = 0;
    sqe->len = IORING_POLL_ADD_MULTI;
    sqe->user_data = user_data;
    return 0;
}

int creactor_uring_poll_remove(struct creactor_uring *ring, uint64_t target, uint64_t user_data) {
    struct io_uring_sqe *sqe = next_sqe(ring);
    if (!sqe) return -EBUSY;
    sqe->opcode = IORING_OP_POLL_REMOVE;
    sqe->fd = -1;
    sqe->addr = target;
    sqe->user_data = user_data;
    return 0;
}

int creactor_uring_recv_multishot(struct creactor_uring *ring, int fd, uint16_t group, uint64_t user_data) {
    struct io_uring_sqe *sqe = next_sqe(ring);
    if (!sqe) return -EBUSY;
    // Length 0 and buffer select: each completion takes a buffer of the group's ring (or, consumed incrementally,
    // the next piece of one).
    sqe->opcode = IORING_OP_RECV;
    sqe->fd = fd;
    sqe->flags = IOSQE_BUFFER_SELECT;
    sqe->buf_group = group;
    sqe->ioprio = IORING_RECV_MULTISHOT;
    sqe->user_data = user_data;
    return 0;
}

int creactor_uring_accept_multishot(struct creactor_uring *ring, int fd, int flags, uint64_t user_data) {
    struct io_uring_sqe *sqe = next_sqe(ring);
    if (!sqe) return -EBUSY;
    // No address wanted (addr and addr2 stay 0); each completion is one accepted descriptor, made with `flags`.
    sqe->opcode = IORING_OP_ACCEPT;
    sqe->fd = fd;
    sqe->accept_flags = (uint32_t)flags;
    sqe->ioprio = IORING_ACCEPT_MULTISHOT;
    sqe->user_data = user_data;
    return 0;
}

int creactor_uring_send(struct creactor_uring *ring, int fd, const void *bytes, unsigned length, int wait_for_room,
                        uint64_t user_data) {
    struct io_uring_sqe *sqe = next_sqe(ring);
    if (!sqe) return -EBUSY;
    sqe->opcode = IORING_OP_SEND;
    sqe->fd = fd;
    sqe->addr = (uint64_t)(uintptr_t)bytes;
    sqe->len = length;
    // Without MSG_DONTWAIT a send the socket has no room for waits inside the kernel until it has; with it, it
    // completes at once with -EAGAIN.
    sqe->msg_flags = MSG_NOSIGNAL | (wait_for_room ? 0 : MSG_DONTWAIT);
    sqe->user_data = user_data;
    return 0;
}

int creactor_uring_cancel(struct creactor_uring *ring, uint64_t target, uint64_t user_data) {
    struct io_uring_sqe *sqe = next_sqe(ring);
    if (!sqe) return -EBUSY;
    sqe->opcode = IORING_OP_ASYNC_CANCEL;
    sqe->fd = -1;
    sqe->addr = target;
    sqe->user_data = user_data;
    return 0;
}

// A provided-buffer ring: `entries` slots of `struct io_uring_buf` in page-aligned memory of ours, registered under
// `group`, every buffer handed over at once. The kernel takes buffers from the head it keeps; we add at the tail,
// overlaid on the first slot's reserved field, published with a release store (the kernel loads it with acquire).
// Incremental consumption lets many small receives share one buffer: with whole buffers, a turn in which thousands
// of sockets each receive a hundred bytes runs the ring dry after `entries` of them, and every other receive ends
// and must be started again.
static int register_buffers(struct creactor_uring *ring, void *slots, unsigned entries, uint16_t group, uint16_t flags) {
    struct creactor_buf_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (uint64_t)(uintptr_t)slots;
    reg.ring_entries = entries;
    reg.bgid = group;
    reg.flags = flags;
    return uring_register(ring->fd, IORING_REGISTER_PBUF_RING, &reg, 1) < 0 ? -errno : 0;
}

int creactor_uring_buffers_init(struct creactor_uring *ring, struct creactor_uring_buffers *buffers,
                                unsigned entries, unsigned buffer_size, uint16_t group) {
    memset(buffers, 0, sizeof(*buffers));
    if (entries == 0 || (entries & (entries - 1)) != 0 || entries > 32768) return -EINVAL;
    size_t ring_size = (size_t)entries * sizeof(struct io_uring_buf);
    void *slots = mmap(0, ring_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (slots == MAP_FAILED) return -errno;
    size_t data_size = (size_t)entries * buffer_size;
    void *data = mmap(0, data_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    size_t consumed_size = (size_t)entries * sizeof(uint32_t);
    void *consumed = mmap(0, consumed_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (data == MAP_FAILED || consumed == MAP_FAILED) {
        int code = errno;
        if (data != MAP_FAILED) munmap(data, data_size);
        if (consumed != MAP_FAILED) munmap(consumed, consumed_size);
        munmap(slots, ring_size);
        return -code;
    }
    int incremental = 1;
    int result = register_buffers(ring, slots, entries, group, CREACTOR_PBUF_RING_INC);
    if (result == -EINVAL) {
        incremental = 0;
        result = register_buffers(ring, slots, entries, group, 0);
    }
    if (result < 0) {
        munmap(consumed, consumed_size);
        munmap(data, data_size);
        munmap(slots, ring_size);
        return result;
    }
    buffers->slots = slots;
    buffers->slots_size = ring_size;
    buffers->data = data;
    buffers->data_size = data_size;
    buffers->consumed = consumed;
    buffers->entries = entries;
    buffers->buffer_size = buffer_size;
    buffers->group = group;
    buffers->registered = 1;
    buffers->incremental = incremental;
    for (unsigned id = 0; id < entries; id++) creactor_uring_buffer_return(buffers, (uint16_t)id);
    return 0;
}

void creactor_uring_buffers_exit(struct creactor_uring *ring, struct creactor_uring_buffers *buffers) {
    if (!buffers->registered) return;
    // With deferred work a receive fills its buffer only inside our own io_uring_enter: unmapping is safe once the
    // ring is closed, and not before.
    if (ring->fd >= 0) return;
    munmap(buffers->data, buffers->data_size);
    munmap(buffers->slots, buffers->slots_size);
    munmap(buffers->consumed, (size_t)buffers->entries * sizeof(uint32_t));
    buffers->registered = 0;
}

void *creactor_uring_buffer(struct creactor_uring_buffers *buffers, uint16_t id) {
    return (char *)buffers->data + (size_t)id * buffers->buffer_size;
}

void *creactor_uring_buffer_take(struct creactor_uring_buffers *buffers, uint16_t id, uint32_t length) {
    char *start = creactor_uring_buffer(buffers, id);
    if (!buffers->incremental) return start;
    // The kernel advanced the slot's address by each earlier receive's length; this follows it in step.
    uint32_t offset = buffers->consumed[id];
    // Past the buffer's end only if this count and the kernel's had parted: a neighbour's bytes would be handed
    // over as this receive's, so stop here instead.
    if (length > buffers->buffer_size - offset) __builtin_trap();
    buffers->consumed[id] = offset + length;
    return start + offset;
}

int creactor_uring_buffer_finished(struct creactor_uring_buffers *buffers, int32_t result, uint32_t flags) {
    if (!buffers->incremental) return 1;
    return result > 0 && !(flags & CREACTOR_CQE_F_BUF_MORE);
}

void creactor_uring_buffer_return(struct creactor_uring_buffers *buffers, uint16_t id) {
    struct io_uring_buf_ring *ring = buffers->slots;
    struct io_uring_buf *slot = &ring->bufs[buffers->local_tail & (buffers->entries - 1)];
    buffers->consumed[id] = 0;
    slot->addr = (uint64_t)(uintptr_t)creactor_uring_buffer(buffers, id);
    slot->len = buffers->buffer_size;
    slot->bid = id;
    buffers->local_tail++;
    // The slot's contents become the kernel's with the tail that covers them.
    __atomic_store_n(&ring->tail, buffers->local_tail, __ATOMIC_RELEASE);
}

int creactor_uring_enter(struct creactor_uring *ring, int timeout_ms) {
    if (ring->disabled) {
        if (uring_register(ring->fd, IORING_REGISTER_ENABLE_RINGS, 0, 0) < 0) return -errno;
        ring->disabled = 0;
    }
    // The entries filled since the last call become the kernel's. What it has not consumed yet is counted from
    // its head, not from what this side filled: entries an earlier enter left behind (it may submit fewer than
    // asked) are submitted now rather than stranded behind the tail.
    __atomic_store_n(ring->sq_tail, ring->local_tail, __ATOMIC_RELEASE);
    unsigned to_submit = ring->local_tail - __atomic_load_n(ring->sq_head, __ATOMIC_ACQUIRE);
    unsigned ready = __atomic_load_n(ring->cq_tail, __ATOMIC_ACQUIRE) - *ring->cq_head;
    if (ready > 0) {
        // Submit without waiting; nothing to submit costs no system call.
        if (to_submit == 0) return 0;
        int result = uring_enter(ring->fd, to_submit, 0, 0, 0, 0);
        return result < 0 ? -errno : result;
    }
    if (timeout_ms == 0) {
        // Deferred work runs only when asked for: GETEVENTS with no minimum runs it without blocking.
        int result = uring_enter(ring->fd, to_submit, 0, IORING_ENTER_GETEVENTS, 0, 0);
        return result < 0 ? -errno : result;
    }
    struct __kernel_timespec ts;
    struct creactor_getevents_arg arg;
    memset(&arg, 0, sizeof(arg));
    if (timeout_ms > 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
        arg.ts = (uint64_t)(uintptr_t)&ts;
    }
    unsigned min_complete = 1;
    if (ring->batch_completions > 1) {
        // Sleep until a batch is in or the batch time is up, then return with whatever is there. Never past the
        // timeout (the loop's next timer): the kernel's first timer is the batch's, whatever the timeout.
        unsigned usec = ring->batch_max_delay_usec;
        if (timeout_ms > 0 && (unsigned long long)timeout_ms * 1000 < usec) usec = (unsigned)timeout_ms * 1000;
        min_complete = ring->batch_completions;
        arg.min_wait_usec = usec;
        if (timeout_ms < 0) {
            // Without a timeout the batch time would end the wait even with nothing there: the loop would spin.
            ts.tv_sec = 24 * 3600;
            ts.tv_nsec = 0;
            arg.ts = (uint64_t)(uintptr_t)&ts;
        }
    }
    int result = uring_enter(ring->fd, to_submit, min_complete, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof(arg));
    if (result < 0) {
        int code = errno;
        // The time ran out, or a signal came: both are a wait that ended with nothing, as for epoll_wait.
        if (code == ETIME || code == EINTR) return 0;
        return -code;
    }
    return result;
}

int creactor_uring_set_wait_batch(struct creactor_uring *ring, unsigned completions, unsigned max_delay_usec) {
    if (!(ring->features & CREACTOR_FEAT_MIN_TIMEOUT)) return -ENOTSUP;
    ring->batch_completions = completions > 1 && max_delay_usec > 0 ? completions : 1;
    ring->batch_max_delay_usec = max_delay_usec;
    return 0;
}

int creactor_uring_next_cqe(struct creactor_uring *ring, uint64_t *user_data, int32_t *res, uint32_t *flags) {
    unsigned head = *ring->cq_head;
    if (head == __atomic_load_n(ring->cq_tail, __ATOMIC_ACQUIRE)) return 0;
    struct io_uring_cqe *cqe = (struct io_uring_cqe *)ring->cqes + (head & ring->cq_mask);
    *user_data = cqe->user_data;
    *res = cqe->res;
    *flags = cqe->flags;
    // Read before the slot goes back to the kernel.
    __atomic_store_n(ring->cq_head, head + 1, __ATOMIC_RELEASE);
    return 1;
}
