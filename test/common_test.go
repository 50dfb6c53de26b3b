package test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"weft/test/harness"
)

// Bulk transfer size for each interop case.
const bulkBytes = 8 << 20

// checkTraffic pings both server tunnel addresses (IPv4 and IPv6) from the client
// namespace and runs a checksummed bulk TCP transfer over each family.
func checkTraffic(t *testing.T, pair *harness.Pair, transferV6 bool) trafficReport {
	t.Helper()
	var rep trafficReport
	// Wait until both families pass traffic (a few seconds at most after "up").
	for _, a := range []string{harness.TunServerV4, harness.TunServerV6} {
		if err := harness.WaitPing(pair.Client, a, 10*time.Second); err != nil {
			t.Fatalf("tunnel: %v", err)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, a := range []string{harness.TunServerV4, harness.TunServerV6} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One retry: the lab shares 2 cores with other work, and a
			// multi-second scheduling stall is not a tunnel bug.
			r, err := harness.Ping(pair.Client, a, 3, "0.2")
			if err != nil || r.Received != r.Transmitted {
				t.Logf("ping %s: %d/%d received (%v); retrying once\n%s", a, r.Received, r.Transmitted, err, r.Output)
				time.Sleep(time.Second)
				r, err = harness.Ping(pair.Client, a, 3, "0.2")
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil || r.Received != r.Transmitted {
				t.Errorf("ping %s: %d/%d received (%v)\n%s", a, r.Received, r.Transmitted, err, r.Output)
				return
			}
			if strings.Contains(a, ":") {
				rep.rttV6 = r.AvgRTT
			} else {
				rep.rttV4 = r.AvgRTT
			}
		}()
	}
	wg.Wait()
	dsts := []string{harness.TunServerV4 + ":5001"}
	if transferV6 {
		dsts = append(dsts, "["+harness.TunServerV6+"]:5002")
	}
	for _, d := range dsts {
		r, err := harness.BulkTransfer(pair, d, bulkBytes, 60*time.Second)
		if err != nil {
			t.Errorf("bulk transfer: %v", err)
			continue
		}
		t.Logf("bulk %s: %d bytes, sha256 %s…, %.0f Mbit/s", d, r.Bytes, r.SHA256[:12], r.Throughput)
		rep.transfers = append(rep.transfers, r)
	}
	return rep
}

type trafficReport struct {
	rttV4, rttV6 time.Duration
	transfers    []harness.TransferResult
}

func (r trafficReport) throughput() string {
	var parts []string
	for _, x := range r.transfers {
		parts = append(parts, fmt.Sprintf("%.0f", x.Throughput))
	}
	return strings.Join(parts, "/") + " Mbit/s"
}
