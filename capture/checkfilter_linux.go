package capture

import (
	"errors"
	"fmt"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// CheckFilter asks the kernel whether it accepts prog, as OpenLive would
// attach it (with the snap length applied): it attaches the program to a
// throwaway socket that receives nothing (AF_PACKET with protocol 0, or a
// UDP socket without CAP_NET_RAW: the kernel checks classic BPF the same way
// on both). A program ParseBPF accepts can still be refused here: a division
// by a constant zero, a read of scratch memory never written.
func CheckFilter(prog []bpf.RawInstruction, snapLen int) error {
	full := withSnapLen(prog, snapLen)
	if len(full) == 0 {
		return nil
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EAFNOSUPPORT) {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	}
	if err != nil {
		return fmt.Errorf("capture: cannot open a socket to check the BPF filter: %w", err)
	}
	defer unix.Close(fd)
	ins := make([]unix.SockFilter, len(full))
	for i, r := range full {
		ins[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(ins)), Filter: &ins[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return fmt.Errorf("the kernel refuses the program (%w): check it with tcpdump -d", err)
	}
	return nil
}
