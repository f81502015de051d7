package tls

import (
	"math/rand/v2"
	"testing"

	"github.com/zoomprobe/zoomprobe/internal/testgen"
)

type countHandler struct{ msgs int }

func (h *countHandler) Handshake(uint8, []byte) { h.msgs++ }
func (h *countHandler) Alert(uint8, uint8)      {}
func (h *countHandler) ChangeCipherSpec()       {}

// BenchmarkSegments is the per-packet reassembly cost: a TLS 1.2 server
// flight (FortiGate chain, about 2.5 KB) cut several ways, through one
// Decoder reused as the analyzer reuses its per-flow state. ns/segment and
// allocs/op (per flight) are the figures to watch.
func BenchmarkSegments(b *testing.B) {
	tr, err := testgen.RecordTLS(testgen.CutSpecs()[0])
	if err != nil {
		b.Fatal(err)
	}
	cuts := map[string]testgen.TLSCut{}
	for _, c := range testgen.TLSCuts() {
		cuts[c.Name] = c
	}
	for _, bc := range []struct {
		name    string
		cut     string
		mss     int
		shuffle bool
	}{
		{"as-recorded/mss-1460", "as-recorded", 1460, false},
		{"fragment-1/mss-7", "fragment-1", 7, false},
		{"as-recorded/mss-1/shuffled", "as-recorded", 1, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			flights, err := testgen.CutFlights(tr, cuts[bc.cut])
			if err != nil {
				b.Fatal(err)
			}
			var server []byte
			for _, f := range flights {
				if f.Dir == testgen.ServerToClient {
					server = append(server, f.Data...)
				}
			}
			segs := segments(77, server, bc.mss)
			if bc.shuffle {
				rand.New(rand.NewPCG(1, 2)).Shuffle(len(segs), func(i, j int) { segs[i], segs[j] = segs[j], segs[i] })
			}
			var d Decoder
			var h countHandler
			b.ReportAllocs()
			for b.Loop() {
				d.Reset(64 * 1024)
				d.Stream.SYN(77)
				for _, s := range segs {
					d.Segment(s.seq, s.data, &h)
				}
			}
			if h.msgs == 0 {
				b.Fatal("no messages")
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(segs)), "ns/segment")
		})
	}
}
