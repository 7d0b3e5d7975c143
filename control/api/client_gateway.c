/* control/api/client_gateway.c: etcd 3.4's gRPC JSON gateway paths (its rpc.pb.gw.go), each the method
 * a gRPC client would call, so a curl POST reaches the very handler etcdctl does. The server
 * (control/grpc: grpc_gateway.c) does the JSON and the HTTP. */
#include "client_internal.h"
#include "rpc.pb-c.h"

#define ROUTE(http, method, request_type, response_type, end) \
	{ http, method, &etcdserverpb__##request_type##__descriptor, &etcdserverpb__##response_type##__descriptor, end }
#define UNARY(http, method, request_type, response_type) \
	ROUTE(http, method, request_type, response_type, GRPC_GATEWAY_END_HALF_CLOSE)

const struct grpc_gateway_route client_gateway_routes[] = {
    UNARY("kv/range", "/etcdserverpb.KV/Range", range_request, range_response),
    UNARY("kv/put", "/etcdserverpb.KV/Put", put_request, put_response),
    UNARY("kv/deleterange", "/etcdserverpb.KV/DeleteRange", delete_range_request, delete_range_response),
    UNARY("kv/txn", "/etcdserverpb.KV/Txn", txn_request, txn_response),
    UNARY("kv/compaction", "/etcdserverpb.KV/Compact", compaction_request, compaction_response),
    /* etcd's Watch server keeps streaming after the end of the request body; its LeaseKeepAlive server
     * answers each request and returns at the end of the body. */
    ROUTE("watch", "/etcdserverpb.Watch/Watch", watch_request, watch_response, GRPC_GATEWAY_END_CLIENT_GONE),
    UNARY("lease/grant", "/etcdserverpb.Lease/LeaseGrant", lease_grant_request, lease_grant_response),
    UNARY("lease/revoke", "/etcdserverpb.Lease/LeaseRevoke", lease_revoke_request, lease_revoke_response),
    UNARY("kv/lease/revoke", "/etcdserverpb.Lease/LeaseRevoke", lease_revoke_request, lease_revoke_response),
    ROUTE("lease/keepalive", "/etcdserverpb.Lease/LeaseKeepAlive", lease_keep_alive_request, lease_keep_alive_response,
          GRPC_GATEWAY_END_AFTER_ANSWERS),
    UNARY("lease/timetolive", "/etcdserverpb.Lease/LeaseTimeToLive", lease_time_to_live_request,
          lease_time_to_live_response),
    UNARY("kv/lease/timetolive", "/etcdserverpb.Lease/LeaseTimeToLive", lease_time_to_live_request,
          lease_time_to_live_response),
    UNARY("lease/leases", "/etcdserverpb.Lease/LeaseLeases", lease_leases_request, lease_leases_response),
    UNARY("kv/lease/leases", "/etcdserverpb.Lease/LeaseLeases", lease_leases_request, lease_leases_response),
    UNARY("cluster/member/add", "/etcdserverpb.Cluster/MemberAdd", member_add_request, member_add_response),
    UNARY("cluster/member/remove", "/etcdserverpb.Cluster/MemberRemove", member_remove_request, member_remove_response),
    UNARY("cluster/member/update", "/etcdserverpb.Cluster/MemberUpdate", member_update_request, member_update_response),
    UNARY("cluster/member/list", "/etcdserverpb.Cluster/MemberList", member_list_request, member_list_response),
    UNARY("cluster/member/promote", "/etcdserverpb.Cluster/MemberPromote", member_promote_request,
          member_promote_response),
    UNARY("maintenance/alarm", "/etcdserverpb.Maintenance/Alarm", alarm_request, alarm_response),
    UNARY("maintenance/status", "/etcdserverpb.Maintenance/Status", status_request, status_response),
    UNARY("maintenance/defragment", "/etcdserverpb.Maintenance/Defragment", defragment_request, defragment_response),
    /* etcd registers Hash and HashKV on this path; grpc-gateway's mux takes the later one. */
    UNARY("maintenance/hash", "/etcdserverpb.Maintenance/HashKV", hash_kvrequest, hash_kvresponse),
    ROUTE("maintenance/snapshot", "/etcdserverpb.Maintenance/Snapshot", snapshot_request, snapshot_response,
          GRPC_GATEWAY_END_HALF_CLOSE),
    UNARY("maintenance/transfer-leadership", "/etcdserverpb.Maintenance/MoveLeader", move_leader_request,
          move_leader_response),
    UNARY("auth/enable", "/etcdserverpb.Auth/AuthEnable", auth_enable_request, auth_enable_response),
    UNARY("auth/disable", "/etcdserverpb.Auth/AuthDisable", auth_disable_request, auth_disable_response),
    UNARY("auth/authenticate", "/etcdserverpb.Auth/Authenticate", authenticate_request, authenticate_response),
    UNARY("auth/user/add", "/etcdserverpb.Auth/UserAdd", auth_user_add_request, auth_user_add_response),
    UNARY("auth/user/get", "/etcdserverpb.Auth/UserGet", auth_user_get_request, auth_user_get_response),
    UNARY("auth/user/list", "/etcdserverpb.Auth/UserList", auth_user_list_request, auth_user_list_response),
    UNARY("auth/user/delete", "/etcdserverpb.Auth/UserDelete", auth_user_delete_request, auth_user_delete_response),
    UNARY("auth/user/changepw", "/etcdserverpb.Auth/UserChangePassword", auth_user_change_password_request,
          auth_user_change_password_response),
    UNARY("auth/user/grant", "/etcdserverpb.Auth/UserGrantRole", auth_user_grant_role_request,
          auth_user_grant_role_response),
    UNARY("auth/user/revoke", "/etcdserverpb.Auth/UserRevokeRole", auth_user_revoke_role_request,
          auth_user_revoke_role_response),
    UNARY("auth/role/add", "/etcdserverpb.Auth/RoleAdd", auth_role_add_request, auth_role_add_response),
    UNARY("auth/role/get", "/etcdserverpb.Auth/RoleGet", auth_role_get_request, auth_role_get_response),
    UNARY("auth/role/list", "/etcdserverpb.Auth/RoleList", auth_role_list_request, auth_role_list_response),
    UNARY("auth/role/delete", "/etcdserverpb.Auth/RoleDelete", auth_role_delete_request, auth_role_delete_response),
    UNARY("auth/role/grant", "/etcdserverpb.Auth/RoleGrantPermission", auth_role_grant_permission_request,
          auth_role_grant_permission_response),
    UNARY("auth/role/revoke", "/etcdserverpb.Auth/RoleRevokePermission", auth_role_revoke_permission_request,
          auth_role_revoke_permission_response),
};
const size_t client_gateway_route_count = sizeof(client_gateway_routes) / sizeof(client_gateway_routes[0]);

/* etcd 3.4 serves the gateway under /v3/ and, for clients of 3.3, /v3beta/. */
const char *const client_gateway_prefixes[] = {"/v3/", "/v3beta/"};
const size_t client_gateway_prefix_count = sizeof(client_gateway_prefixes) / sizeof(client_gateway_prefixes[0]);
