#include "agent/server/agent_log.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <mutex>

namespace sandci::agent::server {
namespace {

// Formats as usual, masks the whole line, writes it in one call.
class MaskingStderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit MaskingStderrSink(std::shared_ptr<const SecretMasker> masker) : masker_(std::move(masker)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    const std::string line = masker_->mask(std::string_view(formatted.data(), formatted.size()));
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
  void flush_() override { std::fflush(stderr); }

 private:
  std::shared_ptr<const SecretMasker> masker_;
};

}  // namespace

bool init_agent_log(const std::string& level, std::shared_ptr<const SecretMasker> masker) {
  const auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") return false;
  auto logger = std::make_shared<spdlog::logger>("sandci", std::make_shared<MaskingStderrSink>(std::move(masker)));
  // The journal stamps time and unit; under a terminal the level is enough.
  logger->set_pattern("%l %v");
  logger->set_level(parsed);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  return true;
}

}  // namespace sandci::agent::server
