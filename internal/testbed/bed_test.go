package testbed

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/zoomprobe/zoomprobe/finding"
)

// These tests need root (they skip otherwise).

func TestDoKeepsSocketsInTheirNamespace(t *testing.T) {
	bed, err := New(t, Options{NoServers: true, NoMirror: true})
	if err != nil {
		t.Fatal(err)
	}
	runtime.LockOSThread()
	before, _ := os.Readlink("/proc/thread-self/ns/net")
	var ln net.Listener
	var inside string
	err = bed.Do(NSServer, func() error {
		inside, _ = os.Readlink("/proc/thread-self/ns/net")
		var err error
		ln, err = net.Listen("tcp", netip.AddrPortFrom(ServerAddr, 9999).String())
		return err
	})
	after, _ := os.Readlink("/proc/thread-self/ns/net")
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if inside == before || after != before {
		t.Fatalf("namespace before %s, inside %s, after %s: Do did not switch and restore", before, inside, after)
	}
	// Accept from an ordinary goroutine; dial from the client namespace
	// through the router: the listener still lives in the server namespace.
	accepted := make(chan netip.AddrPort, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- netip.AddrPort{}
			return
		}
		accepted <- c.RemoteAddr().(*net.TCPAddr).AddrPort()
		c.Close()
	}()
	var conn net.Conn
	if err := bed.Do(NSClient, func() error {
		var err error
		conn, err = net.Dial("tcp", netip.AddrPortFrom(ServerAddr, 9999).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if from := <-accepted; from.Addr() != ClientAddr {
		t.Errorf("server saw the client as %v, want %v (routed through the router)", from, ClientAddr)
	}
	// The client namespace has its own addresses, not the caller's.
	var addrs []string
	_ = bed.Do(NSClient, func() error {
		as, err := net.InterfaceAddrs()
		for _, a := range as {
			addrs = append(addrs, a.String())
		}
		return err
	})
	if got := strings.Join(addrs, " "); !strings.Contains(got, ClientAddr.String()+"/24") {
		t.Errorf("client namespace addresses %q lack %s", got, ClientAddr)
	}
}

func TestTeardownRemovesNamespaces(t *testing.T) {
	var names []string
	t.Run("bed", func(t *testing.T) {
		bed, err := New(t, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range Roles {
			names = append(names, bed.Name(r))
			if _, err := os.Stat(filepath.Join("/run/netns", bed.Name(r))); err != nil {
				t.Errorf("namespace %s not created: %v", bed.Name(r), err)
			}
		}
		if err := bed.Apply(InjectRST(64)); err != nil {
			t.Fatal(err)
		}
		if err := bed.Apply(Intercept(UnknownInspectCN, UnknownInspectO)); err != nil {
			t.Fatal(err)
		}
	})
	if len(names) != len(Roles) {
		t.Skip("bed not built")
	}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join("/run/netns", n)); !os.IsNotExist(err) {
			t.Errorf("namespace %s still exists after the test ended (err %v)", n, err)
		}
	}
}

func TestSweepStaleRemovesDeadProcessesNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create namespaces")
	}
	// A pid above the kernel's pid_max cannot be alive.
	stale := fmt.Sprintf("%s%d-beef-client", nsPrefix, 1<<23)
	live := fmt.Sprintf("%s%d-beef-client", nsPrefix, os.Getpid())
	for _, n := range []string{stale, live} {
		if out, err := run("ip", "netns", "add", n); err != nil {
			t.Skipf("ip netns add: %v: %s", err, out)
		}
		t.Cleanup(func() { _, _ = run("ip", "netns", "del", n) })
	}
	sweepStale()
	if _, err := os.Stat("/run/netns/" + stale); !os.IsNotExist(err) {
		t.Errorf("stale namespace %s survived the sweep", stale)
	}
	if _, err := os.Stat("/run/netns/" + live); err != nil {
		t.Errorf("our own namespace %s was swept: %v", live, err)
	}
}

