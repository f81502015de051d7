// Package livetest gives the daemon's and the command's tests a live
// interface to capture on and a way to put chosen frames on it: a veth pair
// whose capture end stays in the test's own network namespace (so an
// exec'd daemon reaches it by name) and whose other end lives in a network
// namespace made for the test, where frames are written raw. Needs root.
package livetest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/zoomprobe/zoomprobe/capture"
)

// Link is a veth pair: Capture is the name of the end in this namespace.
type Link struct {
	Capture string
	fd      int // AF_PACKET socket on the other end, in its namespace
}

// NewLink makes the pair, with IPv6 off on both ends so the kernel sends
// nothing of its own on them: every frame captured is one the test wrote.
// Skips when not root. Everything is removed when the test ends.
func NewLink(t testing.TB) *Link {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("live test needs root (network namespaces, AF_PACKET); CI runs it as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("live test needs the ip command (Debian package iproute2)")
	}
	var rnd [3]byte
	rand.Read(rnd[:])
	suffix := hex.EncodeToString(rnd[:])
	ns, capIf, peerIf := "zplt-"+suffix, "zplc"+suffix, "zplp"+suffix
	run := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run("netns", "add", ns); err != nil {
		t.Skipf("cannot create a network namespace here: %v", err)
	}
	t.Cleanup(func() { run("netns", "del", ns) })
	if err := run("link", "add", capIf, "type", "veth", "peer", "name", peerIf, "netns", ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { run("link", "del", capIf) })
	os.WriteFile("/proc/sys/net/ipv6/conf/"+capIf+"/disable_ipv6", []byte("1"), 0)
	for _, args := range [][]string{
		{"link", "set", capIf, "up"},
		{"netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf." + peerIf + ".disable_ipv6=1"},
		{"-n", ns, "link", "set", peerIf, "up"},
	} {
		if err := run(args...); err != nil {
			t.Fatal(err)
		}
	}
	l := &Link{Capture: capIf, fd: -1}
	err := capture.InNamespace(ns, func() error {
		ifc, err := net.InterfaceByName(peerIf)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifc.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		l.fd = fd
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(l.fd) })
	return l
}

// Send writes one Ethernet frame on the far end: it arrives on Capture.
func (l *Link) Send(t testing.TB, frame []byte) {
	t.Helper()
	if _, err := unix.Write(l.fd, frame); err != nil {
		t.Fatalf("send frame: %v", err)
	}
}

// SinkholeAnswer is a DNS answer from a resolver to a client giving 0.0.0.0
// for name: on its own, one dns_sinkhole finding per (client, name), whatever
// the timing, so tests can count findings.
func SinkholeAnswer(name string, id uint16) []byte { return SinkholeAnswerTo(name, id, 40000) }

// SinkholeAnswerTo is SinkholeAnswer sent to the client's port port: answers
// to different ports are different flows (a kernel fanout group spreads them).
func SinkholeAnswerTo(name string, id, port uint16) []byte {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x53}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x10}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IPv4(198, 51, 100, 53), DstIP: net.IPv4(198, 51, 100, 10)}
	udp := &layers.UDP{SrcPort: 53, DstPort: layers.UDPPort(port)}
	udp.SetNetworkLayerForChecksum(ip)
	dns := &layers.DNS{ID: id, QR: true, RD: true, RA: true, ResponseCode: layers.DNSResponseCodeNoErr,
		Questions: []layers.DNSQuestion{{Name: []byte(name), Type: layers.DNSTypeA, Class: layers.DNSClassIN}},
		Answers:   []layers.DNSResourceRecord{{Name: []byte(name), Type: layers.DNSTypeA, Class: layers.DNSClassIN, TTL: 60, IP: net.IPv4zero.To4()}},
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, dns); err != nil {
		panic(err) // fixed layers: cannot fail
	}
	return buf.Bytes()
}
