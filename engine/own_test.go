package engine

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/engine/ownflows"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/internal/testgen"
)

// A refused SYN and a STUN request rejected by ICMP, from a socket the
// probes registered, give no passive finding and are counted; the same
// exchanges from the same host on other ports (a client) give findings.
func TestOwnProbeFlowsSkipped(t *testing.T) {
	host := testgen.PlanV4.Client
	probeTCP := netip.AddrPortFrom(host, 40001)
	probeUDP := netip.AddrPortFrom(host, 40002)
	zcTCP := netip.AddrPortFrom(testgen.PlanV4.ZC, 8801)
	stun := netip.AddrPortFrom(testgen.PlanV4.STUN, 3478)

	g := testgen.New(5, testgen.DefaultStart)
	refused := func(client netip.AddrPort) {
		c := g.NewTCP(client, zcTCP, testgen.TCPOptions{})
		c.SYN()
		c.Reset(testgen.ServerToClient, testgen.ResetOptions{})
		g.Advance(10 * time.Millisecond)
	}
	rejected := func(client netip.AddrPort) {
		req := g.UDP(client, stun, testgen.UDPOptions{}).Send(testgen.ClientToServer, testgen.ZoomSTUNRequest([16]byte{1}))
		g.Advance(20 * time.Millisecond)
		g.ICMPUnreachable(testgen.PlanV4.Router, req, testgen.UnreachAdminProhibited, 0)
		g.Advance(10 * time.Millisecond)
	}
	refused(probeTCP)
	rejected(probeUDP)
	refused(netip.AddrPortFrom(host, 50001))
	rejected(netip.AddrPortFrom(host, 50002))
	if err := g.Flush(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := testgen.WritePackets(&buf, testgen.FormatPCAP, g.Packets()); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "own.pcap")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	// The registry runs on wall time; the capture is from 2026.
	own := ownflows.New(64, time.Second)
	until := time.Now().Add(time.Hour)
	own.Register(ownflows.Key{Proto: ownflows.ProtoTCP, Local: probeTCP, Remote: zcTCP}, until)
	own.Register(ownflows.Key{Proto: ownflows.ProtoUDP, Local: probeUDP, Remote: stun}, until)

	cfg := config.Default()
	cfg.Capture.Workers = 1
	var mu sync.Mutex
	var found []finding.Finding
	e, err := New(Options{Config: cfg, OwnFlows: own, Sink: finding.SinkFunc(func(f finding.Finding) { mu.Lock(); found = append(found, f); mu.Unlock() })})
	if err != nil {
		t.Fatal(err)
	}
	in := Input{Label: "file", Open: func() (capture.Source, error) { return capture.OpenFiles([]string{path}) }}
	if err := e.Run(context.Background(), []Input{in}); err != nil {
		t.Fatal(err)
	}
	byPort := map[uint16]int{}
	for _, f := range found {
		if f.Flow != nil {
			byPort[f.Flow.ClientPort]++
		}
	}
	if byPort[40001] != 0 || byPort[40002] != 0 {
		t.Errorf("the probe's sockets gave passive findings: %v", found)
	}
	if byPort[50001] == 0 || byPort[50002] == 0 {
		t.Errorf("the client's refused TCP or rejected UDP gave no finding: %v", found)
	}
	if n := e.ownPackets.Load(); n != 4 {
		t.Errorf("own packets = %d, want 4 (SYN, RST, request, ICMP error)", n)
	}
}
