/* control/node/mailbox.h: how the node's threads hand work to each other. A mailbox is a queue of pointers
 * any thread may post to and one thread drains; its eventfd becomes readable when mail is waiting, so the
 * owner sleeps in epoll with its other fds. Posting is cheap and never blocks for long; the owner takes
 * everything waiting in one call, which is what batches proposals and storage jobs.
 *
 * The doorbell is rung once per batch: on the first item of an empty mailbox. An owner that loops anyway
 * (the core, the storage thread) can do better with mailbox_owner_polls: then the bell rings only while the
 * owner said it sleeps (mailbox_sleep_begin .. mailbox_sleep_end), so a busy owner costs its senders no
 * system call and itself no wake-up, and it looks at the mailbox every turn (mailbox_waiting: an atomic
 * load, no lock). */
#ifndef QUORUMD_CONTROL_MAILBOX_H
#define QUORUMD_CONTROL_MAILBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stddef.h>

struct mailbox {
	pthread_mutex_t lock;
	void **items;
	size_t count;
	size_t capacity;
	int event_fd;
	void **spare;             /* the owner's last array, given back for the next batch */
	size_t spare_capacity;
	size_t taken_capacity;
	atomic_bool owner_polls;  /* set once, by node_start_threads */
	atomic_size_t waiting;    /* count, readable without the lock */
	atomic_bool owner_asleep;
	atomic_bool rung;         /* the eventfd holds a ring not yet read */
};

/* Returns 0 or -errno. */
int mailbox_init(struct mailbox *mailbox);
void mailbox_destroy(struct mailbox *mailbox);
void mailbox_post(struct mailbox *mailbox, void *item);
/* Moves every waiting item into *items (an array the caller frees with free(), or better gives back with
 * mailbox_give_back, so the next batches reuse it instead of growing a new array each time) and clears the
 * eventfd. */
size_t mailbox_take_all(struct mailbox *mailbox, void ***items);
void mailbox_give_back(struct mailbox *mailbox, void **items);
int mailbox_fd(const struct mailbox *mailbox);
/* The owner's side of the sleep protocol (see above): call mailbox_owner_polls before the first post; then
 * before sleeping, mailbox_sleep_begin (false: mail is waiting, do not sleep), after the sleep it allowed
 * mailbox_sleep_end, and whenever epoll names the mailbox's fd, mailbox_doorbell_heard (reads the bell). */
void mailbox_owner_polls(struct mailbox *mailbox);
bool mailbox_sleep_begin(struct mailbox *mailbox);
void mailbox_sleep_end(struct mailbox *mailbox);
void mailbox_doorbell_heard(struct mailbox *mailbox);
static inline bool mailbox_waiting(struct mailbox *mailbox)
{
	return atomic_load_explicit(&mailbox->waiting, memory_order_acquire) > 0;
}

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
	static inline void name##_owner_polls(struct name *box) { mailbox_owner_polls(&box->untyped); }        \
	static inline bool name##_sleep_begin(struct name *box) { return mailbox_sleep_begin(&box->untyped); } \
	static inline void name##_sleep_end(struct name *box) { mailbox_sleep_end(&box->untyped); }            \
	static inline void name##_doorbell_heard(struct name *box) { mailbox_doorbell_heard(&box->untyped); }  \
	static inline bool name##_waiting(struct name *box) { return mailbox_waiting(&box->untyped); }        \
	static inline void name##_give_back(struct name *box, item_type **items)                              \
	{                                                                                                      \
		mailbox_give_back(&box->untyped, (void **)items);                                                 \
	}                                                                                                      \
	static inline size_t name##_take_all(struct name *box, item_type ***items)                            \
	{                                                                                                      \
		void **untyped_items = NULL;                                                                       \
		size_t count = mailbox_take_all(&box->untyped, &untyped_items);                                    \
		*items = (item_type **)untyped_items;                                                              \
		return count;                                                                                      \
	}

#endif
