package capture

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

func FuzzParseBPF(f *testing.F) {
	for _, name := range []string{"udp8801-or-tcp443.bpf", "udp-dst-9999.bpf", "vlan-ip.bpf"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("1\n6 0 0 65535\n")
	f.Add("2\n21 5 0 2048\n6 0 0 0\n")
	f.Fuzz(func(t *testing.T, text string) {
		prog, err := ParseBPF(text)
		if err != nil {
			return
		}
		if len(prog) == 0 || len(prog) > MaxBPFInstructions {
			t.Fatalf("accepted a program of %d instructions", len(prog))
		}
		insns := make([]bpf.Instruction, len(prog))
		for i, r := range prog {
			insns[i] = r.Disassemble()
		}
		// Accepted programs must be ones the x/net/bpf VM (which checks
		// jumps and the final return) also accepts.
		if _, err := bpf.NewVM(insns); err != nil {
			t.Fatalf("accepted a program the VM refuses: %v", err)
		}
	})
}

// FuzzOpenFiles feeds arbitrary bytes as a capture file: reading must end
// in io.EOF or an error naming the file, never a panic or a hang.
func FuzzOpenFiles(f *testing.F) {
	dir := f.TempDir()
	for i, link := range []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeRaw} {
		p := filepath.Join(dir, "seed.pcap")
		writePcap(f, p, link, []rec{{at: time.Duration(i), port: 8801}, {at: 2, port: 443}})
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	png := filepath.Join(dir, "seed.pcapng")
	writePcapngTB(f, png)
	b, _ := os.ReadFile(png)
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "fuzz.cap")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		src, err := OpenFiles([]string{p})
		if err != nil {
			if !bytes.Contains([]byte(err.Error()), []byte(p)) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		defer src.Close()
		for range len(data) + 1 { // each packet takes at least one byte
			frame, _, _, _, err := src.ReadPacket()
			if err != nil {
				return
			}
			if len(frame) > len(data) {
				t.Fatalf("frame of %d bytes from a %d-byte file", len(frame), len(data))
			}
		}
		t.Fatalf("more packets than bytes in the file")
	})
}
