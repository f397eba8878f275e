/* The zygote's loop in C: the common run, from reading a task to reporting its cleanup, without running
 * a line of Python in the zygote.
 *
 * Why: the zygote forks a child for every run, and after each fork every page the zygote writes to is
 * copied (copy-on-write). Its Python loop wrote to some 150 pages per run (reference counts, frames,
 * the objects of a parse), each a page fault and a copy; this loop writes to a handful. Loaded with
 * ctypes.PyDLL by worker.py (which holds the interpreter lock, as os.fork needs), given a `struct loop`
 * the worker fills in. It returns to Python for everything that is not the common case, at a point
 * where Python's own loop (worker.serve_one) can take over:
 *
 *   LOOP_CHILD   in a freshly forked spare child, set up (session, descriptors, name, OOM preference):
 *                Python runs the node (nodeproc.serve_task).
 *   LOOP_END     input ended, or broke the protocol: the zygote ends.
 *   LOOP_PYTHON  a control frame unlike the last one Python read (it is in `frame`), or no spare could
 *                be forked (`frame_len` is -1, nothing read): Python serves this task itself.
 *   LOOP_FINISH  the run was answered and its child reaped, but a process outlived it or a scratch
 *                place is not empty: Python sweeps, cleans and reports.
 *
 * Standard C and Linux only; the interpreter's three fork hooks are the only Python it calls. The
 * buffers that hold a run's output are never inherited by a child (MADV_DONTFORK).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern void PyOS_BeforeFork(void);
extern void PyOS_AfterFork_Parent(void);
extern void PyOS_AfterFork_Child(void);

enum { LOOP_CHILD = 0, LOOP_END = 1, LOOP_PYTHON = 2, LOOP_FINISH = 3 };

#define MAX_TASK_BYTES (256u * 1024u * 1024u)
#define SPILL_BYTES 65536
#define KEEP_BYTES 65536  /* buffer pages kept resident between runs; more is given back */
#define SCRATCH_BYTES 4096

/* Mirrored field for field by worker.LoopState (ctypes); pyflow_loop_size() lets it check. */
struct loop {
    int32_t infd, outfd, pid_namespace, terms_set;
    double timeout_s;               /* the terms of the control frame Python last parsed */
    int64_t stdout_cap, result_cap; /* result_cap: the result frame's cap (worker.answer_caps) */
    char *scratch;                  /* NUL-terminated paths, an empty one last */
    char *control;                  /* that control frame, to compare (never parsed here) */
    int64_t control_len, control_size;
    char *frame;                    /* the control frame just read (frame_len -1: none was) */
    int64_t frame_len, frame_size;
    int32_t spare_pid, spare_task_w, spare_out_r, spare_res_r;
    int32_t child_task_r, child_res_w, child_name_fd;
    char *out, *res, *spill;        /* output buffers, MADV_DONTFORK */
    int64_t out_size, res_size, spill_size;
};

int64_t pyflow_loop_size(void) { return (int64_t)sizeof(struct loop); }

struct run {  /* one run's collection */
    pid_t pid;
    int out_r, res_r, pidfd;
    int64_t out_len, out_seen, res_len, res_seen;
    int res_ended, reaped, status;
    const char *violation;
};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void close_quietly(int fd) {
    if (fd >= 0) close(fd);
}

