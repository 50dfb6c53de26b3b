package compress

import (
	"testing"

	"github.com/pierrec/lz4/v4"
)

const benchPacket = 1400

func benchPayloads() []struct {
	name string
	data []byte
} {
	return []struct {
		name string
		data []byte
	}{
		{"text", textPayload(testRand(100), benchPacket)},
		{"random", randomPayload(testRand(101), benchPacket)},
	}
}

// BenchmarkCompress measures each algorithm on one 1400-byte packet.
func BenchmarkCompress(b *testing.B) {
	for _, p := range benchPayloads() {
		b.Run("lzo/"+p.name, func(b *testing.B) {
			var e lzoEncoder
			dst := make([]byte, 0, lzoCompressBound(len(p.data)))
			b.SetBytes(int64(len(p.data)))
			b.ReportAllocs()
			for b.Loop() {
				dst = e.compress(dst[:0], p.data)
			}
			b.ReportMetric(float64(len(dst))/float64(len(p.data)), "ratio")
		})
		b.Run("lz4/"+p.name, func(b *testing.B) {
			var c lz4.Compressor
			dst := make([]byte, lz4.CompressBlockBound(len(p.data)))
			var n int
			b.SetBytes(int64(len(p.data)))
			b.ReportAllocs()
			for b.Loop() {
				n, _ = c.CompressBlock(p.data, dst)
			}
			b.ReportMetric(float64(n)/float64(len(p.data)), "ratio")
		})
	}
}

// BenchmarkDecompress measures each algorithm on the compressed form of one
// 1400-byte packet (throughput counts decompressed bytes).
func BenchmarkDecompress(b *testing.B) {
	for _, p := range benchPayloads() {
		b.Run("lzo/"+p.name, func(b *testing.B) {
			var e lzoEncoder
			z := e.compress(nil, p.data)
			dst := make([]byte, 0, len(p.data))
			b.SetBytes(int64(len(p.data)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if dst, err = lzoDecompress(dst[:0], z, MaxDecompressedSize); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("lz4/"+p.name, func(b *testing.B) {
			var c lz4.Compressor
			z := make([]byte, lz4.CompressBlockBound(len(p.data)))
			n, _ := c.CompressBlock(p.data, z)
			z = z[:n]
			dst := make([]byte, 0, MaxDecompressedSize)
			b.SetBytes(int64(len(p.data)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if dst, err = lz4Decompress(dst[:0], z, MaxDecompressedSize); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFraming measures Encode and Decode of whole framings on a
// 1400-byte text packet, as the data path calls them.
func BenchmarkFraming(b *testing.B) {
	text := textPayload(testRand(102), benchPacket)
	for _, s := range []Spec{
		{CompLZO: "no"}, {Compress: "stub"}, {Compress: "stub-v2"},
		{CompLZO: "yes", Allow: "yes"}, {Compress: "lz4-v2", Allow: "yes"},
	} {
		f := mustNew(b, s)
		name := f.Name() + "/allow=" + s.Allow
		if s.Allow == "" {
			name = f.Name()
		}
		w := f.Encode(nil, text)
		b.Run(name+"/encode", func(b *testing.B) {
			dst := make([]byte, 0, 2*benchPacket)
			b.SetBytes(benchPacket)
			b.ReportAllocs()
			for b.Loop() {
				dst = f.Encode(dst[:0], text)
			}
		})
		b.Run(name+"/decode", func(b *testing.B) {
			dst := make([]byte, 0, 2*benchPacket)
			b.SetBytes(benchPacket)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if dst, err = f.Decode(dst[:0], w); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
