package goclient

// RangeRequest as etcd 3.4 evaluates it (etcdserver/apply.go Range): revision filters, sort order and
// target, limit with more, count_only, keys_only, the range_end forms, serializable and linearizable
// reads, reads at a past revision.

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/etcdserver/api/v3rpc/rpctypes"
	pb "go.etcd.io/etcd/etcdserver/etcdserverpb"
	"go.etcd.io/etcd/mvcc/mvccpb"
)

// keysOf lists the keys of a response without the test's prefix.
func keysOf(prefix string, kvs []*mvccpb.KeyValue) []string {
	keys := []string{}
	for _, kv := range kvs {
		keys = append(keys, strings.TrimPrefix(string(kv.Key), prefix))
	}
	return keys
}

// expectRange checks the keys (in order), count and more of a Get.
func expectRange(t *testing.T, what string, prefix string, resp *clientv3.GetResponse, keys []string, count int64, more bool) {
	t.Helper()
	got := keysOf(prefix, resp.Kvs)
	if !reflect.DeepEqual(got, keys) || resp.Count != count || resp.More != more {
		t.Errorf("%s: got keys %q count %d more %v; want keys %q count %d more %v",
			what, got, resp.Count, resp.More, keys, count, more)
	}
}

func TestRangeRevisionFilters(t *testing.T) {
	client := newClient(t)
	p := keyPrefix(t, client)
	r1 := mustPut(t, client, p+"a", "a1").Header.Revision
	r2 := mustPut(t, client, p+"b", "b1").Header.Revision
	r3 := mustPut(t, client, p+"c", "c1").Header.Revision
	r4 := mustPut(t, client, p+"a", "a2").Header.Revision
	r5 := mustPut(t, client, p+"d", "d1").Header.Revision
	r6 := mustPut(t, client, p+"b", "b2").Header.Revision
	_ = r1
	// Now a: create r1 mod r4; b: create r2 mod r6; c: create r3 mod r3; d: create r5 mod r5.
	all := clientv3.WithPrefix()
	// etcd filters after fetching, so count is every key in the range, filtered or not.
	expectRange(t, "min_mod_revision", p, mustGet(t, client, p, all, clientv3.WithMinModRev(r4)),
		[]string{"a", "b", "d"}, 4, false)
	expectRange(t, "max_mod_revision", p, mustGet(t, client, p, all, clientv3.WithMaxModRev(r4)),
		[]string{"a", "c"}, 4, false)
	expectRange(t, "min_create_revision", p, mustGet(t, client, p, all, clientv3.WithMinCreateRev(r3)),
		[]string{"c", "d"}, 4, false)
	expectRange(t, "max_create_revision", p, mustGet(t, client, p, all, clientv3.WithMaxCreateRev(r2)),
		[]string{"a", "b"}, 4, false)
	expectRange(t, "min and max mod_revision", p,
		mustGet(t, client, p, all, clientv3.WithMinModRev(r4), clientv3.WithMaxModRev(r5)),
		[]string{"a", "d"}, 4, false)
	expectRange(t, "all four filters", p,
		mustGet(t, client, p, all, clientv3.WithMinModRev(r3), clientv3.WithMaxModRev(r6),
			clientv3.WithMinCreateRev(r2), clientv3.WithMaxCreateRev(r3)),
		[]string{"b", "c"}, 4, false)
	expectRange(t, "a filter no key passes", p, mustGet(t, client, p, all, clientv3.WithMinModRev(r6+1)),
		[]string{}, 4, false)
	// more: the filtered keys exceed the limit, not the range's.
	expectRange(t, "filter with limit, more left", p,
		mustGet(t, client, p, all, clientv3.WithMinModRev(r4), clientv3.WithLimit(2)),
		[]string{"a", "b"}, 4, true)
	expectRange(t, "filter with limit, none left", p,
		mustGet(t, client, p, all, clientv3.WithMinModRev(r5), clientv3.WithLimit(2)),
		[]string{"b", "d"}, 4, false)
	expectRange(t, "filter then sort by mod_revision descending", p,
		mustGet(t, client, p, all, clientv3.WithMaxCreateRev(r3),
			clientv3.WithSort(clientv3.SortByModRevision, clientv3.SortDescend)),
		[]string{"b", "a", "c"}, 4, false)
	expectRange(t, "filter with count_only", p,
		mustGet(t, client, p, all, clientv3.WithMinModRev(r4), clientv3.WithCountOnly()),
		[]string{}, 4, false)
	// What concurrency.Mutex and Election wait on: the newest key created before their own.
	lastCreate := append(clientv3.WithLastCreate(), all, clientv3.WithMaxCreateRev(r4-1))
	expectRange(t, "last create at most r4-1 (clientv3 concurrency's waitDeletes)", p,
		mustGet(t, client, p, lastCreate...), []string{"c"}, 4, true)
	// At a past revision the filters see that revision's versions: at r4, b is still b1 (mod r2).
	expectRange(t, "filter at a past revision", p,
		mustGet(t, client, p, all, clientv3.WithRev(r4), clientv3.WithMinModRev(r3)),
		[]string{"a", "c"}, 3, false)
	keysOnly := mustGet(t, client, p, all, clientv3.WithMinModRev(r5), clientv3.WithKeysOnly())
	expectRange(t, "filter with keys_only", p, keysOnly, []string{"b", "d"}, 4, false)
	for _, kv := range keysOnly.Kvs {
		if len(kv.Value) != 0 || kv.ModRevision == 0 {
			t.Errorf("keys_only: %s has value %q mod_revision %d", kv.Key, kv.Value, kv.ModRevision)
		}
	}
}

