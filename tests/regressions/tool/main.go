// Command regress-client is the workload side of tests/regressions: it writes and reads through etcd's own
// Go client (clientv3 from etcd 3.4) while the shell scripts there kill, stop and restart the members, and
// it checks what the named etcd bugs broke. Each subcommand exits 0 when its check holds, 1 with a line
// naming what broke, 2 on bad usage.
//
//	regress-client write -endpoints URLS -prefix P -acked FILE [-concurrency N] [-count N] [-until-file F]
//	regress-client check-acked -endpoints URLS -acked FILE
//	regress-client watch-check -endpoint URL -prefix P -from-rev R -until-rev R [-allow-compacted]
//	regress-client revision -endpoints URLS
//	regress-client grant-leases -endpoints URLS -prefix P -count N -ttl SECONDS
//	regress-client latency -endpoints URLS -prefix P -duration D
//
// write puts unique keys (P/<writer>/<n>) and appends "key value revision" to FILE after each
// acknowledgement (written and flushed before the next put, so a line in FILE means the client was told
// OK); failed puts are retried with a fresh key and never recorded. It stops after -count puts per writer
// or when -until-file exists. check-acked reads every acknowledged key through each endpoint on its own
// (serializable: that member's own state) and fails on any key missing or holding another value.
// watch-check watches P from -from-rev and requires every revision in [from, until] that wrote under P
// exactly once, in order, each matching a linearizable read of the history (Get at that revision).
// grant-leases grants N leases of the TTL (64 at a time) and puts one key P/<n> on each. latency puts one
// key at a time for the duration and prints the latency distribution; any failed put fails it.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.uber.org/zap"
)

func usage() {
	fmt.Fprintln(os.Stderr, "usage: regress-client write|check-acked|watch-check|revision [flags] (see the source's opening comment)")
	os.Exit(2)
}

func fatalf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "regress-client: "+format+"\n", args...)
	os.Exit(1)
}

func newClient(endpoints []string) *clientv3.Client {
	// clientv3's own logger prints every retry at info level; errors are enough next to this program's lines.
	logConfig := zap.NewProductionConfig()
	logConfig.Level = zap.NewAtomicLevelAt(zap.ErrorLevel)
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		LogConfig:   &logConfig,
	})
	if err != nil {
		fatalf("connecting to %v: %v", endpoints, err)
	}
	return client
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	flags := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	endpointsFlag := flags.String("endpoints", "", "comma-separated client URLs")
	endpointFlag := flags.String("endpoint", "", "one client URL")
	prefix := flags.String("prefix", "", "key prefix")
	ackedFile := flags.String("acked", "", "file of acknowledged puts")
	concurrency := flags.Int("concurrency", 8, "writers")
	count := flags.Int("count", 0, "puts per writer (0: until -until-file exists)")
	untilFile := flags.String("until-file", "", "stop writing once this file exists")
	fromRev := flags.Int64("from-rev", 0, "first revision to watch")
	untilRev := flags.Int64("until-rev", 0, "last revision to check")
	untilRevFile := flags.String("until-rev-file", "",
		"read the last revision to check from this file once it appears (for a watch started before the writes end)")
	ttl := flags.Int64("ttl", 5, "lease TTL, seconds")
	duration := flags.Duration("duration", 10*time.Second, "how long to measure")
	allowCompacted := flags.Bool("allow-compacted", false,
		"a watch cancelled as compacted passes if the compaction passed the next revision it owed")
	_ = flags.Parse(os.Args[2:])
	split := func(list string) []string {
		if list == "" {
			fatalf("-endpoints is required")
		}
		return strings.Split(list, ",")
	}
	switch os.Args[1] {
	case "write":
		if *prefix == "" || *ackedFile == "" {
			fatalf("write needs -prefix and -acked")
		}
		write(split(*endpointsFlag), *prefix, *ackedFile, *concurrency, *count, *untilFile)
	case "check-acked":
		checkAcked(split(*endpointsFlag), *ackedFile)
	case "watch-check":
		if *endpointFlag == "" || *fromRev <= 0 || (*untilRevFile == "" && *untilRev < *fromRev) {
			fatalf("watch-check needs -endpoint, -prefix, -from-rev > 0 and -until-rev >= -from-rev or -until-rev-file")
		}
		watchCheck(*endpointFlag, *prefix, *fromRev, *untilRev, *untilRevFile, *allowCompacted, split(*endpointsFlag))
	case "grant-leases":
		grantLeases(split(*endpointsFlag), *prefix, *count, *ttl)
	case "latency":
		measureLatency(split(*endpointsFlag), *prefix, *duration)
	case "revision":
		client := newClient(split(*endpointsFlag))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		response, err := client.Get(ctx, "regress-client/revision-probe")
		if err != nil {
			fatalf("reading the revision: %v", err)
		}
		fmt.Println(response.Header.Revision)
	default:
		usage()
	}
}

