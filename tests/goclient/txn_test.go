package goclient

// Txn as etcd 3.4 checks and applies it: nested transactions (etcdserver/apply.go compareToPath and
// applyTxn; the operation budget of v3rpc's checkTxnRequest shrinking with depth) and the duplicate-key
// checks of v3rpc's checkIntervals.

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/etcdserver/api/v3rpc/rpctypes"
	pb "go.etcd.io/etcd/etcdserver/etcdserverpb"
)

func valueOf(t *testing.T, client *clientv3.Client, key string) (string, int64, bool) {
	t.Helper()
	resp := mustGet(t, client, key)
	if len(resp.Kvs) == 0 {
		return "", 0, false
	}
	return string(resp.Kvs[0].Value), resp.Kvs[0].ModRevision, true
}

func TestTxnNested(t *testing.T) {
	client := newClient(t)
	p := keyPrefix(t, client)
	mustPut(t, client, p+"flag", "on")
	flagIs := func(v string) clientv3.Cmp { return clientv3.Compare(clientv3.Value(p+"flag"), "=", v) }

	resp, err := client.Txn(timeout(t, 10*time.Second)).If(flagIs("on")).Then(
		clientv3.OpPut(p+"a", "1"),
		clientv3.OpTxn([]clientv3.Cmp{flagIs("off")},
			[]clientv3.Op{clientv3.OpPut(p+"b", "then")},
			[]clientv3.Op{clientv3.OpPut(p+"b", "else"), clientv3.OpGet(p + "a")}),
		clientv3.OpGet(p+"b"),
	).Commit()
	if err != nil {
		t.Fatalf("nested txn: %v", err)
	}
	rev := resp.Header.Revision
	if !resp.Succeeded || len(resp.Responses) != 3 {
		t.Fatalf("nested txn: succeeded %v with %d responses, want true and 3", resp.Succeeded, len(resp.Responses))
	}
	inner := resp.Responses[1].GetResponseTxn()
	if inner == nil || inner.Succeeded || len(inner.Responses) != 2 {
		t.Fatalf("inner txn response: %+v, want the failure branch with 2 responses", inner)
	}
	// A range later in the txn sees the writes before it, whatever the nesting.
	if kvs := inner.Responses[1].GetResponseRange().Kvs; len(kvs) != 1 || string(kvs[0].Value) != "1" || kvs[0].ModRevision != rev {
		t.Errorf("inner get of a: %+v, want the outer put (value 1 at %d)", kvs, rev)
	}
	if kvs := resp.Responses[2].GetResponseRange().Kvs; len(kvs) != 1 || string(kvs[0].Value) != "else" {
		t.Errorf("outer get of b after the inner txn: %+v, want else", kvs)
	}
	// The responses inside a txn carry etcd's bare headers: the revision alone (a put's is the txn's,
	// a range's the store's at that point), and a nested txn's header is empty.
	if h := resp.Responses[0].GetResponsePut().Header; h.Revision != rev || h.MemberId != 0 || h.ClusterId != 0 || h.RaftTerm != 0 {
		t.Errorf("header of a put inside a txn: %+v, want revision %d alone", h, rev)
	}
	if h := inner.Header; h == nil || h.Revision != 0 || h.MemberId != 0 {
		t.Errorf("header of a nested txn response: %+v, want an empty one", h)
	}
	if h := inner.Responses[1].GetResponseRange().Header; h.Revision != rev || h.MemberId != 0 {
		t.Errorf("header of a range after a write inside a txn: %+v, want revision %d alone", h, rev)
	}
	// Every write of the whole tree shares one revision.
	for _, k := range []string{"a", "b"} {
		if _, mod, _ := valueOf(t, client, p+k); mod != rev {
			t.Errorf("%s modified at %d, want the txn's revision %d", k, mod, rev)
		}
	}

	// Every compare of the tree is evaluated before any write: the inner compare does not see the
	// outer put that precedes it.
	resp, err = client.Txn(timeout(t, 10*time.Second)).Then(
		clientv3.OpPut(p+"c", "1"),
		clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.Value(p+"c"), "=", "1")},
			[]clientv3.Op{clientv3.OpPut(p+"d", "saw c")},
			[]clientv3.Op{clientv3.OpPut(p+"d", "did not see c")}),
	).Commit()
	if err != nil {
		t.Fatalf("txn with an inner compare on an outer write: %v", err)
	}
	if v, _, _ := valueOf(t, client, p+"d"); v != "did not see c" || resp.Responses[1].GetResponseTxn().Succeeded {
		t.Errorf("inner compare on a key the outer txn writes: d = %q, want \"did not see c\"", v)
	}

	// Three levels, through the failure branch of the outer txn.
	resp, err = client.Txn(timeout(t, 10*time.Second)).If(flagIs("off")).Else(
		clientv3.OpTxn(nil, []clientv3.Op{
			clientv3.OpTxn([]clientv3.Cmp{flagIs("on")}, []clientv3.Op{clientv3.OpPut(p+"e", "deep")}, nil),
		}, nil),
	).Commit()
	if err != nil {
		t.Fatalf("three-level txn: %v", err)
	}
	deepest := resp.Responses[0].GetResponseTxn().Responses[0].GetResponseTxn()
	if resp.Succeeded || deepest == nil || !deepest.Succeeded || deepest.Responses[0].GetResponsePut() == nil {
		t.Errorf("three-level txn: %+v", resp)
	}
	if v, mod, _ := valueOf(t, client, p+"e"); v != "deep" || mod != resp.Header.Revision {
		t.Errorf("e = %q at %d, want deep at %d", v, mod, resp.Header.Revision)
	}

	// A range or a delete of nothing before the first write shows the store's revision before the txn.
	prior := mustGet(t, client, p+"flag").Header.Revision
	resp, err = client.Txn(timeout(t, 10*time.Second)).Then(clientv3.OpGet(p+"flag"), clientv3.OpDelete(p+"none"),
		clientv3.OpPut(p+"f", "1"), clientv3.OpDelete(p+"none"), clientv3.OpGet(p+"flag")).Commit()
	if err != nil {
		t.Fatalf("txn of a range, a delete of nothing and a put: %v", err)
	}
	revs := []int64{}
	for _, r := range resp.Responses {
		switch {
		case r.GetResponseRange() != nil:
			revs = append(revs, r.GetResponseRange().Header.Revision)
		case r.GetResponseDeleteRange() != nil:
			revs = append(revs, r.GetResponseDeleteRange().Header.Revision)
		default:
			revs = append(revs, r.GetResponsePut().Header.Revision)
		}
	}
	if want := []int64{prior, prior, prior + 1, prior + 1, prior + 1}; fmt.Sprint(revs) != fmt.Sprint(want) {
		t.Errorf("revisions in the op headers: %v, want %v", revs, want)
	}
	if _, err := client.Delete(timeout(t, 10*time.Second), p+"f"); err != nil {
		t.Fatalf("delete f: %v", err)
	}

	// A read-only tree changes no revision.
	before := mustGet(t, client, p+"a").Header.Revision
	resp, err = client.Txn(timeout(t, 10*time.Second)).Then(
		clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpGet(p, clientv3.WithPrefix())}, nil)).Commit()
	if err != nil {
		t.Fatalf("read-only nested txn: %v", err)
	}
	if resp.Header.Revision != before || resp.Responses[0].GetResponseTxn().Responses[0].GetResponseRange().Count != 6 {
		t.Errorf("read-only nested txn: revision %d (want %d), %+v", resp.Header.Revision, before, resp.Responses[0])
	}
}

