#pragma once
// "Did you mean ...?" suggestions for misspelt names (keys, events, contexts,
// functions), shared by every validator so they all suggest the same way.
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sandci::scheduler {

enum class LetterCase { kSensitive, kInsensitive };

// Levenshtein distance (insert, delete, substitute one character). kInsensitive
// compares ASCII letters regardless of case. Costs |a| * |b| steps: callers that
// take hostile words cut them first.
std::size_t edit_distance(std::string_view a, std::string_view b,
                          LetterCase letter_case = LetterCase::kSensitive);

// How far a word may be from a candidate and still count as a typo of it.
using Reach = std::size_t (*)(std::string_view word, std::string_view candidate);

// max(2, |word| / 3): longer names tolerate more typos (keys, events, job ids).
std::size_t reach_by_word_length(std::string_view word, std::string_view candidate);
// 1 for candidates of up to 4 characters, else 2 (expression contexts, functions).
std::size_t reach_by_candidate_length(std::string_view word, std::string_view candidate);

struct SuggestionRule {
  LetterCase letter_case = LetterCase::kSensitive;
  Reach reach = reach_by_word_length;
};

// The candidate closest to `word` within its reach; among equally close ones, the
// first. Empty when none is within reach.
std::string_view closest_candidate(std::string_view word,
                                   std::span<const std::string_view> candidates,
                                   const SuggestionRule& rule = {});

// " (did you mean 'runs-on'?)" for the closest candidate, "" when there is none:
// ready to append to an error message.
std::string did_you_mean(std::string_view word, std::span<const std::string_view> candidates,
                         const SuggestionRule& rule = {});

// The same for candidates held as strings.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates,
                         const SuggestionRule& rule = {});

}  // namespace sandci::scheduler
