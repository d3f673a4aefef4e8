/*
 * A desktop "device" for testing the serial protocol library, not learning.
 *
 * The learner behind the ops struct is a FAKE: its state is a byte array with a
 * CRC-32 at the end, and each command changes it in a simple, visible way (learn
 * stores the task and vectors it received, and stirs the rest). That is enough to
 * see whether the protocol delivered the right bytes to the right callback and
 * whether a rejected frame changed anything. Learning itself is tested elsewhere.
 *
 * Modes (the first line on stdout describes the fake's sizes and layout):
 *   fake_device tcp [options]   serve lpn_protocol on 127.0.0.1:<port>, one
 *                               client after another, until stdin closes
 *   fake_device pty [options]   the same on a pseudo-terminal (a real tty)
 *   fake_device cobs            framing checks: records on stdin, results on stdout
 * Options:
 *   --max-frame N       the dispatcher's frame limit (default 256)
 *   --no-state-buffer   no staging buffer: state transfers are unsupported
 *   --drop-every N      lose every Nth reply on the way out, as a noisy line would
 *   --garble-every N    flip a bit in every Nth incoming frame
 */
#define _DEFAULT_SOURCE
#define _XOPEN_SOURCE 600

#include "lpn_protocol.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

/* ---- The fake learner ------------------------------------------------- */

#define FAKE_INPUTS 20
#define FAKE_OUTPUTS 6
#define FAKE_TASKS 3
#define FAKE_LAYERS 2
#define FAKE_STATE_BYTES 1000
#define OFF_STEP 0
#define OFF_TASK 4
#define OFF_X 5
#define OFF_T (OFF_X + 2 * FAKE_INPUTS)
#define OFF_MEM (OFF_T + 2 * FAKE_OUTPUTS)
#define OFF_CRC (FAKE_STATE_BYTES - 4)
#define MEM_BYTES (OFF_CRC - OFF_MEM)
/* replay(REPLAY_ALIEN) returns a code outside the learner's range. */
#define REPLAY_ALIEN 0xFFFFu
#define ALIEN_CODE (-100)

/* Status values of lpn_core.h's lpn_status, which the protocol passes through. */
#define FAKE_ERR_LENGTH (-2)
#define FAKE_ERR_TASK (-3)
#define FAKE_ERR_REPLAY_EMPTY (-4)
#define FAKE_ERR_DISABLED (-5)
#define FAKE_ERR_STATE (-6)

struct fake {
    uint8_t state[FAKE_STATE_BYTES];
};

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void seal(struct fake *f)
{
    wr32(f->state + OFF_CRC, lpn_crc32_update(0u, f->state, OFF_CRC));
}

static void bump(struct fake *f, uint32_t n)
{
    wr32(f->state + OFF_STEP, rd32(f->state + OFF_STEP) + n);
}

static int fake_reset(void *ctx)
{
    struct fake *f = ctx;
    int k;
    memset(f->state, 0, sizeof f->state);
    for (k = 0; k < MEM_BYTES; k++) {
        f->state[OFF_MEM + k] = (uint8_t)(k * 7 + 3);
    }
    seal(f);
    return 0;
}

static int fake_info(void *ctx, struct lpn_learner_info *info)
{
    int i;
    (void)ctx;
    info->inputs = FAKE_INPUTS;
    info->outputs = FAKE_OUTPUTS;
    info->tasks = FAKE_TASKS;
    info->layers = FAKE_LAYERS;
    info->state_bytes = FAKE_STATE_BYTES;
    info->synapses = 1234;
    info->free_ram = 4321;
    for (i = 0; i < 32; i++) {
        info->model_hash[i] = (uint8_t)(i * 7 + 1);
    }
    info->firmware_version = "fake-1.0";
    info->board = "desktop-fake-board-with-a-long-name";
    return 0;
}

static int16_t sat16(int32_t v)
{
    return (int16_t)(v > 32767 ? 32767 : (v < -32768 ? -32768 : v));
}

