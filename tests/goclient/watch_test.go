package goclient

// Watch: the start revision (in the future, on a member that has not applied it yet, exactly the
// compact revision), replay of history with prev_kv and the filters, and progress requests.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/etcdserver/api/v3rpc/rpctypes"
	pb "go.etcd.io/etcd/etcdserver/etcdserverpb"
	"go.etcd.io/etcd/mvcc/mvccpb"
)

// event is what a test compares: type, key without the prefix, value, revision.
type event struct {
	kind  string
	key   string
	value string
	rev   int64
}

func eventOf(prefix string, e *clientv3.Event) event {
	kind := "PUT"
	if e.Type == mvccpb.DELETE {
		kind = "DELETE"
	}
	return event{kind, string(e.Kv.Key[len(prefix):]), string(e.Kv.Value), e.Kv.ModRevision}
}

// collect reads events from a watch until it has n of them; it fails on a closed channel, an error
// or after the bound.
func collect(t *testing.T, prefix string, ch clientv3.WatchChan, n int, bound time.Duration) []event {
	t.Helper()
	var got []event
	deadline := time.After(bound)
	for len(got) < n {
		select {
		case resp, ok := <-ch:
			if !ok {
				t.Fatalf("watch closed after %d of %d events: %v", len(got), n, got)
			}
			if err := resp.Err(); err != nil {
				t.Fatalf("watch failed after %d of %d events: %v", len(got), n, err)
			}
			for _, e := range resp.Events {
				got = append(got, eventOf(prefix, e))
			}
		case <-deadline:
			t.Fatalf("timed out after %v with %d of %d events: %v", bound, len(got), n, got)
		}
	}
	return got
}

func expectEvents(t *testing.T, what string, got, want []event) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s:\n got  %v\n want %v", what, got, want)
	}
}

