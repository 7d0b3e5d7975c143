/* control/bootstrap/bootstrap.c: a member's start, before its threads run — the data directory and its
 * identity, then one of: recovery of a member with data (also --force-new-cluster), bootstrap of a new
 * cluster from --initial-cluster or discovery, or joining an existing one (phase 2 of a member add) —
 * and the peer transport --dataplane names. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "bootstrap.h"
#include "clock.h"
#include "discovery.h"
#include "grpc_tls.h"
#include "log.h"
#include "node.h"
#include "node_compactor.h"
#include "node_snapshot.h"
#include "peer_tls.h"
#include "peer_url.h"
#include "udp.h"
#ifdef QUORUMD_HAVE_DPDK
#include "dpdk.h"
#endif

/* text JSON-escaped, malloc'd: for log fields that carry flags, paths or errors. */
static char *json_escaped_copy(const char *text)
{
	size_t size = strlen(text) * 6 + 8; /* every byte may become \u00XX */
	return (char *)log_json_escape(text, xmalloc(size), size);
}

/* ---- the data directory ---- */

static int make_directory(const char *path, char *err, size_t errlen)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create directory %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int sync_directory(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

/* member/identity holds the member and cluster IDs, written (and fsync'd) before the first WAL record,
 * so a restart always knows who it is, whatever the state machine had applied. */
static int write_identity(const struct node *node, char *err, size_t errlen)
{
	char path[4200], temporary[4300];
	snprintf(path, sizeof(path), "%s/identity", node->member_dir);
	snprintf(temporary, sizeof(temporary), "%s.tmp", path);
	char body[256];
	int body_length = snprintf(body, sizeof(body), "{\"member_id\":\"%" PRIx64 "\",\"cluster_id\":\"%" PRIx64 "\"}\n",
	                           node->member_id, node->cluster_id);
	int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, body, (size_t)body_length) != body_length || fsync(fd) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", temporary, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	if (rename(temporary, path) != 0 || sync_directory(node->member_dir) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int read_identity(struct node *node, bool *found, char *err, size_t errlen)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/identity", node->member_dir);
	json_error_t json_error;
	json_t *value = json_load_file(path, 0, &json_error);
	*found = false;
	if (!value) {
		if (access(path, F_OK) != 0)
			return 0;
		snprintf(err, errlen, "cannot read %s: %s", path, json_error.text);
		return -1;
	}
	const char *member = NULL, *cluster = NULL;
	int rc = json_unpack(value, "{s:s, s:s}", "member_id", &member, "cluster_id", &cluster);
	if (rc == 0) {
		node->member_id = strtoull(member, NULL, 16);
		node->cluster_id = strtoull(cluster, NULL, 16);
	}
	json_decref(value);
	if (rc != 0 || node->member_id == 0) {
		snprintf(err, errlen, "%s is damaged: expected member_id and cluster_id", path);
		return -1;
	}
	*found = true;
	return 0;
}

/* ---- bootstrap and recovery ---- */

static int same_url_sets(char **a, size_t a_count, char **b, size_t b_count)
{
	if (a_count != b_count)
		return 0;
	for (size_t i = 0; i < a_count; i++) {
		bool found = false;
		for (size_t j = 0; j < b_count && !found; j++)
			found = strcmp(a[i], b[j]) == 0;
		if (!found)
			return 0;
	}
	return 1;
}

static char *join_urls(char **urls, size_t count)
{
	size_t length = 1;
	for (size_t k = 0; k < count; k++)
		length += strlen(urls[k]) + 1;
	char *joined = xcalloc(1, length);
	for (size_t k = 0; k < count; k++) {
		if (k)
			strcat(joined, ",");
		strcat(joined, urls[k]);
	}
	return joined;
}

static raft_t *new_raft(struct node *node, const struct raft_restore *restore, uint64_t applied, char *err,
                        size_t errlen)
{
	struct raft_config config;
	raft_config_defaults(&config, node->member_id);
	config.election_tick = (int)(node->flags.election_timeout_ms / node->flags.heartbeat_interval_ms);
	config.heartbeat_tick = 1;
	config.applied = applied;
	config.max_size_per_msg = 64 * 1024; /* a few dozen datagrams at most: a lost fragment costs little */
	config.max_inflight_msgs = 512;
	config.random_seed = node->member_id ^ (uint64_t)time(NULL);
	return raft_new(&config, restore, err, errlen);
}

/* A new cluster: --initial-cluster names every member; ours must be there with our advertised URLs. */
/* srv_matched: the --initial-cluster came from DNS SRV records, where our entry was found by resolved
 * address (etcd's srv.GetCluster), so it may name a host where --initial-advertise-peer-urls has its
 * address; the check of our URLs as written is then already done. */