static int fake_predict(void *ctx, uint8_t task, const int16_t *x, int16_t *y)
{
    struct fake *f = ctx;
    int j;
    int best = -1;
    for (j = 0; j < FAKE_OUTPUTS; j++) {
        y[j] = sat16((int32_t)x[j] - (int32_t)x[FAKE_INPUTS - 1 - j] + (int32_t)f->state[OFF_MEM + j]);
        if (task != LPN_PROTO_ALL_TASKS && j % FAKE_TASKS != task) {
            continue;
        }
        if (best < 0 || y[j] > y[best]) {
            best = j;
        }
    }
    return best;
}

static int fake_learn(void *ctx, uint8_t task, const int16_t *x, const int16_t *t)
{
    struct fake *f = ctx;
    int k;
    uint32_t step;
    if (task >= FAKE_TASKS) {
        return FAKE_ERR_TASK;
    }
    bump(f, 1u);
    step = rd32(f->state + OFF_STEP);
    f->state[OFF_TASK] = task;
    for (k = 0; k < FAKE_INPUTS; k++) {
        f->state[OFF_X + 2 * k] = (uint8_t)((uint16_t)x[k] & 0xFFu);
        f->state[OFF_X + 2 * k + 1] = (uint8_t)((uint16_t)x[k] >> 8);
    }
    for (k = 0; k < FAKE_OUTPUTS; k++) {
        f->state[OFF_T + 2 * k] = (uint8_t)((uint16_t)t[k] & 0xFFu);
        f->state[OFF_T + 2 * k + 1] = (uint8_t)((uint16_t)t[k] >> 8);
    }
    for (k = 0; k < MEM_BYTES; k++) {
        uint32_t v = (uint32_t)f->state[OFF_MEM + k] * 31u + (uint16_t)x[k % FAKE_INPUTS] +
                     (uint16_t)t[k % FAKE_OUTPUTS] + task + step;
        f->state[OFF_MEM + k] = (uint8_t)v;
    }
    seal(f);
    return 0;
}

static int fake_contrast(void *ctx, const int16_t *x)
{
    (void)ctx;
    (void)x;
    return FAKE_ERR_DISABLED; /* the fake has no contrastive layer */
}

static int fake_consolidate(void *ctx)
{
    struct fake *f = ctx;
    int k;
    bump(f, 1u);
    for (k = 0; k < MEM_BYTES; k++) {
        f->state[OFF_MEM + k] ^= 0x5Au;
    }
    seal(f);
    return 0;
}

static int fake_replay(void *ctx, uint16_t count)
{
    struct fake *f = ctx;
    int k;
    if (count == REPLAY_ALIEN) {
        return ALIEN_CODE;
    }
    if (rd32(f->state + OFF_STEP) == 0u) {
        return FAKE_ERR_REPLAY_EMPTY;
    }
    bump(f, count);
    for (k = 0; k < MEM_BYTES; k++) {
        f->state[OFF_MEM + k] = (uint8_t)(f->state[OFF_MEM + k] + count);
    }
    seal(f);
    return 0;
}

static int fake_structural(void *ctx)
{
    struct fake *f = ctx;
    uint8_t first = f->state[OFF_MEM];
    bump(f, 1u);
    memmove(f->state + OFF_MEM, f->state + OFF_MEM + 1, MEM_BYTES - 1);
    f->state[OFF_MEM + MEM_BYTES - 1] = first;
    seal(f);
    return 0;
}

/* saturations carries the state's CRC: the fuzz test's one-frame state hash. */
static int fake_stats(void *ctx, struct lpn_learner_stats *s)
{
    struct fake *f = ctx;
    int l;
    uint32_t step = rd32(f->state + OFF_STEP);
    s->step = step;
    s->saturations = rd32(f->state + OFF_CRC);
    s->seen = step / 2u;
    s->task = f->state[OFF_TASK];
    for (l = 0; l < FAKE_LAYERS; l++) {
        s->layer[l].budget = (uint16_t)(10 + l);
        s->layer[l].loss_fast = -(int32_t)(step & 0xFFFFu) - l;
        s->layer[l].loss_slow = (int32_t)(step & 0xFFFFu) * 1000 + l;
    }
    return 0;
}

static int fake_export(void *ctx, uint8_t *out, size_t size)
{
    struct fake *f = ctx;
    if (size != FAKE_STATE_BYTES) {
        return FAKE_ERR_LENGTH;
    }
    memcpy(out, f->state, size);
    return 0;
}

