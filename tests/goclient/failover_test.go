package goclient

// Client fail-over: a member dies under a client that uses every endpoint. The client's watch was
// served by that member; it must resume on another member without losing or repeating an event, a
// lease kept alive through the client must survive, and writes and linearizable reads must go on.
// Needs -member-pids (it kills one member with SIGKILL), so the harness runs it last and on its own.

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/clientv3"
)

func TestFailover(t *testing.T) {
	pids := memberPids(t)
	if pids == nil {
		t.Skip("needs -member-pids to stop a member")
	}
	eps := endpoints()
	client := newClient(t)
	p := keyPrefix(t, client)

	// The member IDs behind the endpoints, to find which one serves the watch.
	memberOf := map[uint64]int{}
	for i, ep := range eps {
		status, err := client.Status(timeout(t, 10*time.Second), ep)
		if err != nil {
			t.Fatalf("status of %s: %v", ep, err)
		}
		memberOf[status.Header.MemberId] = i
	}

	grant, err := client.Grant(timeout(t, 10*time.Second), 3)
	if err != nil {
		t.Fatalf("grant: %v", err)
	}
	mustPut(t, client, p+"leased", "v", clientv3.WithLease(grant.ID))
	keepCtx, stopKeepAlive := context.WithCancel(context.Background())
	defer stopKeepAlive()
	if _, err := client.KeepAlive(keepCtx, grant.ID); err != nil {
		t.Fatalf("keep-alive: %v", err)
	}

	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	watch := client.Watch(watchCtx, p+"k", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	created := <-watch
	victim, ok := memberOf[created.Header.MemberId]
	if !created.Created || !ok {
		t.Fatalf("watch creation %+v names no known member", created)
	}

	// createOnce writes a key at most once however often it is retried, so the watch must show
	// each key exactly once.
	createOnce := func(key string) int64 {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			resp, err := client.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
				Then(clientv3.OpPut(key, "v")).Else(clientv3.OpGet(key)).Commit()
			cancel()
			if err == nil {
				if resp.Succeeded {
					return resp.Header.Revision
				}
				return resp.Responses[0].GetResponseRange().Kvs[0].ModRevision
			}
			if time.Now().After(deadline) {
				t.Fatalf("creating %s: still failing after 30 s: %v", key, err)
			}
		}
	}
	var want []event
	for i := 0; i < 5; i++ {
		key := fmt.Sprintf("k%02d", i)
		want = append(want, event{"PUT", key, "v", createOnce(p + key)})
	}
	got := collect(t, p, watch, 5, 10*time.Second)

	t.Logf("killing member %d (%s, pid %d), which serves the watch", victim, eps[victim], pids[victim])
	if err := syscall.Kill(pids[victim], syscall.SIGKILL); err != nil {
		t.Fatalf("kill %d: %v", pids[victim], err)
	}
	killedAt := time.Now()
	for i := 5; i < 15; i++ {
		key := fmt.Sprintf("k%02d", i)
		want = append(want, event{"PUT", key, "v", createOnce(p + key)})
	}
	got = append(got, collect(t, p, watch, 10, 30*time.Second)...)
	expectEvents(t, "the watch across the member's death", got, want)

	// A linearizable read through the client shows the last write.
	last := mustGet(t, client, p+"k", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if last.Count != 15 {
		t.Errorf("%d keys after the fail-over, want 15", last.Count)
	}
	// The lease outlives three TTLs after the death (a new leader, if the leader died, extends it):
	// the key is there every time it is looked at.
	for time.Since(killedAt) < 3*3*time.Second {
		if resp := mustGet(t, client, p+"leased"); len(resp.Kvs) != 1 {
			t.Fatalf("the key of a lease kept alive through the fail-over went %v after the kill", time.Since(killedAt))
		}
		time.Sleep(100 * time.Millisecond)
	}
	ttl, err := client.TimeToLive(timeout(t, 10*time.Second), grant.ID)
	if err != nil || ttl.TTL <= 0 {
		t.Errorf("time to live after the fail-over: %+v %v", ttl, err)
	}
}
