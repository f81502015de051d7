package capture

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/zoomprobe/zoomprobe/decode"
)

// packetReader is what pcapgo's pcap and pcapng readers have in common.
type packetReader interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// fileInput is one open capture file and the next packet it holds.
type fileInput struct {
	path   string
	f      *os.File
	r      packetReader
	ng     bool
	link   decode.LinkType // pcap: the file's; pcapng: the first interface's
	n      int             // packets read so far (the head is packet n)
	done   bool
	err    error     // a read error, reported in time order
	lastTS time.Time // time of the last good packet, where err sorts

	head     []byte
	headTS   time.Time
	headLen  int
	headLink decode.LinkType
}

// files merges several capture files by packet time.
type files struct {
	name   string
	inputs []*fileInput
	cur    *fileInput // the input whose head the caller holds
	read   uint64
	closed atomic.Bool // Close may come from another goroutine (context cancel)
	mu     sync.Mutex  // serialises Close
}

// OpenFiles opens pcap and pcapng files (gzip-compressed too), telling the
// formats apart by their magic number, and returns a Source that delivers
// their packets merged in timestamp order (ties: the earlier file in paths
// first). Each packet carries its own file's or pcapng interface's link type.
// A truncated or corrupt file yields an error naming the file and the packet
// number, in time order after the packets before it; ReadPacket may then be
// called again to go on with the other files.
func OpenFiles(paths []string) (Source, error) {
	if len(paths) == 0 {
		return nil, errors.New("capture: no capture files given")
	}
	s := &files{name: strings.Join(paths, ",")}
	for _, p := range paths {
		in, err := openFile(p)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.inputs = append(s.inputs, in)
		in.advance()
	}
	return s, nil
}

func openFile(path string) (*fileInput, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	in := &fileInput{path: path, f: f}
	br := bufio.NewReaderSize(f, 1<<16)
	magic, err := br.Peek(4)
	if err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, gerr := gzip.NewReader(br)
		if gerr != nil {
			f.Close()
			return nil, fmt.Errorf("capture: %s: bad gzip header: %v", path, gerr)
		}
		br = bufio.NewReaderSize(gz, 1<<16)
		magic, err = br.Peek(4)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("capture: %s: too short to be a pcap or pcapng file: %v", path, err)
	}
	switch m := binary.LittleEndian.Uint32(magic); m {
	case 0x0a0d0d0a:
		r, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true, SkipUnknownVersion: true})
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("capture: %s: bad pcapng header: %v", path, err)
		}
		in.r, in.ng = r, true
		in.link = decode.LinkType(r.LinkType())
		if ifc, err := r.Interface(0); err == nil {
			in.link = decode.LinkType(ifc.LinkType)
		}
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		r, err := pcapgo.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("capture: %s: bad pcap header: %v", path, err)
		}
		in.r = r
		in.link = decode.LinkType(r.LinkType())
	default:
		f.Close()
		return nil, fmt.Errorf("capture: %s: not a pcap or pcapng file (magic %08x); convert it with editcap", path, m)
	}
	return in, nil
}

// advance reads the input's next packet into its head.
func (in *fileInput) advance() {
	if in.done || in.err != nil {
		return
	}
	data, ci, err := in.r.ZeroCopyReadPacketData()
	if err != nil {
		if errors.Is(err, io.EOF) {
			in.done = true
			return
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("file truncated: %w", err)
		}
		in.err = fmt.Errorf("capture: %s: packet %d: %w", in.path, in.n+1, err)
		return
	}
	in.n++
	in.head, in.headTS, in.headLen = data, ci.Timestamp, ci.Length
	in.headLink = in.link
	if in.ng && len(ci.AncillaryData) > 0 {
		if lt, ok := ci.AncillaryData[0].(layers.LinkType); ok {
			in.headLink = decode.LinkType(lt)
		}
	}
	in.lastTS = ci.Timestamp
}

func (s *files) Name() string { return s.name }

func (s *files) LinkType() decode.LinkType {
	if len(s.inputs) == 0 {
		return decode.LinkEthernet
	}
	return s.inputs[0].link
}

func (s *files) ReadPacket() ([]byte, time.Time, int, decode.LinkType, error) {
	if s.closed.Load() {
		return nil, time.Time{}, 0, 0, ErrClosed
	}
	if s.cur != nil {
		s.cur.advance()
		s.cur = nil
	}
	// Linear scan: a handful of files; a heap would not pay off.
	var next *fileInput
	var nextTS time.Time
	for _, in := range s.inputs {
		var t time.Time
		switch {
		case in.err != nil:
			t = in.lastTS
		case in.done:
			continue
		default:
			t = in.headTS
		}
		if next == nil || t.Before(nextTS) {
			next, nextTS = in, t
		}
	}
	if next == nil {
		return nil, time.Time{}, 0, 0, io.EOF
	}
	if next.err != nil {
		err := next.err
		next.err, next.done = nil, true
		return nil, time.Time{}, 0, 0, err
	}
	s.cur = next
	s.read++
	return next.head, next.headTS, next.headLen, next.headLink, nil
}

func (s *files) Stats() (Stats, error) { return Stats{Received: s.read}, nil }

// Close closes the files; a ReadPacket running meanwhile on another
// goroutine fails with a read error or ErrClosed.
func (s *files) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed.Store(true)
	var first error
	for _, in := range s.inputs {
		if in.f != nil {
			if err := in.f.Close(); err != nil && first == nil {
				first = err
			}
			in.f = nil
		}
	}
	return first
}