static int bootstrap_new_cluster(struct node *node, bool srv_matched, char *err, size_t errlen)
{
	struct initial_cluster cluster;
	if (initial_cluster_parse(node->flags.initial_cluster, node->flags.initial_cluster_token, &cluster, err,
	                          errlen) != 0)
		return -1;
	const struct initial_member *self = initial_cluster_find(&cluster, node->flags.name);
	if (!self) {
		snprintf(err, errlen, "couldn't find local name \"%s\" in the initial cluster configuration",
		         node->flags.name);
		initial_cluster_free(&cluster);
		return -1;
	}
	char **advertised = NULL;
	size_t advertised_count = 0;
	if (peer_url_list_parse(node->flags.initial_advertise_peer_urls, &advertised, &advertised_count, err, errlen) != 0) {
		initial_cluster_free(&cluster);
		return -1;
	}
	if (!srv_matched && !same_url_sets(self->peer_urls, self->peer_urls_count, advertised, advertised_count)) {
		char *listed = join_urls(self->peer_urls, self->peer_urls_count);
		snprintf(err, errlen, "--initial-cluster has %s=%s but missing from --initial-advertise-peer-urls=%s",
		         node->flags.name, listed, node->flags.initial_advertise_peer_urls);
		free(listed);
		peer_url_list_free(advertised, advertised_count);
		initial_cluster_free(&cluster);
		return -1;
	}
	peer_url_list_free(advertised, advertised_count);
	node->member_id = self->id;
	node->cluster_id = cluster.cluster_id;
	int rc = write_identity(node, err, errlen);
	if (rc == 0) {
		node->raft = new_raft(node, NULL, 0, err, errlen);
		rc = node->raft ? 0 : -1;
	}
	if (rc == 0) {
		uint64_t *voters = xcalloc(cluster.count, sizeof(uint64_t));
		struct raft_buffer *contexts = xcalloc(cluster.count, sizeof(struct raft_buffer));
		char **texts = xcalloc(cluster.count, sizeof(char *));
		for (size_t k = 0; k < cluster.count; k++) {
			struct member member = {0};
			member.id = cluster.members[k].id;
			member.name = "";
			member.peer_urls = cluster.members[k].peer_urls;
			member.peer_urls_count = cluster.members[k].peer_urls_count;
			texts[k] = member_to_json(&member);
			voters[k] = member.id;
			contexts[k].data = texts[k];
			contexts[k].length = strlen(texts[k]);
		}
		if (raft_bootstrap_members(node->raft, voters, contexts, cluster.count) != RAFT_OK) {
			snprintf(err, errlen, "cannot bootstrap the Raft log");
			rc = -1;
		}
		for (size_t k = 0; k < cluster.count; k++)
			free(texts[k]);
		free(texts);
		free(contexts);
		free(voters);
	}
	membership_init(&node->membership, node->cluster_id);
	if (rc == 0)
		log_write("info", "starting a new cluster", "\"member-id\":\"%" PRIx64 "\",\"cluster-id\":\"%" PRIx64 "\","
		         "\"initial-cluster\":\"%s\"", node->member_id, node->cluster_id, node->flags.initial_cluster);
	initial_cluster_free(&cluster);
	return rc;
}


/* ---- --force-new-cluster: a majority lost for good ---- */

struct forced_entries {
	Raftpb__Entry *entries;
	size_t count;
};

static void forced_entries_free(struct forced_entries *forced)
{
	for (size_t k = 0; k < forced->count; k++)
		free(forced->entries[k].data.data);
	free(forced->entries);
	forced->entries = NULL;
	forced->count = 0;
}

/* The member list at the commit index: the state's (at the applied index) plus the committed
 * membership changes after it. */
static void membership_at_commit(struct node *node, const Raftpb__Entry *entries, size_t count, uint64_t applied,
                                 uint64_t commit, struct membership *out)
{
	membership_copy(out, &node->membership);
	for (size_t k = 0; k < count; k++) {
		const Raftpb__Entry *entry = &entries[k];
		if (entry->index <= applied || entry->index > commit || entry->type != RAFT_ENTRY_CONF_CHANGE)
			continue;
		Raftpb__ConfChange *change = raftpb__conf_change__unpack(NULL, entry->data.len, entry->data.data);
		if (!change)
			continue;
		struct member member = {0};
		bool has_member = change->context.len &&
		                  member_from_json((const char *)change->context.data, change->context.len, &member) ==
		                      MEMBERSHIP_OK;
		if (change->type == RAFT_CC_REMOVE_NODE)
			membership_remove(out, change->node_id);
		else if ((change->type == RAFT_CC_ADD_NODE || change->type == RAFT_CC_ADD_LEARNER_NODE) && has_member &&
		         !membership_find(out, change->node_id))
			membership_add(out, &member);
		if (has_member)
			member_free(&member);
		raftpb__conf_change__free_unpacked(change, NULL);
	}
}

/* etcd's --force-new-cluster: keep the committed log, drop the uncommitted tail, and commit changes
 * that remove every other member, so this one serves alone with all committed data; members are then
 * added back one by one. The new entries go to the WAL (durably) before the core sees them. */
static int force_new_cluster(struct node *node, Raftpb__HardState *hard_state, Raftpb__Entry *entries,
                             size_t *entry_count, struct forced_entries *forced, char *err, size_t errlen)
{
	uint64_t commit = hard_state->commit;
	size_t kept = 0;
	while (kept < *entry_count && entries[kept].index <= commit)
		kept++;
	uint64_t applied = state_applied_index(node->state);
	struct membership final;
	membership_at_commit(node, entries, kept, applied, commit, &final);
	forced->entries = xcalloc(final.count ? final.count : 1, sizeof(Raftpb__Entry));
	struct wal_entry *wal_entries = xcalloc(final.count ? final.count : 1, sizeof(struct wal_entry));
	for (size_t m = 0; m < final.count; m++) {
		if (final.members[m].id == node->member_id)
			continue;
		Raftpb__ConfChange change = RAFTPB__CONF_CHANGE__INIT;
		change.type = RAFT_CC_REMOVE_NODE;
		change.node_id = final.members[m].id;
		Raftpb__Entry *entry = &forced->entries[forced->count];
		raftpb__entry__init(entry);
		entry->type = RAFT_ENTRY_CONF_CHANGE;
		entry->term = hard_state->term;
		entry->index = commit + forced->count + 1;
		entry->data.len = raftpb__conf_change__get_packed_size(&change);
		entry->data.data = xmalloc(entry->data.len);
		raftpb__conf_change__pack(&change, entry->data.data);
		wal_entries[forced->count] = (struct wal_entry){entry->term, entry->index, (uint32_t)entry->type,
		                                                entry->data.data, entry->data.len};
		forced->count++;
	}
	membership_free(&final);
	hard_state->commit = commit + forced->count;
	struct wal_hard_state durable = {hard_state->term, hard_state->vote, hard_state->commit};
	uint64_t ignored;
	int rc = wal_truncate_after(node->wal, commit, err, errlen);
	if (rc == 0 && forced->count)
		rc = wal_append_entries(node->wal, wal_entries, forced->count, err, errlen);
	if (rc == 0)
		rc = wal_set_hard_state(node->wal, &durable, err, errlen);
	if (rc == 0)
		rc = wal_submit(node->wal, err, errlen);
	while (rc == 0 && !wal_all_durable(node->wal))
		rc = wal_wait(node->wal, &ignored, err, errlen);
	free(wal_entries);
	if (rc != 0)
		return -1;
	*entry_count = kept;
	log_write("warn", "forcing restart from the data of this member: it becomes a one-member cluster",
	         "\"member-id\":\"%" PRIx64 "\",\"commit-index\":%" PRIu64 ",\"removed-members\":%zu", node->member_id,
	         commit, forced->count);
	return 0;
}

