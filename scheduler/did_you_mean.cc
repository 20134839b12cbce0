#include "scheduler/did_you_mean.h"

#include <algorithm>

namespace sandci::scheduler {
namespace {

char fold(char c, LetterCase letter_case) {
  if (letter_case == LetterCase::kInsensitive && c >= 'a' && c <= 'z') return static_cast<char>(c - 'a' + 'A');
  return c;
}

}  // namespace

std::size_t edit_distance(std::string_view a, std::string_view b, LetterCase letter_case) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];  // row[i-1][j-1]
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      const bool same = fold(a[i - 1], letter_case) == fold(b[j - 1], letter_case);
      row[j] = std::min({up + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::size_t reach_by_word_length(std::string_view word, std::string_view) {
  return std::max<std::size_t>(2, word.size() / 3);
}

std::size_t reach_by_candidate_length(std::string_view, std::string_view candidate) {
  return candidate.size() <= 4 ? 1 : 2;
}

std::string_view closest_candidate(std::string_view word,
                                   std::span<const std::string_view> candidates,
                                   const SuggestionRule& rule) {
  std::string_view best;
  std::size_t best_distance = 0;
  bool found = false;
  for (std::string_view candidate : candidates) {
    const std::size_t distance = edit_distance(word, candidate, rule.letter_case);
    if (distance <= rule.reach(word, candidate) && (!found || distance < best_distance)) {
      best = candidate;
      best_distance = distance;
      found = true;
    }
  }
  return best;
}

std::string did_you_mean(std::string_view word, std::span<const std::string_view> candidates,
                         const SuggestionRule& rule) {
  const std::string_view best = closest_candidate(word, candidates, rule);
  if (best.empty()) return "";
  return " (did you mean '" + std::string(best) + "'?)";
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates,
                         const SuggestionRule& rule) {
  const std::vector<std::string_view> views(candidates.begin(), candidates.end());
  return did_you_mean(word, std::span<const std::string_view>(views), rule);
}

}  // namespace sandci::scheduler
