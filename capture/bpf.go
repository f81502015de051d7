package capture

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/net/bpf"
)

// MaxBPFInstructions is the kernel's limit for a classic BPF program (BPF_MAXINSNS).
const MaxBPFInstructions = 4096

// ParseBPF reads a classic BPF program in the form `tcpdump -ddd 'FILTER'`
// prints: a first line with the instruction count, then one "code jt jf k"
// line (decimal) per instruction. The program is checked: the count matches,
// every instruction decodes, and jumps stay inside the program; errors give
// the line number. Blank lines and lines starting with '#' are ignored.
func ParseBPF(text string) ([]bpf.RawInstruction, error) {
	var prog []bpf.RawInstruction
	want := -1
	countLine := 0
	for i, line := range strings.Split(text, "\n") {
		lineNo := i + 1
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if want < 0 {
			if len(fields) != 1 {
				return nil, fmt.Errorf("bpf line %d: want the instruction count first (the output of tcpdump -ddd), got %q", lineNo, line)
			}
			n, err := strconv.Atoi(fields[0])
			if err != nil || n < 1 || n > MaxBPFInstructions {
				return nil, fmt.Errorf("bpf line %d: instruction count %q must be a number from 1 to %d", lineNo, fields[0], MaxBPFInstructions)
			}
			want, countLine = n, lineNo
			continue
		}
		if len(fields) != 4 {
			return nil, fmt.Errorf("bpf line %d: want 4 decimal numbers \"code jt jf k\", got %q", lineNo, line)
		}
		var v [4]uint64
		for j, bits := range [4]int{16, 8, 8, 32} {
			n, err := strconv.ParseUint(fields[j], 10, bits)
			if err != nil {
				return nil, fmt.Errorf("bpf line %d: field %d %q is not a %d-bit decimal number", lineNo, j+1, fields[j], bits)
			}
			v[j] = n
		}
		raw := bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])}
		if err := checkInstruction(raw, len(prog), want); err != nil {
			return nil, fmt.Errorf("bpf line %d: %v", lineNo, err)
		}
		prog = append(prog, raw)
	}
	if want < 0 {
		return nil, fmt.Errorf("bpf: empty program (write the output of tcpdump -ddd 'FILTER')")
	}
	if len(prog) != want {
		return nil, fmt.Errorf("bpf line %d: the count says %d instructions, but %d follow", countLine, want, len(prog))
	}
	switch last := prog[len(prog)-1].Disassemble(); last.(type) {
	case bpf.RetConstant, bpf.RetA:
	default:
		return nil, fmt.Errorf("bpf: the last instruction must return (ret), got %v", last)
	}
	return prog, nil
}

// checkInstruction decodes one instruction and checks it round-trips and
// that its jumps land inside a program of n instructions.
func checkInstruction(raw bpf.RawInstruction, pc, n int) error {
	ins := raw.Disassemble()
	if _, bad := ins.(bpf.RawInstruction); bad {
		return fmt.Errorf("opcode %#x is not a valid classic BPF instruction", raw.Op)
	}
	back, err := ins.Assemble()
	if err != nil {
		return fmt.Errorf("instruction %v does not assemble: %v", ins, err)
	}
	if back != raw {
		return fmt.Errorf("instruction %d %d %d %d is not canonical (reads back as %d %d %d %d)",
			raw.Op, raw.Jt, raw.Jf, raw.K, back.Op, back.Jt, back.Jf, back.K)
	}
	switch i := ins.(type) {
	case bpf.Jump:
		if pc+1+int(i.Skip) >= n {
			return fmt.Errorf("jump past the end of the program")
		}
	case bpf.JumpIf, bpf.JumpIfX:
		if pc+1+int(raw.Jt) >= n || pc+1+int(raw.Jf) >= n {
			return fmt.Errorf("conditional jump past the end of the program")
		}
	}
	return nil
}

// withSnapLen makes every accepting return of prog keep at most snapLen
// bytes, which is how the kernel truncates frames before copying them into
// the ring; with no program, it returns a one-instruction "accept snapLen".
func withSnapLen(prog []bpf.RawInstruction, snapLen int) []bpf.RawInstruction {
	if snapLen <= 0 {
		return prog
	}
	if len(prog) == 0 {
		raw, _ := bpf.RetConstant{Val: uint32(snapLen)}.Assemble()
		return []bpf.RawInstruction{raw}
	}
	out := make([]bpf.RawInstruction, len(prog))
	copy(out, prog)
	for i, raw := range out {
		if r, ok := raw.Disassemble().(bpf.RetConstant); ok && r.Val > uint32(snapLen) {
			out[i], _ = bpf.RetConstant{Val: uint32(snapLen)}.Assemble()
		}
	}
	return out
}
