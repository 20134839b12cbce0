#include "greet.h"

#include <ctype.h>
#include <stdio.h>

size_t greet(const char *name, char *buf, size_t size)
{
    if (name == NULL || name[0] == '\0')
        name = "world";
    int n = snprintf(buf, size, "Hello, %s!", name);
    return n < 0 ? 0 : (size_t)n;
}

size_t count_words(const char *s)
{
    size_t words = 0;
    int in_word = 0;
    if (s == NULL)
        return 0;
    for (; *s != '\0'; s++) {
        if (isspace((unsigned char)*s)) {
            in_word = 0;
        } else if (!in_word) {
            in_word = 1;
            words++;
        }
    }
    return words;
}
