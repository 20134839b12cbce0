#include <stdio.h>
#include <string.h>

#include "greet.h"

#ifndef HELLO_VERSION
#define HELLO_VERSION "unknown"
#endif

int main(int argc, char **argv)
{
    char buf[64];

    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("hello %s\n", HELLO_VERSION);
        return 0;
    }
    size_t needed = greet(argc > 1 ? argv[1] : NULL, buf, sizeof buf);
    if (needed >= sizeof buf) {
        fprintf(stderr, "hello: name too long (%zu bytes needed)\n", needed);
        return 1;
    }
    puts(buf);
    return 0;
}
