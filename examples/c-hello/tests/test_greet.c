#include <stdio.h>
#include <string.h>

#include "greet.h"

static int failures;

#define CHECK(cond)                                                       \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,        \
                    __LINE__, #cond);                                     \
            failures++;                                                   \
        }                                                                 \
    } while (0)

static void test_greet(void)
{
    char buf[32];

    CHECK(greet("sandci", buf, sizeof buf) == 14);
    CHECK(strcmp(buf, "Hello, sandci!") == 0);
    greet(NULL, buf, sizeof buf);
    CHECK(strcmp(buf, "Hello, world!") == 0);
    greet("", buf, sizeof buf);
    CHECK(strcmp(buf, "Hello, world!") == 0);
}

static void test_greet_truncates(void)
{
    char buf[8];

    CHECK(greet("a long name", buf, sizeof buf) == 19);
    CHECK(strcmp(buf, "Hello, ") == 0);
    CHECK(greet("x", NULL, 0) == 9);
}

static void test_count_words(void)
{
    CHECK(count_words(NULL) == 0);
    CHECK(count_words("") == 0);
    CHECK(count_words("   \t\n") == 0);
    CHECK(count_words("one") == 1);
    CHECK(count_words("  two  words ") == 2);
    CHECK(count_words("a\tb\nc d") == 4);
}

int main(void)
{
    test_greet();
    test_greet_truncates();
    test_count_words();
    if (failures > 0) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    puts("all greet tests passed");
    return 0;
}
