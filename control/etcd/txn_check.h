/* control/etcd/txn_check.h: the checks etcd 3.4 makes on a TxnRequest before proposing it (its v3rpc
 * layer), with etcd's texts; see README.md ("Txn checks") for the rules. */
#ifndef QUORUMD_CONTROL_ETCD_TXN_CHECK_H
#define QUORUMD_CONTROL_ETCD_TXN_CHECK_H

#include <stddef.h>

#include "rpc.pb-c.h"

/* etcd's --max-txn-ops default. */
#define KV_MAX_TXN_OPERATIONS 128

/* GRPC_OK, or GRPC_INVALID_ARGUMENT with etcd's text in error[0..error_length): "etcdserver: too many
 * operations in txn request", "... key is not provided", "... value is provided", "... lease is provided",
 * "... key not found" (an empty op), "... duplicate key given in txn request". max_operations bounds the
 * top level; each nested txn gets what its parent leaves. */
int kv_txn_check(const Etcdserverpb__TxnRequest *txn, size_t max_operations, char *err, size_t errlen);

#endif