/* An existing member: its identity file, the WAL and the state machine say everything; the flags that
 * only matter for a bootstrap are ignored, as etcd does. */
static int recover_member(struct node *node, char *err, size_t errlen)
{
	/* First: the snapshot may have to replace a state an interrupted install left behind. */
	Raftpb__Snapshot *snapshot = NULL;
	if (snapshot_recover(node, &snapshot, err, errlen) != 0)
		return -1;
	struct state_bytes blob = state_membership(node->state);
	if (blob.len) {
		if (membership_decode((const char *)blob.data, blob.len, &node->membership) != MEMBERSHIP_OK) {
			snprintf(err, errlen, "the member list stored in %s/state is damaged", node->member_dir);
			if (snapshot)
				raftpb__snapshot__free_unpacked(snapshot, NULL);
			return -1;
		}
	} else {
		membership_init(&node->membership, node->cluster_id);
	}
	if (membership_is_removed(&node->membership, node->member_id)) {
		log_write("warn", "the member has been permanently removed from the cluster", "\"member-id\":\"%" PRIx64 "\"",
		         node->member_id);
		log_write("warn", "the data-dir used by this member must be removed", "\"data-dir\":\"%s\"",
		         node->flags.data_dir);
		snprintf(err, errlen, "the member has been permanently removed from the cluster");
		if (snapshot)
			raftpb__snapshot__free_unpacked(snapshot, NULL);
		return -1;
	}
	const struct wal_recovered *recovered = wal_recovered(node->wal);
	Raftpb__HardState hard_state = RAFTPB__HARD_STATE__INIT;
	hard_state.term = recovered->hard_state.term;
	hard_state.vote = recovered->hard_state.vote;
	hard_state.commit = recovered->hard_state.commit;
	Raftpb__Entry *entries = xcalloc(recovered->entry_count ? recovered->entry_count : 1, sizeof(Raftpb__Entry));
	Raftpb__Entry **pointers = xcalloc(recovered->entry_count ? recovered->entry_count : 1, sizeof(Raftpb__Entry *));
	for (size_t k = 0; k < recovered->entry_count; k++) {
		raftpb__entry__init(&entries[k]);
		entries[k].term = recovered->entries[k].term;
		entries[k].index = recovered->entries[k].index;
		entries[k].type = (Raftpb__EntryType)recovered->entries[k].type;
		entries[k].data.data = (uint8_t *)recovered->entries[k].data;
		entries[k].data.len = recovered->entries[k].data_length;
		pointers[k] = &entries[k];
	}
	/* The commit index in the WAL may trail what was applied (it is written with the entries, while
	 * the state commits in its own batch after them): never below the applied index. */
	uint64_t applied = state_applied_index(node->state);
	if (hard_state.commit < applied)
		hard_state.commit = applied;
	size_t entry_count = recovered->entry_count;
	struct forced_entries forced = {0};
	if (node->flags.force_new_cluster) {
		if (force_new_cluster(node, &hard_state, entries, &entry_count, &forced, err, errlen) != 0) {
			free(pointers);
			free(entries);
			if (snapshot)
				raftpb__snapshot__free_unpacked(snapshot, NULL);
			return -1;
		}
		pointers = xrealloc(pointers, (entry_count + forced.count) * sizeof(Raftpb__Entry *));
		for (size_t k = 0; k < forced.count; k++)
			pointers[entry_count + k] = &forced.entries[k];
		entry_count += forced.count;
	}
	struct raft_restore restore = {recovered->has_hard_state ? &hard_state : NULL, snapshot, pointers, entry_count};
	node->raft = new_raft(node, &restore, applied, err, errlen);
	if (snapshot)
		raftpb__snapshot__free_unpacked(snapshot, NULL);
	forced_entries_free(&forced);
	free(pointers);
	free(entries);
	wal_recovered_release(node->wal);
	if (!node->raft)
		return -1;
	log_write("info", "restarting member", "\"member-id\":\"%" PRIx64 "\",\"cluster-id\":\"%" PRIx64 "\","
	         "\"commit-index\":%" PRIu64 ",\"applied-index\":%" PRIu64 ",\"snapshot-index\":%" PRIu64
	         ",\"wal-entries\":%zu", node->member_id, node->cluster_id, hard_state.commit, applied,
	         node->initial_snapshot_index, entry_count);
	return 0;
}


