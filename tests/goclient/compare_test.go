package goclient

// Txn compares as etcd 3.4 evaluates them (etcdserver/apply.go applyCompare and compareKV): every target
// (VERSION, CREATE, MOD, VALUE, LEASE) with every result (EQUAL, GREATER, LESS, NOT_EQUAL), on a key, on a
// missing key, and over a range (range_end: an explicit end, a prefix, "\x00" for every key from key on),
// plus the raw forms clientv3 never sends (no target value, a target value of another target, a result
// etcd does not know).

import (
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/clientv3"
	pb "go.etcd.io/etcd/etcdserver/etcdserverpb"
)

// compareHolds runs a txn of the given compares and says which branch it took. The compare tests use one
// member for their writes and their txns: etcd 3.4 serves a txn without ops as a serializable read
// (isTxnSerializable holds for no ranges), so on another member it may not see a write just acknowledged.
func compareHolds(t *testing.T, client *clientv3.Client, cmps ...clientv3.Cmp) bool {
	t.Helper()
	resp, err := client.Txn(timeout(t, 10*time.Second)).If(cmps...).Commit()
	if err != nil {
		t.Fatalf("txn with compares %v: %v", cmps, err)
	}
	return resp.Succeeded
}

// Each integer target with its actual value a: EQUAL, NOT_EQUAL, GREATER and LESS, once true and once false.
func integerCases(a int64) []struct {
	op   string
	with int64
	want bool
} {
	return []struct {
		op   string
		with int64
		want bool
	}{
		{"=", a, true}, {"=", a + 1, false}, {"=", a - 1, false},
		{"!=", a + 1, true}, {"!=", a, false},
		{">", a - 1, true}, {">", a, false}, {">", a + 1, false},
		{"<", a + 1, true}, {"<", a, false}, {"<", a - 1, false},
	}
}

func TestTxnCompareTargets(t *testing.T) {
	client := newClient(t, endpoints()[0])
	p := keyPrefix(t, client)
	lease, err := client.Grant(timeout(t, 10*time.Second), 60)
	if err != nil {
		t.Fatalf("lease grant: %v", err)
	}
	t.Cleanup(func() { client.Revoke(timeout(t, 10*time.Second), lease.ID) })
	// k: value "m", version 2, created at create, modified at mod, attached to the lease.
	create := mustPut(t, client, p+"k", "m0").Header.Revision
	mod := mustPut(t, client, p+"k", "m", clientv3.WithLease(lease.ID)).Header.Revision
	mustPut(t, client, p+"plain", "v")

	targets := []struct {
		name   string
		cmp    func(key string) clientv3.Cmp
		actual int64
	}{
		{"VERSION", clientv3.Version, 2},
		{"CREATE", clientv3.CreateRevision, create},
		{"MOD", clientv3.ModRevision, mod},
		{"LEASE", clientv3.LeaseValue, int64(lease.ID)},
	}
	for _, target := range targets {
		for _, c := range integerCases(target.actual) {
			if got := compareHolds(t, client, clientv3.Compare(target.cmp(p+"k"), c.op, c.with)); got != c.want {
				t.Errorf("%s(k) %s %d (k's is %d): %v, want %v", target.name, c.op, c.with, target.actual, got, c.want)
			}
		}
		// A missing key compares as a key whose numbers are all 0.
		for _, c := range integerCases(0) {
			if got := compareHolds(t, client, clientv3.Compare(target.cmp(p+"missing"), c.op, c.with)); got != c.want {
				t.Errorf("%s(missing) %s %d: %v, want %v", target.name, c.op, c.with, got, c.want)
			}
		}
	}
	// A key put without a lease has lease 0.
	for _, c := range integerCases(0) {
		if got := compareHolds(t, client, clientv3.Compare(clientv3.LeaseValue(p+"plain"), c.op, c.with)); got != c.want {
			t.Errorf("LEASE(plain) %s %d: %v, want %v", c.op, c.with, got, c.want)
		}
	}

	// VALUE compares bytes; on a missing key every VALUE compare fails, even != and < "".
	values := []struct {
		key, op, with string
		want          bool
	}{
		{"k", "=", "m", true}, {"k", "=", "n", false}, {"k", "=", "", false},
		{"k", "!=", "n", true}, {"k", "!=", "m", false},
		{"k", ">", "l", true}, {"k", ">", "", true}, {"k", ">", "m", false}, {"k", ">", "m\x00", false},
		{"k", "<", "mm", true}, {"k", "<", "m\x00", true}, {"k", "<", "m", false}, {"k", "<", "M", false},
		{"missing", "=", "", false}, {"missing", "!=", "x", false}, {"missing", ">", "", false}, {"missing", "<", "z", false},
	}
	for _, c := range values {
		if got := compareHolds(t, client, clientv3.Compare(clientv3.Value(p+c.key), c.op, c.with)); got != c.want {
			t.Errorf("VALUE(%s) %s %q: %v, want %v", c.key, c.op, c.with, got, c.want)
		}
	}

	// Several compares: all must hold.
	if compareHolds(t, client, clientv3.Compare(clientv3.Version(p+"k"), "=", 2), clientv3.Compare(clientv3.Value(p+"k"), "=", "x")) {
		t.Errorf("two compares, the second false: the txn took the success branch")
	}
	if !compareHolds(t, client, clientv3.Compare(clientv3.Version(p+"k"), "=", 2), clientv3.Compare(clientv3.Value(p+"k"), "=", "m")) {
		t.Errorf("two compares, both true: the txn took the failure branch")
	}
}

