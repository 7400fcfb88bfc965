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

static const int CREACTOR_MSG_NOSIGNAL = 0x4000;
static const int CREACTOR_SOCK_NONBLOCK = 04000;
static const int CREACTOR_SOCK_CLOEXEC = 02000000;
#endif