func TestRangeSortOrderAndTarget(t *testing.T) {
	client := newClient(t)
	p := keyPrefix(t, client)
	// Creation order k3 k1 k4 k2; versions k1 2, k2 3, k3 4, k4 1; last modified k4 < k3 < k2 < k1;
	// values k2 "a" < k4 "b" < k1 "c" < k3 "d": every target orders the four keys differently.
	for _, put := range [][2]string{{"k3", "x"}, {"k1", "x"}, {"k4", "b"}, {"k2", "x"},
		{"k3", "x"}, {"k3", "x"}, {"k3", "d"}, {"k2", "x"}, {"k2", "a"}, {"k1", "c"}} {
		mustPut(t, client, p+put[0], put[1])
	}
	all := clientv3.WithPrefix()
	cases := []struct {
		target clientv3.SortTarget
		order  clientv3.SortOrder
		keys   []string
	}{
		{clientv3.SortByKey, clientv3.SortNone, []string{"k1", "k2", "k3", "k4"}},
		{clientv3.SortByKey, clientv3.SortDescend, []string{"k4", "k3", "k2", "k1"}},
		{clientv3.SortByCreateRevision, clientv3.SortAscend, []string{"k3", "k1", "k4", "k2"}},
		{clientv3.SortByCreateRevision, clientv3.SortDescend, []string{"k2", "k4", "k1", "k3"}},
		{clientv3.SortByModRevision, clientv3.SortAscend, []string{"k4", "k3", "k2", "k1"}},
		{clientv3.SortByModRevision, clientv3.SortDescend, []string{"k1", "k2", "k3", "k4"}},
		{clientv3.SortByVersion, clientv3.SortAscend, []string{"k4", "k1", "k2", "k3"}},
		{clientv3.SortByVersion, clientv3.SortDescend, []string{"k3", "k2", "k1", "k4"}},
		{clientv3.SortByValue, clientv3.SortAscend, []string{"k2", "k4", "k1", "k3"}},
		{clientv3.SortByValue, clientv3.SortDescend, []string{"k3", "k1", "k4", "k2"}},
		// A target without an order sorts ascending (etcd), not by key.
		{clientv3.SortByVersion, clientv3.SortNone, []string{"k4", "k1", "k2", "k3"}},
		{clientv3.SortByValue, clientv3.SortNone, []string{"k2", "k4", "k1", "k3"}},
	}
	for _, c := range cases {
		resp := mustGet(t, client, p, all, clientv3.WithSort(c.target, c.order))
		expectRange(t, fmt.Sprintf("sort target %d order %d", c.target, c.order), p, resp, c.keys, 4, false)
	}
	// clientv3 turns (KEY, ASCEND) into NONE; the raw request shows etcd takes ASCEND too.
	raw, err := pb.NewKVClient(client.ActiveConnection()).Range(timeout(t, 10*time.Second), &pb.RangeRequest{
		Key: []byte(p), RangeEnd: []byte(clientv3.GetPrefixRangeEnd(p)),
		SortOrder: pb.RangeRequest_ASCEND, SortTarget: pb.RangeRequest_KEY, Limit: 3})
	if err != nil {
		t.Fatalf("raw range sorted by key ascending: %v", err)
	}
	if got := keysOf(p, raw.Kvs); !reflect.DeepEqual(got, []string{"k1", "k2", "k3"}) || !raw.More || raw.Count != 4 {
		t.Errorf("raw sort KEY ASCEND limit 3: got %q more %v count %d", got, raw.More, raw.Count)
	}
	// Sorting happens before the limit.
	expectRange(t, "sort by value descending, limit 2", p,
		mustGet(t, client, p, all, clientv3.WithSort(clientv3.SortByValue, clientv3.SortDescend), clientv3.WithLimit(2)),
		[]string{"k3", "k1"}, 4, true)
	// keys_only still sorts by the values it does not return.
	keysOnly := mustGet(t, client, p, all, clientv3.WithSort(clientv3.SortByValue, clientv3.SortAscend), clientv3.WithKeysOnly())
	expectRange(t, "sort by value, keys_only", p, keysOnly, []string{"k2", "k4", "k1", "k3"}, 4, false)
	for _, kv := range keysOnly.Kvs {
		if len(kv.Value) != 0 {
			t.Errorf("keys_only returned value %q for %s", kv.Value, kv.Key)
		}
	}
	// etcd 3.4 takes a sort order it does not know as "fetch everything, sort nothing": key order,
	// with the limit applied after.
	raw, err = pb.NewKVClient(client.ActiveConnection()).Range(timeout(t, 10*time.Second), &pb.RangeRequest{
		Key: []byte(p), RangeEnd: []byte(clientv3.GetPrefixRangeEnd(p)), SortOrder: 3,
		SortTarget: pb.RangeRequest_VALUE, Limit: 2})
	if err != nil {
		t.Fatalf("raw range with sort order 3: %v", err)
	}
	if got := keysOf(p, raw.Kvs); !reflect.DeepEqual(got, []string{"k1", "k2"}) || !raw.More || raw.Count != 4 {
		t.Errorf("sort order 3 by value, limit 2: got %q more %v count %d; want k1 k2, more, count 4", got, raw.More, raw.Count)
	}
}

