#define _GNU_SOURCE
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <errno.h>
#include <string.h>
#include "CReactor.h"

// accept4 and pipe2 are GNU extensions, hidden from Swift unless _GNU_SOURCE is set for the whole module.
int creactor_accept4(int fd, int flags) { return accept4(fd, 0, 0, flags); }
int creactor_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }
int creactor_set_thread_name(const char *name) { return pthread_setname_np(pthread_self(), name); }

// Registered pipes, read by the handler with atomic loads; a slot is -1 when free.
#define CREACTOR_SIGNAL_SLOTS 64
static int signal_pipes[CREACTOR_SIGNAL_SLOTS] = {
    [0 ... CREACTOR_SIGNAL_SLOTS - 1] = -1
};
static pthread_mutex_t signal_lock = PTHREAD_MUTEX_INITIALIZER;

static void creactor_signal_handler(int signo) {
    int saved = errno;
    unsigned char byte = (unsigned char)signo;
    for (int i = 0; i < CREACTOR_SIGNAL_SLOTS; i++) {
        int fd = __atomic_load_n(&signal_pipes[i], __ATOMIC_ACQUIRE);
        if (fd >= 0) { ssize_t ignored = write(fd, &byte, 1); (void)ignored; }
    }
    errno = saved;
}

int creactor_signal_pipe_add(int write_fd) {
    int added = -1;
    pthread_mutex_lock(&signal_lock);
    for (int i = 0; i < CREACTOR_SIGNAL_SLOTS; i++) {
        if (__atomic_load_n(&signal_pipes[i], __ATOMIC_ACQUIRE) < 0) {
            __atomic_store_n(&signal_pipes[i], write_fd, __ATOMIC_RELEASE);
            added = 0;
            break;
        }
    }
    pthread_mutex_unlock(&signal_lock);
    return added;
}

void creactor_signal_pipe_remove(int write_fd) {
    pthread_mutex_lock(&signal_lock);
    for (int i = 0; i < CREACTOR_SIGNAL_SLOTS; i++) {
        if (__atomic_load_n(&signal_pipes[i], __ATOMIC_ACQUIRE) == write_fd) {
            __atomic_store_n(&signal_pipes[i], -1, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&signal_lock);
}

int creactor_signal_install(int signo) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = creactor_signal_handler;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    if (sigaction(signo, &action, 0) != 0) return -1;
    // A parent may have started us with the signal blocked (test runners and some supervisors do).
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, signo);
    return pthread_sigmask(SIG_UNBLOCK, &mask, 0);
}
