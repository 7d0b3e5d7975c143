package goclient

// The watch stream's own requests, through the raw etcdserverpb stubs (clientv3 never chooses a watch ID
// and only cancels what it created): WatchCreateRequest.watch_id (etcd 3.4's mvcc watchStream.Watch: a
// chosen ID is used as given, one in use on the stream is refused, automatic IDs skip the chosen ones),
// WatchCancelRequest (an answer only for a watch of the stream), and a create with an empty range.

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"go.etcd.io/etcd/clientv3"
	pb "go.etcd.io/etcd/etcdserver/etcdserverpb"
)

// rawWatchStream is one Watch call; recv waits a bounded time for the next response.
type rawWatchStream struct {
	t         *testing.T
	stream    pb.Watch_WatchClient
	responses chan *pb.WatchResponse
	errs      chan error
}

func openRawWatch(t *testing.T, client *clientv3.Client) *rawWatchStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := pb.NewWatchClient(client.ActiveConnection()).Watch(ctx)
	if err != nil {
		t.Fatalf("watch stream: %v", err)
	}
	raw := &rawWatchStream{t: t, stream: stream, responses: make(chan *pb.WatchResponse, 64), errs: make(chan error, 1)}
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				raw.errs <- err
				return
			}
			raw.responses <- resp
		}
	}()
	return raw
}

func (raw *rawWatchStream) send(request *pb.WatchRequest) {
	raw.t.Helper()
	if err := raw.stream.Send(request); err != nil {
		raw.t.Fatalf("watch send %v: %v", request, err)
	}
}

func (raw *rawWatchStream) create(create *pb.WatchCreateRequest) *pb.WatchResponse {
	raw.t.Helper()
	raw.send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: create}})
	return raw.recv()
}

func (raw *rawWatchStream) cancel(id int64) {
	raw.t.Helper()
	raw.send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CancelRequest{CancelRequest: &pb.WatchCancelRequest{WatchId: id}}})
}

func (raw *rawWatchStream) recv() *pb.WatchResponse {
	raw.t.Helper()
	select {
	case resp := <-raw.responses:
		return resp
	case err := <-raw.errs:
		raw.t.Fatalf("watch stream ended: %v", err)
	case <-time.After(10 * time.Second):
		raw.t.Fatalf("no watch response within 10 s")
	}
	return nil
}

// expectProgress sends a progress request and expects its answer as the next response: proof that
// nothing else was sent before it.
func (raw *rawWatchStream) expectProgress(what string) {
	raw.t.Helper()
	raw.send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_ProgressRequest{ProgressRequest: &pb.WatchProgressRequest{}}})
	if resp := raw.recv(); resp.WatchId != -1 || resp.Created || resp.Canceled || len(resp.Events) != 0 {
		raw.t.Errorf("%s: the next response is %v, want only the progress notification", what, resp)
	}
}

// summary is what a test compares of a create's or cancel's answer.
func summary(resp *pb.WatchResponse) string {
	return fmt.Sprintf("id %d created %v canceled %v reason %q events %d", resp.WatchId, resp.Created, resp.Canceled,
		resp.CancelReason, len(resp.Events))
}

