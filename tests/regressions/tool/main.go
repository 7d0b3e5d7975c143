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
//	regress-client watch-record -endpoints URLS -prefix P -from-rev R -until-rev-file F -out FILE [-progress-every D]
//	regress-client lease-churn -endpoints URLS -prefix P -ttl S -until-file F
//	regress-client lease-gone -endpoints URLS -prefix P -duration D
//	regress-client progress-check -endpoints URL -prefix P -from-rev R
//	regress-client watch-many -endpoints URL -key K -count N -streams S -ready-file F -duration D
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
// watch-record watches P from R through any of the endpoints for as long as it takes (tests/chaos runs it
// across every fault), with etcd's require-leader option, and after each cancellation or broken stream
// watches again from the revision after the last one it got, as a client resuming does; it writes
// "REVISION KEY VALUE PREVIOUS_VALUE" (or "-") per event, fails at once on an event out of order or
// repeated, and stops once it has the revision the until file names. With -progress-every it also checks etcd's
// bookmarkable guarantee on progress notifications, asked for and periodic (see watchRecord).
// lease-churn runs leases with a key each until the until file appears, in three ways in turn: revoked
// half a second after the grant (the key must then be gone for a linearizable read at once), left to
// expire, or kept alive every second (after each renewal answered with a TTL, a linearizable read made
// within the second must still find the key: a lease renewed is not revoked). Failures under faults are
// expected and skipped; a broken promise fails it. lease-gone waits (up to the duration) until no key is
// left under P on any of the endpoints (each read serializable, its own state): every lease's key, revoked
// or expired, deleted on every member. progress-check watches P from R through one member and asks for progress
// every 5 ms from the moment the watch is created, while the member is still sending it the history: each
// progress notification at revision R' must come after every event up to R' (etcd's bookmarkable guarantee) and
// R' never goes backwards; it stops at the first notification at or past the revision the member had when the
// check began, and every key under P up to that revision must have been delivered (the writers never reuse or
// delete a key, so the keys are the history). watch-many opens N watchers on the one key K through one member,
// spread evenly over S gRPC Watch streams (clientv3 opens one stream per distinct context, as an application
// with many contexts does), waits until every one is created (etcd's created notification), writes "N\n" to the
// ready file, and then waits up to the duration for the key to be put: every watcher must get exactly one
// event, a PUT of K, and none may be cancelled or closed; it prints "watch-many: N of N watchers got the put".
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
	"go.etcd.io/etcd/etcdserver/api/v3rpc/rpctypes"
	pb "go.etcd.io/etcd/etcdserver/etcdserverpb"
	"go.etcd.io/etcd/mvcc/mvccpb"
	"go.uber.org/zap"
	"google.golang.org/grpc/metadata"
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
	flags.StringVar(ackedFile, "out", "", "watch-record: the events' file")
	concurrency := flags.Int("concurrency", 8, "writers")
	count := flags.Int("count", 0, "puts per writer (0: until -until-file exists)")
	untilFile := flags.String("until-file", "", "stop writing once this file exists")
	fromRev := flags.Int64("from-rev", 0, "first revision to watch")
	untilRev := flags.Int64("until-rev", 0, "last revision to check")
	untilRevFile := flags.String("until-rev-file", "",
		"read the last revision to check from this file once it appears (for a watch started before the writes end)")
	ttl := flags.Int64("ttl", 5, "lease TTL, seconds")
	duration := flags.Duration("duration", 10*time.Second, "how long to measure")
	progressEvery := flags.Duration("progress-every", 0,
		"watch-record: ask for progress this often and check the bookmarkable guarantee (0: no progress)")
	allowCompacted := flags.Bool("allow-compacted", false,
		"a watch cancelled as compacted passes if the compaction passed the next revision it owed")
	key := flags.String("key", "", "watch-many: the key every watcher watches")
	streams := flags.Int("streams", 10, "watch-many: gRPC Watch streams to spread the watchers over")
	readyFile := flags.String("ready-file", "", "watch-many: written once every watcher is created")
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
	case "watch-record":
		if *fromRev <= 0 || *untilRevFile == "" || *ackedFile == "" {
			fatalf("watch-record needs -from-rev > 0, -until-rev-file and -out")
		}
		watchRecord(split(*endpointsFlag), *prefix, *fromRev, *untilRevFile, *ackedFile, *progressEvery)
	case "lease-churn":
		leaseChurn(split(*endpointsFlag), *prefix, *ttl, *untilFile)
	case "lease-gone":
		leaseGone(split(*endpointsFlag), *prefix, *duration)
	case "progress-check":
		if *prefix == "" || *fromRev <= 0 {
			fatalf("progress-check needs -prefix and -from-rev > 0")
		}
		progressCheck(split(*endpointsFlag), *prefix, *fromRev)
	case "watch-many":
		if *key == "" || *count <= 0 || *streams <= 0 || *readyFile == "" {
			fatalf("watch-many needs -key, -count > 0, -streams > 0 and -ready-file")
		}
		watchMany(split(*endpointsFlag), *key, *count, *streams, *readyFile, *duration)
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

