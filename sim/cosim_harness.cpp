// hilt's native co-simulation harness: a Verilator model of a board design whose clock and
// UART line are driven here, in C++, and whose UART is bridged to a TCP port and a
// pseudo-terminal. It is the C++ twin of hilt/sim/testbenches/cosim_bridge.py and keeps
// its contract: the same options, the same ready and results files, the same stop file,
// reset file and parent watch. Built by hilt.sim.native_cosim together with the design.
//
// The design has inputs clk, rst and rx and an output tx. Each clock cycle the harness
// lowers clk, drives rx (bit boundaries fall on falling edges, as in the cocotb bridge),
// evaluates, raises clk, evaluates and samples tx. rx carries queued bytes as 8N1 frames
// of `divisor` cycles a bit, back to back; tx is decoded as a UART sampling mid-bit does.
//
// Pacing: while anything moves (bytes queued or being shifted onto rx, a frame coming in
// on tx, or fewer than idle_after_cycles since the last byte either way) the sockets are
// polled without waiting: every fed_poll_cycles cycles while bytes stream, but as soon as
// the design's bytes are followed by two quiet byte times on tx (an answer, which the
// host is likely waiting for), and every poll_cycles once rx has run dry with bytes from
// the design waiting. Each poll wakes the host and costs system calls, so polling seldom
// while bytes stream is what lets the line run near its rate. Once the line has been quiet that long
// the harness idles: it simulates idle_cycles at a time and between steps waits in poll()
// for a client, for a wall time doubling from 1 ms up to idle_wait_us.

#include "Vtop.h"
#include "Vtop___024root.h"
#include "verilated.h"

// The model's own evaluation, which Vtop::eval() wraps in bookkeeping for models shared
// between threads (a deleter and a message queue, two mutexes an evaluation). This harness
// is one thread evaluating twice a clock cycle, where that bookkeeping was a seventh of the
// time; so after the first eval(), which also runs the model's initial blocks, it calls
// the evaluation directly. A Verilator without it fails to link, naming this function.
void Vtop___024root___eval(Vtop___024root* vlSelf);

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>
#include <vector>

namespace {

constexpr int kFrameBits = 10;
constexpr size_t kRxQueueLimit = 4096;   // bytes from clients not yet on rx
constexpr size_t kOutputLimit = 1 << 16; // unread bytes for one client; older ones drop
constexpr size_t kReadChunk = 4096;
constexpr int kResetCycles = 4;
constexpr double kStopCheckS = 0.01;
constexpr double kIdleWaitMinS = 0.001;

volatile std::sig_atomic_t g_signalled = 0;

void on_signal(int) { g_signalled = 1; }

void log_line(const std::string& text) {
    std::fprintf(stderr, "cosim_harness: %s\n", text.c_str());
    std::fflush(stderr);
}

[[noreturn]] void die(const std::string& text) {
    log_line("error: " + text);
    std::exit(2);
}

struct Options {
    long divisor = 0;
    long clock_ns = 0;
    long port = -1;
    bool pty = false;
    bool timeline = false;
    long poll_cycles = 0;
    long fed_poll_cycles = 0;
    long idle_after_cycles = 0;
    long idle_cycles = 0;
    double idle_wait_s = 0;
    std::string ready_path, stop_path, reset_path, results_path, orphan_cleanup;
};

long to_long(const std::string& name, const std::string& text, long low) {
    char* end = nullptr;
    errno = 0;
    long value = std::strtol(text.c_str(), &end, 10);
    if (errno || end == text.c_str() || *end || value < low)
        die("--" + name + " must be an integer of at least " + std::to_string(low) +
            ", got '" + text + "'");
    return value;
}

Options parse_options(int argc, char** argv) {
    std::map<std::string, std::string> given;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        size_t eq = arg.find('=');
        if (arg.rfind("--", 0) != 0 || eq == std::string::npos)
            die("arguments are --name=value, got '" + arg + "'");
        given[arg.substr(2, eq - 2)] = arg.substr(eq + 1);
    }
    auto take = [&](const std::string& name) {
        auto found = given.find(name);
        if (found == given.end()) die("--" + name + " is missing");
        std::string value = found->second;
        given.erase(found);
        return value;
    };
    Options o;
    o.divisor = to_long("divisor", take("divisor"), 4);
    o.clock_ns = to_long("clock-ns", take("clock-ns"), 2);
    o.port = to_long("port", take("port"), 0);
    if (o.port > 65535) die("--port must be at most 65535");
    o.pty = to_long("pty", take("pty"), 0) != 0;
    o.timeline = to_long("timeline", take("timeline"), 0) != 0;
    o.poll_cycles = to_long("poll-cycles", take("poll-cycles"), 1);
    o.fed_poll_cycles = to_long("fed-poll-cycles", take("fed-poll-cycles"), 1);
    o.idle_after_cycles = to_long("idle-after-cycles", take("idle-after-cycles"), 1);
    o.idle_cycles = to_long("idle-cycles", take("idle-cycles"), 1);
    o.idle_wait_s = to_long("idle-wait-us", take("idle-wait-us"), 1) / 1e6;
    o.ready_path = take("ready");
    o.stop_path = take("stop");
    o.reset_path = take("reset");
    o.results_path = take("results");
    o.orphan_cleanup = take("orphan-cleanup");
    if (!given.empty()) die("unknown option --" + given.begin()->first);
    return o;
}

