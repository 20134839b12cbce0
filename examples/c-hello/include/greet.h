#ifndef GREET_H
#define GREET_H

#include <stddef.h>

/* Writes "Hello, <name>!" into buf (at most size bytes, always NUL-terminated when
 * size > 0). A NULL or empty name greets "world". Returns the length the full greeting
 * needs (without the NUL), like snprintf, so callers can detect truncation. */
size_t greet(const char *name, char *buf, size_t size);

/* Counts the words (runs of non-blank characters) in s; 0 for NULL. */
size_t count_words(const char *s);

#endif /* GREET_H */
