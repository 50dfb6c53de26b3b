package tun

import (
	"bytes"
	"errors"
	"testing"
	"time"

	wgtun "golang.zx2c4.com/wireguard/tun"
)

// A wireguard tun.Device satisfies Device, so either can back weft.
var _ Device = wgtun.Device(nil)
var _ Device = (*ChannelDevice)(nil)

func TestChannelDevice(t *testing.T) {
	d := NewChannelDevice("chan0", 1400, 4)
	if n, _ := d.Name(); n != "chan0" {
		t.Fatalf("Name = %q", n)
	}
	if m, _ := d.MTU(); m != 1400 || d.BatchSize() != 4 {
		t.Fatalf("MTU %d BatchSize %d", m, d.BatchSize())
	}
	for i := range 6 {
		d.Inbound <- []byte{byte(i), 1, 2}
	}
	const off = Headroom
	bufs := make([][]byte, 8)
	for i := range bufs {
		bufs[i] = make([]byte, off+100)
	}
	sizes := make([]int, 8)
	n, err := d.Read(bufs, sizes, off)
	if err != nil || n != 4 {
		t.Fatalf("Read = %d, %v; want a batch of 4", n, err)
	}
	for i := range n {
		if !bytes.Equal(bufs[i][off:off+sizes[i]], []byte{byte(i), 1, 2}) {
			t.Fatalf("packet %d = %x", i, bufs[i][off:off+sizes[i]])
		}
	}
	if n, _ := d.Read(bufs, sizes, off); n != 2 {
		t.Fatalf("second Read = %d, want the remaining 2", n)
	}

	out := [][]byte{append(make([]byte, off), 9, 9), append(make([]byte, off), 8)}
	if n, err := d.Write(out, off); n != 2 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if p := <-d.Outbound; !bytes.Equal(p, []byte{9, 9}) {
		t.Fatalf("Outbound = %x", p)
	}
	if p := <-d.Outbound; !bytes.Equal(p, []byte{8}) {
		t.Fatalf("Outbound = %x", p)
	}

	d.Inbound <- make([]byte, 200)
	if _, err := d.Read(bufs, sizes, off); err == nil {
		t.Fatal("oversized packet read without error")
	}

	done := make(chan error)
	go func() { _, err := d.Read(bufs, sizes, off); done <- err }()
	time.Sleep(10 * time.Millisecond)
	d.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close = %v", err)
	}
	if _, err := d.Write(out, off); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close = %v", err)
	}
}