// etcd's --max-txn-ops (128) bounds each level, and a nested txn gets what its parent left:
// 128 minus the parent's largest of compares, success ops and failure ops.
func TestTxnNestedOperationBudget(t *testing.T) {
	client := newClient(t)
	p := keyPrefix(t, client)
	puts := func(name string, n int) []clientv3.Op {
		ops := make([]clientv3.Op, n)
		for i := range ops {
			ops[i] = clientv3.OpPut(p+name+strconv.Itoa(i), "v")
		}
		return ops
	}
	try := func(outer, inner int) error {
		ops := append(puts("outer", outer-1), clientv3.OpTxn(nil, puts("inner", inner), nil))
		_, err := client.Txn(timeout(t, 10*time.Second)).Then(ops...).Commit()
		return err
	}
	if err := try(1, 127); err != nil {
		t.Errorf("1 outer op holding 127 inner ones: %v", err)
	}
	if err := try(1, 128); err != rpctypes.ErrTooManyOps {
		t.Errorf("1 outer op holding 128 inner ones: %v, want %v", err, rpctypes.ErrTooManyOps)
	}
	if err := try(100, 28); err != nil {
		t.Errorf("100 outer ops, one holding 28: %v", err)
	}
	if err := try(100, 29); err != rpctypes.ErrTooManyOps {
		t.Errorf("100 outer ops, one holding 29: %v, want %v", err, rpctypes.ErrTooManyOps)
	}
	if err := try(129, 0); err != rpctypes.ErrTooManyOps {
		t.Errorf("129 outer ops: %v, want %v", err, rpctypes.ErrTooManyOps)
	}
	// Compares count too: 100 compares leave 28 for a nested txn.
	cmps := make([]clientv3.Cmp, 100)
	for i := range cmps {
		cmps[i] = clientv3.Compare(clientv3.Version(p+"none"), "=", 0)
	}
	_, err := client.Txn(timeout(t, 10*time.Second)).If(cmps...).Then(clientv3.OpTxn(nil, puts("c", 29), nil)).Commit()
	if err != rpctypes.ErrTooManyOps {
		t.Errorf("100 compares and a nested txn of 29: %v, want %v", err, rpctypes.ErrTooManyOps)
	}
	// An empty request op anywhere in the tree is refused with etcd's "key not found".
	_, err = pb.NewKVClient(client.ActiveConnection()).Txn(timeout(t, 10*time.Second), &pb.TxnRequest{
		Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestTxn{RequestTxn: &pb.TxnRequest{
			Failure: []*pb.RequestOp{{}}}}}}})
	if rpctypes.ErrorDesc(err) != "etcdserver: key not found" {
		t.Errorf("nested empty request op: %v, want etcdserver: key not found", err)
	}
}

