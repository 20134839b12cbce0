#pragma once
// Debian's headless Chromium as a test's eyes: the DOM a page has after its scripts
// ran, and screenshots. Chromium only ever loads 127.0.0.1 URLs given by the test,
// and each call is bounded by `timeout`, so a page that never settles cannot hang a
// test.
#include <filesystem>
#include <string>

#include "integration/git/git_test_support.h"

namespace sandci::agent::testing {

inline bool chromium_available() { return git::testing::run({"sh", "-c", "command -v chromium"}).status == 0; }

inline std::string chromium_command(const std::string& flags, const std::string& url, int limit_seconds) {
  // Single quotes: the URLs come from the test and hold no quote.
  // A fresh profile per call, removed afterwards.
  return "p=$(mktemp -d) && timeout " + std::to_string(limit_seconds) +
         " chromium --headless --disable-gpu --no-sandbox --no-first-run --disable-extensions "
         "--user-data-dir=\"$p\" " +
         flags + " '" + url + "' 2>/dev/null; s=$?; rm -rf \"$p\"; exit $s";
}

// The DOM after the page's scripts ran for up to `virtual_ms` of virtual time
// (timers fire at once; time stands still while a fetch is pending, so a page that
// polls every 2 s keeps polling, in real time, until it stops by itself).
inline std::string dump_dom(const std::string& url, long virtual_ms = 5000, int limit_seconds = 180) {
  return git::testing::run(
             {"sh", "-c", chromium_command("--virtual-time-budget=" + std::to_string(virtual_ms) + " --dump-dom",
                                           url, limit_seconds)})
      .output;
}

// A PNG of the page at width x height; true when the file was written.
inline bool screenshot(const std::string& url, const std::filesystem::path& file, int width = 1000,
                       int height = 800) {
  git::testing::run({"sh", "-c",
                     chromium_command("--virtual-time-budget=3000 --hide-scrollbars --screenshot=" + file.string() +
                                          " --window-size=" + std::to_string(width) + "," + std::to_string(height),
                                      url, 120)});
  return std::filesystem::exists(file) && std::filesystem::file_size(file) > 1000;
}

}  // namespace sandci::agent::testing
