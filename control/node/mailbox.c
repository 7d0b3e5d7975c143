/* control/node/mailbox.c: a mutex-protected pointer queue with an eventfd doorbell (mailbox.h). */
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
	free(mailbox->spare);
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
	atomic_store_explicit(&mailbox->waiting, mailbox->count, memory_order_release);
	pthread_mutex_unlock(&mailbox->lock);
	bool ring;
	if (atomic_load_explicit(&mailbox->owner_polls, memory_order_relaxed)) {
		/* Pairs with mailbox_sleep_begin: either the owner sees the item, or this sees it asleep. */
		atomic_thread_fence(memory_order_seq_cst);
		ring = atomic_load_explicit(&mailbox->owner_asleep, memory_order_relaxed) &&
		       !atomic_exchange_explicit(&mailbox->rung, true, memory_order_relaxed);
	} else {
		/* Ring only on the first item: the owner drains everything at once. */
		ring = was_empty;
	}
	if (ring) {
		uint64_t one = 1;
		ssize_t written = write(mailbox->event_fd, &one, sizeof(one));
		(void)written; /* EAGAIN means the counter is already non-zero: the owner will wake */
	}
}

void mailbox_owner_polls(struct mailbox *mailbox)
{
	atomic_store(&mailbox->owner_polls, true);
}

bool mailbox_sleep_begin(struct mailbox *mailbox)
{
	atomic_store_explicit(&mailbox->owner_asleep, true, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&mailbox->waiting, memory_order_relaxed) == 0)
		return true;
	atomic_store_explicit(&mailbox->owner_asleep, false, memory_order_relaxed);
	return false;
}

void mailbox_sleep_end(struct mailbox *mailbox)
{
	atomic_store_explicit(&mailbox->owner_asleep, false, memory_order_relaxed);
}

void mailbox_doorbell_heard(struct mailbox *mailbox)
{
	/* Read first, then cleared: cleared first, a sender that saw the owner asleep could set it again and
	 * write between the two, the read would swallow that write, and the flag would stay set with no ring
	 * pending — every later sender would then skip its ring (tests/control/test_mailbox.c caught that).
	 * In this order a sender that finds the flag still set skipped its ring, but its item is already
	 * queued, and the owner takes the mail after this. */
	uint64_t value;
	ssize_t got = read(mailbox->event_fd, &value, sizeof(value));
	(void)got;
	atomic_store_explicit(&mailbox->rung, false, memory_order_seq_cst);
}

size_t mailbox_take_all(struct mailbox *mailbox, void ***items)
{
	if (!atomic_load_explicit(&mailbox->owner_polls, memory_order_relaxed)) {
		uint64_t value;
		ssize_t got = read(mailbox->event_fd, &value, sizeof(value));
		(void)got;
	}
	pthread_mutex_lock(&mailbox->lock);
	size_t count = mailbox->count;
	*items = mailbox->items;
	mailbox->items = NULL;
	mailbox->taken_capacity = mailbox->capacity;
	mailbox->items = mailbox->spare;
	mailbox->capacity = mailbox->spare ? mailbox->spare_capacity : 0;
	mailbox->spare = NULL;
	mailbox->count = 0;
	atomic_store_explicit(&mailbox->waiting, 0, memory_order_relaxed);
	pthread_mutex_unlock(&mailbox->lock);
	return count;
}

void mailbox_give_back(struct mailbox *mailbox, void **items)
{
	if (items == NULL)
		return;
	pthread_mutex_lock(&mailbox->lock);
	/* Growing a fresh array every batch (realloc past malloc's small sizes) cost more than the batch. */
	if (mailbox->spare == NULL && mailbox->items == NULL) {
		mailbox->items = items;
		mailbox->capacity = mailbox->taken_capacity;
		items = NULL;
	} else if (mailbox->spare == NULL) {
		mailbox->spare = items;
		mailbox->spare_capacity = mailbox->taken_capacity;
		items = NULL;
	}
	pthread_mutex_unlock(&mailbox->lock);
	free(items);
}

int mailbox_fd(const struct mailbox *mailbox)
{
	return mailbox->event_fd;
}
