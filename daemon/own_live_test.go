package daemon

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/engine"
	"github.com/zoomprobe/zoomprobe/engine/ownflows"
	"github.com/zoomprobe/zoomprobe/finding"
	"github.com/zoomprobe/zoomprobe/probes"
)

// The engine captures on the interface the active checks use. A TCP check
// refused by the server and a STUN check answered with ICMP port unreachable
// stay the probes' findings and give no passive finding; a client making the
// same connections from the same host does.
func TestProbeTrafficIsNotClientTraffic(t *testing.T) {
	ns, _ := netns(t)
	cfg, err := config.Parse([]byte("probes:\n  enabled: false\ncapture:\n  workers: 1\nflows:\n  closed_timeout: 1s\n  embryonic_timeout: 1s\n"))
	if err != nil {
		t.Fatal(err)
	}
	own := OwnFlows(cfg)
	reg := prometheus.NewRegistry()
	var mu sync.Mutex
	var passive []finding.Finding
	eng, err := engine.New(engine.Options{Config: cfg, Registerer: reg, OwnFlows: own,
		Sink: finding.SinkFunc(func(f finding.Finding) { mu.Lock(); passive = append(passive, f); mu.Unlock() })})
	if err != nil {
		t.Fatal(err)
	}
	// IPv4 only (tcpdump -ddd ip): a new veth's IPv6 neighbour discovery
	// would make the packet counts below wait for nothing.
	ipv4, err := capture.ParseBPF("4\n40 0 0 12\n21 0 1 2048\n6 0 0 262144\n6 0 0 0\n")
	if err != nil {
		t.Fatal(err)
	}
	opts := LiveOptions(cfg, ipv4)
	in := engine.Input{Label: "v0", Live: true, Open: func() (src capture.Source, err error) {
		err = capture.InNamespace(ns, func() error { src, err = capture.OpenLive("v0", opts); return err })
		return src, err
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx, []engine.Input{in}) }()
	defer func() { cancel(); <-done }()
	waitGathered(t, reg, "zoomprobe_capture_up", 1)

	// The checks, from the client namespace, with the registry.
	env := probes.Env{Own: own}
	var tcpRes, stunRes probes.Result
	inNS(t, ns, func() error {
		pctx, pcancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer pcancel()
		tcpRes = probes.ProbeTCP(pctx, probes.Target{Label: "tcp", Host: zoomAddr, Port: 8801, Address: zoomAddr + ":8801"}, env)
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer scancel()
		stunRes = probes.ProbeSTUN(sctx, probes.Target{Label: "stun", Host: zoomAddr, Port: 3478, Address: zoomAddr + ":3478"}, env)
		return nil
	})
	if tcpRes.Reason != finding.ReasonConnectionRefused || len(tcpRes.Findings) != 1 {
		t.Fatalf("TCP check: %s %s %v; want connection_refused with its finding", tcpRes.Status, tcpRes.Reason, tcpRes.Findings)
	}
	if stunRes.Reason != finding.ReasonICMPPortUnreachable || len(stunRes.Findings) != 1 {
		t.Fatalf("STUN check: %s %s; want icmp_port_unreachable with its finding", stunRes.Status, stunRes.Reason)
	}
	// SYN and RST, the STUN request and the ICMP error.
	waitGathered(t, reg, "zoomprobe_packets_total", 4)
	probePorts := map[string]bool{}
	for _, k := range own.Sockets() {
		if k.Remote.Addr() == netip.MustParseAddr(zoomAddr) {
			probePorts[transportName(k.Proto)+"/"+strconv.Itoa(int(k.Local.Port()))] = true
		}
	}
	if !probePorts["tcp/"+strconv.Itoa(int(tcpLocal(own)))] || len(probePorts) < 2 {
		t.Fatalf("registered sockets %v: want the TCP and the STUN checks'", own.Sockets())
	}

	// The same connections from a client: not registered.
	var clientUDP netip.AddrPort
	inNS(t, ns, func() error {
		c, err := net.DialTimeout("tcp", zoomAddr+":8801", 2*time.Second)
		if err == nil {
			c.Close()
			t.Error("port 8801 accepted a connection")
		}
		u, err := net.Dial("udp", zoomAddr+":3478")
		if err != nil {
			return err
		}
		defer u.Close()
		clientUDP = u.LocalAddr().(*net.UDPAddr).AddrPort()
		u.Write([]byte("zoom?"))
		u.SetReadDeadline(time.Now().Add(time.Second))
		u.Read(make([]byte, 64)) // the ICMP error
		return nil
	})
	waitGathered(t, reg, "zoomprobe_packets_total", 8) // and the client's four
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil

	mu.Lock()
	defer mu.Unlock()
	var tcpSeen, udpSeen bool
	for _, f := range passive {
		if f.Flow == nil {
			continue
		}
		if probePorts[f.Flow.Transport+"/"+strconv.Itoa(int(f.Flow.ClientPort))] {
			t.Errorf("the probe's own connection gave a passive finding: %s/%s %+v", f.Kind, f.Reason, f.Flow)
			continue
		}
		tcpSeen = tcpSeen || f.Flow.Transport == "tcp" && f.Flow.ServerPort == 8801
		udpSeen = udpSeen || f.Flow.Transport == "udp" && f.Flow.ClientPort == clientUDP.Port()
	}
	if !tcpSeen || !udpSeen {
		t.Errorf("the client's refused TCP (%v) or rejected UDP (%v) gave no passive finding: %+v", tcpSeen, udpSeen, passive)
	}
	if n := gathered(t, reg, "zoomprobe_probe_own_packets_total"); n < 4 {
		t.Errorf("zoomprobe_probe_own_packets_total = %v, want ≥ 4", n)
	}
}

func transportName(proto uint8) string {
	if proto == ownflows.ProtoUDP {
		return "udp"
	}
	return "tcp"
}

// tcpLocal is the local port of the registered TCP socket to zoomAddr:8801.
func tcpLocal(own *ownflows.Registry) uint16 {
	for _, k := range own.Sockets() {
		if k.Proto == ownflows.ProtoTCP && k.Remote.Port() == 8801 {
			return k.Local.Port()
		}
	}
	return 0
}

func inNS(t *testing.T, ns string, fn func() error) {
	t.Helper()
	if err := capture.InNamespace(ns, fn); err != nil {
		t.Fatal(err)
	}
}

func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

func waitGathered(t *testing.T, reg *prometheus.Registry, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for gathered(t, reg, name) < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want ≥ %v", name, gathered(t, reg, name), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
