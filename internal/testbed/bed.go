// Package testbed builds a live network test bed for zoomprobe out of Linux
// network namespaces: a Zoom-like client, a middlebox router, Zoom-like
// servers and a probe that sees the router's client-facing port through a
// two-way mirror. Scenarios (see scenario.go) switch middlebox behaviours on
// in the router and assert what crossed the mirror and, once the analyzers
// exist, what the daemon reports. See README.md for the topology.
package testbed

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// NS names one of the bed's namespaces by its role.
type NS string

const (
	NSClient NS = "client" // the Zoom-like client
	NSRouter NS = "router" // the middlebox: forwarding, firewall, proxies
	NSServer NS = "server" // the Zoom-like servers
	NSProbe  NS = "probe"  // where the daemon captures: mon0 gets the mirror
)

// Roles lists every namespace role in creation order.
var Roles = []NS{NSClient, NSRouter, NSServer, NSProbe}

// Interface names. They are fixed because each lives in its own namespace.
const (
	ClientIf       = "eth0" // client side of client<->router
	RouterClientIf = "cli0" // router side of client<->router: the mirrored port
	RouterServerIf = "srv0" // router side of router<->server
	RouterMirrorIf = "mir0" // router end of the mirror link
	ServerIf       = "eth0" // server side of router<->server
	ProbeIf        = "mon0" // probe end of the mirror link: capture here
	// With Options.OutsideMirror: the router's server-facing port is
	// mirrored too, so the router is a box captured on both sides.
	RouterOutsideMirrorIf = "mir1" // router end of the outside mirror link
	ProbeOutsideIf        = "mon1" // probe end: the box's outside capture
)

// Addresses. They exist only inside the bed's namespaces. The client LAN is
// private (10.81.1.0/24, fd81:1::/64, as a site's would be); the "Internet"
// side uses the documentation ranges (TEST-NET-3 203.0.113.0/24 and
// 2001:db8:113::/64) so that DNS answers for Zoom names are public-looking
// and a DNS analyzer flagging private answers has nothing to flag on the
// clean path.
var (
	ClientAddr       = netip.MustParseAddr("10.81.1.2")
	RouterClientAddr = netip.MustParseAddr("10.81.1.1") // client's gateway; proxies listen here
	RouterServerAddr = netip.MustParseAddr("203.0.113.1")
	ServerAddr       = netip.MustParseAddr("203.0.113.2")      // the server namespace's primary address
	WebAddr          = netip.MustParseAddr("203.0.113.10")     // zoom.us, www.zoom.us, log.zoom.us
	ZoneCtrlAddr     = netip.MustParseAddr("203.0.113.20")     // *zc.zoom.us
	MediaRouterAddr  = netip.MustParseAddr("203.0.113.30")     // *mmr*.zoom.us: STUN, UDP/TCP media
	DNSAddr          = netip.MustParseAddr("203.0.113.53")     // the client's resolver
	ServerNet        = netip.MustParsePrefix("203.0.113.0/24") // watch this network in the daemon's config

	ClientAddr6       = netip.MustParseAddr("fd81:1::2")
	RouterClientAddr6 = netip.MustParseAddr("fd81:1::1")
	RouterServerAddr6 = netip.MustParseAddr("2001:db8:113::1")
	ServerAddr6       = netip.MustParseAddr("2001:db8:113::2")
	WebAddr6          = netip.MustParseAddr("2001:db8:113::10")
	ZoneCtrlAddr6     = netip.MustParseAddr("2001:db8:113::20")
	MediaRouterAddr6  = netip.MustParseAddr("2001:db8:113::30")
	ServerNet6        = netip.MustParsePrefix("2001:db8:113::/64")
)