/* A buffer of at least `need` bytes that no child inherits. */
static int ensure(char **buf, int64_t *size, int64_t need) {
    if (*buf && *size >= need) return 0;
    int64_t want = need < 4096 ? 4096 : need;
    char *fresh = mmap(NULL, (size_t)want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (fresh == MAP_FAILED) return -1;
    madvise(fresh, (size_t)want, MADV_DONTFORK);
    if (*buf) munmap(*buf, (size_t)*size);
    *buf = fresh;
    *size = want;
    return 0;
}

/* Read exactly `size` bytes; 1 when done, 0 at end of input before any byte, -1 otherwise. */
static int read_exact(int fd, char *into, size_t size) {
    size_t done = 0;
    while (done < size) {
        ssize_t got = read(fd, into + done, size - done);
        if (got > 0) { done += (size_t)got; continue; }
        if (got < 0 && errno == EINTR) continue;
        return done == 0 && got == 0 ? 0 : -1;
    }
    return 1;
}

/* A frame's announced length: 1 when read, 0 at a clean end of input, -1 when broken or too large. */
static int read_length(int fd, uint32_t *size) {
    unsigned char head[4];
    int got = read_exact(fd, (char *)head, 4);
    if (got <= 0) return got;
    *size = (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 | (uint32_t)head[2] << 8 | head[3];
    return *size > MAX_TASK_BYTES ? -1 : 1;
}

static void put_length(unsigned char *head, size_t size) {
    head[0] = (unsigned char)(size >> 24); head[1] = (unsigned char)(size >> 16);
    head[2] = (unsigned char)(size >> 8); head[3] = (unsigned char)size;
}

/* Write every byte of the vector (blocking); 0 when done, -1 when the reader is gone. */
static int write_all(int fd, struct iovec *v, int count) {
    while (count > 0) {
        ssize_t put = writev(fd, v, count);
        if (put < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        while (count > 0 && (size_t)put >= v->iov_len) { put -= (ssize_t)v->iov_len; v++; count--; }
        if (count > 0) { v->iov_base = (char *)v->iov_base + put; v->iov_len -= (size_t)put; }
    }
    return 0;
}

static void close_from(unsigned first, unsigned last) {
    if (first > last) return;
    if (syscall(SYS_close_range, first, last, 0) == 0) return;
    for (unsigned fd = first; fd <= last && fd < 65536; fd++) close((int)fd);
}

/* In a fresh child: the OOM killer's first choice, and /proc/self/comm open for writing (the child names
 * itself pyflow-node when its task comes), or -1. A child is undumpable like the zygote, so that no node
 * can trace the spare that will take the next run; but /proc/self of an undumpable process is root's,
 * which nobody in the sandbox is. So both are done while the child is briefly dumpable: when a spare
 * is forked, nothing else runs in the sandbox (the last run's processes were swept), so nothing can
 * trace it meanwhile. nodeproc._own_settings is the same for the loop in Python. */
static int own_settings(void) {
    int dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
    if (dumpable == 0) prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, "1000", 4) < 0) { /* the node may still run: only its OOM preference is lost */ }
        close(fd);
    }
    int name_fd = open("/proc/self/comm", O_WRONLY | O_CLOEXEC);
    if (dumpable == 0) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    return name_fd;
}

/* In the child: what nodeproc.run_child did first, without touching the interpreter's memory. */
static int child_setup(struct loop *L, int task_r, int out_w, int res_w, pid_t zygote) {
    PyOS_AfterFork_Child();
    if (!L->pid_namespace) {  /* in a namespace, the end of its pid 1 (the zygote) ends the child */
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        if (getppid() != zygote) _exit(0);
    }
    setsid();
    dup2(out_w, 1);
    dup2(out_w, 2);
    close(out_w);
    int low = task_r < res_w ? task_r : res_w, high = task_r < res_w ? res_w : task_r;
    close_from(3, (unsigned)low - 1);
    close_from((unsigned)low + 1, (unsigned)high - 1);
    close_from((unsigned)high + 1, ~0u);
    L->child_name_fd = own_settings();
    prctl(PR_SET_NAME, "pyflow-spare", 0, 0, 0);
    L->child_task_r = task_r;
    L->child_res_w = res_w;
    return LOOP_CHILD;
}

/* Fork the next run's spare: 1 in the zygote, LOOP_CHILD in the child, -1 when it cannot now. */
static int fork_spare(struct loop *L) {
    int t[2], o[2], r[2];
    if (pipe2(t, O_CLOEXEC)) return -1;
    if (pipe2(o, O_CLOEXEC)) { close(t[0]); close(t[1]); return -1; }
    if (pipe2(r, O_CLOEXEC)) { close(t[0]); close(t[1]); close(o[0]); close(o[1]); return -1; }
    pid_t zygote = getpid();
    PyOS_BeforeFork();
    pid_t pid = fork();
    if (pid == 0) {
        close(t[1]); close(o[0]); close(r[0]);
        return child_setup(L, t[0], o[1], r[1], zygote);
    }
    PyOS_AfterFork_Parent();
    close(t[0]); close(o[1]); close(r[1]);
    if (pid < 0) { close(t[1]); close(o[0]); close(r[0]); return -1; }
    fcntl(o[0], F_SETFL, O_NONBLOCK);  /* the zygote's ends only: the child's writes must block */
    fcntl(r[0], F_SETFL, O_NONBLOCK);
    L->spare_pid = pid; L->spare_task_w = t[1]; L->spare_out_r = o[0]; L->spare_res_r = r[0];
    return 1;
}