func write(endpoints []string, prefix, ackedPath string, concurrency, count int, untilFile string) {
	client := newClient(endpoints)
	defer client.Close()
	acked, err := os.OpenFile(ackedPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		fatalf("%v", err)
	}
	defer acked.Close()
	var ackedLock sync.Mutex
	stopRequested := func() bool {
		if untilFile == "" {
			return false
		}
		_, err := os.Stat(untilFile)
		return err == nil
	}
	var wait sync.WaitGroup
	var okCount, failedCount int64
	var countLock sync.Mutex
	for writer := 0; writer < concurrency; writer++ {
		wait.Add(1)
		go func(writer int) {
			defer wait.Done()
			for n := 0; (count == 0 || n < count) && !stopRequested(); n++ {
				key := fmt.Sprintf("%s/%d/%06d", prefix, writer, n)
				value := fmt.Sprintf("v%d-%d-%d", writer, n, time.Now().UnixNano())
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				response, err := client.Put(ctx, key, value)
				cancel()
				countLock.Lock()
				if err != nil {
					failedCount++
				} else {
					okCount++
				}
				countLock.Unlock()
				if err != nil {
					// Unknown outcome: the key is never reused and never counted as acknowledged.
					time.Sleep(20 * time.Millisecond)
					continue
				}
				ackedLock.Lock()
				_, err = fmt.Fprintf(acked, "%s %s %d\n", key, value, response.Header.Revision)
				ackedLock.Unlock()
				if err != nil {
					fatalf("recording an acknowledged put: %v", err)
				}
			}
		}(writer)
	}
	wait.Wait()
	fmt.Printf("write: %d acknowledged, %d failed\n", okCount, failedCount)
}

type ackedPut struct {
	key, value string
	revision   int64
}

func readAcked(path string) []ackedPut {
	file, err := os.Open(path)
	if err != nil {
		fatalf("%v", err)
	}
	defer file.Close()
	var puts []ackedPut
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) != 3 {
			fatalf("%s: malformed line %q", path, scanner.Text())
		}
		revision, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil {
			fatalf("%s: malformed revision in %q", path, scanner.Text())
		}
		puts = append(puts, ackedPut{fields[0], fields[1], revision})
	}
	return puts
}

func checkAcked(endpoints []string, ackedPath string) {
	puts := readAcked(ackedPath)
	if len(puts) == 0 {
		fatalf("%s holds no acknowledged put: the workload never wrote", ackedPath)
	}
	for _, endpoint := range endpoints {
		client := newClient([]string{endpoint})
		stored := readAll(client, endpoint)
		client.Close()
		for _, put := range puts {
			kv, present := stored[put.key]
			if !present {
				fatalf("LOST: %s (acknowledged at revision %d) is missing on %s", put.key, put.revision, endpoint)
			}
			if kv.value != put.value || kv.revision != put.revision {
				fatalf("CHANGED: %s on %s holds %q at revision %d, acknowledged %q at revision %d",
					put.key, endpoint, kv.value, kv.revision, put.value, put.revision)
			}
		}
	}
	fmt.Printf("check-acked: %d acknowledged puts present on each of %d members\n", len(puts), len(endpoints))
}

type storedValue struct {
	value    string
	revision int64
}

// readAll reads every key of one member as that member has applied it (serializable), in pages.
func readAll(client *clientv3.Client, endpoint string) map[string]storedValue {
	stored := map[string]storedValue{}
	from := "\x00"
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		response, err := client.Get(ctx, from, clientv3.WithFromKey(), clientv3.WithSerializable(),
			clientv3.WithLimit(5000), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
		cancel()
		if err != nil {
			fatalf("reading the keys of %s from %q: %v", endpoint, from, err)
		}
		for _, kv := range response.Kvs {
			stored[string(kv.Key)] = storedValue{string(kv.Value), kv.ModRevision}
		}
		if !response.More || len(response.Kvs) == 0 {
			return stored
		}
		from = string(response.Kvs[len(response.Kvs)-1].Key) + "\x00"
	}
}

