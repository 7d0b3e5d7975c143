package goclient

// Cases that stop or kill members: they need -member-pids (the PIDs in -endpoints order), so the
// harness runs them on their own after the rest, in this order, TestMemberFailover last (it kills one).

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/clientv3"
	pb "go.etcd.io/etcd/etcdserver/etcdserverpb"
)

// A follower that was stopped while the others committed hundreds of writes gets a watch from the
// last revision the leader acknowledged: it must wait until it has applied it, then start exactly
// there, never with the older events it applies first.
func TestMemberWatchOnStoppedFollower(t *testing.T) {
	pids := memberPids(t)
	if pids == nil {
		t.Skip("needs -member-pids to stop a member")
	}
	leaderEndpoint, followerEndpoint := leaderAndFollower(t)
	followerPid := 0
	for i, ep := range endpoints() {
		if ep == followerEndpoint {
			followerPid = pids[i]
		}
	}
	leader, follower := newClient(t, leaderEndpoint), newClient(t, followerEndpoint)
	p := keyPrefix(t, leader)
	// The follower's connection is up before the member stops (a new one would wait for it). The
	// watch goes through etcd's raw Watch stream: clientv3's Watch waits for the creation, which a
	// stopped member cannot confirm, while a raw stream only queues the request on the connection.
	mustGet(t, follower, p+"k", clientv3.WithSerializable())
	resume := func() { syscall.Kill(followerPid, syscall.SIGCONT) }
	t.Cleanup(resume)
	for round := 0; round < 3; round++ {
		if err := syscall.Kill(followerPid, syscall.SIGSTOP); err != nil {
			t.Fatalf("stopping the follower (pid %d): %v", followerPid, err)
		}
		for i := 0; i < 300; i++ {
			mustPut(t, leader, p+"filler", fmt.Sprint(i))
		}
		first := mustPut(t, leader, p+"k", fmt.Sprintf("%d-first", round)).Header.Revision
		second := mustPut(t, leader, p+"k", fmt.Sprintf("%d-second", round)).Header.Revision
		ctx, cancel := context.WithCancel(context.Background())
		stream, err := pb.NewWatchClient(follower.ActiveConnection()).Watch(ctx)
		if err == nil {
			err = stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{
				CreateRequest: &pb.WatchCreateRequest{Key: []byte(p + "k"), StartRevision: second}}})
		}
		resume()
		if err != nil {
			cancel()
			t.Fatalf("round %d: watch on the stopped follower: %v", round, err)
		}
		firstEvent := make(chan string, 1)
		go func() {
			for {
				resp, err := stream.Recv()
				if err != nil {
					firstEvent <- err.Error()
					return
				}
				if len(resp.Events) > 0 {
					kv := resp.Events[0].Kv
					firstEvent <- fmt.Sprintf("%s@%d", kv.Value, kv.ModRevision)
					return
				}
			}
		}()
		select {
		case got := <-firstEvent:
			if want := fmt.Sprintf("%d-second@%d", round, second); got != want {
				t.Errorf("round %d: watch on the resumed follower from %d (the first put was %d) began with %s",
					round, second, first, got)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("round %d: no event within 20 s of resuming the follower", round)
		}
		cancel()
		if t.Failed() {
			return
		}
	}
}

// Client fail-over: a member dies under a client that uses every endpoint. The client's watch was
// served by that member; it must resume on another member without losing or repeating an event, a
// lease kept alive through the client must survive, and writes and linearizable reads must go on.
func TestMemberFailover(t *testing.T) {
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
