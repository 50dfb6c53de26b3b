// Package testecho serves TCP and UDP echo for tests: each server runs until the
// test ends (its listener is closed at cleanup and the cleanup waits for it).
package testecho

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// TCP echoes every connection accepted on l (each for at most 30 s).
func TCP(t testing.TB, l net.Listener) {
	t.Helper()
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { l.Close() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				_, _ = io.Copy(c, c)
			})
		}
	})
}

// UDP answers each datagram read from pc (up to size bytes) with reply(from,
// payload), or with the payload itself when reply is nil.
func UDP(t testing.TB, pc net.PacketConn, size int, reply func(from net.Addr, p []byte) []byte) {
	t.Helper()
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { pc.Close() })
	wg.Go(func() {
		buf := make([]byte, size)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			out := buf[:n]
			if reply != nil {
				out = reply(from, out)
			}
			_, _ = pc.WriteTo(out, from)
		}
	})
}
