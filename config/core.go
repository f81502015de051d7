package config

import (
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// CaptureConfig says where packets come from.
type CaptureConfig struct {
	// Interfaces to capture on; empty means the interface of the default route.
	Interfaces []string `yaml:"interfaces"`
	// Workers is how many analysis workers (each with its own flow table) run.
	Workers int `yaml:"workers"`
	// Readers is how many goroutines decode one capture file, behind one
	// reader, when there are several workers. 0: with no more workers than
	// CPUs Go may use, and at most 4, every worker reads the whole file
	// instead; otherwise one per worker, at most those CPUs.
	Readers int `yaml:"readers"`
	// LiveReaders is how many AF_PACKET sockets read each interface, joined
	// in one kernel fanout group that hashes both directions of a 5-tuple
	// to the same socket; each has its own reader goroutine (decode, DNS
	// snooping) handing packets to the worker owning their address pair.
	// Raise it when one reader cannot keep up (kernel drops with idle workers).
	LiveReaders int `yaml:"live_readers"`
	// BPF is an optional kernel filter in `tcpdump -ddd` form (a count line
	// then "code jt jf k" lines); BPFFile reads the same from a file.
	BPF     string `yaml:"bpf"`
	BPFFile string `yaml:"bpf_file"`
	// SnapLen bytes of each frame are kept; handshakes need whole frames.
	SnapLen int `yaml:"snaplen"`
	// RingSizeMB is the AF_PACKET TPACKET_V3 ring per socket.
	RingSizeMB    int           `yaml:"ring_size_mb"`
	Promiscuous   bool          `yaml:"promiscuous"`
	RetryInterval time.Duration `yaml:"retry_interval"` // reopen a failed live source after this
	// WaitForInterfaces starts (or reloads) even when a listed interface
	// does not exist yet, and captures once it appears; off, a missing
	// interface is refused, so a typo cannot leave the probe blind.
	WaitForInterfaces bool `yaml:"wait_for_interfaces"`
	// Decapsulate mirror-port and provider tunnels (GRE, ERSPAN, VXLAN, Geneve,
	// GTP-U). VLAN tags, MPLS labels and PPPoE sessions are always peeled.
	Decapsulate bool `yaml:"decapsulate"`
	// VXLANPorts are the UDP ports decoded as VXLAN.
	VXLANPorts []uint16 `yaml:"vxlan_ports"`
	// GenevePorts are the UDP ports decoded as Geneve.
	GenevePorts []uint16 `yaml:"geneve_ports"`
	// GTPUPorts are the UDP ports decoded as GTP-U (mobile backhaul).
	GTPUPorts []uint16 `yaml:"gtpu_ports"`
	// Boxes are firewalls or NAT gateways captured on both sides: a Zoom
	// packet seen on one side and not on the other was dropped by the box
	// (package boxmatch).
	Boxes []BoxConfig `yaml:"boxes"`
}

// BoxConfig names a box between two capture points: Inside faces the
// clients, Outside faces Zoom. Both are interfaces of capture.interfaces.
type BoxConfig struct {
	Name    string `yaml:"name"`    // a label value of zoomprobe_box_* metrics and the finding's evidence
	Inside  string `yaml:"inside"`  // the interface on the clients' side
	Outside string `yaml:"outside"` // the interface on Zoom's side
	// Window: a packet not seen on the other side this long (packet time)
	// after it was seen on one was dropped by the box.
	Window time.Duration `yaml:"window"`
	// TableBytes bounds the table of packets waiting for their copy from the
	// other side; it is allocated whole when the box starts.
	TableBytes int `yaml:"table_bytes"`
	// MatchIPID adds the IPv4 identification to what is matched: only for a
	// box known to keep it (Linux NAT does; many firewalls rewrite it).
	MatchIPID bool `yaml:"match_ip_id"`
	// MinDrops: a conversation needs this many packets dropped by the box
	// before a verdict (one lost packet is ordinary).
	MinDrops int `yaml:"min_drops"`
}

// SetDefaults fills a box's unset fields (YAML or a command line).
func (b *BoxConfig) SetDefaults() {
	if b.Window == 0 {
		b.Window = 2 * time.Second
	}
	if b.TableBytes == 0 {
		b.TableBytes = 4 << 20
	}
	if b.MinDrops == 0 {
		b.MinDrops = 2
	}
}

// ValidBoxName reports whether name may be a box's name: it becomes a
// metric label value, so a short word of letters, digits, '_' and '-'.
func ValidBoxName(name string) bool {
	if name == "" || len(name) > 32 {
		return false
	}
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9' && i > 0, (r == '_' || r == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// Validate checks one box; sources lists the capture sources it may name.
func (b *BoxConfig) Validate(v *Validator, path string, sources []string) {
	v.Check(ValidBoxName(b.Name), path+".name", "%q: use 1 to 32 letters, digits, '_' and '-', starting with a letter (it becomes a metric label)", b.Name)
	known := func(s string) bool {
		for _, x := range sources {
			if x == s && s != "any" {
				return true
			}
		}
		return false
	}
	for _, side := range []struct{ key, val string }{{"inside", b.Inside}, {"outside", b.Outside}} {
		v.Check(known(side.val), path+"."+side.key, "%q is not a capture source: name an interface listed in capture.interfaces (not \"any\")", side.val)
	}
	v.Check(b.Inside == "" || b.Inside != b.Outside, path+".outside", "%q is also the inside: a box's two sides are two different interfaces", b.Outside)
	v.Check(b.Window >= 100*time.Millisecond && b.Window <= time.Minute, path+".window", "must be between 100ms and 1m, got %s", b.Window)
	v.Check(b.TableBytes >= 64<<10 && b.TableBytes <= 1<<30, path+".table_bytes", "must be between 65536 and 1073741824, got %d", b.TableBytes)
	v.Check(b.MinDrops >= 1 && b.MinDrops <= 100, path+".min_drops", "must be between 1 and 100, got %d", b.MinDrops)
}

func (c *CaptureConfig) setDefaults() {
	c.Workers = min(max(runtime.NumCPU(), 1), 8)
	c.LiveReaders = 1
	c.SnapLen = 65535
	c.RingSizeMB = 32
	c.Promiscuous = true
	c.RetryInterval = 5 * time.Second
	c.Decapsulate = true
	c.VXLANPorts = []uint16{4789}
	c.GenevePorts = []uint16{6081}
	c.GTPUPorts = []uint16{2152}
}

func (c *CaptureConfig) validate(v *Validator) {
	v.Check(c.Workers >= 1 && c.Workers <= 64, "capture.workers", "must be between 1 and 64, got %d", c.Workers)
	v.Check(c.Readers >= 0 && c.Readers <= 64, "capture.readers", "must be between 0 (automatic) and 64, got %d", c.Readers)
	v.Check(c.LiveReaders >= 1 && c.LiveReaders <= 64, "capture.live_readers", "must be between 1 and 64 sockets per interface, got %d", c.LiveReaders)
	v.Check(c.SnapLen >= 128 && c.SnapLen <= 262144, "capture.snaplen", "must be between 128 and 262144 bytes, got %d", c.SnapLen)
	v.Check(c.RingSizeMB >= 1 && c.RingSizeMB <= 1024, "capture.ring_size_mb", "must be between 1 and 1024, got %d", c.RingSizeMB)
	v.Check(c.RetryInterval >= 100*time.Millisecond, "capture.retry_interval", "must be at least 100ms, got %s", c.RetryInterval)
	v.Check(c.BPF == "" || c.BPFFile == "", "capture.bpf_file", "set either capture.bpf or capture.bpf_file, not both")
	seen := map[string]int{}
	for i, name := range c.Interfaces {
		path := idx("capture.interfaces", i)
		if name == "" || strings.ContainsAny(name, " /") {
			v.Fail(path, "%q is not an interface name", name)
			continue
		}
		if j, dup := seen[name]; dup {
			// Two sockets on one interface would count every packet twice.
			v.Fail(path, "%q is listed twice (also capture.interfaces[%d]); list each interface once", name, j)
			continue
		}
		seen[name] = i
	}
	if j, ok := seen["any"]; ok && len(seen) > 1 {
		// "any" already captures every interface: the named ones would be seen twice.
		v.Fail(idx("capture.interfaces", j), `"any" captures every interface and cannot be combined with named interfaces; list either "any" alone or the interfaces`)
	}
	// A box's matcher keeps one clock per side, moved by the side's one
	// reader; several sockets of a fanout group would each move it.
	v.Check(len(c.Boxes) == 0 || c.LiveReaders == 1, "capture.live_readers",
		"must be 1 with capture.boxes (each side of a box is read by one socket, so its clock is in packet order), got %d", c.LiveReaders)
	names := map[string]int{}
	sides := map[string]string{}
	for i := range c.Boxes {
		b := &c.Boxes[i]
		path := idx("capture.boxes", i)
		b.SetDefaults() // list items get no defaults from Default(): unset (or 0) means the default
		b.Validate(v, path, c.Interfaces)
		if j, dup := names[b.Name]; dup && b.Name != "" {
			v.Fail(path+".name", "%q is also the name of capture.boxes[%d]; give each box its own name", b.Name, j)
		}
		names[b.Name] = i
		// A source read for two boxes would have to be matched twice.
		for _, side := range []struct{ key, val string }{{"inside", b.Inside}, {"outside", b.Outside}} {
			if side.key == "outside" && b.Outside == b.Inside {
				break // said above
			}
			if other, used := sides[side.val]; used && side.val != "" {
				v.Fail(path+"."+side.key, "%q is already a side of %s; a capture source belongs to one box", side.val, other)
				continue
			}
			sides[side.val] = path
		}
	}
}

// FlowsConfig bounds the flow tables (per worker) and sets idle timeouts on packet time.
type FlowsConfig struct {
	MaxFlows         int           `yaml:"max_flows"`
	EmbryonicTimeout time.Duration `yaml:"embryonic_timeout"`
	TCPTimeout       time.Duration `yaml:"tcp_timeout"`
	UDPTimeout       time.Duration `yaml:"udp_timeout"`
	ClosedTimeout    time.Duration `yaml:"closed_timeout"`
}

func (c *FlowsConfig) setDefaults() {
	c.MaxFlows = 65536
	c.EmbryonicTimeout = 30 * time.Second
	c.TCPTimeout = 5 * time.Minute
	c.UDPTimeout = 2 * time.Minute
	c.ClosedTimeout = 10 * time.Second
}

func (c *FlowsConfig) validate(v *Validator) {
	v.Check(c.MaxFlows >= 16 && c.MaxFlows <= 10_000_000, "flows.max_flows", "must be between 16 and 10000000, got %d", c.MaxFlows)
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"embryonic_timeout", c.EmbryonicTimeout}, {"tcp_timeout", c.TCPTimeout}, {"udp_timeout", c.UDPTimeout}, {"closed_timeout", c.ClosedTimeout}} {
		v.Check(d.d >= time.Second && d.d <= 24*time.Hour, "flows."+d.name, "must be between 1s and 24h, got %s", d.d)
	}
}

