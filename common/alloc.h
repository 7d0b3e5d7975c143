/* common/alloc.h: allocation that cannot fail. A member that runs out of memory cannot keep its promises
 * (a half-applied batch, a reply never sent), so instead of a NULL check at every call site it stops at
 * once with a line naming the size it could not get; the supervisor (systemd) restarts it from its WAL. */
#ifndef QUORUMD_COMMON_ALLOC_H
#define QUORUMD_COMMON_ALLOC_H

#include <stddef.h>
#include <stdlib.h>

void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *pointer, size_t size);
/* realloc of count elements of size bytes, stopping on overflow as on exhaustion. */
void *xreallocarray(void *pointer, size_t count, size_t size);
char *xstrdup(const char *text);
char *xstrndup(const char *text, size_t length);
void *xmemdup(const void *bytes, size_t length);

/* Stops the process: the one place allocation failure ends up. */
_Noreturn void alloc_failed(size_t size);

#endif