func TestRangeLimitCountKeysOnly(t *testing.T) {
	client := newClient(t)
	p := keyPrefix(t, client)
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		mustPut(t, client, p+k, "value of "+k)
	}
	all := clientv3.WithPrefix()
	expectRange(t, "limit 2", p, mustGet(t, client, p, all, clientv3.WithLimit(2)), []string{"a", "b"}, 5, true)
	expectRange(t, "limit 4", p, mustGet(t, client, p, all, clientv3.WithLimit(4)), []string{"a", "b", "c", "d"}, 5, true)
	expectRange(t, "limit 5 (exactly all)", p, mustGet(t, client, p, all, clientv3.WithLimit(5)),
		[]string{"a", "b", "c", "d", "e"}, 5, false)
	expectRange(t, "limit 6", p, mustGet(t, client, p, all, clientv3.WithLimit(6)),
		[]string{"a", "b", "c", "d", "e"}, 5, false)
	expectRange(t, "count_only", p, mustGet(t, client, p, all, clientv3.WithCountOnly()), []string{}, 5, false)
	expectRange(t, "count_only with limit 2", p, mustGet(t, client, p, all, clientv3.WithCountOnly(), clientv3.WithLimit(2)),
		[]string{}, 5, false)
	expectRange(t, "count_only of one key", p, mustGet(t, client, p+"c", clientv3.WithCountOnly()), []string{}, 1, false)
	expectRange(t, "count_only of a missing key", p, mustGet(t, client, p+"zz", clientv3.WithCountOnly()), []string{}, 0, false)
	keysOnly := mustGet(t, client, p, all, clientv3.WithKeysOnly(), clientv3.WithLimit(3))
	expectRange(t, "keys_only with limit 3", p, keysOnly, []string{"a", "b", "c"}, 5, true)
	for _, kv := range keysOnly.Kvs {
		if len(kv.Value) != 0 || kv.Version != 1 || kv.CreateRevision == 0 {
			t.Errorf("keys_only: %s came back as %+v (want no value, the rest intact)", kv.Key, kv)
		}
	}
	full := mustGet(t, client, p+"b")
	if len(full.Kvs) != 1 || string(full.Kvs[0].Value) != "value of b" {
		t.Errorf("a plain get of b: %+v", full.Kvs)
	}
}

