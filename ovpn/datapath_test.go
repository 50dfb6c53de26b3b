package ovpn

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestDataPathConcurrentWithRenegotiation encrypts and decrypts on goroutines of
// their own while the sessions renegotiate on the test goroutine, as the reactor does:
// no packet may fail to decrypt, and every one must arrive in order.
func TestDataPathConcurrentWithRenegotiation(t *testing.T) {
	n := newPair(t, pairOpts{wrap: wrapCrypt, clientReneg: 5 * time.Second})
	n.connect(10 * time.Second)
	cdp, sdp := n.c.DataPath(), n.s.DataPath()

	var clock atomic.Int64
	clock.Store(n.now.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }

	pkts := make(chan []byte, 64)
	var wg sync.WaitGroup
	var sent, got, bad atomic.Int64
	stop := make(chan struct{})
	wg.Add(2)
	go func() { // tunnel reader of the client
		defer wg.Done()
		defer close(pkts)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			out, err := cdp.Encrypt(now(), make([]byte, 0, 2048), ipPacket(i))
			if err != nil {
				continue
			}
			sent.Add(1)
			pkts <- out
		}
	}()
	go func() { // link reader of the server
		defer wg.Done()
		for p := range pkts {
			plain, kind, err := sdp.Decrypt(now(), make([]byte, 0, len(p)), p)
			if err != nil || kind != DataIP || len(plain) == 0 {
				bad.Add(1)
				continue
			}
			got.Add(1)
		}
	}()
	for i := 0; i < 40; i++ {
		n.advance(n.now.Add(time.Second))
		clock.Store(n.now.UnixNano())
		// Server traffic on the session path too, so both directions see new keys.
		n.s.SendIP(n.now, ipPacket(i))
		time.Sleep(2 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if n.c.Stats().Renegotiations < 5 {
		t.Errorf("only %d renegotiations", n.c.Stats().Renegotiations)
	}
	if bad.Load() != 0 || got.Load() != sent.Load() || sent.Load() == 0 {
		t.Fatalf("sent %d, decrypted %d, failed %d (server stats %+v)", sent.Load(), got.Load(), bad.Load(), n.s.Stats())
	}
}