static void forget_spare(struct loop *L) {
    L->spare_pid = 0;
    L->spare_task_w = L->spare_out_r = L->spare_res_r = -1;
}

/* End a spare that will not run (input ended, or it died before taking its task). */
static void discard_spare(struct loop *L) {
    if (!L->spare_pid) return;
    close_quietly(L->spare_task_w); close_quietly(L->spare_out_r); close_quietly(L->spare_res_r);
    kill(L->spare_pid, SIGKILL);
    while (waitpid(L->spare_pid, NULL, 0) < 0 && errno == EINTR) {}
    forget_spare(L);
}

/* Hand the task to the spare; when it died waiting, to a freshly forked one. 1 when handed, 0 when no
 * child took it, LOOP_CHILD in a child forked here. */
static int hand(struct loop *L, char *node, uint32_t node_len, struct run *R) {
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!L->spare_pid) {
            int forked = fork_spare(L);
            if (forked == LOOP_CHILD) return LOOP_CHILD;
            if (forked < 0) return 0;
        }
        unsigned char h1[4], h2[4];
        put_length(h1, (size_t)L->frame_len);
        put_length(h2, node_len);
        struct iovec v[4] = {{h1, 4}, {L->frame, (size_t)L->frame_len}, {h2, 4}, {node, node_len}};
        int failed = write_all(L->spare_task_w, v, 4);
        close(L->spare_task_w);
        L->spare_task_w = -1;
        if (!failed) {
            R->pid = L->spare_pid; R->out_r = L->spare_out_r; R->res_r = L->spare_res_r;
            forget_spare(L);
            return 1;
        }
        discard_spare(L);
    }
    return 0;
}

static void reap(struct run *R, int block) {
    int status = 0;
    pid_t got;
    while ((got = waitpid(R->pid, &status, block ? 0 : WNOHANG)) < 0 && errno == EINTR) {}
    if (got == R->pid) { R->reaped = 1; R->status = status; }
    else if (got < 0) { R->reaped = 1; R->status = 0; }  /* ECHILD: already collected */
}

static void kill_child(struct run *R) {
    kill(-R->pid, SIGKILL);
    kill(R->pid, SIGKILL);
    reap(R, 1);
}

/* Read what one pipe holds (a few reads at most, so a flood cannot hold off the deadline); bytes past
 * the cap are counted only. Returns 1 when the pipe has ended. */
static int read_ready(struct loop *L, int fd, char *buf, int64_t cap, int64_t *len, int64_t *seen) {
    for (int i = 0; i < 4; i++) {
        char *into = *len < cap ? buf + *len : L->spill;
        size_t room = *len < cap ? (size_t)(cap - *len) : SPILL_BYTES;
        ssize_t got = read(fd, into, room);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && errno == EAGAIN) return 0;
        if (got <= 0) return 1;
        *seen += got;
        *len = *len + got < cap ? *len + got : cap;
    }
    return 0;
}

/* poll entries: 0 stdout, 1 result, 2 the child's pidfd; a negative fd is no longer watched. */
static void read_polled(struct loop *L, struct run *R, struct pollfd *p) {
    if (p[0].fd >= 0 && p[0].revents &&
        read_ready(L, p[0].fd, L->out, L->stdout_cap, &R->out_len, &R->out_seen)) p[0].fd = -1;
    if (p[1].fd >= 0 && p[1].revents &&
        read_ready(L, p[1].fd, L->res, L->result_cap + 1, &R->res_len, &R->res_seen)) {
        p[1].fd = -1;
        R->res_ended = 1;
    }
    if (p[2].fd >= 0 && p[2].revents) {
        reap(R, 0);
        if (R->reaped) p[2].fd = -1;
    }
}

/* worker.Collector.collect: until the child has exited or its result is complete; kills it on a
 * missed deadline or a result over its cap; then reads what is buffered, without waiting. */