// readUntil gives the revision in the file once it is there, whole (ends with a newline); 0 before.
func readUntil(path string) int64 {
	text, err := os.ReadFile(path)
	if err != nil || !strings.HasSuffix(string(text), "\n") {
		return 0
	}
	revision, err := strconv.ParseInt(strings.TrimSpace(string(text)), 10, 64)
	if err != nil || revision <= 0 {
		fatalf("%s: %q is not a revision", path, text)
	}
	return revision
}

// watchRecord keeps one watch on the prefix going across every fault. It speaks etcd's Watch RPC itself (not
// clientv3's Watcher, which resumes a broken stream on another member without telling), so each stream is one
// watch from one member: created, its events, its progress notifications, then its end (a lost leader with
// the require-leader option, a broken stream), after which a new stream watches again from the revision after
// the last event, as a resuming client does. With -progress-every it also asks for progress on the stream
// (WatchProgressRequest) that often, and the watch asks for etcd's periodic progress notifications
// (progress_notify), and both are checked for etcd's bookmarkable guarantee: a progress notification at
// revision R means every event up to R was delivered, so no event at or below the highest R seen may come
// later (on this stream or a resumed one), and on one stream R never goes backwards.
// receiveWatchResponses hands a Watch stream's responses over a channel, so a caller can select on them
// beside its tickers; the channel closes when the stream ends or ctx is done.
func receiveWatchResponses(ctx context.Context, stream pb.Watch_WatchClient) <-chan *pb.WatchResponse {
	responses := make(chan *pb.WatchResponse)
	go func() {
		defer close(responses)
		for {
			response, err := stream.Recv()
			if err != nil {
				return
			}
			select {
			case responses <- response:
			case <-ctx.Done():
				return
			}
		}
	}()
	return responses
}

