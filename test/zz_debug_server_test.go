package test

import (
	"os"
	"sync"
	"testing"
	"time"

	"weft/test/harness"
)

func TestZZDebugLab(t *testing.T) {
	if os.Getenv("DBG") == "" {
		t.Skip()
	}
	bin := harness.WeftBin(t)
	l := setupServerLab(t, bin)
	var wg sync.WaitGroup
	for _, c := range append(l.clients, l.revoked) {
		for _, a := range []string{l.lab.V4, l.lab.V6} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := harness.Ping(c.spoke.NS, a, 100, "0.2")
				t.Logf("underlay %s -> %s: %d/%d %v", c.name, a, r.Received, r.Transmitted, err)
			}()
		}
	}
	time.Sleep(3 * time.Second)
	for _, c := range append(l.clients, l.revoked) {
		c.cli = harness.StartConfClient(t, c.kind, bin, c.spoke.NS, c.name, srvClientConfFor(l, c))
	}
	srvCheckConnect(t, l)
	wg.Wait()
	out, _ := harness.Run(5*time.Second, harness.NSExec(l.lab.NS, "nstat", "-az")...)
	t.Logf("nstat server:\n%s", out)
}
