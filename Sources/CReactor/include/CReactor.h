#ifndef CREACTOR_H
#define CREACTOR_H
// Linux interfaces that Swift's Glibc module does not export (GNU extensions and headers it leaves out).
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/tcp.h>

int creactor_accept4(int fd, int flags);
int creactor_pipe2(int fds[2], int flags);
int creactor_set_thread_name(const char *name);

// Signals to self-pipes: the handler (in C, async-signal-safe) writes the signal number to every registered pipe.
int creactor_signal_pipe_add(int write_fd);
void creactor_signal_pipe_remove(int write_fd);
int creactor_signal_install(int signo);

// io_uring by hand (uring.c): poll requests for readiness, multishot receives into provided buffers for sockets.
#include <stdint.h>
#include <stddef.h>
struct creactor_uring {
    int fd;
    void *rings;
    size_t rings_size;
    void *sqes;
    size_t sqes_size;
    unsigned *sq_head;
    unsigned *sq_tail;
    unsigned *sq_array;
    unsigned sq_mask;
    unsigned sq_entries;
    unsigned local_tail;
    unsigned *cq_head;
    unsigned *cq_tail;
    unsigned cq_mask;
    void *cqes;
    /// Not enabled yet: the first enter enables it, for the thread it runs on.
    int disabled;
    /// IORING_FEAT_* of this kernel.
    unsigned features;
    /// A wait returns once this many completions are in (1: at the first); after batch_max_delay_usec, at the
    /// first there is.
    unsigned batch_completions;
    unsigned batch_max_delay_usec;
};
/// 0, or -errno (-ENOTSUP: the kernel lacks a feature the backend needs: DEFER_TASKRUN, EXT_ARG, NODROP, SINGLE_MMAP).
int creactor_uring_init(struct creactor_uring *ring, unsigned entries, unsigned cq_entries);
void creactor_uring_exit(struct creactor_uring *ring);
/// Queue a one-shot poll for `mask` (POLLIN/POLLOUT) on `fd`; -EBUSY when the submission ring is full.
int creactor_uring_poll_add(struct creactor_uring *ring, int fd, unsigned mask, uint64_t user_data);
/// Queue a multishot poll for errors and hang-ups alone on `fd` (each completion flagged MORE while it lasts).
int creactor_uring_poll_watch(struct creactor_uring *ring, int fd, uint64_t user_data);
/// Queue the removal of the poll whose user data is `target`; its own completion carries `user_data`.
int creactor_uring_poll_remove(struct creactor_uring *ring, uint64_t target, uint64_t user_data);
/// Submit what is queued and wait up to `timeout_ms` (-1: no limit, 0: none) for a completion; >= 0 or -errno.
/// The first call binds the ring to the calling thread (the loop's): every later one must come from it.
int creactor_uring_enter(struct creactor_uring *ring, int timeout_ms);
/// From now on a wait sleeps until `completions` are in; once `max_delay_usec` have passed, until the first there
/// is; never past its timeout. `completions` <= 1 or a delay of 0: wake at the first, as before. -ENOTSUP before
/// Linux 6.12 (no IORING_FEAT_MIN_TIMEOUT).
int creactor_uring_set_wait_batch(struct creactor_uring *ring, unsigned completions, unsigned max_delay_usec);
/// The next completion, if any (1), handed back to the kernel at once.
int creactor_uring_next_cqe(struct creactor_uring *ring, uint64_t *user_data, int32_t *res, uint32_t *flags);
/// Queue a multishot receive on `fd` taking buffers from `group`; -EBUSY when the submission ring is full.
int creactor_uring_recv_multishot(struct creactor_uring *ring, int fd, uint16_t group, uint64_t user_data);
/// Queue a multishot accept on the listening `fd`, accepted descriptors made with `flags` (SOCK_NONBLOCK...).
int creactor_uring_accept_multishot(struct creactor_uring *ring, int fd, int flags, uint64_t user_data);
/// Queue a send of `length` bytes at `bytes` (which must stay put until its completion); -EBUSY when full.
/// `wait_for_room`: 0 completes with -EAGAIN if the socket has none (MSG_DONTWAIT), else the kernel waits for it.
int creactor_uring_send(struct creactor_uring *ring, int fd, const void *bytes, unsigned length, int wait_for_room,
                        uint64_t user_data);