func watchRecord(endpoints []string, prefix string, fromRev int64, untilRevFile, outPath string, progressEvery time.Duration) {
	client := newClient(endpoints)
	defer client.Close()
	out, err := os.Create(outPath)
	if err != nil {
		fatalf("%v", err)
	}
	defer out.Close()
	writer := bufio.NewWriter(out)
	defer writer.Flush()
	next, events, watches := fromRev, 0, 0
	var bookmark int64 // the highest revision a progress notification vouched for
	var requested, periodic, progressRequests int
	done := func() bool { until := readUntil(untilRevFile); return until > 0 && next > until }
	rangeEnd := []byte(clientv3.GetPrefixRangeEnd(prefix))
	for !done() {
		watches++
		ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(),
			rpctypes.MetadataRequireLeaderKey, rpctypes.MetadataHasLeader))
		stream, err := pb.NewWatchClient(client.ActiveConnection()).Watch(ctx)
		if err == nil {
			err = stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{
				CreateRequest: &pb.WatchCreateRequest{Key: []byte(prefix), RangeEnd: rangeEnd, StartRevision: next,
					PrevKv: true, ProgressNotify: progressEvery > 0}}})
		}
		if err != nil {
			cancel()
			time.Sleep(100 * time.Millisecond) // not a busy loop while no member can serve a watch
			continue
		}
		responses := receiveWatchResponses(ctx, stream)
		poll := time.NewTicker(200 * time.Millisecond)
		var progressTick <-chan time.Time
		var progressTicker *time.Ticker
		if progressEvery > 0 {
			progressTicker = time.NewTicker(progressEvery)
			progressTick = progressTicker.C
		}
		var watchID int64 = -2 // none yet
		var lastProgress int64
	stream:
		for {
			select {
			case <-poll.C:
				if done() {
					break stream
				}
			case <-progressTick:
				// (this goroutine is the stream's only sender once the create went out)
				if watchID >= 0 && stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{
					ProgressRequest: &pb.WatchProgressRequest{}}}) == nil {
					progressRequests++
				}
			case response, open := <-responses:
				if !open {
					break stream // a broken stream: watch again from next
				}
				if response.CompactRevision != 0 {
					fatalf("the watch was cancelled as compacted at %d, owing revision %d", response.CompactRevision, next)
				}
				if response.Canceled {
					break stream // a lost leader: watch again from next
				}
				if response.Created {
					watchID = response.WatchId
					continue
				}
				if len(response.Events) == 0 {
					revision := response.Header.GetRevision()
					if revision < lastProgress {
						fatalf("BOOKMARK: progress notification at revision %d after one at %d on the same watch (watch %d)",
							revision, lastProgress, watches)
					}
					lastProgress = revision
					if revision > bookmark {
						bookmark = revision
					}
					if response.WatchId == -1 {
						requested++
					} else {
						periodic++
					}
					continue
				}
				for _, event := range response.Events {
					revision := event.Kv.ModRevision
					if revision < next {
						fatalf("ORDER or DUPLICATE: revision %d (%s) after %d (watch %d)", revision, event.Kv.Key, next-1, watches)
					}
					if revision <= bookmark {
						fatalf("BOOKMARK: revision %d (%s) delivered after a progress notification at %d (watch %d)",
							revision, event.Kv.Key, bookmark, watches)
					}
					value, previous := string(event.Kv.Value), "-"
					if event.Type == mvccpb.DELETE {
						value = "<deleted>"
					}
					if event.PrevKv != nil {
						previous = string(event.PrevKv.Value)
					}
					fmt.Fprintf(writer, "%d %s %s %s\n", revision, event.Kv.Key, value, previous)
					next = revision + 1
					events++
				}
			}
		}
		poll.Stop()
		if progressTicker != nil {
			progressTicker.Stop()
		}
		cancel()
		if !done() {
			time.Sleep(100 * time.Millisecond)
		}
	}
	fmt.Printf("watch-record: %d events from %d to %d in %d watches; %d progress notifications checked "+
		"(%d answering %d requests, %d periodic), highest at revision %d\n", events, fromRev, next-1, watches,
		requested+periodic, requested, progressRequests, periodic, bookmark)
}

