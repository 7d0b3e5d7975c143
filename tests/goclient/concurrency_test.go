package goclient

// clientv3/concurrency: Mutex and Election (which wait on a range with max_create_revision, sorted by
// create revision descending, limit 1) and the STM at each isolation level.

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/concurrency"
)

func newSession(t *testing.T, client *clientv3.Client) *concurrency.Session {
	t.Helper()
	session, err := concurrency.NewSession(client, concurrency.WithTTL(10))
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	t.Cleanup(func() { session.Close() })
	return session
}

// Several sessions take turns on one lock and increment a shared counter with a plain read and a
// plain write: only mutual exclusion keeps every increment.
func TestMutexContention(t *testing.T) {
	const contenders, rounds = 4, 5
	admin := newClient(t)
	p := keyPrefix(t, admin)
	mustPut(t, admin, p+"counter", "0")
	var holders, waiting, sawWaiters int32
	errs := make(chan error, contenders)
	var wg sync.WaitGroup
	for c := 0; c < contenders; c++ {
		client := newClient(t)
		session := newSession(t, client)
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			errs <- func() error {
				mutex := concurrency.NewMutex(session, p+"lock/")
				for r := 0; r < rounds; r++ {
					ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
					defer cancel()
					atomic.AddInt32(&waiting, 1)
					err := mutex.Lock(ctx)
					atomic.AddInt32(&waiting, -1)
					if err != nil {
						return fmt.Errorf("contender %d round %d: lock: %v", c, r, err)
					}
					if n := atomic.AddInt32(&holders, 1); n != 1 {
						return fmt.Errorf("contender %d round %d: %d holders of the lock", c, r, n)
					}
					if atomic.LoadInt32(&waiting) > 0 {
						atomic.StoreInt32(&sawWaiters, 1)
					}
					resp, err := client.Get(ctx, p+"counter")
					if err != nil {
						return fmt.Errorf("contender %d: get: %v", c, err)
					}
					n, _ := strconv.Atoi(string(resp.Kvs[0].Value))
					if _, err := client.Put(ctx, p+"counter", strconv.Itoa(n+1)); err != nil {
						return fmt.Errorf("contender %d: put: %v", c, err)
					}
					atomic.AddInt32(&holders, -1)
					if err := mutex.Unlock(ctx); err != nil {
						return fmt.Errorf("contender %d round %d: unlock: %v", c, r, err)
					}
				}
				return nil
			}()
		}(c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if v, _, _ := valueOf(t, admin, p+"counter"); v != strconv.Itoa(contenders*rounds) {
		t.Errorf("counter %s after %d locked increments", v, contenders*rounds)
	}
	if sawWaiters == 0 {
		t.Errorf("no contender ever waited for the lock: the test did not contend")
	}
	if left := mustGet(t, admin, p+"lock/", clientv3.WithPrefix()); left.Count != 0 {
		t.Errorf("%d lock keys left after every unlock", left.Count)
	}
}

func TestElection(t *testing.T) {
	admin := newClient(t)
	p := keyPrefix(t, admin)
	electionPrefix := p + "election/"
	sessions := make([]*concurrency.Session, 3)
	elections := make([]*concurrency.Election, 3)
	for i := range sessions {
		sessions[i] = newSession(t, newClient(t))
		elections[i] = concurrency.NewElection(sessions[i], electionPrefix)
	}
	observer := concurrency.NewElection(newSession(t, newClient(t)), electionPrefix)
	observeCtx, stopObserving := context.WithCancel(context.Background())
	defer stopObserving()
	observed := observer.Observe(observeCtx)
	expectObserved := func(value string) {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for {
			select {
			case resp, ok := <-observed:
				if !ok {
					t.Fatalf("observe closed while waiting for %q", value)
				}
				if string(resp.Kvs[0].Value) == value {
					return
				}
			case <-deadline:
				t.Fatalf("observe did not show %q within 15 s", value)
			}
		}
	}
	expectLeader := func(value string) {
		t.Helper()
		resp, err := observer.Leader(timeout(t, 10*time.Second))
		if err != nil || string(resp.Kvs[0].Value) != value {
			t.Fatalf("leader: %v %v, want %q", resp, err, value)
		}
	}

	if err := elections[0].Campaign(timeout(t, 15*time.Second), "cand1"); err != nil {
		t.Fatalf("campaign of the only candidate: %v", err)
	}
	expectObserved("cand1")
	won := make([]chan error, 3)
	campaignCtx, stopCampaigns := context.WithCancel(context.Background())
	defer stopCampaigns()
	for i := 1; i < 3; i++ {
		won[i] = make(chan error, 1)
		go func(i int) { won[i] <- elections[i].Campaign(campaignCtx, fmt.Sprintf("cand%d", i+1)) }(i)
		// Queue in order: each candidate's key exists before the next one campaigns.
		waitFor(t, 10*time.Second, fmt.Sprintf("candidate %d's key", i+1), func() bool {
			return mustGet(t, admin, electionPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly()).Count == int64(i+1)
		})
	}
	if err := elections[0].Proclaim(timeout(t, 10*time.Second), "cand1 again"); err != nil {
		t.Fatalf("proclaim: %v", err)
	}
	expectObserved("cand1 again")
	expectLeader("cand1 again")
	notYet := func(i int) {
		t.Helper()
		select {
		case err := <-won[i]:
			t.Fatalf("candidate %d's campaign returned (%v) while another leads", i+1, err)
		default:
		}
	}
	notYet(1)
	notYet(2)

	// The leader resigns: the candidate that queued first wins.
	if err := elections[0].Resign(timeout(t, 10*time.Second)); err != nil {
		t.Fatalf("resign: %v", err)
	}
	select {
	case err := <-won[1]:
		if err != nil {
			t.Fatalf("candidate 2's campaign: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("candidate 2 did not win within 15 s of the resignation")
	}
	expectObserved("cand2")
	expectLeader("cand2")
	notYet(2)

	// The leader's session ends (its lease is revoked): the last candidate wins.
	if err := sessions[1].Close(); err != nil {
		t.Fatalf("closing candidate 2's session: %v", err)
	}
	select {
	case err := <-won[2]:
		if err != nil {
			t.Fatalf("candidate 3's campaign: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("candidate 3 did not win within 15 s of candidate 2's session closing")
	}
	expectObserved("cand3")
	expectLeader("cand3")
	if err := elections[2].Resign(timeout(t, 10*time.Second)); err != nil {
		t.Fatalf("resign of candidate 3: %v", err)
	}
	if _, err := observer.Leader(timeout(t, 10*time.Second)); err != concurrency.ErrElectionNoLeader {
		t.Errorf("leader after every candidate left: %v, want %v", err, concurrency.ErrElectionNoLeader)
	}
}

var isolationLevels = []struct {
	name  string
	level concurrency.Isolation
}{
	{"SerializableSnapshot", concurrency.SerializableSnapshot},
	{"Serializable", concurrency.Serializable},
	{"RepeatableReads", concurrency.RepeatableReads},
	{"ReadCommitted", concurrency.ReadCommitted},
}

// Each STM client talks to one member: after its first read an STM reads at that read's revision
// with serializable reads, which another member may not have applied yet (etcd answers "required
// revision is a future revision"; clientv3 does not retry it).
func TestSTMIsolation(t *testing.T) {
	eps := endpoints()
	client := newClient(t, eps[0])
	interloper := newClient(t, eps[len(eps)-1])
	p := keyPrefix(t, client)
	for _, iso := range isolationLevels {
		t.Run(iso.name, func(t *testing.T) {
			k := p + iso.name + "/"
			// A key the STM read changes before it commits: every level but ReadCommitted retries.
			mustPut(t, client, k+"read", "0")
			runs := 0
			_, err := concurrency.NewSTM(client, func(stm concurrency.STM) error {
				runs++
				v := stm.Get(k + "read")
				if runs == 1 {
					if _, err := interloper.Put(context.Background(), k+"read", "interloper"); err != nil {
						return err
					}
				}
				stm.Put(k+"read", v+"+stm")
				return nil
			}, concurrency.WithIsolation(iso.level))
			if err != nil {
				t.Fatalf("stm: %v", err)
			}
			v, _, _ := valueOf(t, client, k+"read")
			switch iso.level {
			case concurrency.ReadCommitted:
				if runs != 1 || v != "0+stm" {
					t.Errorf("read conflict: %d runs, value %q; want 1 run, 0+stm (no conflict check)", runs, v)
				}
			case concurrency.RepeatableReads:
				// Its reads are serializable: it retries until this member has the interloper's write.
				if runs < 2 || v != "interloper+stm" {
					t.Errorf("read conflict: %d runs, value %q; want >= 2 runs, interloper+stm", runs, v)
				}
			default:
				if runs != 2 || v != "interloper+stm" {
					t.Errorf("read conflict: %d runs, value %q; want 2 runs, interloper+stm", runs, v)
				}
			}

			// A key the STM only writes changes after its first read: only SerializableSnapshot retries.
			mustPut(t, client, k+"other", "o")
			runs = 0
			_, err = concurrency.NewSTM(client, func(stm concurrency.STM) error {
				runs++
				stm.Get(k + "other")
				stm.Put(k+"blind", "stm")
				if runs == 1 {
					if _, err := interloper.Put(context.Background(), k+"blind", "interloper"); err != nil {
						return err
					}
				}
				return nil
			}, concurrency.WithIsolation(iso.level))
			if err != nil {
				t.Fatalf("stm: %v", err)
			}
			want := 1
			if iso.level == concurrency.SerializableSnapshot {
				want = 2
			}
			if v, _, _ := valueOf(t, client, k+"blind"); runs != want || v != "stm" {
				t.Errorf("write conflict: %d runs, value %q; want %d runs, stm", runs, v, want)
			}
			if iso.level == concurrency.ReadCommitted {
				return
			}

			// Concurrent transfers between two accounts keep the total at every level that checks reads.
			mustPut(t, client, k+"acct/a", "100")
			mustPut(t, client, k+"acct/b", "100")
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for w := 0; w < 4; w++ {
				wg.Add(1)
				worker := newClient(t, eps[w%len(eps)])
				go func(w int) {
					defer wg.Done()
					for i := 0; i < 8; i++ {
						from, to := k+"acct/a", k+"acct/b"
						if (w+i)%2 == 1 {
							from, to = to, from
						}
						_, err := concurrency.NewSTM(worker, func(stm concurrency.STM) error {
							f, _ := strconv.Atoi(stm.Get(from))
							d, _ := strconv.Atoi(stm.Get(to))
							stm.Put(from, strconv.Itoa(f-(w+1)))
							stm.Put(to, strconv.Itoa(d+(w+1)))
							return nil
						}, concurrency.WithIsolation(iso.level))
						if err != nil {
							errs <- err
							return
						}
					}
				}(w)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("transfer: %v", err)
			}
			a, _, _ := valueOf(t, client, k+"acct/a")
			b, _, _ := valueOf(t, client, k+"acct/b")
			na, _ := strconv.Atoi(a)
			nb, _ := strconv.Atoi(b)
			if na+nb != 200 {
				t.Errorf("after 32 concurrent transfers: a %s + b %s = %d, want 200", a, b, na+nb)
			}
		})
	}
}