// watchCheck compares a watch through one member with the history read back at each revision from the
// whole cluster: a revision that wrote under the prefix must come exactly once and in order.
func watchCheck(endpoint, prefix string, fromRev, untilRev int64, untilRevFile string, allowCompacted bool,
	clusterEndpoints []string) {
	watcher := newClient([]string{endpoint})
	defer watcher.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	watch := watcher.Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix(), clientv3.WithRev(fromRev))
	expectNext := fromRev
	seen := map[int64]string{}
	events := 0
	untilKnown := untilRevFile == ""
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		if !untilKnown {
			if text, err := os.ReadFile(untilRevFile); err == nil && strings.HasSuffix(string(text), "\n") {
				untilRev, err = strconv.ParseInt(strings.TrimSpace(string(text)), 10, 64)
				if err != nil || untilRev < fromRev {
					fatalf("%s: %q is not a revision >= %d", untilRevFile, text, fromRev)
				}
				untilKnown = true
			}
		}
		if untilKnown && expectNext > untilRev {
			break
		}
		var response clientv3.WatchResponse
		var open bool
		select {
		case response, open = <-watch:
		case <-poll.C:
			continue
		}
		if !open {
			fatalf("watch through %s closed after %d events, owing revision %d", endpoint, events, expectNext)
		}
		if response.CompactRevision != 0 {
			if allowCompacted && response.CompactRevision > expectNext {
				fmt.Printf("watch-check: cancelled as compacted at %d after %d events (next owed %d)\n",
					response.CompactRevision, events, expectNext)
				verifyAgainstHistory(clusterEndpoints, prefix, fromRev, expectNext-1, seen)
				return
			}
			fatalf("watch through %s cancelled as compacted at %d, owing revision %d", endpoint,
				response.CompactRevision, expectNext)
		}
		if err := response.Err(); err != nil {
			fatalf("watch through %s: %v", endpoint, err)
		}
		for _, event := range response.Events {
			revision := event.Kv.ModRevision
			if _, duplicate := seen[revision]; duplicate {
				fatalf("DUPLICATE: revision %d (%s) delivered twice by %s", revision, event.Kv.Key, endpoint)
			}
			if revision < expectNext {
				fatalf("ORDER: revision %d delivered after %d by %s", revision, expectNext-1, endpoint)
			}
			seen[revision] = string(event.Kv.Key) + "=" + string(event.Kv.Value)
			expectNext = revision + 1
			events++
		}
	}
	verifyAgainstHistory(clusterEndpoints, prefix, fromRev, untilRev, seen)
	fmt.Printf("watch-check: %d events from %d to %d through %s, each once and in order\n", events, fromRev,
		untilRev, endpoint)
}

// verifyAgainstHistory reads the prefix's keys as they are now and checks every revision in range that
// modified one against the watch's record. The writers never reuse a key nor delete one, so the keys as
// they are now hold every revision ever written under the prefix (and stay readable after compaction): a
// key whose mod revision lies in range must have been delivered, with its value.
func verifyAgainstHistory(endpoints []string, prefix string, fromRev, untilRev int64, seen map[int64]string) {
	client := newClient(endpoints)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	response, err := client.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		fatalf("reading %s to check the watch: %v", prefix, err)
	}
	for _, kv := range response.Kvs {
		if kv.ModRevision < fromRev || kv.ModRevision > untilRev {
			continue
		}
		got, delivered := seen[kv.ModRevision]
		if !delivered {
			fatalf("MISSED: revision %d (%s) never delivered by the watch", kv.ModRevision, kv.Key)
		}
		if want := string(kv.Key) + "=" + string(kv.Value); got != want {
			fatalf("WRONG: revision %d delivered as %q, the history holds %q", kv.ModRevision, got, want)
		}
	}
}

func grantLeases(endpoints []string, prefix string, count int, ttl int64) {
	client := newClient(endpoints)
	defer client.Close()
	work := make(chan int)
	failures := make(chan error, 64)
	var wait sync.WaitGroup
	for worker := 0; worker < 64; worker++ {
		wait.Add(1)
		go func() {
			defer wait.Done()
			for n := range work {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				lease, err := client.Grant(ctx, ttl)
				if err == nil {
					_, err = client.Put(ctx, fmt.Sprintf("%s/%06d", prefix, n), "v", clientv3.WithLease(lease.ID))
				}
				cancel()
				if err != nil {
					select {
					case failures <- err:
					default:
					}
				}
			}
		}()
	}
	for n := 0; n < count; n++ {
		work <- n
	}
	close(work)
	wait.Wait()
	select {
	case err := <-failures:
		fatalf("granting leases: %v", err)
	default:
	}
	fmt.Printf("grant-leases: %d leases of %d s, a key on each\n", count, ttl)
}

func measureLatency(endpoints []string, prefix string, duration time.Duration) {
	client := newClient(endpoints)
	defer client.Close()
	var latencies []time.Duration
	end := time.Now().Add(duration)
	for n := 0; time.Now().Before(end); n++ {
		started := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := client.Put(ctx, fmt.Sprintf("%s/%06d", prefix, n), "v")
		cancel()
		if err != nil {
			fatalf("put %d failed after %v: %v", n, time.Since(started), err)
		}
		latencies = append(latencies, time.Since(started))
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	at := func(fraction float64) float64 {
		return float64(latencies[int(fraction*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	fmt.Printf("latency: n=%d p50=%.1f p99=%.1f max=%.1f (ms)\n", len(latencies), at(0.5), at(0.99), at(1))
}
