package tcp

import (
	"bytes"
	"errors"
	"testing"
)

func TestAppendFrame(t *testing.T) {
	got := AppendFrame([]byte{0xaa}, []byte{1, 2, 3})
	if want := []byte{0xaa, 0, 3, 1, 2, 3}; !bytes.Equal(got, want) {
		t.Fatalf("AppendFrame = %x, want %x", got, want)
	}
	if got := AppendFrame(nil, nil); len(got) != 0 {
		t.Fatalf("empty packet framed: %x", got)
	}
	if got := AppendFrame(nil, make([]byte, MaxPacket+1)); len(got) != 0 {
		t.Fatal("oversized packet framed")
	}
	if got := AppendFrame(nil, make([]byte, MaxPacket)); len(got) != MaxPacket+2 || got[0] != 0xff || got[1] != 0xff {
		t.Fatal("MaxPacket not framed as ffff")
	}
}

func TestDeframer(t *testing.T) {
	var stream []byte
	pkts := [][]byte{{1}, bytes.Repeat([]byte{2}, 300), {3, 3}}
	for _, p := range pkts {
		stream = AppendFrame(stream, p)
	}
	var d Deframer
	// Byte by byte: nothing is returned before a frame is complete.
	var got [][]byte
	for _, b := range stream {
		d.Feed([]byte{b})
		for {
			p, ok, err := d.Next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			got = append(got, bytes.Clone(p))
		}
	}
	if len(got) != len(pkts) {
		t.Fatalf("got %d packets, want %d", len(got), len(pkts))
	}
	for i := range pkts {
		if !bytes.Equal(got[i], pkts[i]) {
			t.Fatalf("packet %d = %x, want %x", i, got[i], pkts[i])
		}
	}
	if d.Buffered() != 0 {
		t.Fatalf("Buffered = %d", d.Buffered())
	}
}

func TestDeframerRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		max    int
		stream []byte
	}{
		{"zero length", 0, []byte{0, 0, 1}},
		{"above max", 100, append([]byte{0, 101}, make([]byte, 101)...)},
		{"after good packet", 0, []byte{0, 1, 9, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDeframer(tc.max)
			d.Feed(tc.stream)
			var err error
			for range 3 {
				var ok bool
				if _, ok, err = d.Next(); err != nil || !ok {
					break
				}
			}
			if !errors.Is(err, ErrFrameLength) {
				t.Fatalf("err = %v, want ErrFrameLength", err)
			}
			if _, _, err2 := d.Next(); !errors.Is(err2, ErrFrameLength) {
				t.Fatal("error is not sticky")
			}
		})
	}
	d := NewDeframer(100)
	d.Feed(append([]byte{0, 100}, make([]byte, 100)...))
	if p, ok, err := d.Next(); err != nil || !ok || len(p) != 100 {
		t.Fatalf("packet at max: %d %v %v", len(p), ok, err)
	}
}

// FuzzDeframer checks that the deframer never panics and that any chunking of
// a stream yields the same packets and the same error as feeding it at once.
func FuzzDeframer(f *testing.F) {
	f.Add([]byte{0, 1, 0xaa, 0, 2, 1, 2}, []byte{1, 2, 3}, uint16(0))
	f.Add([]byte{0, 0}, []byte{1}, uint16(0))
	f.Add(AppendFrame(AppendFrame(nil, bytes.Repeat([]byte{7}, 200)), []byte{1}), []byte{5, 50, 100}, uint16(150))
	f.Add([]byte{0xff, 0xff, 1, 2}, []byte{0}, uint16(0))
	f.Fuzz(func(t *testing.T, stream, cuts []byte, max uint16) {
		whole := drain(t, stream, []int{len(stream)}, int(max))
		var sizes []int
		for _, c := range cuts {
			sizes = append(sizes, int(c))
		}
		chunked := drain(t, stream, sizes, int(max))
		if whole.err != chunked.err {
			t.Fatalf("error differs: whole %q, chunked %q", whole.err, chunked.err)
		}
		if len(whole.pkts) != len(chunked.pkts) {
			t.Fatalf("whole gave %d packets, chunked %d", len(whole.pkts), len(chunked.pkts))
		}
		for i := range whole.pkts {
			if !bytes.Equal(whole.pkts[i], chunked.pkts[i]) {
				t.Fatalf("packet %d differs", i)
			}
		}
		// Re-framing the packets reproduces the consumed part of the stream.
		var re []byte
		for _, p := range whole.pkts {
			re = AppendFrame(re, p)
		}
		if !bytes.HasPrefix(stream, re) {
			t.Fatal("re-framed packets are not a prefix of the stream")
		}
	})
}

type drained struct {
	pkts [][]byte
	err  string
}

// drain feeds stream in chunks of the given sizes (cycled; 0 means 1) and
// collects packets after every Feed.
func drain(t *testing.T, stream []byte, sizes []int, max int) drained {
	d := NewDeframer(max)
	var out drained
	for i := 0; len(stream) > 0; i++ {
		n := 1
		if len(sizes) > 0 {
			n = max1(sizes[i%len(sizes)])
		}
		n = min(n, len(stream))
		d.Feed(stream[:n])
		stream = stream[n:]
		for {
			p, ok, err := d.Next()
			if err != nil {
				out.err = err.Error()
				return out
			}
			if !ok {
				break
			}
			if len(p) == 0 || len(p) > d.limit() {
				t.Fatalf("packet of %d bytes returned", len(p))
			}
			out.pkts = append(out.pkts, bytes.Clone(p))
		}
	}
	return out
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}