// MAC addresses: fixed (locally administered) so captures are reproducible
// and IPv6 neighbours can be set statically (neighbour discovery right after
// link-up can stall the first IPv6 connection for a second).
const (
	ClientMAC       = "02:81:01:00:00:02"
	RouterClientMAC = "02:81:01:00:00:01"
	RouterServerMAC = "02:81:02:00:00:01"
	ServerMAC       = "02:81:02:00:00:02"
	RouterMirrorMAC = "02:81:03:00:00:01"
	ProbeMAC        = "02:81:03:00:00:02"
	// The outside mirror link (Options.OutsideMirror).
	RouterOutsideMirrorMAC = "02:81:04:00:00:01"
	ProbeOutsideMAC        = "02:81:04:00:00:02"
)

// serverNeighbours are the router's static IPv6 neighbour entries for the
// server's addresses.
func serverNeighbours(dev string) string {
	var sb strings.Builder
	for _, a := range []netip.Addr{ServerAddr6, WebAddr6, ZoneCtrlAddr6, MediaRouterAddr6} {
		fmt.Fprintf(&sb, "neigh replace %s lladdr %s dev %s nud permanent\n", a, ServerMAC, dev)
	}
	return sb.String()
}

// nsPrefix starts every namespace name the bed creates, followed by the
// creating process id so that stale namespaces of dead test processes can be
// recognised and removed.
const nsPrefix = "zptb"

// Options tune a bed. The zero value is the default bed.
type Options struct {
	// NoServers skips starting the Zoom-like servers in the server namespace.
	NoServers bool
	// ServerTLSMax caps the servers' TLS version. Zero means TLS 1.2, as
	// Zoom's zone controllers and media routers answered even to TLS 1.3
	// clients, so certificates are visible on the wire.
	ServerTLSMax uint16
	// NoMirror skips the mirror and the probe capture.
	NoMirror bool
	// MirrorNFT mirrors with an nftables netdev table (ingress and egress
	// hooks, `dup to mir0`) instead of tc clsact + mirred.
	MirrorNFT bool
	// OutsideMirror also mirrors the router's server-facing port (srv0,
	// both directions, after the router's NAT) to the probe's mon1
	// (Bed.Outside): the router becomes a box with an inside and an outside
	// capture. tc only.
	OutsideMirror bool
	// MaxCapturePackets and MaxCaptureBytes bound what the probe keeps;
	// zero means DefaultMaxCapturePackets / DefaultMaxCaptureBytes.
	MaxCapturePackets int
	MaxCaptureBytes   int
	// Logf receives setup notes (defaults to t.Logf).
	Logf func(format string, args ...any)
}

// Bed is one running test bed.
type Bed struct {
	tb    testing.TB
	opts  Options
	id    string
	names map[NS]string

	mu       sync.Mutex
	closers  []func() // run in reverse order on Close
	closed   bool
	offloads bool // ethtool managed to switch offloads off
	conns    map[net.Conn]struct{}
	mbStats  MiddleboxStats

	// ZoomCA is the root the test "Zoom" server certificates chain to;
	// trust it (ZoomCA.Pool()) in clients and the daemon's expected roots.
	ZoomCA *CA
	// ZoomIssuing is the intermediate that signs the Zoom leaves.
	ZoomIssuing *CA
	// Servers are the Zoom-like servers (nil with Options.NoServers).
	Servers *Servers
	// Mirror holds what the probe captured on mon0 (nil with NoMirror).
	Mirror *Mirror
	// Outside holds what the probe captured on mon1, the router's
	// server-facing port (nil without Options.OutsideMirror).
	Outside *Mirror
}

// ErrSkip wraps the reasons a bed cannot run on this machine (not root,
// tools missing, namespaces not creatable). New turns them into t.Skip.
var ErrSkip = errors.New("testbed: cannot run here")

// New builds a bed, registers its teardown with t.Cleanup, and skips the test
// with a clear reason when this machine cannot run one.
func New(t testing.TB, opts Options) (*Bed, error) {
	t.Helper()
	b, err := newBed(t, opts)
	if errors.Is(err, ErrSkip) {
		t.Skip(err.Error())
	}
	if err != nil {
		return nil, err
	}
	t.Cleanup(b.Close)
	return b, nil
}

