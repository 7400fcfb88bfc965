#define _GNU_SOURCE
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>
#include <pthread.h>
#include "CReactor.h"

// accept4 and pipe2 are GNU extensions, hidden from Swift unless _GNU_SOURCE is set for the whole module.
int creactor_accept4(int fd, int flags) { return accept4(fd, 0, 0, flags); }
int creactor_pipe2(int fds[2], int flags) { return pipe2(fds, flags); }
int creactor_set_thread_name(const char *name) { return pthread_setname_np(pthread_self(), name); }
