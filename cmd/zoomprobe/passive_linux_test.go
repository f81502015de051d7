package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/decode"
)

// quietNamespace makes a namespace where nothing but zoomprobe would send: a
// veth pair to a "gateway" namespace (192.0.2.1) that is the default route
// and the DNS server, IPv6 off (no router solicitations, DAD or MLD). It
// returns the probe's namespace, its veth and the gateway's.
func quietNamespace(t *testing.T) (probeNS, gwNS string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, AF_PACKET)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command (Debian package iproute2)")
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	suffix := hex.EncodeToString(rnd[:])
	probeNS, gwNS = "zpquiet-p-"+suffix, "zpquiet-g-"+suffix
	run := func(name string, args ...string) error {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
		}
		return nil
	}
	for _, ns := range []string{probeNS, gwNS} {
		if err := run("ip", "netns", "add", ns); err != nil {
			t.Skipf("cannot create a network namespace here: %v", err)
		}
		t.Cleanup(func() {
			if err := run("ip", "netns", "del", ns); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
		// Before the veth exists, so it is created without IPv6.
		if err := run("ip", "netns", "exec", ns, "sh", "-c",
			"echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 && echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6"); err != nil {
			t.Fatal(err)
		}
	}
	// `ip netns exec` mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf:
	// the probe's lookups go over the veth, where the capture sees them.
	etc := filepath.Join("/etc/netns", probeNS)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(etc) })
	if err := os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte("nameserver 192.0.2.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-n", probeNS, "link", "add", "zq0", "type", "veth", "peer", "name", "zq1", "netns", gwNS},
		{"-n", probeNS, "addr", "add", "192.0.2.2/24", "dev", "zq0"},
		{"-n", gwNS, "addr", "add", "192.0.2.1/24", "dev", "zq1"},
		{"-n", probeNS, "link", "set", "lo", "up"},
		{"-n", probeNS, "link", "set", "zq0", "up"},
		{"-n", gwNS, "link", "set", "zq1", "up"},
		{"-n", probeNS, "route", "add", "default", "via", "192.0.2.1"},
	} {
		if err := run("ip", args...); err != nil {
			t.Fatal(err)
		}
	}
	return probeNS, gwNS
}

// frameLog records a summary of every frame a source reads, until closed.
type frameLog struct {
	mu     sync.Mutex
	frames []string
	done   chan struct{}
}

func watch(t *testing.T, ns, iface string) *frameLog {
	t.Helper()
	var src capture.Source
	err := capture.InNamespace(ns, func() (err error) {
		src, err = capture.OpenLive(iface, capture.LiveOptions{SnapLen: 256, RingSizeMB: 1, Promiscuous: true,
			PollTimeout: 50 * time.Millisecond, BlockTimeout: 10 * time.Millisecond})
		return err
	})
	if err != nil {
		t.Fatalf("capture %s in %s: %v", iface, ns, err)
	}
	l := &frameLog{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		d := decode.NewDecoder(decode.Options{})
		for {
			data, ts, wireLen, link, err := src.ReadPacket()
			if errors.Is(err, capture.ErrTimeout) {
				continue
			}
			if err != nil {
				return
			}
			var p decode.Packet
			desc := fmt.Sprintf("%s: %d-byte frame", iface, wireLen)
			if d.Decode(data, link, ts, wireLen, &p) == nil {
				desc = fmt.Sprintf("%s: %v:%d > %v:%d proto %d", iface, p.Src, p.SrcPort, p.Dst, p.DstPort, p.Proto)
			} else if len(data) >= 14 {
				desc += fmt.Sprintf(" ethertype %#04x", uint16(data[12])<<8|uint16(data[13]))
			}
			l.mu.Lock()
			l.frames = append(l.frames, desc)
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() { src.Close(); <-l.done })
	return l
}

func (l *frameLog) seen() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.frames...)
}

// buildDaemon builds the real zoomprobe binary.
func buildDaemon(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "zoomprobe")
	// The go command running this test: the one the toolchain script chose.
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command on PATH: %v", err)
	}
	out, err := exec.Command(goCmd, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startDaemon runs `zoomprobe run ARGS` in ns with the built-in config and
// waits until its pipeline runs; the returned function stops it.
func startDaemon(t *testing.T, bin, ns string, args ...string) (log func() string, stop func()) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, bin, "run", "--web.listen-address=127.0.0.1:18801"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var text strings.Builder
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			mu.Lock()
			text.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if strings.Contains(sc.Text(), `msg="pipeline started"`) {
				once.Do(func() { close(started) })
			}
		}
	}()
	log = func() string { mu.Lock(); defer mu.Unlock(); return text.String() }
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-started:
	case err := <-exited:
		t.Fatalf("zoomprobe exited before its pipeline started (%v):\n%s", err, log())
	case <-time.After(60 * time.Second): // a guard against hanging, not a speed assertion
		cmd.Process.Kill()
		t.Fatalf("no pipeline after 60s:\n%s", log())
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			<-exited
		})
	}
	t.Cleanup(stop)
	return log, stop
}

// Passive mode sends no packet: the daemon runs with the built-in config
// (default-route interface, probes on) and --passive in a namespace where
// only it could send, and captures on the namespace's interfaces see
// nothing. The same daemon without --passive is then seen contacting the
// network, so the capture would have seen it.
func TestPassiveSendsNothing(t *testing.T) {
	probeNS, gwNS := quietNamespace(t)
	bin := buildDaemon(t)
	onVeth, onLo, atGateway := watch(t, probeNS, "zq0"), watch(t, probeNS, "lo"), watch(t, gwNS, "zq1")

	log, stop := startDaemon(t, bin, probeNS, "--passive")
	// The active checks start at once (the NTP check runs before the
	// others); an observation well past that, and past the first capture
	// poll, would see them.
	time.Sleep(3 * time.Second)
	stop()
	for _, want := range []string{`interfaces="zq0 (default route)"`, "active checks off (--passive)", "msg=findings", "address=127.0.0.1:18801"} {
		if !strings.Contains(log(), want) {
			t.Errorf("startup log lacks %q:\n%s", want, log())
		}
	}
	for _, l := range []*frameLog{onVeth, onLo, atGateway} {
		if f := l.seen(); len(f) > 0 {
			t.Errorf("--passive sent %d frames, first %q", len(f), f[0])
		}
	}

	// Control: without --passive the same daemon reaches out (DNS for the
	// NTP servers to 192.0.2.1, after ARP).
	log, stop = startDaemon(t, bin, probeNS)
	guard := time.Now().Add(60 * time.Second)
	for len(atGateway.seen()) == 0 && time.Now().Before(guard) {
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if len(atGateway.seen()) == 0 {
		t.Errorf("the active daemon sent nothing the capture saw: the test cannot see what --passive prevents\n%s", log())
	}
	if !strings.Contains(log(), "check=ntp") || !strings.Contains(log(), "pool.ntp.org") {
		t.Errorf("active startup log does not say what it contacts:\n%s", log())
	}
}
