package harness

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Payload selects what a namespace stream transfer sends.
type Payload int

// Payload kinds.
const (
	// PayloadRandom is incompressible pseudo-random bytes (ChaCha8).
	PayloadRandom Payload = iota
	// PayloadText is highly compressible repeated text: numbered lines of the
	// same sentence (~80 bytes each, only the 8-digit line number changes).
	PayloadText
)

func (p Payload) String() string {
	if p == PayloadText {
		return "text"
	}
	return "random"
}

// payloadGen fills buffers with a payload kind, deterministically from a seed.
type payloadGen struct {
	kind Payload
	rng  *rand.ChaCha8
	line int
	buf  []byte // the current text line
	pos  int    // bytes of buf already used
}

func newPayloadGen(kind Payload, seed uint64) *payloadGen {
	var key [32]byte
	for i := range key {
		key[i] = byte(seed >> (8 * (i % 8)))
	}
	return &payloadGen{kind: kind, rng: rand.NewChaCha8(key), line: int(seed % 1000)}
}

const textLine = " weft compression interop: the quick brown fox jumps over the lazy dog.\n"

func (g *payloadGen) fill(b []byte) {
	if g.kind == PayloadRandom {
		_, _ = g.rng.Read(b)
		return
	}
	for len(b) > 0 {
		if g.pos == len(g.buf) {
			g.line++
			g.buf = append(strconv.AppendInt(g.buf[:0], int64(100000000+g.line%100000000), 10), textLine...)
			g.pos = 1 // drop the leading 1: an 8-digit line number
		}
		n := copy(b, g.buf[g.pos:])
		g.pos += n
		b = b[n:]
	}
}

// StreamResult is the outcome of NSStream.
type StreamResult struct {
	Bytes   int64
	SHA256  string
	Elapsed time.Duration
}

// Mbps is the throughput in Mbit/s.
func (r StreamResult) Mbps() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Bytes) * 8 / r.Elapsed.Seconds() / 1e6
}

// NSStream sends size bytes of the given payload over one TCP connection from
// namespace srcNS to a listener on dst inside namespace sinkNS, both opened by
// this process (sockets created inside the namespaces), and checks that the
// receiver got exactly what was sent (length and SHA-256). Everything is
// bounded by timeout.
func NSStream(srcNS, sinkNS string, dst netip.AddrPort, size int64, kind Payload, timeout time.Duration) (StreamResult, error) {
	deadline := time.Now().Add(timeout)
	var ln net.Listener
	if err := InNetns(sinkNS, func() error {
		var err error
		ln, err = net.Listen("tcp", dst.String())
		return err
	}); err != nil {
		return StreamResult{}, fmt.Errorf("listen %s in %s: %w", dst, sinkNS, err)
	}
	defer ln.Close()
	_ = ln.(*net.TCPListener).SetDeadline(deadline)
	type sinkRes struct {
		n   int64
		sum string
		err error
	}
	sinkCh := make(chan sinkRes, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			sinkCh <- sinkRes{err: fmt.Errorf("accept: %w", err)}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(deadline)
		h := sha256.New()
		n, err := io.Copy(h, c)
		sinkCh <- sinkRes{n: n, sum: hex.EncodeToString(h.Sum(nil)), err: err}
	}()

	var conn net.Conn
	var derr error
	for {
		_ = InNetns(srcNS, func() error {
			conn, derr = net.DialTimeout("tcp", dst.String(), 3*time.Second)
			return nil
		})
		if derr == nil || time.Now().After(deadline.Add(-2*time.Second)) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if derr != nil {
		return StreamResult{}, fmt.Errorf("dial %s from %s: %w", dst, srcNS, derr)
	}
	defer conn.Close()
	_ = conn.SetDeadline(deadline)
	gen := newPayloadGen(kind, rand.Uint64())
	h := sha256.New()
	buf := make([]byte, 32*1024)
	start := time.Now()
	var sent int64
	for sent < size {
		chunk := buf
		if rem := size - sent; rem < int64(len(chunk)) {
			chunk = chunk[:rem]
		}
		gen.fill(chunk)
		h.Write(chunk)
		w, err := conn.Write(chunk)
		sent += int64(w)
		if err != nil {
			return StreamResult{Bytes: sent}, fmt.Errorf("write to %s after %d of %d bytes: %w", dst, sent, size, err)
		}
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		return StreamResult{Bytes: sent}, err
	}
	var sr sinkRes
	select {
	case sr = <-sinkCh:
	case <-time.After(time.Until(deadline) + time.Second):
		return StreamResult{Bytes: sent}, errors.New("receiver did not finish before the deadline")
	}
	res := StreamResult{Bytes: sent, SHA256: hex.EncodeToString(h.Sum(nil)), Elapsed: time.Since(start)}
	if sr.err != nil {
		return res, fmt.Errorf("receiver on %s: %d bytes, then %w", dst, sr.n, sr.err)
	}
	if sr.n != sent || sr.sum != res.SHA256 {
		return res, fmt.Errorf("stream to %s corrupted: sent %d bytes sha256 %s, received %d bytes sha256 %s",
			dst, sent, res.SHA256, sr.n, sr.sum)
	}
	return res, nil
}
