// Command zoomprobe-bench measures the floors scripts/bench.sh compares
// `zoomprobe analyze` with, on one capture file:
//
//	zoomprobe-bench read FILE      read every frame and nothing else (the floor)
//	zoomprobe-bench gopacket FILE  read, then decode with gopacket's DecodingLayerParser
//	zoomprobe-bench decode FILE    read, then decode with zoomprobe's decoder
//
// Each prints "PACKETS SECONDS" on one line. It is built statically with the
// other binaries, so the script runs on a machine without a Go toolchain.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/zoomprobe/zoomprobe/capture"
	"github.com/zoomprobe/zoomprobe/decode"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: zoomprobe-bench read|gopacket|decode FILE")
		os.Exit(2)
	}
	n, d, err := run(os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "zoomprobe-bench:", err)
		os.Exit(1)
	}
	fmt.Printf("%d %.6f\n", n, d.Seconds())
}

func run(mode, path string) (int, time.Duration, error) {
	var each func(data []byte, ts time.Time, link decode.LinkType)
	switch mode {
	case "read":
		each = func([]byte, time.Time, decode.LinkType) {}
	case "decode":
		dec := decode.NewDecoder(decode.Options{Decapsulate: true, VXLANPorts: []uint16{4789}})
		var p decode.Packet
		each = func(data []byte, ts time.Time, link decode.LinkType) { _ = dec.Decode(data, link, ts, len(data), &p) }
	case "gopacket":
		// The layers a mirror port's traffic needs, decoded as gopacket's
		// fastest API does: preallocated layers, no packet objects.
		var (
			eth     layers.Ethernet
			dot1q   layers.Dot1Q
			ip4     layers.IPv4
			ip6     layers.IPv6
			tcp     layers.TCP
			udp     layers.UDP
			icmp4   layers.ICMPv4
			icmp6   layers.ICMPv6
			payload gopacket.Payload
		)
		parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &dot1q, &ip4, &ip6, &tcp, &udp, &icmp4, &icmp6, &payload)
		parser.IgnoreUnsupported = true
		decoded := make([]gopacket.LayerType, 0, 10)
		each = func(data []byte, _ time.Time, _ decode.LinkType) { _ = parser.DecodeLayers(data, &decoded) }
	default:
		return 0, 0, fmt.Errorf("unknown mode %q (read, gopacket or decode)", mode)
	}
	src, err := capture.OpenFiles([]string{path})
	if err != nil {
		return 0, 0, err
	}
	defer src.Close()
	start := time.Now()
	n := 0
	for {
		data, ts, _, link, err := src.ReadPacket()
		if errors.Is(err, io.EOF) {
			return n, time.Since(start), nil
		}
		if err != nil {
			return n, 0, err
		}
		each(data, ts, link)
		n++
	}
}
