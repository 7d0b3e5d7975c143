/* common/alloc.c: see alloc.h. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

_Noreturn void alloc_failed(size_t size)
{
	fprintf(stderr, "{\"level\":\"fatal\",\"caller\":\"quorumd\",\"msg\":\"out of memory\",\"size\":%zu}\n", size);
	abort();
}

void *xmalloc(size_t size)
{
	void *pointer = malloc(size ? size : 1);
	if (!pointer)
		alloc_failed(size);
	return pointer;
}

void *xcalloc(size_t count, size_t size)
{
	void *pointer = calloc(count ? count : 1, size ? size : 1);
	if (!pointer)
		alloc_failed(count * size);
	return pointer;
}

void *xrealloc(void *pointer, size_t size)
{
	void *grown = realloc(pointer, size ? size : 1);
	if (!grown)
		alloc_failed(size);
	return grown;
}

void *xreallocarray(void *pointer, size_t count, size_t size)
{
	if (size != 0 && count > SIZE_MAX / size)
		alloc_failed(SIZE_MAX);
	return xrealloc(pointer, count * size);
}

char *xstrdup(const char *text)
{
	char *copy = strdup(text);
	if (!copy)
		alloc_failed(strlen(text) + 1);
	return copy;
}

char *xstrndup(const char *text, size_t length)
{
	char *copy = strndup(text, length);
	if (!copy)
		alloc_failed(length + 1);
	return copy;
}

void *xmemdup(const void *bytes, size_t length)
{
	void *copy = xmalloc(length);
	if (length)
		memcpy(copy, bytes, length);
	return copy;
}