func newBed(t testing.TB, opts Options) (*Bed, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: needs root (CAP_NET_ADMIN) to create network namespaces; run the tests as root", ErrSkip)
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := lookTool(tool); err != nil {
			return nil, fmt.Errorf("%w: %s not found (install iproute2: scripts/testbed-deps.sh)", ErrSkip, tool)
		}
	}
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	sweepStale()
	b := &Bed{
		tb:    t,
		opts:  opts,
		id:    fmt.Sprintf("%s%d-%04x", nsPrefix, os.Getpid(), rand.Uint32N(1<<16)),
		names: map[NS]string{},
	}
	register(b)
	ok := false
	defer func() {
		if !ok {
			b.Close()
		}
	}()
	for i, role := range Roles {
		name := b.id + "-" + string(role)
		if out, err := run("ip", "netns", "add", name); err != nil {
			if i == 0 {
				return nil, fmt.Errorf("%w: ip netns add failed (%v: %s); namespaces are not available in this container", ErrSkip, err, out)
			}
			return nil, fmt.Errorf("testbed: ip netns add %s: %v: %s", name, err, out)
		}
		b.names[role] = name
	}
	if err := b.wire(); err != nil {
		return nil, err
	}
	var err error
	if b.ZoomCA, b.ZoomIssuing, err = ZoomPKI(); err != nil {
		return nil, err
	}
	if !opts.NoMirror {
		if b.Mirror, err = startMirror(b, ProbeIf); err != nil {
			return nil, err
		}
		if opts.OutsideMirror {
			if b.Outside, err = startMirror(b, ProbeOutsideIf); err != nil {
				return nil, err
			}
		}
	}
	if !opts.NoServers {
		if b.Servers, err = startServers(b); err != nil {
			return nil, err
		}
	}
	ok = true
	return b, nil
}

// Name returns the real namespace name for a role (for `ip netns exec`).
func (b *Bed) Name(ns NS) string { return b.names[ns] }

// ID is the bed's unique prefix, shared by its namespace names.
func (b *Bed) ID() string { return b.id }

// OffloadsOff reports whether ethtool switched segmentation offloads off on
// every link (false when ethtool is missing or refused).
func (b *Bed) OffloadsOff() bool { return b.offloads }

