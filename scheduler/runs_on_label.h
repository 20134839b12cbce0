#pragma once
// What a `runs-on` label says about the machine a job wants, beside its name.
#include <optional>
#include <string>
#include <string_view>

namespace sandci::scheduler {

// The CPU architecture a `runs-on` label names, as uname spells it: "aarch64" for
// ubuntu-24.04-arm, linux-arm64, ARM64, aarch64, linux/arm64; "x86_64" for x64,
// amd64, x86_64; also "armv7", "riscv64", "ppc64le", "s390x". Read from the
// label's words (split at '-', '/' and spaces, any case); nullopt when no word
// names one (ubuntu-latest, self-hosted).
std::optional<std::string> runs_on_architecture(std::string_view runs_on_label);

}  // namespace sandci::scheduler