double wall_now() {
    using clock = std::chrono::steady_clock;
    return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

bool exists(const std::string& path) {
    struct stat info;
    return !path.empty() && ::stat(path.c_str(), &info) == 0;
}

void write_file_atomic(const std::string& path, const std::string& text) {
    std::string partial = path + ".partial";
    {
        std::ofstream out(partial, std::ios::binary | std::ios::trunc);
        out << text;
        if (!out) die("cannot write " + partial);
    }
    if (std::rename(partial.c_str(), path.c_str()) != 0)
        die("cannot rename " + partial + ": " + std::strerror(errno));
}

std::string json_string(const std::string& text) {
    std::string out = "\"";
    for (char c : text) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

std::string json_numbers(const std::vector<double>& values) {
    std::string out = "[";
    char buffer[40];
    for (size_t i = 0; i < values.size(); ++i) {
        std::snprintf(buffer, sizeof buffer, "%s%.1f", i ? ", " : "", values[i]);
        out += buffer;
    }
    return out + "]";
}

// One attached client: a descriptor and the bytes it has not been sent yet.
struct Client {
    std::string name;
    int fd = -1;
    std::string output;

    // Queue data for the client; how many of its oldest unsent bytes were dropped.
    size_t queue(const std::string& data) {
        output += data;
        if (output.size() <= kOutputLimit) return 0;
        size_t excess = output.size() - kOutputLimit;
        output.erase(0, excess);
        return excess;
    }

    // Send what the client takes now; false once it has gone.
    bool flush() {
        while (!output.empty()) {
            ssize_t sent = ::write(fd, output.data(), output.size());
            if (sent < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
            output.erase(0, static_cast<size_t>(sent));
        }
        return true;
    }

    // Up to size bytes without waiting: >0 read, 0 none yet, -1 the client has gone.
    ssize_t read_into(std::string& sink, size_t size) {
        char buffer[kReadChunk];
        ssize_t got = ::read(fd, buffer, std::min(size, sizeof buffer));
        if (got < 0) return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
        if (got == 0) return -1;
        sink.append(buffer, static_cast<size_t>(got));
        return got;
    }
};

// Decodes tx as a UART sampling mid-bit: a frame opens on a low level, bit k is sampled
// at cycle start + k * divisor + divisor / 2; a high start bit was a glitch, a low stop bit
// a framing error (after which the line must go high before the next frame).
struct TxDecoder {
    long divisor;
    bool open = false;
    bool wait_high = false;
    uint64_t start = 0;
    int bit = 0;
    int value = 0;

    // The byte completed at this cycle, -2 for a framing error, -1 for none.
    int sample(uint64_t cycle, int level) {
        if (!open) {
            if (wait_high) {
                wait_high = level == 0;
                return -1;
            }
            if (level == 0) {
                open = true;
                start = cycle;
                bit = 0;
                value = 0;
            }
            return -1;
        }
        if (cycle != start + static_cast<uint64_t>(bit * divisor + divisor / 2)) return -1;
        if (bit == 0) {
            if (level) open = false;  // a glitch
            else bit = 1;
            return -1;
        }
        if (bit < kFrameBits - 1) {
            value |= level << (bit - 1);
            ++bit;
            return -1;
        }
        open = false;
        if (!level) {
            wait_high = true;
            return -2;
        }
        return value;
    }
};

class Harness {
public:
    explicit Harness(const Options& options)
        : o_(options), context_(new VerilatedContext), top_(new Vtop{context_.get()}),
          parent_(::getppid()) {
        decoder_.divisor = o_.divisor;
        open_listener();
        if (o_.pty) open_pty();
        counts_ = {{"bytes_to_design", 0}, {"bytes_from_design", 0}, {"bytes_dropped", 0},
                   {"tx_framing_errors", 0}, {"clients", 0}, {"clients_refused", 0},
                   {"resets", 0}};
    }

    ~Harness() { close_all(); }

    void run() {
        const double started = wall_now();
        top_->rx = 1;
        top_->rst = 1;
        top_->eval();  // initial values and blocks; see Vtop___024root___eval above
        cycles(2);
        top_->rst = 0;
        announce();
        double idle_wait = kIdleWaitMinS;
        bool orphaned = false;
        while (!stop_requested(orphaned)) {
            if (reset_asked_) press_reset();
            if (busy()) {
                idle_wait = kIdleWaitMinS;
                const long step = 2 * kFrameBits * o_.divisor;
                long run = 0;
                do {
                    cycles(step);
                    run += step;
                } while (run < o_.fed_poll_cycles && !answered(step) &&
                         !(run >= o_.poll_cycles && starved()));
                service(0);
            } else {
                cycles(o_.idle_cycles);
                service(idle_wait);
                idle_wait = std::min(2 * idle_wait, o_.idle_wait_s);
            }
        }
        service(0);  // what the design sent last, before the clients are closed
        for (Client* client : attached()) client->flush();
        close_all();
        top_->final();
        write_results(wall_now() - started);
        if (orphaned && !o_.orphan_cleanup.empty()) {
            std::error_code ignored;
            std::filesystem::remove_all(o_.orphan_cleanup, ignored);
        }
    }

private:
    // -- the pins ------------------------------------------------------------------------

    void cycles(long count) {
        for (long n = 0; n < count; ++n) {
            top_->clk = 0;
            drive_rx();
            Vtop___024root___eval(top_->rootp);
            top_->clk = 1;
            Vtop___024root___eval(top_->rootp);
            int byte = decoder_.sample(cycle_, top_->tx);
            if (byte != -1) take_tx(byte);
            ++cycle_;
        }
    }

    double now_ns() const { return static_cast<double>(cycle_) * o_.clock_ns; }

    // Called on each falling edge: move to the next bit once the current one has lasted
    // `divisor` cycles, and start the next queued byte once a frame's stop bit has.
    void drive_rx() {
        if (rx_left_ > 0) {
            --rx_left_;
            return;
        }
        if (rx_busy_ && ++rx_bit_ == kFrameBits) {
            rx_busy_ = false;
            ++counts_["bytes_to_design"];
            last_activity_ = cycle_;
        }
        if (!rx_busy_) {
            if (rx_queue_.empty()) return;
            rx_frame_ = (static_cast<unsigned>(rx_queue_.front()) << 1) | 0x200u;
            rx_queue_.pop_front();
            rx_bit_ = 0;
            rx_busy_ = true;
            if (o_.timeline) to_design_ns_.push_back(now_ns());
        }
        top_->rx = (rx_frame_ >> rx_bit_) & 1u;
        rx_left_ = o_.divisor - 1;
    }

    void take_tx(int byte) {
        last_activity_ = cycle_;
        last_tx_ = cycle_;
        if (byte == -2) {
            ++counts_["tx_framing_errors"];
            log_line("the design sent a frame with a low stop bit");
            return;
        }
        from_design_.push_back(static_cast<char>(byte));
        ++counts_["bytes_from_design"];
        if (o_.timeline)
            from_design_ns_.push_back(static_cast<double>(decoder_.start) * o_.clock_ns +
                                      kFrameBits * o_.divisor * o_.clock_ns);
    }

    void press_reset() {
        reset_asked_ = false;
        std::remove(o_.reset_path.c_str());
        log_line("reset asked: rst high for " + std::to_string(kResetCycles) + " cycles");
        top_->rst = 1;
        cycles(kResetCycles);
        top_->rst = 0;
        ++counts_["resets"];
        last_activity_ = cycle_;
    }

    // Nothing left for rx while the design has sent something: the host is likely waiting
    // for it, so it is handed over at the shorter interval.
    bool starved() const { return rx_queue_.empty() && !rx_busy_ && !from_design_.empty(); }

    // The design sent something and then fell quiet for `quiet` cycles: most likely the end
    // of an answer, which a host keeping a window of frames waits for before sending more.
    bool answered(long quiet) const {
        return !from_design_.empty() && !decoder_.open &&
               cycle_ - last_tx_ >= static_cast<uint64_t>(quiet);
    }

    bool busy() const {
        return !rx_queue_.empty() || rx_busy_ || decoder_.open ||
               cycle_ - last_activity_ < static_cast<uint64_t>(o_.idle_after_cycles);
    }

    // -- the sockets ---------------------------------------------------------------------

    void open_listener() {
        listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (listener_ < 0) die(std::string("socket: ") + std::strerror(errno));
        int one = 1;
        ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        address.sin_port = htons(static_cast<uint16_t>(o_.port));
        if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
            die("cannot listen on 127.0.0.1:" + std::to_string(o_.port) + ": " +
                std::strerror(errno));
        if (::listen(listener_, 8) != 0) die(std::string("listen: ") + std::strerror(errno));
        socklen_t size = sizeof address;
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &size);
        port_ = ntohs(address.sin_port);
    }

    void open_pty() {
        int master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master < 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0)
            die(std::string("cannot open a pseudo-terminal: ") + std::strerror(errno));
        pty_path_ = ::ptsname(master);
        // Raw: no echo, no line editing, no CR/LF translation, for whoever opens it. Our
        // slave end is closed again, so that the master reports a hang-up while no client
        // has the slave open: how an attached client is told from none.
        int slave = ::open(pty_path_.c_str(), O_RDWR | O_NOCTTY);
        if (slave < 0) die("cannot open " + pty_path_ + ": " + std::strerror(errno));
        termios mode{};
        ::tcgetattr(slave, &mode);
        ::cfmakeraw(&mode);
        ::tcsetattr(slave, TCSANOW, &mode);
        ::close(slave);
        ::fcntl(master, F_SETFL, ::fcntl(master, F_GETFL) | O_NONBLOCK);
        pty_ = std::make_unique<Client>();
        pty_->name = "pty " + pty_path_;
        pty_->fd = master;
    }

    void announce() {
        std::string pty = pty_ ? json_string(pty_path_) : "null";
        write_file_atomic(o_.ready_path, "{\"port\": " + std::to_string(port_) +
                                             ", \"pty\": " + pty + "}");
        log_line("listening on socket://127.0.0.1:" + std::to_string(port_) +
                 (pty_ ? " and " + pty_path_ : std::string()));
    }

    std::vector<Client*> attached() {
        std::vector<Client*> clients;
        if (tcp_) clients.push_back(tcp_.get());
        if (pty_ && pty_attached_) clients.push_back(pty_.get());
        return clients;
    }

    void check_pty() {
        if (!pty_) return;
        pollfd entry{pty_->fd, POLLIN, 0};
        ::poll(&entry, 1, 0);
        bool hung_up = entry.revents & POLLHUP;
        if (hung_up && pty_attached_) {
            take(*pty_);  // what it wrote before it closed was on the line
            detach_pty();
        } else if (!hung_up && !pty_attached_) {
            pty_attached_ = true;
            log_line(pty_->name + ": a client opened it");
        }
    }

    void detach_pty() {
        pty_attached_ = false;
        counts_["bytes_dropped"] += pty_->output.size();
        pty_->output.clear();
        // Drop what the last client left unread, so the next one starts on a clean line.
        ::tcflush(pty_->fd, TCOFLUSH);
        log_line(pty_->name + ": its client closed it");
    }

    void accept_client() {
        sockaddr_in address{};
        socklen_t size = sizeof address;
        int fd = ::accept4(listener_, reinterpret_cast<sockaddr*>(&address), &size,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        char host[INET_ADDRSTRLEN] = "?";
        ::inet_ntop(AF_INET, &address.sin_addr, host, sizeof host);
        std::string name = std::string(host) + ":" + std::to_string(ntohs(address.sin_port));
        if (tcp_) {
            ++counts_["clients_refused"];
            log_line("refused TCP client " + name + ": " + tcp_->name + " is connected");
            ::close(fd);
            return;
        }
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        tcp_ = std::make_unique<Client>();
        tcp_->name = "TCP client " + name;
        tcp_->fd = fd;
        ++counts_["clients"];
        log_line(tcp_->name + " connected");
    }

    void drop_tcp() {
        log_line(tcp_->name + " disconnected");
        counts_["bytes_dropped"] += tcp_->output.size();
        ::close(tcp_->fd);
        tcp_.reset();
    }

    // Read what the client sent into the queue for rx; false once it has gone.
    bool take(Client& client) {
        if (rx_queue_.size() >= kRxQueueLimit) return true;
        std::string data;
        ssize_t got = client.read_into(data, kRxQueueLimit - rx_queue_.size());
        if (got < 0) return false;
        if (got > 0) {
            rx_queue_.insert(rx_queue_.end(), data.begin(), data.end());
            last_activity_ = cycle_;
        }
        return true;
    }

    void service(double wait_s) {
        check_pty();
        std::vector<Client*> clients = attached();
        if (!from_design_.empty()) {
            if (clients.empty()) counts_["bytes_dropped"] += from_design_.size();
            for (Client* client : clients) counts_["bytes_dropped"] += client->queue(from_design_);
            from_design_.clear();
        }
        std::vector<pollfd> fds{{listener_, POLLIN, 0}};
        bool room = rx_queue_.size() < kRxQueueLimit;
        for (Client* client : clients) {
            short events = static_cast<short>((room ? POLLIN : 0) |
                                              (client->output.empty() ? 0 : POLLOUT));
            fds.push_back({client->fd, events, 0});
        }
        int ready = ::poll(fds.data(), fds.size(), static_cast<int>(wait_s * 1000));
        if (ready <= 0) return;
        if (fds[0].revents & POLLIN) accept_client();
        for (size_t i = 0; i < clients.size(); ++i) {
            Client* client = clients[i];
            short revents = fds[i + 1].revents;
            bool gone = ((revents & (POLLIN | POLLHUP | POLLERR)) && room && !take(*client)) ||
                        ((revents & POLLOUT) && !client->flush());
            if (!gone) continue;
            if (client == tcp_.get()) drop_tcp();
            else detach_pty();
        }
    }

    // The stop file exists, a signal came, or the parent process has gone (checked every
    // 10 ms of wall time); between the checks it notices a reset request too.
    bool stop_requested(bool& orphaned) {
        double now = wall_now();
        if (now < next_stop_check_ && !g_signalled) return false;
        next_stop_check_ = now + kStopCheckS;
        reset_asked_ = reset_asked_ || exists(o_.reset_path);
        if (g_signalled) {
            log_line("stopped by a signal");
            return true;
        }
        if (exists(o_.stop_path)) {
            log_line("stop file " + o_.stop_path + " found");
            return true;
        }
        if (::getppid() != parent_) {
            log_line("the process that started the simulator has gone");
            orphaned = true;
            return true;
        }
        return false;
    }

    void close_all() {
        if (tcp_) drop_tcp();
        if (listener_ >= 0) ::close(listener_);
        listener_ = -1;
        if (pty_) ::close(pty_->fd);
        pty_.reset();
    }

    void write_results(double wall_seconds) {
        std::string text = "{";
        for (const auto& [name, value] : counts_)
            text += json_string(name) + ": " + std::to_string(value) + ", ";
        char buffer[160];
        std::snprintf(buffer, sizeof buffer,
                      "\"sim_time_ns\": %.1f, \"cycles\": %llu, \"wall_seconds\": %.6f",
                      now_ns(), static_cast<unsigned long long>(cycle_), wall_seconds);
        text += buffer;
        if (o_.timeline)
            text += ", \"timeline\": {\"to_design_ns\": " + json_numbers(to_design_ns_) +
                    ", \"from_design_ns\": " + json_numbers(from_design_ns_) + "}";
        write_file_atomic(o_.results_path, text + "}");
    }

    Options o_;
    std::unique_ptr<VerilatedContext> context_;
    std::unique_ptr<Vtop> top_;
    pid_t parent_;
    uint64_t cycle_ = 0;
    uint64_t last_activity_ = 0;
    uint64_t last_tx_ = 0;
    std::deque<uint8_t> rx_queue_;
    unsigned rx_frame_ = 0;
    int rx_bit_ = 0;
    long rx_left_ = 0;
    bool rx_busy_ = false;
    TxDecoder decoder_;
    std::string from_design_;
    std::map<std::string, unsigned long long> counts_;
    std::vector<double> to_design_ns_, from_design_ns_;
    int listener_ = -1;
    int port_ = 0;
    std::unique_ptr<Client> tcp_, pty_;
    std::string pty_path_;
    bool pty_attached_ = false;
    bool reset_asked_ = false;
    double next_stop_check_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
    Options options = parse_options(argc, argv);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGINT, on_signal);
    std::signal(SIGHUP, on_signal);
    std::signal(SIGPIPE, SIG_IGN);
    Harness harness(options);
    harness.run();
    return 0;
}