// watchCreated opens a watch and waits for the server to confirm it.
func watchCreated(t *testing.T, client *clientv3.Client, key string, opts ...clientv3.OpOption) clientv3.WatchChan {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch := client.Watch(ctx, key, append(opts, clientv3.WithCreatedNotify())...)
	select {
	case resp := <-ch:
		if !resp.Created {
			t.Fatalf("the first response of watch %s is not its creation: %+v", key, resp)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("watch %s not created within 10 s", key)
	}
	return ch
}

func TestWatchFutureStartRevision(t *testing.T) {
	client := newClient(t)
	p := keyPrefix(t, client)
	now := mustPut(t, client, p+"marker", "m").Header.Revision
	ch := watchCreated(t, client, p+"k", clientv3.WithPrefix(), clientv3.WithRev(now+3))
	var want []event
	for i := 1; i <= 5; i++ {
		rev := mustPut(t, client, p+fmt.Sprintf("k%d", i), "v").Header.Revision
		if rev != now+int64(i) {
			t.Skipf("another client wrote meanwhile (put %d got revision %d, want %d)", i, rev, now+int64(i))
		}
		if i >= 3 {
			want = append(want, event{"PUT", fmt.Sprintf("k%d", i), "v", rev})
		}
	}
	expectEvents(t, "watch from the future revision now+3", collect(t, p, ch, 3, 10*time.Second), want)
	// Nothing else comes: a sixth put is the next event.
	rev := mustPut(t, client, p+"k6", "v").Header.Revision
	expectEvents(t, "the next event", collect(t, p, ch, 1, 10*time.Second), []event{{"PUT", "k6", "v", rev}})
}

// A watch created on a follower right after a write acknowledged by the leader names a revision the
// follower may not have applied yet; it must wait for it, not start from what it has.
func TestWatchStartOnLaggingMember(t *testing.T) {
	leaderEndpoint, followerEndpoint := leaderAndFollower(t)
	leader, follower := newClient(t, leaderEndpoint), newClient(t, followerEndpoint)
	p := keyPrefix(t, leader)
	for round := 0; round < 20; round++ {
		first := mustPut(t, leader, p+"k", fmt.Sprintf("%d-first", round)).Header.Revision
		second := mustPut(t, leader, p+"k", fmt.Sprintf("%d-second", round)).Header.Revision
		ctx, cancel := context.WithCancel(context.Background())
		ch := follower.Watch(ctx, p+"k", clientv3.WithRev(second))
		got := collect(t, p, ch, 1, 10*time.Second)
		cancel()
		if got[0] != (event{"PUT", "k", fmt.Sprintf("%d-second", round), second}) {
			t.Fatalf("round %d: watch on the follower from %d (the first put was %d) began with %v",
				round, second, first, got[0])
		}
	}
}

// leaderAndFollower finds the client URL of the leader and of one follower.
func leaderAndFollower(t *testing.T) (string, string) {
	t.Helper()
	client := newClient(t)
	var leader, follower string
	for _, ep := range endpoints() {
		status, err := client.Status(timeout(t, 10*time.Second), ep)
		if err != nil {
			t.Fatalf("status of %s: %v", ep, err)
		}
		if status.Leader == status.Header.MemberId {
			leader = ep
		} else if follower == "" {
			follower = ep
		}
	}
	if leader == "" || follower == "" {
		t.Skipf("needs a leader and a follower among %v", endpoints())
	}
	return leader, follower
}

// etcd keeps each key's newest version at or below the compact revision, so a watch from exactly
// that revision starts with the puts made at it. (A delete at the compact revision is dropped by the
// compaction, but etcd 3.4 still shows it until its backend commits, about 100 ms later: not pinned.)
func TestWatchFromCompactRevision(t *testing.T) {
	client := newClient(t)
	p := keyPrefix(t, client)
	mustPut(t, client, p+"a", "1")
	mustPut(t, client, p+"b", "0")
	c := mustPut(t, client, p+"b", "1").Header.Revision
	mustPut(t, client, p+"b", "2")
	del, err := client.Delete(timeout(t, 10*time.Second), p+"a")
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	if del.Header.Revision != c+2 {
		t.Skipf("another client wrote meanwhile: the delete got %d, want %d", del.Header.Revision, c+2)
	}
	if _, err := client.Compact(timeout(t, 10*time.Second), c, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("compact at %d: %v", c, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := client.Watch(ctx, p, clientv3.WithPrefix(), clientv3.WithRev(c))
	expectEvents(t, "watch from the compact revision", collect(t, p, ch, 3, 10*time.Second),
		[]event{{"PUT", "b", "1", c}, {"PUT", "b", "2", c + 1}, {"DELETE", "a", "", c + 2}})
	// prev_kv: the version before the put at the compact revision is gone, the later ones are there.
	ch = client.Watch(ctx, p+"b", clientv3.WithRev(c), clientv3.WithPrevKV())
	var prevs []string
	for len(prevs) < 2 {
		resp := <-ch
		if resp.Err() != nil {
			t.Fatalf("prev_kv watch from the compact revision: %v", resp.Err())
		}
		for _, e := range resp.Events {
			if e.PrevKv == nil {
				prevs = append(prevs, "-")
			} else {
				prevs = append(prevs, fmt.Sprintf("%s@%d", e.PrevKv.Value, e.PrevKv.ModRevision))
			}
		}
	}
	if want := []string{"-", fmt.Sprintf("1@%d", c)}; fmt.Sprint(prevs) != fmt.Sprint(want) {
		t.Errorf("prev_kv from the compact revision: got %v, want %v", prevs, want)
	}

	// Below it: cancelled, with the compact revision.
	old := client.Watch(ctx, p, clientv3.WithPrefix(), clientv3.WithRev(c-1))
	select {
	case resp, ok := <-old:
		if !ok || resp.CompactRevision != c || resp.Err() != rpctypes.ErrCompacted || !resp.Canceled {
			t.Errorf("watch below the compact revision: %+v (err %v), want canceled with compact revision %d", resp, resp.Err(), c)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("watch below the compact revision got no answer in 10 s")
	}
	if _, ok := <-old; ok {
		t.Errorf("the cancelled watch's channel stays open")
	}
}

func TestWatchReplayAndFilters(t *testing.T) {
	client := newClient(t)
	p := keyPrefix(t, client)
	r1 := mustPut(t, client, p+"a", "1").Header.Revision
	r2 := mustPut(t, client, p+"b", "1").Header.Revision
	r3 := mustPut(t, client, p+"a", "2").Header.Revision
	del, err := client.Delete(timeout(t, 10*time.Second), p+"b")
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	r4 := del.Header.Revision
	txn, err := client.Txn(timeout(t, 10*time.Second)).Then(clientv3.OpPut(p+"c", "1"), clientv3.OpDelete(p+"a")).Commit()
	if err != nil {
		t.Fatalf("txn: %v", err)
	}
	r5 := txn.Header.Revision
	history := []event{{"PUT", "a", "1", r1}, {"PUT", "b", "1", r2}, {"PUT", "a", "2", r3}, {"DELETE", "b", "", r4},
		{"PUT", "c", "1", r5}, {"DELETE", "a", "", r5}}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	expectEvents(t, "prefix replay", collect(t, p, client.Watch(ctx, p, clientv3.WithPrefix(), clientv3.WithRev(r1)), 6, 10*time.Second), history)
	expectEvents(t, "replay from r3", collect(t, p, client.Watch(ctx, p, clientv3.WithPrefix(), clientv3.WithRev(r3)), 4, 10*time.Second), history[2:])
	expectEvents(t, "key a", collect(t, p, client.Watch(ctx, p+"a", clientv3.WithRev(r1)), 3, 10*time.Second),
		[]event{history[0], history[2], history[5]})
	expectEvents(t, "range [a, c)", collect(t, p, client.Watch(ctx, p+"a", clientv3.WithRange(p+"c"), clientv3.WithRev(r1)), 5, 10*time.Second),
		[]event{history[0], history[1], history[2], history[3], history[5]})
	expectEvents(t, "no put", collect(t, p, client.Watch(ctx, p, clientv3.WithPrefix(), clientv3.WithRev(r1), clientv3.WithFilterPut()), 2, 10*time.Second),
		[]event{history[3], history[5]})
	expectEvents(t, "no delete", collect(t, p, client.Watch(ctx, p, clientv3.WithPrefix(), clientv3.WithRev(r1), clientv3.WithFilterDelete()), 4, 10*time.Second),
		[]event{history[0], history[1], history[2], history[4]})

	// prev_kv: the version before each event (none for a key's first put).
	prev := client.Watch(ctx, p, clientv3.WithPrefix(), clientv3.WithRev(r1), clientv3.WithPrevKV())
	var prevs []string
	for len(prevs) < 6 {
		resp := <-prev
		if resp.Err() != nil {
			t.Fatalf("prev_kv watch: %v", resp.Err())
		}
		for _, e := range resp.Events {
			if e.PrevKv == nil {
				prevs = append(prevs, "-")
			} else {
				prevs = append(prevs, fmt.Sprintf("%s@%d", e.PrevKv.Value, e.PrevKv.ModRevision))
			}
		}
	}
	want := []string{"-", "-", fmt.Sprintf("1@%d", r1), fmt.Sprintf("1@%d", r2), "-", fmt.Sprintf("2@%d", r3)}
	if fmt.Sprint(prevs) != fmt.Sprint(want) {
		t.Errorf("prev_kv: got %v, want %v", prevs, want)
	}

	// Live events after the replay, on the same watch.
	live := client.Watch(ctx, p, clientv3.WithPrefix(), clientv3.WithRev(r4))
	collect(t, p, live, 3, 10*time.Second)
	r6 := mustPut(t, client, p+"d", "live").Header.Revision
	expectEvents(t, "a live event after the replay", collect(t, p, live, 1, 10*time.Second), []event{{"PUT", "d", "live", r6}})
}

func TestWatchProgressRequest(t *testing.T) {
	client := newClient(t)
	p := keyPrefix(t, client)
	ch := watchCreated(t, client, p, clientv3.WithPrefix())
	rev := mustPut(t, client, p+"a", "1").Header.Revision
	collect(t, p, ch, 1, 10*time.Second)
	if err := client.RequestProgress(timeout(t, 10*time.Second)); err != nil {
		t.Fatalf("request progress: %v", err)
	}
	select {
	case resp := <-ch:
		if !resp.IsProgressNotify() || resp.Header.Revision < rev {
			t.Errorf("after a progress request: %+v, want a progress notification at >= %d", resp, rev)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no progress notification within 10 s")
	}
}

// Periodic progress notifications (etcd's --experimental-watch-progress-notify-interval; the default of
// 10 minutes is too long for a test, so it needs a cluster started with a short one, named by
// -progress-notify-interval): an idle watcher that asked for them gets one per interval, with the
// current revision, even when other keys change; one that did not ask gets none.
func TestWatchProgressNotify(t *testing.T) {
	interval := *progressIntervalFlag
	if interval == 0 {
		t.Skip("needs -progress-notify-interval (the members' --experimental-watch-progress-notify-interval)")
	}
	client := newClient(t)
	p := keyPrefix(t, client)
	notified := watchCreated(t, client, p+"quiet", clientv3.WithProgressNotify())
	silent := watchCreated(t, client, p+"quiet")
	for round := 0; round < 2; round++ {
		rev := mustPut(t, client, p+"other", fmt.Sprint(round)).Header.Revision
		// A notification may already be on its way from before the put: wait for one that shows it.
		deadline := time.After(4*interval + 2*time.Second)
		for seen := false; !seen; {
			select {
			case resp := <-notified:
				if !resp.IsProgressNotify() {
					t.Fatalf("round %d: the idle watcher got %+v, want only progress notifications", round, resp)
				}
				seen = resp.Header.Revision >= rev
			case <-deadline:
				t.Fatalf("round %d: no progress notification at or after revision %d within %v", round, rev, 4*interval+2*time.Second)
			}
		}
	}
	select {
	case resp := <-silent:
		t.Errorf("a watcher that did not ask for progress notifications got %+v", resp)
	default:
	}
}

// fragment: a response of --max-request-bytes plus etcd's gRPC allowance (1.5 MiB + 512 KiB by default) or
// more is split into responses below that, all but the last marked fragment; clientv3 joins them again.
func TestWatchFragment(t *testing.T) {
	// One member for the writes and the watches: it has applied every write it acknowledged, so a
	// watch from the first one finds all four in its history and answers them as one response.
	client := newClient(t, endpoints()[0])
	p := keyPrefix(t, client)
	value := strings.Repeat("v", 600*1024)
	first := int64(0)
	for i := 0; i < 4; i++ {
		rev := mustPut(t, client, fmt.Sprintf("%sbig%d", p, i), value).Header.Revision
		if first == 0 {
			first = rev
		}
	}
	// What arrives on a raw stream, as (events, fragment) per response, until a response that is not a
	// fragment.
	responses := func(fragment bool) []string {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		stream, err := pb.NewWatchClient(client.ActiveConnection()).Watch(ctx)
		if err != nil {
			t.Fatalf("watch stream: %v", err)
		}
		err = stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
			Key: []byte(p), RangeEnd: []byte(clientv3.GetPrefixRangeEnd(p)), StartRevision: first, Fragment: fragment}}})
		if err != nil {
			t.Fatalf("watch create: %v", err)
		}
		var got []string
		events := 0
		for events < 4 {
			resp, err := stream.Recv()
			if err != nil {
				t.Fatalf("watch receive after %v: %v", got, err)
			}
			if resp.Created {
				continue
			}
			events += len(resp.Events)
			got = append(got, fmt.Sprintf("%d/%v", len(resp.Events), resp.Fragment))
		}
		return got
	}
	if got := responses(true); fmt.Sprint(got) != "[3/true 1/false]" {
		t.Errorf("four 600 KiB events with fragment: responses %v, want [3/true 1/false] (2 MiB each at most)", got)
	}
	if got := responses(false); fmt.Sprint(got) != "[4/false]" {
		t.Errorf("four 600 KiB events without fragment: responses %v, want [4/false]", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	joined := client.Watch(ctx, p, clientv3.WithPrefix(), clientv3.WithRev(first), clientv3.WithFragment())
	select {
	case resp := <-joined:
		if len(resp.Events) != 4 || resp.Err() != nil {
			t.Errorf("clientv3 with WithFragment: %d events (%v), want the 4 joined in one response", len(resp.Events), resp.Err())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("clientv3 with WithFragment: nothing within 20 s")
	}
}
