package zoom

import (
	"net/netip"
	"testing"
	"time"

	"github.com/zoomprobe/zoomprobe/config"
)

func TestClassify(t *testing.T) {
	watch := config.WatchConfig{
		Networks: []string{"192.0.2.0/24", "2001:db8:1::/48", "not a network"},
		Names:    []string{"Example.COM.", "teams.microsoft.com"},
		TCPPorts: []uint16{8443},
		UDPPorts: []uint16{5004},
	}
	c := NewClassifier(DefaultRanges(), watch)
	zoomAddr := "170.114.52.2"      // 170.114.0.0/16, "zoom"
	meetings6 := "2620:123:2000::7" // Meetings IPv6 (media)
	tests := []struct {
		name   string
		proto  uint8
		server string
		port   uint16
		host   string
		want   Service
	}{
		// 1. names decide first
		{"zone controller by SNI", ProtoTCP, zoomAddr, 443, "zoomam104zc.zoom.us", ServiceZoneController},
		{"media router by SNI", ProtoTCP, zoomAddr, 443, "zoomsjccv154mmr.sjc.zoom.us", ServiceMediaRouter},
		{"web by SNI off Zoom's ranges", ProtoTCP, "13.224.1.1", 443, "www.zoom.us", ServiceWeb},
		{"zoom name beats watched network", ProtoTCP, "192.0.2.5", 443, "us05web.zoom.us", ServiceWeb},
		{"mmr name over UDP 8801 is media", ProtoUDP, zoomAddr, 8801, "zoomfrn99mmr.zoom.us", ServiceMedia},
		{"other zoom name over UDP 3478 is media", ProtoUDP, "203.0.113.1", 3478, "stun.zoom.us", ServiceMedia},
		{"zone controller name keeps its class on UDP", ProtoUDP, zoomAddr, 8801, "zoomam104zc.zoom.us", ServiceZoneController},
		{"name-only question (DNS snooping)", ProtoTCP, "", 0, "log.zoom.us", ServiceWeb},
		// 2. Zoom's ranges, refined by port
		{"range, UDP 8801", ProtoUDP, zoomAddr, 8801, "", ServiceMedia},
		{"range, UDP 8810", ProtoUDP, zoomAddr, 8810, "", ServiceMedia},
		{"range, UDP 3479", ProtoUDP, zoomAddr, 3479, "", ServiceMedia},
		{"range, TCP 8802", ProtoTCP, zoomAddr, 8802, "", ServiceMediaRouter},
		{"range, TCP 443", ProtoTCP, zoomAddr, 443, "", ServiceOther},
		{"non-Zoom SNI on Zoom address", ProtoTCP, zoomAddr, 443, "example.org", ServiceOther},
		{"cdn range", ProtoTCP, "170.114.45.9", 443, "", ServiceCDN},
		{"phone range", ProtoUDP, "8.5.128.9", 30000, "", ServicePhone},
		{"meetings v6, TCP 443", ProtoTCP, meetings6, 443, "", ServiceMediaRouter},
		{"meetings v6, UDP 8801", ProtoUDP, meetings6, 8801, "", ServiceMedia},
		{"v4-mapped", ProtoUDP, "::ffff:170.114.52.2", 8801, "", ServiceMedia},
		// 3. watched
		{"watched network", ProtoTCP, "192.0.2.200", 443, "", ServiceWatched},
		{"watched v6 network", ProtoUDP, "2001:db8:1:2::1", 9, "", ServiceWatched},
		{"watched name", ProtoTCP, "198.51.100.1", 443, "api.example.com", ServiceWatched},
		{"watched name exact, trailing dot", ProtoTCP, "198.51.100.1", 443, "EXAMPLE.com.", ServiceWatched},
		{"watched name needs label boundary", ProtoTCP, "198.51.100.1", 443, "notexample.com", ServiceNone},
		{"watched tcp port", ProtoTCP, "198.51.100.1", 8443, "", ServiceWatched},
		{"watched udp port not on tcp", ProtoTCP, "198.51.100.1", 5004, "", ServiceNone},
		{"watched udp port", ProtoUDP, "198.51.100.1", 5004, "", ServiceWatched},
		// 4. nothing
		{"zoom port alone is not zoom", ProtoUDP, "198.51.100.1", 8801, "", ServiceNone},
		{"unrelated", ProtoTCP, "8.8.8.8", 443, "dns.google", ServiceNone},
		{"notzoom.us", ProtoTCP, "8.8.8.8", 443, "notzoom.us", ServiceNone},
	}
	for _, tc := range tests {
		var a netip.Addr
		if tc.server != "" {
			a = netip.MustParseAddr(tc.server)
		}
		if got := c.Classify(tc.proto, a, tc.port, tc.host); got != tc.want {
			t.Errorf("%s: Classify(%d, %s, %d, %q) = %v, want %v", tc.name, tc.proto, tc.server, tc.port, tc.host, got, tc.want)
		}
	}

	all := NewClassifier(nil, config.WatchConfig{All: true})
	if got := all.Classify(ProtoTCP, netip.MustParseAddr("8.8.8.8"), 443, ""); got != ServiceWatched {
		t.Errorf("watch.all: %v", got)
	}
	if got := all.Classify(ProtoTCP, netip.MustParseAddr("8.8.8.8"), 443, "zoom.us"); got != ServiceWeb {
		t.Errorf("watch.all with zoom name: %v", got)
	}
	// validated config: Prefixes win over Networks
	v := NewClassifier(nil, config.WatchConfig{Networks: []string{"ignored"}, Prefixes: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}})
	if got := v.Classify(ProtoTCP, netip.MustParseAddr("10.9.1.1"), 1, ""); got != ServiceWatched {
		t.Errorf("prefixes: %v", got)
	}
	none := NewClassifier(nil, config.WatchConfig{})
	if got := none.Classify(ProtoTCP, netip.MustParseAddr("170.114.52.2"), 443, ""); got != ServiceNone {
		t.Errorf("nil ranges: %v", got)
	}
}

