// A small stand-in for libFuzzer, so that the fuzz targets run in `make test` with the
// normal g++ build: every seed of the corpus, then a fixed number of deterministic
// mutations of them (a seeded PRNG: bit flips, byte changes, truncation, removal,
// duplication, splicing of two seeds, insertion of interesting bytes and of the
// target's dictionary tokens). The same target source links with -fsanitize=fuzzer for
// `make fuzz` instead.
//
// Usage: fuzz_<target> [--mutations N] [--seed S] [--time-limit SECONDS]
//                      [--dict FILE] [--crash-dir DIR] CORPUS_DIR|FILE...
// Exit 0 when every input returned; on a hang (an input over the time limit), a crash
// signal or an exception out of the target, the input is written to
// <crash-dir>/<kind>-<target>-<n>.bin and the driver exits non-zero, saying how to
// run that one input again (pass the file instead of the corpus).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

namespace fs = std::filesystem;
using Bytes = std::string;

struct Options {
  std::uint64_t mutations = 10'000;
  std::uint64_t seed = 1;
  unsigned time_limit = 10;  // seconds per input
  fs::path dict;
  fs::path crash_dir = ".";
  std::vector<fs::path> inputs;
};

// What the signal handlers write when an input crashes or hangs: set before each
// input, read only from the handlers (hence plain buffers).
char g_report_path[4096];
const Bytes* g_current = nullptr;
char g_current_name[512];

void write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n <= 0) return;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

void say(const char* text) { write_all(2, text, std::strlen(text)); }

// Async-signal-safe: open, write, _exit only.
void dump_and_exit(const char* kind, int code) {
  say("fuzz: ");
  say(kind);
  say(" on input ");
  say(g_current_name);
  if (g_current != nullptr && g_report_path[0] != '\0') {
    int fd = ::open(g_report_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      write_all(fd, g_current->data(), g_current->size());
      ::close(fd);
      say("; written to ");
      say(g_report_path);
      say(" (run the target on that file to reproduce)");
    }
  }
  say("\n");
  _exit(code);
}

void on_alarm(int) { dump_and_exit("hang (over the per-input time limit)", 3); }
void on_crash(int signal_number) {
  const char* name = signal_number == SIGSEGV ? "crash (SIGSEGV)"
                     : signal_number == SIGABRT ? "crash (SIGABRT)"
                     : signal_number == SIGFPE  ? "crash (SIGFPE)"
                     : signal_number == SIGBUS  ? "crash (SIGBUS)"
                                                : "crash (SIGILL)";
  dump_and_exit(name, 4);
}

void install_handlers() {
  struct sigaction action {};
  action.sa_handler = on_alarm;
  sigaction(SIGALRM, &action, nullptr);
  // The crash handlers run on their own stack: a stack overflow must be reported too.
  static std::vector<char> alt_stack(1 << 16);
  stack_t stack{};
  stack.ss_sp = alt_stack.data();
  stack.ss_size = alt_stack.size();
  sigaltstack(&stack, nullptr);
  action.sa_handler = on_crash;
  action.sa_flags = SA_ONSTACK | SA_RESETHAND;
  for (int s : {SIGSEGV, SIGABRT, SIGFPE, SIGBUS, SIGILL}) sigaction(s, &action, nullptr);
}

Bytes read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// libFuzzer's dictionary format: one `name="value"` or `"value"` a line, with \\, \"
// and \xNN escapes; # starts a comment.
std::vector<Bytes> read_dictionary(const fs::path& file) {
  std::vector<Bytes> tokens;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    const auto open = line.find('"');
    const auto close = line.rfind('"');
    if (line.empty() || line[0] == '#' || open == std::string::npos || close <= open) continue;
    Bytes token;
    for (std::size_t i = open + 1; i < close; ++i) {
      if (line[i] != '\\' || i + 1 >= close) {
        token += line[i];
      } else if (line[i + 1] == 'x' && i + 3 < close && hex_digit(line[i + 2]) >= 0 &&
                 hex_digit(line[i + 3]) >= 0) {
        token += static_cast<char>(hex_digit(line[i + 2]) * 16 + hex_digit(line[i + 3]));
        i += 3;
      } else {
        token += line[++i];
      }
    }
    if (!token.empty()) tokens.push_back(token);
  }
  return tokens;
}

// Deterministic on every platform: only the generator's raw output is used (the
// standard fixes mt19937_64's sequence; distributions are implementation-defined).
class Mutator {
 public:
  Mutator(std::uint64_t seed, const std::vector<Bytes>& seeds, const std::vector<Bytes>& tokens)
      : rng_(seed), seeds_(seeds), tokens_(tokens) {}

  Bytes next() {
    Bytes input = seeds_[below(seeds_.size())];
    const std::uint64_t rounds = 1 + below(4);
    for (std::uint64_t i = 0; i < rounds; ++i) mutate(input);
    if (input.size() > kMaxInput) input.resize(kMaxInput);
    return input;
  }

