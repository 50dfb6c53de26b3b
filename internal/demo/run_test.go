package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestDemoScenario runs the demo (server and clients on the user-space stack over
// loopback) and checks every client's traffic.
func TestDemoScenario(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out bytes.Buffer
	res, err := Run(ctx, Options{Clients: 3, Duration: 3 * time.Second, BulkMiB: 4, Out: &out, Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	if len(res.Clients) != 3 || !res.OK() {
		t.Fatalf("result %+v\n%s", res, out.String())
	}
	for _, c := range res.Clients {
		if len(c.Addrs) != 2 || c.Requests == 0 || !c.BulkOK || c.Probes == 0 {
			t.Errorf("client %s: %+v", c.Name, c)
		}
	}
	if !strings.Contains(out.String(), "all checks passed") {
		t.Errorf("summary lacks the verdict:\n%s", out.String())
	}
	t.Log("\n" + out.String())
}