func TestClassifyWithCache(t *testing.T) {
	c := NewClassifier(DefaultRanges(), config.WatchConfig{})
	cache := NewNameCache(16)
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	cdn := netip.MustParseAddr("13.224.1.1") // a CloudFront address outside Zoom's ranges
	cache.Put(cdn, "zoomsjccv154mmr.sjc.zoom.us", now, now.Add(time.Minute))
	if got := c.ClassifyWithCache(ProtoTCP, cdn, 443, "", cache, now); got != ServiceMediaRouter {
		t.Errorf("from cache: %v", got)
	}
	if got := c.ClassifyWithCache(ProtoTCP, cdn, 443, "www.zoom.us", cache, now); got != ServiceWeb {
		t.Errorf("SNI over cache: %v", got)
	}
	if got := c.ClassifyWithCache(ProtoTCP, cdn, 443, "", cache, now.Add(2*time.Minute)); got != ServiceNone {
		t.Errorf("expired cache entry: %v", got)
	}
	if got := c.ClassifyWithCache(ProtoTCP, cdn, 443, "", nil, now); got != ServiceNone {
		t.Errorf("nil cache: %v", got)
	}
}

func TestClassifyAllocs(t *testing.T) {
	c := NewClassifier(DefaultRanges(), config.WatchConfig{Names: []string{"example.com"}, Networks: []string{"192.0.2.0/24"}, UDPPorts: []uint16{5004}})
	zoomAddr := netip.MustParseAddr("170.114.52.2")
	other := netip.MustParseAddr("198.51.100.1")
	if n := testing.AllocsPerRun(100, func() {
		c.Classify(ProtoUDP, zoomAddr, 8801, "")
		c.Classify(ProtoTCP, zoomAddr, 443, "zoomsjccv154mmr.sjc.zoom.us")
		c.Classify(ProtoTCP, other, 443, "www.example.com")
		c.Classify(ProtoUDP, other, 5004, "")
	}); n != 0 {
		t.Errorf("Classify allocates %.1f times", n)
	}
}

func BenchmarkClassify(b *testing.B) {
	c := NewClassifier(DefaultRanges(), config.WatchConfig{Names: []string{"example.com"}, Networks: []string{"192.0.2.0/24"}})
	zoomAddr := netip.MustParseAddr("170.114.52.2")
	other := netip.MustParseAddr("198.51.100.1")
	b.Run("range", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Classify(ProtoUDP, zoomAddr, 8801, "")
		}
	})
	b.Run("name", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Classify(ProtoTCP, zoomAddr, 443, "zoomsjccv154mmr.sjc.zoom.us")
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Classify(ProtoTCP, other, 443, "www.example.org")
		}
	})
}