func TestRangeEndForms(t *testing.T) {
	client := newClient(t)
	p := keyPrefix(t, client)
	for _, k := range []string{"a", "b", "b1", "b2", "c", "d", "\xff", "\xff\x01"} {
		mustPut(t, client, p+k, "v")
	}
	expectRange(t, "no range_end: the key alone", p, mustGet(t, client, p+"b"), []string{"b"}, 1, false)
	expectRange(t, "prefix b", p, mustGet(t, client, p+"b", clientv3.WithPrefix()), []string{"b", "b1", "b2"}, 3, false)
	expectRange(t, "[b, c)", p, mustGet(t, client, p+"b", clientv3.WithRange(p+"c")), []string{"b", "b1", "b2"}, 3, false)
	expectRange(t, "[b1, b2)", p, mustGet(t, client, p+"b1", clientv3.WithRange(p+"b2")), []string{"b1"}, 1, false)
	expectRange(t, "range_end below key", p, mustGet(t, client, p+"c", clientv3.WithRange(p+"b")), []string{}, 0, false)
	expectRange(t, "range_end equal to key", p, mustGet(t, client, p+"c", clientv3.WithRange(p+"c")), []string{}, 0, false)
	// A prefix ending in 0xff: clientv3 carries into the byte before it.
	expectRange(t, "prefix \\xff", p, mustGet(t, client, p+"\xff", clientv3.WithPrefix()), []string{"\xff", "\xff\x01"}, 2, false)
	// range_end "\x00": every key >= key. Other clients' keys may follow ours, so only the start and
	// our own keys in it are certain.
	fromC := mustGet(t, client, p+"c", clientv3.WithFromKey(), clientv3.WithLimit(3))
	if got := keysOf(p, fromC.Kvs); !reflect.DeepEqual(got, []string{"c", "d", "\xff"}) || !fromC.More || fromC.Count < 4 {
		t.Errorf("from key c, limit 3: got %q more %v count %d; want c d \\xff, more, count >= 4", got, fromC.More, fromC.Count)
	}
	ours := 0
	for _, kv := range mustGet(t, client, p+"c", clientv3.WithFromKey(), clientv3.WithKeysOnly()).Kvs {
		if strings.HasPrefix(string(kv.Key), p) {
			ours++
		}
		if string(kv.Key) < p+"c" {
			t.Errorf("from key c returned %q, which is below it", kv.Key)
		}
	}
	if ours != 4 {
		t.Errorf("from key c: %d of our keys, want 4 (c d \\xff \\xff\\x01)", ours)
	}
	// key "\x00" with range_end "\x00" (clientv3's Get("", WithFromKey())): every key there is.
	everything := mustGet(t, client, "", clientv3.WithFromKey(), clientv3.WithCountOnly())
	prefixed := mustGet(t, client, "/", clientv3.WithFromKey(), clientv3.WithCountOnly())
	if everything.Count < prefixed.Count || prefixed.Count < 8 {
		t.Errorf("all keys: count %d; keys >= \"/\": %d (want all >= those >= 8)", everything.Count, prefixed.Count)
	}
}