static int fake_import(void *ctx, const uint8_t *in, size_t size)
{
    struct fake *f = ctx;
    if (size != FAKE_STATE_BYTES) {
        return FAKE_ERR_LENGTH;
    }
    if (lpn_crc32_update(0u, in, OFF_CRC) != rd32(in + OFF_CRC) || in[OFF_TASK] >= FAKE_TASKS) {
        return FAKE_ERR_STATE;
    }
    memcpy(f->state, in, size);
    return 0;
}

/* ---- The link ---------------------------------------------------------- */

struct link {
    int fd;
    int is_socket;
    unsigned drop_every;
    unsigned writes;
    unsigned garble_every;
    unsigned delimiters;
    int garble_next;
};

static int link_write(void *ctx, const uint8_t *bytes, size_t length)
{
    struct link *l = ctx;
    l->writes++;
    if (l->drop_every != 0u && l->writes % l->drop_every == 0u) {
        return 0; /* lost on the line; the host has to ask again */
    }
    while (length > 0u) {
        ssize_t sent = l->is_socket ? send(l->fd, bytes, length, MSG_NOSIGNAL) : write(l->fd, bytes, length);
        if (sent < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            return -3;
        }
        bytes += sent;
        length -= (size_t)sent;
    }
    return 0;
}

static uint8_t garble(struct link *l, uint8_t byte)
{
    if (byte == 0u) {
        l->delimiters++;
        if (l->garble_every != 0u && l->delimiters % l->garble_every == 0u) {
            l->garble_next = 1;
        }
        return byte;
    }
    if (l->garble_next) {
        l->garble_next = 0;
        return byte == 0x40u ? 0x41u : (uint8_t)(byte ^ 0x40u);
    }
    return byte;
}

#define MAX_FRAME_LIMIT LPN_PROTO_MAX_FRAME
static uint8_t rx_buffer[LPN_PROTOCOL_BUFFER_SIZE(MAX_FRAME_LIMIT)];
static uint8_t tx_buffer[LPN_PROTOCOL_BUFFER_SIZE(MAX_FRAME_LIMIT)];
static int16_t vectors[FAKE_INPUTS + FAKE_OUTPUTS];
static uint8_t state_buffer[FAKE_STATE_BYTES];

static const struct lpn_learner_ops *fake_ops(struct fake *f)
{
    static struct lpn_learner_ops ops;
    ops.context = f;
    ops.info = fake_info;
    ops.predict = fake_predict;
    ops.learn = fake_learn;
    ops.contrast = fake_contrast;
    ops.consolidate = fake_consolidate;
    ops.replay = fake_replay;
    ops.structural = fake_structural;
    ops.stats = fake_stats;
    ops.export_state = fake_export;
    ops.import_state = fake_import;
    ops.reset = fake_reset;
    ops.save = NULL; /* persistence does not exist yet: unsupported */
    ops.load = NULL;
    return &ops;
}

/* Serves one connection until it closes (1) or stdin closes (0). */
static int serve(struct lpn_protocol *p, struct link *l)
{
    uint8_t buf[4096];
    for (;;) {
        struct pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {l->fd, POLLIN, 0}};
        ssize_t got;
        ssize_t i;
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            return 0;
        }
        if (fds[0].revents != 0) {
            char ignored[64];
            if (read(STDIN_FILENO, ignored, sizeof ignored) <= 0) {
                return 0;
            }
        }
        if (fds[1].revents == 0) {
            continue;
        }
        got = read(l->fd, buf, sizeof buf);
        if (got < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        if (got <= 0) {
            return 1;
        }
        for (i = 0; i < got; i++) {
            if (lpn_protocol_feed(p, garble(l, buf[i])) < 0) {
                return 1;
            }
        }
    }
}

static int describe(const char *where)
{
    printf("FAKE inputs=%d outputs=%d tasks=%d layers=%d state_bytes=%d off_step=%d off_task=%d off_x=%d "
           "off_t=%d off_mem=%d off_crc=%d replay_alien=%u %s\n",
           FAKE_INPUTS, FAKE_OUTPUTS, FAKE_TASKS, FAKE_LAYERS, FAKE_STATE_BYTES, OFF_STEP, OFF_TASK, OFF_X,
           OFF_T, OFF_MEM, OFF_CRC, REPLAY_ALIEN, where);
    return fflush(stdout);
}