func TestTxnDuplicateKeys(t *testing.T) {
	client := newClient(t)
	p := keyPrefix(t, client)
	put := func(k, v string) clientv3.Op { return clientv3.OpPut(p+k, v) }
	del := func(k string, opts ...clientv3.OpOption) clientv3.Op { return clientv3.OpDelete(p+k, opts...) }
	txn := func(then, els []clientv3.Op) clientv3.Op { return clientv3.OpTxn(nil, then, els) }
	never := clientv3.Compare(clientv3.Version(p+"never"), ">", 0)
	ops := func(o ...clientv3.Op) []clientv3.Op { return o }

	cases := []struct {
		name      string
		cmps      []clientv3.Cmp
		then, els []clientv3.Op
		duplicate bool
		after     map[string]string // key -> value after an accepted txn ("" = absent)
	}{
		{name: "put, put", then: ops(put("a", "1"), put("a", "2")), duplicate: true},
		{name: "put, delete", then: ops(put("a", "1"), del("a")), duplicate: true},
		{name: "delete, put", then: ops(del("a"), put("a", "1")), duplicate: true},
		{name: "put inside a deleted range", then: ops(del("a", clientv3.WithRange(p+"c")), put("b", "1")), duplicate: true},
		{name: "put inside a deleted prefix", then: ops(del("", clientv3.WithPrefix()), put("x", "1")), duplicate: true},
		{name: "put at a deleted range's end", then: ops(del("a", clientv3.WithRange(p+"c")), put("c", "1")),
			after: map[string]string{"c": "1"}},
		{name: "put right after a deleted key", then: ops(del("a"), put("a\x00", "1")), after: map[string]string{"a\x00": "1"}},
		{name: "delete, delete", then: ops(del("a"), del("a", clientv3.WithPrefix())), after: map[string]string{"a": ""}},
		{name: "put and a nested put", then: ops(put("a", "1"), txn(ops(put("a", "2")), nil)), duplicate: true},
		{name: "nested then and else put the same key", then: ops(txn(ops(put("a", "then")), ops(put("a", "else")))),
			after: map[string]string{"a": "then"}},
		{name: "two nested thens", then: ops(txn(ops(put("a", "1")), nil), txn(ops(put("a", "2")), nil)), duplicate: true},
		{name: "a nested then and another's else", then: ops(txn(ops(put("a", "1")), nil), txn(nil, ops(put("a", "2")))),
			duplicate: true},
		{name: "delete and a nested put", then: ops(del("a"), txn(ops(put("a", "1")), nil)), duplicate: true},
		{name: "nested delete and a put", then: ops(txn(ops(del("a")), nil), put("a", "1")), duplicate: true},
		{name: "nested delete, then a nested put", then: ops(txn(ops(del("a")), nil), txn(ops(put("a", "1")), nil)),
			duplicate: true},
		// etcd checks a nested txn's puts only against the deletes of the levels and siblings before it,
		// so a nested put followed by a sibling's delete of the key is accepted (and both are applied).
		{name: "nested put, then a nested delete", then: ops(txn(ops(put("a", "1")), nil), txn(ops(del("a")), nil)),
			after: map[string]string{"a": ""}},
		{name: "a put twice inside one nested txn", then: ops(txn(ops(put("a", "1"), put("a", "2")), nil)), duplicate: true},
		{name: "the failure branch is checked too", then: ops(put("a", "1")), els: ops(put("b", "1"), put("b", "2")),
			duplicate: true},
		{name: "success and failure branches may write the same key", then: ops(put("a", "then")), els: ops(put("a", "else")),
			after: map[string]string{"a": "then"}},
		// A delete to "\x00" (every key >= key) is an empty interval to etcd's check, so it conflicts
		// with nothing. (Not applied here: it would delete every later key of the cluster.)
		{name: "put inside a from-key delete", cmps: []clientv3.Cmp{never},
			then: ops(del("a", clientv3.WithFromKey()), put("b", "1"))},
	}
	for _, c := range cases {
		mustPut(t, client, p+"a", "before")
		_, err := client.Txn(timeout(t, 10*time.Second)).If(c.cmps...).Then(c.then...).Else(c.els...).Commit()
		if c.duplicate {
			if err != rpctypes.ErrDuplicateKey {
				t.Errorf("%s: %v, want %v", c.name, err, rpctypes.ErrDuplicateKey)
			}
			if v, _, _ := valueOf(t, client, p+"a"); v != "before" {
				t.Errorf("%s: a refused txn changed a to %q", c.name, v)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v, want it accepted", c.name, err)
			continue
		}
		for k, want := range c.after {
			if v, _, ok := valueOf(t, client, p+k); v != want || ok != (want != "") {
				t.Errorf("%s: %q = %q (present %v) after the txn, want %q", c.name, k, v, ok, want)
			}
		}
		if _, err := client.Delete(timeout(t, 10*time.Second), p, clientv3.WithPrefix()); err != nil {
			t.Fatalf("clearing %s: %v", p, err)
		}
	}
	// The status etcd refuses with: InvalidArgument and its text.
	_, err := pb.NewKVClient(client.ActiveConnection()).Txn(timeout(t, 10*time.Second), &pb.TxnRequest{
		Success: []*pb.RequestOp{
			{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(p + "a")}}},
			{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(p + "a")}}}}})
	if err == nil || err.Error() != "rpc error: code = InvalidArgument desc = etcdserver: duplicate key given in txn request" {
		t.Errorf("raw duplicate put: %v", err)
	}
}