// wire creates the links, addresses, routes and the mirror.
func (b *Bed) wire() error {
	c, s, p := b.names[NSClient], b.names[NSServer], b.names[NSProbe]
	// Links are created inside the namespaces directly: nothing is ever
	// created in, or moved through, the caller's namespace.
	routerBatch := fmt.Sprintf(`link set lo up
link add %[1]s address %[10]s type veth peer name %[4]s address %[11]s netns %[6]s
link add %[2]s address %[12]s type veth peer name %[5]s address %[13]s netns %[7]s
link add %[3]s address %[14]s type veth peer name %[8]s address %[15]s netns %[9]s
`, RouterClientIf, RouterServerIf, RouterMirrorIf, ClientIf, ServerIf, c, s, ProbeIf, p,
		RouterClientMAC, ClientMAC, RouterServerMAC, ServerMAC, RouterMirrorMAC, ProbeMAC)
	if err := b.ipBatch(NSRouter, routerBatch); err != nil {
		return err
	}
	// Quiet links: no IPv6 on the mirror link, no router solicitations.
	// No duplicate address detection: a tentative link-local address
	// stalls neighbour discovery, and so the first IPv6 connection, for
	// a second or two.
	noDAD := func(ifs ...string) []string {
		out := []string{"net/ipv6/conf/all/accept_dad=0", "net/ipv6/conf/default/accept_dad=0",
			"net/ipv6/conf/all/accept_ra=0", "net/ipv6/conf/default/accept_ra=0"}
		for _, i := range ifs {
			out = append(out, "net/ipv6/conf/"+i+"/accept_dad=0", "net/ipv6/conf/"+i+"/accept_ra=0")
		}
		return out
	}
	sysctls := map[NS][]string{
		NSRouter: append([]string{"net/ipv4/ip_forward=1", "net/ipv6/conf/all/forwarding=1",
			"net/ipv6/conf/" + RouterMirrorIf + "/disable_ipv6=1",
			"net/ipv4/conf/all/rp_filter=0", "net/ipv4/conf/default/rp_filter=0"}, noDAD(RouterClientIf, RouterServerIf)...),
		NSProbe:  {"net/ipv6/conf/" + ProbeIf + "/disable_ipv6=1"},
		NSClient: noDAD(ClientIf),
		NSServer: noDAD(ServerIf),
	}
	for ns, list := range sysctls {
		if err := b.Sysctl(ns, list...); err != nil {
			return err
		}
	}
	batches := map[NS]string{
		NSRouter: fmt.Sprintf(`addr add %[1]s/24 dev %[3]s
addr add %[2]s/24 dev %[4]s
addr add %[5]s/64 dev %[3]s nodad
addr add %[6]s/64 dev %[4]s nodad
link set %[3]s up
link set %[4]s up
link set %[7]s up
neigh replace %[8]s lladdr %[9]s dev %[3]s nud permanent
`, RouterClientAddr, RouterServerAddr, RouterClientIf, RouterServerIf, RouterClientAddr6, RouterServerAddr6, RouterMirrorIf,
			ClientAddr6, ClientMAC) + serverNeighbours(RouterServerIf),
		NSClient: fmt.Sprintf(`link set lo up
addr add %[1]s/24 dev %[3]s
addr add %[4]s/64 dev %[3]s nodad
link set %[3]s up
route add default via %[2]s
route add default via %[5]s
neigh replace %[5]s lladdr %[6]s dev %[3]s nud permanent
`, ClientAddr, RouterClientAddr, ClientIf, ClientAddr6, RouterClientAddr6, RouterClientMAC),
		NSServer: fmt.Sprintf(`link set lo up
addr add %[1]s/24 dev %[2]s
addr add %[3]s/24 dev %[2]s
addr add %[4]s/24 dev %[2]s
addr add %[5]s/24 dev %[2]s
addr add %[6]s/24 dev %[2]s
addr add %[8]s/64 dev %[2]s nodad
addr add %[9]s/64 dev %[2]s nodad
addr add %[10]s/64 dev %[2]s nodad
addr add %[11]s/64 dev %[2]s nodad
link set %[2]s up
route add default via %[7]s
route add default via %[12]s
neigh replace %[12]s lladdr %[13]s dev %[2]s nud permanent
`, ServerAddr, ServerIf, WebAddr, ZoneCtrlAddr, MediaRouterAddr, DNSAddr, RouterServerAddr,
			ServerAddr6, WebAddr6, ZoneCtrlAddr6, MediaRouterAddr6, RouterServerAddr6, RouterServerMAC),
		NSProbe: fmt.Sprintf("link set lo up\nlink set %s up\n", ProbeIf),
	}
	for _, ns := range Roles {
		if err := b.ipBatch(ns, batches[ns]); err != nil {
			return err
		}
	}
	// Offloads off so the mirror sees wire-sized frames rather than 64 KiB
	// GSO super-packets.
	b.offloads = true
	if _, err := lookTool("ethtool"); err != nil {
		b.offloads = false
		b.opts.Logf("testbed: ethtool not found, offloads left on (scripts/testbed-deps.sh installs it)")
	} else {
		for ns, ifs := range map[NS][]string{NSClient: {ClientIf}, NSRouter: {RouterClientIf, RouterServerIf, RouterMirrorIf}, NSServer: {ServerIf}, NSProbe: {ProbeIf}} {
			for _, ifname := range ifs {
				if out, err := b.Exec(ns, "ethtool", "-K", ifname, "tso", "off", "gso", "off", "gro", "off", "lro", "off"); err != nil {
					b.offloads = false
					b.opts.Logf("testbed: ethtool -K %s in %s: %v: %s (continuing with offloads on)", ifname, ns, err, out)
				}
			}
		}
	}
	if b.opts.NoMirror {
		return nil
	}
	if b.opts.OutsideMirror && b.opts.MirrorNFT {
		return errors.New("testbed: Options.OutsideMirror mirrors with tc; it cannot be combined with MirrorNFT")
	}
	// The mirror: both directions of the router's client-facing port, so
	// packets the router itself sends (REJECT's RSTs and ICMP, proxies'
	// answers) reach the probe as they would on a SPAN port.
	if b.opts.MirrorNFT {
		if _, err := lookTool("nft"); err != nil {
			return fmt.Errorf("%w: nft not found (scripts/testbed-deps.sh installs nftables)", ErrSkip)
		}
		cmd := exec.Command(mustTool("ip"), "netns", "exec", b.names[NSRouter], mustTool("nft"), "-f", "-")
		cmd.Stdin = strings.NewReader(nftMirror)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("testbed: nft mirror in router: %v: %s (needs nftables netdev ingress/egress hooks and dup)", err, out)
		}
		return nil
	}
	cmds := [][]string{
		{"tc", "qdisc", "add", "dev", RouterClientIf, "clsact"},
		{"tc", "filter", "add", "dev", RouterClientIf, "ingress", "protocol", "all", "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "mirror", "dev", RouterMirrorIf},
		{"tc", "filter", "add", "dev", RouterClientIf, "egress", "protocol", "all", "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "mirror", "dev", RouterMirrorIf},
	}
	if b.opts.OutsideMirror {
		// srv0's ingress hook runs before the router's NAT and its egress
		// hook after: the outside capture sees translated packets, as a
		// SPAN port on the box's outside would.
		if err := b.ipBatch(NSRouter, fmt.Sprintf("link add %s address %s type veth peer name %s address %s netns %s\nlink set %s up\n",
			RouterOutsideMirrorIf, RouterOutsideMirrorMAC, ProbeOutsideIf, ProbeOutsideMAC, p, RouterOutsideMirrorIf)); err != nil {
			return err
		}
		if err := b.ipBatch(NSProbe, fmt.Sprintf("link set %s up\n", ProbeOutsideIf)); err != nil {
			return err
		}
		if err := b.Sysctl(NSRouter, "net/ipv6/conf/"+RouterOutsideMirrorIf+"/disable_ipv6=1"); err != nil {
			return err
		}
		if err := b.Sysctl(NSProbe, "net/ipv6/conf/"+ProbeOutsideIf+"/disable_ipv6=1"); err != nil {
			return err
		}
		if b.offloads {
			b.Exec(NSRouter, "ethtool", "-K", RouterOutsideMirrorIf, "tso", "off", "gso", "off", "gro", "off", "lro", "off")
			b.Exec(NSProbe, "ethtool", "-K", ProbeOutsideIf, "tso", "off", "gso", "off", "gro", "off", "lro", "off")
		}
		cmds = append(cmds,
			[]string{"tc", "qdisc", "add", "dev", RouterServerIf, "clsact"},
			[]string{"tc", "filter", "add", "dev", RouterServerIf, "ingress", "protocol", "all", "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "mirror", "dev", RouterOutsideMirrorIf},
			[]string{"tc", "filter", "add", "dev", RouterServerIf, "egress", "protocol", "all", "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "mirror", "dev", RouterOutsideMirrorIf})
	}
	for _, cmd := range cmds {
		if out, err := b.Exec(NSRouter, cmd...); err != nil {
			return fmt.Errorf("testbed: mirror setup %q in router: %v: %s (needs clsact, u32 and mirred in the kernel)", strings.Join(cmd, " "), err, out)
		}
	}
	return nil
}

// nftMirror is the nftables alternative to the tc mirror.
var nftMirror = fmt.Sprintf(`table netdev zptb_mirror {
  chain in {
    type filter hook ingress device %[1]q priority 0;
    dup to %[2]q;
  }
  chain out {
    type filter hook egress device %[1]q priority 0;
    dup to %[2]q;
  }
}
`, RouterClientIf, RouterMirrorIf)

func (b *Bed) ipBatch(ns NS, batch string) error {
	cmd := exec.Command(mustTool("ip"), "-n", b.names[ns], "-batch", "-")
	cmd.Stdin = strings.NewReader(batch)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("testbed: ip -n %s -batch failed: %v: %s\nbatch:\n%s", b.names[ns], err, out, batch)
	}
	return nil
}

// Exec runs a command inside a namespace (`ip netns exec`) and returns its
// combined output.
func (b *Bed) Exec(ns NS, args ...string) (string, error) {
	name := b.names[ns]
	if name == "" {
		return "", fmt.Errorf("testbed: unknown namespace role %q", ns)
	}
	return run("ip", append([]string{"netns", "exec", name}, args...)...)
}

// Sysctl sets sysctls inside a namespace; each entry is "net/ipv4/ip_forward=1".
func (b *Bed) Sysctl(ns NS, settings ...string) error {
	return b.Do(ns, func() error {
		for _, s := range settings {
			k, v, ok := strings.Cut(s, "=")
			if !ok {
				return fmt.Errorf("testbed: sysctl %q: want key=value", s)
			}
			if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0); err != nil {
				return fmt.Errorf("testbed: sysctl %s in %s: %w", s, ns, err)
			}
		}
		return nil
	})
}

// onClose registers teardown work, run in reverse order by Close.
func (b *Bed) onClose(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		go f()
		return
	}
	b.closers = append(b.closers, f)
}

// Close stops everything the bed started and deletes its namespaces (which
// deletes their links). It is safe to call more than once.
func (b *Bed) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	closers := b.closers
	b.closers = nil
	b.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
	b.deleteNamespaces()
	unregister(b)
}

