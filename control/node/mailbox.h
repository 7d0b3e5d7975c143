/* control/node/mailbox.h: how the node's threads hand work to each other. A mailbox is a queue of pointers
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

/* MAILBOX_OF(name, item_type): a mailbox that carries only item_type, so the compiler checks every
 * post and take against the one message type a mailbox is for (node.h lists them, each with its
 * sender and receiver). The untyped mailbox above is only the storage underneath. */
#define MAILBOX_OF(name, item_type)                                                                        \
	struct name {                                                                                          \
		struct mailbox untyped;                                                                            \
	};                                                                                                     \
	static inline int name##_init(struct name *box) { return mailbox_init(&box->untyped); }                \
	static inline void name##_destroy(struct name *box) { mailbox_destroy(&box->untyped); }                \
	static inline void name##_post(struct name *box, item_type *item) { mailbox_post(&box->untyped, item); } \
	static inline int name##_fd(const struct name *box) { return mailbox_fd(&box->untyped); }              \
	static inline size_t name##_take_all(struct name *box, item_type ***items)                            \
	{                                                                                                      \
		void **untyped_items = NULL;                                                                       \
		size_t count = mailbox_take_all(&box->untyped, &untyped_items);                                    \
		*items = (item_type **)untyped_items;                                                              \
		return count;                                                                                      \
	}

#endif
