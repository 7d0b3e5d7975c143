// tests/tls/go-client: etcd's Go client (clientv3 3.4, built in GOPATH mode from Debian's sources) over TLS:
// with the trusted client certificate it puts, gets, runs a txn and watches; without a certificate, with one
// from another CA and trusting another CA it must fail. Prints one line per step, compared whole by
// 03-go-client.sh. Usage: go-client ENDPOINT PKI_DIR
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/pkg/transport"
)

func connect(endpoint string, info transport.TLSInfo) (*clientv3.Client, error) {
	var config *tls.Config
	var err error
	config, err = info.ClientConfig()
	if err != nil {
		return nil, err
	}
	return clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 2 * time.Second, TLS: config})
}

func trusted(endpoint, pki string) {
	client, err := connect(endpoint, transport.TLSInfo{
		CertFile: pki + "/client.pem", KeyFile: pki + "/client-key.pem", TrustedCAFile: pki + "/ca.pem"})
	if err != nil {
		fmt.Println("trusted client: connect:", err)
		return
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	watch := client.Watch(ctx, "go-watched")
	if _, err := client.Put(ctx, "go-key", "go-value"); err != nil {
		fmt.Println("put:", err)
		return
	}
	get, err := client.Get(ctx, "go-key")
	if err != nil {
		fmt.Println("get:", err)
		return
	}
	for _, kv := range get.Kvs {
		fmt.Printf("get: %s=%s (version %d)\n", kv.Key, kv.Value, kv.Version)
	}
	txn, err := client.Txn(ctx).
		If(clientv3.Compare(clientv3.Value("go-key"), "=", "go-value")).
		Then(clientv3.OpPut("go-watched", "changed by a txn")).
		Else(clientv3.OpPut("go-watched", "wrong branch")).
		Commit()
	if err != nil {
		fmt.Println("txn:", err)
		return
	}
	fmt.Println("txn succeeded:", txn.Succeeded)
	select {
	case response := <-watch:
		for _, event := range response.Events {
			fmt.Printf("watch: %s %s=%s\n", event.Type, event.Kv.Key, event.Kv.Value)
		}
	case <-ctx.Done():
		fmt.Println("watch: no event")
	}
	members, err := client.MemberList(ctx)
	if err != nil {
		fmt.Println("member list:", err)
		return
	}
	for _, member := range members.Members {
		fmt.Printf("member: %s %v\n", member.Name, member.ClientURLs)
	}
}

func refused(name, endpoint string, info transport.TLSInfo) {
	client, err := connect(endpoint, info)
	if err != nil {
		fmt.Printf("%s: connect: %v\n", name, err)
		return
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = client.Put(ctx, "go-refused", "x")
	fmt.Printf("%s: put: %v\n", name, err)
}

func main() {
	endpoint, pki := os.Args[1], os.Args[2]
	trusted(endpoint, pki)
	refused("no client certificate", endpoint, transport.TLSInfo{TrustedCAFile: pki + "/ca.pem"})
	refused("certificate from another CA", endpoint, transport.TLSInfo{
		CertFile: pki + "/other-client.pem", KeyFile: pki + "/other-client-key.pem", TrustedCAFile: pki + "/ca.pem"})
	refused("expired certificate", endpoint, transport.TLSInfo{
		CertFile: pki + "/expired-client.pem", KeyFile: pki + "/expired-client-key.pem", TrustedCAFile: pki + "/ca.pem"})
	refused("trusting another CA", endpoint, transport.TLSInfo{
		CertFile: pki + "/client.pem", KeyFile: pki + "/client-key.pem", TrustedCAFile: pki + "/other-ca.pem"})
}