func (b *Bed) deleteNamespaces() {
	for _, role := range Roles {
		if name := b.names[role]; name != "" {
			_, _ = run("ip", "netns", "del", name)
		}
	}
}

// Live beds, for the interrupt handler.
var (
	liveMu      sync.Mutex
	liveBeds    = map[*Bed]bool{}
	signalsOnce sync.Once
)

func register(b *Bed) {
	liveMu.Lock()
	liveBeds[b] = true
	liveMu.Unlock()
	signalsOnce.Do(func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
		go func() {
			sig := <-ch
			liveMu.Lock()
			for b := range liveBeds {
				b.deleteNamespaces()
			}
			liveMu.Unlock()
			// Exit as a shell reports death by that signal. (Re-raising
			// after signal.Reset would do nothing when the signal was
			// ignored at start, as in background jobs.)
			code := 1
			if s, ok := sig.(syscall.Signal); ok {
				code = 128 + int(s)
			}
			fmt.Fprintf(os.Stderr, "testbed: %v: namespaces deleted, exiting\n", sig)
			os.Exit(code)
		}()
	})
}

func unregister(b *Bed) {
	liveMu.Lock()
	delete(liveBeds, b)
	liveMu.Unlock()
}

// sweepStale deletes namespaces left by test processes that died without
// cleaning up (a `go test -timeout` panic skips t.Cleanup). Only names with
// our prefix and the pid of a process that no longer exists are touched.
func sweepStale() {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), nsPrefix)
		if !ok {
			continue
		}
		pidStr, _, ok := strings.Cut(rest, "-")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			continue // still running
		}
		_, _ = run("ip", "netns", "del", e.Name())
	}
}

var toolPaths sync.Map

func lookTool(name string) (string, error) {
	if p, ok := toolPaths.Load(name); ok {
		return p.(string), nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
			cand := filepath.Join(dir, name)
			if st, e := os.Stat(cand); e == nil && st.Mode()&0o111 != 0 {
				p, err = cand, nil
				break
			}
		}
	}
	if err != nil {
		return "", err
	}
	toolPaths.Store(name, p)
	return p, nil
}

func mustTool(name string) string {
	if p, err := lookTool(name); err == nil {
		return p
	}
	return name
}

// run executes a tool with a timeout so a wedged command cannot hang a test.
func run(tool string, args ...string) (string, error) {
	cmd := exec.Command(mustTool(tool), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return strings.TrimSpace(out.String()), err
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return strings.TrimSpace(out.String()), fmt.Errorf("%s %s: timed out after 20s", tool, strings.Join(args, " "))
	}
}