func TestWatchChosenID(t *testing.T) {
	client := newClient(t, endpoints()[0])
	p := keyPrefix(t, client)
	raw := openRawWatch(t, client)
	key := func(k string) []byte { return []byte(p + k) }
	expect := func(what string, resp *pb.WatchResponse, want string) {
		t.Helper()
		if got := summary(resp); got != want {
			t.Errorf("%s: %s, want %s", what, got, want)
		}
	}
	const duplicate = `id -1 created true canceled true reason "mvcc: duplicate watch ID provided on the WatchStream" events 0`

	expect("a create with watch_id 7", raw.create(&pb.WatchCreateRequest{Key: key("a"), WatchId: 7}),
		`id 7 created true canceled false reason "" events 0`)
	expect("a second create with watch_id 7", raw.create(&pb.WatchCreateRequest{Key: key("b"), WatchId: 7}), duplicate)
	// Automatic IDs count from 0 and step over the chosen ones.
	expect("an automatic ID", raw.create(&pb.WatchCreateRequest{Key: key("b")}), `id 0 created true canceled false reason "" events 0`)
	expect("watch_id 2", raw.create(&pb.WatchCreateRequest{Key: key("b"), WatchId: 2}), `id 2 created true canceled false reason "" events 0`)
	expect("the next automatic ID", raw.create(&pb.WatchCreateRequest{Key: key("b")}), `id 1 created true canceled false reason "" events 0`)
	expect("the one after (2 is taken)", raw.create(&pb.WatchCreateRequest{Key: key("c")}), `id 3 created true canceled false reason "" events 0`)
	expect("watch_id 3, now automatic's", raw.create(&pb.WatchCreateRequest{Key: key("c"), WatchId: 3}), duplicate)
	expect("watch_id 0 again is automatic", raw.create(&pb.WatchCreateRequest{Key: key("c"), WatchId: 0}),
		`id 4 created true canceled false reason "" events 0`)

	// Events carry the watch's ID: a's for 7, b's for 0, 2 and 1, c's for 3 and 4.
	ids := func(n int) []string {
		var got []string
		for len(got) < n {
			resp := raw.recv()
			for _, e := range resp.Events {
				got = append(got, fmt.Sprintf("%d:%s", resp.WatchId, e.Kv.Key[len(p):]))
			}
		}
		sort.Strings(got)
		return got
	}
	mustPut(t, client, p+"a", "1")
	mustPut(t, client, p+"b", "1")
	mustPut(t, client, p+"c", "1")
	if got, want := ids(6), []string{"0:b", "1:b", "2:b", "3:c", "4:c", "7:a"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events by watch: %v, want %v", got, want)
	}

	// A cancel of a watch of the stream is answered with its ID, and frees the ID.
	raw.cancel(7)
	expect("cancel 7", raw.recv(), `id 7 created false canceled true reason "" events 0`)
	mustPut(t, client, p+"a", "2")
	raw.expectProgress("after a put of a, whose only watch was cancelled")
	expect("watch_id 7 once more", raw.create(&pb.WatchCreateRequest{Key: key("a"), WatchId: 7}),
		`id 7 created true canceled false reason "" events 0`)
	mustPut(t, client, p+"a", "3")
	if got := ids(1); fmt.Sprint(got) != "[7:a]" {
		t.Errorf("the event of the new watch 7: %v", got)
	}

	// A cancel of an ID the stream does not have (never used, already cancelled, -1) is not answered and
	// cancels nothing.
	raw.cancel(99)
	raw.cancel(-1)
	raw.cancel(0)
	expect("cancel 0", raw.recv(), `id 0 created false canceled true reason "" events 0`)
	raw.cancel(0)
	raw.expectProgress("after cancels of 99, -1 and a second one of 0")
	mustPut(t, client, p+"a", "4")
	mustPut(t, client, p+"b", "2")
	if got, want := ids(3), []string{"1:b", "2:b", "7:a"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events after the cancels: %v, want %v", got, want)
	}
}

// A range with key >= range_end holds nothing: etcd refuses the watch (created and canceled, ID -1)
// and the stream goes on. range_end "\x00" is every key from key on, not an empty range.
func TestWatchEmptyRange(t *testing.T) {
	client := newClient(t, endpoints()[0])
	p := keyPrefix(t, client)
	raw := openRawWatch(t, client)
	const refused = `id -1 created true canceled true reason "mvcc: watcher range is empty" events 0`
	for _, c := range []struct{ name, key, end string }{
		{"range_end below key", p + "b", p + "a"},
		{"range_end equal to key", p + "b", p + "b"},
	} {
		if got := summary(raw.create(&pb.WatchCreateRequest{Key: []byte(c.key), RangeEnd: []byte(c.end)})); got != refused {
			t.Errorf("%s: %s, want %s", c.name, got, refused)
		}
	}
	if got, want := summary(raw.create(&pb.WatchCreateRequest{Key: []byte(p + "b"), RangeEnd: []byte{0}})),
		`id 0 created true canceled false reason "" events 0`; got != want {
		t.Errorf("range_end \\x00: %s, want %s", got, want)
	}
	rev := mustPut(t, client, p+"c", "1").Header.Revision
	resp := raw.recv()
	if resp.WatchId != 0 || len(resp.Events) != 1 || string(resp.Events[0].Kv.Key) != p+"c" || resp.Events[0].Kv.ModRevision != rev {
		t.Errorf("the from-key watch after a put of c: %v", resp)
	}
}
