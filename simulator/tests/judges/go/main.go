// The official Aerospike Go client judges the simulator.
//
// Usage: gojudge HOST:PORT[,HOST:PORT...] USER PASSWORD
//
// Connects (internal authentication), waits until every seed is a tended node, creates the user `from-go` (role
// `read`), queries users and roles, checks that a wrong password is refused, logs in as `from-go`, and prints one
// JSON object: nodes, users (name -> sorted roles), roles (name -> privileges, whitelist, quotas), the result code
// of the refused login and how many nodes `from-go` tends.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"
)

type role struct {
	Privileges [][3]string `json:"privileges"`
	Whitelist  []string    `json:"whitelist"`
	ReadQuota  uint32      `json:"read_quota"`
	WriteQuota uint32      `json:"write_quota"`
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func connect(hosts []*as.Host, user, password string) (*as.Client, error) {
	policy := as.NewClientPolicy()
	policy.User, policy.Password = user, password
	policy.Timeout = 5 * time.Second
	policy.TendInterval = 250 * time.Millisecond
	return as.NewClientWithPolicyAndHost(policy, hosts...)
}

func waitNodes(client *as.Client, n int) int {
	deadline := time.Now().Add(20 * time.Second)
	for len(client.GetNodes()) < n && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	return len(client.GetNodes())
}

func main() {
	if len(os.Args) != 4 {
		fail("usage: gojudge HOST:PORT[,...] USER PASSWORD")
	}
	var hosts []*as.Host
	for _, hp := range strings.Split(os.Args[1], ",") {
		i := strings.LastIndex(hp, ":")
		port, err := strconv.Atoi(hp[i+1:])
		if err != nil {
			fail("bad host %q", hp)
		}
		hosts = append(hosts, as.NewHost(hp[:i], port))
	}
	user, password := os.Args[2], os.Args[3]
	client, err := connect(hosts, user, password)
	if err != nil {
		fail("connecting as %s: %v", user, err)
	}
	defer client.Close()
	nodes := waitNodes(client, len(hosts))

	if err := client.CreateUser(nil, "from-go", "go-pw", []string{"read"}); err != nil {
		fail("creating from-go: %v", err)
	}
	users := map[string][]string{}
	list, err := client.QueryUsers(nil)
	if err != nil {
		fail("query users: %v", err)
	}
	for _, u := range list {
		roles := append([]string{}, u.Roles...)
		sort.Strings(roles)
		users[u.User] = roles
	}
	roles := map[string]role{}
	rlist, err := client.QueryRoles(nil)
	if err != nil {
		fail("query roles: %v", err)
	}
	for _, r := range rlist {
		out := role{Privileges: [][3]string{}, Whitelist: append([]string{}, r.Whitelist...), ReadQuota: r.ReadQuota, WriteQuota: r.WriteQuota}
		for _, p := range r.Privileges {
			out.Privileges = append(out.Privileges, [3]string{string(p.Code), p.Namespace, p.SetName})
		}
		sort.Slice(out.Privileges, func(i, j int) bool { return fmt.Sprint(out.Privileges[i]) < fmt.Sprint(out.Privileges[j]) })
		sort.Strings(out.Whitelist)
		roles[r.Name] = out
	}

	refused, refusedText := -1, ""
	if wrong, err := connect(hosts, user, password+"-wrong"); err == nil {
		wrong.Close()
	} else {
		// The connect error wraps each seed's: the server's code is anywhere in the chain.
		var ae *as.AerospikeError
		if errors.As(err, &ae) {
			refused = int(ae.ResultCode)
			if ae.Matches(types.INVALID_CREDENTIAL) {
				refused = int(types.INVALID_CREDENTIAL)
			}
		}
		refusedText = err.Error()
	}
	readerNodes := 0
	if reader, err := connect(hosts, "from-go", "go-pw"); err == nil {
		readerNodes = waitNodes(reader, len(hosts))
		reader.Close()
	} else {
		fail("connecting as from-go: %v", err)
	}
	out, _ := json.Marshal(map[string]any{
		"nodes": nodes, "users": users, "roles": roles, "wrong_password_code": refused, "wrong_password_error": refusedText, "reader_nodes": readerNodes,
	})
	fmt.Println(string(out))
}