static void collect(struct loop *L, struct run *R, double deadline) {
    struct pollfd p[3] = {{R->out_r, POLLIN, 0}, {R->res_r, POLLIN, 0}, {R->pidfd, POLLIN, 0}};
    while (!R->reaped && !(R->res_ended && R->res_seen)) {
        double remaining = deadline - now();
        if (remaining <= 0) { kill_child(R); R->violation = "timeout"; return; }
        int wait_ms = (int)((remaining < 1.0 ? remaining : 1.0) * 1000) + 1;
        if (R->pidfd < 0 && wait_ms > 50) wait_ms = 50;  /* no pidfd: look for the exit now and then */
        int ready = poll(p, 3, wait_ms);
        if (ready < 0 && errno != EINTR) { kill_child(R); R->violation = "crashed"; return; }
        if (ready > 0) read_polled(L, R, p);
        if (R->pidfd < 0 && !R->reaped) reap(R, 0);
        if (R->res_seen >= L->result_cap + 1) { kill_child(R); R->violation = "result_too_large"; return; }
    }
    for (int i = 0; i < 64; i++) {  /* bounded: a straggler may still be writing */
        p[2].fd = -1;
        if (poll(p, 2, 0) <= 0) break;
        read_polled(L, R, p);
    }
    if (R->res_seen >= L->result_cap + 1) R->violation = "result_too_large";
}

/* The run header (facts; the host words them) and the three answer frames, in one write. */
static int answer(struct loop *L, struct run *R, double duration_ms) {
    char head[256], status[16] = "null", violation[32] = "null";
    if (R->reaped) snprintf(status, sizeof status, "%d", R->status);
    if (R->violation) snprintf(violation, sizeof violation, "\"%s\"", R->violation);
    int n = snprintf(head, sizeof head, "{\"violation\": %s, \"status\": %s, \"stdout_seen\": %lld, "
                     "\"stdout_cap\": %lld, \"duration_ms\": %.3f}", violation, status,
                     (long long)R->out_seen, (long long)L->stdout_cap, duration_ms);
    if (n < 0 || (size_t)n >= sizeof head) return -1;  /* cannot happen with these fields; never read past */
    int64_t res_len = R->violation ? 0 : R->res_len;
    unsigned char h1[4], h2[4], h3[4];
    put_length(h1, (size_t)n); put_length(h2, (size_t)R->out_len); put_length(h3, (size_t)res_len);
    struct iovec v[6] = {{h1, 4}, {head, (size_t)n}, {h2, 4}, {L->out, (size_t)R->out_len},
                         {h3, 4}, {L->res, (size_t)res_len}};
    return write_all(L->outfd, v, 6);
}

static int write_frame(int fd, const char *data, size_t size) {
    unsigned char h[4];
    put_length(h, size);
    struct iovec v[2] = {{h, 4}, {(void *)data, size}};
    return write_all(fd, v, 2);
}

/* Whether a scratch place is as it should be after a run: missing, not a folder, or an empty folder
 * still the owner's to write (worker.clean_scratch's common case). Names read are wiped. */
static int scratch_clean(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return 1;
    if ((st.st_mode & 0700) != 0700) return 0;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return 0;
    char buf[4096];
    int clean = 1;
    long got;
    while (clean && (got = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
        for (long at = 0; at < got;) {
            unsigned short reclen = *(unsigned short *)(buf + at + 16);
            const char *name = buf + at + 19;
            if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0) { clean = 0; break; }
            at += reclen;
        }
    }
    if (got < 0) clean = 0;
    explicit_bzero(buf, sizeof buf);  /* a name a node chose is not left on the stack children inherit */
    close(fd);
    return clean;
}

/* After the answer: reap the child, close its pipes; then whether anything is left to clean. */
static int finish(struct loop *L, struct run *R) {
    if (!R->reaped) kill_child(R);
    close_quietly(R->out_r); close_quietly(R->res_r); close_quietly(R->pidfd);
    if (R->out_len > KEEP_BYTES) madvise(L->out, (size_t)L->out_size, MADV_DONTNEED);
    if (R->res_len > KEEP_BYTES) madvise(L->res, (size_t)L->res_size, MADV_DONTNEED);
    /* kill(-1) only as the namespace's pid 1, where it reaches nothing but the sandbox's processes */
    if (L->pid_namespace && (getpid() != 1 || kill(-1, SIGKILL) == 0 || errno != ESRCH)) return 0;
    for (const char *path = L->scratch; path && *path; path += strlen(path) + 1)
        if (!scratch_clean(path)) return 0;
    return 1;
}