/* The address peers reach us at: the first of --listen-peer-urls (list checked, each URL parsed). */
static int parse_listen_url(const struct node *node, struct peer_url *listen, char *err, size_t errlen)
{
	char **urls = NULL;
	size_t count = 0;
	if (peer_url_list_parse(node->flags.listen_peer_urls, &urls, &count, err, errlen) != 0)
		return -1;
	int rc = peer_url_parse(urls[0], listen, err, errlen);
	peer_url_list_free(urls, count);
	return rc;
}

/* ---- joining an existing cluster (phase 2 of a member add) ---- */

struct join_answer {
	bool received;
	char *cluster_id;
	char *membership;
};

static void take_join_answer(void *argument, const struct transport_message *message)
{
	struct join_answer *answer = argument;
	if (answer->received || message->length < 2 || message->data[0] != PEER_CLUSTER_REPLY)
		return;
	json_error_t error;
	json_t *value = json_loadb((const char *)message->data + 1, message->length - 1, 0, &error);
	const char *cluster = NULL, *membership = NULL;
	if (value && json_unpack(value, "{s:s, s:s}", "cluster_id", &cluster, "membership", &membership) == 0) {
		answer->cluster_id = strdup(cluster);
		answer->membership = strdup(membership);
		answer->received = answer->cluster_id && answer->membership;
	}
	json_decref(value);
}

