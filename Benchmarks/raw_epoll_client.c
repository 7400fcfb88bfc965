/* The reference point for the fan-out benchmark: fetch a poem from every address at once with raw epoll,
 * no framework, counting bytes. Usage: raw_epoll_client PORT COUNT [poll]  (host 127.0.0.1)
 * With "poll", the same loop waits with poll(2) on every open socket instead: poll's cost with no framework. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

int main(int argc, char **argv) {
    if (argc != 3 && !(argc == 4 && strcmp(argv[3], "poll") == 0)) { fprintf(stderr, "usage: %s PORT COUNT [poll]\n", argv[0]); return 2; }
    int port = atoi(argv[1]), count = atoi(argv[2]);
    int use_poll = argc == 4;
    struct pollfd *fds = calloc(count, sizeof(struct pollfd));
    int ep = epoll_create1(0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    long *received = calloc(count + 1024, sizeof(long));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < count; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fd < 0) { perror("socket"); return 1; }
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) { perror("connect"); return 1; }
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
        if (!use_poll) epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        fds[i] = (struct pollfd){ .fd = fd, .events = POLLIN };
    }
    int open = count, failed = 0;
    long total = 0;
    struct epoll_event events[1024];
    char buf[65536];
    while (open > 0 && use_poll) {
        if (poll(fds, open, -1) < 0) { perror("poll"); return 1; }
        for (int i = 0; i < open; i++) {
            if (!fds[i].revents) continue;
            int fd = fds[i].fd;
            for (;;) {
                ssize_t r = recv(fd, buf, sizeof buf, 0);
                if (r > 0) { received[fd] += r; total += r; continue; }
                if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                if (r < 0) failed++;
                close(fd);
                fds[i--] = fds[--open];  /* the last one takes this slot and is looked at next */
                break;
            }
        }
    }
    while (open > 0 && !use_poll) {
        int n = epoll_wait(ep, events, 1024, -1);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            for (;;) {
                ssize_t r = recv(fd, buf, sizeof buf, 0);
                if (r > 0) { received[fd] += r; total += r; continue; }
                if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                if (r < 0) failed++;
                epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
                close(fd);
                open--;
                break;
            }
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("Got %d poems (%ld bytes, %d failed) in %.3f s\n", count - failed, total, failed,
           (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    return failed ? 1 : 0;
}
