package udp

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchPayload is the datagram size of the benchmarks: a full-size OpenVPN
// data packet on a 1500-byte path.
const benchPayload = 1400

// benchBatch is the WriteBatch/ReadBatch size of the benchmarks.
const benchBatch = 64

func benchOut(dst *Conn) []Message {
	out := make([]Message, benchBatch)
	for i := range out {
		out[i] = Message{Buf: make([]byte, benchPayload), N: benchPayload, Addr: dst.LocalAddr()}
	}
	return out
}

// BenchmarkLoopback streams 1400-byte datagrams from one socket to another
// over loopback, a sender goroutine against a receiving one, and reports the
// received packets per second (one op is one datagram received) and the
// share the receiver lost. GRO only pays off together with GSO on loopback,
// where the kernel hands the sender's super-datagrams to a GRO socket
// without splitting them; on a NIC it also coalesces plain datagrams.
func BenchmarkLoopback(b *testing.B) {
	for _, mode := range offloadModes {
		b.Run(mode.name, func(b *testing.B) {
			opts := Options{GSO: mode.gso, GRO: mode.gro, RecvBuffer: 16 << 20, SendBuffer: 16 << 20}
			src := listenOpts(b, "udp4", "127.0.0.1:0", opts)
			dst := listenOpts(b, "udp4", "127.0.0.1:0", opts)
			out := benchOut(dst)
			in := make([]Message, benchBatch)
			for i := range in {
				in[i].Buf = make([]byte, 65536)
			}

			var stop atomic.Bool
			var sent atomic.Int64
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			wg.Go(func() {
				for !stop.Load() {
					n, err := src.WriteBatch(out)
					if err != nil {
						b.Error(err)
						return
					}
					sent.Add(int64(n))
				}
			})
			dst.uc.SetReadDeadline(time.Now().Add(time.Minute))
			got := 0
			for got < b.N {
				n, err := dst.ReadBatch(in)
				if err != nil {
					b.Fatal(err)
				}
				got += n
			}
			b.StopTimer()
			stop.Store(true)
			wg.Wait()
			b.ReportMetric(float64(got)/b.Elapsed().Seconds(), "pkts/s")
			if s := sent.Load(); s > 0 {
				b.ReportMetric(100*max(0, 1-float64(got)/float64(s)), "loss%")
			}
		})
	}
}

// BenchmarkWriteBatch measures the sender alone (one op is one datagram):
// the receiving socket is never read, so the kernel drops what overflows it.
func BenchmarkWriteBatch(b *testing.B) {
	for _, mode := range []struct {
		name string
		gso  Offload
	}{{"gso=off", OffloadOff}, {"gso=on", OffloadAuto}} {
		b.Run(mode.name, func(b *testing.B) {
			opts := Options{GSO: mode.gso, GRO: OffloadOff, RecvBuffer: 1 << 20, SendBuffer: 16 << 20}
			src := listenOpts(b, "udp4", "127.0.0.1:0", opts)
			dst := listenOpts(b, "udp4", "127.0.0.1:0", opts)
			out := benchOut(dst)
			b.ReportAllocs()
			b.ResetTimer()
			for sent := 0; sent < b.N; {
				n, err := src.WriteBatch(out[:min(len(out), b.N-sent)])
				if err != nil {
					b.Fatal(err)
				}
				sent += n
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
		})
	}
}