static int run_device(int use_pty, unsigned max_frame, int state_buffer_on, unsigned drop_every,
                      unsigned garble_every)
{
    static struct fake f;
    struct lpn_protocol p;
    struct lpn_protocol_config cfg;
    struct link l;
    int listener = -1;

    fake_reset(&f);
    memset(&l, 0, sizeof l);
    l.drop_every = drop_every;
    l.garble_every = garble_every;
    memset(&cfg, 0, sizeof cfg);
    cfg.ops = fake_ops(&f);
    cfg.write = link_write;
    cfg.write_context = &l;
    cfg.max_frame = (uint16_t)max_frame;
    cfg.rx_buffer = rx_buffer;
    cfg.rx_size = LPN_PROTOCOL_BUFFER_SIZE(max_frame);
    cfg.tx_buffer = tx_buffer;
    cfg.tx_size = LPN_PROTOCOL_BUFFER_SIZE(max_frame);
    cfg.vectors = vectors;
    cfg.vectors_length = sizeof vectors / sizeof vectors[0];
    cfg.state_buffer = state_buffer_on ? state_buffer : NULL;
    cfg.state_buffer_size = state_buffer_on ? sizeof state_buffer : 0u;

    if (use_pty) {
        int slave;
        struct termios raw;
        char where[128];
        l.fd = posix_openpt(O_RDWR | O_NOCTTY);
        if (l.fd < 0 || grantpt(l.fd) != 0 || unlockpt(l.fd) != 0) {
            perror("pty");
            return 2;
        }
        /* Raw from the start, and kept open so the line stays up between clients. */
        slave = open(ptsname(l.fd), O_RDWR | O_NOCTTY);
        if (slave < 0 || tcgetattr(slave, &raw) != 0) {
            perror("pty slave");
            return 2;
        }
        cfmakeraw(&raw);
        tcsetattr(slave, TCSANOW, &raw);
        snprintf(where, sizeof where, "path=%s", ptsname(l.fd));
        describe(where);
        if (lpn_protocol_init(&p, &cfg) != 0) {
            fprintf(stderr, "lpn_protocol_init failed\n");
            return 2;
        }
        serve(&p, &l);
        close(slave);
        close(l.fd);
        return 0;
    } else {
        struct sockaddr_in addr;
        socklen_t len = sizeof addr;
        char where[64];
        memset(&addr, 0, sizeof addr);
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        listener = socket(AF_INET, SOCK_STREAM, 0);
        if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 ||
            listen(listener, 1) != 0 || getsockname(listener, (struct sockaddr *)&addr, &len) != 0) {
            perror("listen");
            return 2;
        }
        snprintf(where, sizeof where, "port=%u", (unsigned)ntohs(addr.sin_port));
        describe(where);
        l.is_socket = 1;
        for (;;) {
            struct pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {listener, POLLIN, 0}};
            int one = 1;
            if (poll(fds, 2, -1) < 0) {
                if (errno == EINTR) {
                    continue;
                }
                break;
            }
            if (fds[0].revents != 0) {
                break; /* stdin closed (or spoke): the test is done with us */
            }
            l.fd = accept(listener, NULL, NULL);
            if (l.fd < 0) {
                continue;
            }
            setsockopt(l.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            /* Like a board's reset line on connect: the protocol object (not the
             * learner) starts afresh, and its init sends the resync delimiter. */
            if (lpn_protocol_init(&p, &cfg) != 0) {
                fprintf(stderr, "lpn_protocol_init failed\n");
                return 2;
            }
            if (!serve(&p, &l)) {
                close(l.fd);
                break;
            }
            close(l.fd);
        }
        close(listener);
        return 0;
    }
}

/* ---- Framing checks ----------------------------------------------------
 * Records on stdin: [op u8][length u16 LE][data]. Replies on stdout:
 *   'E' encode:   [length u16][encoding]; aborts if the in-place encoding differs
 *   'D' decode:   [ok u8][length u16][decoded, or the prefix decoded before the fault];
 *                 aborts if decoding in place differs
 *   'A' assemble: data = [capacity u16][stream]; per event [kind u8 'R'|'O'][length u16][bytes]
 *                 then 'E' [0][0]. The buffer is heap-allocated at exactly `capacity`
 *                 bytes so the sanitizer catches any write past it.
 */
static int read_exact(uint8_t *to, size_t n)
{
    return fread(to, 1, n, stdin) == n;
}

static void write_u16(size_t v)
{
    uint8_t b[2] = {(uint8_t)(v & 0xFFu), (uint8_t)((v >> 8) & 0xFFu)};
    fwrite(b, 1, 2, stdout);
}

static int run_cobs(void)
{
    static uint8_t data[70000];
    static uint8_t out[80000];
    static uint8_t work[80000];
    uint8_t head[3];
    while (read_exact(head, 3)) {
        size_t n = (size_t)head[1] | ((size_t)head[2] << 8);
        if (!read_exact(data, n)) {
            return 1;
        }
        if (head[0] == 'E') {
            size_t len = lpn_cobs_encode(data, n, out, sizeof out);
            size_t shift = LPN_COBS_MAX_ENCODED(n) - n;
            size_t len2;
            memcpy(work + shift, data, n);
            len2 = lpn_cobs_encode(work + shift, n, work, LPN_COBS_MAX_ENCODED(n));
            if (len == 0u || len2 != len || memcmp(out, work, len) != 0) {
                abort();
            }
            write_u16(len);
            fwrite(out, 1, len, stdout);
        } else if (head[0] == 'D') {
            size_t done = 0;
            size_t done2 = 0;
            long r = lpn_cobs_decode(data, n, out, sizeof out, &done);
            long r2;
            memcpy(work, data, n);
            r2 = lpn_cobs_decode(work, n, work, n, &done2);
            if (r != r2 || done != done2 || memcmp(out, work, done) != 0) {
                abort();
            }
            fputc(r >= 0 ? 1 : 0, stdout);
            write_u16(done);
            fwrite(out, 1, done, stdout);
        } else if (head[0] == 'A') {
            size_t capacity = (size_t)data[0] | ((size_t)data[1] << 8);
            uint8_t *buffer = malloc(capacity ? capacity : 1u);
            struct lpn_frame_assembler fa;
            size_t i;
            lpn_frame_assembler_init(&fa, buffer, capacity);
            for (i = 2; i < n; i++) {
                enum lpn_frame_event ev = lpn_frame_assembler_feed(&fa, data[i]);
                if (ev != LPN_FRAME_MORE) {
                    fputc(ev == LPN_FRAME_READY ? 'R' : 'O', stdout);
                    write_u16(fa.length);
                    fwrite(fa.buffer, 1, fa.length, stdout);
                }
            }
            fputc('E', stdout);
            write_u16(0);
            free(buffer);
        } else {
            return 1;
        }
        fflush(stdout);
    }
    return 0;
}

int main(int argc, char **argv)
{
    unsigned max_frame = 256;
    unsigned drop_every = 0;
    unsigned garble_every = 0;
    int state_buffer_on = 1;
    int i;

    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        fprintf(stderr, "usage: fake_device tcp|pty|cobs [options]\n");
        return 2;
    }
    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--max-frame") == 0 && i + 1 < argc) {
            max_frame = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--drop-every") == 0 && i + 1 < argc) {
            drop_every = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--garble-every") == 0 && i + 1 < argc) {
            garble_every = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--no-state-buffer") == 0) {
            state_buffer_on = 0;
        } else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (max_frame > MAX_FRAME_LIMIT) {
        fprintf(stderr, "--max-frame above %u\n", (unsigned)MAX_FRAME_LIMIT);
        return 2;
    }
    if (strcmp(argv[1], "cobs") == 0) {
        return run_cobs();
    }
    if (strcmp(argv[1], "tcp") == 0 || strcmp(argv[1], "pty") == 0) {
        return run_device(strcmp(argv[1], "pty") == 0, max_frame, state_buffer_on, drop_every, garble_every);
    }
    fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 2;
}