/* worker.serve_one's answer when it could not run a task: an error of its own, and a request to be
 * replaced. -1 when written (serve on), LOOP_END when the host is gone too. */
static int refuse(struct loop *L, const char *why) {
    char head[512];
    int n = snprintf(head, sizeof head, "{\"error\": {\"type\": \"WorkerError\", \"message\": \"%s\", "
                     "\"traceback\": []}, \"violation\": \"crashed\", \"recycle\": \"worker error\", "
                     "\"stdout_seen\": 0, \"stdout_cap\": 0, \"duration_ms\": 0}", why);
    if (n < 0 || (size_t)n >= sizeof head) return LOOP_END;
    static const char report[] = "{\"recycle\": \"worker error\"}";
    unsigned char zero[4] = {0, 0, 0, 0};
    struct iovec v[2] = {{zero, 4}, {zero, 4}};
    if (write_frame(L->outfd, head, (size_t)n) || write_all(L->outfd, v, 2) ||
        write_frame(L->outfd, report, sizeof report - 1)) return LOOP_END;
    return -1;
}

static int serve_task(struct loop *L) {
    uint32_t node_len;
    if (read_length(L->infd, &node_len) != 1) {
        refuse(L, "the task's node frame is missing or too large");
        return LOOP_END;
    }
    size_t mapped = node_len ? node_len : 1;
    char *node = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (node == MAP_FAILED) return LOOP_END;
    if (read_exact(L->infd, node, node_len) != 1) {
        munmap(node, mapped);
        refuse(L, "input ended inside a frame");
        return LOOP_END;
    }
    struct run R = {.out_r = -1, .res_r = -1, .pidfd = -1};
    double started = now();
    int handed = hand(L, node, node_len, &R);
    munmap(node, mapped);
    if (handed == LOOP_CHILD) return LOOP_CHILD;
    if (!handed) return refuse(L, "the node's child ended before it received its task");
    R.pidfd = (int)syscall(SYS_pidfd_open, R.pid, 0);
    collect(L, &R, started + L->timeout_s);
    if (answer(L, &R, (now() - started) * 1000)) { finish(L, &R); return LOOP_END; }
    if (!finish(L, &R)) return LOOP_FINISH;
    static const char clean[] = "{\"recycle\": null}";
    return write_frame(L->outfd, clean, sizeof clean - 1) ? LOOP_END : -1;
}

/* The loop: serve tasks while they are common; return to Python for anything else (see the top). */
int pyflow_loop(struct loop *L) {
    if (ensure(&L->out, &L->out_size, L->stdout_cap > 0 ? L->stdout_cap : 1) ||
        ensure(&L->res, &L->res_size, L->result_cap + 1) || ensure(&L->spill, &L->spill_size, SPILL_BYTES))
        return LOOP_PYTHON;
    for (;;) {
        L->frame_len = -1;
        if (!L->spare_pid) {
            int forked = fork_spare(L);
            if (forked == LOOP_CHILD) return LOOP_CHILD;
            if (forked < 0) return LOOP_PYTHON;
        }
        uint32_t size;
        int got = read_length(L->infd, &size);
        if (got == 1 && ensure(&L->frame, &L->frame_size, size) == 0 && read_exact(L->infd, L->frame, size) == 1) {
            L->frame_len = size;
        } else {
            discard_spare(L);
            return LOOP_END;
        }
        if (!L->terms_set || L->frame_len != L->control_len || memcmp(L->frame, L->control, (size_t)size) != 0)
            return LOOP_PYTHON;
        int served = serve_task(L);
        if (served == LOOP_END) discard_spare(L);
        if (served >= 0) return served;
    }
}

/* Keep the control frame Python just parsed, to recognise the next one like it. */
int pyflow_loop_keep_control(struct loop *L) {
    if (L->frame_len < 0 || ensure(&L->control, &L->control_size, L->frame_len ? L->frame_len : 1)) return -1;
    memcpy(L->control, L->frame, (size_t)L->frame_len);
    L->control_len = L->frame_len;
    return 0;
}