 private:
  static constexpr std::size_t kMaxInput = 64 * 1024;

  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : rng_() % n; }
  std::size_t position(const Bytes& input) { return below(input.size() + 1); }

  void mutate(Bytes& input) {
    static constexpr char kInteresting[] = {'\0', '\x01', '\x7f', '\x80', '\xff', '\xc0', '\xe2',
                                            '\n', '\r', '\t', ' ', '"', '\'', '\\', '{', '}', '[',
                                            ']', ':', ',', '%', '&', '=', '#', '$', '-', '0', '9'};
    switch (below(9)) {
      case 0:  // flip one bit
        if (!input.empty()) input[below(input.size())] ^= static_cast<char>(1u << below(8));
        break;
      case 1:  // any byte
        if (!input.empty()) input[below(input.size())] = static_cast<char>(below(256));
        break;
      case 2:  // truncate
        input.resize(position(input));
        break;
      case 3: {  // remove a range
        const std::size_t at = position(input);
        input.erase(at, 1 + below(std::min<std::size_t>(64, input.size() - at + 1)));
        break;
      }
      case 4: {  // duplicate a range in place (repeated keys, nesting, long values)
        const std::size_t at = position(input);
        const Bytes chunk = input.substr(at, 1 + below(256));
        const std::uint64_t copies = 1 + below(8);
        for (std::uint64_t i = 0; i < copies; ++i) input.insert(at, chunk);
        break;
      }
      case 5: {  // splice: this input's head, another seed's tail
        const Bytes& other = seeds_[below(seeds_.size())];
        input = input.substr(0, position(input)) + other.substr(below(other.size() + 1));
        break;
      }
      case 6:  // an interesting byte
        input.insert(position(input), 1, kInteresting[below(sizeof kInteresting)]);
        break;
      case 7:  // a dictionary token
      case 8:
        if (!tokens_.empty()) {
          const Bytes& token = tokens_[below(tokens_.size())];
          const std::size_t at = position(input);
          if (below(3) == 0 && at < input.size()) {
            input.replace(at, std::min(token.size(), input.size() - at), token);
          } else {
            input.insert(at, token);
          }
        }
        break;
    }
  }

  std::mt19937_64 rng_;
  const std::vector<Bytes>& seeds_;
  const std::vector<Bytes>& tokens_;
};

bool parse_options(int argc, char** argv, Options& options) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--mutations" && has_value) {
      options.mutations = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--seed" && has_value) {
      options.seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--time-limit" && has_value) {
      options.time_limit = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
    } else if (arg == "--dict" && has_value) {
      options.dict = argv[++i];
    } else if (arg == "--crash-dir" && has_value) {
      options.crash_dir = argv[++i];
    } else if (arg.starts_with("--")) {
      std::fprintf(stderr, "fuzz: unknown option %s\n", arg.c_str());
      return false;
    } else {
      options.inputs.emplace_back(arg);
    }
  }
  return !options.inputs.empty();
}

std::vector<Bytes> read_inputs(const std::vector<fs::path>& inputs, std::vector<std::string>& names) {
  std::vector<Bytes> seeds;
  for (const auto& input : inputs) {
    std::vector<fs::path> files;
    if (fs::is_directory(input)) {
      for (const auto& entry : fs::directory_iterator(input))
        if (entry.is_regular_file()) files.push_back(entry.path());
      std::sort(files.begin(), files.end());  // the order, and so the mutations, are fixed
    } else {
      files.push_back(input);
    }
    for (const auto& file : files) {
      seeds.push_back(read_file(file));
      names.push_back(file.string());
    }
  }
  return seeds;
}

// Runs one input under the time limit; an exception out of the target is a failure.
void run_one(const Bytes& input, const std::string& name, unsigned time_limit) {
  g_current = &input;
  std::snprintf(g_current_name, sizeof g_current_name, "%s", name.c_str());
  alarm(time_limit);
  try {
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
  } catch (const std::exception& e) {
    say("fuzz: exception out of the target: ");
    say(e.what());
    say("\n");
    dump_and_exit("exception", 5);
  } catch (...) {
    dump_and_exit("exception (not a std::exception)", 5);
  }
  alarm(0);
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!parse_options(argc, argv, options)) {
    std::fprintf(stderr,
                 "usage: %s [--mutations N] [--seed S] [--time-limit SECONDS] [--dict FILE] "
                 "[--crash-dir DIR] CORPUS_DIR|FILE...\n",
                 argv[0]);
    return 2;
  }
  std::vector<std::string> names;
  const std::vector<Bytes> seeds = read_inputs(options.inputs, names);
  if (seeds.empty()) {
    std::fprintf(stderr, "fuzz: no inputs in the given corpus\n");
    return 2;
  }
  const std::vector<Bytes> tokens = options.dict.empty() ? std::vector<Bytes>{} : read_dictionary(options.dict);
  const std::string target = fs::path(argv[0]).filename().string();
  fs::create_directories(options.crash_dir);
  install_handlers();

  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < seeds.size(); ++i) {
    std::snprintf(g_report_path, sizeof g_report_path, "%s/seed-%s-%zu.bin", options.crash_dir.c_str(),
                  target.c_str(), i);
    run_one(seeds[i], names[i], options.time_limit);
  }
  Mutator mutator(options.seed, seeds, tokens);
  for (std::uint64_t i = 0; i < options.mutations; ++i) {
    const Bytes input = mutator.next();
    std::snprintf(g_report_path, sizeof g_report_path, "%s/failure-%s-%llu.bin", options.crash_dir.c_str(),
                  target.c_str(), static_cast<unsigned long long>(i));
    run_one(input, "mutation " + std::to_string(i) + " (seed " + std::to_string(options.seed) + ")",
            options.time_limit);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("fuzz: %s: %zu seeds and %llu mutations ran without a crash, hang or exception (%.1f s)\n",
              target.c_str(), seeds.size(), static_cast<unsigned long long>(options.mutations), seconds);
  return 0;
}
