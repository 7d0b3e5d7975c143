/* control/node/mailbox.c: a mutex-protected pointer queue with an eventfd doorbell. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "alloc.h"
#include "mailbox.h"

int mailbox_init(struct mailbox *mailbox)
{
	memset(mailbox, 0, sizeof(*mailbox));
	mailbox->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (mailbox->event_fd < 0)
		return -errno;
	pthread_mutex_init(&mailbox->lock, NULL);
	return 0;
}

void mailbox_destroy(struct mailbox *mailbox)
{
	if (mailbox->event_fd >= 0)
		close(mailbox->event_fd);
	pthread_mutex_destroy(&mailbox->lock);
	free(mailbox->items);
	memset(mailbox, 0, sizeof(*mailbox));
	mailbox->event_fd = -1;
}

void mailbox_post(struct mailbox *mailbox, void *item)
{
	pthread_mutex_lock(&mailbox->lock);
	if (mailbox->count == mailbox->capacity) {
		size_t capacity = mailbox->capacity ? mailbox->capacity * 2 : 64;
		mailbox->items = xreallocarray(mailbox->items, capacity, sizeof(void *));
		mailbox->capacity = capacity;
	}
	bool was_empty = mailbox->count == 0;
	mailbox->items[mailbox->count++] = item;
	pthread_mutex_unlock(&mailbox->lock);
	/* Ring only on the first item: the owner drains everything at once. */
	if (was_empty) {
		uint64_t one = 1;
		ssize_t written = write(mailbox->event_fd, &one, sizeof(one));
		(void)written; /* EAGAIN means the counter is already non-zero: the owner will wake */
	}
}

size_t mailbox_take_all(struct mailbox *mailbox, void ***items)
{
	uint64_t value;
	ssize_t got = read(mailbox->event_fd, &value, sizeof(value));
	(void)got;
	pthread_mutex_lock(&mailbox->lock);
	size_t count = mailbox->count;
	*items = mailbox->items;
	mailbox->items = NULL;
	mailbox->count = 0;
	mailbox->capacity = 0;
	pthread_mutex_unlock(&mailbox->lock);
	return count;
}

int mailbox_fd(const struct mailbox *mailbox)
{
	return mailbox->event_fd;
}