// ZoomConfig says what counts as Zoom, and what else to watch.
type ZoomConfig struct {
	// RangesFile replaces the embedded ranges: one of Zoom's published CIDR
	// lists (one CIDR a line), a directory of them (each list's service from
	// its file name: ZoomMeetings.txt, ZoomCDN.txt...), or the CSV snapshot
	// format (ip_address,ip_type,service).
	RangesFile string `yaml:"ranges_file"`
	// NameCacheSize bounds the DNS-snooped address→name cache.
	NameCacheSize int `yaml:"name_cache_size"`
	// MaxClientHelloBytes bounds the client bytes the identity stage holds
	// per flow while a ClientHello arrives over several segments.
	MaxClientHelloBytes int `yaml:"max_client_hello_bytes"`
	// ClientHelloBudgetBytes bounds what one worker's identity stage holds
	// for all ClientHellos arriving over several segments at once.
	ClientHelloBudgetBytes int `yaml:"client_hello_budget_bytes"`
	// DNSAnswerWindow: a snooped DNS answer is trusted only if it matches a
	// query seen at most this long before it (client, ports, ID, question).
	DNSAnswerWindow time.Duration `yaml:"dns_answer_window"`
	// DNSQueryTableBytes bounds the table of queries waiting for their answer.
	DNSQueryTableBytes int `yaml:"dns_query_table_bytes"`
	// Watch adds non-Zoom traffic to the analyzers.
	Watch WatchConfig `yaml:"watch"`
}