func TestIPv6Client(t *testing.T) {
	bed, err := New(t, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := bed.RunClient(ClientPlan{IPv6: true, SkipSTUN: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[Step]finding.Reason{StepDNS: ok, StepHTTP: ok, StepWeb: ok, StepZoneCtrl: ok, StepMediaUDP: ok}
	if err := checkClient(res, Expectation{Client: want, Media: StepMediaUDP}); err != nil {
		t.Fatalf("%v\n%s", err, res)
	}
	if res.Addrs[WebName] != WebAddr6 {
		t.Errorf("zoom.us resolved to %v, want %v", res.Addrs[WebName], WebAddr6)
	}
	bed.Mirror.WaitQuiet(settleIdle, settleMax)
	c := AtLeast(1, "IPv6 ClientHello on the mirror", Match{Src: ClientAddr6, Dst: WebAddr6, DstPort: 443, ClientHello: true})
	if err := c.Check(DecodeAll(bed.Mirror.Packets())); err != nil {
		t.Error(err)
	}
}

func TestWritePcapRoundTrip(t *testing.T) {
	bed, err := New(t, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bed.RunClient(ClientPlan{SkipMedia: true, SkipSTUN: true, SkipZoneCtrl: true}); err != nil {
		t.Fatal(err)
	}
	bed.Mirror.WaitQuiet(settleIdle, settleMax)
	path := filepath.Join(t.TempDir(), "x.pcap")
	if err := bed.WritePcap(path); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	want := bed.Mirror.Packets()
	n := 0
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		if n < len(want) && (string(data) != string(want[n].Data) || !ci.Timestamp.Equal(want[n].Time.Truncate(1000))) {
			t.Errorf("packet %d differs after the round trip", n)
		}
		n++
	}
	if n != len(want) || n == 0 {
		t.Errorf("pcap holds %d packets, the mirror %d", n, len(want))
	}
	if bed.Mirror.Overflow() != 0 || bed.Mirror.Dropped() != 0 {
		t.Errorf("capture lost packets: overflow %d, kernel drops %d", bed.Mirror.Overflow(), bed.Mirror.Dropped())
	}
}

func TestServerTLS13HidesCertificates(t *testing.T) {
	bed, err := New(t, Options{ServerTLSMax: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	res, err := bed.RunClient(ClientPlan{SkipHTTP: true, SkipSTUN: true, SkipMedia: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := checkClient(res, Expectation{Client: map[Step]finding.Reason{StepDNS: ok, StepWeb: ok, StepZoneCtrl: ok}}); err != nil {
		t.Fatalf("%v\n%s", err, res)
	}
	bed.Mirror.WaitQuiet(settleIdle, settleMax)
	seen := DecodeAll(bed.Mirror.Packets())
	for _, c := range []TrafficCheck{
		{Desc: "issuer not on the wire under TLS 1.3", Match: Match{SrcPort: 443}, StreamContains: ZoomIssuerOnWire, Min: 0, Max: 0},
		StreamHas("server hello from the web server", Match{Src: WebAddr, SrcPort: 443}, "\x16\x03\x03"),
	} {
		if err := c.Check(seen); err != nil {
			t.Error(err)
		}
	}
}

// Both mirror implementations must deliver both directions, including what
// the router itself sends.
func TestMirrorImplementations(t *testing.T) {
	for _, nft := range []bool{false, true} {
		t.Run(fmt.Sprintf("nft=%v", nft), func(t *testing.T) {
			bed, err := New(t, Options{MirrorNFT: nft})
			if err != nil {
				t.Fatal(err)
			}
			if err := bed.Apply(Reject("tcp", "443", RejectTCPReset)); err != nil {
				t.Fatal(err)
			}
			if _, err := bed.RunClient(ClientPlan{SkipZoneCtrl: true, SkipSTUN: true, SkipMedia: true}); err != nil {
				t.Fatal(err)
			}
			bed.Mirror.WaitQuiet(settleIdle, settleMax)
			seen := DecodeAll(bed.Mirror.Packets())
			for _, c := range []TrafficCheck{
				AtLeast(1, "client's SYN to 443 (ingress)", Match{Src: ClientAddr, DstPort: 443, FlagsSet: FlagSYN}),
				AtLeast(1, "server's SYN-ACK on 80 (forwarded, egress)", Match{Src: WebAddr, SrcPort: 80, FlagsSet: FlagSYN | FlagACK, TTL: 63}),
				AtLeast(1, "router's own RST (egress)", Match{Src: WebAddr, SrcPort: 443, FlagsSet: FlagRST, TTL: 64}),
			} {
				if err := c.Check(seen); err != nil {
					t.Error(err)
				}
			}
		})
	}
}