/// Queue the cancellation of the request whose user data is `target`; its own completion carries `user_data`.
int creactor_uring_cancel(struct creactor_uring *ring, uint64_t target, uint64_t user_data);

/// A completion's flags, as the kernel's IORING_CQE_F_* (checked against <linux/io_uring.h> in uring.c): the
/// completion holds a buffer (its id in the upper 16 bits), and the multishot request goes on.
static const uint32_t CREACTOR_CQE_F_BUFFER = 1U << 0;
static const uint32_t CREACTOR_CQE_F_MORE = 1U << 1;
static const uint32_t CREACTOR_CQE_BUFFER_SHIFT = 16;
/// With incremental consumption: the buffer is not used up, later receives go on filling it (IORING_CQE_F_BUF_MORE,
/// 6.12; the headers of older systems lack it).
static const uint32_t CREACTOR_CQE_F_BUF_MORE = 1U << 4;

/// A provided-buffer ring (IORING_REGISTER_PBUF_RING): `entries` buffers of `buffer_size` bytes.
struct creactor_uring_buffers {
    void *slots;
    size_t slots_size;
    void *data;
    size_t data_size;
    /// Per buffer, the bytes receives have taken from it so far (incremental consumption only).
    uint32_t *consumed;
    unsigned entries;
    unsigned buffer_size;
    uint16_t group;
    uint16_t local_tail;
    int registered;
    /// The kernel consumes a buffer a receive's length at a time (IOU_PBUF_RING_INC, 6.12) rather than whole.
    int incremental;
};
/// Maps and registers the ring (entries: a power of two up to 32768) and hands every buffer over; 0 or -errno.
/// Asks for incremental consumption first and falls back to whole buffers on a kernel without it.
int creactor_uring_buffers_init(struct creactor_uring *ring, struct creactor_uring_buffers *buffers,
                                unsigned entries, unsigned buffer_size, uint16_t group);
/// Unmaps the buffers once no receive can fill one any more: only after the ring has exited (the ring defers its
/// work to our own io_uring_enter; call again after creactor_uring_exit).
void creactor_uring_buffers_exit(struct creactor_uring *ring, struct creactor_uring_buffers *buffers);
/// Where the `length` bytes of a receive completed into buffer `id` are: its start, or with incremental
/// consumption, after what earlier receives took from it (which this call then counts).
void *creactor_uring_buffer_take(struct creactor_uring_buffers *buffers, uint16_t id, uint32_t length);
/// Whether a completion with `flags` and `result` leaves its buffer to be given back: whole buffers always; an
/// incremental one only when a receive of bytes used its end (never on an empty completion: some kernels report
/// those without IORING_CQE_F_BUF_MORE while the buffer is still theirs).
int creactor_uring_buffer_finished(struct creactor_uring_buffers *buffers, int32_t result, uint32_t flags);
/// Gives buffer `id` back to the kernel, once its bytes have been used.
void creactor_uring_buffer_return(struct creactor_uring_buffers *buffers, uint16_t id);

/// Asks the CPU to start loading the cache lines at `address` (`lines` of 64 bytes), for an object about to be used.
static inline void creactor_prefetch(const void *address, int lines) {
    for (int line = 0; line < lines; line++) __builtin_prefetch((const char *)address + 64 * line);
}

static const int CREACTOR_MSG_NOSIGNAL = 0x4000;
static const int CREACTOR_SOCK_NONBLOCK = 04000;
static const int CREACTOR_SOCK_CLOEXEC = 02000000;
#endif
