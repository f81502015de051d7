package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/config"
	"github.com/zoomprobe/zoomprobe/engine"
	"github.com/zoomprobe/zoomprobe/zoom"
)

// netns creates a client and a server namespace joined by a veth pair (v0
// in the client at 192.0.2.1, v1 in the server at a Zoom address), so traffic
// crosses a real interface the daemon captures on.
func netns(t *testing.T) (client, server string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("live capture test needs root (network namespaces, AF_PACKET)")
	}
	b := make([]byte, 3)
	rand.Read(b)
	client, server = "zpd-c-"+hex.EncodeToString(b), "zpd-s-"+hex.EncodeToString(b)
	run := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run("netns", "add", client); err != nil {
		t.Skipf("cannot create a network namespace here: %v", err)
	}
	t.Cleanup(func() { run("netns", "del", client) })
	if err := run("netns", "add", server); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { run("netns", "del", server) })
	for _, args := range [][]string{
		{"-n", client, "link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", server},
		{"-n", client, "addr", "add", "192.0.2.1/24", "dev", "v0"},
		{"-n", server, "addr", "add", zoomAddr + "/32", "dev", "v1"},
		{"-n", client, "link", "set", "v0", "up"},
		{"-n", server, "link", "set", "v1", "up"},
		{"-n", client, "route", "add", zoomAddr + "/32", "dev", "v0"},
		{"-n", server, "route", "add", "192.0.2.0/24", "dev", "v1"},
	} {
		if err := run(args...); err != nil {
			t.Fatal(err)
		}
	}
	return client, server
}

// zoomAddr is inside Zoom's embedded Meetings ranges.
const zoomAddr = "3.7.35.10"

// The daemon captures with AF_PACKET on a real veth inside a namespace and
// /metrics shows the packets and the Zoom flows.
func TestLiveCaptureInNamespace(t *testing.T) {
	if s, ok := zoom.DefaultRanges().Lookup(netipMust(zoomAddr)); !ok || s == zoom.ServiceNone {
		t.Fatalf("%s is not in the embedded ranges; pick another address", zoomAddr)
	}
	ns, serverNS := netns(t)
	inputs := func(cfg *config.Config) ([]engine.Input, error) {
		opts := LiveOptions(cfg, nil)
		return []engine.Input{{Label: "v0", Live: true, Open: func() (src capture.Source, err error) {
			err = capture.InNamespace(ns, func() error {
				src, err = capture.OpenLive("v0", opts)
				return err
			})
			return src, err
		}}}, nil
	}
	cfgPath := t.TempDir() + "/zoomprobe.yml"
	os.WriteFile(cfgPath, []byte("probes:\n  enabled: false\ncapture:\n  workers: 2\nflows:\n  udp_timeout: 1s\n  embryonic_timeout: 1s\n"), 0o644)
	_, srv := startDaemon(t, cfgPath, inputs)
	waitMetric(t, srv.URL+"/metrics", `zoomprobe_capture_up{interface="v0"}`, 1)

	// An answered UDP media exchange on 8801 across the veth.
	const n = 20
	err := capture.InNamespace(serverNS, func() error {
		srvConn, err := net.ListenPacket("udp4", zoomAddr+":8801")
		if err != nil {
			return err
		}
		t.Cleanup(func() { srvConn.Close() })
		go func() {
			buf := make([]byte, 2048)
			for {
				k, from, err := srvConn.ReadFrom(buf)
				if err != nil {
					return
				}
				srvConn.WriteTo(buf[:k], from)
			}
		}()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = capture.InNamespace(ns, func() error {
		c, err := net.Dial("udp4", zoomAddr+":8801")
		if err != nil {
			return err
		}
		t.Cleanup(func() { c.Close() })
		go func() {
			for range n {
				c.Write([]byte{0x05, 0, 1, 0, 0, 0, 1, 0, 0x0f, 0, 0, 0})
				time.Sleep(5 * time.Millisecond)
			}
		}()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, body := get(t, srv.URL+"/metrics")
		pk := metricValue(body, `zoomprobe_packets_total{interface="v0"}`)
		active := metricValue(body, `zoomprobe_active_flows{service="media",transport="udp"}`)
		ended := metricValue(body, `zoomprobe_flows_total{service="media",transport="udp"}`)
		zp := metricValue(body, `zoomprobe_zoom_packets_total{service="media"}`)
		if pk >= 2*n && zp >= 2*n && (active >= 1 || ended >= 1) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("packets=%v zoom_packets=%v active=%v ended=%v\n%s", pk, zp, active, ended, grepZoomprobe(body))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func netipMust(s string) netip.Addr { return netip.MustParseAddr(s) }

// A live source that cannot open (interface missing, capture.wait_for_interfaces
// on) is reported with capture_up 0 and /-/ready 503 naming it, and retried
// while the daemon keeps serving; once the interface exists, capture starts
// and /-/ready says 200. When the interface goes away, /-/ready is 503 again.
func TestLiveSourceRetried(t *testing.T) {
	ns, serverNS := netns(t)
	inputs := func(cfg *config.Config) ([]engine.Input, error) {
		opts := LiveOptions(cfg, nil)
		return []engine.Input{{Label: "late0", Live: true, Open: func() (src capture.Source, err error) {
			err = capture.InNamespace(ns, func() error {
				src, err = capture.OpenLive("late0", opts)
				return err
			})
			return src, err
		}}}, nil
	}
	cfgPath := t.TempDir() + "/zoomprobe.yml"
	os.WriteFile(cfgPath, []byte("probes:\n  enabled: false\ncapture:\n  workers: 1\n  retry_interval: 200ms\n  wait_for_interfaces: true\n"), 0o644)
	_, srv := startDaemon(t, cfgPath, inputs)
	waitReadyCode(t, srv.URL, 503, "capture on late0 is down: capture: interface \"late0\"")
	_, body := get(t, srv.URL+"/metrics")
	if v := metricValue(body, `zoomprobe_capture_up{interface="late0"}`); v != 0 {
		t.Fatalf("capture_up = %v for a missing interface, want 0", v)
	}
	out, err := exec.Command("ip", "-n", ns, "link", "add", "late0", "type", "veth", "peer", "name", "late1", "netns", serverNS).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	exec.Command("ip", "-n", ns, "link", "set", "late0", "up").Run()
	waitMetric(t, srv.URL+"/metrics", `zoomprobe_capture_up{interface="late0"}`, 1)
	waitReadyCode(t, srv.URL, 200, "Ready.")

	// The source stops: not ready, with the reason.
	if out, err := exec.Command("ip", "-n", ns, "link", "del", "late0").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	waitReadyCode(t, srv.URL, 503, "capture on late0 is down")
}

// waitReadyCode polls /-/ready until it answers code with a body containing
// want (the deadline guards against a hang; it is not what the test checks).
func waitReadyCode(t *testing.T, url string, code int, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, body := get(t, url+"/-/ready")
		if c == code && strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/-/ready = %d %q; want %d with %q", c, body, code, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
