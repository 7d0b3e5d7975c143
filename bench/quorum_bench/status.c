/* bench/quorum_bench/status.c: Maintenance.Status of each endpoint, for --target-leader and the
 * `status` workload (which bench/compare.sh uses to tell whether a server speaks the gRPC API at all). */
#include "status.h"

#include "grpc_client.h"
#include "rpc.pb-c.h"

#include <stdlib.h>
#include <string.h>

int bench_status(const struct bench_endpoint *ep, const struct gconn_tls *tls, uint64_t timeout_ns,
    struct endpoint_status *st)
{
	memset(st, 0, sizeof(*st));
	Etcdserverpb__StatusRequest req = ETCDSERVERPB__STATUS_REQUEST__INIT;
	uint8_t packed[16];
	size_t n = etcdserverpb__status_request__pack(&req, packed);
	uint8_t *reply;
	size_t reply_length;
	st->code = gconn_call_sync_tls(ep->host, ep->port, ep->tls ? tls : NULL, "/etcdserverpb.Maintenance/Status", packed,
	    n, timeout_ns, &reply, &reply_length, st->message, sizeof(st->message));
	if (st->code != 0) {
		free(reply);
		return -1;
	}
	Etcdserverpb__StatusResponse *resp = etcdserverpb__status_response__unpack(NULL, reply_length, reply);
	free(reply);
	if (!resp) {
		st->code = 13;
		snprintf(st->message, sizeof(st->message), "undecodable StatusResponse");
		return -1;
	}
	st->ok = true;
	st->member_id = resp->header ? resp->header->member_id : 0;
	st->leader = resp->leader;
	st->raft_term = resp->raftterm;
	st->raft_index = resp->raftindex;
	st->applied_index = resp->raftappliedindex;
	st->db_size = resp->dbsize;
	st->is_learner = resp->islearner;
	snprintf(st->version, sizeof(st->version), "%s", resp->version ? resp->version : "");
	etcdserverpb__status_response__free_unpacked(resp, NULL);
	return 0;
}

int bench_find_leader(const struct bench_config *cfg, size_t *leader_index, char *err, size_t errlen)
{
	size_t off = 0;
	err[0] = '\0';
	for (size_t i = 0; i < cfg->endpoint_count; i++) {
		struct endpoint_status st;
		if (bench_status(&cfg->endpoints[i], cfg->tls, cfg->dial_timeout_ns, &st) != 0) {
			if (off < errlen)
				off += (size_t)snprintf(err + off, errlen - off, "%s%s: %s: %s", off ? "; " : "",
				    cfg->endpoints[i].url, grpc_status_name(st.code), st.message);
			continue;
		}
		if (st.leader != 0 && st.leader == st.member_id) {
			*leader_index = i;
			return 0;
		}
		if (off < errlen)
			off += (size_t)snprintf(err + off, errlen - off, "%s%s: member %llx, leader %llx", off ? "; " : "",
			    cfg->endpoints[i].url, (unsigned long long)st.member_id, (unsigned long long)st.leader);
	}
	return -1;
}

int bench_print_status(const struct bench_config *cfg, FILE *out)
{
	int failed = 0;
	if (!cfg->json)
		fprintf(out, "%-28s %-16s %-16s %-8s %10s %8s %12s %s\n", "ENDPOINT", "MEMBER", "LEADER", "VERSION", "DB SIZE",
		    "TERM", "RAFT INDEX", "STATUS");
	else
		fprintf(out, "{\"endpoints\":[");
	for (size_t i = 0; i < cfg->endpoint_count; i++) {
		struct endpoint_status st;
		const struct bench_endpoint *ep = &cfg->endpoints[i];
		bool ok = bench_status(ep, cfg->tls, cfg->dial_timeout_ns, &st) == 0;
		failed += !ok;
		if (cfg->json) {
			/* Only hex numbers, a version and the status name: nothing to escape but the message. */
			fprintf(out, "%s{\"endpoint\":\"%s\",\"ok\":%s", i ? "," : "", ep->url, ok ? "true" : "false");
			if (ok)
				fprintf(out, ",\"member_id\":\"%llx\",\"leader\":\"%llx\",\"is_leader\":%s,\"version\":\"%s\","
				             "\"db_size\":%lld,\"raft_term\":%llu,\"raft_index\":%llu,\"raft_applied_index\":%llu}",
				    (unsigned long long)st.member_id, (unsigned long long)st.leader,
				    st.leader == st.member_id ? "true" : "false", st.version, (long long)st.db_size,
				    (unsigned long long)st.raft_term, (unsigned long long)st.raft_index,
				    (unsigned long long)st.applied_index);
			else {
				fprintf(out, ",\"code\":\"%s\",\"message\":\"", grpc_status_name(st.code));
				for (const char *p = st.message; *p; p++)
					if (*p == '"' || *p == '\\')
						fprintf(out, "\\%c", *p);
					else if ((unsigned char)*p >= 0x20)
						fputc(*p, out);
				fprintf(out, "\"}");
			}
		} else if (ok) {
			fprintf(out, "%-28s %-16llx %-16llx %-8s %10lld %8llu %12llu %s\n", ep->url,
			    (unsigned long long)st.member_id, (unsigned long long)st.leader, st.version, (long long)st.db_size,
			    (unsigned long long)st.raft_term, (unsigned long long)st.raft_index,
			    st.leader == st.member_id ? "leader" : (st.is_learner ? "learner" : "follower"));
		} else {
			fprintf(out, "%-28s %s: %s\n", ep->url, grpc_status_name(st.code), st.message);
		}
	}
	if (cfg->json)
		fprintf(out, "]}\n");
	return failed ? 1 : 0;
}