func TestRangeSerializableAndLinearizable(t *testing.T) {
	eps := endpoints()
	all := newClient(t)
	p := keyPrefix(t, all)
	put := mustPut(t, all, p+"k", "v1")
	for _, ep := range eps {
		one := newClient(t, ep)
		status, err := one.Status(timeout(t, 10*time.Second), ep)
		if err != nil {
			t.Fatalf("status of %s: %v", ep, err)
		}
		// A serializable read answers from the member's own applied state: it shows the write once
		// that member applied it.
		var resp *clientv3.GetResponse
		waitFor(t, 10*time.Second, "a serializable read through "+ep+" to show the put", func() bool {
			resp = mustGet(t, one, p+"k", clientv3.WithSerializable())
			return len(resp.Kvs) == 1 && resp.Kvs[0].ModRevision == put.Header.Revision
		})
		if resp.Header.MemberId != status.Header.MemberId || resp.Header.Revision < put.Header.Revision {
			t.Errorf("serializable read through %s: header %+v, want member %x and revision >= %d",
				ep, resp.Header, status.Header.MemberId, put.Header.Revision)
		}
	}
	// A linearizable read through any member shows a write acknowledged through another one at once.
	for i := range eps {
		writer, reader := newClient(t, eps[i]), newClient(t, eps[(i+1)%len(eps)])
		for round := 0; round < 5; round++ {
			value := eps[i] + "#" + string(rune('0'+round))
			written := mustPut(t, writer, p+"k", value)
			resp := mustGet(t, reader, p+"k")
			if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != value || resp.Header.Revision < written.Header.Revision {
				t.Fatalf("linearizable read through %s right after a put through %s: %+v (want %q at >= %d)",
					eps[(i+1)%len(eps)], eps[i], resp, value, written.Header.Revision)
			}
		}
	}
}

func TestRangePastRevision(t *testing.T) {
	client := newClient(t)
	p := keyPrefix(t, client)
	r1 := mustPut(t, client, p+"k", "v1").Header.Revision
	r2 := mustPut(t, client, p+"k", "v2").Header.Revision
	del, err := client.Delete(timeout(t, 10*time.Second), p+"k")
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	r3 := del.Header.Revision
	r4 := mustPut(t, client, p+"k", "v3").Header.Revision
	r5 := mustPut(t, client, p+"other", "o").Header.Revision

	at := func(rev int64) *clientv3.GetResponse { return mustGet(t, client, p+"k", clientv3.WithRev(rev)) }
	check := func(rev int64, value string, create, version int64) {
		t.Helper()
		resp := at(rev)
		if resp.Header.Revision < r5 {
			t.Errorf("get at %d: header revision %d, want the current one (>= %d)", rev, resp.Header.Revision, r5)
		}
		if value == "" {
			if len(resp.Kvs) != 0 || resp.Count != 0 {
				t.Errorf("get at %d: %+v, want no key", rev, resp.Kvs)
			}
			return
		}
		if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != value || resp.Kvs[0].CreateRevision != create ||
			resp.Kvs[0].ModRevision > rev || resp.Kvs[0].Version != version {
			t.Errorf("get at %d: %+v, want %s created %d version %d", rev, resp.Kvs, value, create, version)
		}
	}
	check(r1, "v1", r1, 1)
	check(r2, "v2", r1, 2)
	check(r3, "", 0, 0)
	check(r4, "v3", r4, 1)
	check(r5, "v3", r4, 1)
	expectRange(t, "prefix at r4", p, mustGet(t, client, p, clientv3.WithPrefix(), clientv3.WithRev(r4)), []string{"k"}, 1, false)
	expectRange(t, "prefix at r5", p, mustGet(t, client, p, clientv3.WithPrefix(), clientv3.WithRev(r5)), []string{"k", "other"}, 2, false)

	_, err = client.Get(timeout(t, 10*time.Second), p+"k", clientv3.WithRev(r5+1000000))
	if err != rpctypes.ErrFutureRev {
		t.Errorf("get at a future revision: %v, want %v", err, rpctypes.ErrFutureRev)
	}
	// Compaction (cluster-wide): reads below the compact revision fail, at it they still work.
	if _, err := client.Compact(timeout(t, 10*time.Second), r2, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("compact at %d: %v", r2, err)
	}
	_, err = client.Get(timeout(t, 10*time.Second), p+"k", clientv3.WithRev(r1))
	if err != rpctypes.ErrCompacted {
		t.Errorf("get below the compact revision: %v, want %v", err, rpctypes.ErrCompacted)
	}
	check(r2, "v2", r1, 2)
	check(r3, "", 0, 0)
	check(r4, "v3", r4, 1)
}
