/* control/mailbox.h: how the node's threads hand work to each other. A mailbox is a queue of pointers
 * any thread may post to and one thread drains; its eventfd becomes readable when mail is waiting, so the
 * owner sleeps in epoll with its other fds. Posting is cheap and never blocks for long; the owner takes
 * everything waiting in one call, which is what batches proposals and storage jobs. */
#ifndef QUORUMD_CONTROL_MAILBOX_H
#define QUORUMD_CONTROL_MAILBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct mailbox {
	pthread_mutex_t lock;
	void **items;
	size_t count;
	size_t capacity;
	int event_fd;
};

/* Returns 0 or -errno. */
int mailbox_init(struct mailbox *mailbox);
void mailbox_destroy(struct mailbox *mailbox);
void mailbox_post(struct mailbox *mailbox, void *item);
/* Moves every waiting item into *items (an array the caller frees with free()) and clears the eventfd. */
size_t mailbox_take_all(struct mailbox *mailbox, void ***items);
int mailbox_fd(const struct mailbox *mailbox);

#endif