func leaseChurn(endpoints []string, prefix string, ttl int64, untilFile string) {
	client := newClient(endpoints)
	defer client.Close()
	stopRequested := func() bool { _, err := os.Stat(untilFile); return err == nil }
	var counts [4]int64 // revoked, abandoned, renewals checked, operations failed
	var countLock sync.Mutex
	count := func(k int) { countLock.Lock(); counts[k]++; countLock.Unlock() }
	call := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 3*time.Second)
	}
	var wait sync.WaitGroup
	for worker := 0; worker < 4; worker++ {
		wait.Add(1)
		go func(worker int) {
			defer wait.Done()
			for n := 0; !stopRequested(); n++ {
				key := fmt.Sprintf("%s/%d/%06d", prefix, worker, n)
				ctx, cancel := call()
				lease, err := client.Grant(ctx, ttl)
				if err == nil {
					_, err = client.Put(ctx, key, "v", clientv3.WithLease(lease.ID))
				}
				cancel()
				if err != nil {
					count(3)
					time.Sleep(100 * time.Millisecond)
					continue
				}
				switch n % 3 {
				case 0: // revoked: the key is gone for a linearizable read right after the answer
					time.Sleep(500 * time.Millisecond)
					ctx, cancel := call()
					if _, err := client.Revoke(ctx, lease.ID); err != nil {
						cancel()
						count(3)
						continue
					}
					response, err := client.Get(ctx, key)
					cancel()
					if err == nil && len(response.Kvs) != 0 {
						fatalf("REVOKE: %s still there after its lease %x was revoked", key, lease.ID)
					}
					count(0)
				case 1: // left to expire
					count(1)
				case 2: // kept alive until the run stops (or a fault makes it expire)
					for !stopRequested() {
						time.Sleep(time.Second)
						ctx, cancel := call()
						renewed, err := client.KeepAliveOnce(ctx, lease.ID)
						answeredAt := time.Now()
						if err != nil || renewed.TTL <= 0 {
							cancel()
							count(3)
							break // expired (a fault outlasted the TTL) or unknown: left to expire
						}
						response, err := client.Get(ctx, key)
						cancel()
						if err == nil && time.Since(answeredAt) < time.Second && len(response.Kvs) == 0 {
							fatalf("RENEWAL: lease %x renewed with TTL %d, but its key %s is gone", lease.ID, renewed.TTL, key)
						}
						if err == nil {
							count(2)
						}
					}
				}
			}
		}(worker)
	}
	wait.Wait()
	fmt.Printf("lease-churn: %d revoked and checked, %d left to expire, %d renewals checked, %d calls failed\n",
		counts[0], counts[1], counts[2], counts[3])
}

func leaseGone(endpoints []string, prefix string, duration time.Duration) {
	deadline := time.Now().Add(duration)
	for _, endpoint := range endpoints {
		client := newClient([]string{endpoint})
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			response, err := client.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithSerializable(), clientv3.WithCountOnly())
			cancel()
			if err == nil && response.Count == 0 {
				break
			}
			if time.Now().After(deadline) {
				left := int64(-1)
				if err == nil {
					left = response.Count
				}
				fatalf("EXPIRY: %d keys of revoked or expired leases still under %s on %s after %v (%v)", left, prefix,
					endpoint, duration, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		client.Close()
	}
	fmt.Printf("lease-gone: no lease key left under %s on any of %d members\n", prefix, len(endpoints))
}

func progressCheck(endpoints []string, prefix string, fromRev int64) {
	client := newClient(endpoints)
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	head, err := client.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		fatalf("reading the revision: %v", err)
	}
	target, keys := head.Header.Revision, head.Count
	stream, err := pb.NewWatchClient(client.ActiveConnection()).Watch(ctx)
	if err == nil {
		err = stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{
			CreateRequest: &pb.WatchCreateRequest{Key: []byte(prefix), RangeEnd: []byte(clientv3.GetPrefixRangeEnd(prefix)),
				StartRevision: fromRev}}})
	}
	if err != nil {
		fatalf("watching %s: %v", prefix, err)
	}
	responses := receiveWatchResponses(ctx, stream)
	ask := time.NewTicker(5 * time.Millisecond)
	defer ask.Stop()
	var bookmark, next int64 = 0, fromRev
	var events, delivered, progress, asked, eventsBeforeFirst int64 = 0, 0, 0, 0, -1
	created := false
	for bookmark < target {
		select {
		case <-ask.C:
			if created && stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{
				ProgressRequest: &pb.WatchProgressRequest{}}}) == nil {
				asked++
			}
		case response, open := <-responses:
			if !open {
				fatalf("the watch stream ended after %d events (%v)", events, ctx.Err())
			}
			if response.Canceled || response.CompactRevision != 0 {
				fatalf("the watch was cancelled: %q (compact revision %d)", response.CancelReason, response.CompactRevision)
			}
			if response.Created {
				created = true
				continue
			}
			if len(response.Events) == 0 {
				revision := response.Header.GetRevision()
				if revision < bookmark {
					fatalf("BOOKMARK: progress notification at revision %d after one at %d", revision, bookmark)
				}
				bookmark = revision
				progress++
				if eventsBeforeFirst < 0 {
					eventsBeforeFirst = events
				}
				continue
			}
			for _, event := range response.Events {
				revision := event.Kv.ModRevision
				if revision <= bookmark {
					fatalf("BOOKMARK: revision %d (%s) delivered after a progress notification at %d (%d events before it)",
						revision, event.Kv.Key, bookmark, events)
				}
				if revision < next {
					fatalf("ORDER or DUPLICATE: revision %d (%s) after %d", revision, event.Kv.Key, next-1)
				}
				next = revision + 1
				events++
				if revision <= target {
					delivered++
				}
			}
		}
	}
	if delivered != keys {
		fatalf("MISSED: a progress notification at %d came after %d events up to revision %d, but %s holds %d keys then",
			bookmark, delivered, target, prefix, keys)
	}
	fmt.Printf("progress-check: %d events up to revision %d, %d progress notifications for %d requests, the first after %d events\n",
		delivered, target, progress, asked, eventsBeforeFirst)
}