// WatchConfig names extra networks, domain names and ports to analyse like Zoom.
type WatchConfig struct {
	All      bool     `yaml:"all"`
	Networks []string `yaml:"networks"`
	Names    []string `yaml:"names"` // a domain and its subdomains
	TCPPorts []uint16 `yaml:"tcp_ports"`
	UDPPorts []uint16 `yaml:"udp_ports"`

	Prefixes []netip.Prefix `yaml:"-"` // parsed Networks
}

func (c *ZoomConfig) setDefaults() {
	c.NameCacheSize = 16384
	c.MaxClientHelloBytes = 8192
	c.ClientHelloBudgetBytes = 4 << 20
	c.DNSAnswerWindow = 5 * time.Second
	c.DNSQueryTableBytes = 1 << 20
}

func (c *ZoomConfig) validate(v *Validator) {
	v.Check(c.NameCacheSize >= 16 && c.NameCacheSize <= 10_000_000, "zoom.name_cache_size", "must be between 16 and 10000000, got %d", c.NameCacheSize)
	v.Check(c.MaxClientHelloBytes >= 1024 && c.MaxClientHelloBytes <= 65536, "zoom.max_client_hello_bytes", "must be between 1024 and 65536, got %d", c.MaxClientHelloBytes)
	v.Check(c.ClientHelloBudgetBytes >= 4*c.MaxClientHelloBytes && c.ClientHelloBudgetBytes <= 1<<30, "zoom.client_hello_budget_bytes", "must be between 4 × zoom.max_client_hello_bytes (%d, one ClientHello) and 1073741824, got %d", 4*c.MaxClientHelloBytes, c.ClientHelloBudgetBytes)
	v.Check(c.DNSAnswerWindow >= 100*time.Millisecond && c.DNSAnswerWindow <= time.Minute, "zoom.dns_answer_window", "must be between 100ms and 1m, got %s", c.DNSAnswerWindow)
	v.Check(c.DNSQueryTableBytes >= 4096 && c.DNSQueryTableBytes <= 1<<30, "zoom.dns_query_table_bytes", "must be between 4096 and 1073741824, got %d", c.DNSQueryTableBytes)
	c.Watch.Prefixes = c.Watch.Prefixes[:0]
	for i, n := range c.Watch.Networks {
		p, err := netip.ParsePrefix(strings.TrimSpace(n))
		if err != nil {
			v.Fail(idx("zoom.watch.networks", i), "%q is not a CIDR network (like 10.0.0.0/8 or 2001:db8::/32)", n)
			continue
		}
		c.Watch.Prefixes = append(c.Watch.Prefixes, p.Masked())
	}
	for i, n := range c.Watch.Names {
		v.Check(n != "" && !strings.ContainsAny(n, " /:*"), idx("zoom.watch.names", i), "%q is not a domain name (write example.com to cover it and its subdomains)", n)
	}
}

