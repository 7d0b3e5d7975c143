package goclient

// Leases through clientv3's Lease API: keep-alive holds a key, the key goes when keep-alive stops,
// revoke deletes the attached keys at once, and the answers for a lease that is gone.

import (
	"context"
	"testing"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/etcdserver/api/v3rpc/rpctypes"
)

func TestLeaseKeepAlive(t *testing.T) {
	client := newClient(t)
	p := keyPrefix(t, client)
	grant, err := client.Grant(timeout(t, 10*time.Second), 3)
	if err != nil {
		t.Fatalf("grant: %v", err)
	}
	if grant.TTL != 3 {
		t.Errorf("granted TTL %d, want 3", grant.TTL)
	}
	mustPut(t, client, p+"held", "v", clientv3.WithLease(grant.ID))
	keepCtx, stopKeepAlive := context.WithCancel(context.Background())
	defer stopKeepAlive()
	responses, err := client.KeepAlive(keepCtx, grant.ID)
	if err != nil {
		t.Fatalf("keep-alive: %v", err)
	}
	// Three TTLs with the keep-alive running: the key stays, and every answer renews the full TTL.
	end := time.Now().Add(9 * time.Second)
	renewals := 0
	for time.Now().Before(end) {
		select {
		case resp, ok := <-responses:
			if !ok {
				t.Fatalf("keep-alive channel closed after %d renewals", renewals)
			}
			if resp.ID != grant.ID || resp.TTL != 3 {
				t.Errorf("keep-alive answer %+v, want ID %x TTL 3", resp, grant.ID)
			}
			renewals++
		case <-time.After(time.Until(end)):
		}
	}
	if renewals < 3 {
		t.Errorf("%d keep-alive answers in 9 s with a 3 s TTL, want at least 3", renewals)
	}
	if resp := mustGet(t, client, p+"held"); len(resp.Kvs) != 1 || resp.Kvs[0].Lease != int64(grant.ID) {
		t.Fatalf("after 9 s of keep-alive the key is %+v, want it attached to %x", resp.Kvs, grant.ID)
	}
	ttl, err := client.TimeToLive(timeout(t, 10*time.Second), grant.ID, clientv3.WithAttachedKeys())
	if err != nil {
		t.Fatalf("time to live: %v", err)
	}
	if ttl.GrantedTTL != 3 || ttl.TTL <= 0 || ttl.TTL > 3 || len(ttl.Keys) != 1 || string(ttl.Keys[0]) != p+"held" {
		t.Errorf("time to live: %+v, want granted 3, 0 < TTL <= 3, keys [%s]", ttl, p+"held")
	}
	leases, err := client.Leases(timeout(t, 10*time.Second))
	if err != nil {
		t.Fatalf("leases: %v", err)
	}
	found := false
	for _, l := range leases.Leases {
		found = found || l.ID == grant.ID
	}
	if !found {
		t.Errorf("leases %+v do not list %x", leases.Leases, grant.ID)
	}

	// Without keep-alive the lease runs out and takes the key with it.
	stopKeepAlive()
	waitFor(t, 20*time.Second, "the key of the expired lease to go", func() bool {
		return len(mustGet(t, client, p+"held").Kvs) == 0
	})
	ttl, err = client.TimeToLive(timeout(t, 10*time.Second), grant.ID)
	if err != nil || ttl.TTL != -1 {
		t.Errorf("time to live of the expired lease: %+v, %v; want TTL -1", ttl, err)
	}
	if _, err := client.KeepAliveOnce(timeout(t, 10*time.Second), grant.ID); err != rpctypes.ErrLeaseNotFound {
		t.Errorf("keep-alive of the expired lease: %v, want %v", err, rpctypes.ErrLeaseNotFound)
	}
}

func TestLeaseRevoke(t *testing.T) {
	client := newClient(t)
	p := keyPrefix(t, client)
	grant, err := client.Grant(timeout(t, 10*time.Second), 60)
	if err != nil {
		t.Fatalf("grant: %v", err)
	}
	mustPut(t, client, p+"one", "v", clientv3.WithLease(grant.ID))
	mustPut(t, client, p+"two", "v", clientv3.WithLease(grant.ID))
	mustPut(t, client, p+"free", "v")
	revoke, err := client.Revoke(timeout(t, 10*time.Second), grant.ID)
	if err != nil {
		t.Fatalf("revoke: %v", err)
	}
	resp := mustGet(t, client, p, clientv3.WithPrefix())
	if got := keysOf(p, resp.Kvs); len(got) != 1 || got[0] != "free" {
		t.Errorf("after the revoke: keys %q, want only free", got)
	}
	// Both keys went in one revision, the revoke's.
	if before := mustGet(t, client, p, clientv3.WithPrefix(), clientv3.WithRev(revoke.Header.Revision-1)); before.Count != 3 {
		t.Errorf("at the revision before the revoke's (%d): %d keys, want all 3", revoke.Header.Revision-1, before.Count)
	}
	if _, err := client.Revoke(timeout(t, 10*time.Second), grant.ID); err != rpctypes.ErrLeaseNotFound {
		t.Errorf("second revoke: %v, want %v", err, rpctypes.ErrLeaseNotFound)
	}
	if _, err := client.Put(timeout(t, 10*time.Second), p+"late", "v", clientv3.WithLease(grant.ID)); err != rpctypes.ErrLeaseNotFound {
		t.Errorf("put with the revoked lease: %v, want %v", err, rpctypes.ErrLeaseNotFound)
	}
}

// A lease is usable through every member as soon as its grant is acknowledged: clientv3's Session
// grants through one member and keeps alive through whichever its balancer picks, and a first
// keep-alive answered "not found" ends the session at once ("session expired" in etcdctl lock/elect).
func TestLeaseKeepAliveRightAfterGrant(t *testing.T) {
	eps := endpoints()
	clients := make([]*clientv3.Client, len(eps))
	for i, ep := range eps {
		clients[i] = newClient(t, ep)
	}
	for round := 0; round < 30; round++ {
		granter := clients[round%len(clients)]
		grant, err := granter.Grant(timeout(t, 10*time.Second), 60)
		if err != nil {
			t.Fatalf("round %d: grant: %v", round, err)
		}
		for i, renewer := range clients {
			resp, err := renewer.KeepAliveOnce(timeout(t, 10*time.Second), grant.ID)
			if err != nil || resp.TTL != 60 {
				t.Fatalf("round %d: keep-alive through %s right after the grant through %s: %+v, %v",
					round, eps[i], eps[round%len(clients)], resp, err)
			}
		}
		if _, err := granter.Revoke(timeout(t, 10*time.Second), grant.ID); err != nil {
			t.Fatalf("round %d: revoke: %v", round, err)
		}
	}
}