// The request ops of a txn with their own fields: a put's lease, prev_kv, ignore_value and
// ignore_lease, a delete's range_end and prev_kv, a range's limit, sort, count_only and revision,
// and etcd's refusals of a put's fields inside a txn.
func TestTxnRequestOps(t *testing.T) {
	client := newClient(t)
	p := keyPrefix(t, client)
	lease, err := client.Grant(timeout(t, 10*time.Second), 60)
	if err != nil {
		t.Fatalf("lease grant: %v", err)
	}
	t.Cleanup(func() { client.Revoke(timeout(t, 10*time.Second), lease.ID) })
	first := mustPut(t, client, p+"k", "v1").Header.Revision
	mustPut(t, client, p+"d1", "x")
	mustPut(t, client, p+"d2", "y")
	commit := func(what string, ops ...clientv3.Op) *clientv3.TxnResponse {
		t.Helper()
		resp, err := client.Txn(timeout(t, 10*time.Second)).Then(ops...).Commit()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return resp
	}

	resp := commit("put with prev_kv and lease, delete with prev_kv",
		clientv3.OpPut(p+"k", "v2", clientv3.WithPrevKV(), clientv3.WithLease(lease.ID)),
		clientv3.OpDelete(p+"d", clientv3.WithPrefix(), clientv3.WithPrevKV()),
		clientv3.OpGet(p, clientv3.WithPrefix(), clientv3.WithCountOnly()),
		clientv3.OpGet(p, clientv3.WithPrefix(), clientv3.WithRev(first)))
	rev := resp.Header.Revision
	if prev := resp.Responses[0].GetResponsePut().PrevKv; prev == nil || string(prev.Value) != "v1" || prev.ModRevision != first {
		t.Errorf("put's prev_kv: %v, want v1 at %d", prev, first)
	}
	del := resp.Responses[1].GetResponseDeleteRange()
	if del.Deleted != 2 || len(del.PrevKvs) != 2 || string(del.PrevKvs[0].Value) != "x" || string(del.PrevKvs[1].Value) != "y" {
		t.Errorf("delete's prev_kv: %+v, want d1=x and d2=y", del)
	}
	if r := resp.Responses[2].GetResponseRange(); r.Count != 1 || len(r.Kvs) != 0 {
		t.Errorf("count_only inside the txn, after its delete: %+v, want count 1 and no kvs", r)
	}
	if r := resp.Responses[3].GetResponseRange(); r.Count != 1 || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "v1" {
		t.Errorf("a range at a past revision inside the txn: %+v, want k=v1 alone", r)
	}
	kv := mustGet(t, client, p+"k").Kvs[0]
	if string(kv.Value) != "v2" || kv.Lease != int64(lease.ID) || kv.ModRevision != rev || kv.Version != 2 {
		t.Errorf("k after the txn: %+v, want v2 with the lease at %d, version 2", kv, rev)
	}

	commit("put with ignore_value and ignore_lease", clientv3.OpPut(p+"k", "", clientv3.WithIgnoreValue(), clientv3.WithIgnoreLease()))
	kv = mustGet(t, client, p+"k").Kvs[0]
	if string(kv.Value) != "v2" || kv.Lease != int64(lease.ID) || kv.Version != 3 {
		t.Errorf("k after ignore_value and ignore_lease: %+v, want v2 with the lease, version 3", kv)
	}
	commit("put with ignore_lease", clientv3.OpPut(p+"k", "v3", clientv3.WithIgnoreLease()), clientv3.OpPut(p+"l", "1"), clientv3.OpPut(p+"m", "2"))
	kv = mustGet(t, client, p+"k").Kvs[0]
	if string(kv.Value) != "v3" || kv.Lease != int64(lease.ID) {
		t.Errorf("k after ignore_lease: %+v, want v3 with the lease", kv)
	}
	resp = commit("a range with limit and sort", clientv3.OpGet(p, clientv3.WithPrefix(), clientv3.WithLimit(1),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)))
	if r := resp.Responses[0].GetResponseRange(); len(r.Kvs) != 1 || string(r.Kvs[0].Key) != p+"m" || !r.More || r.Count != 3 {
		t.Errorf("limit 1, keys descending: %+v, want m, more, count 3", r)
	}

	refusals := []struct {
		name string
		op   clientv3.Op
		want error
	}{
		{"ignore_value on a missing key", clientv3.OpPut(p+"missing", "", clientv3.WithIgnoreValue()), rpctypes.ErrKeyNotFound},
		{"ignore_value with a value", clientv3.OpPut(p+"k", "x", clientv3.WithIgnoreValue()), rpctypes.ErrValueProvided},
		{"ignore_lease with a lease", clientv3.OpPut(p+"k", "x", clientv3.WithIgnoreLease(), clientv3.WithLease(lease.ID)), rpctypes.ErrLeaseProvided},
		{"an unknown lease", clientv3.OpPut(p+"k", "x", clientv3.WithLease(clientv3.LeaseID(0x7fff0000))), rpctypes.ErrLeaseNotFound},
	}
	for _, c := range refusals {
		_, err := client.Txn(timeout(t, 10*time.Second)).Then(c.op).Commit()
		if err != c.want {
			t.Errorf("%s in a txn: %v, want %v", c.name, err, c.want)
		}
	}
	if kv = mustGet(t, client, p+"k").Kvs[0]; string(kv.Value) != "v3" {
		t.Errorf("k after the refused txns: %q, want v3", kv.Value)
	}
}