// MetricsConfig bounds label values.
type MetricsConfig struct {
	// MaxProductLabels bounds distinct `product` label values; more are "other".
	MaxProductLabels int `yaml:"max_product_labels"`
}

func (c *MetricsConfig) setDefaults() { c.MaxProductLabels = 64 }

func (c *MetricsConfig) validate(v *Validator) {
	v.Check(c.MaxProductLabels >= 1 && c.MaxProductLabels <= 1000, "metrics.max_product_labels", "must be between 1 and 1000, got %d", c.MaxProductLabels)
}

// EventLogConfig is the JSON-lines log of findings.
type EventLogConfig struct {
	// Path of the log; "-" (the default) is standard output, which systemd
	// and Kubernetes keep in their logs; empty disables it.
	Path       string `yaml:"path"`
	MaxSizeMB  int    `yaml:"max_size_mb"`
	MaxBackups int    `yaml:"max_backups"`
}

func (c *EventLogConfig) setDefaults() {
	c.Path = "-"
	c.MaxSizeMB = 100
	c.MaxBackups = 5
}

func (c *EventLogConfig) validate(v *Validator) {
	v.Check(c.MaxSizeMB >= 1 && c.MaxSizeMB <= 100000, "event_log.max_size_mb", "must be between 1 and 100000, got %d", c.MaxSizeMB)
	v.Check(c.MaxBackups >= 0 && c.MaxBackups <= 1000, "event_log.max_backups", "must be between 0 and 1000, got %d", c.MaxBackups)
}

// AnalyzersConfig chooses the analyzers; empty Enabled means all registered.
type AnalyzersConfig struct {
	Disabled []string `yaml:"disabled"`
}

func (c *AnalyzersConfig) setDefaults() {}

func (c *AnalyzersConfig) validate(v *Validator) {}

// Enabled reports whether the analyzer called name should run.
func (c *AnalyzersConfig) Enabled(name string) bool {
	for _, d := range c.Disabled {
		if d == name {
			return false
		}
	}
	return true
}

func idx(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }
