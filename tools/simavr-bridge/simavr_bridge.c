/*
 * simavr-bridge: runs an AVR firmware in simavr with its UART on a local TCP
 * port, so the host talks to it with the same pyserial `socket://` client as to
 * QEMU; optionally records the exact cycle of every edge of a marker pin.
 *
 *   simavr-bridge --mcu atmega328p --freq 16000000 [--port N] [--no-wait]
 *                 [--uart 0] [--marker B5] [--eeprom FILE] [--max-cycles N] FIRMWARE.elf
 *
 * The MCU and clock come from the command line: the ELF's .mmcu section is not
 * usable (Debian's AVR linker script misplaces it).
 *
 * Standard output is a line protocol for the host tool (line-buffered):
 *   listening 127.0.0.1 PORT      the port is bound (PORT 0 picks a free one)
 *   edge B5 LEVEL CYCLE           the marker pin changed to LEVEL at CYCLE
 *   exit REASON cycle=N           the run ended: done (the firmware slept with
 *                                 interrupts off), crashed, max-cycles, signal
 * simavr's own messages go to standard error.
 *
 * Like QEMU's `server=on,wait=on` chardev, the AVR starts only once the first
 * client has connected (unless --no-wait), so no early output is lost; when a
 * client disconnects the AVR keeps running and the next client is accepted.
 * Output produced while no client is connected is dropped, as QEMU does.
 *
 * UART input is handed to simavr only while its UART signals XON (it signals
 * XON when the receiver is enabled and whenever the firmware reads UCSRnA or
 * UDRn with an empty receive FIFO, and XOFF when the FIFO fills), so no byte
 * is ever dropped as an overrun. simavr
 * models the baud rate: a firmware for the emulator should use a fast one.
 *
 * --eeprom FILE loads the EEPROM from FILE (a new file starts as simavr's
 * EEPROM: erased, plus the ELF's .eeprom section) and writes every changed
 * byte back to it as the run goes (after each batch of instructions, byte by
 * byte), so the EEPROM survives a restart of the emulator, and a kill leaves
 * the file as a power cut at some byte write would leave the chip.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <avr_eeprom.h>
#include <avr_ioport.h>
#include <avr_uart.h>
#include <sim_avr.h>
#include <sim_elf.h>
#include <sim_irq.h>

/* Instructions run between two looks at the socket: short enough for a quick
 * reply, long enough that the system calls cost little next to the emulation. */
#define BATCH 2000
#define QUEUE_SIZE 8192u /* power of two */

struct byte_queue {
    uint8_t data[QUEUE_SIZE];
    uint32_t head, tail; /* free-running; head - tail bytes are queued */
};

static uint32_t queue_used(const struct byte_queue *q) { return q->head - q->tail; }
static uint32_t queue_free(const struct byte_queue *q) { return QUEUE_SIZE - queue_used(q); }

static void queue_push(struct byte_queue *q, uint8_t b)
{
    q->data[q->head++ % QUEUE_SIZE] = b;
}

static uint8_t queue_pop(struct byte_queue *q)
{
    return q->data[q->tail++ % QUEUE_SIZE];
}

static struct {
    avr_t *avr;
    avr_irq_t *uart_input;
    int xon;                    /* the UART can take a byte now */
    struct byte_queue to_avr;   /* received from the client, not yet given to the UART */
    struct byte_queue to_host;  /* sent by the firmware, not yet written to the client */
    int listen_fd, client_fd;
    char marker_port;
    int marker_pin, marker_level;
    int eeprom_fd;
    uint8_t *eeprom, *eeprom_shadow;
    uint32_t eeprom_size;
} bridge = {.listen_fd = -1, .client_fd = -1, .eeprom_fd = -1};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; }

static void fail(const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    fprintf(stderr, "simavr-bridge: ");
    vfprintf(stderr, format, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static void log_to_stderr(avr_t *avr, const int level, const char *format, va_list ap)
{
    (void)avr;
    if (level <= LOG_WARNING) {
        vfprintf(stderr, format, ap);
    }
}

/* ---- UART ---------------------------------------------------------------- */

static void feed_uart(void)
{
    while (bridge.xon && queue_used(&bridge.to_avr) > 0u) {
        /* May call on_uart_xoff re-entrantly when the FIFO fills. */
        avr_raise_irq(bridge.uart_input, queue_pop(&bridge.to_avr));
    }
}

static void drop_client(void);

/* Writes queued output to the client without blocking; drops a client that is gone. */
static void send_output(void)
{
    uint32_t start = bridge.to_host.tail % QUEUE_SIZE;
    uint32_t n = queue_used(&bridge.to_host);
    uint32_t run = n < QUEUE_SIZE - start ? n : QUEUE_SIZE - start;
    if (bridge.client_fd < 0 || run == 0u) {
        return;
    }
    ssize_t sent = send(bridge.client_fd, bridge.to_host.data + start, run, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent > 0) {
        bridge.to_host.tail += (uint32_t)sent;
    } else if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        drop_client();
    }
}

static void on_uart_output(avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)param;
    /* The client reads slower than the firmware writes: wait for it, as a
     * UART with a stalled receiver would make the firmware wait. */
    while (bridge.client_fd >= 0 && queue_free(&bridge.to_host) == 0u && !stop_signal) {
        struct pollfd p = {.fd = bridge.client_fd, .events = POLLOUT};
        (void)poll(&p, 1, 100);
        send_output();
    }
    if (bridge.client_fd >= 0 && queue_free(&bridge.to_host) > 0u) {
        queue_push(&bridge.to_host, (uint8_t)value);
    }
}

static void on_uart_xon(avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)value;
    (void)param;
    bridge.xon = 1;
    feed_uart();
}

static void on_uart_xoff(avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)param;
    if (value) {
        bridge.xon = 0;
    }
}

static void connect_uart(char uart)
{
    uint32_t flags = 0;
    if (avr_ioctl(bridge.avr, AVR_IOCTL_UART_GET_FLAGS(uart), &flags) != 0) {
        fail("this MCU has no UART%c", uart);
    }
    /* No console echo of the output, and no usleep() while the firmware polls:
     * the bridge paces the emulation itself. */
    flags &= ~(uint32_t)(AVR_UART_FLAG_STDIO | AVR_UART_FLAG_POLL_SLEEP);
    avr_ioctl(bridge.avr, AVR_IOCTL_UART_SET_FLAGS(uart), &flags);
    bridge.uart_input = avr_io_getirq(bridge.avr, AVR_IOCTL_UART_GETIRQ(uart), UART_IRQ_INPUT);
    avr_irq_register_notify(avr_io_getirq(bridge.avr, AVR_IOCTL_UART_GETIRQ(uart), UART_IRQ_OUTPUT),
                            on_uart_output, NULL);
    avr_irq_register_notify(avr_io_getirq(bridge.avr, AVR_IOCTL_UART_GETIRQ(uart), UART_IRQ_OUT_XON),
                            on_uart_xon, NULL);
    avr_irq_register_notify(avr_io_getirq(bridge.avr, AVR_IOCTL_UART_GETIRQ(uart), UART_IRQ_OUT_XOFF),
                            on_uart_xoff, NULL);
}

/* ---- Marker pin ------------------------------------------------------------ */

static void on_marker(avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)param;
    /* simavr notifies the pin once when DDR first makes it an output, at the
     * level it already has: only real changes are edges. */
    int level = (int)(value & 1u);
    if (level == bridge.marker_level) {
        return;
    }
    bridge.marker_level = level;
    printf("edge %c%d %d %llu\n", bridge.marker_port, bridge.marker_pin, level,
           (unsigned long long)bridge.avr->cycle);
}

/* ---- EEPROM file ------------------------------------------------------------ */

static void open_eeprom(const char *path)
{
    avr_eeprom_desc_t desc = {.ee = NULL, .offset = 0, .size = 0};
    /* With ee == NULL simavr hands out its own buffer (its return value is not
     * meaningful in this version, so the pointer is what is checked). */
    avr_ioctl(bridge.avr, AVR_IOCTL_EEPROM_GET, &desc);
    bridge.eeprom = desc.ee;
    bridge.eeprom_size = bridge.avr->e2end + 1u;
    if (bridge.eeprom == NULL || bridge.avr->e2end == 0u) {
        fail("this MCU has no EEPROM");
    }
    bridge.eeprom_fd = open(path, O_RDWR | O_CREAT, 0644);
    if (bridge.eeprom_fd < 0) {
        fail("cannot open %s: %s", path, strerror(errno));
    }
    bridge.eeprom_shadow = malloc(bridge.eeprom_size);
    if (bridge.eeprom_shadow == NULL) {
        fail("out of memory");
    }
    /* What simavr starts with (erased, plus the ELF's .eeprom section), under
     * what the file already holds: a new file is a freshly programmed chip. */
    memcpy(bridge.eeprom_shadow, bridge.eeprom, bridge.eeprom_size);
    ssize_t got = pread(bridge.eeprom_fd, bridge.eeprom_shadow, bridge.eeprom_size, 0);
    if (got < 0) {
        fail("cannot read %s: %s", path, strerror(errno));
    }
    memcpy(bridge.eeprom, bridge.eeprom_shadow, bridge.eeprom_size);
    if ((uint32_t)got != bridge.eeprom_size &&
        pwrite(bridge.eeprom_fd, bridge.eeprom_shadow, bridge.eeprom_size, 0) != (ssize_t)bridge.eeprom_size) {
        fail("cannot write %s: %s", path, strerror(errno));
    }
}

/* Writes the bytes the firmware changed since the last call, byte by byte in
 * address order, as the chip programs them. */
static void sync_eeprom(void)
{
    if (bridge.eeprom_fd < 0 || memcmp(bridge.eeprom, bridge.eeprom_shadow, bridge.eeprom_size) == 0) {
        return;
    }
    for (uint32_t i = 0; i < bridge.eeprom_size; ++i) {
        if (bridge.eeprom[i] != bridge.eeprom_shadow[i]) {
            if (pwrite(bridge.eeprom_fd, bridge.eeprom + i, 1, (off_t)i) != 1) {
                fail("cannot write the EEPROM file: %s", strerror(errno));
            }
            bridge.eeprom_shadow[i] = bridge.eeprom[i];
        }
    }
}

/* ---- Socket ------------------------------------------------------------------ */

static void listen_on(int port)
{
    bridge.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (bridge.listen_fd < 0) {
        fail("socket: %s", strerror(errno));
    }
    int one = 1;
    setsockopt(bridge.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(bridge.listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        fail("cannot bind 127.0.0.1:%d: %s", port, strerror(errno));
    }
    if (listen(bridge.listen_fd, 1) != 0) {
        fail("listen: %s", strerror(errno));
    }
    socklen_t len = sizeof addr;
    getsockname(bridge.listen_fd, (struct sockaddr *)&addr, &len);
    printf("listening 127.0.0.1 %d\n", ntohs(addr.sin_port));
}

static void accept_client(void)
{
    int fd = accept(bridge.listen_fd, NULL, NULL);
    if (fd < 0) {
        return;
    }
    int one = 1;
    /* Small frames must not wait for Nagle's algorithm. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    bridge.client_fd = fd;
}

static void drop_client(void)
{
    close(bridge.client_fd);
    bridge.client_fd = -1;
    bridge.to_host.tail = bridge.to_host.head;
}

/* One look at the socket: accept, receive what the UART can take, send output. */
static void service_socket(int timeout_ms)
{
    struct pollfd p = {.fd = bridge.client_fd >= 0 ? bridge.client_fd : bridge.listen_fd};
    if (bridge.client_fd < 0) {
        p.events = POLLIN;
    } else {
        p.events = (short)((queue_free(&bridge.to_avr) > 0u ? POLLIN : 0) |
                           (queue_used(&bridge.to_host) > 0u ? POLLOUT : 0));
    }
    if (poll(&p, 1, timeout_ms) <= 0) {
        return;
    }
    if (bridge.client_fd < 0) {
        accept_client();
        return;
    }
    if (p.revents & POLLIN) {
        uint8_t buffer[512];
        size_t room = queue_free(&bridge.to_avr) < sizeof buffer ? queue_free(&bridge.to_avr) : sizeof buffer;
        ssize_t got = recv(bridge.client_fd, buffer, room, 0);
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            drop_client();
            return;
        }
        for (ssize_t i = 0; i < got; ++i) {
            queue_push(&bridge.to_avr, buffer[i]);
        }
    } else if (p.revents & (POLLHUP | POLLERR)) {
        drop_client();
        return;
    }
    send_output();
}

/* Sends what the firmware wrote before it stopped (for up to a second). */
static void drain_output(void)
{
    for (int i = 0; i < 100 && bridge.client_fd >= 0 && queue_used(&bridge.to_host) > 0u; ++i) {
        service_socket(10);
    }
}

/* ---- Main --------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: simavr-bridge --mcu NAME --freq HZ [--port N] [--no-wait] [--uart N]\n"
            "                     [--marker B5] [--eeprom FILE] [--max-cycles N] FIRMWARE.elf\n");
    exit(2);
}

static unsigned long long number(const char *text)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 0);
    if (*text == '\0' || *end != '\0' || errno != 0) {
        usage();
    }
    return v;
}

int main(int argc, char **argv)
{
    const char *mcu = NULL, *elf = NULL, *marker = NULL, *eeprom = NULL;
    unsigned long long freq = 0, max_cycles = 0;
    int port = 0, wait_for_client = 1;
    char uart = '0';
    for (int i = 1; i < argc; ++i) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (strcmp(a, "--mcu") == 0 && has_value) {
            mcu = argv[++i];
        } else if (strcmp(a, "--freq") == 0 && has_value) {
            freq = number(argv[++i]);
        } else if (strcmp(a, "--port") == 0 && has_value) {
            port = (int)number(argv[++i]);
        } else if (strcmp(a, "--no-wait") == 0) {
            wait_for_client = 0;
        } else if (strcmp(a, "--uart") == 0 && has_value) {
            uart = argv[++i][0];
        } else if (strcmp(a, "--marker") == 0 && has_value) {
            marker = argv[++i];
        } else if (strcmp(a, "--eeprom") == 0 && has_value) {
            eeprom = argv[++i];
        } else if (strcmp(a, "--max-cycles") == 0 && has_value) {
            max_cycles = number(argv[++i]);
        } else if (a[0] != '-' && elf == NULL) {
            elf = a;
        } else {
            usage();
        }
    }
    if (mcu == NULL || elf == NULL || freq == 0 || freq > UINT32_MAX || port < 0 || port > 65535) {
        usage();
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    avr_global_logger_set(log_to_stderr);

    elf_firmware_t firmware;
    memset(&firmware, 0, sizeof firmware);
    if (elf_read_firmware(elf, &firmware) != 0) {
        fail("cannot read %s", elf);
    }
    snprintf(firmware.mmcu, sizeof firmware.mmcu, "%s", mcu);
    firmware.frequency = (uint32_t)freq;
    bridge.avr = avr_make_mcu_by_name(mcu);
    if (bridge.avr == NULL) {
        fail("simavr does not know the MCU %s", mcu);
    }
    avr_init(bridge.avr);
    avr_load_firmware(bridge.avr, &firmware);
    bridge.avr->frequency = (uint32_t)freq;
    connect_uart(uart);

    if (marker != NULL) {
        if (strlen(marker) != 2 || marker[0] < 'A' || marker[0] > 'L' || marker[1] < '0' || marker[1] > '7') {
            fail("--marker takes a port letter and a pin number, such as B5");
        }
        bridge.marker_port = marker[0];
        bridge.marker_pin = marker[1] - '0';
        avr_irq_t *pin = avr_io_getirq(bridge.avr, AVR_IOCTL_IOPORT_GETIRQ(bridge.marker_port), bridge.marker_pin);
        if (pin == NULL) {
            fail("this MCU has no pin %s", marker);
        }
        avr_irq_register_notify(pin, on_marker, NULL);
    }
    if (eeprom != NULL) {
        open_eeprom(eeprom);
    }

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);

    listen_on(port);
    while (wait_for_client && bridge.client_fd < 0 && !stop_signal) {
        service_socket(100);
    }

    const char *reason = "signal";
    int status = 0;
    while (!stop_signal) {
        int state = cpu_Running;
        for (int i = 0; i < BATCH; ++i) {
            state = avr_run(bridge.avr);
            if (state == cpu_Done || state == cpu_Crashed || state == cpu_Stopped) {
                break;
            }
        }
        sync_eeprom();
        if (state == cpu_Done) {
            reason = "done";
            break;
        }
        if (state == cpu_Crashed || state == cpu_Stopped) {
            reason = "crashed";
            status = 1;
            break;
        }
        if (max_cycles != 0 && bridge.avr->cycle >= max_cycles) {
            reason = "max-cycles";
            status = 1;
            break;
        }
        service_socket(0);
        feed_uart();
    }
    sync_eeprom();
    drain_output();
    printf("exit %s cycle=%llu\n", reason, (unsigned long long)bridge.avr->cycle);
    if (bridge.client_fd >= 0) {
        close(bridge.client_fd);
    }
    close(bridge.listen_fd);
    if (bridge.eeprom_fd >= 0) {
        close(bridge.eeprom_fd);
    }
    return status;
}