// range_end in a compare (etcd 3.3+): the compare must hold for every key of the range; a range with no
// key compares as one missing key.
func TestTxnCompareRange(t *testing.T) {
	client := newClient(t, endpoints()[0])
	p := keyPrefix(t, client)
	ra := mustPut(t, client, p+"r/a", "1").Header.Revision
	mustPut(t, client, p+"r/b", "1")
	rb := mustPut(t, client, p+"r/b", "2").Header.Revision
	mustPut(t, client, p+"s", "9")

	cases := []struct {
		name string
		cmp  clientv3.Cmp
		want bool
	}{
		{"prefix VERSION > 0", clientv3.Compare(clientv3.Version(p+"r/"), ">", 0).WithPrefix(), true},
		{"prefix VERSION = 1 (r/b is 2)", clientv3.Compare(clientv3.Version(p+"r/"), "=", 1).WithPrefix(), false},
		{"prefix VERSION < 3", clientv3.Compare(clientv3.Version(p+"r/"), "<", 3).WithPrefix(), true},
		{"prefix VERSION != 2 (r/b is 2)", clientv3.Compare(clientv3.Version(p+"r/"), "!=", 2).WithPrefix(), false},
		{"prefix VALUE > 0", clientv3.Compare(clientv3.Value(p+"r/"), ">", "0").WithPrefix(), true},
		{"prefix VALUE = 1 (r/b is 2)", clientv3.Compare(clientv3.Value(p+"r/"), "=", "1").WithPrefix(), false},
		{"prefix MOD <= r/b's", clientv3.Compare(clientv3.ModRevision(p+"r/"), "<", rb+1).WithPrefix(), true},
		{"prefix MOD > r/a's (r/a is not)", clientv3.Compare(clientv3.ModRevision(p+"r/"), ">", ra).WithPrefix(), false},
		{"prefix CREATE = r/a's (r/b is later)", clientv3.Compare(clientv3.CreateRevision(p+"r/"), "=", ra).WithPrefix(), false},
		{"prefix LEASE = 0", clientv3.Compare(clientv3.LeaseValue(p+"r/"), "=", 0).WithPrefix(), true},
		{"[r/a, r/b) VERSION = 1", clientv3.Compare(clientv3.Version(p+"r/a"), "=", 1).WithRange(p + "r/b"), true},
		{"[r/a, s] VALUE < 3", clientv3.Compare(clientv3.Value(p+"r/a"), "<", "3").WithRange(p + "s\x00"), false},
		{"[r/a, s) VALUE < 3", clientv3.Compare(clientv3.Value(p+"r/a"), "<", "3").WithRange(p + "s"), true},
		// An empty range: like a missing key.
		{"empty range VERSION = 0", clientv3.Compare(clientv3.Version(p+"q/"), "=", 0).WithPrefix(), true},
		{"empty range CREATE < 1", clientv3.Compare(clientv3.CreateRevision(p+"q/"), "<", 1).WithPrefix(), true},
		{"empty range VALUE != x", clientv3.Compare(clientv3.Value(p+"q/"), "!=", "x").WithPrefix(), false},
		{"range_end below key VERSION = 0", clientv3.Compare(clientv3.Version(p+"s"), "=", 0).WithRange(p + "r/"), true},
		// "\x00": every key from key on, so the missing key q compares as r/a, r/b and s.
		{"from q VERSION = 0", clientv3.Compare(clientv3.Version(p+"q"), "=", 0).WithRange("\x00"), false},
		{"from q CREATE > 0", clientv3.Compare(clientv3.CreateRevision(p+"q"), ">", 0).WithRange("\x00"), true},
	}
	for _, c := range cases {
		if got := compareHolds(t, client, c.cmp); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// What clientv3 never sends, through the raw stubs: a compare without a target value compares with zero
// (or the empty value), one whose target value is of another target also compares with zero, and a
// result etcd does not know holds.
func TestTxnCompareRawForms(t *testing.T) {
	client := newClient(t, endpoints()[0])
	p := keyPrefix(t, client)
	create := mustPut(t, client, p+"k", "m").Header.Revision
	kv := pb.NewKVClient(client.ActiveConnection())
	key := []byte(p + "k")
	cases := []struct {
		name string
		cmp  *pb.Compare
		want bool
	}{
		{"VERSION GREATER without a value", &pb.Compare{Key: key, Target: pb.Compare_VERSION, Result: pb.Compare_GREATER}, true},
		{"VERSION EQUAL without a value", &pb.Compare{Key: key, Target: pb.Compare_VERSION, Result: pb.Compare_EQUAL}, false},
		{"VALUE GREATER without a value", &pb.Compare{Key: key, Target: pb.Compare_VALUE, Result: pb.Compare_GREATER}, true},
		{"VALUE EQUAL without a value", &pb.Compare{Key: key, Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL}, false},
		{"MOD EQUAL, its revision given as a create_revision", &pb.Compare{Key: key, Target: pb.Compare_MOD, Result: pb.Compare_EQUAL,
			TargetUnion: &pb.Compare_CreateRevision{CreateRevision: create}}, false},
		{"MOD GREATER, a version of its revision", &pb.Compare{Key: key, Target: pb.Compare_MOD, Result: pb.Compare_GREATER,
			TargetUnion: &pb.Compare_Version{Version: create}}, true},
		{"VERSION EQUAL, a value", &pb.Compare{Key: key, Target: pb.Compare_VERSION, Result: pb.Compare_EQUAL,
			TargetUnion: &pb.Compare_Value{Value: []byte{1}}}, false},
		{"VALUE EQUAL m, given as a lease", &pb.Compare{Key: key, Target: pb.Compare_VALUE, Result: pb.Compare_EQUAL,
			TargetUnion: &pb.Compare_Lease{Lease: 109}}, false},
		{"LEASE EQUAL 0, given as a version", &pb.Compare{Key: key, Target: pb.Compare_LEASE, Result: pb.Compare_EQUAL,
			TargetUnion: &pb.Compare_Version{Version: 1}}, true},
		{"an unknown result", &pb.Compare{Key: key, Target: pb.Compare_VERSION, Result: pb.Compare_CompareResult(7),
			TargetUnion: &pb.Compare_Version{Version: 5}}, true},
		{"an unknown result on a missing key", &pb.Compare{Key: []byte(p + "missing"), Target: pb.Compare_VERSION,
			Result: pb.Compare_CompareResult(7)}, true},
		{"an unknown result on a missing key's VALUE", &pb.Compare{Key: []byte(p + "missing"), Target: pb.Compare_VALUE,
			Result: pb.Compare_CompareResult(7)}, false},
	}
	for _, c := range cases {
		resp, err := kv.Txn(timeout(t, 10*time.Second), &pb.TxnRequest{Compare: []*pb.Compare{c.cmp}})
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if resp.Succeeded != c.want {
			t.Errorf("%s: %v, want %v (%s)", c.name, resp.Succeeded, c.want, fmt.Sprint(c.cmp))
		}
	}
}
