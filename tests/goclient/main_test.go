// Package goclient is a test suite written against etcd's own Go client (clientv3 and
// clientv3/concurrency from etcd 3.4) that runs against any etcd v3 endpoints: the members of a
// quorumd cluster in CI, the real etcd 3.4.23 to check that every case pins etcd's behaviour.
//
//	goclient.test -endpoints http://127.0.0.1:26109,... [-member-pids 101,102,103] [-test.v] [-test.run RE]
//
// Every test works under its own key prefix (run ID + test name) and deletes it when it ends, and
// asserts revisions relative to the ones its own writes got, so the suite can share a cluster with
// other clients. The exceptions say so: compaction (TestRangePastRevision, TestWatchFromCompactRevision)
// affects everyone's history, and the TestMember* cases stop and kill members (only with -member-pids;
// the harness runs them last, on their own).
package goclient

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.uber.org/zap"
)

var (
	endpointsFlag        = flag.String("endpoints", "", "comma-separated client URLs of the cluster under test (required)")
	memberPidsFlag       = flag.String("member-pids", "", "comma-separated PIDs of the members, in -endpoints order: lets the TestMember* cases stop and kill them")
	progressIntervalFlag = flag.Duration("progress-notify-interval", 0,
		"the members' --experimental-watch-progress-notify-interval, when the cluster was started with one: lets TestWatchProgressNotify run")
	runID string
)

func TestMain(m *testing.M) {
	flag.Parse()
	if *endpointsFlag == "" {
		fmt.Fprintln(os.Stderr, "goclient: -endpoints is required (comma-separated client URLs)")
		os.Exit(2)
	}
	// Unique per run, so a rerun against the same cluster never sees an earlier run's keys.
	runID = strconv.FormatInt(time.Now().UnixNano(), 36)
	os.Exit(m.Run())
}

func endpoints() []string { return strings.Split(*endpointsFlag, ",") }

// memberPids gives the PIDs from -member-pids, or nil when not given.
func memberPids(t *testing.T) []int {
	if *memberPidsFlag == "" {
		return nil
	}
	var pids []int
	for _, field := range strings.Split(*memberPidsFlag, ",") {
		pid, err := strconv.Atoi(field)
		if err != nil {
			t.Fatalf("-member-pids: %q is not a PID", field)
		}
		pids = append(pids, pid)
	}
	if len(pids) != len(endpoints()) {
		t.Fatalf("-member-pids has %d PIDs for %d endpoints", len(pids), len(endpoints()))
	}
	return pids
}

// newClient connects to the given endpoints (all of them when none are given) and closes the client
// when the test ends. The client's own log stays at warnings: its retry interceptor's messages are
// what explains a failure.
func newClient(t *testing.T, eps ...string) *clientv3.Client {
	t.Helper()
	if len(eps) == 0 {
		eps = endpoints()
	}
	logConfig := zap.NewProductionConfig()
	logConfig.Level = zap.NewAtomicLevelAt(zap.WarnLevel)
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   eps,
		DialTimeout: 5 * time.Second,
		LogConfig:   &logConfig,
	})
	if err != nil {
		t.Fatalf("connecting to %v: %v", eps, err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// keyPrefix is this test's own key space; it is deleted when the test ends.
func keyPrefix(t *testing.T, client *clientv3.Client) string {
	prefix := "/goclient/" + runID + "/" + t.Name() + "/"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := client.Delete(ctx, prefix, clientv3.WithPrefix()); err != nil {
			t.Logf("deleting %s at the end: %v", prefix, err)
		}
	})
	return prefix
}

// timeout is a context for one step of a test: every wait in this suite is bounded.
func timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustPut(t *testing.T, client *clientv3.Client, key, value string, opts ...clientv3.OpOption) *clientv3.PutResponse {
	t.Helper()
	resp, err := client.Put(timeout(t, 10*time.Second), key, value, opts...)
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return resp
}

func mustGet(t *testing.T, client *clientv3.Client, key string, opts ...clientv3.OpOption) *clientv3.GetResponse {
	t.Helper()
	resp, err := client.Get(timeout(t, 10*time.Second), key, opts...)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return resp
}

// waitFor polls condition every 50 ms until it holds or the bound runs out.
func waitFor(t *testing.T, bound time.Duration, what string, condition func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !condition() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", bound, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
