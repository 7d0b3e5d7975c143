/* tests/control/test_mailbox.c: the mailbox's sleep handshake (control/node/mailbox.h). Four senders post
 * while the owner alternates between busy turns and sleeps that wait for the doorbell with no timeout: a
 * lost wake-up hangs the owner (meson's timeout fails the test); every item must arrive exactly once. */
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "mailbox.h"

enum { SENDERS = 4, ITEMS_PER_SENDER = 200000 };

struct sender {
	struct mailbox *mailbox;
	uintptr_t first;
};

static void *send_items(void *argument)
{
	struct sender *sender = argument;
	for (uintptr_t k = 0; k < ITEMS_PER_SENDER; k++)
		mailbox_post(sender->mailbox, (void *)(sender->first + k + 1));
	return NULL;
}

int main(void)
{
	struct mailbox mailbox;
	CHECK(mailbox_init(&mailbox) == 0, "mailbox_init");
	mailbox_owner_polls(&mailbox);
	uint8_t *seen = calloc(SENDERS * ITEMS_PER_SENDER + 1, 1);
	struct sender senders[SENDERS];
	pthread_t threads[SENDERS];
	for (int s = 0; s < SENDERS; s++) {
		senders[s] = (struct sender){&mailbox, (uintptr_t)s * ITEMS_PER_SENDER};
		pthread_create(&threads[s], NULL, send_items, &senders[s]);
	}
	size_t received = 0, duplicates = 0, sleeps = 0, doorbells = 0;
	for (unsigned turn = 0; received < SENDERS * ITEMS_PER_SENDER; turn++) {
		/* Every fourth turn the owner sleeps until the bell rings (no timeout: only a ring ends it). */
		if (turn % 4 == 0 && mailbox_sleep_begin(&mailbox)) {
			struct pollfd bell = {.fd = mailbox_fd(&mailbox), .events = POLLIN};
			int ready = poll(&bell, 1, -1);
			mailbox_sleep_end(&mailbox);
			sleeps++;
			if (ready == 1) {
				mailbox_doorbell_heard(&mailbox);
				doorbells++;
			}
		}
		if (!mailbox_waiting(&mailbox))
			continue;
		void **items = NULL;
		size_t count = mailbox_take_all(&mailbox, &items);
		for (size_t k = 0; k < count; k++) {
			uintptr_t value = (uintptr_t)items[k];
			if (seen[value])
				duplicates++;
			seen[value] = 1;
		}
		received += count;
		free(items);
	}
	for (int s = 0; s < SENDERS; s++)
		pthread_join(threads[s], NULL);
	CHECK(received == SENDERS * ITEMS_PER_SENDER, "received %zu items, want %d", received, SENDERS * ITEMS_PER_SENDER);
	CHECK(duplicates == 0, "%zu items arrived twice", duplicates);
	CHECK(!mailbox_waiting(&mailbox), "mail left after the last item");
	printf("%zu items, %zu sleeps, %zu doorbells\n", received, sleeps, doorbells);
	mailbox_destroy(&mailbox);
	free(seen);
	return failures != 0;
}
