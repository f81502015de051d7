package engine

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/decode"
)

// FuzzPacketPath feeds arbitrary frames through decode, DNS snooping, the
// flow table and every registered analyzer: nothing a packet holds may panic
// the daemon. Seeds are the frames of every committed scenario capture.
func FuzzPacketPath(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "*.pcap"))
	for _, path := range files {
		src, err := capture.OpenFiles([]string{path})
		if err != nil {
			f.Fatal(err)
		}
		for i := 0; i < 64; i++ {
			data, _, _, _, err := src.ReadPacket()
			if err != nil {
				break
			}
			f.Add(append([]byte(nil), data...), uint16(i))
		}
		src.Close()
	}
	if len(files) == 0 {
		f.Add([]byte{0}, uint16(0))
	}
	cfg := config.Default()
	cfg.Capture.Workers = 1
	cfg.Flows.MaxFlows = 64 // exercise eviction
	e, err := New(Options{Config: cfg})
	if err != nil {
		f.Fatal(err)
	}
	w := e.workers[0]
	dec := decode.NewDecoder(decode.Options{Decapsulate: true, VXLANPorts: []uint16{4789}})
	sn := e.newSnooper()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, frame []byte, step uint16) {
		var p decode.Packet
		ts := base.Add(time.Duration(step) * 100 * time.Millisecond)
		if dec.Decode(frame, decode.LinkEthernet, ts, len(frame), &p) != nil {
			return
		}
		sn.observe(&p)
		w.handle(&p)
		// The same packet again as if from the other side, then expire.
		p.Src, p.Dst, p.SrcPort, p.DstPort = p.Dst, p.Src, p.DstPort, p.SrcPort
		w.handle(&p)
		if step%7 == 0 {
			w.flush(ts.Add(time.Hour))
		}
	})
}
