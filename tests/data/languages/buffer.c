#include <stdlib.h>
#include "buffer.h"

#define CAPACITY 64

typedef struct buffer {
    char *data;
    size_t size;
} buffer_t;

static char *grow(buffer_t *b, size_t n) {
    return realloc(b->data, b->size + n);
}

int buffer_append(buffer_t *b, const char *text) {
    return grow(b, 1) != NULL;
}