static int compare_member_urls(const void *a, const void *b)
{
	const struct member *x = *(const struct member *const *)a, *y = *(const struct member *const *)b;
	return strcmp(x->peer_urls_count ? x->peer_urls[0] : "", y->peer_urls_count ? y->peer_urls[0] : "");
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* etcd's ValidateClusterAndAssignIDs: the local --initial-cluster must list the same members, with the
 * same peer URLs compared as written, as the cluster itself. */
static int validate_initial_cluster(const struct membership *existing, const struct initial_cluster *local,
                                    char *err, size_t errlen)
{
	if (existing->count != local->count) {
		snprintf(err, errlen, "error validating peerURLs: member count is unequal");
		return -1;
	}
	struct member **ours = xcalloc(local->count, sizeof(*ours));
	struct member *locals = xcalloc(local->count, sizeof(*locals));
	const struct member **theirs = xcalloc(existing->count, sizeof(*theirs));
	for (size_t k = 0; k < local->count; k++) {
		locals[k].peer_urls = local->members[k].peer_urls;
		locals[k].peer_urls_count = local->members[k].peer_urls_count;
		qsort(locals[k].peer_urls, locals[k].peer_urls_count, sizeof(char *), compare_strings);
		ours[k] = &locals[k];
		theirs[k] = &existing->members[k];
	}
	qsort(ours, local->count, sizeof(*ours), compare_member_urls);
	qsort(theirs, existing->count, sizeof(*theirs), compare_member_urls);
	int rc = 0;
	for (size_t k = 0; k < local->count && rc == 0; k++) {
		const struct member *a = theirs[k], *b = ours[k];
		size_t n = a->peer_urls_count > b->peer_urls_count ? a->peer_urls_count : b->peer_urls_count;
		for (size_t u = 0; u < n; u++) {
			const char *left = u < a->peer_urls_count ? a->peer_urls[u] : "";
			const char *right = u < b->peer_urls_count ? b->peer_urls[u] : "";
			if (strcmp(left, right) != 0) {
				/* The seed's wording (etcd 3.4.5): URLs as written, with what each resolved from. */
				snprintf(err, errlen, "unmatched member while checking PeerURLs (\"%s\"(resolved from \"%s\") != "
				         "\"%s\"(resolved from \"%s\"))", left, left, right, right);
				rc = -1;
				break;
			}
		}
	}
	free(ours);
	free(locals);
	free(theirs);
	return rc;
}

/* etcd's peer TLS set-up (embed.configurePeerListeners, etcd 3.4) from the flags: --peer-auto-tls makes a
 * self-signed certificate in DATA_DIR/fixtures/peer unless certificates are given; TLS is on when the
 * listen peer URL is https (an http URL with certificates is served in clear, with etcd's warning; an https
 * URL without them stops quorumd with etcd's error). Fills settings (strings in *owned, freed by the
 * caller) and returns 1 when peer TLS is on, 0 when off, -1 on error. */
static int peer_tls_prepare(const struct node *node, const struct peer_url *listen, struct peer_tls_settings *settings,
                            char **owned, char *err, size_t errlen)
{
	const struct node_flags *flags = &node->flags;
	memset(settings, 0, sizeof(*settings));
	settings->cert_file = flags->peer_cert_file;
	settings->key_file = flags->peer_key_file;
	settings->trusted_ca_file = flags->peer_trusted_ca_file;
	settings->client_cert_auth = flags->peer_client_cert_auth;
	settings->allowed_cn = flags->peer_cert_allowed_cn;
	settings->allowed_hostname = flags->peer_cert_allowed_hostname;
	settings->crl_file = flags->peer_crl_file;
	bool certificate_given = *flags->peer_cert_file || *flags->peer_key_file;
	bool https = strcmp(listen->scheme, "https") == 0;
	if (flags->peer_auto_tls && certificate_given) {
		log_write("warn", "ignoring peer auto TLS since certs given", NULL);
	} else if (flags->peer_auto_tls && https) {
		size_t directory_size = strlen(flags->data_dir) + sizeof("/fixtures/peer");
		char *directory = xmalloc(directory_size);
		snprintf(directory, directory_size, "%s/fixtures/peer", flags->data_dir);
		char host_port[300];
		snprintf(host_port, sizeof(host_port), strchr(listen->host, ':') ? "[%s]:%u" : "%s:%u", listen->host,
		         (unsigned)listen->port);
		const char *hosts[] = {host_port};
		bool created = false;
		if (grpc_tls_self_signed(directory, hosts, 1, &created, err, errlen) != 0) {
			free(directory);
			return -1;
		}
		size_t path_size = directory_size + sizeof("/cert.pem");
		owned[0] = xmalloc(path_size);
		owned[1] = xmalloc(path_size);
		snprintf(owned[0], path_size, "%s/cert.pem", directory);
		snprintf(owned[1], path_size, "%s/key.pem", directory);
		free(directory);
		settings->cert_file = owned[0];
		settings->key_file = owned[1];
		/* etcd's self-signed peers do not verify each other (TLSInfo.selfCert: InsecureSkipVerify), and
		 * the generated TLS configuration replaces the trusted CA and client-cert-auth. */
		settings->trusted_ca_file = "";
		settings->client_cert_auth = false;
		settings->skip_verify = true;
		settings->crl_file = "";
		settings->allowed_hostname = "";
		if (created) {
			char escaped[4096];
			log_write("info", "created cert file", "\"path\":\"%s\"", log_json_escape(owned[0], escaped, sizeof(escaped)));
			log_write("info", "created key file", "\"path\":\"%s\"", log_json_escape(owned[1], escaped, sizeof(escaped)));
		}
		certificate_given = true;
	}
	if (certificate_given) {
		char info[8192], escaped[8192 + 512];
		snprintf(info, sizeof(info), "cert = %s, key = %s, trusted-ca = %s, client-cert-auth = %s, crl-file = %s",
		         settings->cert_file, settings->key_file, settings->trusted_ca_file,
		         settings->client_cert_auth ? "true" : "false", settings->crl_file);
		log_write("info", "starting with peer TLS", "\"tls-info\":\"%s\",\"cipher-suites\":[]",
		          log_json_escape(info, escaped, sizeof(escaped)));
	}
	if (!https) {
		if (certificate_given) {
			char url[300], escaped[700];
			snprintf(url, sizeof(url), strchr(listen->host, ':') ? "http://[%s]:%u" : "http://%s:%u", listen->host,
			         (unsigned)listen->port);
			log_write("warn", "scheme is HTTP while key and cert files are present; ignoring key and cert files",
			          "\"peer-url\":\"%s\"", log_json_escape(url, escaped, sizeof(escaped)));
		}
		return 0;
	}
	if (!certificate_given) {
		snprintf(err, errlen, strchr(listen->host, ':') ? "cannot listen on TLS for [%s]:%u: KeyFile and CertFile are "
		         "not presented" : "cannot listen on TLS for %s:%u: KeyFile and CertFile are not presented",
		         listen->host, (unsigned)listen->port);
		return -1;
	}
	/* etcd's TLSInfo.ServerConfig refuses both, when the listener is made. */
	if (*settings->allowed_cn && *settings->allowed_hostname) {
		snprintf(err, errlen, "AllowedCN and AllowedHostname are mutually exclusive (cn=\"%s\", hostname=\"%s\")",
		         settings->allowed_cn, settings->allowed_hostname);
		return -1;
	}
	/* Test only: a short re-key interval, so a test sees a periodic re-key happen. */
	const char *rekey = getenv("QUORUMD_TEST_PEER_REKEY_MS");
	if (rekey && *rekey)
		settings->rekey_interval_ms = strtoull(rekey, NULL, 10);
	return 1;
}

/* The peer transport --dataplane names, listening on this member's peer URL. */
/* Frames to loopback peers: a quarter of loopback's MTU carries a 64 KiB entry in five frames (not 47), while
 * the send queue's slots (send_queue of them) stay at 16 MiB of address space, touched only as far as frames
 * fill them. */
#define LOOPBACK_PEER_DATAGRAM (16u * 1024u)

static bool is_loopback_host(const char *host)
{
	return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 || strcmp(host, "[::1]") == 0 ||
	       strcmp(host, "localhost") == 0;
}

static int open_transport(const struct node *node, const struct transport_config *given,
                          const struct peer_url *listen, struct transport **out, char *err, size_t errlen)
{
	struct transport_config with_node_settings = *given;
	const struct transport_config *config = &with_node_settings;
	struct peer_tls_settings tls;
	char *owned[2] = {NULL, NULL};
	int tls_on = peer_tls_prepare(node, listen, &tls, owned, err, errlen);
	if (tls_on < 0)
		return -EINVAL;
	int rc = 0;
	if (tls_on && *node->flags.peer_frame_key_file) {
		snprintf(err, errlen, "--peer-frame-key-file and peer TLS (an https peer URL with --peer-cert-file or "
		         "--peer-auto-tls) are exclusive: peer TLS authenticates and encrypts every frame already");
		rc = -EINVAL;
		goto done;
	}
	with_node_settings.frame_key_file = node->flags.peer_frame_key_file;
	with_node_settings.peer_tls = tls_on ? &tls : NULL;
	if (tls_on) {
		log_write("info", "peer frames are sealed with keys from TLS handshakes", "\"listen-peer-url\":\"%s:%u\"",
		          listen->host, (unsigned)listen->port);
	} else if (!*node->flags.peer_frame_key_file) {
		/* Without a key any host that reaches the peer port can send votes and appends in a member's name. */
		log_write("warn", "peer traffic is unauthenticated: no --peer-cert-file nor --peer-frame-key-file",
		         "\"listen-peer-url\":\"%s:%u\"", listen->host, (unsigned)listen->port);
	} else {
		char *escaped = json_escaped_copy(node->flags.peer_frame_key_file);
		log_write("info", "peer frames carry a MAC keyed from the peer frame key file",
		          "\"peer-frame-key-file\":\"%s\"", escaped);
		free(escaped);
	}
	/* Test only: the chaos tests delay, duplicate and reorder peer frames with the transport's fault layer,
	 * because this kernel has no netem qdisc. Not a flag, so an operator cannot turn it on by accident. */
	const char *faults = getenv("QUORUMD_TEST_PEER_FAULTS");
	if (faults && *faults) {
		char fault_error[256];
		if (fault_config_parse(faults, &with_node_settings.fault, fault_error, sizeof(fault_error)) != 0) {
			snprintf(err, errlen, "QUORUMD_TEST_PEER_FAULTS: %s", fault_error);
			rc = -EINVAL;
			goto done;
		}
		log_write("warn", "test fault layer on: peer frames are dropped, delayed, duplicated or reordered on "
		         "purpose", "\"faults\":\"%s\"", faults);
	}
	if (strcmp(node->flags.dataplane, "dpdk") == 0) {
#ifdef QUORUMD_HAVE_DPDK
		struct dpdk_options options;
		dpdk_options_init(&options);
		options.eal_args = node->flags.dpdk_args;
		options.neighbours = node->flags.dpdk_neighbors;
		if (dpdk_idle_parse(node->flags.dataplane_idle, &options.idle) != 0) {
			snprintf(err, errlen, "invalid --dataplane-idle=%s", node->flags.dataplane_idle);
			rc = -EINVAL;
			goto done;
		}
		rc = dpdk_transport_open(config, &options, listen->host, listen->port, out, err, errlen);
		goto done;
#endif
	}
	/* A member listening on loopback talks to loopback peers only, whose MTU is 64 KiB: larger datagrams
	 * carry a big entry in a few frames instead of dozens (every receiver takes up to 64 KiB). */
	if (is_loopback_host(listen->host))
		with_node_settings.max_datagram = LOOPBACK_PEER_DATAGRAM;
	rc = udp_transport_open(config, listen->host, listen->port, out, err, errlen);
done:
	free(owned[0]);
	free(owned[1]);
	return rc;
}

static int join_existing_cluster(struct node *node, char *err, size_t errlen)
{
	struct initial_cluster cluster;
	if (initial_cluster_parse(node->flags.initial_cluster, node->flags.initial_cluster_token, &cluster, err,
	                          errlen) != 0)
		return -1;
	if (!initial_cluster_find(&cluster, node->flags.name)) {
		snprintf(err, errlen, "couldn't find local name \"%s\" in the initial cluster configuration",
		         node->flags.name);
		initial_cluster_free(&cluster);
		return -1;
	}
	struct peer_url listen;
	int rc = parse_listen_url(node, &listen, err, errlen);
	struct transport *transport = NULL;
	struct transport_config config;
	transport_config_init(&config); /* ids 0: join mode */
	if (rc == 0)
		rc = open_transport(node, &config, &listen, &transport, err, errlen);
	if (rc != 0) {
		initial_cluster_free(&cluster);
		return -1;
	}
	uint64_t scratch = 1;
	for (size_t m = 0; m < cluster.count; m++) {
		if (strcmp(cluster.members[m].name, node->flags.name) == 0)
			continue;
		for (size_t u = 0; u < cluster.members[m].peer_urls_count; u++) {
			struct peer_url url;
			char ignored[256];
			if (peer_url_parse(cluster.members[m].peer_urls[u], &url, ignored, sizeof(ignored)) == 0)
				transport_add_peer(transport, scratch++, url.host, url.port, ignored, sizeof(ignored));
		}
	}
	char query[512];
	int query_length = snprintf(query, sizeof(query), "%c{\"reply_host\":\"%s\",\"reply_port\":%u}",
	                            PEER_CLUSTER_QUERY, listen.host, (unsigned)listen.port);
	struct join_answer answer = {0};
	uint64_t deadline = clock_monotonic_ms() + 10000;
	/* Ask every peer of --initial-cluster, again every half second, until one answers. */
	while (!answer.received && clock_monotonic_ms() < deadline) {
		char ignored[256];
		for (uint64_t id = 1; id < scratch; id++)
			transport_send(transport, id, (const uint8_t *)query, (size_t)query_length, ignored, sizeof(ignored));
		transport_flush(transport, ignored, sizeof(ignored));
		uint64_t round_end = clock_monotonic_ms() + 500;
		while (!answer.received && clock_monotonic_ms() < round_end)
			transport_poll(transport, 100, take_join_answer, &answer, ignored, sizeof(ignored));
	}
	transport_close(transport);
	if (!answer.received) {
		snprintf(err, errlen, "cannot fetch cluster info from peer urls: no member of --initial-cluster "
		         "answered (%s)", node->flags.initial_cluster);
		initial_cluster_free(&cluster);
		return -1;
	}
	struct membership existing;
	rc = membership_decode(answer.membership, strlen(answer.membership), &existing);
	if (rc != MEMBERSHIP_OK) {
		snprintf(err, errlen, "the member list a peer sent does not decode");
	} else if (validate_initial_cluster(&existing, &cluster, err, errlen) == 0) {
		char **advertised = NULL;
		size_t advertised_count = 0;
		rc = peer_url_list_parse(node->flags.initial_advertise_peer_urls, &advertised, &advertised_count, err, errlen);
		const struct member *self = rc == 0 ? membership_find_peer_url(&existing, (const char *const *)advertised,
		                                                                 advertised_count, 0)
		                                     : NULL;
		if (rc == 0 && !self)
			snprintf(err, errlen, "no member of the cluster has --initial-advertise-peer-urls=%s: add it "
			         "first (member add)", node->flags.initial_advertise_peer_urls);
		if (self) {
			node->member_id = self->id;
			node->cluster_id = strtoull(answer.cluster_id, NULL, 16);
			membership_copy(&node->membership, &existing);
			node->membership.cluster_id = node->cluster_id;
		}
		peer_url_list_free(advertised, advertised_count);
	}
	if (existing.members)
		membership_free(&existing);
	free(answer.cluster_id);
	free(answer.membership);
	initial_cluster_free(&cluster);
	if (node->member_id == 0)
		return -1;
	if (write_identity(node, err, errlen) != 0)
		return -1;
	/* An empty log: the leader sends everything from the first entry (or a snapshot). */
	node->raft = new_raft(node, NULL, 0, err, errlen);
	if (!node->raft)
		return -1;
	log_write("info", "joining an existing cluster", "\"member-id\":\"%" PRIx64 "\",\"cluster-id\":\"%" PRIx64 "\"",
	         node->member_id, node->cluster_id);
	return 0;
}

/* Receive thread: a removed member is still sending; the core tells it (once a second at most). */
static void note_removed_member(void *argument, uint64_t from)
{
	struct node *node = argument;
	struct core_mail *mail = calloc(1, sizeof(*mail));
	if (!mail)
		return;
	mail->kind = CORE_MAIL_PEER;
	mail->peer.from = from;
	mail->peer.length = 1;
	mail->peer.bytes = malloc(1);
	if (!mail->peer.bytes) {
		free(mail);
		return;
	}
	mail->peer.bytes[0] = PEER_REMOVED_MEMBER_SEEN;
	core_mailbox_post(&node->core_inbox, mail);
}

/* ---- bootstrap discovery: only for a new data dir ---- */

/* Replaces flags.initial_cluster (and, for v3 discovery, the cluster token: etcd bootstraps with the
 * discovery token as the cluster token) with what discovery found. *srv_matched tells
 * bootstrap_new_cluster that our entry was matched by resolved address. */
static int discover_initial_cluster(struct node *node, bool *srv_matched, char *err, size_t errlen)
{
	struct node_flags *flags = &node->flags;
	*srv_matched = false;
	char *found = NULL;
	if (*flags->discovery_srv) {
		if (discovery_srv_cluster(flags->discovery_srv, flags->discovery_srv_name, flags->name,
		                          flags->initial_advertise_peer_urls, &found, err, errlen) != 0)
			return -1;
		*srv_matched = true;
	} else if (*flags->discovery_endpoints) {
		if (flags->initial_cluster_state == INITIAL_CLUSTER_STATE_EXISTING) {
			/* etcd would register nothing and find no peer to join through; say what to do instead. */
			snprintf(err, errlen, "v3 discovery (--discovery-endpoints) bootstraps a new cluster only; to join "
			         "an existing cluster, use the --initial-cluster that `member add` printed with "
			         "--initial-cluster-state existing");
			return -1;
		}
		/* The registration key carries the member ID this member bootstraps with: our own entry parsed
		 * the way the discovered cluster will be, with the discovery token as the cluster token. */
		char *own = NULL;
		char **urls = NULL;
		size_t count = 0;
		if (peer_url_list_parse(flags->initial_advertise_peer_urls, &urls, &count, err, errlen) != 0)
			return -1;
		size_t own_length = 1;
		for (size_t k = 0; k < count; k++)
			own_length += strlen(flags->name) + strlen(urls[k]) + 2;
		own = xcalloc(1, own_length);
		for (size_t k = 0; k < count; k++) {
			strcat(own, k ? "," : "");
			strcat(own, flags->name);
			strcat(own, "=");
			strcat(own, urls[k]);
		}
		peer_url_list_free(urls, count);
		struct initial_cluster self;
		int rc = initial_cluster_parse(own, flags->discovery_token, &self, err, errlen);
		free(own);
		if (rc != 0)
			return -1;
		struct discovery_v3_config config = {
			.endpoints = flags->discovery_endpoints,
			.token = flags->discovery_token,
			.name = flags->name,
			.advertise_peer_urls = flags->initial_advertise_peer_urls,
			.member_id = self.members[0].id,
			.expected_size = flags->discovery_cluster_size,
			.request_timeout_ms = 5000, /* etcd's default --discovery-request-timeout */
		};
		initial_cluster_free(&self);
		log_write("info", "Bootstrapping cluster using v3 discovery.", NULL);
		if (discovery_v3_join(&config, &found, err, errlen) != 0) {
			if (!strstr(err, "stopped by a signal")) {
				char *token = json_escaped_copy(flags->discovery_token), *reason = json_escaped_copy(err);
				log_write("warn", "failed to bootstrap; discovery token was already used",
				         "\"discovery-token\":\"%s\",\"error\":\"%s\"", token, reason);
				free(token);
				free(reason);
				log_write("warn", "do not reuse discovery token; generate a new one to bootstrap a cluster", NULL);
			}
			return -1;
		}
		free(flags->initial_cluster_token);
		flags->initial_cluster_token = xstrdup(flags->discovery_token);
	} else {
		return 0;
	}
	free(flags->initial_cluster);
	flags->initial_cluster = found;
	return 0;
}

int bootstrap_open(struct node *node, char *err, size_t errlen)
{
#ifndef QUORUMD_HAVE_DPDK
	if (strcmp(node->flags.dataplane, "udp") != 0) {
		snprintf(err, errlen, "--dataplane=%s is not available in this build (meson did not find DPDK: "
		         "libdpdk-dev): only udp (kernel sockets) is", node->flags.dataplane);
		return -1;
	}
#endif
	struct compactor_config compaction;
	if (compactor_parse(node->flags.auto_compaction_mode, node->flags.auto_compaction_retention, &compaction, err,
	                    errlen) != 0)
		return -1;
	snprintf(node->member_dir, sizeof(node->member_dir), "%s/member", node->flags.data_dir);
	if (make_directory(node->flags.data_dir, err, errlen) || make_directory(node->member_dir, err, errlen))
		return -1;
	char wal_dir[4200], state_dir[4200];
	if (node->flags.wal_dir && *node->flags.wal_dir)
		snprintf(wal_dir, sizeof(wal_dir), "%s", node->flags.wal_dir);
	else
		snprintf(wal_dir, sizeof(wal_dir), "%s/wal", node->member_dir);
	snprintf(state_dir, sizeof(state_dir), "%s/state", node->member_dir);
	if (make_directory(wal_dir, err, errlen) || make_directory(state_dir, err, errlen))
		return -1;
	bool known = false;
	if (read_identity(node, &known, err, errlen) != 0)
		return -1;
	struct wal_options options;
	wal_options_init(&options);
	/* Segments fitted to a small disk must still take the largest entry a client may send. */
	options.min_segment_size = node->flags.max_request_bytes + (64u << 10);
	/* Test only: small segments, so a test sees WAL segments released after a few thousand writes rather
	 * than after 64 MiB of them. Not a flag, so an operator cannot set it by accident. */
	const char *segment_bytes = getenv("QUORUMD_TEST_WAL_SEGMENT_BYTES");
	if (segment_bytes && *segment_bytes) {
		options.segment_size = strtoull(segment_bytes, NULL, 10);
		log_write("warn", "test setting on: WAL segments of a test size", "\"segment-bytes\":%" PRIu64,
		          options.segment_size);
	}
	/* A commit is one O_DIRECT write carrying RWF_DSYNC: io_uring issues it from the core's own thread, where
	 * a linked fdatasync would wake one of its workers for every commit (measured in bench/README.md). The
	 * wal falls back by itself where the file system refuses it. */
	options.direct_io = true;
	options.dsync_writes = true;
	if (wal_open(wal_dir, &options, &node->wal, err, errlen) != 0)
		return -1;
	char escaped_wal_dir[sizeof(wal_dir) * 2];
	log_write("info", "opened the WAL", "\"wal-dir\":\"%s\",\"write-mode\":\"%s\"",
	          log_json_escape(wal_dir, escaped_wal_dir, sizeof(escaped_wal_dir)), wal_write_mode(node->wal));
	if (state_open(state_dir, &node->state, err, errlen) != STATE_OK)
		return -1;
	char snap_dir[4200];
	snprintf(snap_dir, sizeof(snap_dir), "%s/snap", node->member_dir);
	if (snap_store_open(snap_dir, &node->snapshots, err, errlen) != 0)
		return -1;
	const struct wal_recovered *recovered = wal_recovered(node->wal);
	bool has_log = recovered->has_hard_state || recovered->entry_count > 0 || recovered->has_snapshot;
	if (known && has_log) {
		/* Discovery is for a new data dir only (etcd's rule): a member with data starts from it and never
		 * asks the discovery service, which may be gone or hold a later cluster by now. */
		char *escaped_wal_dir = json_escaped_copy(wal_dir);
		if (*node->flags.discovery_endpoints)
			log_write("warn", "discovery token is ignored since cluster already initialized; valid logs are found",
			         "\"wal-dir\":\"%s\"", escaped_wal_dir);
		if (*node->flags.discovery_srv)
			log_write("warn", "DNS SRV discovery is ignored since cluster already initialized; valid logs are found",
			         "\"wal-dir\":\"%s\"", escaped_wal_dir);
		free(escaped_wal_dir);
		if (recover_member(node, err, errlen) != 0)
			return -1;
	} else {
		wal_recovered_release(node->wal);
		if (has_log) {
			/* WAL records without member/identity (always written before the first record): the data
			 * dir is damaged, not new. Bootstrapping (or asking discovery for a cluster) over it would
			 * throw away whatever this member acknowledged. */
			snprintf(err, errlen, "%s has WAL records but %s/identity is missing: the data dir is not new%s; "
			         "restore the identity file or start with an empty data dir", wal_dir, node->member_dir,
			         *node->flags.discovery_srv || *node->flags.discovery_endpoints ? ", so discovery is not used"
			                                                                       : "");
			return -1;
		}
		bool srv_matched = false;
		if (discover_initial_cluster(node, &srv_matched, err, errlen) != 0)
			return -1;
		if (node->flags.initial_cluster_state == INITIAL_CLUSTER_STATE_EXISTING) {
			if (join_existing_cluster(node, err, errlen) != 0)
				return -1;
		} else if (bootstrap_new_cluster(node, srv_matched, err, errlen) != 0) {
			return -1;
		}
	}
	atomic_store(&node->applied_index, state_applied_index(node->state));
	atomic_store(&node->revision, (uint64_t)state_revision(node->state));
	atomic_store(&node->db_size, state_db_size(node->state));
	/* The storage thread records it with its first snapshot (later ones get it from the core). */
	node->initial_conf_state = snapshot_pack_conf_state(node->raft, &node->initial_conf_state_length);

	struct peer_url listen;
	int rc = parse_listen_url(node, &listen, err, errlen);
	if (rc != 0)
		return -1;
	struct transport_config config;
	transport_config_init(&config);
	config.cluster_id = node->cluster_id;
	config.member_id = node->member_id;
	config.on_removed_member = note_removed_member;
	config.on_removed_member_arg = node;
	if (open_transport(node, &config, &listen, &node->transport, err, errlen) != 0)
		return -1;
	return 0;
}