// streamKey makes contexts distinct, so clientv3 gives each its own Watch stream.
type streamKey struct{}

func watchMany(endpoints []string, key string, count, streams int, readyFile string, duration time.Duration) {
	client := newClient(endpoints)
	defer client.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	contexts := make([]context.Context, streams)
	for s := range contexts {
		contexts[s] = context.WithValue(ctx, streamKey{}, s)
	}
	created := make(chan int, count)
	results := make(chan string, count)
	for w := 0; w < count; w++ {
		go func(w int) {
			watch := client.Watch(contexts[w%streams], key, clientv3.WithCreatedNotify())
			events := 0
			for response := range watch {
				if response.Created {
					created <- w
					continue
				}
				if err := response.Err(); err != nil {
					results <- fmt.Sprintf("watcher %d: %v", w, err)
					return
				}
				if response.Canceled {
					results <- fmt.Sprintf("watcher %d cancelled (compact revision %d)", w, response.CompactRevision)
					return
				}
				for _, event := range response.Events {
					events++
					if event.Type != mvccpb.PUT || string(event.Kv.Key) != key || events > 1 {
						results <- fmt.Sprintf("watcher %d: event %d is %s %q", w, events, event.Type, event.Kv.Key)
						return
					}
				}
				if events == 1 {
					results <- ""
					return
				}
			}
			results <- fmt.Sprintf("watcher %d: its channel closed after %d events", w, events)
		}(w)
	}
	deadline := time.After(duration)
	for n := 0; n < count; n++ {
		select {
		case <-created:
		case problem := <-results:
			fatalf("before all %d watchers were created: %s", count, problem)
		case <-deadline:
			fatalf("%d of %d watchers created after %v", n, count, duration)
		}
	}
	if err := os.WriteFile(readyFile, []byte(fmt.Sprintf("%d\n", count)), 0o644); err != nil {
		fatalf("%v", err)
	}
	fmt.Printf("watch-many: %d watchers created on %d streams\n", count, streams)
	for n := 0; n < count; n++ {
		select {
		case problem := <-results:
			if problem != "" {
				fatalf("%s", problem)
			}
		case <-deadline:
			fatalf("%d of %d watchers got the put of %s within %v", n, count, key, duration)
		}
	}
	fmt.Printf("watch-many: %d of %d watchers got the put\n", count, count)
}
