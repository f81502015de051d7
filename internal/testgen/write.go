package testgen

import (
	"fmt"
	"io"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Format is a capture file format.
type Format string

const (
	FormatPCAP   Format = "pcap"
	FormatPCAPNG Format = "pcapng"
)

// Snaplen written in the file headers.
const Snaplen = 262144

// PacketWriter writes packets to a capture file.
type PacketWriter interface {
	WritePacket(Packet) error
	// Flush writes buffered data (pcapng); it does not close the io.Writer.
	Flush() error
}

type pcapWriter struct{ w *pcapgo.Writer }

func (p pcapWriter) WritePacket(pk Packet) error { return p.w.WritePacket(captureInfo(pk), pk.Data) }
func (p pcapWriter) Flush() error                { return nil }

type ngWriter struct{ w *pcapgo.NgWriter }

func (n ngWriter) WritePacket(pk Packet) error { return n.w.WritePacket(captureInfo(pk), pk.Data) }
func (n ngWriter) Flush() error                { return n.w.Flush() }

func captureInfo(p Packet) gopacket.CaptureInfo {
	return gopacket.CaptureInfo{Timestamp: p.Time, CaptureLength: len(p.Data), Length: len(p.Data), InterfaceIndex: 0}
}

// NewPacketWriter writes the file header for format (Ethernet link type) and
// returns a writer for the packets.
func NewPacketWriter(w io.Writer, format Format) (PacketWriter, error) {
	switch format {
	case FormatPCAP, "":
		pw := pcapgo.NewWriter(w)
		if err := pw.WriteFileHeader(Snaplen, layers.LinkTypeEthernet); err != nil {
			return nil, err
		}
		return pcapWriter{pw}, nil
	case FormatPCAPNG:
		nw, err := pcapgo.NewNgWriterInterface(w, pcapgo.NgInterface{
			Name: "mirror0", Description: "zoomprobe testgen", LinkType: layers.LinkTypeEthernet,
			SnapLength: Snaplen, TimestampResolution: 6,
		}, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "zoomprobe-gen"}})
		if err != nil {
			return nil, err
		}
		return ngWriter{nw}, nil
	}
	return nil, fmt.Errorf("testgen: unknown format %q (want pcap or pcapng)", format)
}

// WritePackets writes pkts to w as format.
func WritePackets(w io.Writer, format Format, pkts []Packet) error {
	pw, err := NewPacketWriter(w, format)
	if err != nil {
		return err
	}
	for _, p := range pkts {
		if err := pw.WritePacket(p); err != nil {
			return err
		}
	}
	return pw.Flush()
}
